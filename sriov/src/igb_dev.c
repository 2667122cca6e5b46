/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The 82576 VF register model (datasheet 8.28): control and interrupt registers, the VF side
 * of the PF-VF mailbox with the PF agent behind it, and the RX/TX ring engines, which reach
 * guest memory only through the dma/ IOVA map.
 */
#include "igb_dev.h"
#include "igb_offload.h"

#include "godwit/igb_ring.h"
#include "godwit/fields.h"
#include "godwit/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC    GW_FOURCC('G', 'I', 'G', 'B')
#define STATE_VERSION  3 /* 2: without the PF-side configuration; 3: a field table */
#define R(off)	       (d->regs[(off) / 4])
#define LOADR(off)     __atomic_load_n(&d->regs[(off) / 4], __ATOMIC_ACQUIRE)
#define STORER(off, v) __atomic_store_n(&d->regs[(off) / 4], (v), __ATOMIC_RELEASE)

int igb_dev_init(struct igb_dev *d, const char *name, const struct sriov_gen *gen, unsigned vf,
		 struct sriov_pf_agent *pf, const struct igb_dev_io *io, uint32_t *regs)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->gen = *gen;
	d->vf = vf;
	d->pf = pf;
	d->io = *io;
	d->regs = regs;
	memset(regs, 0, IGB_VF_BAR0_SIZE);
	R(IGB_STATUS) = IGB_STATUS_FD | IGB_STATUS_LU | IGB_STATUS_SPEED_1000;
	R(IGB_VMBMEM) = IGB_PF_NOT_CTS; /* a re-created function: the driver must renegotiate */
	d->mbx = IGB_MBX_RSTD;
	d->xchg = true; /* power-on: RSTD waits to be read, the mailbox page starts trapped */
	d->st.mbx_exchanges = 1;
	return 0;
}

void igb_dev_fini(struct igb_dev *d)
{
	pthread_mutex_destroy(&d->lock);
}

/* Interrupts (datasheet 7.3): causes latch in EICR; a cause whose EIMS bit is set fires its
 * MSI-X vector (then EIAC auto-clears and EIAM auto-masks it) or asserts INTx. */
static void irq_update(struct igb_dev *d, uint32_t fresh)
{
	uint32_t pend = R(IGB_EICR) & R(IGB_EIMS);
	if (!d->msix_enabled) {
		bool level = pend != 0;
		if (level != d->intx_level) {
			d->intx_level = level;
			d->st.irqs += level; /* assertions count as interrupts */
			if (d->io.intx)
				d->io.intx(d->io.opaque, level);
		}
		return;
	}
	pend &= fresh;
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		uint32_t bit = 1u << v;
		if (!(pend & bit))
			continue;
		if (R(IGB_EIAC) & bit)
			R(IGB_EICR) &= ~bit;
		if (R(IGB_EIAM) & bit)
			R(IGB_EIMS) &= ~bit;
		d->st.irqs++;
		if (d->io.msix)
			d->io.msix(d->io.opaque, v);
	}
}

static void cause(struct igb_dev *d, uint32_t ivar_byte)
{
	if (!(ivar_byte & IGB_IVAR_VALID))
		return;
	uint32_t bit = 1u << ((ivar_byte & 0x1F) % IGB_VF_MSIX_VECS);
	R(IGB_EICR) |= bit;
	irq_update(d, bit);
}

static uint32_t ivar(struct igb_dev *d, unsigned q, bool tx)
{
	return (R(IGB_IVAR0) >> (8 * (2 * q + tx))) & 0xFF;
}

/* Caller holds the lock. The mailbox page must trap before a clear-on-read bit is set. */
static void xchg_begin(struct igb_dev *d)
{
	if (d->xchg)
		return;
	d->xchg = true;
	d->st.mbx_exchanges++;
	if (d->io.mbx_xchg)
		d->io.mbx_xchg(d->io.opaque, true);
}

/* Caller holds the lock. V2PMBX's memory shows what a read would, less the clear-on-read
 * bits (only ever set while the page traps); an exchange ends when nothing is pending on
 * either side and nobody owns the buffer. */
static void mbx_sync(struct igb_dev *d)
{
	R(IGB_V2PMBX) = d->mbx & ~IGB_MBX_R2C;
	if (d->xchg && !d->pf_req && !d->pf_reply && !d->await_ack &&
	    !(d->mbx & (IGB_MBX_R2C | IGB_MBX_VFU | IGB_MBX_PFU))) {
		d->xchg = false;
		if (d->io.mbx_xchg)
			d->io.mbx_xchg(d->io.opaque, false);
	}
}

static void mbx_cause(struct igb_dev *d)
{
	cause(d, R(IGB_IVAR_MISC) & 0xFF);
}

/* Caller holds the lock. Posts the PF's "not clear to send" (IGB_PF_NOT_CTS) once the
 * buffer is free: no exchange of the VF's in flight, the VF not holding it. */
static bool notice_post(struct igb_dev *d)
{
	if (!d->pf_notice || d->pf_req || d->pf_reply || d->await_ack || (d->mbx & IGB_MBX_VFU))
		return false;
	xchg_begin(d);
	R(IGB_VMBMEM) = IGB_PF_NOT_CTS;
	d->pf_notice = false;
	d->await_ack = true;
	d->mbx |= IGB_MBX_PFSTS;
	mbx_cause(d);
	return true;
}

static void reset_locked(struct igb_dev *d)
{
	uint32_t stats[5] = {R(IGB_VFGPRC), R(IGB_VFGPTC), R(IGB_VFGORC), R(IGB_VFGOTC),
			     R(IGB_VFMPRC)};
	xchg_begin(d); /* before the image changes: no read of a half-reset page */
	memset(d->regs, 0, IGB_VF_BAR0_SIZE);
	R(IGB_STATUS) = IGB_STATUS_FD | IGB_STATUS_LU | IGB_STATUS_SPEED_1000;
	R(IGB_VFGPRC) = stats[0];
	R(IGB_VFGPTC) = stats[1];
	R(IGB_VFGORC) = stats[2];
	R(IGB_VFGOTC) = stats[3];
	R(IGB_VFMPRC) = stats[4];
	R(IGB_VMBMEM) = IGB_PF_NOT_CTS; /* the PF's view until the VF_RESET handshake */
	memset(d->txctx, 0, sizeof(d->txctx));
	d->pf_req = d->pf_reply = d->await_ack = d->pf_notice = false;
	if (d->pf_resetting) {
		d->vf_reset_seen = true;
		d->mbx = IGB_MBX_RSTI; /* still in progress: RSTD comes with the reset's end */
	} else {
		d->mbx = IGB_MBX_RSTD; /* the PF reset is done: the VF may send VF_RESET */
	}
	memset(d->queue_error, 0, sizeof(d->queue_error));
	if (d->intx_level && d->io.intx)
		d->io.intx(d->io.opaque, false);
	d->intx_level = false;
	d->st.resets++;
	sriov_pf_agent_vf_reset(d->pf, d->vf);
}

void igb_dev_reset(struct igb_dev *d)
{
	pthread_mutex_lock(&d->lock);
	reset_locked(d);
	mbx_sync(d);
	pthread_mutex_unlock(&d->lock);
}

void igb_dev_pf_reset_begin(struct igb_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->pf_resetting = true;
	d->vf_reset_seen = false;
	xchg_begin(d);
	d->mbx |= IGB_MBX_RSTI;
	/* RSTI alone does not move Linux igbvf: it revalidates its link by reading the mailbox,
	 * so the PF withdraws the VF's CTS and says so (igb_vf.h, IGB_PF_NOT_CTS). */
	sriov_pf_agent_vf_revoke(d->pf, d->vf);
	d->pf_notice = true;
	if (!notice_post(d)) {
		mbx_cause(d); /* for RSTI; the notice follows when the buffer is free */
		if (d->io.kick)
			d->io.kick(d->io.opaque);
	}
	mbx_sync(d);
	pthread_mutex_unlock(&d->lock);
}

void igb_dev_pf_reset_end(struct igb_dev *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->pf_resetting) {
		d->pf_resetting = false;
		xchg_begin(d);
		d->mbx = (d->mbx & ~IGB_MBX_RSTI) | IGB_MBX_RSTD;
		mbx_cause(d);
	}
	mbx_sync(d);
	pthread_mutex_unlock(&d->lock);
}

bool igb_dev_pf_reset_seen(struct igb_dev *d)
{
	pthread_mutex_lock(&d->lock);
	bool seen = d->vf_reset_seen;
	pthread_mutex_unlock(&d->lock);
	return seen;
}

void igb_dev_set_msix(struct igb_dev *d, bool enabled)
{
	pthread_mutex_lock(&d->lock);
	if (d->msix_enabled != enabled) {
		if (d->intx_level && d->io.intx)
			d->io.intx(d->io.opaque, false);
		d->intx_level = false;
		d->msix_enabled = enabled;
		irq_update(d, R(IGB_EICR));
	}
	pthread_mutex_unlock(&d->lock);
}

static bool queue_reg(uint32_t off, unsigned *q, uint32_t *reg)
{
	bool tx;
	return sriov_queue_decode(&igb_vf_queue_layout, off, &tx, q, reg);
}

static uint32_t read32(struct igb_dev *d, uint32_t off)
{
	uint32_t v;
	unsigned q;
	switch (off) {
	case IGB_V2PMBX:
		v = d->mbx;
		d->mbx &= ~IGB_MBX_R2C;
		return v;
	case IGB_EICR:
		v = R(IGB_EICR);
		R(IGB_EICR) = 0;
		irq_update(d, 0);
		return v;
	case IGB_EICS:
	case IGB_EIMC:
		return 0;
	}
	uint32_t reg;
	if (queue_reg(off, &q, &reg) && q >= d->gen.queues)
		return 0; /* queues this generation lacks read as zero */
	return LOADR(off);
}

static void write_mbx(struct igb_dev *d, uint32_t val)
{
	if (val & IGB_MBX_VFU) {
		if (!(d->mbx & IGB_MBX_PFU))
			d->mbx |= IGB_MBX_VFU;
	} else {
		d->mbx &= ~IGB_MBX_VFU;
	}
	if (val & (IGB_MBX_ACK | IGB_MBX_REQ))
		d->await_ack = false; /* acknowledged, or moved on to its next request */
	if (val & IGB_MBX_REQ) {
		d->pf_req = true;
		d->st.mbx_requests++;
		if (d->io.kick)
			d->io.kick(d->io.opaque);
	}
	if ((val & IGB_MBX_ACK) && d->pf_reply && d->io.kick)
		d->io.kick(d->io.opaque);
}

/* Registers the guest may write, and how: plain (stored), or with side effects. */
static void write32(struct igb_dev *d, uint32_t off, uint32_t v)
{
	unsigned q;
	if (off >= IGB_VMBMEM && off < IGB_VMBMEM + 4 * IGB_MBX_WORDS) {
		xchg_begin(d); /* the VF writes a message */
		R(off) = v;
		return;
	}
	switch (off) {
	case IGB_CTRL:
		if (v & IGB_CTRL_RST)
			reset_locked(d);
		return;
	case IGB_V2PMBX:
		xchg_begin(d);
		write_mbx(d, v);
		return;
	case IGB_EICS:
		R(IGB_EICR) |= v & 7u;
		irq_update(d, v & 7u);
		return;
	case IGB_EIMS:
		R(IGB_EIMS) |= v & 7u;
		irq_update(d, v & 7u);
		return;
	case IGB_EIMC:
		R(IGB_EIMS) &= ~v;
		irq_update(d, 0);
		return;
	case IGB_EICR:
		R(IGB_EICR) &= ~v; /* write 1 to clear */
		irq_update(d, 0);
		return;
	case IGB_EIAC:
	case IGB_EIAM:
	case IGB_IVAR0:
	case IGB_IVAR_MISC:
		R(off) = v;
		return;
	}
	if (off >= IGB_EITR(0) && off < IGB_EITR(IGB_VF_MSIX_VECS)) {
		R(off) = v & 0x7FFC;
		return;
	}
	uint32_t reg;
	if (queue_reg(off, &q, &reg)) {
		if (q >= d->gen.queues || reg > IGB_Q_DCTL || (reg & 3))
			goto bad;
		STORER(off, v);
		if ((reg == IGB_Q_TAIL || reg == IGB_Q_DCTL) && d->io.kick) /* tail or enable */
			d->io.kick(d->io.opaque);
		return;
	}
bad:
	/* Read-only and reserved registers ignore writes, as hardware does. */
	if (d->st.bad_reg_access++ < 8)
		GW_DEBUG(d->name, "write of %#x to read-only or reserved register %#x ignored", v,
			 off);
}

/* Caller holds the lock. Page 0 holds the mailbox: its accesses are counted by whether an
 * exchange was or is running (with the page mapped while idle, the idle ones are 0). */
static void mbx_count(struct igb_dev *d, uint64_t off, bool before)
{
	if (off >= 4096)
		return;
	if (before || d->xchg)
		d->st.mbx_xchg_access++;
	else
		d->st.mbx_idle_access++;
}

uint64_t igb_dev_read(struct igb_dev *d, uint64_t off, unsigned size)
{
	if ((size != 4 && size != 8) || (off & (size - 1)) || off + size > IGB_VF_BAR0_SIZE) {
		__atomic_add_fetch(&d->st.bad_reg_access, 1, __ATOMIC_RELAXED);
		return 0;
	}
	pthread_mutex_lock(&d->lock);
	bool before = d->xchg;
	uint64_t v = read32(d, (uint32_t)off);
	if (size == 8)
		v |= (uint64_t)read32(d, (uint32_t)off + 4) << 32;
	mbx_count(d, off, before);
	if (off == IGB_V2PMBX && (before || d->xchg) && !(v & IGB_MBX_R2C))
		d->st.mbx_wait_polls++;
	mbx_sync(d);
	pthread_mutex_unlock(&d->lock);
	return v;
}

void igb_dev_write(struct igb_dev *d, uint64_t off, uint64_t val, unsigned size)
{
	if ((size != 4 && size != 8) || (off & (size - 1)) || off + size > IGB_VF_BAR0_SIZE) {
		__atomic_add_fetch(&d->st.bad_reg_access, 1, __ATOMIC_RELAXED);
		return;
	}
	pthread_mutex_lock(&d->lock);
	bool before = d->xchg;
	write32(d, (uint32_t)off, (uint32_t)val);
	if (size == 8)
		write32(d, (uint32_t)off + 4, (uint32_t)(val >> 32));
	mbx_count(d, off, before);
	mbx_sync(d);
	pthread_mutex_unlock(&d->lock);
}

/* The PF side of the mailbox: read the VF's request, acknowledge it, let the PF agent
 * answer, and deliver the answer once the VF has let go of the buffer. */
static unsigned mbx_work(struct igb_dev *d)
{
	unsigned did = 0;
	if (d->pf_req) {
		uint32_t msg[IGB_MBX_WORDS];
		memcpy(msg, &R(IGB_VMBMEM), sizeof(msg));
		d->pf_req = false;
		d->mbx |= IGB_MBX_PFACK;
		mbx_cause(d);
		/* The hardware cannot know a message's length: the PF reads the whole buffer. */
		unsigned n = sriov_pf_agent_handle(d->pf, d->vf, msg, IGB_MBX_WORDS, d->reply);
		d->pf_reply = n > 0;
		did++;
	}
	if (d->pf_reply && !(d->mbx & IGB_MBX_VFU)) {
		memcpy(&R(IGB_VMBMEM), d->reply, sizeof(d->reply));
		d->pf_reply = false;
		d->await_ack = true; /* the exchange ends with the VF's ACK */
		d->mbx |= IGB_MBX_PFSTS;
		mbx_cause(d);
		did++;
	}
	did += notice_post(d);
	return did;
}

struct ring {
	uint64_t base;
	uint32_t n, head, tail;
};

/* Reads a ring's registers as they are now; false when the queue is off or its registers
 * make no sense, which stops the queue as a device error until the next reset. */
static bool ring_get(struct igb_dev *d, unsigned q, bool tx, struct ring *r)
{
	if (q >= d->gen.queues || d->queue_error[tx][q] ||
	    !(LOADR(IGB_QREG(tx, q, IGB_Q_DCTL)) & IGB_XDCTL_ENABLE))
		return false;
	r->base = ((uint64_t)LOADR(IGB_QREG(tx, q, IGB_Q_BAH)) << 32 |
		   LOADR(IGB_QREG(tx, q, IGB_Q_BAL))) &
		  ~(uint64_t)(IGB_RING_ALIGN - 1);
	uint32_t len = LOADR(IGB_QREG(tx, q, IGB_Q_LEN)) & IGB_Q_LEN_MASK;
	r->n = len / 16;
	r->head = LOADR(IGB_QREG(tx, q, IGB_Q_HEAD));
	r->tail = LOADR(IGB_QREG(tx, q, IGB_Q_TAIL));
	if (r->n == 0 || r->n > IGB_RING_MAX || r->head >= r->n || r->tail >= r->n) {
		d->queue_error[tx][q] = true;
		GW_WARN(d->name, "%s queue %u stopped: ring of %u descriptors, head %u, tail %u",
			tx ? "TX" : "RX", q, r->n, r->head, r->tail);
		return false;
	}
	return true;
}

static void ring_fault(struct igb_dev *d, unsigned q, bool tx, uint64_t addr)
{
	d->st.dma_faults++;
	d->queue_error[tx][q] = true;
	GW_WARN(d->name, "%s queue %u stopped: descriptor ring at %#llx is outside guest memory",
		tx ? "TX" : "RX", q, (unsigned long long)addr);
}

/* One frame as its data descriptors describe it. */
struct tx_frame {
	size_t len; /* 0: drop it */
	uint32_t cmd, olinfo;
};

/* Gathers one frame from head into txbuf, taking in the context descriptors on the way;
 * returns the index after its EOP descriptor, or head when the frame is not fully posted yet. */
static uint32_t tx_gather(struct igb_dev *d, unsigned q, const struct ring *r, struct tx_frame *tf,
			  bool *fault)
{
	uint32_t pos = r->head;
	size_t flen = 0, max = IGB_MAX_FRAME;
	bool bad = false, first = true;
	*fault = false;
	while (pos != r->tail) {
		union igb_tx_desc t;
		uint64_t da = r->base + 16ull * pos;
		if (dma_read(d->io.dma, da, &t, sizeof(t))) {
			ring_fault(d, q, true, da);
			*fault = true;
			return r->head;
		}
		pos = (pos + 1) % r->n;
		uint32_t ctl = t.read.cmd_type_len;
		if ((ctl & IGB_TXD_DTYP_MASK) == IGB_TXD_DTYP_CTXT) {
			struct igb_tx_ctx c;
			memcpy(&c, &t, sizeof(c));
			d->txctx[q][(c.mss_l4len_idx >> IGB_TXD_IDX_SHIFT) & 1] = c;
			continue;
		}
		if (first) {
			/* The first data descriptor's command and options hold for the frame. */
			tf->cmd = ctl;
			tf->olinfo = t.read.olinfo_status;
			max = (ctl & IGB_TXD_CMD_TSE) ? sizeof(d->txbuf) : IGB_MAX_FRAME;
			first = false;
		}
		uint32_t l = ctl & IGB_TXD_LEN_MASK;
		if (l == 0 || flen + l > max) {
			bad = true; /* zero-length or a frame beyond the largest jumbo (or TSO)
				       frame */
		} else if (!bad && dma_read(d->io.dma, t.read.addr, d->txbuf + flen, l)) {
			d->st.dma_faults++;
			bad = true;
		} else {
			flen += l;
		}
		if (ctl & IGB_TXD_CMD_EOP) {
			tf->len = bad ? 0 : flen;
			return pos;
		}
	}
	return r->head;
}

static void tx_writeback(struct igb_dev *d, const struct ring *r, uint32_t end)
{
	for (uint32_t i = r->head; i != end; i = (i + 1) % r->n) {
		uint64_t da = r->base + 16ull * i;
		uint32_t ctl;
		if (dma_read(d->io.dma, da + 8, &ctl, 4) || !(ctl & IGB_TXD_CMD_RS))
			continue;
		uint32_t st = IGB_TXD_STAT_DD;
		if (dma_write_words(d->io.dma, da + 12, &st, 4))
			d->st.dma_faults++;
	}
}

/* One frame to the wire (a whole frame, or one TSO segment); counts it either way. */
static int tx_emit(void *opaque, const uint8_t *f, size_t len)
{
	struct igb_dev *d = opaque;
	if (len < 14 || !d->io.port || sriov_port_send(d->io.port, f, len) != 0) {
		d->st.tx_dropped++;
		d->st.tx_bad_desc += len < 14;
		return -1;
	}
	d->st.tx_frames++;
	d->st.tx_bytes += len;
	R(IGB_VFGPTC)++;
	R(IGB_VFGOTC) += (uint32_t)len;
	return 0;
}

static unsigned tx_queue(struct igb_dev *d, unsigned q, unsigned budget)
{
	struct ring r;
	unsigned did = 0;
	while (did < budget && ring_get(d, q, true, &r) && r.head != r.tail) {
		struct tx_frame tf = {0};
		bool fault;
		uint32_t end = tx_gather(d, q, &r, &tf, &fault);
		if (end == r.head)
			break;
		struct igb_tx_req rq = {
		    .ctx = &d->txctx[q][(tf.olinfo >> IGB_TXD_IDX_SHIFT) & 1],
		    .cmd = tf.cmd,
		    .olinfo = tf.olinfo,
		};
		if (tf.len == 0) {
			d->st.tx_dropped++;
			d->st.tx_bad_desc++;
		} else if (igb_tx_offload(&rq, d->txbuf, tf.len, d->frame, sizeof(d->frame),
					  tx_emit, d) < 0) {
			d->st.tx_dropped++; /* offload headers the frame does not hold */
			d->st.tx_bad_desc++;
		}
		tx_writeback(d, &r, end);
		STORER(IGB_TDH(q), end);
		cause(d, ivar(d, q, true));
		did++;
	}
	return did;
}

static bool rx_accept(struct igb_dev *d, const uint8_t *f, size_t len)
{
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(d->pf, d->vf, &c);
	size_t max = c.max_frame ? c.max_frame : 1522;
	if (len > max) {
		d->st.rx_too_long++;
		return false;
	}
	if (len >= 16 && f[12] == 0x81 && f[13] == 0x00) {
		uint16_t vid = (uint16_t)((f[14] << 8 | f[15]) & 0xFFF);
		unsigned i = 0;
		while (i < c.nvlans && c.vlans[i] != vid)
			i++;
		if (i == c.nvlans)
			goto filtered;
	}
	if (c.promisc || memcmp(f, c.mac, 6) == 0 || memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0)
		return true;
	for (unsigned i = 0; i < c.nuc && i < IGB_MAX_MAC_FILTERS; i++)
		if (memcmp(f, c.uc[i], 6) == 0)
			return true;
	if (f[0] & 1) {
		/* Multicast table hash, filter type 0: destination bits 47:36 (datasheet 8.10.13).
		 */
		uint16_t h = (uint16_t)(((f[4] >> 4) | (f[5] << 4)) & 0xFFF);
		for (unsigned i = 0; i < c.nmc; i++)
			if ((c.mc_hashes[i] & 0xFFF) == h) {
				R(IGB_VFMPRC)++;
				return true;
			}
	}
filtered:
	d->st.rx_filtered++;
	return false;
}

/* The RX buffer layout SRRCTL gives a queue (datasheet 8.10.2): packet buffers of BSIZEPKT
 * KiB, and with DESCTYPE "header split always" (what igbvf uses once its buffers reach 2 KiB)
 * a header buffer of BSIZEHEADER * 64 bytes in the first descriptor of each frame. */
static void rx_layout(struct igb_dev *d, unsigned q, uint32_t *bsize, uint32_t *hsize)
{
	uint32_t srrctl = LOADR(IGB_SRRCTL(q));
	*bsize = (srrctl & IGB_SRRCTL_BSIZEPKT_MASK) * 1024u;
	if (!*bsize)
		*bsize = 2048;
	*hsize = 0;
	if ((srrctl & IGB_SRRCTL_DESCTYPE_MASK) == IGB_SRRCTL_DESCTYPE_SPLIT1)
		*hsize = ((srrctl & IGB_SRRCTL_BSIZEHDR_MASK) >> IGB_SRRCTL_BSIZEHDR_SHIFT) * 64u;
}

/* Writes one frame over as many descriptors as its length needs. The first takes up to hsize
 * bytes in its header buffer (a fixed split: the 82576 fills the header buffer with the start
 * of a packet it does not split, and igbvf joins the two parts whatever the split), then each
 * takes up to bsize in its packet buffer; only the last has EOP. */
static void rx_deliver(struct igb_dev *d, unsigned q, uint8_t *f, size_t len)
{
	struct ring r = {0};
	uint32_t bsize, hsize;
	rx_layout(d, q, &bsize, &hsize);
	int tci = igb_rx_strip_vlan(f, &len); /* VMOLR.STRVLAN, as the igb PF sets for VFs */
	size_t hlen = len < hsize ? len : hsize;
	size_t need = 1 + (len - hlen > bsize ? (len - hlen - bsize + bsize - 1) / bsize : 0);
	if (!ring_get(d, q, false, &r) || (r.tail + r.n - r.head) % r.n < need) {
		/* Not enough descriptors posted: the frame is dropped, as on the wire. */
		if (d->st.rx_no_desc++ < 4)
			GW_INFO(d->name,
				"RX queue %u: %zu descriptors needed, head %u, tail %u: frame of "
				"%zu bytes dropped",
				q, need, r.head, r.tail, len);
		return;
	}
	size_t off = 0;
	uint32_t head = r.head;
	bool err = false;
	for (size_t i = 0; i < need && !err; i++) {
		uint64_t da = r.base + 16ull * head;
		union igb_rx_desc rd;
		if (dma_read(d->io.dma, da, &rd, sizeof(rd))) {
			ring_fault(d, q, false, da);
			return;
		}
		size_t h = i == 0 ? hlen : 0;
		size_t n = len - off - h < bsize ? len - off - h : bsize;
		/* A buffer outside guest memory: the descriptor completes the frame with an error
		 * and no data, so the driver drops it and moves on. */
		if ((h && dma_write(d->io.dma, rd.read.hdr_addr, f, h)) ||
		    (n && dma_write(d->io.dma, rd.read.pkt_addr, f + off + h, n))) {
			d->st.dma_faults++;
			err = true;
		}
		off += h + n;
		bool last = err || i + 1 == need;
		memset(&rd, 0, sizeof(rd));
		rd.wb.info = err ? 0 : (uint32_t)h << IGB_RXD_HDRLEN_SHIFT;
		rd.wb.status = IGB_RXD_STAT_DD | (last ? IGB_RXD_STAT_EOP : 0) |
			       (err ? IGB_RXD_ERR_RXE : 0) | (tci >= 0 ? IGB_RXD_STAT_VP : 0);
		rd.wb.length = (uint16_t)(err ? 0 : n);
		rd.wb.vlan = (uint16_t)(tci >= 0 ? tci : 0);
		/* Once, status last: the driver re-posts the descriptor as soon as it sees DD. */
		if (dma_write_words(d->io.dma, da, &rd, sizeof(rd))) {
			ring_fault(d, q, false, da);
			return;
		}
		head = (head + 1) % r.n;
	}
	if (!err) {
		d->st.rx_frames++;
		d->st.rx_bytes += len;
		R(IGB_VFGPRC)++;
		R(IGB_VFGORC) += (uint32_t)len;
	}
	STORER(IGB_RDH(q), head);
	cause(d, ivar(d, q, false));
}

/* Spreads frames over the queues by a hash of the 16 bytes after the Ethernet header, like
 * RSS without IP. */
static unsigned rx_pick(const struct igb_dev *d, const uint8_t *f, size_t len)
{
	if (d->gen.queues < 2 || len < 36)
		return 0;
	uint32_t h = 0;
	for (unsigned i = 14; i < 30; i++)
		h = h * 31 + f[i];
	unsigned q = h % d->gen.queues;
	/* Like a redirection table that names only the queues the driver turned on. */
	return (LOADR(IGB_RXDCTL(q)) & IGB_XDCTL_ENABLE) ? q : 0;
}

static unsigned rx_work(struct igb_dev *d, unsigned budget)
{
	unsigned did = 0;
	while (did < budget && d->io.port) {
		ssize_t n = sriov_port_recv(d->io.port, d->frame, sizeof(d->frame));
		if (n == -EAGAIN)
			break;
		did++;
		if (n < 14) {
			d->st.rx_too_long += n == -EMSGSIZE;
			continue;
		}
		if (rx_accept(d, d->frame, (size_t)n))
			rx_deliver(d, rx_pick(d, d->frame, (size_t)n), d->frame, (size_t)n);
	}
	return did;
}

unsigned igb_dev_process(struct igb_dev *d, unsigned budget)
{
	pthread_mutex_lock(&d->lock);
	unsigned did = mbx_work(d);
	mbx_sync(d);
	for (unsigned q = 0; q < d->gen.queues; q++)
		did += tx_queue(d, q, budget);
	/* A port that batches (dpdk:) sends the round's frames in one burst. */
	if (d->io.port)
		sriov_port_flush(d->io.port);
	did += rx_work(d, budget);
	pthread_mutex_unlock(&d->lock);
	return did;
}

unsigned igb_dev_rx_drain(struct igb_dev *d)
{
	pthread_mutex_lock(&d->lock);
	unsigned did = rx_work(d, 256);
	pthread_mutex_unlock(&d->lock);
	return did;
}

void igb_dev_get_stats(struct igb_dev *d, struct igb_dev_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

/* The device's own state: registers, mailbox, pending work. The PF side of the VF's
 * configuration is not in it: a destination's PF knows nothing of the source's, so the VMM
 * carries what it recorded from the mailbox and replays it (vf.c). */
struct igb_dev_state {
	uint8_t revision, queues; /* the generation that saved it: only the same one loads it */
	uint32_t api_version;
	uint32_t regs[IGB_VF_BAR0_SIZE / 4];
	uint32_t mbx;
	bool pf_req, pf_reply, await_ack;
	uint32_t reply[IGB_MBX_WORDS];
	bool queue_error[2][IGB_VF_MAX_QUEUES];
	bool pf_notice;
	struct igb_tx_ctx txctx[IGB_VF_MAX_QUEUES][2];
};

/* Field ids are part of the format (docs/state-format.md): never renumber, only add. */
static const struct gw_field state_fields[] = {
    GW_FIELD(1, struct igb_dev_state, revision, 0),
    GW_FIELD(2, struct igb_dev_state, api_version, 0),
    GW_FIELD(3, struct igb_dev_state, queues, 0),
    GW_FIELD(4, struct igb_dev_state, regs, 0),
    GW_FIELD(5, struct igb_dev_state, mbx, 0),
    GW_FIELD(6, struct igb_dev_state, pf_req, GW_FIELD_BOOL),
    GW_FIELD(7, struct igb_dev_state, pf_reply, GW_FIELD_BOOL),
    GW_FIELD(8, struct igb_dev_state, await_ack, GW_FIELD_BOOL),
    GW_FIELD(9, struct igb_dev_state, reply, 0),
    GW_FIELD(10, struct igb_dev_state, queue_error, GW_FIELD_BOOL),
    GW_FIELD(11, struct igb_dev_state, pf_notice, GW_FIELD_BOOL | GW_FIELD_OPTIONAL),
    GW_FIELD(12, struct igb_dev_state, txctx, GW_FIELD_OPTIONAL),
};

static const struct gw_fields state_table =
    GW_FIELDS_TABLE("igb-vf", STATE_MAGIC, STATE_VERSION, struct igb_dev_state, state_fields);

int igb_dev_save(struct igb_dev *d, struct gw_buf *out)
{
	struct igb_dev_state *st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	st->revision = d->gen.revision;
	st->queues = d->gen.queues;
	st->api_version = d->gen.api_version;
	memcpy(st->regs, d->regs, IGB_VF_BAR0_SIZE);
	st->mbx = d->mbx;
	st->pf_req = d->pf_req;
	st->pf_reply = d->pf_reply;
	st->await_ack = d->await_ack;
	memcpy(st->reply, d->reply, sizeof(st->reply));
	memcpy(st->queue_error, d->queue_error, sizeof(st->queue_error));
	st->pf_notice = d->pf_notice;
	memcpy(st->txctx, d->txctx, sizeof(st->txctx));
	pthread_mutex_unlock(&d->lock);
	int rc = gw_fields_save(&state_table, st, out);
	free(st);
	return rc;
}

int igb_dev_regs_save(const struct sriov_gen *gen, const uint32_t *regs, struct gw_buf *out)
{
	struct igb_dev_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->revision = gen->revision;
	st->queues = gen->queues;
	st->api_version = gen->api_version;
	memcpy(st->regs, regs, IGB_VF_BAR0_SIZE);
	int rc = gw_fields_save(&state_table, st, out);
	free(st);
	return rc;
}

int igb_dev_load(struct igb_dev *d, const void *data, size_t len)
{
	struct gw_rd rd;
	struct igb_dev_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	gw_rd_init(&rd, data, len);
	int rc = gw_fields_load(&state_table, &rd, st);
	if (rc == 0 && rd.left)
		rc = -EBADMSG;
	if (rc)
		goto out_free;
	if (st->revision != d->gen.revision || st->api_version != d->gen.api_version ||
	    st->queues != d->gen.queues) {
		rc = -EINVAL; /* another generation: the state means nothing to this device */
		goto out_free;
	}
	pthread_mutex_lock(&d->lock);
	memcpy(d->regs, st->regs, IGB_VF_BAR0_SIZE);
	d->mbx = st->mbx & 0xFF;
	d->pf_req = st->pf_req;
	d->pf_reply = st->pf_reply;
	d->await_ack = st->await_ack;
	memcpy(d->reply, st->reply, sizeof(d->reply));
	memcpy(d->queue_error, st->queue_error, sizeof(d->queue_error));
	d->pf_notice = st->pf_notice;
	memcpy(d->txctx, st->txctx, sizeof(d->txctx));
	/* Whatever page mode came before, the loaded mailbox may hold clear-on-read bits: trap
	 * until mbx_sync finds nothing pending. */
	d->xchg = false;
	xchg_begin(d);
	mbx_sync(d);
	GW_INFO(d->name,
		"state loaded: EIMS %#x EIAC %#x EIAM %#x IVAR %#x IVAR_MISC %#x; RX 0 head %u "
		"tail %u ctl %#x, TX 0 head %u tail %u ctl %#x",
		R(IGB_EIMS), R(IGB_EIAC), R(IGB_EIAM), R(IGB_IVAR0), R(IGB_IVAR_MISC),
		R(IGB_RDH(0)), R(IGB_RDT(0)), R(IGB_RXDCTL(0)), R(IGB_QREG(1, 0, IGB_Q_HEAD)),
		R(IGB_QREG(1, 0, IGB_Q_TAIL)), R(IGB_QREG(1, 0, IGB_Q_DCTL)));
	pthread_mutex_unlock(&d->lock);

out_free:
	free(st);
	return rc;
}
