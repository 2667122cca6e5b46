/* SPDX-License-Identifier: Apache-2.0 */
/* Shadow rings and buffers, completion tracking, ring format from a profile (docs/devices.md). */
#include "godwit/dma_shadow.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE		4096ull
#define MAX_DESC	4096u
#define MAX_SHADOW_BUFS (256ull << 20) /* shadow buffer space per queue */

struct sq {
	bool active, tx, shadowed;
	uint64_t gbase; /* guest ring */
	/* The slot's shadow memory: the ring, then (RX) n buffers of bsize, mapped at sbase in
	 * the device's IOVA map. It outlives a stop (a retake reuses it) and may be reserved
	 * before the queue starts (dma_shadow_queue_reserve): mapping it can be slow (an IOMMU
	 * pins it), and the device is held off while a queue starts. */
	uint64_t sbase;
	uint8_t *mem;
	size_t mem_len, ring_len;
	uint32_t n, bsize;
	uint32_t posted; /* next descriptor to take from the guest's ring */
	uint32_t done;	 /* next descriptor to complete */
	uint64_t *gbuf;	 /* RX: the guest's buffer address per descriptor */
	uint8_t *rewritten;
	/* A split ring (dma_shadow_queue_start_split): the device's view of the guest's ring
	 * address, NULL when the device works on the shadow ring in mem. */
	uint8_t *dring;
	bool direct;	     /* posts reach the device as the driver wrote them (a drain) */
	uint32_t nrewritten; /* posted descriptors naming a shadow buffer, not yet complete */
};

struct dma_shadow {
	pthread_mutex_t lock;
	struct dma_map *map;
	const struct dma_ring_ops *ops;
	enum dma_mode mode;
	dma_dirty_fn dirty;
	void *opaque;
	struct sq q[DMA_SHADOW_MAX_QUEUES];
	struct dma_shadow_stats st;
};

static const char *const mode_names[] = {"off", "shadow", "track"};

const char *dma_mode_name(enum dma_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

int dma_mode_parse(const char *s, enum dma_mode *out)
{
	for (unsigned i = 0; i < 3; i++) {
		if (s && strcmp(s, mode_names[i]) == 0) {
			*out = (enum dma_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

int dma_shadow_create(struct dma_map *map, const struct dma_ring_ops *ops, enum dma_mode mode,
		      dma_dirty_fn dirty, void *opaque, struct dma_shadow **out)
{
	if (!map || !ops || !dirty || !ops->rx_buf_addr || !ops->rx_set_buf_addr ||
	    !ops->rx_done_len || !ops->tx_done || ops->desc_size == 0 || ops->desc_size > 64 ||
	    ops->desc_size % 8 || mode == DMA_MODE_OFF)
		return -EINVAL;
	struct dma_shadow *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->map = map;
	s->ops = ops;
	s->mode = mode;
	s->dirty = dirty;
	s->opaque = opaque;
	*out = s;
	return 0;
}

/* The queue's state, not its shadow memory. */
static void sq_reset(struct sq *q)
{
	free(q->gbuf);
	free(q->rewritten);
	q->gbuf = NULL;
	q->rewritten = NULL;
	q->active = q->tx = q->shadowed = q->direct = false;
	q->dring = NULL;
	q->nrewritten = 0;
	q->gbase = 0;
	q->ring_len = 0;
	q->n = q->bsize = q->posted = q->done = 0;
}

static void sq_unmap(struct dma_shadow *s, struct sq *q)
{
	if (q->mem) {
		dma_map_remove(s->map, q->sbase);
		munmap(q->mem, q->mem_len);
	}
	q->mem = NULL;
	q->mem_len = 0;
	q->sbase = 0;
}

static void sq_free(struct dma_shadow *s, struct sq *q)
{
	sq_reset(q);
	sq_unmap(s, q);
}

/* Caller holds s->lock. Shadow memory of at least len bytes for slot: kept if it has that
 * much, else made anew and mapped at the slot's IOVA. */
static int sq_map(struct dma_shadow *s, struct sq *q, unsigned slot, size_t len)
{
	if (q->mem && q->mem_len >= len)
		return 0;
	sq_unmap(s, q);
	q->mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->mem == MAP_FAILED) {
		q->mem = NULL;
		return -ENOMEM;
	}
	q->mem_len = len;
	q->sbase = dma_map_shadow_base(s->map) + slot * DMA_SHADOW_SLOT_SIZE;
	int rc = dma_map_add(s->map, q->sbase, q->mem_len, q->mem, true);
	if (rc) {
		munmap(q->mem, q->mem_len);
		q->mem = NULL;
		q->mem_len = 0;
	}
	return rc;
}

/* The shadow memory a queue of n descriptors needs, and its ring's part; -ENOSPC if too
 * much. */
static int sq_need(const struct dma_shadow *s, bool tx, uint32_t n, uint32_t bsize, size_t *len,
		   size_t *ring_len)
{
	*ring_len = ((uint64_t)n * s->ops->desc_size + PAGE - 1) & ~(PAGE - 1);
	uint64_t bufs = tx ? 0 : (uint64_t)n * bsize;
	if (bufs > MAX_SHADOW_BUFS)
		return -ENOSPC;
	*len = *ring_len + ((bufs + PAGE - 1) & ~(PAGE - 1));
	return 0;
}

int dma_shadow_queue_reserve(struct dma_shadow *s, unsigned slot, bool tx, uint32_t n,
			     uint32_t buf_size)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES || n == 0 || n > MAX_DESC)
		return -EINVAL;
	if (s->mode != DMA_MODE_SHADOW)
		return 0;
	size_t len, ring_len;
	int rc = sq_need(s, tx, n, buf_size, &len, &ring_len);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	rc = sq_map(s, &s->q[slot], slot, len);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void dma_shadow_destroy(struct dma_shadow *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < DMA_SHADOW_MAX_QUEUES; i++)
		sq_free(s, &s->q[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

enum dma_mode dma_shadow_mode(const struct dma_shadow *s)
{
	return s->mode;
}

/* Guest memory: mapped, and below the shadow window (a guest must not aim at our memory). */
static bool guest_ok(struct dma_shadow *s, uint64_t iova, uint64_t len, bool write)
{
	uint64_t base = dma_map_shadow_base(s->map);
	return iova < base && len <= base - iova && dma_translate(s->map, iova, len, write) != NULL;
}

static void mark(struct dma_shadow *s, uint64_t iova, uint64_t len)
{
	if (!len)
		return;
	s->dirty(s->opaque, iova, len);
	s->st.pages_dirtied += (iova + len - 1) / PAGE - iova / PAGE + 1;
}

/* Writes one descriptor into the guest's ring a word at a time, low to high, so that a
 * driver polling the status (in the last words, as in every format we know) never sees it
 * before the rest. */
static void put_guest_desc(struct dma_shadow *s, const struct sq *q, uint32_t i, const void *d)
{
	unsigned ds = s->ops->desc_size;
	uint64_t a = q->gbase + (uint64_t)i * ds;
	uint64_t *g = dma_translate(s->map, a, ds, true);
	if (!g)
		return; /* checked at start: the guest's ring cannot move without a restart */
	const uint64_t *w = d;
	for (unsigned k = 0; k < ds / 8; k++)
		__atomic_store_n(&g[k], w[k], __ATOMIC_RELEASE);
	mark(s, a, ds);
}

/* Descriptor i where the device reads and writes it. */
static uint8_t *dev_desc(const struct dma_shadow *s, const struct sq *q, uint32_t i)
{
	return (q->dring ? q->dring : q->mem) + (size_t)i * s->ops->desc_size;
}

static int queue_start(struct dma_shadow *s, unsigned slot, bool tx, const struct dma_queue_regs *r,
		       void *dring, uint64_t *dev_base);
static bool post_locked(struct dma_shadow *s, struct sq *q, uint32_t tail, bool write_dev);

int dma_shadow_queue_start(struct dma_shadow *s, unsigned slot, bool tx,
			   const struct dma_queue_regs *r, uint64_t *dev_base)
{
	return queue_start(s, slot, tx, r, NULL, dev_base);
}

int dma_shadow_queue_start_split(struct dma_shadow *s, unsigned slot, bool tx,
				 const struct dma_queue_regs *r, void *dev_ring)
{
	uint64_t dev_base;
	if (!dev_ring || s->mode != DMA_MODE_SHADOW)
		return -EINVAL;
	return queue_start(s, slot, tx, r, dev_ring, &dev_base);
}

static int queue_start(struct dma_shadow *s, unsigned slot, bool tx, const struct dma_queue_regs *r,
		       void *dring, uint64_t *dev_base)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return -EINVAL;
	*dev_base = r->base;
	unsigned ds = s->ops->desc_size;
	pthread_mutex_lock(&s->lock);
	struct sq *q = &s->q[slot];
	sq_reset(q);
	int rc = 0;
	/* A ring the device itself would refuse, or one outside guest memory: left alone, so
	 * the device faults on it exactly as it would without us. */
	if (r->n == 0 || r->n > MAX_DESC || r->head >= r->n || r->tail >= r->n ||
	    !guest_ok(s, r->base, (uint64_t)r->n * ds, true)) {
		s->st.bad_addrs++;
		goto out_unlock;
	}
	q->tx = tx;
	q->n = r->n;
	q->gbase = r->base;
	q->bsize = tx ? 0 : r->buf_size;
	q->posted = q->done = r->head;
	if (!tx) {
		q->gbuf = calloc(r->n, sizeof(*q->gbuf));
		q->rewritten = calloc(r->n, 1);
		if (!q->gbuf || !q->rewritten) {
			rc = -ENOMEM;
			goto err_reset;
		}
	}
	if (s->mode == DMA_MODE_SHADOW) {
		size_t len;
		rc = sq_need(s, tx, r->n, q->bsize, &len, &q->ring_len);
		if (rc == 0)
			rc = sq_map(s, q, slot, len);
		if (rc)
			goto err_reset;
		q->shadowed = true;
		*dev_base = q->sbase;
	}
	q->active = true;
	if (dring) {
		/* The device keeps the guest's ring address and the descriptors it owns, as the
		 * driver posted them: they name the guest's buffers, and complete as in track.
		 * What the driver posts from now on names shadow buffers. */
		q->dring = dring;
		*dev_base = r->base;
		q->direct = true;
		post_locked(s, q, r->tail, false);
		q->direct = false;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	pthread_mutex_unlock(&s->lock);
	/* The device's descriptors [head, tail) move over now. */
	dma_shadow_queue_post(s, slot, r->tail);
	return 0;

err_reset:
	sq_reset(q);
out_unlock:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* RX descriptor i of the guest's ring, as posted: into the shadow ring with the buffer
 * address rewritten, or (track) just its buffer address noted. */
static void post_rx(struct dma_shadow *s, struct sq *q, uint32_t i, uint8_t *d)
{
	uint64_t gb = s->ops->rx_buf_addr(d);
	q->gbuf[i] = gb;
	q->rewritten[i] = 0;
	if (!q->shadowed || q->direct)
		return;
	/* A buffer outside guest memory keeps its address: the device faults on it and
	 * completes the descriptor with an error, as without the shadow. */
	if (q->bsize && guest_ok(s, gb, q->bsize, true)) {
		s->ops->rx_set_buf_addr(d, q->sbase + q->ring_len + (uint64_t)i * q->bsize);
		q->rewritten[i] = 1;
		q->nrewritten++;
	} else {
		s->st.bad_addrs++;
	}
}

/* Caller holds s->lock. Takes the driver's descriptors up to tail; write_dev: into the ring
 * the device reads (not for those a split ring's device already has). False when the tail
 * was refused. */
static bool post_locked(struct dma_shadow *s, struct sq *q, uint32_t tail, bool write_dev)
{
	unsigned ds = s->ops->desc_size;
	if (!q->active || tail >= q->n)
		return true; /* a bad tail stops the device's queue by itself */
	/* A tail that went backwards, or further than the free descriptors, would have us
	 * overwrite shadow descriptors the device owns: not followed (the device sees it and
	 * finds only what was posted before). */
	uint32_t owned = (q->posted + q->n - q->done) % q->n;
	if ((tail + q->n - q->posted) % q->n > q->n - 1 - owned) {
		s->st.tails_refused++;
		return false;
	}
	while (q->posted != tail) {
		uint32_t i = q->posted;
		uint8_t d[64];
		if (dma_read(s->map, q->gbase + (uint64_t)i * ds, d, ds))
			break;
		if (!q->tx)
			post_rx(s, q, i, d);
		if (q->shadowed && write_dev)
			memcpy(dev_desc(s, q, i), d, ds); /* a descriptor the driver owned */
		q->posted = (i + 1) % q->n;
		s->st.descs_posted++;
	}
	return true;
}

bool dma_shadow_queue_post(struct dma_shadow *s, unsigned slot, uint32_t tail)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return true;
	pthread_mutex_lock(&s->lock);
	bool took = post_locked(s, &s->q[slot], tail, true);
	pthread_mutex_unlock(&s->lock);
	return took;
}

/* One descriptor the device is done with (its head passed it). */
static bool complete_one(struct dma_shadow *s, struct sq *q, uint32_t i)
{
	unsigned ds = s->ops->desc_size;
	uint64_t ga = q->gbase + (uint64_t)i * ds;
	if (!q->shadowed) {
		/* track: the device wrote the guest's descriptor and (RX) the buffer noted when it
		 * was posted. The descriptor is not read back: the driver may have reposted it
		 * already, so the whole buffer is marked. */
		if (!q->tx && guest_ok(s, q->gbuf[i], q->bsize, true))
			mark(s, q->gbuf[i], q->bsize);
		mark(s, ga, ds);
		return true;
	}
	const uint8_t *d = dev_desc(s, q, i);
	if (q->tx) {
		/* The device writes back only descriptors with RS (a context descriptor or the
		 * first of a multi-descriptor frame has none): the others are done unchanged, and
		 * the guest's copy already says what they say. */
		if (s->ops->tx_done(d))
			put_guest_desc(s, q, i, d);
		return true;
	}
	int len = s->ops->rx_done_len(d);
	if (len < 0)
		return false; /* not written back: a head no device would report */
	if (q->rewritten[i]) {
		q->rewritten[i] = 0;
		q->nrewritten--;
		if (len > 0) {
			uint64_t l = (uint64_t)len < q->bsize ? (uint64_t)len : q->bsize;
			const uint8_t *src = q->mem + q->ring_len + (size_t)i * q->bsize;
			if (dma_write(s->map, q->gbuf[i], src, l) == 0) {
				mark(s, q->gbuf[i], l);
				s->st.bytes_copied += l;
			}
		}
	} else {
		/* The device used the guest's own buffer address: whatever it managed to write
		 * went straight to guest memory. */
		if (len > 0 && guest_ok(s, q->gbuf[i], (uint64_t)len, true))
			mark(s, q->gbuf[i], (uint64_t)len);
	}
	/* The descriptor last: the data is in place before the driver can see it done. The
	 * written-back format carries no buffer address, so nothing of ours leaks. */
	put_guest_desc(s, q, i, d);
	return true;
}

void dma_shadow_queue_complete(struct dma_shadow *s, unsigned slot, uint32_t head)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return;
	pthread_mutex_lock(&s->lock);
	struct sq *q = &s->q[slot];
	if (!q->active || head >= q->n)
		goto out_unlock;
	/* Only what was posted can complete; a head beyond that is not ours to believe. */
	uint32_t limit = (q->posted + q->n - q->done) % q->n;
	uint32_t k = 0;
	while (q->done != head && k++ < limit) {
		if (!complete_one(s, q, q->done))
			break;
		q->done = (q->done + 1) % q->n;
		s->st.descs_completed++;
	}
out_unlock:
	pthread_mutex_unlock(&s->lock);
}

uint64_t dma_shadow_queue_stop(struct dma_shadow *s, unsigned slot)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return 0;
	pthread_mutex_lock(&s->lock);
	uint64_t base = s->q[slot].gbase;
	sq_reset(&s->q[slot]); /* its shadow memory stays for a retake */
	pthread_mutex_unlock(&s->lock);
	return base;
}

void dma_shadow_queue_drop(struct dma_shadow *s, unsigned slot)
{
	(void)dma_shadow_queue_stop(s, slot);
}

bool dma_shadow_queue_active(const struct dma_shadow *s, unsigned slot)
{
	return slot < DMA_SHADOW_MAX_QUEUES && s->q[slot].active;
}

uint64_t dma_shadow_queue_guest_base(const struct dma_shadow *s, unsigned slot)
{
	return dma_shadow_queue_active(s, slot) ? s->q[slot].gbase : 0;
}

uint64_t dma_shadow_queue_dev_base(const struct dma_shadow *s, unsigned slot)
{
	return dma_shadow_queue_active(s, slot) && s->q[slot].shadowed && !s->q[slot].dring
		   ? s->q[slot].sbase
		   : 0;
}

bool dma_shadow_queue_drain(struct dma_shadow *s, unsigned slot)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return true;
	pthread_mutex_lock(&s->lock);
	struct sq *q = &s->q[slot];
	q->direct = true;
	bool drained = !q->active || q->nrewritten == 0;
	pthread_mutex_unlock(&s->lock);
	return drained;
}

bool dma_shadow_queue_device_owned(struct dma_shadow *s, unsigned slot, uint32_t *first,
				   uint32_t *count, uint32_t *n)
{
	if (slot >= DMA_SHADOW_MAX_QUEUES)
		return false;
	pthread_mutex_lock(&s->lock);
	struct sq *q = &s->q[slot];
	bool a = q->active;
	if (a) {
		*first = q->done;
		*count = (q->posted + q->n - q->done) % q->n;
		*n = q->n;
	}
	pthread_mutex_unlock(&s->lock);
	return a;
}

void dma_shadow_get_stats(struct dma_shadow *s, struct dma_shadow_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}
