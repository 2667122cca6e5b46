/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the VF's DMA engine (sriov/src/vf_dma.c) through its own ops table, on a
 * made-up device (a register file) with the igb profile's queue layout: the state table,
 * what each state does to the queue pages and the device, the guest's view of a ring taken
 * over, held ring writes, resets, and interrupts that wait for their completions.
 */
#include "vf_dma.h"

#include "godwit/dma.h"
#include "godwit/igb_ring.h"
#include "godwit/igb_vf.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM	(1u << 20)
#define RX_RING 0x10000u
#define RX_BUFS 0x20000u
#define TX_RING 0x30000u
#define NDESC	8u
#define NPAGES	4u

struct fake {
	uint32_t regs[IGB_VF_BAR0_SIZE / 4];
	uint8_t *ram;
	struct dma_map *map;
	enum dma_mode mode;
	enum sriov_page_mode page[NPAGES];
	unsigned page_sets;
	unsigned runs, stops; /* run op calls */
	bool running;
	bool live;	      /* works by itself: held off (run) around a retake */
	bool trapped_at_stop; /* the queue pages trapped when the device was last stopped */
	unsigned kicks, msix[32];
	int intx;
	uint64_t dirty_pages;
	/* Split pages: the device's view of each (the guest's is ram), the vCPUs' holds. */
	unsigned nsplit, holds, held;
	uint64_t split_gpa[4], split_len[4];
	uint8_t *split_dev[4];
};

static struct fake F;

static uint32_t f_rd(void *o, uint32_t off)
{
	return ((struct fake *)o)->regs[off / 4];
}
static void f_wr(void *o, uint32_t off, uint32_t v)
{
	((struct fake *)o)->regs[off / 4] = v;
}
static void f_write(void *o, uint64_t off, uint64_t v, unsigned size)
{
	struct fake *f = o;
	f->regs[off / 4] = (uint32_t)v;
	if (size == 8)
		f->regs[off / 4 + 1] = (uint32_t)(v >> 32);
}
static int f_run(void *o, bool run)
{
	struct fake *f = o;
	if (run)
		f->runs++;
	else
		f->stops++;
	if (!run)
		f->trapped_at_stop = f->page[2] == SRIOV_PAGE_TRAP && f->page[3] == SRIOV_PAGE_TRAP;
	f->running = run;
	return 0;
}
static struct dma_map *f_dma(void *o)
{
	return ((struct fake *)o)->map;
}
static void f_kick(void *o)
{
	((struct fake *)o)->kicks++;
}
static bool f_live(void *o)
{
	return ((struct fake *)o)->live;
}
static unsigned f_queues(void *o)
{
	(void)o;
	return 2;
}
static enum sriov_page_mode f_page(void *o, unsigned p)
{
	return ((struct fake *)o)->page[p];
}
static int f_set_page(void *o, unsigned p, enum sriov_page_mode m)
{
	struct fake *f = o;
	f->page[p] = m;
	f->page_sets++;
	return 0;
}
static void f_msix(void *o, unsigned v)
{
	((struct fake *)o)->msix[v]++;
}
static void f_intx(void *o, bool l)
{
	((struct fake *)o)->intx = l;
}
static enum dma_mode f_mode(void *o)
{
	return ((struct fake *)o)->mode;
}
static void f_mark(void *o, uint64_t iova, uint64_t len)
{
	(void)o;
	(void)iova;
	(void)len;
}
static void f_account(void *o, uint64_t pages, uint64_t bytes)
{
	(void)bytes;
	((struct fake *)o)->dirty_pages += pages;
}

static int f_hold(void *o, bool hold)
{
	struct fake *f = o;
	if (hold) {
		f->holds++;
		f->held++;
	} else {
		f->held--;
	}
	return 0;
}
static int f_split(void *o, uint64_t gpa, uint64_t len, void **dev)
{
	struct fake *f = o;
	CU_ASSERT(f->held > 0); /* the guest is held while what it sees changes */
	if (f->nsplit == 4 || gpa % 4096 || len % 4096 || gpa + len > RAM)
		return -EINVAL;
	uint8_t *v = malloc(len);
	memcpy(v, f->ram + gpa, len);
	f->split_gpa[f->nsplit] = gpa;
	f->split_len[f->nsplit] = len;
	f->split_dev[f->nsplit++] = v;
	*dev = v;
	return 0;
}
static int f_join(void *o, uint64_t gpa, uint64_t len, void *dev)
{
	struct fake *f = o;
	memcpy(f->ram + gpa, dev, len); /* the guest sees the device's pages again */
	for (unsigned i = 0; i < f->nsplit; i++)
		if (f->split_dev[i] == dev)
			f->split_dev[i] = NULL;
	free(dev);
	return 0;
}
/* The device's view of guest-physical address a (a split page's, else guest memory). */
static uint8_t *f_dev_at(uint64_t a)
{
	for (unsigned i = 0; i < F.nsplit; i++)
		if (F.split_dev[i] && a >= F.split_gpa[i] && a < F.split_gpa[i] + F.split_len[i])
			return F.split_dev[i] + (a - F.split_gpa[i]);
	return F.ram + a;
}

static const struct vf_dma_dev_ops fake_ops = {
    .reg_read = f_rd,
    .reg_write = f_wr,
    .write = f_write,
    .run = f_run,
    .dma = f_dma,
    .kick = f_kick,
    .live = f_live,
    .queues = f_queues,
    .page_mode = f_page,
    .set_page_mode = f_set_page,
    .msix = f_msix,
    .intx = f_intx,
    .dirty_mode = f_mode,
    .dirty_mark = f_mark,
    .dirty_account = f_account,
};

static struct vf_dma_dev_ops fake_split_ops;

/* A fresh device with RX queue 0 enabled on a guest ring of NDESC descriptors, the queue
 * pages mapped straight into the guest, and the engine running (the VM started). */
static struct vf_dma *rig(enum dma_mode mode)
{
	dma_map_destroy(F.map);
	free(F.ram);
	memset(&F, 0, sizeof(F));
	F.ram = calloc(1, RAM);
	CU_ASSERT_FATAL(F.ram != NULL);
	CU_ASSERT_FATAL(dma_map_create(&F.map) == 0);
	CU_ASSERT_FATAL(dma_map_add(F.map, 0, RAM, F.ram, true) == 0);
	F.mode = mode;
	for (unsigned p = 0; p < NPAGES; p++)
		F.page[p] = SRIOV_PAGE_DIRECT;
	union igb_rx_desc *ring = (union igb_rx_desc *)(F.ram + RX_RING);
	for (unsigned i = 0; i < NDESC; i++)
		ring[i].read.pkt_addr = RX_BUFS + 2048u * i;
	F.regs[IGB_RDBAL(0) / 4] = RX_RING;
	F.regs[IGB_RDLEN(0) / 4] = NDESC * 16u;
	F.regs[IGB_SRRCTL(0) / 4] = 2;
	F.regs[IGB_RDT(0) / 4] = NDESC - 1;
	F.regs[IGB_RXDCTL(0) / 4] = IGB_XDCTL_ENABLE;
	F.regs[IGB_TDBAL(0) / 4] = TX_RING; /* and TX queue 0, on an empty ring */
	F.regs[IGB_TDLEN(0) / 4] = NDESC * 16u;
	F.regs[IGB_TXDCTL(0) / 4] = IGB_XDCTL_ENABLE;
	struct vf_dma *d = NULL;
	CU_ASSERT_FATAL(vf_dma_create(&fake_ops, &F, &igb_vf_queue_layout, "vf-test", &d) == 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_STOP);
	CU_ASSERT_EQUAL(vf_dma_resume(d), 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_RUNNING);
	CU_ASSERT_TRUE(F.running);
	return d;
}

static void test_state_table(void)
{
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	unsigned runs = F.runs;
	vf_dma_log_start(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_TRUE(F.running);
	CU_ASSERT_EQUAL(F.runs, runs + 1); /* stopped around the takeover, running again */
	CU_ASSERT_EQUAL(F.stops, 1);
	CU_ASSERT_EQUAL(F.page[2], SRIOV_PAGE_TRAP); /* the doorbells trap */
	CU_ASSERT_EQUAL(F.page[3], SRIOV_PAGE_TRAP);
	CU_ASSERT_TRUE(F.trapped_at_stop); /* already when the device stopped for the takeover */
	CU_ASSERT_EQUAL(F.page[0], SRIOV_PAGE_DIRECT); /* the rest stays as it was */
	vf_dma_log_start(d);			       /* again: nothing changes */
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_EQUAL(F.stops, 1);
	CU_ASSERT_EQUAL(vf_dma_quiesce(d), 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_STOP_COPY);
	CU_ASSERT_FALSE(F.running);
	CU_ASSERT_EQUAL(F.page[2], SRIOV_PAGE_DIRECT); /* handed back at the stop */
	CU_ASSERT_EQUAL(F.regs[IGB_RDBAL(0) / 4], RX_RING);
	CU_ASSERT_EQUAL(vf_dma_resume(d), 0); /* a cancelled migration: pre-copy again */
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_TRUE(F.running);
	vf_dma_log_stop(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_RUNNING);
	CU_ASSERT_TRUE(F.running);
	CU_ASSERT_EQUAL(F.page[3], SRIOV_PAGE_DIRECT);
	CU_ASSERT_EQUAL(vf_dma_quiesce(d), 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_STOP);
	/* Logging that starts while the VM is stopped engages nothing until the VM runs. */
	vf_dma_log_start(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_STOP_COPY);
	CU_ASSERT_EQUAL(F.page[2], SRIOV_PAGE_DIRECT);
	CU_ASSERT_EQUAL(vf_dma_resume(d), 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	vf_dma_log_stop(d);
	CU_ASSERT_EQUAL(vf_dma_quiesce(d), 0);
	vf_dma_log_stop(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_STOP);
	CU_ASSERT_STRING_EQUAL(vf_dma_state_name(VF_DMA_STOP_COPY), "stop-copy");
	vf_dma_destroy(d);
}

static void test_mode_off(void)
{
	struct vf_dma *d = rig(DMA_MODE_OFF);
	vf_dma_log_start(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY);
	CU_ASSERT_EQUAL(F.page_sets, 0); /* no exits: nothing traps */
	CU_ASSERT_EQUAL(F.stops, 0);
	uint64_t v = 0;
	CU_ASSERT_FALSE(vf_dma_bar0_read(d, IGB_RDBAL(0), 4, &v));
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), 3, 4)); /* through, under the lock */
	CU_ASSERT_EQUAL(F.regs[IGB_RDT(0) / 4], 3);
	bool active = true;
	const char *mode = NULL;
	vf_dma_status(d, &active, &mode);
	CU_ASSERT_FALSE(active);
	CU_ASSERT_STRING_EQUAL(mode, "off");
	vf_dma_destroy(d);
}

static void test_shadow_takeover(void)
{
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	vf_dma_log_start(d);
	uint64_t dev = (uint64_t)F.regs[IGB_RDBAH(0) / 4] << 32 | F.regs[IGB_RDBAL(0) / 4];
	CU_ASSERT(dev >= DMA_SHADOW_IOVA_BASE); /* the device works on the shadow ring */
	uint64_t tdev = (uint64_t)F.regs[IGB_TDBAH(0) / 4] << 32 | F.regs[IGB_TDBAL(0) / 4];
	CU_ASSERT(tdev >= DMA_SHADOW_IOVA_BASE); /* TX too */
	CU_ASSERT(tdev != dev);
	uint64_t v = 0;
	CU_ASSERT_TRUE(vf_dma_bar0_read(d, IGB_RDBAL(0), 4, &v));
	CU_ASSERT_EQUAL(v, RX_RING); /* the guest sees its own */
	CU_ASSERT_TRUE(vf_dma_bar0_read(d, IGB_RDBAL(0), 8, &v));
	CU_ASSERT_EQUAL(v, RX_RING);
	CU_ASSERT_FALSE(vf_dma_bar0_read(d, IGB_RDH(0), 4, &v));       /* the device's own value */
	CU_ASSERT_FALSE(vf_dma_bar0_read(d, IGB_RDBAL(0) + 1, 4, &v)); /* unaligned */
	bool active = false;
	const char *mode = NULL;
	vf_dma_status(d, &active, &mode);
	CU_ASSERT_TRUE(active);
	CU_ASSERT_STRING_EQUAL(mode, "shadow");
	/* The device completes descriptor 0; the round copies it into guest memory. */
	union igb_rx_desc wb = {0};
	wb.wb.status = IGB_RXD_STAT_DD;
	wb.wb.length = 60;
	CU_ASSERT_EQUAL(dma_write(F.map, dev, &wb, sizeof(wb)), 0);
	F.regs[IGB_RDH(0) / 4] = 1;
	vf_dma_round(d);
	const union igb_rx_desc *g = (const union igb_rx_desc *)(F.ram + RX_RING);
	CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
	CU_ASSERT(F.dirty_pages >= 1);
	/* A doorbell reaches the device (after the shadow ring has the descriptors). */
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), 0, 4));
	CU_ASSERT_EQUAL(F.regs[IGB_RDT(0) / 4], 0);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	vf_dma_log_stop(d);
	CU_ASSERT_EQUAL(F.regs[IGB_RDBAL(0) / 4], RX_RING);
	CU_ASSERT_EQUAL(F.regs[IGB_RDBAH(0) / 4], 0);
	CU_ASSERT_EQUAL(F.regs[IGB_TDBAL(0) / 4], TX_RING);
	CU_ASSERT_EQUAL(F.regs[IGB_TDBAH(0) / 4], 0);
	vf_dma_destroy(d);
}

static void test_reprogram_held(void)
{
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	vf_dma_log_start(d);
	unsigned kicks = F.kicks;
	/* The guest shrinks the ring: held while the device works on the shadow. */
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDLEN(0), 4 * 16u, 4));
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_RETAKE);
	CU_ASSERT_EQUAL(F.regs[IGB_RDLEN(0) / 4], NDESC * 16u);
	CU_ASSERT(F.kicks > kicks);
	uint64_t v = 0;
	CU_ASSERT_TRUE(vf_dma_bar0_read(d, IGB_RDLEN(0), 4, &v));
	CU_ASSERT_EQUAL(v, 4 * 16u); /* read back as written */
	/* A doorbell while a retake is pending waits for it. */
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), 2, 4));
	CU_ASSERT_EQUAL(F.regs[IGB_RDT(0) / 4], NDESC - 1);
	CU_ASSERT_TRUE(vf_dma_bar0_read(d, IGB_RDT(0), 4, &v));
	CU_ASSERT_EQUAL(v, 2);
	unsigned stops = F.stops;
	vf_dma_round(d);		 /* the device's thread: the queues are taken over again */
	CU_ASSERT_EQUAL(F.stops, stops); /* between its rounds: no stop needed */
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_EQUAL(F.regs[IGB_RDLEN(0) / 4], 4 * 16u);
	CU_ASSERT_EQUAL(F.regs[IGB_RDT(0) / 4], 2);
	/* TX has no SRRCTL: a write there goes straight through, no retake. */
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_QREG(1, 0, IGB_Q_SRRCTL), 5, 4));
	CU_ASSERT_EQUAL(F.regs[IGB_QREG(1, 0, IGB_Q_SRRCTL) / 4], 5);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	/* A register outside the queues and the reset register is not the engine's. */
	CU_ASSERT_FALSE(vf_dma_bar0_write(d, IGB_EIMS, 1, 4));
	vf_dma_destroy(d);
}

/* A device that works by itself (a VFIO VF): a retake holds it off meanwhile, and a round
 * with nothing to retake leaves it alone. */
static void test_live_retake(void)
{
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	F.live = true;
	vf_dma_log_start(d);
	unsigned stops = F.stops, runs = F.runs;
	vf_dma_round(d);
	CU_ASSERT_EQUAL(F.stops, stops);
	/* The guest makes its ring twice as long (RDLEN is in units of 128 bytes). */
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDLEN(0), 2 * NDESC * 16u, 4));
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), NDESC + 3, 4));
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_RETAKE);
	vf_dma_round(d); /* the relay's round */
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_EQUAL(F.stops, stops + 1);
	CU_ASSERT_EQUAL(F.runs, runs + 1);
	CU_ASSERT_TRUE(F.running);
	CU_ASSERT_EQUAL(F.regs[IGB_RDLEN(0) / 4], 2 * NDESC * 16u);
	CU_ASSERT_EQUAL(F.regs[IGB_RDT(0) / 4], NDESC + 3);
	uint64_t dev = (uint64_t)F.regs[IGB_RDBAH(0) / 4] << 32 | F.regs[IGB_RDBAL(0) / 4];
	CU_ASSERT(dev >= DMA_SHADOW_IOVA_BASE); /* on a shadow ring again */
	vf_dma_log_stop(d);
	CU_ASSERT_EQUAL(F.regs[IGB_RDBAL(0) / 4], RX_RING);
	vf_dma_destroy(d);
}

/* The hardware on RX queue 0: one frame of len bytes filled with fill into descriptor i, on
 * the device's view of the ring, into the buffer that view names (shadow memory through the
 * IOVA map). */
static void f_device_rx(unsigned i, unsigned len, uint8_t fill)
{
	union igb_rx_desc *dv = (union igb_rx_desc *)f_dev_at(RX_RING) + i;
	uint64_t buf = dv->read.pkt_addr;
	uint8_t frame[128];
	memset(frame, fill, sizeof(frame));
	if (buf >= DMA_SHADOW_IOVA_BASE) {
		CU_ASSERT_EQUAL(dma_write(F.map, buf, frame, len), 0);
	} else {
		memcpy(f_dev_at(buf), frame, len);
	}
	union igb_rx_desc wb = {0};
	wb.wb.status = IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP;
	wb.wb.length = (uint16_t)len;
	*dv = wb;
	F.regs[IGB_RDH(0) / 4] = (i + 1) % NDESC;
}

/* rig, in shadow mode, for a live device whose rings' pages split through split_op. */
static struct vf_dma *rig_split(int (*split_op)(void *, uint64_t, uint64_t, void **))
{
	fake_split_ops = fake_ops;
	fake_split_ops.hold_guest = f_hold;
	fake_split_ops.split = split_op;
	fake_split_ops.join = f_join;
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	vf_dma_destroy(d);
	CU_ASSERT_FATAL(vf_dma_create(&fake_split_ops, &F, &igb_vf_queue_layout, "vf-test", &d) ==
			0);
	CU_ASSERT_EQUAL(vf_dma_resume(d), 0);
	F.live = true;
	return d;
}

/* A live device whose rings' pages can be split (a VFIO VF): shadow mode goes on and, once
 * traffic drained the shadow buffers, off without the device held off; the guest's copy and
 * the device's view kept in step. Without traffic the handback holds it off after all. */
static void test_split_rings(void)
{
	for (int traffic = 1; traffic >= 0; traffic--) {
		struct vf_dma *d = rig_split(f_split);
		unsigned stops = F.stops;
		vf_dma_log_start(d);
		CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
		CU_ASSERT_EQUAL(F.stops, stops); /* never held off */
		CU_ASSERT_EQUAL(F.holds, 1);
		CU_ASSERT_EQUAL(F.held, 0);
		CU_ASSERT_EQUAL(F.nsplit, 2); /* the RX ring's page and the TX ring's */
		CU_ASSERT_EQUAL(F.regs[IGB_RDBAL(0) / 4], RX_RING); /* the rings stay */
		CU_ASSERT_EQUAL(F.regs[IGB_TDBAL(0) / 4], TX_RING);
		CU_ASSERT_EQUAL(F.page[2], SRIOV_PAGE_TRAP);
		/* The device completes descriptor 0, which it owned at the split: the guest's
		 * buffer, written directly, reaches the guest's copy of the ring on a round. */
		f_device_rx(0, 60, 0xA0);
		union igb_rx_desc *g = (union igb_rx_desc *)(F.ram + RX_RING);
		CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, 0);
		vf_dma_round(d);
		CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
		CU_ASSERT_EQUAL(F.ram[RX_BUFS], 0xA0);
		/* The guest posts descriptor 7: its copy keeps its buffer, the device's view
		 * names a shadow buffer. */
		g[7].read.pkt_addr = RX_BUFS + 2048u * 7;
		g[7].read.hdr_addr = 0;
		CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), 0, 4));
		union igb_rx_desc *dv = (union igb_rx_desc *)f_dev_at(RX_RING);
		CU_ASSERT(dv[7].read.pkt_addr >= DMA_SHADOW_IOVA_BASE);
		CU_ASSERT_EQUAL(g[7].read.pkt_addr, RX_BUFS + 2048u * 7);
		if (traffic) {
			for (unsigned i = 1; i < NDESC; i++)
				f_device_rx(i, 64, (uint8_t)(0xB0 + i));
			CU_ASSERT_EQUAL(F.ram[RX_BUFS + 2048u * 7], 0); /* in its shadow buffer */
		}
		vf_dma_log_stop(d);
		CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_RUNNING);
		CU_ASSERT_EQUAL(F.stops, stops + (traffic ? 0 : 1));
		CU_ASSERT_TRUE(F.running);
		CU_ASSERT_EQUAL(F.split_dev[0], NULL); /* joined */
		CU_ASSERT_EQUAL(F.split_dev[1], NULL);
		CU_ASSERT_EQUAL(F.held, 0);
		CU_ASSERT_EQUAL(F.page[2], SRIOV_PAGE_DIRECT);
		CU_ASSERT_EQUAL(F.regs[IGB_RDBAL(0) / 4], RX_RING);
		if (traffic) {
			/* Every completion reached the guest, the shadowed one copied. */
			CU_ASSERT_EQUAL(F.ram[RX_BUFS + 2048u * 7], 0xB7);
			CU_ASSERT_EQUAL(g[7].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
			CU_ASSERT_EQUAL(g[3].wb.length, 64);
		} else {
			/* Held off, the device's view got the guest's own descriptor back. */
			CU_ASSERT_EQUAL(g[7].read.pkt_addr, RX_BUFS + 2048u * 7);
		}
		vf_dma_destroy(d);
	}
}

/* The device completes descriptor 0 after the head was read for the split, either before the
 * guest's copy of the ring page is taken (the copy holds the completion) or after it (only
 * the device's view does), or moves its head before it writes the descriptor back:
 * f_split_racy. The guest sees it either way, handles it and re-arms
 * the descriptor with another buffer; the shadow must neither write the old completion over
 * the re-arm nor refuse the doorbell, and the frame the device puts there a lap later lands
 * in the buffer the guest posted. */
static enum { RACE_NONE, RACE_EARLY, RACE_LATE, RACE_AHEAD } race;
static int f_split_racy(void *o, uint64_t gpa, uint64_t len, void **dev)
{
	if (race == RACE_EARLY && gpa <= RX_RING && RX_RING < gpa + len) {
		race = RACE_NONE;
		f_device_rx(0, 60, 0xC0); /* nothing split yet: one memory for both */
	}
	int rc = f_split(o, gpa, len, dev);
	if (race >= RACE_LATE && gpa <= TX_RING && TX_RING < gpa + len) {
		if (race == RACE_LATE)
			f_device_rx(0, 60, 0xC0); /* the RX page split before: the device's view */
		else
			F.regs[IGB_RDH(0) / 4] = 1; /* a head ahead of its write-back */
		race = RACE_NONE;
	}
	return rc;
}

static void test_split_race(void)
{
	const uint64_t rearm = RX_BUFS + 2048u * NDESC; /* a buffer the device never had */
	for (int how = RACE_EARLY; how <= RACE_AHEAD; how++) {
		struct vf_dma *d = rig_split(f_split_racy);
		race = how;
		vf_dma_log_start(d);
		CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
		CU_ASSERT_EQUAL(race, RACE_NONE);
		union igb_rx_desc *g = (union igb_rx_desc *)(F.ram + RX_RING);
		if (how == RACE_AHEAD) {
			/* Not written back yet: the engine gives it to the guest once it is. */
			CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, 0);
			f_device_rx(0, 60, 0xC0);
			vf_dma_round(d);
		}
		CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
		CU_ASSERT_EQUAL(g[0].wb.length, 60);
		CU_ASSERT_EQUAL(F.ram[RX_BUFS], 0xC0);
		/* The guest handles descriptor 0 and gives it back with another buffer. */
		g[0].read.pkt_addr = rearm;
		g[0].read.hdr_addr = 0;
		CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), 0, 4));
		union igb_rx_desc *dv = (union igb_rx_desc *)f_dev_at(RX_RING);
		CU_ASSERT(dv[7].read.pkt_addr >= DMA_SHADOW_IOVA_BASE); /* the doorbell was taken */
		vf_dma_round(d);
		CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, 0); /* the re-arm stands */
		CU_ASSERT_EQUAL(g[0].read.pkt_addr, rearm);
		/* One lap: the device fills 1..7, the guest takes each and gives it back, then
		 * the device fills descriptor 0 again. */
		for (unsigned i = 1; i < NDESC; i++) {
			f_device_rx(i, 64, (uint8_t)(0xB0 + i));
			vf_dma_round(d);
			CU_ASSERT_EQUAL(g[i].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
			CU_ASSERT_EQUAL(F.ram[RX_BUFS + 2048u * i], 0xB0 + i);
			g[i].read.pkt_addr = RX_BUFS + 2048u * i;
			g[i].read.hdr_addr = 0;
			CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_RDT(0), i, 4));
		}
		f_device_rx(0, 64, 0xD0);
		vf_dma_round(d);
		CU_ASSERT_EQUAL(g[0].wb.status & IGB_RXD_STAT_DD, IGB_RXD_STAT_DD);
		CU_ASSERT_EQUAL(F.ram[rearm], 0xD0); /* where the guest posted it */
		CU_ASSERT_NOT_EQUAL(F.ram[0], 0xD0);
		vf_dma_log_stop(d);
		CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_RUNNING);
		vf_dma_destroy(d);
	}
}

static void test_reset(void)
{
	struct vf_dma *d = rig(DMA_MODE_TRACK);
	vf_dma_log_start(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_CTRL, 0, 4)); /* no reset bit: through */
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	CU_ASSERT_TRUE(vf_dma_bar0_write(d, IGB_CTRL, IGB_CTRL_RST, 4));
	CU_ASSERT_EQUAL(F.regs[IGB_CTRL / 4], IGB_CTRL_RST);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_RETAKE);
	F.regs[IGB_RXDCTL(0) / 4] = 0; /* the reset disabled the queue */
	vf_dma_round(d);
	CU_ASSERT_EQUAL(vf_dma_state(d), VF_DMA_PRE_COPY_ENGAGED);
	vf_dma_destroy(d);
}

static void test_interrupts_wait(void)
{
	struct vf_dma *d = rig(DMA_MODE_SHADOW);
	CU_ASSERT_FALSE(vf_dma_defer_msix(d, 1)); /* outside a migration: straight through */
	vf_dma_log_start(d);
	CU_ASSERT_TRUE(vf_dma_defer_msix(d, 1));
	CU_ASSERT_TRUE(vf_dma_defer_intx(d, true));
	CU_ASSERT_FALSE(vf_dma_defer_intx(d, false)); /* lowering never waits */
	CU_ASSERT_TRUE(vf_dma_defer_intx(d, true));
	CU_ASSERT_EQUAL(F.msix[1], 0);
	vf_dma_round(d);
	CU_ASSERT_EQUAL(F.msix[1], 1);
	CU_ASSERT_EQUAL(F.intx, 1);
	CU_ASSERT_TRUE(vf_dma_defer_msix(d, 2));
	vf_dma_log_stop(d); /* handing back delivers what waited */
	CU_ASSERT_EQUAL(F.msix[2], 1);
	CU_ASSERT_FALSE(vf_dma_defer_msix(d, 2));
	vf_dma_destroy(d);
	d = rig(DMA_MODE_TRACK); /* track: the guest's rings, nothing to wait for */
	vf_dma_log_start(d);
	CU_ASSERT_FALSE(vf_dma_defer_msix(d, 0));
	vf_dma_destroy(d);
}

static void test_bad_layout(void)
{
	struct sriov_queue_layout l = igb_vf_queue_layout;
	l.nprog[0] = SRIOV_QPROG_MAX + 1;
	struct vf_dma *d = NULL;
	CU_ASSERT_EQUAL(vf_dma_create(&fake_ops, &F, &l, "bad", &d), -EINVAL);
	CU_ASSERT_PTR_NULL(d);
	l = igb_vf_queue_layout;
	l.max_queues = DMA_SHADOW_MAX_QUEUES / 2 + 1; /* more than the shadow's slots hold */
	CU_ASSERT_EQUAL(vf_dma_create(&fake_ops, &F, &l, "bad", &d), -EINVAL);
	CU_ASSERT_PTR_NULL(d);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"state table", test_state_table},
	    {"mode off: nothing engaged", test_mode_off},
	    {"shadow takeover and handback", test_shadow_takeover},
	    {"ring reprogrammed: held, retaken", test_reprogram_held},
	    {"a live device is held off around a retake", test_live_retake},
	    {"split rings: no hold on and off, a drain", test_split_rings},
	    {"split rings: a completion during the split", test_split_race},
	    {"reset while engaged", test_reset},
	    {"interrupts wait for completions", test_interrupts_wait},
	    {"bad layout refused", test_bad_layout},
	};
	int rc = gw_test_run("vf_dma", cases, GW_TEST_COUNT(cases));
	dma_map_destroy(F.map);
	free(F.ram);
	return rc;
}
