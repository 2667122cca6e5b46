/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VF's DMA during a migration (docs/devices.md, "DMA shadowing"): while dirty logging runs
 * with the shadow or track mode, the queue pages trap, the device works on dma/'s shadow
 * rings (or is tracked on the guest's), the guest keeps seeing its own ring addresses, and
 * interrupts wait until the completions they announce are in guest memory. Outside a
 * migration: nothing, no exits. Vendor-neutral: the registers come from the profile's queue
 * layout, the device from vf_dma_dev_ops.
 */
#include "vf_dma.h"

#include "godwit/deadline.h"
#include "godwit/dma_shadow.h"
#include "godwit/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NQ     (DMA_SHADOW_MAX_QUEUES / 2) /* per direction: RX slots 0..NQ-1, TX NQ.. */
#define NP     SRIOV_QPROG_MAX
#define NPAGES 8u /* BAR0 pages the queue layout may name */
#define NSPLIT (2 * NQ)
#define PAGE   4096ull
/* How long a cancel waits for the device to complete the descriptors that name shadow
 * buffers (traffic drains them) before it holds the device off to hand them back. */
#define DRAIN_MS 2000u

enum vf_dma_event { EV_LOG_START, EV_LOG_STOP, EV_QUIESCE, EV_RESUME, EV_N };

/* Where each event leads. An engaged state leads where PRE_COPY does; engaging (to
 * PRE_COPY_ENGAGED) and retaking are the engine's own steps, not events. */
static const enum vf_dma_state next_state[VF_DMA_NSTATES][EV_N] = {
    [VF_DMA_STOP] = {VF_DMA_STOP_COPY, VF_DMA_STOP, VF_DMA_STOP, VF_DMA_RUNNING},
    [VF_DMA_RUNNING] = {VF_DMA_PRE_COPY, VF_DMA_RUNNING, VF_DMA_STOP, VF_DMA_RUNNING},
    [VF_DMA_STOP_COPY] = {VF_DMA_STOP_COPY, VF_DMA_STOP, VF_DMA_STOP_COPY, VF_DMA_PRE_COPY},
    [VF_DMA_PRE_COPY] = {VF_DMA_PRE_COPY, VF_DMA_RUNNING, VF_DMA_STOP_COPY, VF_DMA_PRE_COPY},
    [VF_DMA_PRE_COPY_ENGAGED] = {VF_DMA_PRE_COPY, VF_DMA_RUNNING, VF_DMA_STOP_COPY,
				 VF_DMA_PRE_COPY},
    [VF_DMA_PRE_COPY_RETAKE] = {VF_DMA_PRE_COPY, VF_DMA_RUNNING, VF_DMA_STOP_COPY, VF_DMA_PRE_COPY},
};

static const char *const state_names[VF_DMA_NSTATES] = {
    [VF_DMA_STOP] = "stop",
    [VF_DMA_RUNNING] = "running",
    [VF_DMA_STOP_COPY] = "stop-copy",
    [VF_DMA_PRE_COPY] = "pre-copy",
    [VF_DMA_PRE_COPY_ENGAGED] = "pre-copy-engaged",
    [VF_DMA_PRE_COPY_RETAKE] = "pre-copy-retake",
};

const char *vf_dma_state_name(enum vf_dma_state s)
{
	return (unsigned)s < VF_DMA_NSTATES ? state_names[s] : "?";
}

static bool engaged(enum vf_dma_state s)
{
	return s == VF_DMA_PRE_COPY_ENGAGED || s == VF_DMA_PRE_COPY_RETAKE;
}

static bool runs(enum vf_dma_state s)
{
	return s == VF_DMA_RUNNING || s >= VF_DMA_PRE_COPY;
}

struct vf_dma {
	const struct vf_dma_dev_ops *ops;
	void *dev;
	const struct sriov_queue_layout *lay;
	const char *name;
	pthread_mutex_t ctl;	 /* events, one at a time */
	pthread_mutex_t lock;	 /* the state below, against vCPU traps and the device thread */
	enum vf_dma_state state; /* written under lock (and ctl for events); read atomically */
	enum dma_mode mode;	 /* of an engaged state; set before the state engages */
	struct dma_shadow *sh;	 /* non-NULL exactly in the engaged states */
	uint32_t gbal[2][NQ], gbah[2][NQ]; /* the guest's ring addresses */
	/* Writes held back while the device works on a shadow ring: let through at the next
	 * takeover, read back as the guest wrote them meanwhile. */
	uint32_t held_val[2][NQ][NP];
	uint32_t held_mask[2][NQ];
	bool held[2][NQ]; /* a tail the device has not been told yet */
	uint32_t held_tail[2][NQ];
	enum sriov_page_mode saved_mode[NPAGES]; /* the queue pages' modes before they trapped */
	/* Split rings: the pages of the engaged rings, which the guest sees as a copy while the
	 * device keeps working on them (dev: the device's view). */
	struct {
		uint64_t gpa, len;
		uint8_t *dev;
	} split[NSPLIT];
	unsigned nsplit;
	uint32_t split_head[2][NQ]; /* each queue's head just before its pages split */
	struct dma_shadow_stats reported;
	unsigned tails_refused; /* this engagement's, warned of (the first few) */
	/* Interrupts waiting for their completions (shadow mode). */
	uint32_t pending_msix;
	int pending_intx; /* -1 nothing, else the level to apply */
};

static void join_locked(struct vf_dma *d, bool dev_running);
static void disengaged(struct vf_dma *d, struct dma_shadow *sh);

static enum vf_dma_state state_get(struct vf_dma *d)
{
	return __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
}

/* Caller holds d->lock. */
static void state_set_locked(struct vf_dma *d, enum vf_dma_state s)
{
	if (d->state != s)
		GW_DEBUG(d->name, "DMA engine: %s -> %s", vf_dma_state_name(d->state),
			 vf_dma_state_name(s));
	__atomic_store_n(&d->state, s, __ATOMIC_RELEASE);
}

static unsigned slot_of(bool tx, unsigned q)
{
	return (tx ? NQ : 0) + q;
}

static uint32_t qreg(struct vf_dma *d, bool tx, unsigned q, enum sriov_qreg r)
{
	return sriov_queue_off(d->lay, tx, q, d->lay->reg[r]);
}

static uint32_t rd(struct vf_dma *d, uint32_t off)
{
	return d->ops->reg_read(d->dev, off);
}

static void wr(struct vf_dma *d, uint32_t off, uint32_t v)
{
	d->ops->reg_write(d->dev, off, v);
}

/* The queues the device has now, at most the layout's (which vf_dma_create holds to NQ). */
static unsigned nqueues(struct vf_dma *d)
{
	unsigned n = d->ops->queues(d->dev);
	return n > d->lay->max_queues ? d->lay->max_queues : n;
}

int vf_dma_create(const struct vf_dma_dev_ops *ops, void *dev,
		  const struct sriov_queue_layout *layout, const char *name, struct vf_dma **out)
{
	if (layout->nprog[0] > NP || layout->nprog[1] > NP || layout->last_page >= NPAGES ||
	    layout->max_queues > NQ)
		return -EINVAL;
	struct vf_dma *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ops = ops;
	d->dev = dev;
	d->lay = layout;
	d->name = name;
	d->state = VF_DMA_STOP;
	d->pending_intx = -1;
	pthread_mutex_init(&d->ctl, NULL);
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void vf_dma_release(struct vf_dma *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->nsplit)
		join_locked(d, false); /* the device is going: the guest's copy is what counts */
	dma_shadow_destroy(d->sh);
	d->sh = NULL;
	if (engaged(d->state))
		state_set_locked(d, VF_DMA_PRE_COPY);
	pthread_mutex_unlock(&d->lock);
}

void vf_dma_destroy(struct vf_dma *d)
{
	if (!d)
		return;
	vf_dma_release(d);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->ctl);
	free(d);
}

static void on_dirty(void *opaque, uint64_t iova, uint64_t len)
{
	struct vf_dma *d = opaque;
	d->ops->dirty_mark(d->dev, iova, len);
}

/* Caller holds d->lock. Passes what dma/ counted since last time on to dirty tracking. */
static void account_locked(struct vf_dma *d)
{
	if (!d->sh)
		return;
	struct dma_shadow_stats st;
	dma_shadow_get_stats(d->sh, &st);
	d->ops->dirty_account(d->dev, st.pages_dirtied - d->reported.pages_dirtied,
			      st.bytes_copied - d->reported.bytes_copied);
	d->reported = st;
}

/* Caller holds d->lock. Completes what the device finished. */
static void complete_locked(struct vf_dma *d)
{
	unsigned nq = nqueues(d);
	for (int tx = 0; tx < 2; tx++)
		for (unsigned q = 0; q < nq; q++)
			if (dma_shadow_queue_active(d->sh, slot_of(tx, q)))
				dma_shadow_queue_complete(d->sh, slot_of(tx, q),
							  rd(d, qreg(d, tx, q, SRIOV_QREG_HEAD)));
	account_locked(d);
}

/* Caller holds d->lock. Queue q's ring as its registers describe it now. */
static struct dma_queue_regs ring_regs_locked(struct vf_dma *d, bool tx, unsigned q, uint32_t tail)
{
	const struct sriov_queue_layout *l = d->lay;
	uint32_t bsize = 0;
	if (!tx && l->rx_buf_size)
		bsize = l->rx_buf_size(rd(d, qreg(d, tx, q, SRIOV_QREG_BUFSZ)));
	struct dma_queue_regs r = {
	    .base = ((uint64_t)d->gbah[tx][q] << 32 | d->gbal[tx][q]) & ~(uint64_t)(l->align - 1),
	    .n = (rd(d, qreg(d, tx, q, SRIOV_QREG_LEN)) & l->len_mask) / l->ring->desc_size,
	    .head = rd(d, qreg(d, tx, q, SRIOV_QREG_HEAD)),
	    .tail = tail,
	    .buf_size = bsize ? bsize : 2048};
	return r;
}

/* Caller holds d->lock; the device is between rounds or quiesced. Takes over every enabled
 * queue: the descriptors the device owns move to the shadow ring, indexes unchanged. */
static void start_queues_locked(struct vf_dma *d)
{
	unsigned nq = nqueues(d);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			d->gbal[tx][q] = rd(d, qreg(d, tx, q, SRIOV_QREG_BASE_LO));
			d->gbah[tx][q] = rd(d, qreg(d, tx, q, SRIOV_QREG_BASE_HI));
			uint32_t tail = d->held[tx][q] ? d->held_tail[tx][q]
						       : rd(d, qreg(d, tx, q, SRIOV_QREG_TAIL));
			if (rd(d, qreg(d, tx, q, SRIOV_QREG_CTL)) & d->lay->ctl_enable) {
				struct dma_queue_regs r = ring_regs_locked(d, tx, q, tail);
				uint64_t dev;
				int rc =
				    dma_shadow_queue_start(d->sh, slot_of(tx, q), tx, &r, &dev);
				if (rc) {
					GW_WARN(d->name,
						"%s queue %u: cannot take it over (%s); its DMA "
						"stays invisible to this migration",
						tx ? "TX" : "RX", q, strerror(-rc));
				} else if (dev != r.base) {
					wr(d, qreg(d, tx, q, SRIOV_QREG_BASE_LO), (uint32_t)dev);
					wr(d, qreg(d, tx, q, SRIOV_QREG_BASE_HI),
					   (uint32_t)(dev >> 32));
				}
			}
			if (d->held[tx][q]) {
				d->held[tx][q] = false;
				wr(d, qreg(d, tx, q, SRIOV_QREG_TAIL), tail);
			}
		}
	}
}

/* ---- split rings: shadow mode for a device that is never held off ---- */

struct span {
	uint64_t a, b; /* [a, b) */
};

/* A handful of spans in order of their start (insertion sort: at most 2 per queue). */
static void spans_sort(struct span *s, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && s[j - 1].a > s[j].a; j--) {
			struct span t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
}

/* Caller holds d->lock and the guest (hold_guest). Splits the pages of every enabled queue's
 * ring (hv_vm_ram_split): the guest goes on with a copy, the device with the pages. False,
 * nothing split, when the device cannot have it or a ring is not whole pages of RAM. */
static bool split_locked(struct vf_dma *d)
{
	if (!d->ops->split || !d->ops->join)
		return false;
	struct span r[2 * NQ];
	unsigned n = 0, nq = nqueues(d);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			d->gbal[tx][q] = rd(d, qreg(d, tx, q, SRIOV_QREG_BASE_LO));
			d->gbah[tx][q] = rd(d, qreg(d, tx, q, SRIOV_QREG_BASE_HI));
			if (!(rd(d, qreg(d, tx, q, SRIOV_QREG_CTL)) & d->lay->ctl_enable))
				continue;
			struct dma_queue_regs g = ring_regs_locked(d, tx, q, 0);
			/* The guest, held, has seen no completion from here on; the device may
			 * make more before the copy is taken (split_catch_up_locked). */
			d->split_head[tx][q] = g.head;
			if (!g.n)
				continue;
			uint64_t a = g.base & ~(PAGE - 1);
			uint64_t b = (g.base + (uint64_t)g.n * d->lay->ring->desc_size + PAGE - 1) &
				     ~(PAGE - 1);
			r[n++] = (struct span){a, b};
		}
	}
	spans_sort(r, n);
	d->nsplit = 0;
	for (unsigned i = 0; i < n; i++) {
		if (d->nsplit &&
		    r[i].a <= d->split[d->nsplit - 1].gpa + d->split[d->nsplit - 1].len) {
			uint64_t end = d->split[d->nsplit - 1].gpa + d->split[d->nsplit - 1].len;
			if (r[i].b > end)
				d->split[d->nsplit - 1].len += r[i].b - end;
			continue;
		}
		d->split[d->nsplit].gpa = r[i].a;
		d->split[d->nsplit].len = r[i].b - r[i].a;
		d->nsplit++;
	}
	for (unsigned i = 0; i < d->nsplit; i++) {
		void *dv = NULL;
		int rc = d->ops->split(d->dev, d->split[i].gpa, d->split[i].len, &dv);
		if (rc) {
			GW_INFO(d->name,
				"the rings at 0x%llx cannot stay in place while shadowed (%s): "
				"they move, with the device held off meanwhile",
				(unsigned long long)d->split[i].gpa, strerror(-rc));
			/* Nothing was written to the copies yet: the pages are as the device
			 * left them. */
			for (unsigned k = 0; k < i; k++)
				d->ops->join(d->dev, d->split[k].gpa, d->split[k].len,
					     d->split[k].dev);
			d->nsplit = 0;
			return false;
		}
		d->split[i].dev = dv;
	}
	return d->nsplit > 0;
}

/* The device's view of [base, base + len), within one split region, or NULL. */
static uint8_t *split_view(struct vf_dma *d, uint64_t base, uint64_t len)
{
	for (unsigned i = 0; i < d->nsplit; i++)
		if (base >= d->split[i].gpa && base + len <= d->split[i].gpa + d->split[i].len)
			return d->split[i].dev + (base - d->split[i].gpa);
	return NULL;
}

/* Caller holds d->lock and the guest; queue's ring r (its head read now) is split, view its
 * device's side. The descriptors the device completed since split_locked read the head, from,
 * fell on either side of the copy the guest got: into the copy with those that came first,
 * not with the others. Each goes from the device's view into the guest's copy, and the
 * engine starts after them (r->head; lowered to the first RX descriptor the device has not
 * written back yet, should its head run ahead of its write-backs): were it to start at from,
 * it would write a completion the copy already held over whatever the guest did with that
 * descriptor meanwhile (re-armed it, and the device then fills a buffer the guest never
 * posted: a frame lost, an old one seen twice). Their data went straight to guest memory:
 * this runs in place only at log start, before pre-copy's first round reads any page. */
static unsigned split_catch_up_locked(struct vf_dma *d, bool tx, struct dma_queue_regs *r,
				      const uint8_t *view, uint32_t from)
{
	unsigned ds = d->lay->ring->desc_size;
	if (from >= r->n || r->head >= r->n)
		return 0;
	struct dma_map *map = d->ops->dma(d->dev);
	unsigned k = 0;
	uint32_t i = from;
	for (; i != r->head; i = (i + 1) % r->n, k++) {
		uint64_t gpa = r->base + (uint64_t)i * ds;
		const uint8_t *dv = view + (uint64_t)i * ds;
		uint8_t *g = dma_translate(map, gpa, ds, true);
		if (!g || (!tx && d->lay->ring->rx_done_len(dv) < 0))
			break;
		memcpy(g, dv, ds);
		on_dirty(d, gpa, ds);
	}
	r->head = i;
	return k;
}

/* Caller holds d->lock and the guest; the rings are split. Takes over every enabled queue in
 * place. */
static void start_split_queues_locked(struct vf_dma *d)
{
	unsigned nq = nqueues(d);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			unsigned slot = slot_of(tx, q);
			if (rd(d, qreg(d, tx, q, SRIOV_QREG_CTL)) & d->lay->ctl_enable) {
				/* What the device was told is what it owns; a held tail is posted
				 * afterwards, as a doorbell would be. */
				struct dma_queue_regs r = ring_regs_locked(
				    d, tx, q, rd(d, qreg(d, tx, q, SRIOV_QREG_TAIL)));
				uint8_t *view =
				    split_view(d, r.base, (uint64_t)r.n * d->lay->ring->desc_size);
				unsigned k = view ? split_catch_up_locked(d, tx, &r, view,
									  d->split_head[tx][q])
						  : 0;
				if (k)
					GW_INFO(d->name,
						"%s queue %u: %u completions during the split "
						"reach the guest's copy",
						tx ? "TX" : "RX", q, k);
				int rc =
				    view ? dma_shadow_queue_start_split(d->sh, slot, tx, &r, view)
					 : -EINVAL;
				if (rc)
					GW_WARN(d->name,
						"%s queue %u: cannot take it over (%s); its DMA "
						"stays invisible to this migration",
						tx ? "TX" : "RX", q, strerror(-rc));
			}
			if (d->held[tx][q]) {
				d->held[tx][q] = false;
				if (dma_shadow_queue_active(d->sh, slot))
					dma_shadow_queue_post(d->sh, slot, d->held_tail[tx][q]);
				wr(d, qreg(d, tx, q, SRIOV_QREG_TAIL), d->held_tail[tx][q]);
			}
		}
	}
}

/* Caller holds d->lock and the guest. Gives the guest the device's view of the split pages
 * again, with what the guest wrote in its copy meanwhile: all of it when the device is held
 * off (the descriptors it owns then go back to the guest's buffers), else all but the
 * descriptors the device owns or completed unseen, which it may be writing (a drain left
 * them as the guest wrote them). */
static void join_locked(struct vf_dma *d, bool dev_running)
{
	struct dma_map *map = d->ops->dma(d->dev);
	unsigned ds = d->lay->ring->desc_size;
	for (unsigned g = 0; g < d->nsplit; g++) {
		uint64_t gpa = d->split[g].gpa, len = d->split[g].len;
		uint8_t *dev = d->split[g].dev;
		const uint8_t *guest = dma_translate(map, gpa, len, false);
		struct span k[2 * DMA_SHADOW_MAX_QUEUES];
		unsigned nk = 0;
		for (unsigned slot = 0; dev_running && d->sh && slot < DMA_SHADOW_MAX_QUEUES;
		     slot++) {
			uint32_t first, count, n;
			uint64_t base = dma_shadow_queue_guest_base(d->sh, slot);
			if (!dma_shadow_queue_device_owned(d->sh, slot, &first, &count, &n) ||
			    !count || base < gpa || base - gpa >= len)
				continue;
			uint64_t off = base - gpa;
			uint32_t run1 = first + count <= n ? count : n - first;
			k[nk].a = off + (uint64_t)first * ds;
			k[nk++].b = off + (uint64_t)(first + run1) * ds;
			if (run1 < count) {
				k[nk].a = off;
				k[nk++].b = off + (uint64_t)(count - run1) * ds;
			}
		}
		spans_sort(k, nk);
		uint64_t pos = 0;
		for (unsigned i = 0; guest && i <= nk; i++) {
			uint64_t a = i < nk ? k[i].a : len;
			if (a > pos)
				memcpy(dev + pos, guest + pos, a - pos);
			if (i < nk && k[i].b > pos)
				pos = k[i].b;
		}
		int rc = d->ops->join(d->dev, gpa, len, dev);
		if (rc)
			GW_ERR(
			    d->name,
			    "cannot give the guest the ring pages at 0x%llx back: %s; the device "
			    "no longer sees what the guest writes there",
			    (unsigned long long)gpa, strerror(-rc));
	}
	d->nsplit = 0;
}

/* Caller holds d->lock; the device is between rounds or quiesced. Gives every queue back
 * its guest ring (what the device had not reached is still there, intact), then lets the
 * held ring writes through; tails stay held when keep_tails. Split rings are joined, the
 * guest held by the caller. */
static void stop_queues_locked(struct vf_dma *d, bool keep_tails, bool dev_running)
{
	complete_locked(d);
	if (d->nsplit)
		join_locked(d, dev_running);
	unsigned nq = nqueues(d);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			unsigned slot = slot_of(tx, q);
			uint32_t lo = qreg(d, tx, q, SRIOV_QREG_BASE_LO);
			uint32_t hi = qreg(d, tx, q, SRIOV_QREG_BASE_HI);
			if (dma_shadow_queue_active(d->sh, slot)) {
				uint64_t sb = dma_shadow_queue_dev_base(d->sh, slot);
				dma_shadow_queue_stop(d->sh, slot);
				uint64_t now = (uint64_t)rd(d, hi) << 32 | rd(d, lo);
				if (sb && (now & ~(uint64_t)(d->lay->align - 1)) == sb) {
					wr(d, lo, d->gbal[tx][q]);
					wr(d, hi, d->gbah[tx][q]);
				}
			}
			for (unsigned i = 0; i < d->lay->nprog[tx]; i++)
				if (d->held_mask[tx][q] & (1u << i))
					wr(d, sriov_queue_off(d->lay, tx, q, d->lay->prog[tx][i]),
					   d->held_val[tx][q][i]);
			d->held_mask[tx][q] = 0;
			if (!keep_tails && d->held[tx][q]) {
				wr(d, qreg(d, tx, q, SRIOV_QREG_TAIL), d->held_tail[tx][q]);
				d->held[tx][q] = false;
			}
		}
	}
}

static void flush_irqs(struct vf_dma *d)
{
	uint32_t vecs = __atomic_exchange_n(&d->pending_msix, 0, __ATOMIC_ACQ_REL);
	for (unsigned v = 0; v < 32; v++)
		if (vecs & (1u << v))
			d->ops->msix(d->dev, v);
	int lvl = __atomic_exchange_n(&d->pending_intx, -1, __ATOMIC_ACQ_REL);
	if (lvl >= 0)
		d->ops->intx(d->dev, lvl != 0);
}

static void restore_pages(struct vf_dma *d)
{
	for (unsigned p = d->lay->first_page; p <= d->lay->last_page; p++)
		if (d->saved_mode[p] != SRIOV_PAGE_TRAP)
			d->ops->set_page_mode(d->dev, p, d->saved_mode[p]);
}

/* Caller holds ctl. The doorbells must trap, or the VMM would never see a posted
 * descriptor: from before the device is quiesced, so that no write of the guest's reaches a
 * queue register straight while the engine moves the queues. */
static void trap_pages(struct vf_dma *d)
{
	for (unsigned p = d->lay->first_page; p <= d->lay->last_page; p++) {
		d->saved_mode[p] = d->ops->page_mode(d->dev, p);
		if (d->saved_mode[p] != SRIOV_PAGE_TRAP)
			d->ops->set_page_mode(d->dev, p, SRIOV_PAGE_TRAP);
	}
}

/* Caller holds ctl; the device still runs. The shadow for the mode, with shadow memory
 * already mapped for each queue the device has enabled now (dma_shadow_queue_reserve): the
 * device is then held off only while the queues move, not while an IOMMU pins memory. NULL,
 * logged, when the mode cannot be had. */
static struct dma_shadow *prepare(struct vf_dma *d, enum dma_mode mode)
{
	struct dma_shadow *sh = NULL;
	int rc = dma_shadow_create(d->ops->dma(d->dev), d->lay->ring, mode, on_dirty, d, &sh);
	unsigned nq = nqueues(d);
	pthread_mutex_lock(&d->lock);
	for (int tx = 0; rc == 0 && tx < 2; tx++) {
		for (unsigned q = 0; rc == 0 && q < nq; q++) {
			if (!(rd(d, qreg(d, tx, q, SRIOV_QREG_CTL)) & d->lay->ctl_enable))
				continue;
			struct dma_queue_regs r = ring_regs_locked(d, tx, q, 0);
			if (r.n)
				rc = dma_shadow_queue_reserve(sh, slot_of(tx, q), tx, r.n,
							      r.buf_size);
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		GW_ERR(d->name, "DMA %s mode unavailable: %s", dma_mode_name(mode), strerror(-rc));
		dma_shadow_destroy(sh);
		return NULL;
	}
	return sh;
}

static bool is_live(struct vf_dma *d)
{
	return d->ops->live && d->ops->live(d->dev);
}

/* The vCPUs held (true) around a change of what the guest sees of its memory, if the device
 * can split it at all. */
static bool hold_guest(struct vf_dma *d)
{
	return d->ops->hold_guest && d->ops->split && d->ops->hold_guest(d->dev, true) == 0;
}

static void release_guest(struct vf_dma *d, bool held)
{
	if (held)
		d->ops->hold_guest(d->dev, false);
}

/* Caller holds ctl; the pages trap (trap_pages); the state is PRE_COPY; the device is
 * quiesced unless in_place. Engages the migration's DMA mode with sh (prepare):
 * PRE_COPY_ENGAGED, or PRE_COPY still when there is none. Shadow mode on a device that works
 * by itself splits the rings' pages, so that they need not move; in_place: only so (track
 * moves nothing), and false, nothing done, when they cannot be split. */
static bool engage(struct vf_dma *d, enum dma_mode mode, struct dma_shadow *sh, bool in_place)
{
	if (!sh) {
		restore_pages(d);
		return true;
	}
	bool want_split = in_place && mode == DMA_MODE_SHADOW && is_live(d);
	bool held = want_split && hold_guest(d);
	pthread_mutex_lock(&d->lock);
	bool split = held && split_locked(d);
	if (in_place && want_split && !split) {
		pthread_mutex_unlock(&d->lock);
		release_guest(d, held);
		return false;
	}
	d->sh = sh;
	memset(&d->reported, 0, sizeof(d->reported));
	d->tails_refused = 0;
	d->mode = mode;
	state_set_locked(d, VF_DMA_PRE_COPY_ENGAGED);
	if (split)
		start_split_queues_locked(d);
	else
		start_queues_locked(d);
	pthread_mutex_unlock(&d->lock);
	release_guest(d, held);
	GW_INFO(d->name, "DMA %s mode on: queue pages trap%s", dma_mode_name(mode),
		split	   ? "; the rings stay in place (the guest sees a copy of their pages), "
			     "the device is not held off"
		: in_place ? "; the device is not held off"
			   : "");
	return true;
}

/* Caller holds ctl; the device is quiesced; the state is engaged. Hands the queues back and
 * leaves the state at to. Returns the shadow: the caller finishes with disengaged() once the
 * device runs again (it no longer reaches the shadow memory), so that the device is not held
 * off while an IOMMU unmaps memory or KVM maps the queue pages again. */
static struct dma_shadow *disengage(struct vf_dma *d, enum vf_dma_state to, bool dev_running)
{
	bool held = d->nsplit && hold_guest(d);
	pthread_mutex_lock(&d->lock);
	stop_queues_locked(d, false, dev_running);
	account_locked(d);
	struct dma_shadow *sh = d->sh;
	d->sh = NULL;
	state_set_locked(d, to); /* no more deferred interrupts from here on */
	pthread_mutex_unlock(&d->lock);
	release_guest(d, held);
	return sh;
}

/* Caller holds ctl; the state is engaged, the device runs and goes on running (a migration
 * cancelled, say). Hands the DMA mode back without holding the device off, where it can:
 * track moved nothing; split rings first drain the descriptors that name shadow buffers
 * (posts go to the device as the guest wrote them, and the device completes those it has),
 * for up to DRAIN_MS, and are then joined. False, nothing done, otherwise. */
static bool disengage_in_place(struct vf_dma *d, enum vf_dma_state to)
{
	if (d->mode == DMA_MODE_SHADOW && !d->nsplit)
		return false;
	uint64_t t0 = gw_now_ms();
	bool drained = d->mode != DMA_MODE_SHADOW;
	while (!drained) {
		pthread_mutex_lock(&d->lock);
		complete_locked(d);
		drained = true;
		for (unsigned slot = 0; slot < DMA_SHADOW_MAX_QUEUES; slot++)
			drained &= dma_shadow_queue_drain(d->sh, slot);
		pthread_mutex_unlock(&d->lock);
		if (drained || gw_now_ms() - t0 >= DRAIN_MS)
			break;
		usleep(1000);
	}
	if (!drained) {
		GW_INFO(d->name,
			"no traffic completed the shadow buffers the device holds within %u ms: "
			"they go back with the device held off",
			DRAIN_MS);
		return false;
	}
	struct dma_shadow *old = disengage(d, to, true);
	if (d->mode == DMA_MODE_SHADOW)
		GW_INFO(d->name, "the device's shadow buffers drained in %llu ms",
			(unsigned long long)(gw_now_ms() - t0));
	disengaged(d, old);
	return true;
}

/* Caller holds ctl. After disengage: the interrupts held back, the queue pages as configured,
 * the shadow gone. */
static void disengaged(struct vf_dma *d, struct dma_shadow *sh)
{
	flush_irqs(d);
	restore_pages(d);
	struct dma_shadow_stats st = d->reported;
	dma_shadow_destroy(sh);
	GW_INFO(d->name,
		"DMA %s mode off: %llu descriptors completed, %llu pages marked dirty, %llu bytes "
		"copied, %llu doorbells refused; queue pages back as configured",
		dma_mode_name(d->mode), (unsigned long long)st.descs_completed,
		(unsigned long long)st.pages_dirtied, (unsigned long long)st.bytes_copied,
		(unsigned long long)st.tails_refused);
}

/* One event: the table's next state, with the device stopped around whatever the DMA mode
 * must change, and run or left stopped as the next state says. Returns the device's run op's
 * result for QUIESCE and RESUME. */
static int handle(struct vf_dma *d, enum vf_dma_event ev)
{
	pthread_mutex_lock(&d->ctl);
	enum vf_dma_state from = state_get(d); /* engaged-ness changes only under ctl */
	enum vf_dma_state to = next_state[from][ev];
	enum dma_mode mode = d->ops->dirty_mode(d->dev);
	/* Engaged exactly while logging with the device running, in a mode that is not off. */
	bool want = to == VF_DMA_PRE_COPY && mode != DMA_MODE_OFF;
	bool change = engaged(from) != want;
	int rc = 0;
	struct dma_shadow *sh = NULL;  /* made before the device stops */
	struct dma_shadow *old = NULL; /* done with once the device runs */
	bool off = engaged(from) && !want;
	if (want && !engaged(from)) {
		trap_pages(d);
		sh = prepare(d, mode);
	}
	/* A device that works by itself drops what arrives while it is held off: while it runs
	 * on, the mode goes on and off in place where it can. */
	if (change && is_live(d) && runs(from) && runs(to)) {
		bool done;
		if (off) {
			done = disengage_in_place(d, to);
		} else {
			pthread_mutex_lock(&d->lock);
			state_set_locked(d, to);
			pthread_mutex_unlock(&d->lock);
			done = engage(d, mode, sh, true);
		}
		if (done) {
			pthread_mutex_unlock(&d->ctl);
			return 0;
		}
	}
	if (change && runs(from))
		rc = d->ops->run(d->dev, false);
	else if (ev == EV_QUIESCE)
		rc = d->ops->run(d->dev, false);
	if (off) {
		old = disengage(d, to, false);
	} else {
		pthread_mutex_lock(&d->lock);
		if (!engaged(from))
			state_set_locked(d, to);
		pthread_mutex_unlock(&d->lock);
		if (want && !engaged(from))
			engage(d, mode, sh, false);
	}
	if (runs(to) && (change || ev == EV_RESUME))
		rc = d->ops->run(d->dev, true);
	if (off)
		disengaged(d, old);
	pthread_mutex_unlock(&d->ctl);
	return rc;
}

void vf_dma_log_start(struct vf_dma *d)
{
	handle(d, EV_LOG_START);
}

void vf_dma_log_stop(struct vf_dma *d)
{
	handle(d, EV_LOG_STOP);
}

/* The VM stops (stop-and-copy, say): the device stops, then the queues go back to the
 * guest's rings, so the device state saved next names guest memory only and the last
 * completions are in the final dirty pass. */
int vf_dma_quiesce(struct vf_dma *d)
{
	return handle(d, EV_QUIESCE);
}

/* The VM runs (again: a failed or cancelled migration, a resume during pre-copy). */
int vf_dma_resume(struct vf_dma *d)
{
	return handle(d, EV_RESUME);
}

/* ---- the guest's accesses (vCPU threads) ---- */

/* A 32-bit queue register of a queue the device has now. */
static bool queue_reg(struct vf_dma *d, uint64_t off, bool *tx, unsigned *q, uint32_t *reg)
{
	return sriov_queue_decode(d->lay, off, tx, q, reg) && *q < nqueues(d);
}

/* Caller holds d->lock. What the guest reads at a 32-bit queue register, if not the
 * device's value. */
static bool guest_view_locked(struct vf_dma *d, uint64_t off, uint32_t *v)
{
	bool tx = false;
	unsigned q = 0;
	uint32_t reg = 0;
	if (!engaged(d->state) || !queue_reg(d, off, &tx, &q, &reg))
		return false;
	const uint32_t *r = d->lay->reg;
	int pi = sriov_queue_prog_index(d->lay, tx, reg);
	if (pi >= 0 && (d->held_mask[tx][q] & (1u << pi))) {
		*v = d->held_val[tx][q][pi];
		return true;
	}
	if ((reg == r[SRIOV_QREG_BASE_LO] || reg == r[SRIOV_QREG_BASE_HI]) &&
	    dma_shadow_queue_dev_base(d->sh, slot_of(tx, q))) {
		*v = reg == r[SRIOV_QREG_BASE_HI] ? d->gbah[tx][q] : d->gbal[tx][q];
		return true;
	}
	if (reg == r[SRIOV_QREG_TAIL] && d->held[tx][q]) {
		*v = d->held_tail[tx][q];
		return true;
	}
	return false;
}

bool vf_dma_bar0_read(struct vf_dma *d, uint64_t off, unsigned size, uint64_t *val)
{
	if ((size != 4 && size != 8) || (off & (size - 1)) || !engaged(state_get(d)))
		return false;
	pthread_mutex_lock(&d->lock);
	uint32_t lo, hi;
	bool vlo = guest_view_locked(d, off, &lo);
	bool vhi = size == 8 && guest_view_locked(d, off + 4, &hi);
	if (vlo || vhi) {
		if (!vlo)
			lo = rd(d, (uint32_t)off);
		if (size == 8 && !vhi)
			hi = rd(d, (uint32_t)off + 4);
		*val = size == 8 ? (uint64_t)hi << 32 | lo : lo;
	}
	pthread_mutex_unlock(&d->lock);
	return vlo || vhi;
}

/* Caller holds d->lock and the state is engaged. The guest rings a doorbell. */
static void tail_write_locked(struct vf_dma *d, bool tx, unsigned q, uint32_t v)
{
	unsigned slot = slot_of(tx, q);
	if (d->state == VF_DMA_PRE_COPY_RETAKE || d->held[tx][q]) {
		/* Held until the queues are taken over again on the device's thread. */
		d->held[tx][q] = true;
		d->held_tail[tx][q] = v;
		d->ops->kick(d->dev);
		return;
	}
	if (dma_shadow_queue_active(d->sh, slot)) {
		/* track: what completed is marked before its descriptors are reused */
		if (d->mode == DMA_MODE_TRACK)
			complete_locked(d);
		/* the descriptors reach the shadow ring before the device hears of them */
		if (!dma_shadow_queue_post(d->sh, slot, v) && d->tails_refused++ < 4)
			GW_WARN(d->name,
				"%s queue %u: the driver's tail %u passes descriptors the device "
				"still owns (head %u): not posted (the driver saw a completion "
				"the DMA engine did not give it)",
				tx ? "TX" : "RX", q, v, rd(d, qreg(d, tx, q, SRIOV_QREG_HEAD)));
	}
	wr(d, qreg(d, tx, q, SRIOV_QREG_TAIL), v);
}

/* Caller holds d->lock and the state is engaged. One 32-bit write to queue q's register
 * reg. */
static void queue_write_locked(struct vf_dma *d, bool tx, unsigned q, uint32_t reg, uint32_t v)
{
	const uint32_t *r = d->lay->reg;
	if (reg == r[SRIOV_QREG_TAIL]) {
		tail_write_locked(d, tx, q, v);
		return;
	}
	int pi = sriov_queue_prog_index(d->lay, tx, reg);
	if (pi < 0) {
		wr(d, sriov_queue_off(d->lay, tx, q, reg), v);
		return;
	}
	/* The guest reprograms a ring. On a queue we hold, the write waits for the next
	 * takeover (the device keeps working on what it has); otherwise it goes through.
	 * Either way the queues are taken over again between two rounds. */
	if (dma_shadow_queue_active(d->sh, slot_of(tx, q))) {
		d->held_val[tx][q][pi] = v;
		d->held_mask[tx][q] |= 1u << pi;
	} else {
		wr(d, sriov_queue_off(d->lay, tx, q, reg), v);
	}
	if (reg == r[SRIOV_QREG_BASE_LO])
		d->gbal[tx][q] = v;
	if (reg == r[SRIOV_QREG_BASE_HI])
		d->gbah[tx][q] = v;
	state_set_locked(d, VF_DMA_PRE_COPY_RETAKE);
	d->ops->kick(d->dev);
}

/* Caller holds d->lock and the state is engaged. A reset clears the queues under us:
 * finish what completed, let it through, forget the queues (nothing to hand back: the guest
 * starts over) and take them over again once the guest has set them up. */
static void reset_write_locked(struct vf_dma *d, uint64_t off, uint64_t val, unsigned size)
{
	complete_locked(d);
	d->ops->write(d->dev, off, val, size);
	if (!(val & d->lay->reset_bit))
		return;
	/* The reset stopped the queues: the guest's copy of the split pages goes to the device's
	 * view whole, before the driver sets its rings up again. The other vCPUs are not held
	 * (this is one of them): a driver resetting its function is not using its rings. */
	if (d->nsplit)
		join_locked(d, false);
	for (unsigned s = 0; s < DMA_SHADOW_MAX_QUEUES; s++)
		dma_shadow_queue_drop(d->sh, s);
	memset(d->gbal, 0, sizeof(d->gbal));
	memset(d->gbah, 0, sizeof(d->gbah));
	memset(d->held, 0, sizeof(d->held));
	memset(d->held_mask, 0, sizeof(d->held_mask));
	state_set_locked(d, VF_DMA_PRE_COPY_RETAKE);
	d->ops->kick(d->dev);
}

/* Every write to the queue registers and the reset register goes through here, under the
 * lock, so that none slips past a takeover that is starting. */
bool vf_dma_bar0_write(struct vf_dma *d, uint64_t off, uint64_t val, unsigned size)
{
	bool tx = false;
	unsigned q = 0;
	uint32_t reg = 0;
	bool qr = queue_reg(d, off, &tx, &q, &reg);
	if (off != d->lay->reset_reg && !qr)
		return false;
	pthread_mutex_lock(&d->lock);
	if (!engaged(d->state) || (size != 4 && size != 8) || (off & (size - 1))) {
		d->ops->write(d->dev, off, val, size);
	} else if (off == d->lay->reset_reg) {
		reset_write_locked(d, off, val, size);
	} else {
		queue_write_locked(d, tx, q, reg, (uint32_t)val);
		if (size == 8 && queue_reg(d, off + 4, &tx, &q, &reg))
			queue_write_locked(d, tx, q, reg, (uint32_t)(val >> 32));
	}
	pthread_mutex_unlock(&d->lock);
	return true;
}

/* ---- the device's side ---- */

static bool defers(struct vf_dma *d)
{
	return engaged(state_get(d)) && d->mode == DMA_MODE_SHADOW;
}

bool vf_dma_defer_msix(struct vf_dma *d, unsigned vec)
{
	if (vec >= 32 || !defers(d))
		return false;
	__atomic_or_fetch(&d->pending_msix, 1u << vec, __ATOMIC_ACQ_REL);
	d->ops->kick(d->dev); /* raised off the device thread (EICS, EIMS): relayed promptly */
	return true;
}

bool vf_dma_defer_intx(struct vf_dma *d, bool level)
{
	if (!defers(d))
		return false;
	if (!level) {
		__atomic_store_n(&d->pending_intx, -1, __ATOMIC_RELEASE);
		return false; /* lowering the line never waits */
	}
	__atomic_store_n(&d->pending_intx, 1, __ATOMIC_RELEASE);
	d->ops->kick(d->dev);
	return true;
}

/* The queues are taken over again (a ring changed): between two of the device's rounds, or,
 * for a device that works by itself, held off meanwhile (under ctl, as events are). */
static void retake(struct vf_dma *d)
{
	bool live = d->ops->live && d->ops->live(d->dev);
	if (live) {
		pthread_mutex_lock(&d->ctl);
		if (state_get(d) != VF_DMA_PRE_COPY_RETAKE) {
			pthread_mutex_unlock(&d->ctl); /* an event came first */
			return;
		}
		d->ops->run(d->dev, false); /* a queue that will not stop is logged there */
	}
	/* Split rings are joined (the guest held meanwhile) and the queues move instead: a ring
	 * changed, the device is held off anyway. */
	bool held = d->nsplit && hold_guest(d);
	pthread_mutex_lock(&d->lock);
	if (d->state == VF_DMA_PRE_COPY_RETAKE) {
		stop_queues_locked(d, true, false);
		state_set_locked(d, VF_DMA_PRE_COPY_ENGAGED);
		start_queues_locked(d);
	}
	pthread_mutex_unlock(&d->lock);
	release_guest(d, held);
	if (live) {
		d->ops->run(d->dev, true);
		pthread_mutex_unlock(&d->ctl);
	}
}

void vf_dma_round(struct vf_dma *d)
{
	enum vf_dma_state s = state_get(d);
	if (s == VF_DMA_PRE_COPY_RETAKE) {
		retake(d);
	} else if (s == VF_DMA_PRE_COPY_ENGAGED) {
		pthread_mutex_lock(&d->lock);
		if (d->state == VF_DMA_PRE_COPY_ENGAGED)
			complete_locked(d);
		pthread_mutex_unlock(&d->lock);
	}
	/* Also when no longer engaged: an interrupt deferred just as the mode went off. */
	flush_irqs(d);
}

void vf_dma_status(struct vf_dma *d, bool *active, const char **mode)
{
	pthread_mutex_lock(&d->lock);
	*active = engaged(d->state);
	*mode = *active ? dma_mode_name(d->mode) : "off";
	pthread_mutex_unlock(&d->lock);
}

enum vf_dma_state vf_dma_state(struct vf_dma *d)
{
	return state_get(d);
}
