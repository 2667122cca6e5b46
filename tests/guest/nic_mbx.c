/* SPDX-License-Identifier: Apache-2.0 */
/* nic-echo's side of the 82576 PF-VF mailbox and the VF reset handshake, as Linux igbvf does it. */
#include "nic_priv.h"

#define MBX_TIMEOUT_MS 2000 /* igbvf: E1000_VF_MBX_INIT_TIMEOUT polls of 500 us at most */
#define MBX_LOCK_TRIES 10   /* igbvf: e1000_obtain_mbx_lock_vf */
#define MBX_POLL_US    100
#define RSTD_QUIET_MS  200	    /* a PF with no reset of its own to finish: no RSTD comes */
#define LPE_FRAME      (1518u + 4u) /* a VLAN-tagged full-size frame */

static void mbx_pause(const struct nic *n)
{
	sleep_until(rdtsc() + n->khz * MBX_POLL_US / 1000);
}

/* PFSTS, PFACK and RSTD clear when read: keep what a read showed until someone consumes it. */
static uint32_t mbx_read(struct nic *n)
{
	uint32_t v = mmio_read32(n->bar0 + IGB_V2PMBX);
	n->mbx |= v & IGB_MBX_R2C;
	return v;
}

static bool mbx_take(struct nic *n, uint32_t bit)
{
	if (!(n->mbx & bit))
		mbx_read(n);
	if (!(n->mbx & bit))
		return false;
	n->mbx &= ~bit;
	return true;
}

static int mbx_wait_ms(struct nic *n, uint32_t bit, int err, unsigned ms)
{
	uint64_t end = rdtsc() + n->khz * ms;
	while (!mbx_take(n, bit)) {
		if (rdtsc() >= end)
			return -err;
		mbx_pause(n);
	}
	return 0;
}

static int mbx_wait(struct nic *n, uint32_t bit, int err)
{
	return mbx_wait_ms(n, bit, err, MBX_TIMEOUT_MS);
}

/* The buffer is the VF's while VFU reads back set (the PF has not locked it with PFU). */
static int mbx_lock(struct nic *n)
{
	for (unsigned i = 0; i < MBX_LOCK_TRIES; i++) {
		mmio_write32(n->bar0 + IGB_V2PMBX, IGB_MBX_VFU);
		if (mbx_read(n) & IGB_MBX_VFU)
			return 0;
		mbx_pause(n);
	}
	return -NIC_ERR_MBX_BUSY;
}

static int mbx_send(struct nic *n, const uint32_t *msg, unsigned len)
{
	int rc = mbx_lock(n);
	if (rc)
		return rc;
	/* The buffer is about to be overwritten: older acks and messages are void (igbvf). */
	n->mbx &= ~(IGB_MBX_PFACK | IGB_MBX_PFSTS);
	for (unsigned i = 0; i < len; i++)
		mmio_write32(n->bar0 + IGB_VMBMEM + 4 * i, msg[i]);
	/* REQ alone: the VF drops VFU so the PF can write its reply (igbvf). */
	mmio_write32(n->bar0 + IGB_V2PMBX, IGB_MBX_REQ);
	return mbx_wait(n, IGB_MBX_PFACK, NIC_ERR_MBX_TIMEOUT);
}

static int mbx_recv(struct nic *n, uint32_t *msg, unsigned len)
{
	int rc = mbx_wait(n, IGB_MBX_PFSTS, NIC_ERR_MBX_TIMEOUT);
	if (rc == 0)
		rc = mbx_lock(n);
	if (rc)
		return rc;
	for (unsigned i = 0; i < len; i++)
		msg[i] = mmio_read32(n->bar0 + IGB_VMBMEM + 4 * i);
	mmio_write32(n->bar0 + IGB_V2PMBX, IGB_MBX_ACK); /* and VFU goes */
	return 0;
}

/* One request and its reply of reply_len words, in msg. 1 = ACK, 0 = NACK, or -nic_err. */
static int mbx_xfer(struct nic *n, const char *step, uint32_t *msg, unsigned len,
		    unsigned reply_len)
{
	uint32_t type = msg[0] & IGB_MSG_TYPE_MASK;
	n->step = step;
	int rc = mbx_send(n, msg, len);
	if (rc == 0)
		rc = mbx_recv(n, msg, reply_len);
	if (rc)
		return rc;
	if ((msg[0] & IGB_MSG_TYPE_MASK) != type)
		return -NIC_ERR_REPLY;
	if (msg[0] & IGB_MSG_ACK)
		return 1;
	return (msg[0] & IGB_MSG_NACK) ? 0 : -NIC_ERR_REPLY;
}

/* CTRL.RST, a fresh RSTD, then VF_RESET, whose ACK carries the permanent MAC. */
static int vf_reset_handshake(struct nic *n)
{
	uint32_t msg[IGB_MBX_WORDS] = {IGB_VF_RESET};
	n->step = "CTRL.RST";
	mbx_read(n); /* anything pending predates the reset: collect it and drop it */
	n->mbx = 0;
	mmio_write32(n->bar0 + IGB_CTRL, IGB_CTRL_RST);
	/* A PF that resets nothing of its own says nothing either: the 82576 latches RSTD once
	 * per PF reset (CTRL_EXT.PFRSTD), so a function reset again later (another VM's driver,
	 * an FLR) finds neither RSTD nor RSTI. Then VF_RESET is what asks the PF. */
	int rc = mbx_wait_ms(n, IGB_MBX_RSTD, NIC_ERR_RESET_TIMEOUT, RSTD_QUIET_MS);
	if (rc && !(n->mbx & IGB_MBX_RSTI) && !(mbx_read(n) & IGB_MBX_RSTI)) {
		con_printf("nic-echo: no RSTD after CTRL.RST: asking the PF with VF_RESET\n");
		rc = 0;
	}
	/* RSTI: the PF is resetting the function (to move it to another host and device, say):
	 * like igbvf's watchdog, keep waiting for RSTD while it says so, up to a minute. */
	for (unsigned i = 0; rc && i < 30 && (mmio_read32(n->bar0 + IGB_V2PMBX) & IGB_MBX_RSTI);
	     i++)
		rc = mbx_wait(n, IGB_MBX_RSTD, NIC_ERR_RESET_TIMEOUT);
	if (rc == 0)
		rc = mbx_xfer(n, "VF_RESET", msg, 1, IGB_VF_RESET_MSG_LEN);
	if (rc == 0)
		return -NIC_ERR_NACK;
	if (rc < 0)
		return rc;
	igb_mac_from_words(&msg[1], n->mac);
	char mac[18];
	nic_mac_str(n->mac, mac);
	con_printf("nic-echo: VF_RESET: the PF gives mac %s\n", mac);
	uint64_t a = 0; /* the test sees what a migration's replay told the PF */
	for (unsigned i = 0; i < 6; i++)
		a |= (uint64_t)n->mac[i] << (8 * i);
	bd_report(GW_REPORT_NIC_RESET, a, 0);
	return 0;
}

/* API 1.1 brings GET_QUEUES; a PF that NACKs the negotiation speaks 1.0 with one queue pair. */
static int vf_negotiate(struct nic *n)
{
	uint32_t msg[IGB_MBX_WORDS] = {IGB_VF_API_NEGOTIATE, IGB_API_11};
	n->api = IGB_API_10;
	n->nq = 1;
	int rc = mbx_xfer(n, "API_NEGOTIATE", msg, 2, 1);
	if (rc <= 0)
		return rc;
	n->api = IGB_API_11;
	msg[0] = IGB_VF_GET_QUEUES;
	rc = mbx_xfer(n, "GET_QUEUES", msg, 1, 3);
	if (rc <= 0)
		return rc;
	unsigned nq = msg[1] < msg[2] ? msg[1] : msg[2];
	if (nq > IGB_VF_MAX_QUEUES)
		nq = IGB_VF_MAX_QUEUES;
	n->nq = nq ? nq : 1;
	return 0;
}

static int vf_set_mac(struct nic *n)
{
	uint32_t msg[IGB_MBX_WORDS] = {IGB_VF_SET_MAC_ADDR};
	char want[18], have[18];
	igb_mac_to_words(n->want_mac, &msg[1]);
	int rc = mbx_xfer(n, "SET_MAC_ADDR", msg, 3, 1);
	if (rc < 0)
		return rc;
	nic_mac_str(n->want_mac, want);
	nic_mac_str(n->mac, have);
	if (rc == 1) {
		con_printf("nic-echo: PF accepted mac %s\n", want);
		memcpy(n->mac, n->want_mac, 6);
	} else {
		con_printf("nic-echo: PF refused mac %s, keeping %s\n", want, have);
	}
	return 0;
}

/* vlan=N and mc=N: filters the PF keeps for the VF (and a migration must keep too). */
static int vf_filters(struct nic *n)
{
	uint32_t msg[IGB_MBX_WORDS] = {0};
	int rc = 1;
	if (n->vlan) {
		msg[0] = IGB_VF_SET_VLAN | 1u << IGB_MSG_INFO_SHIFT;
		msg[1] = n->vlan;
		rc = mbx_xfer(n, "SET_VLAN", msg, 2, 1);
		if (rc >= 0)
			con_printf("nic-echo: PF %s vlan %u\n", rc ? "accepted" : "refused",
				   n->vlan);
	}
	if (rc >= 0 && n->nmc) {
		memset(msg, 0, sizeof(msg));
		msg[0] = IGB_VF_SET_MULTICAST | n->nmc << IGB_MSG_INFO_SHIFT;
		for (unsigned i = 0; i < n->nmc; i++)
			msg[1 + i / 2] |= (0x100u + i) << (16 * (i % 2));
		rc = mbx_xfer(n, "SET_MULTICAST", msg, 1 + (n->nmc + 1) / 2, 1);
		if (rc >= 0)
			con_printf("nic-echo: PF %s %u multicast hashes\n",
				   rc ? "accepted" : "refused", n->nmc);
	}
	return rc < 0 ? rc : 0;
}

int nic_vf_reset(struct nic *n)
{
	int rc = vf_reset_handshake(n);
	if (rc == 0)
		rc = vf_negotiate(n);
	if (rc)
		return rc;
	uint32_t msg[IGB_MBX_WORDS] = {IGB_VF_SET_LPE, LPE_FRAME};
	rc = mbx_xfer(n, "SET_LPE", msg, 2, 1);
	if (rc <= 0)
		return rc ? rc : -NIC_ERR_NACK;
	rc = n->set_mac ? vf_set_mac(n) : 0;
	return rc ? rc : vf_filters(n);
}

bool nic_mbx_event(struct nic *n)
{
	uint32_t v = mbx_read(n);
	if ((v & IGB_MBX_RSTI) || (n->mbx & IGB_MBX_RSTD))
		return true;
	n->mbx &= ~IGB_MBX_PFACK; /* no request of ours is outstanding */
	if (!(n->mbx & IGB_MBX_PFSTS) || mbx_lock(n))
		return false; /* nothing, or the PF holds the buffer: look again later */
	n->mbx &= ~IGB_MBX_PFSTS;
	uint32_t w0 = mmio_read32(n->bar0 + IGB_VMBMEM);
	mmio_write32(n->bar0 + IGB_V2PMBX, IGB_MBX_ACK);
	return (w0 & IGB_MSG_TYPE_MASK) == IGB_PF_CONTROL_MSG;
}

void nic_mac_str(const uint8_t mac[6], char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < 6; i++) {
		out[3 * i] = hex[mac[i] >> 4];
		out[3 * i + 1] = hex[mac[i] & 15];
		out[3 * i + 2] = i < 5 ? ':' : '\0';
	}
}
