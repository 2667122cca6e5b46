/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mailbox page of a VF passed through with VFIO, whose PF is a real driver (Linux's igb,
 * or any other that speaks the 82576 mailbox protocol): what the VMM sees and does there.
 *
 * Interception (docs/devices.md, "Mailbox interception"). The page is mapped into the guest
 * read-only, so reads of an idle mailbox exit nowhere; writes trap. The guest composes a
 * request in the mailbox memory (VMBMEM) and sends it with V2PMBX.REQ: from then on the page
 * traps until the guest acknowledges the PF's reply (V2PMBX.ACK), when the VMM reads the reply
 * from the mailbox memory and records the exchange as it does for its own PF agent
 * (sriov_vf_mbx_event: MAC, VLANs, multicast, frame size). A request the VMM's policy refuses
 * (trust=off: a MAC change) never reaches the PF: the VMM answers it with a NACK, shown
 * through the trapped page (PFACK, then PFSTS and the reply in the mailbox memory), and the
 * guest's ACK of it goes nowhere.
 *
 * The played PF reset (docs/devices.md, "Across generations"). The VF's state cannot be read
 * from the device, so a VM leaves with it only as the emulated VF does for another
 * generation: its driver resets the function and waits, and the destination re-creates it.
 * The device's PF is not asked (it may be any PF driver, and it would reset the function for
 * good): the VMM shows the driver what a PF's reset looks like on the VF's side. While it
 * lasts the mailbox page traps: V2PMBX reads with RSTI and, until the driver acknowledges
 * it, PFSTS; word 0 of the mailbox memory reads "NACK without CTS", the message that makes
 * Linux igbvf reset and renegotiate. The driver's CTRL.RST goes to the device: the function
 * resets, and its PF takes its queues away (VFRE/VFTE) until a new VF_RESET handshake, so it
 * does no DMA from then on. When the reset ends here (the VM stays), RSTD shows once and the
 * driver's handshake goes to the PF as usual.
 */
#include "vfio_priv.h"

#include "godwit/deadline.h"
#include "godwit/log.h"
#include "godwit/sriov_pf.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MBX_PAGE 4096u

void vfio_mbx_init(struct sriov_be *be)
{
	memset(&be->mbx, 0, sizeof(be->mbx));
	pthread_mutex_init(&be->mbx.lock, NULL);
}

void vfio_mbx_fini(struct sriov_be *be)
{
	pthread_mutex_destroy(&be->mbx.lock);
}

/* Caller holds m->lock. Whether reads of the page must trap: a message the VMM shows, or an
 * exchange whose reply it waits for. */
static bool trapping(const struct vfio_mbx *m)
{
	return m->pf_resetting || m->notice || m->rstd || m->answering || m->show_ack ||
	       m->show_sts || m->awaiting;
}

static bool in_mem(uint64_t off, unsigned *word)
{
	if (off < IGB_VMBMEM || off >= IGB_VMBMEM + 4u * IGB_MBX_WORDS)
		return false;
	*word = (unsigned)(off - IGB_VMBMEM) / 4u;
	return true;
}

/* The exchange is over: the page is read straight again, unless something began meanwhile
 * that needs it trapped. */
static void untrap(struct sriov_be *be)
{
	sriov_vf_mbx_exchange(be->vf, false);
	pthread_mutex_lock(&be->mbx.lock);
	bool again = trapping(&be->mbx);
	pthread_mutex_unlock(&be->mbx.lock);
	if (again)
		sriov_vf_mbx_exchange(be->vf, true);
}

/* The mailbox's interrupt, as the device would raise it: the vector its driver allocated to
 * "other" causes (IVAR_MISC), through the same eventfd the device signals. */
static void interrupt(struct sriov_be *be)
{
	uint32_t ivar = (uint32_t)vfio_dev_read(be, IGB_IVAR_MISC, 4);
	pthread_mutex_lock(&be->lock);
	bool msix = be->msix_on;
	pthread_mutex_unlock(&be->lock);
	if (!msix || !(ivar & 0x80u))
		return; /* no vector yet: the driver finds the mailbox when it next looks */
	uint64_t one = 1;
	int fd = sriov_vf_msix_eventfd(be->vf, ivar & 3u);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		GW_WARN(sriov_vf_name(be->vf), "cannot raise the mailbox interrupt: %s",
			strerror(errno));
}

bool vfio_mbx_read(struct sriov_be *be, uint64_t off, uint32_t *val)
{
	struct vfio_mbx *m = &be->mbx;
	unsigned w = 0;
	if (off >= MBX_PAGE)
		return false;
	pthread_mutex_lock(&m->lock);
	m->exits++; /* the page is mapped read-only unless it traps */
	if (!trapping(m))
		m->idle_exits++;
	if (off != IGB_V2PMBX && !in_mem(off, &w)) {
		pthread_mutex_unlock(&m->lock);
		return false;
	}
	uint32_t v = (uint32_t)vfio_dev_read(be, off, 4);
	bool back = false;
	if (off != IGB_V2PMBX) {
		if (m->pf_resetting || m->notice)
			v = w == 0 ? IGB_PF_NOT_CTS : v;
		else if (m->answering)
			v = m->answer[w];
	} else if (trapping(m)) {
		v |= (m->pf_resetting ? IGB_MBX_RSTI : 0) |
		     (m->notice || m->show_sts ? IGB_MBX_PFSTS : 0) | (m->rstd ? IGB_MBX_RSTD : 0) |
		     (m->show_ack ? IGB_MBX_PFACK : 0);
		m->rstd = m->show_ack = m->show_sts = false; /* cleared on read, as the device's */
		if (!(v & IGB_MBX_R2C))
			m->wait_polls++;
		back = !trapping(m);
	}
	pthread_mutex_unlock(&m->lock);
	if (back)
		untrap(be);
	*val = v;
	return true;
}

/* Caller holds m->lock. The guest acknowledges a PF message while its request awaits the
 * reply: the message is in the mailbox memory, which the guest still owns (VFU). Read into
 * reply; true when it is the reply (the request's type, with ACK or NACK), to be recorded. */
static bool take_reply(struct sriov_be *be, uint32_t *reply)
{
	struct vfio_mbx *m = &be->mbx;
	for (unsigned i = 0; i < IGB_MBX_WORDS; i++)
		reply[i] = (uint32_t)vfio_dev_read(be, IGB_VMBMEM + 4u * i, 4);
	return (reply[0] & IGB_MSG_TYPE_MASK) == (m->req[0] & IGB_MSG_TYPE_MASK) &&
	       (reply[0] & (IGB_MSG_ACK | IGB_MSG_NACK));
}

/* Caller holds m->lock. The guest sends the request it composed (REQ): the VMM's verdict.
 * Returns false when the VMM answers it itself (the PF must not see the REQ). */
static bool send_request(struct sriov_be *be)
{
	struct vfio_mbx *m = &be->mbx;
	memcpy(m->req, m->msg, sizeof(m->req));
	struct sriov_mbx_event ev = {.msg = m->req, .len = IGB_MBX_WORDS};
	m->windows++;
	if (sriov_vf_mbx_event(be->vf, &ev) != SRIOV_MBX_DENY) {
		m->awaiting = true;
		return true;
	}
	/* As the igb PF answers a request it refuses: the message back, with NACK (and CTS,
	 * the VF being clear to send). */
	memcpy(m->answer, m->req, sizeof(m->answer));
	m->answer[0] = m->req[0] | IGB_MSG_NACK | IGB_MSG_CTS;
	m->answering = m->show_ack = m->show_sts = true;
	m->awaiting = false;
	return false;
}

bool vfio_mbx_write(struct sriov_be *be, uint64_t off, uint32_t val)
{
	struct vfio_mbx *m = &be->mbx;
	unsigned w = 0;
	if (off >= MBX_PAGE)
		return false;
	bool trap = false, irq = false, done = false, reset = false, observed = false;
	uint32_t reply[IGB_MBX_WORDS];
	pthread_mutex_lock(&m->lock);
	m->exits++; /* writes to the page always trap: they begin, make and end exchanges */
	if (in_mem(off, &w)) {
		m->msg[w] = val;
	} else if (off == IGB_V2PMBX) {
		if ((val & IGB_MBX_ACK) && (m->notice || m->answering)) {
			/* A message the VMM played was read: the PF hears no ACK of it. */
			m->notice = m->answering = false;
			val &= ~IGB_MBX_ACK;
			done = true;
		} else if ((val & IGB_MBX_ACK) && m->awaiting && take_reply(be, reply)) {
			m->awaiting = false;
			observed = done = true;
		}
		if (val & IGB_MBX_REQ) {
			trap = true;
			if (!send_request(be)) {
				val &= ~IGB_MBX_REQ;
				irq = true;
			}
		}
	} else if (off == IGB_CTRL && (val & IGB_CTRL_RST)) {
		if (m->pf_resetting) {
			m->reset_seen = true;
			m->notice = false;
		}
		m->awaiting = m->answering = m->show_ack = m->show_sts = false;
		reset = true;
	}
	vfio_dev_write(be, off, val, 4);
	if (observed) {
		struct sriov_mbx_event ev = {.msg = m->req,
					     .len = IGB_MBX_WORDS,
					     .reply = reply,
					     .reply_len = IGB_MBX_WORDS};
		sriov_vf_mbx_event(be->vf, &ev);
	}
	bool back = done && !trapping(m);
	pthread_mutex_unlock(&m->lock);
	if (reset) {
		struct sriov_mbx_event ev = {.vf_reset = true};
		sriov_vf_mbx_event(be->vf, &ev); /* the PF restores what it holds for the VF */
	}
	if (trap)
		sriov_vf_mbx_exchange(be->vf, true);
	if (irq)
		interrupt(be); /* the answer is there: PFACK and PFSTS */
	if (back)
		untrap(be);
	return true;
}

void vfio_mbx_pf_reset(struct sriov_be *be, bool begin)
{
	struct vfio_mbx *m = &be->mbx;
	pthread_mutex_lock(&m->lock);
	if (begin) {
		m->pf_resetting = m->notice = true;
		m->rstd = m->reset_seen = false;
	} else if (m->pf_resetting) {
		m->pf_resetting = m->notice = false;
		m->rstd = true;
	} else {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	pthread_mutex_unlock(&m->lock);
	sriov_vf_mbx_exchange(be->vf, true); /* reads trap from now until RSTD was read */
	interrupt(be);
	GW_INFO(sriov_vf_name(be->vf), "%s: %s", be->addr,
		begin ? "a PF reset shown to the guest's driver (RSTI), the device's PF not asked"
		      : "the shown PF reset ended (RSTD): the driver's handshake goes to the PF");
}

bool vfio_mbx_pf_reset_seen(struct sriov_be *be)
{
	pthread_mutex_lock(&be->mbx.lock);
	bool seen = be->mbx.reset_seen;
	pthread_mutex_unlock(&be->mbx.lock);
	return seen;
}

/* A migration's destination: the driver waits on the reset it saw on the source (RSTI). The
 * device was reset when it was opened, and the 82576 latches RSTD only when its PF resets
 * (QEMU's igb too): so RSTD shows once, as it would after the PF's reset, and the driver's
 * VF_RESET goes to this host's PF. No interrupt: the function's vectors are not allocated yet
 * (its IVAR_MISC came up reset), and the driver polls while it waits. */
void vfio_mbx_recreated(struct sriov_be *be)
{
	pthread_mutex_lock(&be->mbx.lock);
	be->mbx.rstd = true;
	pthread_mutex_unlock(&be->mbx.lock);
	sriov_vf_mbx_exchange(be->vf, true);
}

void vfio_mbx_status(struct sriov_be *be, struct sriov_vf_status *out)
{
	pthread_mutex_lock(&be->mbx.lock);
	out->mbx_exchanges = be->mbx.windows;
	out->mbx_exits = be->mbx.exits;
	out->mbx_idle_exits = be->mbx.idle_exits;
	out->mbx_wait_polls = be->mbx.wait_polls;
	pthread_mutex_unlock(&be->mbx.lock);
}

static uint32_t dev_read32(void *opaque, uint32_t off)
{
	return (uint32_t)vfio_dev_read(opaque, off, 4);
}

static void dev_write32(void *opaque, uint32_t off, uint32_t val)
{
	vfio_dev_write(opaque, off, val, 4);
}

/* A migration's destination, before the guest runs: the VMM is the VF's driver for a moment
 * and tells the host's PF driver what the guest had set on the source (mbx_replay.c). The
 * device's registers, not the guest's view of them: nothing of this shows in the page. */
int vfio_mbx_replay(struct sriov_be *be, const struct sriov_gen *g,
		    const struct sriov_vf_config *want, struct sriov_mbx_replay *out)
{
	struct sriov_mbx_vf_io io = {
	    .read = dev_read32, .write = dev_write32, .opaque = be, .timeout_ms = 5000};
	uint64_t t0 = gw_now_ms();
	int rc = sriov_mbx_replay(&io, g, want, out);
	GW_INFO(sriov_vf_name(be->vf),
		"%s: %u mailbox exchanges with the host's PF in %llu ms, %u refused%s%s", be->addr,
		out->sent, (unsigned long long)(gw_now_ms() - t0), out->refused,
		out->refused ? ": " : "", out->refusals);
	return rc;
}
