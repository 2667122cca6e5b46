/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VF's side of the 82576 mailbox protocol, spoken by the VMM itself (docs/devices.md,
 * "Replay on the destination"): a migration's destination has a PF that never saw the guest's
 * exchanges, and any PF driver that speaks the protocol (Linux's igb, DPDK's, godwit's own
 * agent) learns the VF's configuration the way it always does, from the VF. Each exchange is
 * the one igbvf makes: take the buffer (VFU), write the message, REQ, wait for the PF's ACK
 * (PFACK) and its reply (PFSTS), read the reply, ACK it. PFACK, PFSTS and RSTD clear when
 * read, so every read of V2PMBX keeps what it showed.
 */
#include "godwit/deadline.h"
#include "godwit/igb_vf.h"
#include "godwit/sriov.h"
#include "godwit/sriov_pf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct replay {
	const struct sriov_mbx_vf_io *io;
	const struct sriov_gen *g;
	struct sriov_mbx_replay *out;
	uint32_t seen; /* clear-on-read bits a read showed and nobody consumed yet */
};

static uint32_t mbx(struct replay *r)
{
	uint32_t v = r->io->read(r->io->opaque, IGB_V2PMBX);
	r->seen |= v & IGB_MBX_R2C;
	return v;
}

/* Waits for a bit of V2PMBX (and consumes it, if clear-on-read); -ETIMEDOUT. */
static int wait_bit(struct replay *r, uint32_t bit)
{
	uint64_t end = gw_now_ms() + r->io->timeout_ms;
	for (unsigned i = 0;; i++) {
		uint32_t v = mbx(r);
		if ((r->seen | v) & bit) {
			r->seen &= ~bit;
			return 0;
		}
		if (gw_now_ms() >= end)
			return -ETIMEDOUT;
		if (i >= 8)
			usleep(100); /* a PF driver answers from its interrupt handler: soon */
	}
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case IGB_VF_RESET:
		return "VF_RESET";
	case IGB_VF_SET_MAC_ADDR:
		return "SET_MAC_ADDR";
	case IGB_VF_SET_MULTICAST:
		return "SET_MULTICAST";
	case IGB_VF_SET_VLAN:
		return "SET_VLAN";
	case IGB_VF_SET_LPE:
		return "SET_LPE";
	case IGB_VF_SET_PROMISC:
		return "SET_PROMISC";
	case IGB_VF_API_NEGOTIATE:
		return "API_NEGOTIATE";
	default:
		return "?";
	}
}

/* After the PF's ACK of a request: its reply, read and acknowledged. A message the PF sends
 * of its own accord meanwhile (a control message: its link changed, say) is acknowledged and
 * passed over. 0, or -ENOMSG when no reply came in time. */
static int await_reply(struct replay *r, uint32_t *reply)
{
	const struct sriov_mbx_vf_io *io = r->io;
	for (unsigned pf_msgs = 0;; pf_msgs++) {
		if (wait_bit(r, IGB_MBX_PFSTS))
			return -ENOMSG;
		io->write(io->opaque, IGB_V2PMBX, IGB_MBX_VFU);
		for (unsigned i = 0; i < IGB_MBX_WORDS; i++)
			reply[i] = io->read(io->opaque, IGB_VMBMEM + 4u * i);
		io->write(io->opaque, IGB_V2PMBX, IGB_MBX_ACK);
		if ((reply[0] & IGB_MSG_TYPE_MASK) != IGB_PF_CONTROL_MSG || pf_msgs >= 4)
			return 0;
	}
}

/* One exchange: 1 when the PF acknowledged it, 0 when it refused it (NACK), or an error. The
 * record observes it as it observes the guest's. */
static int xfer(struct replay *r, const uint32_t *msg, unsigned len, const char *what)
{
	const struct sriov_mbx_vf_io *io = r->io;
	uint32_t type = msg[0] & IGB_MSG_TYPE_MASK;
	uint64_t end = gw_now_ms() + io->timeout_ms;
	for (unsigned i = 0;; i++) { /* the buffer is the PF's while it writes (PFU) */
		io->write(io->opaque, IGB_V2PMBX, IGB_MBX_VFU);
		if (mbx(r) & IGB_MBX_VFU)
			break;
		if (gw_now_ms() >= end) {
			snprintf(r->out->error, sizeof(r->out->error),
				 "%s: the PF holds the mailbox buffer", type_name(type));
			return -ETIMEDOUT;
		}
		if (i >= 8)
			usleep(100);
	}
	for (unsigned i = 0; i < len; i++)
		io->write(io->opaque, IGB_VMBMEM + 4u * i, msg[i]);
	r->seen &= ~(IGB_MBX_PFACK | IGB_MBX_PFSTS); /* nothing older answers this one */
	io->write(io->opaque, IGB_V2PMBX, IGB_MBX_REQ);
	uint32_t reply[IGB_MBX_WORDS];
	int rc = wait_bit(r, IGB_MBX_PFACK);
	if (rc == 0)
		rc = await_reply(r, reply);
	if (rc) {
		snprintf(r->out->error, sizeof(r->out->error), "%s: no %s from the PF in %u ms",
			 type_name(type), rc == -ETIMEDOUT ? "acknowledgement" : "reply",
			 io->timeout_ms);
		return -ETIMEDOUT;
	}
	r->out->sent++;
	if ((reply[0] & IGB_MSG_TYPE_MASK) != type || !(reply[0] & (IGB_MSG_ACK | IGB_MSG_NACK))) {
		snprintf(r->out->error, sizeof(r->out->error), "%s: the PF answered %#x",
			 type_name(type), reply[0]);
		return -EPROTO;
	}
	struct sriov_mbx_event ev = {
	    .msg = msg, .len = len, .reply = reply, .reply_len = IGB_MBX_WORDS};
	sriov_mbx_record_observe(&r->out->rec, r->g, &ev);
	if (reply[0] & IGB_MSG_ACK)
		return 1;
	r->out->refused++;
	size_t n = strlen(r->out->refusals);
	snprintf(r->out->refusals + n, sizeof(r->out->refusals) - n, "%s%s", n ? ", " : "", what);
	return 0;
}

/* The settings after the reset, in the order igbvf makes them after its own. */
static int settings(struct replay *r, const struct sriov_vf_config *want)
{
	uint32_t m[IGB_MBX_WORDS];
	char what[64];
	int rc = 0;
	if (want->api != IGB_API_10) {
		uint32_t api[2] = {IGB_VF_API_NEGOTIATE, want->api};
		rc = xfer(r, api, 2, "mailbox API 1.1");
	}
	if (rc >= 0 && want->max_frame) {
		uint32_t lpe[2] = {IGB_VF_SET_LPE, want->max_frame};
		snprintf(what, sizeof(what), "max frame %u", want->max_frame);
		rc = xfer(r, lpe, 2, what);
	}
	if (rc >= 0 && memcmp(want->mac, r->out->rec.cfg.mac, 6) != 0) {
		m[0] = IGB_VF_SET_MAC_ADDR;
		igb_mac_to_words(want->mac, &m[1]);
		char mac[18];
		sriov_mac_format(want->mac, mac);
		snprintf(what, sizeof(what), "MAC %s", mac);
		rc = xfer(r, m, 3, what);
	}
	if (rc >= 0 && want->nuc) {
		m[0] = IGB_VF_SET_MAC_ADDR | IGB_MAC_FILTER_CLR;
		rc = xfer(r, m, 1, "clearing unicast filters");
	}
	for (unsigned i = 0; rc >= 0 && i < want->nuc && i < IGB_MAX_MAC_FILTERS; i++) {
		m[0] = IGB_VF_SET_MAC_ADDR | IGB_MAC_FILTER_ADD;
		igb_mac_to_words(want->uc[i], &m[1]);
		char mac[18];
		sriov_mac_format(want->uc[i], mac);
		snprintf(what, sizeof(what), "unicast filter %s", mac);
		rc = xfer(r, m, 3, what);
	}
	for (unsigned i = 0; rc >= 0 && i < want->nvlans && i < IGB_MAX_VLANS; i++) {
		uint32_t vlan[2] = {IGB_VF_SET_VLAN | 1u << IGB_MSG_INFO_SHIFT, want->vlans[i]};
		snprintf(what, sizeof(what), "VLAN %u", want->vlans[i]);
		rc = xfer(r, vlan, 2, what);
	}
	if (rc >= 0 && want->nmc) {
		unsigned n = want->nmc < IGB_MAX_MC_HASHES ? want->nmc : IGB_MAX_MC_HASHES;
		memset(m, 0, sizeof(m));
		m[0] = IGB_VF_SET_MULTICAST | n << IGB_MSG_INFO_SHIFT;
		for (unsigned i = 0; i < n; i++)
			m[1 + i / 2] |= (uint32_t)want->mc_hashes[i] << (16 * (i % 2));
		snprintf(what, sizeof(what), "%u multicast hashes", n);
		rc = xfer(r, m, 1 + (n + 1) / 2, what);
	}
	if (rc >= 0 && want->promisc) {
		uint32_t p = IGB_VF_SET_PROMISC | IGB_PROMISC_MULTICAST;
		rc = xfer(r, &p, 1, "multicast promiscuous mode");
	}
	return rc < 0 ? rc : 0;
}

int sriov_mbx_replay(const struct sriov_mbx_vf_io *io, const struct sriov_gen *g,
		     const struct sriov_vf_config *want, struct sriov_mbx_replay *out)
{
	static const uint8_t none[6];
	memset(out, 0, sizeof(*out));
	sriov_mbx_record_init(&out->rec, none);
	struct replay r = {.io = io, .g = g, .out = out};
	/* A reset in progress on the PF's side (RSTI) ends before anything can be said. */
	uint64_t end = gw_now_ms() + io->timeout_ms;
	while (mbx(&r) & IGB_MBX_RSTI) {
		if (gw_now_ms() >= end) {
			snprintf(out->error, sizeof(out->error),
				 "the PF's reset of the VF (RSTI) "
				 "did not end");
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
	/* VF_RESET: the PF clears what it held for the VF and makes it clear to send; its reply
	 * names the MAC the PF gives the VF (the administrator's, if one is set). */
	uint32_t reset = IGB_VF_RESET;
	int rc = xfer(&r, &reset, 1, "VF_RESET (the PF has no MAC for the VF)");
	return rc < 0 ? rc : settings(&r, want);
}
