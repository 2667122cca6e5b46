/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VF's DMA during a migration (US10198299B1): while dirty logging runs with the shadow or
 * track mode, the queue pages trap, the device works on dma/'s shadow rings (or is tracked
 * on the guest's), the guest keeps seeing its own ring addresses, and interrupts wait until
 * the completions they announce are in guest memory. Outside a migration: nothing, no exits.
 * The igb advanced ring format is what this profile gives dma/.
 */
#include "sriov_priv.h"

#include "godwit/dma_shadow.h"
#include "godwit/hv.h"
#include "godwit/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QPAGE_FIRST 2u /* BAR0 pages holding the RX (0x2800) and TX (0x3800) queue registers */
#define QPAGE_LAST  3u
#define NQ	    IGB_VF_MAX_QUEUES

/* ---- the igb profile's ring format for dma/ ---- */

static uint64_t igb_rx_buf(const void *d)
{
	return ((const union igb_rx_desc *)d)->read.pkt_addr;
}

static void igb_rx_set_buf(void *d, uint64_t iova)
{
	((union igb_rx_desc *)d)->read.pkt_addr = iova;
}

static int igb_rx_len(const void *d)
{
	const union igb_rx_desc *r = d;
	return (r->wb.status & IGB_RXD_STAT_DD) ? r->wb.length : -1;
}

static bool igb_tx_done(const void *d)
{
	return (((const union igb_tx_desc *)d)->wb.status & IGB_TXD_STAT_DD) != 0;
}

static const struct dma_ring_ops igb_ring_ops = {
    .name = "igb-adv",
    .desc_size = 16,
    .rx_buf_addr = igb_rx_buf,
    .rx_set_buf_addr = igb_rx_set_buf,
    .rx_done_len = igb_rx_len,
    .tx_done = igb_tx_done,
};

/* ---- state ---- */

struct vf_dma {
	struct sriov_vf *vf;
	pthread_mutex_t lock;
	bool logging; /* dirty logging is on */
	bool running; /* the device runs (not quiesced) */
	bool active;  /* the mode is engaged on the device */
	bool restart; /* the guest reprogrammed a queue: take the queues over again */
	enum dma_mode mode;
	struct dma_shadow *sh;
	uint32_t gbal[2][NQ], gbah[2][NQ]; /* the guest's view of ring addresses */
	bool held[2][NQ];		   /* a tail the device has not been told yet */
	uint32_t held_tail[2][NQ];
	enum sriov_page_mode saved_mode[QPAGE_LAST + 1];
	struct dma_shadow_stats reported;
	/* Interrupts wait for their completions (shadow mode): set from the device thread. */
	bool defer;
	uint32_t pending_msix;
	int pending_intx; /* -1 nothing, 0 or 1 the level to apply */
};

static unsigned slot_of(bool tx, unsigned q)
{
	return (tx ? NQ : 0) + q;
}

static uint32_t qreg(bool tx, unsigned q, unsigned reg)
{
	return (tx ? 0x3800u : 0x2800u) + IGB_QSTRIDE * q + reg;
}

int vf_dma_create(struct sriov_vf *vf, struct vf_dma **out)
{
	struct vf_dma *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vf = vf;
	d->running = false;
	d->pending_intx = -1;
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void vf_dma_destroy(struct vf_dma *d)
{
	if (!d)
		return;
	dma_shadow_destroy(d->sh);
	pthread_mutex_destroy(&d->lock);
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

/* Caller holds d->lock; the device is between two rounds of work or quiesced. */
static void start_queues_locked(struct vf_dma *d)
{
	struct sriov_vf *vf = d->vf;
	unsigned nq = sriov_vf_queues(vf);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			unsigned slot = slot_of(tx, q);
			uint32_t ctl = sriov_vf_reg_read(vf, qreg(tx, q, 0x28));
			uint32_t bal = sriov_vf_reg_read(vf, qreg(tx, q, 0x00));
			uint32_t bah = sriov_vf_reg_read(vf, qreg(tx, q, 0x04));
			d->gbal[tx][q] = bal;
			d->gbah[tx][q] = bah;
			uint32_t tail = d->held[tx][q] ? d->held_tail[tx][q]
						       : sriov_vf_reg_read(vf, qreg(tx, q, 0x18));
			if (ctl & IGB_XDCTL_ENABLE) {
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
				int rc = dma_shadow_queue_start(d->sh, slot, tx, &r, &dev);
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

/* Caller holds d->lock; the device is between rounds or quiesced. Gives every queue back
 * its guest ring: what the device had not reached is still there, intact. */
static void stop_queues_locked(struct vf_dma *d)
{
	complete_locked(d);
	unsigned nq = sriov_vf_queues(d->vf);
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			unsigned slot = slot_of(tx, q);
			if (!dma_shadow_queue_active(d->sh, slot))
				continue;
			uint64_t sb = dma_shadow_queue_dev_base(d->sh, slot);
			uint64_t gb = dma_shadow_queue_stop(d->sh, slot);
			uint64_t now = (uint64_t)sriov_vf_reg_read(d->vf, qreg(tx, q, 0x04)) << 32 |
				       sriov_vf_reg_read(d->vf, qreg(tx, q, 0x00));
			/* Only if the device still uses the shadow: a reset or the guest may have
			 * put something else there since. */
			if (sb && (now & ~(uint64_t)(IGB_RING_ALIGN - 1)) == sb) {
				sriov_vf_reg_write(d->vf, qreg(tx, q, 0x00),
						   d->gbal[tx][q] ? d->gbal[tx][q] : (uint32_t)gb);
				sriov_vf_reg_write(d->vf, qreg(tx, q, 0x04), d->gbah[tx][q]);
			}
		}
	}
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < nq; q++) {
			if (d->held[tx][q])
				sriov_vf_reg_write(d->vf, qreg(tx, q, 0x18), d->held_tail[tx][q]);
			d->held[tx][q] = false;
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

/* Engages the mode. The device must be quiesced. */
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
	int rc = dma_shadow_create(sriov_vf_dma(vf), &igb_ring_ops, mode, on_dirty, d, &d->sh);
	if (rc) {
		pthread_mutex_unlock(&d->lock);
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

/* Hands everything back. The device must be quiesced. */
static void disengage(struct vf_dma *d)
{
	pthread_mutex_lock(&d->lock);
	if (!d->active) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	stop_queues_locked(d);
	account_locked(d);
	struct dma_shadow_stats st = d->reported;
	dma_shadow_destroy(d->sh);
	d->sh = NULL;
	d->active = false;
	__atomic_store_n(&d->defer, false, __ATOMIC_RELEASE);
	enum dma_mode mode = d->mode;
	pthread_mutex_unlock(&d->lock);
	flush_irqs(d);
	for (unsigned p = QPAGE_FIRST; p <= QPAGE_LAST; p++)
		if (d->saved_mode[p] != SRIOV_PAGE_TRAP)
			sriov_vf_set_page_mode(d->vf, p, d->saved_mode[p]);
	GW_INFO(sriov_vf_name(d->vf),
		"DMA %s mode off: %llu descriptors completed, %llu pages marked dirty, %llu bytes "
		"copied; queue pages back as configured",
		dma_mode_name(mode), (unsigned long long)st.descs_completed,
		(unsigned long long)st.pages_dirtied, (unsigned long long)st.bytes_copied);
}

/* ---- hv device interface ---- */

void vf_dma_log_start(struct vf_dma *d)
{
	d->logging = true;
	if (hv_dirty_dma_mode(sriov_vf_vm(d->vf)) == DMA_MODE_OFF)
		return;
	bool run = d->running;
	if (run)
		sriov_vf_dev_run(d->vf, false);
	engage(d);
	if (run)
		sriov_vf_dev_run(d->vf, true);
}

void vf_dma_log_stop(struct vf_dma *d)
{
	d->logging = false;
	bool run = d->running;
	if (run)
		sriov_vf_dev_run(d->vf, false);
	disengage(d);
	if (run)
		sriov_vf_dev_run(d->vf, true);
}

/* The VM stops (stop-and-copy): the device is quiesced by the caller first, then the
 * queues go back to the guest's rings, so the device state saved next names guest memory
 * only and the last completions are in the final dirty pass. */
void vf_dma_quiesced(struct vf_dma *d)
{
	d->running = false;
	disengage(d);
}

/* The VM runs again (a failed or cancelled migration, or a resume during pre-copy). */
void vf_dma_resuming(struct vf_dma *d)
{
	if (d->logging)
		engage(d);
	d->running = true;
}

/* ---- the guest's accesses ---- */

static bool queue_reg(uint64_t off, bool *tx, unsigned *q, unsigned *reg, unsigned nq)
{
	if (off < 0x2800 || off >= 0x3800 + IGB_QSTRIDE * NQ ||
	    (off >= 0x2800 + IGB_QSTRIDE * NQ && off < 0x3800))
		return false;
	*tx = off >= 0x3800;
	*q = 0;
	*reg = 0;
	uint64_t rel = off - (*tx ? 0x3800 : 0x2800);
	*q = (unsigned)(rel / IGB_QSTRIDE);
	*reg = (unsigned)(rel % IGB_QSTRIDE);
	return *q < nq;
}

bool vf_dma_bar0_read(struct vf_dma *d, uint64_t off, unsigned size, uint64_t *val)
{
	bool tx;
	unsigned q, reg;
	if (size != 4 || !queue_reg(off, &tx, &q, &reg, sriov_vf_queues(d->vf)))
		return false;
	bool done = false;
	pthread_mutex_lock(&d->lock);
	if (d->active) {
		if ((reg == 0x00 || reg == 0x04) &&
		    dma_shadow_queue_dev_base(d->sh, slot_of(tx, q))) {
			*val = reg ? d->gbah[tx][q] : d->gbal[tx][q];
			done = true;
		} else if (reg == 0x18 && d->held[tx][q]) {
			*val = d->held_tail[tx][q];
			done = true;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return done;
}

/* Caller holds d->lock and d->active is set. One 32-bit write to queue q's register reg. */
static void queue_write_locked(struct vf_dma *d, bool tx, unsigned q, unsigned reg, uint32_t v)
{
	unsigned slot = slot_of(tx, q);
	uint32_t off = qreg(tx, q, reg);
	if (reg == 0x18) {
		if (d->restart || d->held[tx][q]) {
			/* Held until the queue is taken over again on the device's thread. */
			d->held[tx][q] = true;
			d->held_tail[tx][q] = v;
			sriov_vf_kick(d->vf);
			return;
		}
		/* The descriptors move to the shadow ring before the device hears of them. */
		if (dma_shadow_queue_active(d->sh, slot))
			dma_shadow_queue_post(d->sh, slot, v);
		sriov_vf_reg_write(d->vf, off, v);
		return;
	}
	if (reg == 0x00 || reg == 0x04 || reg == 0x08 || reg == 0x10 || reg == 0x28) {
		/* The guest reprograms a ring: finish what completed, let the write through as
		 * the guest meant it, and take the queues over again between two rounds. The
		 * device keeps the shadow's address until then; the guest reads its own. */
		if (dma_shadow_queue_active(d->sh, slot))
			complete_locked(d);
		if (reg == 0x00)
			d->gbal[tx][q] = v;
		if (reg == 0x04)
			d->gbah[tx][q] = v;
		if (!((reg == 0x00 || reg == 0x04) && dma_shadow_queue_dev_base(d->sh, slot)))
			sriov_vf_reg_write(d->vf, off, v);
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
		/* A reset clears the queues under us: take them over again afterwards. */
		sriov_vf_dev_write(d->vf, off, val, size);
		d->restart = true;
		sriov_vf_kick(d->vf);
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
	if (!__atomic_load_n(&d->active, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&d->lock);
	if (d->active) {
		if (d->restart) {
			stop_queues_locked(d);
			d->restart = false;
			start_queues_locked(d);
		} else {
			complete_locked(d);
		}
	}
	pthread_mutex_unlock(&d->lock);
	flush_irqs(d);
}

void vf_dma_status(struct vf_dma *d, bool *active, const char **mode)
{
	pthread_mutex_lock(&d->lock);
	*active = d->active;
	*mode = d->active ? dma_mode_name(d->mode) : "off";
	pthread_mutex_unlock(&d->lock);
}
