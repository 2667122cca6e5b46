/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for dma/'s shadow rings and completion tracking, with a made-up ring format. */
#include "godwit/dma.h"
#include "godwit/dma_shadow.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A 16-byte descriptor: read format {buffer address, 0}; write-back {0, DD | length << 16}. */
struct tdesc {
	uint64_t addr;
	uint32_t status;
	uint32_t pad;
};
#define T_DD 1u

static uint64_t t_rx_buf(const void *d)
{
	return ((const struct tdesc *)d)->addr;
}
static void t_rx_set(void *d, uint64_t a)
{
	((struct tdesc *)d)->addr = a;
}
static int t_rx_len(const void *d)
{
	const struct tdesc *t = d;
	return (t->status & T_DD) ? (int)(t->status >> 16) : -1;
}
static bool t_tx_done(const void *d)
{
	return ((const struct tdesc *)d)->status & T_DD;
}
static const struct dma_ring_ops t_ops = {.name = "test",
					  .desc_size = 16,
					  .rx_buf_addr = t_rx_buf,
					  .rx_set_buf_addr = t_rx_set,
					  .rx_done_len = t_rx_len,
					  .tx_done = t_tx_done};

#define RAM	(1u << 20)
#define RING	0x10000u /* guest ring */
#define BUFS	0x20000u /* guest buffers, 2 KiB each */
#define BSIZE	2048u
#define N	8u
#define RAM_PGS (RAM / 4096)

static uint8_t *ram;
static struct dma_map *map;
static uint8_t dirty[RAM_PGS];
static unsigned dirty_calls;

static void on_dirty(void *opaque, uint64_t iova, uint64_t len)
{
	(void)opaque;
	dirty_calls++;
	for (uint64_t p = iova / 4096; p <= (iova + len - 1) / 4096 && p < RAM_PGS; p++)
		dirty[p] = 1;
}

static void setup(void)
{
	ram = aligned_alloc(4096, RAM);
	memset(ram, 0, RAM);
	memset(dirty, 0, sizeof(dirty));
	dirty_calls = 0;
	CU_ASSERT_FATAL(dma_map_create(&map) == 0);
	CU_ASSERT_FATAL(dma_map_add(map, 0, RAM, ram, true) == 0);
}

static void teardown(void)
{
	dma_map_destroy(map);
	free(ram);
}

static struct tdesc *gdesc(unsigned i)
{
	return (struct tdesc *)(ram + RING) + i;
}

/* The driver posts descriptor i with its own buffer. */
static void driver_post(unsigned i)
{
	gdesc(i)->addr = BUFS + i * BSIZE;
	gdesc(i)->status = 0;
}

/* The hardware: receives one frame of len bytes filled with fill into descriptor head of
 * the ring at base, through the IOVA map only. Returns the new head. */
static unsigned device_rx(uint64_t base, unsigned head, unsigned len, uint8_t fill)
{
	struct tdesc d;
	CU_ASSERT_FATAL(dma_read(map, base + head * 16u, &d, sizeof(d)) == 0);
	uint8_t frame[256];
	memset(frame, fill, sizeof(frame));
	struct tdesc wb = {0, T_DD | len << 16, 0};
	if (dma_write(map, d.addr, frame, len))
		wb.status = T_DD | 2u; /* error, no data */
	CU_ASSERT(dma_write(map, base + head * 16u, &wb, sizeof(wb)) == 0);
	return (head + 1) % N;
}

static bool buf_is(unsigned i, unsigned len, uint8_t fill)
{
	for (unsigned k = 0; k < len; k++)
		if (ram[BUFS + i * BSIZE + k] != fill)
			return false;
	return true;
}

static void test_modes(void)
{
	enum dma_mode m;
	CU_ASSERT_EQUAL(dma_mode_parse("shadow", &m), 0);
	CU_ASSERT_EQUAL(m, DMA_MODE_SHADOW);
	CU_ASSERT_EQUAL(dma_mode_parse("track", &m), 0);
	CU_ASSERT_EQUAL(m, DMA_MODE_TRACK);
	CU_ASSERT_EQUAL(dma_mode_parse("off", &m), 0);
	CU_ASSERT_EQUAL(m, DMA_MODE_OFF);
	CU_ASSERT_EQUAL(dma_mode_parse("Shadow", &m), -EINVAL);
	CU_ASSERT_EQUAL(dma_mode_parse("", &m), -EINVAL);
	CU_ASSERT_EQUAL(dma_mode_parse(NULL, &m), -EINVAL);
	CU_ASSERT_STRING_EQUAL(dma_mode_name(DMA_MODE_TRACK), "track");
	setup();
	struct dma_shadow *s;
	CU_ASSERT_EQUAL(dma_shadow_create(map, &t_ops, DMA_MODE_OFF, on_dirty, NULL, &s), -EINVAL);
	teardown();
}

/* Shadow RX: the device writes only shadow memory; completions reach the guest, dirty. */
static void test_shadow_rx(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		driver_post(i);
	struct dma_queue_regs r = {RING, N, 0, 4, BSIZE};
	uint64_t dev;
	CU_ASSERT_FATAL(dma_shadow_queue_start(s, 0, false, &r, &dev) == 0);
	CU_ASSERT_EQUAL(dev, DMA_SHADOW_IOVA_BASE);
	CU_ASSERT_EQUAL(dma_shadow_queue_dev_base(s, 0), dev);
	CU_ASSERT_EQUAL(dma_shadow_queue_guest_base(s, 0), RING);
	unsigned head = 0;
	head = device_rx(dev, head, 60, 0xA1);
	head = device_rx(dev, head, 100, 0xA2);
	/* Nothing in guest memory moved yet: no DD, buffers untouched, nothing dirty. */
	CU_ASSERT_EQUAL(gdesc(0)->status, 0);
	CU_ASSERT_EQUAL(gdesc(0)->addr, BUFS);
	CU_ASSERT_TRUE(buf_is(0, 60, 0));
	CU_ASSERT_EQUAL(dirty_calls, 0);
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_TRUE(buf_is(0, 60, 0xA1));
	CU_ASSERT_TRUE(buf_is(0, 61, 0xA1) == false); /* exactly the frame's bytes */
	CU_ASSERT_TRUE(buf_is(1, 100, 0xA2));
	CU_ASSERT_EQUAL(gdesc(0)->status, T_DD | 60u << 16);
	CU_ASSERT_EQUAL(gdesc(1)->status, T_DD | 100u << 16);
	CU_ASSERT_EQUAL(gdesc(2)->status, 0);
	CU_ASSERT_TRUE(dirty[BUFS / 4096] && dirty[RING / 4096]);
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.bytes_copied, 160);
	CU_ASSERT_EQUAL(st.descs_posted, 4);
	CU_ASSERT_EQUAL(st.descs_completed, 2);
	CU_ASSERT_EQUAL(st.pages_dirtied, 4); /* two buffers, two descriptors: one page each */
	/* A head beyond what was posted, or over descriptors not written back, is not
	 * believed: nothing of the shadow ring (its buffer addresses) reaches the guest. */
	dma_shadow_queue_complete(s, 0, 7);
	CU_ASSERT_EQUAL(gdesc(2)->status, 0);
	CU_ASSERT_EQUAL(gdesc(2)->addr, BUFS + 2 * BSIZE);
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.descs_completed, 2);
	/* A tail that went backwards is not followed, and is counted. */
	CU_ASSERT_FALSE(dma_shadow_queue_post(s, 0, 3));
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.tails_refused, 1);
	CU_ASSERT_EQUAL(st.descs_posted, 4);
	/* Handback: descriptors the device did not reach are intact in the guest's ring. */
	CU_ASSERT_TRUE(dma_shadow_queue_post(s, 0, 6));
	CU_ASSERT_EQUAL(dma_shadow_queue_stop(s, 0), RING);
	CU_ASSERT_FALSE(dma_shadow_queue_active(s, 0));
	CU_ASSERT_EQUAL(gdesc(4)->addr, BUFS + 4 * BSIZE);
	CU_ASSERT_EQUAL(gdesc(5)->addr, BUFS + 5 * BSIZE);
	/* The shadow memory stays mapped for a retake until the shadow goes; then the IOVA
	 * range is gone from the device's map. */
	uint8_t b;
	CU_ASSERT_EQUAL(dma_read(map, DMA_SHADOW_IOVA_BASE, &b, 1), 0);
	dma_shadow_destroy(s);
	CU_ASSERT_EQUAL(dma_read(map, DMA_SHADOW_IOVA_BASE, &b, 1), -EFAULT);
	teardown();
}

/* The hardware on a split ring: as device_rx, with its ring at dring (its own view of the
 * guest's ring pages) and the buffers through the IOVA map. */
static unsigned device_rx_split(uint8_t *dring, unsigned head, unsigned len, uint8_t fill)
{
	struct tdesc d;
	memcpy(&d, dring + head * 16u, sizeof(d));
	uint8_t frame[256];
	memset(frame, fill, sizeof(frame));
	struct tdesc wb = {0, T_DD | len << 16, 0};
	if (dma_write(map, d.addr, frame, len))
		wb.status = T_DD | 2u;
	memcpy(dring + head * 16u, &wb, sizeof(wb));
	return (head + 1) % N;
}

/* A split ring: the device keeps the guest's ring address (its own view of the pages), the
 * descriptors it owned at the start complete as in track, later posts name shadow buffers,
 * and a drain hands those back as traffic completes them. */
static void test_split(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	static uint8_t dring[N * 16];
	for (unsigned i = 0; i < 4; i++)
		driver_post(i);
	memcpy(dring, ram + RING, sizeof(dring)); /* the split: both views alike */
	/* The device completes descriptor 0 after the split, before the engine starts. */
	unsigned head = device_rx_split(dring, 0, 60, 0xB0);
	struct dma_queue_regs r = {RING, N, 0, 4, BSIZE};
	CU_ASSERT_EQUAL(dma_shadow_queue_start_split(s, 0, false, &r, NULL), -EINVAL);
	CU_ASSERT_FATAL(dma_shadow_queue_start_split(s, 0, false, &r, dring) == 0);
	CU_ASSERT_EQUAL(dma_shadow_queue_dev_base(s, 0), 0); /* the ring did not move */
	CU_ASSERT_EQUAL(dma_shadow_queue_guest_base(s, 0), RING);
	/* What the device owned stays as the driver posted it: the guest's buffers. */
	CU_ASSERT_EQUAL(((struct tdesc *)dring)[1].addr, BUFS + 1 * BSIZE);
	CU_ASSERT_EQUAL(gdesc(0)->status, 0); /* the guest has not seen it yet */
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_EQUAL(gdesc(0)->status, T_DD | 60u << 16);
	CU_ASSERT_TRUE(buf_is(0, 60, 0xB0));
	CU_ASSERT_TRUE(dirty[BUFS / 4096]); /* written by the device directly: marked */
	/* Posts from now on reach the device's view with shadow buffers; the guest's copy keeps
	 * its own addresses. */
	driver_post(4);
	driver_post(5);
	dma_shadow_queue_post(s, 0, 6);
	CU_ASSERT_TRUE(((struct tdesc *)dring)[4].addr >= DMA_SHADOW_IOVA_BASE);
	CU_ASSERT_TRUE(((struct tdesc *)dring)[5].addr >= DMA_SHADOW_IOVA_BASE);
	CU_ASSERT_EQUAL(gdesc(4)->addr, BUFS + 4 * BSIZE);
	for (unsigned i = 1; i < 5; i++)
		head = device_rx_split(dring, head, 80 + i, (uint8_t)(0xC0 + i));
	CU_ASSERT_TRUE(buf_is(4, 84, 0)); /* in the shadow buffer only, until completed */
	memset(dirty, 0, sizeof(dirty));
	dma_shadow_queue_complete(s, 0, head);
	for (unsigned i = 1; i < 5; i++) {
		CU_ASSERT_TRUE(buf_is(i, 80 + i, (uint8_t)(0xC0 + i)));
		CU_ASSERT_EQUAL(gdesc(i)->status, T_DD | (80u + i) << 16);
	}
	CU_ASSERT_TRUE(dirty[(BUFS + 4 * BSIZE) / 4096]);
	/* The drain: descriptor 5 still names a shadow buffer. A post from now on goes to the
	 * device as the driver wrote it. */
	CU_ASSERT_FALSE(dma_shadow_queue_drain(s, 0));
	driver_post(6);
	dma_shadow_queue_post(s, 0, 7);
	CU_ASSERT_EQUAL(((struct tdesc *)dring)[6].addr, BUFS + 6 * BSIZE);
	uint32_t first, count, n;
	CU_ASSERT_TRUE(dma_shadow_queue_device_owned(s, 0, &first, &count, &n));
	CU_ASSERT_EQUAL(first, 5);
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_EQUAL(n, N);
	head = device_rx_split(dring, head, 90, 0xD5);
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_TRUE(buf_is(5, 90, 0xD5));
	CU_ASSERT_TRUE(dma_shadow_queue_drain(s, 0)); /* drained: the guest may have the pages */
	CU_ASSERT_TRUE(dma_shadow_queue_device_owned(s, 0, &first, &count, &n));
	CU_ASSERT_EQUAL(first, 6);
	CU_ASSERT_EQUAL(count, 1);
	/* Descriptor 6 went to the device as the driver wrote it: the device fills the guest's
	 * buffer itself, and the completion is marked as in track. */
	head = device_rx_split(dring, head, 70, 0xD6);
	memset(dirty, 0, sizeof(dirty));
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_TRUE(buf_is(6, 70, 0xD6));
	CU_ASSERT_TRUE(dirty[(BUFS + 6 * BSIZE) / 4096]);
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.bytes_copied, 84 + 90); /* only what went through shadow buffers */
	CU_ASSERT_EQUAL(st.descs_completed, 7);
	dma_shadow_queue_stop(s, 0);
	CU_ASSERT_FALSE(dma_shadow_queue_device_owned(s, 0, &first, &count, &n));
	dma_shadow_destroy(s);
	/* Track mode has no shadow buffers to split a ring for. */
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_TRACK, on_dirty, NULL, &s) == 0);
	CU_ASSERT_EQUAL(dma_shadow_queue_start_split(s, 0, false, &r, dring), -EINVAL);
	dma_shadow_destroy(s);
	teardown();
}

/* The ring wraps: posted descriptors 6, 7, 0, 1 complete in order into the right places. */
static void test_wrap(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		driver_post(i);
	struct dma_queue_regs r = {RING, N, 6, 0, BSIZE};
	uint64_t dev;
	CU_ASSERT_FATAL(dma_shadow_queue_start(s, 1, false, &r, &dev) == 0);
	CU_ASSERT_EQUAL(dev, DMA_SHADOW_IOVA_BASE + DMA_SHADOW_SLOT_SIZE);
	dma_shadow_queue_post(s, 1, 2); /* doorbell: 0 and 1 too */
	unsigned head = 6;
	for (unsigned k = 0; k < 4; k++)
		head = device_rx(dev, head, 64, (uint8_t)(0x10 + k));
	CU_ASSERT_EQUAL(head, 2);
	dma_shadow_queue_complete(s, 1, head);
	CU_ASSERT_TRUE(buf_is(6, 64, 0x10));
	CU_ASSERT_TRUE(buf_is(7, 64, 0x11));
	CU_ASSERT_TRUE(buf_is(0, 64, 0x12));
	CU_ASSERT_TRUE(buf_is(1, 64, 0x13));
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT_EQUAL(gdesc(i)->status != 0, i == 6 || i == 7 || i == 0 || i == 1);
	/* A tail beyond the ring is the device's to refuse: nothing is posted. */
	struct dma_shadow_stats st0, st1;
	dma_shadow_get_stats(s, &st0);
	dma_shadow_queue_post(s, 1, N + 3);
	dma_shadow_get_stats(s, &st1);
	CU_ASSERT_EQUAL(st0.descs_posted, st1.descs_posted);
	dma_shadow_destroy(s);
	teardown();
}

/* Guest addresses outside guest memory are left to the device to fault on. */
static void test_bad_addresses(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		driver_post(i);
	gdesc(1)->addr = 0x7000000000ull; /* far outside RAM */
	gdesc(2)->addr = RAM - 32;	  /* the frame would straddle the end of RAM */
	gdesc(3)->addr = DMA_SHADOW_IOVA_BASE + 8 * 16u; /* aimed at our own shadow memory */
	struct dma_queue_regs r = {RING, N, 0, 4, BSIZE};
	uint64_t dev;
	CU_ASSERT_FATAL(dma_shadow_queue_start(s, 0, false, &r, &dev) == 0);
	unsigned head = 0;
	for (unsigned k = 0; k < 4; k++)
		head = device_rx(dev, head, 64, 0x55);
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_EQUAL(gdesc(1)->status, T_DD | 2u); /* the device's own error completion */
	CU_ASSERT_EQUAL(gdesc(2)->status, T_DD | 2u);
	CU_ASSERT_TRUE(buf_is(0, 64, 0x55));
	CU_ASSERT_EQUAL(gdesc(3)->status, T_DD | 64u << 16); /* the device wrote somewhere... */
	CU_ASSERT_TRUE(buf_is(3, 64, 0));		     /* ...not into guest memory */
	CU_ASSERT_EQUAL(ram[RAM - 1], 0);
	CU_ASSERT_FALSE(dirty[RAM_PGS - 1]);
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.bad_addrs, 3);
	CU_ASSERT_EQUAL(st.bytes_copied, 64);
	/* A ring outside guest memory, or one the device would refuse, is not taken over. */
	struct dma_queue_regs bad[] = {
	    {RAM - 64, N, 0, 1, BSIZE},
	    {0x7000000000ull, N, 0, 1, BSIZE},
	    {RING, 0, 0, 0, BSIZE},
	    {RING, 8192, 0, 1, BSIZE},
	    {RING, N, N, 1, BSIZE},
	    {UINT64_MAX - 15, N, 0, 1, BSIZE},
	    {DMA_SHADOW_IOVA_BASE, N, 0, 1, BSIZE}}; /* our memory is not the guest's */
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		CU_ASSERT_EQUAL(dma_shadow_queue_start(s, 2, false, &bad[i], &dev), 0);
		CU_ASSERT_EQUAL(dev, bad[i].base);
		CU_ASSERT_FALSE(dma_shadow_queue_active(s, 2));
	}
	CU_ASSERT_EQUAL(dma_shadow_queue_start(s, DMA_SHADOW_MAX_QUEUES, false, &r, &dev), -EINVAL);
	dma_shadow_destroy(s);
	teardown();
}

/* Track: the device keeps the guest's ring; completions are marked dirty, nothing copied. */
static void test_track(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_TRACK, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		driver_post(i);
	/* Buffers on pages of their own, so that what is marked can be told apart. */
	gdesc(0)->addr = 0x40000;
	gdesc(1)->addr = 0x50000;
	gdesc(2)->addr = 0x60000;
	struct dma_queue_regs r = {RING, N, 0, 3, BSIZE};
	uint64_t dev;
	CU_ASSERT_FATAL(dma_shadow_queue_start(s, 0, false, &r, &dev) == 0);
	CU_ASSERT_EQUAL(dev, RING);
	CU_ASSERT_EQUAL(dma_shadow_queue_dev_base(s, 0), 0);
	unsigned head = device_rx(dev, 0, 64, 0x77);
	head = device_rx(dev, head, 64, 0x78);
	CU_ASSERT_EQUAL(ram[0x40000], 0x77); /* straight into guest memory */
	CU_ASSERT_EQUAL(dirty_calls, 0);
	dma_shadow_queue_complete(s, 0, head);
	CU_ASSERT_TRUE(dirty[0x40] && dirty[0x50] && dirty[RING / 4096]);
	CU_ASSERT_FALSE(dirty[0x60]); /* posted but not completed */
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.bytes_copied, 0);
	CU_ASSERT_EQUAL(st.descs_completed, 2);
	CU_ASSERT_EQUAL(dma_shadow_queue_stop(s, 0), RING);
	dma_shadow_destroy(s);
	teardown();
}

/* TX: descriptors go to the shadow ring as posted; write-backs come back to the guest. */
static void test_shadow_tx(void)
{
	setup();
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		gdesc(i)->addr = BUFS + i * BSIZE; /* TX: the frame to send */
	struct dma_queue_regs r = {RING, N, 7, 1, 0};
	uint64_t dev;
	CU_ASSERT_FATAL(dma_shadow_queue_start(s, 3, true, &r, &dev) == 0);
	struct tdesc d;
	CU_ASSERT_EQUAL(dma_read(map, dev + 7 * 16u, &d, sizeof(d)), 0);
	CU_ASSERT_EQUAL(d.addr, BUFS + 7 * BSIZE); /* device reads need no shadow buffer */
	struct tdesc wb = {0, T_DD, 0};
	CU_ASSERT_EQUAL(dma_write(map, dev + 7 * 16u, &wb, sizeof(wb)), 0);
	CU_ASSERT_EQUAL(dma_write(map, dev + 0 * 16u, &wb, sizeof(wb)), 0);
	CU_ASSERT_EQUAL(gdesc(7)->status, 0);
	dma_shadow_queue_complete(s, 3, 1);
	CU_ASSERT_EQUAL(gdesc(7)->status, T_DD);
	CU_ASSERT_EQUAL(gdesc(0)->status, T_DD);
	CU_ASSERT_TRUE(dirty[RING / 4096]);
	/* Descriptors the device does not write back (no RS, a context descriptor) are done
	 * when the head passes them: the walk goes on to the next one. */
	dma_shadow_queue_post(s, 3, 4);
	CU_ASSERT_EQUAL(dma_write(map, dev + 3 * 16u, &wb, sizeof(wb)), 0); /* only 3 has RS */
	dma_shadow_queue_complete(s, 3, 4);
	CU_ASSERT_EQUAL(gdesc(1)->status, 0);
	CU_ASSERT_EQUAL(gdesc(2)->status, 0);
	CU_ASSERT_EQUAL(gdesc(3)->status, T_DD);
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.descs_completed, 5);
	/* A tail that runs backwards over what the device owns is not followed. */
	dma_shadow_queue_post(s, 3, 6); /* 4 and 5 are the device's now */
	gdesc(4)->addr = 0xBAD;
	gdesc(6)->addr = 0xBAD;
	dma_shadow_get_stats(s, &st);
	uint64_t posted = st.descs_posted;
	dma_shadow_queue_post(s, 3, 5); /* would wrap round over 6, 7, 0.. and 4 */
	dma_shadow_get_stats(s, &st);
	CU_ASSERT_EQUAL(st.descs_posted, posted);
	CU_ASSERT_EQUAL(dma_read(map, dev + 4 * 16u, &d, sizeof(d)), 0);
	CU_ASSERT_EQUAL(d.addr, BUFS + 4 * BSIZE);
	dma_shadow_destroy(s);
	teardown();
}

/* A real IOMMU behind the map (the vfio backend's): what the map adds from then on is mapped
 * there first, a refusal fails the add, a removal unmaps it; the shadow window goes where the
 * map says. */
struct mirror_log {
	unsigned maps, unmaps;
	uint64_t iova, len;
	bool writable;
	int fail;
};

static int m_map(void *o, uint64_t iova, uint64_t len, void *hva, bool writable)
{
	struct mirror_log *l = o;
	(void)hva;
	if (l->fail)
		return l->fail;
	l->maps++;
	l->iova = iova;
	l->len = len;
	l->writable = writable;
	return 0;
}

static void m_unmap(void *o, uint64_t iova, uint64_t len)
{
	struct mirror_log *l = o;
	l->unmaps++;
	CU_ASSERT_EQUAL(iova, l->iova);
	CU_ASSERT_EQUAL(len, l->len);
}

static const struct dma_mirror_ops mirror_ops = {.map = m_map, .unmap = m_unmap};

static void test_mirror(void)
{
	setup();
	struct mirror_log l = {0};
	const uint64_t base = 4ull << 30;
	CU_ASSERT_EQUAL(dma_map_shadow_base(map), DMA_SHADOW_IOVA_BASE);
	dma_map_set_shadow_base(map, base);
	dma_map_set_mirror(map, &mirror_ops, &l);
	CU_ASSERT_EQUAL(l.maps, 0); /* the RAM already there is the caller's to map */
	struct dma_shadow *s;
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	for (unsigned i = 0; i < N; i++)
		driver_post(i);
	struct dma_queue_regs r = {RING, N, 0, N - 1, BSIZE};
	uint64_t dev = 0;
	/* Reserved first (mapped before the device is held off), then used by the start. */
	CU_ASSERT_EQUAL(dma_shadow_queue_reserve(s, 1, false, N, BSIZE), 0);
	CU_ASSERT_EQUAL(l.maps, 1);
	CU_ASSERT_EQUAL(dma_shadow_queue_reserve(s, 1, false, N, BSIZE), 0);
	CU_ASSERT_EQUAL(l.maps, 1); /* already there */
	CU_ASSERT_EQUAL(dma_shadow_queue_reserve(s, 1, false, 0, BSIZE), -EINVAL);
	CU_ASSERT_EQUAL(dma_shadow_queue_start(s, 1, false, &r, &dev), 0);
	CU_ASSERT_EQUAL(dev, base + DMA_SHADOW_SLOT_SIZE); /* slot 1 of the window at base */
	CU_ASSERT_EQUAL(l.maps, 1);
	CU_ASSERT_EQUAL(l.iova, dev);
	CU_ASSERT(l.len >= N * 16u + N * BSIZE); /* the ring and every buffer */
	CU_ASSERT_TRUE(l.writable);
	struct tdesc d;
	CU_ASSERT_EQUAL(dma_read(map, dev, &d, sizeof(d)), 0);
	CU_ASSERT(d.addr >= dev); /* buffers in the window too, where the device reaches them */
	dma_shadow_queue_stop(s, 1);
	CU_ASSERT_EQUAL(dma_shadow_queue_active(s, 1), false);
	CU_ASSERT_EQUAL(dma_shadow_queue_start(s, 1, false, &r, &dev), 0); /* a retake */
	CU_ASSERT_EQUAL(l.maps, 1);					   /* the same memory */
	CU_ASSERT_EQUAL(l.unmaps, 0);
	dma_shadow_queue_stop(s, 1);
	dma_shadow_destroy(s);
	CU_ASSERT_EQUAL(l.unmaps, 1);
	/* A guest ring at or above the window is not guest memory, even if mapped. */
	CU_ASSERT_FATAL(dma_shadow_create(map, &t_ops, DMA_MODE_SHADOW, on_dirty, NULL, &s) == 0);
	uint8_t *hi = aligned_alloc(4096, 4096);
	CU_ASSERT_FATAL(hi != NULL);
	const uint64_t above = base + 7 * DMA_SHADOW_SLOT_SIZE; /* a slot no queue uses here */
	CU_ASSERT_EQUAL(dma_map_add(map, above, 4096, hi, true), 0);
	struct dma_queue_regs bad = {above, 4, 0, 3, BSIZE};
	CU_ASSERT_EQUAL(dma_shadow_queue_start(s, 0, false, &bad, &dev), 0);
	CU_ASSERT_EQUAL(dev, above); /* left to the device: its ring is not shadowed */
	CU_ASSERT_FALSE(dma_shadow_queue_dev_base(s, 0));
	/* The IOMMU refuses: so does the map, and the queue is not taken over. */
	l.fail = -ENOMEM;
	CU_ASSERT_EQUAL(dma_map_add(map, 1ull << 40, 4096, hi, true), -ENOMEM);
	CU_ASSERT_EQUAL(dma_translate(map, 1ull << 40, 1, false), NULL);
	CU_ASSERT_EQUAL(dma_shadow_queue_start(s, 2, false, &r, &dev), -ENOMEM);
	CU_ASSERT_FALSE(dma_shadow_queue_active(s, 2));
	l.fail = 0;
	dma_shadow_destroy(s);
	dma_map_set_mirror(map, NULL, NULL);
	teardown();
	free(hi);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"mode names", test_modes},
	    {"shadow RX: copy on completion, dirty marks, handback", test_shadow_rx},
	    {"shadow RX across the ring's wrap", test_wrap},
	    {"guest rings and buffers outside guest memory", test_bad_addresses},
	    {"track mode marks without copying", test_track},
	    {"shadow TX write-backs", test_shadow_tx},
	    {"a split ring: no move, shadow buffers, a drain", test_split},
	    {"an IOMMU behind the map, the shadow window's base", test_mirror},
	};
	return gw_test_run("dma-shadow", cases, GW_TEST_COUNT(cases));
}
