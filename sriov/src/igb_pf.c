/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PF agent of the igb profile: answers VF mailbox requests the way the igb PF driver does
 * (reset handshake, MAC, multicast, VLAN, long packets, promiscuous mode) plus godwit's API
 * negotiation for newer generations, and keeps each VF's settings.
 */
#include "godwit/sriov_pf.h"

#include "godwit/fields.h"
#include "godwit/log.h"
#include "godwit/sriov.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAGIC   GW_FOURCC('G', 'V', 'F', 'C')
#define CFG_VERSION 2 /* 2: a field table instead of a positional layout */

struct sriov_pf_agent {
	pthread_mutex_t lock;
	struct sriov_gen gen;
	unsigned nvfs;
	sriov_mbx_cb cb;
	void *cb_opaque;
	uint8_t admin_mac[SRIOV_EMUL_MAX_VFS][6];
	struct sriov_vf_config vf[SRIOV_EMUL_MAX_VFS];
};

int sriov_pf_agent_create(const struct sriov_gen *gen, unsigned nvfs, struct sriov_pf_agent **out)
{
	if (nvfs == 0 || nvfs > SRIOV_EMUL_MAX_VFS)
		return -EINVAL;
	struct sriov_pf_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->gen = *gen;
	a->nvfs = nvfs;
	*out = a;
	return 0;
}

void sriov_pf_agent_destroy(struct sriov_pf_agent *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void sriov_pf_agent_set_callback(struct sriov_pf_agent *a, sriov_mbx_cb cb, void *opaque)
{
	pthread_mutex_lock(&a->lock);
	a->cb = cb;
	a->cb_opaque = opaque;
	pthread_mutex_unlock(&a->lock);
}

const struct sriov_gen *sriov_pf_agent_gen(const struct sriov_pf_agent *a)
{
	return &a->gen;
}

static bool mac_usable(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

int sriov_pf_agent_set_mac(struct sriov_pf_agent *a, unsigned vf, const uint8_t mac[6])
{
	if (vf >= a->nvfs || !mac_usable(mac))
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	memcpy(a->admin_mac[vf], mac, 6);
	memcpy(a->vf[vf].mac, mac, 6);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int sriov_pf_agent_vf_config(struct sriov_pf_agent *a, unsigned vf, struct sriov_vf_config *out)
{
	if (vf >= a->nvfs)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	*out = a->vf[vf];
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int sriov_pf_agent_put_vf_config(struct sriov_pf_agent *a, unsigned vf,
				 const struct sriov_vf_config *c)
{
	if (vf >= a->nvfs || c->nvlans > IGB_MAX_VLANS || c->nmc > IGB_MAX_MC_HASHES ||
	    c->nuc > IGB_MAX_MAC_FILTERS)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	a->vf[vf] = *c;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* What a reset leaves of a VF's settings: its MAC, no filters, API 1.0, no handshake; the
 * counters run on. Shared by the PF agent and the VMM's record of it. */
static void config_reset(struct sriov_vf_config *c, const uint8_t mac[6])
{
	uint64_t requests = c->requests, nacks = c->nacks;
	memset(c, 0, sizeof(*c));
	memcpy(c->mac, mac, 6);
	c->requests = requests;
	c->nacks = nacks;
	c->api = IGB_API_10;
}

static void reset_locked(struct sriov_pf_agent *a, unsigned vf)
{
	config_reset(&a->vf[vf], a->admin_mac[vf]);
}

void sriov_pf_agent_vf_reset(struct sriov_pf_agent *a, unsigned vf)
{
	if (vf >= a->nvfs)
		return;
	pthread_mutex_lock(&a->lock);
	reset_locked(a, vf);
	sriov_mbx_cb cb = a->cb;
	void *opaque = a->cb_opaque;
	pthread_mutex_unlock(&a->lock);
	/* Whoever follows the VF's configuration must hear that it is gone. */
	struct sriov_mbx_event ev = {.vf = vf, .vf_reset = true};
	if (cb)
		cb(opaque, &ev);
}

uint32_t sriov_pf_agent_vf_revoke(struct sriov_pf_agent *a, unsigned vf)
{
	if (vf < a->nvfs) {
		pthread_mutex_lock(&a->lock);
		a->vf[vf].clear_to_send = false;
		pthread_mutex_unlock(&a->lock);
	}
	return IGB_PF_NOT_CTS;
}

/* Each handler returns 0 (ACK) or -EINVAL (NACK) and may add reply words. */
static int do_set_mac(struct sriov_vf_config *c, const uint32_t *m, unsigned len)
{
	uint8_t mac[6];
	uint32_t info = m[0] & IGB_MSG_INFO_MASK;
	if (info == IGB_MAC_FILTER_CLR) {
		c->nuc = 0; /* the extra unicast filters; the VF's own MAC stays */
		return 0;
	}
	if (len < 3)
		return -EINVAL;
	igb_mac_from_words(&m[1], mac);
	if (!mac_usable(mac))
		return -EINVAL;
	if (info == 0) {
		memcpy(c->mac, mac, 6);
		return 0;
	}
	if (info != IGB_MAC_FILTER_ADD || c->nuc == IGB_MAX_MAC_FILTERS)
		return -EINVAL; /* unknown sub-command, or no room (igbvf: -ENOSPC) */
	memcpy(c->uc[c->nuc++], mac, 6);
	return 0;
}

static int do_set_mc(struct sriov_vf_config *c, const uint32_t *m, unsigned len)
{
	unsigned n = (m[0] & IGB_MSG_INFO_MASK) >> IGB_MSG_INFO_SHIFT;
	if (n > IGB_MAX_MC_HASHES || len < 1 + (n + 1) / 2)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		c->mc_hashes[i] = (uint16_t)(m[1 + i / 2] >> (16 * (i % 2)));
	c->nmc = (uint16_t)n;
	return 0;
}

static int do_set_vlan(struct sriov_vf_config *c, const uint32_t *m, unsigned len)
{
	if (len < 2 || m[1] > 4095)
		return -EINVAL;
	uint16_t vid = (uint16_t)m[1];
	bool add = (m[0] & IGB_MSG_INFO_MASK) != 0;
	unsigned i = 0;
	while (i < c->nvlans && c->vlans[i] != vid)
		i++;
	if (add && i == c->nvlans) {
		if (c->nvlans == IGB_MAX_VLANS)
			return -EINVAL; /* the VLAN filter table is full */
		c->vlans[c->nvlans++] = vid;
	} else if (!add && i < c->nvlans) {
		c->vlans[i] = c->vlans[--c->nvlans];
	}
	return 0;
}

static int do_set_lpe(struct sriov_vf_config *c, const uint32_t *m, unsigned len)
{
	if (len < 2 || m[1] < IGB_MIN_FRAME || m[1] > IGB_MAX_FRAME)
		return -EINVAL;
	c->max_frame = m[1];
	return 0;
}

static int do_api(const struct sriov_gen *g, struct sriov_vf_config *c, const uint32_t *m,
		  unsigned len)
{
	/* Gen1 PFs predate negotiation: they NACK the message like any unknown one. */
	if (!(g->caps & SRIOV_CAP_MBX_API_NEG) || len < 2)
		return -EINVAL;
	if (m[1] != IGB_API_10 && m[1] != IGB_API_11)
		return -EINVAL;
	if (m[1] == IGB_API_11 && g->api_version != IGB_API_11)
		return -EINVAL;
	c->api = m[1];
	return 0;
}

static int do_get_queues(const struct sriov_gen *g, const struct sriov_vf_config *c,
			 uint32_t *reply, unsigned *rlen)
{
	if (c->api != IGB_API_11)
		return -EINVAL;
	reply[1] = g->queues;
	reply[2] = g->queues;
	reply[3] = 0; /* default queue */
	*rlen = 4;
	return 0;
}

static unsigned dispatch(struct sriov_pf_agent *a, unsigned vf, const uint32_t *m, unsigned len,
			 uint32_t *reply)
{
	struct sriov_vf_config *c = &a->vf[vf];
	uint32_t type = m[0] & IGB_MSG_TYPE_MASK;
	unsigned rlen = 1;
	int rc;
	if (type == IGB_VF_RESET) {
		reset_locked(a, vf);
		c->clear_to_send = true;
		reply[0] = IGB_VF_RESET | IGB_MSG_ACK;
		igb_mac_to_words(c->mac, &reply[1]);
		reply[3] = IGB_MC_FILTER_TYPE;
		return IGB_VF_RESET_MSG_LEN;
	}
	if (!c->clear_to_send) {
		rc = -EPERM; /* nothing but a reset before the reset handshake */
	} else {
		switch (type) {
		case IGB_VF_SET_MAC_ADDR:
			rc = do_set_mac(c, m, len);
			break;
		case IGB_VF_SET_MULTICAST:
			rc = do_set_mc(c, m, len);
			break;
		case IGB_VF_SET_VLAN:
			rc = do_set_vlan(c, m, len);
			break;
		case IGB_VF_SET_LPE:
			rc = do_set_lpe(c, m, len);
			break;
		case IGB_VF_SET_PROMISC:
			c->promisc = (m[0] & IGB_MSG_INFO_MASK) != 0;
			rc = 0;
			break;
		case IGB_VF_API_NEGOTIATE:
			rc = do_api(&a->gen, c, m, len);
			break;
		case IGB_VF_GET_QUEUES:
			rc = do_get_queues(&a->gen, c, reply, &rlen);
			break;
		default:
			rc = -ENOSYS;
		}
	}
	if (rc) {
		c->nacks++;
		rlen = 1;
	}
	/* The igb PF answers with the request's own word 0, info field included, plus its
	 * verdict: igbvf compares the whole word (e1000_set_uc_addr_vf, e1000_set_vfta_vf). */
	reply[0] = (m[0] & (IGB_MSG_TYPE_MASK | IGB_MSG_INFO_MASK)) |
		   (rc ? IGB_MSG_NACK : IGB_MSG_ACK) | (c->clear_to_send ? IGB_MSG_CTS : 0);
	return rlen;
}

unsigned sriov_pf_agent_handle(struct sriov_pf_agent *a, unsigned vf, const uint32_t *msg,
			       unsigned len, uint32_t *reply)
{
	memset(reply, 0, IGB_MBX_WORDS * sizeof(*reply));
	if (vf >= a->nvfs)
		return 0;
	if (len == 0 || len > IGB_MBX_WORDS) {
		reply[0] = IGB_MSG_NACK;
		return 1;
	}
	/* A VF's ACK or NACK of a PF message is not a request. */
	if (msg[0] & (IGB_MSG_ACK | IGB_MSG_NACK))
		return 0;
	pthread_mutex_lock(&a->lock);
	sriov_mbx_cb cb = a->cb;
	void *opaque = a->cb_opaque;
	a->vf[vf].requests++;
	pthread_mutex_unlock(&a->lock);
	struct sriov_mbx_event ev = {.vf = vf, .msg = msg, .len = len};
	enum sriov_mbx_verdict v = cb ? cb(opaque, &ev) : SRIOV_MBX_ACCEPT;
	unsigned rlen;
	pthread_mutex_lock(&a->lock);
	if (v == SRIOV_MBX_DENY) {
		a->vf[vf].nacks++;
		reply[0] = (msg[0] & (IGB_MSG_TYPE_MASK | IGB_MSG_INFO_MASK)) | IGB_MSG_NACK |
			   (a->vf[vf].clear_to_send ? IGB_MSG_CTS : 0);
		rlen = 1;
	} else {
		rlen = dispatch(a, vf, msg, len, reply);
	}
	pthread_mutex_unlock(&a->lock);
	if (v == SRIOV_MBX_OBSERVE) {
		ev.reply = reply;
		ev.reply_len = rlen;
		cb(opaque, &ev);
	}
	return rlen;
}

void sriov_mbx_record_init(struct sriov_mbx_record *r, const uint8_t mac[6])
{
	memset(r, 0, sizeof(*r));
	memcpy(r->cfg.mac, mac, 6);
	memcpy(r->admin_mac, mac, 6);
	r->cfg.api = IGB_API_10;
}

void sriov_mbx_record_observe(struct sriov_mbx_record *r, const struct sriov_gen *g,
			      const struct sriov_mbx_event *ev)
{
	struct sriov_vf_config *c = &r->cfg;
	if (ev->vf_reset) {
		config_reset(c, r->admin_mac); /* as the PF's own reset */
		return;
	}
	if (!ev->msg || !ev->reply || ev->reply_len == 0 || ev->len == 0 || ev->len > IGB_MBX_WORDS)
		return;
	r->exchanges++;
	c->requests++;
	if (!(ev->reply[0] & IGB_MSG_ACK)) {
		r->nacked++;
		c->nacks++;
		return;
	}
	const uint32_t *m = ev->msg;
	switch (m[0] & IGB_MSG_TYPE_MASK) {
	case IGB_VF_RESET: {
		/* The reset clears the VF's filters; the reply names its MAC. */
		uint8_t mac[6];
		memcpy(mac, c->mac, 6);
		if (ev->reply_len >= 3)
			igb_mac_from_words(&ev->reply[1], mac);
		config_reset(c, mac);
		c->clear_to_send = true;
		break;
	}
	case IGB_VF_SET_MAC_ADDR:
		(void)do_set_mac(c, m, ev->len);
		break;
	case IGB_VF_SET_MULTICAST:
		(void)do_set_mc(c, m, ev->len);
		break;
	case IGB_VF_SET_VLAN:
		(void)do_set_vlan(c, m, ev->len);
		break;
	case IGB_VF_SET_LPE:
		(void)do_set_lpe(c, m, ev->len);
		break;
	case IGB_VF_SET_PROMISC:
		c->promisc = (m[0] & IGB_MSG_INFO_MASK) != 0;
		break;
	case IGB_VF_API_NEGOTIATE:
		(void)do_api(g, c, m, ev->len);
		break;
	default:
		break; /* GET_QUEUES and the like carry no setting */
	}
}

/* Field ids are part of the format (docs/state-format.md): never renumber, only add. */
static const struct gw_field cfg_fields[] = {
    GW_FIELD(1, struct sriov_vf_config, mac, 0),
    GW_FIELD(2, struct sriov_vf_config, clear_to_send, GW_FIELD_BOOL),
    GW_FIELD(3, struct sriov_vf_config, promisc, GW_FIELD_BOOL),
    GW_FIELD_ARRAY(4, struct sriov_vf_config, vlans, nvlans, 0),
    GW_FIELD_ARRAY(5, struct sriov_vf_config, mc_hashes, nmc, 0),
    GW_FIELD(6, struct sriov_vf_config, max_frame, 0),
    GW_FIELD(7, struct sriov_vf_config, api, 0),
    GW_FIELD(8, struct sriov_vf_config, requests, 0),
    GW_FIELD(9, struct sriov_vf_config, nacks, 0),
    GW_FIELD_ARRAY(10, struct sriov_vf_config, uc, nuc, GW_FIELD_OPTIONAL),
};

static const struct gw_fields cfg_table =
    GW_FIELDS_TABLE("vf-config", CFG_MAGIC, CFG_VERSION, struct sriov_vf_config, cfg_fields);

int sriov_vf_config_check(const struct sriov_vf_config *c, char *why, size_t n)
{
	char mac[18];
	if (!mac_usable(c->mac)) {
		sriov_mac_format(c->mac, mac);
		snprintf(why, n, "MAC %s is %s", mac, c->mac[0] & 1 ? "multicast" : "all zero");
		return -EINVAL;
	}
	if (c->nuc > IGB_MAX_MAC_FILTERS) {
		snprintf(why, n, "%u unicast filters, more than %u", c->nuc, IGB_MAX_MAC_FILTERS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->nuc; i++) {
		if (!mac_usable(c->uc[i])) {
			sriov_mac_format(c->uc[i], mac);
			snprintf(why, n, "unicast filter %s is not a unicast address", mac);
			return -EINVAL;
		}
	}
	if (c->nvlans > IGB_MAX_VLANS) {
		snprintf(why, n, "%u VLANs, more than %u", c->nvlans, IGB_MAX_VLANS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->nvlans; i++) {
		if (c->vlans[i] > 4095) {
			snprintf(why, n, "VLAN %u is past 4095", c->vlans[i]);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (c->vlans[j] == c->vlans[i]) {
				snprintf(why, n, "VLAN %u is there twice", c->vlans[i]);
				return -EINVAL;
			}
		}
	}
	if (c->nmc > IGB_MAX_MC_HASHES) {
		snprintf(why, n, "%u multicast hashes, more than %u", c->nmc, IGB_MAX_MC_HASHES);
		return -EINVAL;
	}
	if (c->max_frame && (c->max_frame < IGB_MIN_FRAME || c->max_frame > IGB_MAX_FRAME)) {
		snprintf(why, n, "max frame %u is outside %u..%u", c->max_frame, IGB_MIN_FRAME,
			 IGB_MAX_FRAME);
		return -EINVAL;
	}
	if (c->api != IGB_API_10 && c->api != IGB_API_11) {
		snprintf(why, n, "mailbox API %#x is neither 1.0 nor 1.1", c->api);
		return -EINVAL;
	}
	return 0;
}

unsigned sriov_vf_config_untrusted(struct sriov_vf_config *c, const uint8_t admin_mac[6],
				   char *what, size_t n)
{
	unsigned dropped = 0;
	size_t len = 0;
	if (n)
		what[0] = '\0';
	if (memcmp(c->mac, admin_mac, 6) != 0) {
		char mac[18];
		sriov_mac_format(c->mac, mac);
		len += (size_t)snprintf(what + len, len < n ? n - len : 0, "MAC %s", mac);
		memcpy(c->mac, admin_mac, 6);
		dropped++;
	}
	if (c->nuc) {
		snprintf(what + (len < n ? len : n), len < n ? n - len : 0, "%s%u unicast filters",
			 dropped ? ", " : "", c->nuc);
		c->nuc = 0;
		dropped++;
	}
	return dropped;
}

int sriov_vf_config_save(const struct sriov_vf_config *c, struct gw_buf *out)
{
	return gw_fields_save(&cfg_table, c, out);
}

int sriov_vf_config_load(struct sriov_vf_config *c, const void *data, size_t len)
{
	struct gw_rd rd;
	struct sriov_vf_config t = {0};
	gw_rd_init(&rd, data, len);
	int rc = gw_fields_load(&cfg_table, &rd, &t);
	if (rc)
		return rc;
	if (rd.left)
		return -EBADMSG;
	char why[80];
	if (sriov_vf_config_check(&t, why, sizeof(why)))
		return -EBADMSG;
	*c = t;
	return 0;
}
