/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VF's DMA during a migration (US10198299B1): while dirty logging runs with the shadow or
 * track mode, the queue pages trap, the device works on dma/'s shadow rings (or is tracked
 * on the guest's), the guest keeps seeing its own ring addresses, and interrupts wait until
 * the completions they announce are in guest memory. Outside a migration: nothing, no exits.
 */
#include "sriov_priv.h"

#include "godwit/dma_shadow.h"
#include "godwit/hv.h"
#include "godwit/igb_ring.h"
#include "godwit/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QPAGE_FIRST 2u /* BAR0 pages holding the RX (0x2800) and TX (0x3800) queue registers */
#define QPAGE_LAST  3u
#define NQ	    IGB_VF_MAX_QUEUES

/* ---- state ---- */

/* Ring registers the guest reprograms (offsets in a queue's 0x100 block), in the order they
 * reach the device when held writes are let through. */
static const unsigned prog_regs[] = {0x00, 0x04, 0x08, 0x0C, 0x10, 0x28};
#define NPROG (sizeof(prog_regs) / sizeof(prog_regs[0]))

struct vf_dma {
	struct sriov_vf *vf;
	pthread_mutex_t ctl;  /* engage/disengage against run/stop: one at a time */
	pthread_mutex_t lock; /* the state below, against vCPU traps and the device thread */
	bool logging;	      /* dirty logging is on (ctl) */
	bool running;	      /* the device runs (ctl) */
	bool active;	      /* the mode is engaged on the device */
	bool restart;	      /* take the queues over again at the next round */
	enum dma_mode mode;
	struct dma_shadow *sh;
	uint32_t gbal[2][NQ], gbah[2][NQ]; /* the guest's ring addresses */
	/* Writes held back while the device works on a shadow ring: let through at the next
	 * takeover, read back as the guest wrote them meanwhile. */
	uint32_t held_val[2][NQ][NPROG];
	uint32_t held_mask[2][NQ];
	bool held[2][NQ]; /* a tail the device has not been told yet */
	uint32_t held_tail[2][NQ];
	enum sriov_page_mode saved_mode[QPAGE_LAST + 1];
	struct dma_shadow_stats reported;
	/* Interrupts wait for their completions (shadow mode). */
	bool defer;
	uint32_t pending_msix;
	int pending_intx; /* -1 nothing, else the level to apply */
};

static unsigned slot_of(bool tx, unsigned q)
{
	return (tx ? NQ : 0) + q;
}

static uint32_t qreg(bool tx, unsigned q, unsigned reg)
{
	return (tx ? 0x3800u : 0x2800u) + IGB_QSTRIDE * q + reg;
}

static int prog_index(unsigned reg)
{
	for (unsigned i = 0; i < NPROG; i++)
		if (prog_regs[i] == reg)
			return (int)i;
	return -1;
}

int vf_dma_create(struct sriov_vf *vf, struct vf_dma **out)
{
	struct vf_dma *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vf = vf;
	d->pending_intx = -1;
	pthread_mutex_init(&d->ctl, NULL);
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void vf_dma_release(struct vf_dma *d)
{
	pthread_mutex_lock(&d->lock);
	dma_shadow_destroy(d->sh);
	d->sh = NULL;
	d->active = false;
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
	hv_dirty_mark(sriov_vf_vm(d->vf), iova, len); /* IOVA is guest-physical */
}

/* Caller holds d->lock. Passes what dma/ counted since last time on to hv. */
static void account_locked(struct vf_dma *d)
{
	if (!d->sh)
		return;
	struct dma_shadow_stats st;
	dma_shadow_get_stats(d->sh, &st);
	hv_dirty_dma_account(sriov_vf_vm(d->vf), st.pages_dirtied - d->reported.pages_dirtied,
			     st.bytes_copied - d->reported.bytes_copied);
	d->reported = st;
}

/* Caller holds d->lock. Completes what the device finished. */
static void complete_locked(struct vf_dma *d)
{
	unsigned nq = sriov_vf_queues(d->vf);
	for (int tx = 0; tx < 2; tx++)
		for (unsigned q = 0; q < nq; q++)
			if (dma_shadow_queue_active(d->sh, slot_of(tx, q)))
				dma_shadow_queue_complete(
				    d->sh, slot_of(tx, q),
				    sriov_vf_reg_read(d->vf, qreg(tx, q, 0x10)));
	account_locked(d);
}

/* Caller holds d->lock; the device is between rounds or quiesced. Takes over every enabled
 * queue: the descriptors the device owns move to the shadow ring, indexes unchanged. */
static void start_queues_locked(struct vf_dma *d)
{
	struct sriov_vf *vf = d->vf;
	unsigned nq = sriov_vf_queues(vf);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			uint32_t bal = sriov_vf_reg_read(vf, qreg(tx, q, 0x00));
			uint32_t bah = sriov_vf_reg_read(vf, qreg(tx, q, 0x04));
			d->gbal[tx][q] = bal;
			d->gbah[tx][q] = bah;
			uint32_t tail = d->held[tx][q] ? d->held_tail[tx][q]
						       : sriov_vf_reg_read(vf, qreg(tx, q, 0x18));
			if (sriov_vf_reg_read(vf, qreg(tx, q, 0x28)) & IGB_XDCTL_ENABLE) {
				uint32_t srr = sriov_vf_reg_read(vf, IGB_SRRCTL(q));
				uint32_t bsize = (srr & IGB_SRRCTL_BSIZEPKT_MASK) * 1024u;
				struct dma_queue_regs r = {
				    .base = ((uint64_t)bah << 32 | bal) &
					    ~(uint64_t)(IGB_RING_ALIGN - 1),
				    .n = (sriov_vf_reg_read(vf, qreg(tx, q, 0x08)) & 0xFFF80) / 16,
				    .head = sriov_vf_reg_read(vf, qreg(tx, q, 0x10)),
				    .tail = tail,
				    .buf_size = bsize ? bsize : 2048};
				uint64_t dev;
				int rc =
				    dma_shadow_queue_start(d->sh, slot_of(tx, q), tx, &r, &dev);
				if (rc)
					GW_WARN(sriov_vf_name(vf),
						"%s queue %u: cannot take it over (%s); its DMA "
						"stays invisible to this migration",
						tx ? "TX" : "RX", q, strerror(-rc));
				else if (dev != r.base) {
					sriov_vf_reg_write(vf, qreg(tx, q, 0x00), (uint32_t)dev);
					sriov_vf_reg_write(vf, qreg(tx, q, 0x04),
							   (uint32_t)(dev >> 32));
				}
			}
			if (d->held[tx][q]) {
				d->held[tx][q] = false;
				sriov_vf_reg_write(vf, qreg(tx, q, 0x18), tail);
			}
		}
	}
}

/* Caller holds d->lock; the device is between rounds or quiesced. Gives every queue back
 * its guest ring (what the device had not reached is still there, intact), then lets the
 * held ring writes through; tails stay held when keep_tails. */
static void stop_queues_locked(struct vf_dma *d, bool keep_tails)
{
	complete_locked(d);
	unsigned nq = sriov_vf_queues(d->vf);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			unsigned slot = slot_of(tx, q);
			if (dma_shadow_queue_active(d->sh, slot)) {
				uint64_t sb = dma_shadow_queue_dev_base(d->sh, slot);
				dma_shadow_queue_stop(d->sh, slot);
				uint64_t now = (uint64_t)sriov_vf_reg_read(d->vf, qreg(tx, q, 0x04))
						   << 32 |
					       sriov_vf_reg_read(d->vf, qreg(tx, q, 0x00));
				if (sb && (now & ~(uint64_t)(IGB_RING_ALIGN - 1)) == sb) {
					sriov_vf_reg_write(d->vf, qreg(tx, q, 0x00),
							   d->gbal[tx][q]);
					sriov_vf_reg_write(d->vf, qreg(tx, q, 0x04),
							   d->gbah[tx][q]);
				}
			}
			for (unsigned i = 0; i < NPROG; i++)
				if (d->held_mask[tx][q] & (1u << i))
					sriov_vf_reg_write(d->vf, qreg(tx, q, prog_regs[i]),
							   d->held_val[tx][q][i]);
			d->held_mask[tx][q] = 0;
			if (!keep_tails && d->held[tx][q]) {
				sriov_vf_reg_write(d->vf, qreg(tx, q, 0x18), d->held_tail[tx][q]);
				d->held[tx][q] = false;
			}
		}
	}
}

static void flush_irqs(struct vf_dma *d)
{
	uint32_t vecs = __atomic_exchange_n(&d->pending_msix, 0, __ATOMIC_ACQ_REL);
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
		if (vecs & (1u << v))
			sriov_vf_msix_now(d->vf, v);
	int lvl = __atomic_exchange_n(&d->pending_intx, -1, __ATOMIC_ACQ_REL);
	if (lvl >= 0)
		sriov_vf_intx_now(d->vf, lvl != 0);
}

static void restore_pages(struct vf_dma *d)
{
	for (unsigned p = QPAGE_FIRST; p <= QPAGE_LAST; p++)
		if (d->saved_mode[p] != SRIOV_PAGE_TRAP)
			sriov_vf_set_page_mode(d->vf, p, d->saved_mode[p]);
}

/* Caller holds ctl; the device is quiesced. Engages the migration's DMA mode. */
static void engage(struct vf_dma *d)
{
	struct sriov_vf *vf = d->vf;
	enum dma_mode mode = (enum dma_mode)hv_dirty_dma_mode(sriov_vf_vm(vf));
	if (mode == DMA_MODE_OFF || d->active)
		return;
	/* The doorbells must trap, or the VMM would never see a posted descriptor. */
	for (unsigned p = QPAGE_FIRST; p <= QPAGE_LAST; p++) {
		d->saved_mode[p] = sriov_vf_page_mode(vf, p);
		if (d->saved_mode[p] != SRIOV_PAGE_TRAP)
			sriov_vf_set_page_mode(vf, p, SRIOV_PAGE_TRAP);
	}
	pthread_mutex_lock(&d->lock);
	int rc = dma_shadow_create(sriov_vf_dma(vf), &igb_adv_ring_ops, mode, on_dirty, d, &d->sh);
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		restore_pages(d);
		GW_ERR(sriov_vf_name(vf), "DMA %s mode unavailable: %s", dma_mode_name(mode),
		       strerror(-rc));
		return;
	}
	memset(&d->reported, 0, sizeof(d->reported));
	d->mode = mode;
	d->active = true;
	d->restart = false;
	__atomic_store_n(&d->defer, mode == DMA_MODE_SHADOW, __ATOMIC_RELEASE);
	start_queues_locked(d);
	pthread_mutex_unlock(&d->lock);
	GW_INFO(sriov_vf_name(vf), "DMA %s mode on: queue pages trap", dma_mode_name(mode));
}

/* Caller holds ctl; the device is quiesced. Hands everything back. */
static void disengage(struct vf_dma *d)
{
	pthread_mutex_lock(&d->lock);
	if (!d->active) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	stop_queues_locked(d, false);
	account_locked(d);
	struct dma_shadow_stats st = d->reported;
	dma_shadow_destroy(d->sh);
	d->sh = NULL;
	d->active = false;
	d->restart = false;
	__atomic_store_n(&d->defer, false, __ATOMIC_RELEASE);
	enum dma_mode mode = d->mode;
	pthread_mutex_unlock(&d->lock);
	flush_irqs(d);
	restore_pages(d);
	GW_INFO(sriov_vf_name(d->vf),
		"DMA %s mode off: %llu descriptors completed, %llu pages marked dirty, %llu bytes "
		"copied; queue pages back as configured",
		dma_mode_name(mode), (unsigned long long)st.descs_completed,
		(unsigned long long)st.pages_dirtied, (unsigned long long)st.bytes_copied);
}

/* ---- hv device interface (migration thread, VM run/pause) ---- */

void vf_dma_log_start(struct vf_dma *d)
{
	pthread_mutex_lock(&d->ctl);
	d->logging = true;
	if (hv_dirty_dma_mode(sriov_vf_vm(d->vf)) != DMA_MODE_OFF) {
		if (d->running)
			sriov_vf_dev_run(d->vf, false);
		engage(d);
		if (d->running)
			sriov_vf_dev_run(d->vf, true);
	}
	pthread_mutex_unlock(&d->ctl);
}

void vf_dma_log_stop(struct vf_dma *d)
{
	pthread_mutex_lock(&d->ctl);
	d->logging = false;
	if (d->running)
		sriov_vf_dev_run(d->vf, false);
	disengage(d);
	if (d->running)
		sriov_vf_dev_run(d->vf, true);
	pthread_mutex_unlock(&d->ctl);
}

/* The VM stops (stop-and-copy, say): the device stops, then the queues go back to the
 * guest's rings, so the device state saved next names guest memory only and the last
 * completions are in the final dirty pass. */
int vf_dma_quiesce(struct vf_dma *d)
{
	pthread_mutex_lock(&d->ctl);
	int rc = sriov_vf_dev_run(d->vf, false);
	d->running = false;
	disengage(d);
	pthread_mutex_unlock(&d->ctl);
	return rc;
}

/* The VM runs (again: a failed or cancelled migration, a resume during pre-copy). */
int vf_dma_resume(struct vf_dma *d)
{
	pthread_mutex_lock(&d->ctl);
	if (d->logging)
		engage(d);
	d->running = true;
	int rc = sriov_vf_dev_run(d->vf, true);
	pthread_mutex_unlock(&d->ctl);
	return rc;
}

/* ---- the guest's accesses (vCPU threads) ---- */

static bool queue_reg(uint64_t off, bool *tx, unsigned *q, unsigned *reg, unsigned nq)
{
	if (off < 0x2800 || off >= 0x3800 + IGB_QSTRIDE * NQ ||
	    (off >= 0x2800 + IGB_QSTRIDE * NQ && off < 0x3800))
		return false;
	*tx = off >= 0x3800;
	uint64_t rel = off - (*tx ? 0x3800 : 0x2800);
	*q = (unsigned)(rel / IGB_QSTRIDE);
	*reg = (unsigned)(rel % IGB_QSTRIDE);
	return *q < nq;
}

/* Caller holds d->lock. What the guest reads at a 32-bit queue register, if not the
 * device's value. */
static bool guest_view_locked(struct vf_dma *d, uint64_t off, uint32_t *v)
{
	bool tx = false;
	unsigned q = 0, reg = 0;
	if (!d->active || !queue_reg(off, &tx, &q, &reg, sriov_vf_queues(d->vf)))
		return false;
	int pi = prog_index(reg);
	if (pi >= 0 && (d->held_mask[tx][q] & (1u << pi))) {
		*v = d->held_val[tx][q][pi];
		return true;
	}
	if ((reg == 0x00 || reg == 0x04) && dma_shadow_queue_dev_base(d->sh, slot_of(tx, q))) {
		*v = reg ? d->gbah[tx][q] : d->gbal[tx][q];
		return true;
	}
	if (reg == 0x18 && d->held[tx][q]) {
		*v = d->held_tail[tx][q];
		return true;
	}
	return false;
}

bool vf_dma_bar0_read(struct vf_dma *d, uint64_t off, unsigned size, uint64_t *val)
{
	if ((size != 4 && size != 8) || (off & (size - 1)) || off < 0x2800 ||
	    !__atomic_load_n(&d->active, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&d->lock);
	uint32_t lo, hi;
	bool vlo = guest_view_locked(d, off, &lo);
	bool vhi = size == 8 && guest_view_locked(d, off + 4, &hi);
	if (vlo || vhi) {
		if (!vlo)
			lo = sriov_vf_reg_read(d->vf, (uint32_t)off);
		if (size == 8 && !vhi)
			hi = sriov_vf_reg_read(d->vf, (uint32_t)off + 4);
		*val = size == 8 ? (uint64_t)hi << 32 | lo : lo;
	}
	pthread_mutex_unlock(&d->lock);
	return vlo || vhi;
}

/* Caller holds d->lock and d->active is set. One 32-bit write to queue q's register reg. */
static void queue_write_locked(struct vf_dma *d, bool tx, unsigned q, unsigned reg, uint32_t v)
{
	unsigned slot = slot_of(tx, q);
	uint32_t off = qreg(tx, q, reg);
	int pi = prog_index(reg);
	if (reg == 0x18) {
		if (d->restart || d->held[tx][q]) {
			/* Held until the queues are taken over again on the device's thread. */
			d->held[tx][q] = true;
			d->held_tail[tx][q] = v;
			sriov_vf_kick(d->vf);
			return;
		}
		if (dma_shadow_queue_active(d->sh, slot)) {
			/* track: what completed is marked before its descriptors are reused */
			if (d->mode == DMA_MODE_TRACK)
				complete_locked(d);
			/* the descriptors reach the shadow ring before the device hears of them */
			dma_shadow_queue_post(d->sh, slot, v);
		}
		sriov_vf_reg_write(d->vf, off, v);
		return;
	}
	if (pi >= 0 && !(tx && reg == 0x0C)) {
		/* The guest reprograms a ring. On a queue we hold, the write waits for the next
		 * takeover (the device keeps working on what it has); otherwise it goes through.
		 * Either way the queues are taken over again between two rounds. */
		if (dma_shadow_queue_active(d->sh, slot)) {
			d->held_val[tx][q][pi] = v;
			d->held_mask[tx][q] |= 1u << pi;
		} else {
			sriov_vf_reg_write(d->vf, off, v);
		}
		if (reg == 0x00)
			d->gbal[tx][q] = v;
		if (reg == 0x04)
			d->gbah[tx][q] = v;
		d->restart = true;
		sriov_vf_kick(d->vf);
		return;
	}
	sriov_vf_reg_write(d->vf, off, v);
}

/* Every write to the queue registers and CTRL goes through here, under the lock, so that
 * none slips past a takeover that is starting. */
bool vf_dma_bar0_write(struct vf_dma *d, uint64_t off, uint64_t val, unsigned size)
{
	bool tx = false;
	unsigned q = 0, reg = 0;
	unsigned nq = sriov_vf_queues(d->vf);
	bool qr = queue_reg(off, &tx, &q, &reg, nq);
	if (off != IGB_CTRL && !qr)
		return false;
	pthread_mutex_lock(&d->lock);
	if (!d->active || (size != 4 && size != 8) || (off & (size - 1))) {
		sriov_vf_dev_write(d->vf, off, val, size);
	} else if (off == IGB_CTRL) {
		/* A reset clears the queues under us: finish what completed, let it through,
		 * forget the queues (nothing to hand back: the guest starts over) and take them
		 * over again once the guest has set them up. */
		complete_locked(d);
		sriov_vf_dev_write(d->vf, off, val, size);
		if (val & IGB_CTRL_RST) {
			for (unsigned s = 0; s < DMA_SHADOW_MAX_QUEUES; s++)
				dma_shadow_queue_drop(d->sh, s);
			memset(d->gbal, 0, sizeof(d->gbal));
			memset(d->gbah, 0, sizeof(d->gbah));
			memset(d->held, 0, sizeof(d->held));
			memset(d->held_mask, 0, sizeof(d->held_mask));
			d->restart = true;
			sriov_vf_kick(d->vf);
		}
	} else {
		queue_write_locked(d, tx, q, reg, (uint32_t)val);
		if (size == 8 && queue_reg(off + 4, &tx, &q, &reg, nq))
			queue_write_locked(d, tx, q, reg, (uint32_t)(val >> 32));
	}
	pthread_mutex_unlock(&d->lock);
	return true;
}

/* ---- the device's side ---- */

bool vf_dma_defer_msix(struct vf_dma *d, unsigned vec)
{
	if (!__atomic_load_n(&d->defer, __ATOMIC_ACQUIRE))
		return false;
	__atomic_or_fetch(&d->pending_msix, 1u << vec, __ATOMIC_ACQ_REL);
	sriov_vf_kick(d->vf); /* raised off the device thread (EICS, EIMS): relayed promptly */
	return true;
}

bool vf_dma_defer_intx(struct vf_dma *d, bool level)
{
	if (!__atomic_load_n(&d->defer, __ATOMIC_ACQUIRE))
		return false;
	if (!level) {
		__atomic_store_n(&d->pending_intx, -1, __ATOMIC_RELEASE);
		return false; /* lowering the line never waits */
	}
	__atomic_store_n(&d->pending_intx, 1, __ATOMIC_RELEASE);
	sriov_vf_kick(d->vf);
	return true;
}

void sriov_vf_device_round(struct sriov_vf *vf)
{
	struct vf_dma *d = sriov_vf_dma_state(vf);
	if (__atomic_load_n(&d->active, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&d->lock);
		if (d->active) {
			if (d->restart) {
				stop_queues_locked(d, true);
				d->restart = false;
				start_queues_locked(d);
			} else {
				complete_locked(d);
			}
		}
		pthread_mutex_unlock(&d->lock);
	}
	/* Also when no longer active: an interrupt deferred just as the mode went off. */
	flush_irqs(d);
}

void vf_dma_status(struct vf_dma *d, bool *active, const char **mode)
{
	pthread_mutex_lock(&d->lock);
	*active = d->active;
	*mode = d->active ? dma_mode_name(d->mode) : "off";
	pthread_mutex_unlock(&d->lock);
}
