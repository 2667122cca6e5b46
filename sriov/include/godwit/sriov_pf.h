/* SPDX-License-Identifier: Apache-2.0 */
/* The PF agent: plays the PF driver for VF mailbox requests and keeps each VF's settings. */
#ifndef GODWIT_SRIOV_PF_H
#define GODWIT_SRIOV_PF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/buf.h"
#include "godwit/igb_vf.h"
#include "godwit/sriov_gen.h"

struct sriov_pf_agent;

/* What the PF keeps for each VF: set by the administrator or by the VF's own requests. */
struct sriov_vf_config {
	uint8_t mac[6];
	bool clear_to_send; /* the VF completed its reset handshake */
	bool promisc;
	uint16_t nvlans;
	uint16_t vlans[IGB_MAX_VLANS];
	uint16_t nmc;
	uint16_t mc_hashes[IGB_MAX_MC_HASHES];
	uint32_t max_frame; /* long-packet enable; 0 = default 1518 */
	uint16_t nuc;	    /* extra unicast MAC filters (SET_MAC_ADDR with IGB_MAC_FILTER_ADD) */
	uint8_t uc[IGB_MAX_MAC_FILTERS][6];
	uint32_t api; /* negotiated mailbox API (IGB_API_*) */
	uint64_t requests, nacks;
};

/* A callback's verdict on one VF request (like DPDK's RTE_ETH_EVENT_VF_MBOX answers). */
enum sriov_mbx_verdict {
	SRIOV_MBX_ACCEPT = 0,  /* the PF handles it as its driver would */
	SRIOV_MBX_DENY = 1,    /* the PF answers NACK and changes nothing */
	SRIOV_MBX_OBSERVE = 2, /* handled as ACCEPT; the callback also sees the reply */
};

struct sriov_mbx_event {
	unsigned vf;
	bool vf_reset; /* not a message: the VF was reset (msg NULL); the verdict is ignored */
	const uint32_t *msg; /* the request */
	unsigned len;
	const uint32_t *reply; /* NULL on the request; the reply when OBSERVE asked for it */
	unsigned reply_len;
};
typedef enum sriov_mbx_verdict (*sriov_mbx_cb)(void *opaque, const struct sriov_mbx_event *ev);

int sriov_pf_agent_create(const struct sriov_gen *gen, unsigned nvfs, struct sriov_pf_agent **out);
void sriov_pf_agent_destroy(struct sriov_pf_agent *a);
void sriov_pf_agent_set_callback(struct sriov_pf_agent *a, sriov_mbx_cb cb, void *opaque);
const struct sriov_gen *sriov_pf_agent_gen(const struct sriov_pf_agent *a);
/* The administrator's MAC for a VF (the PF driver's "ip link set ... vf N mac"). */
int sriov_pf_agent_set_mac(struct sriov_pf_agent *a, unsigned vf, const uint8_t mac[6]);
/* A copy of a VF's configuration; -EINVAL for a VF this PF does not have. */
int sriov_pf_agent_vf_config(struct sriov_pf_agent *a, unsigned vf, struct sriov_vf_config *out);
/* The VF was reset (function-level or CTRL.RST): it must redo its reset handshake. */
void sriov_pf_agent_vf_reset(struct sriov_pf_agent *a, unsigned vf);
/* The PF begins a reset of the VF's function, as the igb PF does when it resets: the VF loses
 * its clear-to-send (anything but VF_RESET is refused until the handshake). Returns the word
 * to post to the VF's mailbox (IGB_PF_NOT_CTS). */
uint32_t sriov_pf_agent_vf_revoke(struct sriov_pf_agent *a, unsigned vf);

/*
 * Handles one request read from a VF's mailbox memory (len words, at most IGB_MBX_WORDS) and
 * writes the reply words to reply[IGB_MBX_WORDS]. Returns the reply length, or 0 for a stray
 * ACK or NACK from the VF, which needs no answer (the igb PF ignores those). Malformed,
 * oversized, unknown and premature (before the reset handshake) requests are answered with
 * NACK, as the igb PF driver does; nothing a VF sends can touch another VF's settings.
 */
unsigned sriov_pf_agent_handle(struct sriov_pf_agent *a, unsigned vf, const uint32_t *msg,
			       unsigned len, uint32_t *reply);

/*
 * The VMM's record of a VF's configuration (docs/devices.md): built only from the mailbox
 * exchanges it observed, applying what the PF acknowledged; it travels in the migration
 * stream and is replayed to the destination's PF agent, which never saw those exchanges.
 */
struct sriov_mbx_record {
	struct sriov_vf_config cfg;
	uint8_t admin_mac[6]; /* what a VF reset returns to */
	uint64_t exchanges;   /* requests observed with their replies */
	uint64_t nacked;      /* of which the PF refused */
	uint64_t denied;      /* requests the VMM's policy refused */
};
void sriov_mbx_record_init(struct sriov_mbx_record *r, const uint8_t mac[6]);
/* One observed exchange: ev->msg and ev->reply (an OBSERVE callback's second call), or a
 * VF reset (ev->vf_reset). */
void sriov_mbx_record_observe(struct sriov_mbx_record *r, const struct sriov_gen *g,
			      const struct sriov_mbx_event *ev);

/* The settings of one VF as one section of fields (for migration, docs/state-format.md), and
 * back: load takes exactly one section; 0, -EPROTO (version) or -EBADMSG (malformed). */
int sriov_vf_config_save(const struct sriov_vf_config *c, struct gw_buf *out);
int sriov_vf_config_load(struct sriov_vf_config *c, const void *data, size_t len);
/* Whether c holds only what a PF driver acknowledges (the migration stream is input from
 * outside): a unicast, non-zero MAC and unicast filters (at most IGB_MAX_MAC_FILTERS), VLAN ids
 * up to 4095 without repeats (at most IGB_MAX_VLANS), at most IGB_MAX_MC_HASHES multicast
 * hashes, a max frame of 0 or IGB_MIN_FRAME..IGB_MAX_FRAME, mailbox API 1.0 or 1.1. 0, or
 * -EINVAL with what is wrong in why. */
int sriov_vf_config_check(const struct sriov_vf_config *c, char *why, size_t n);
/* What a VF that is not trusted (trust=off) may not set, taken out of c: a MAC other than the
 * administrator's (put back) and extra unicast filters (cleared). Returns how many settings
 * it took out, named in what. */
unsigned sriov_vf_config_untrusted(struct sriov_vf_config *c, const uint8_t admin_mac[6],
				   char *what, size_t n);
int sriov_pf_agent_put_vf_config(struct sriov_pf_agent *a, unsigned vf,
				 const struct sriov_vf_config *c);

/*
 * The VF's side of the mailbox, spoken by the VMM to a PF it does not drive (a migration's
 * destination, docs/devices.md): the VF's registers through read and write, each step of the
 * PF (its ACK of a message, its reply) awaited up to timeout_ms.
 */
struct sriov_mbx_vf_io {
	uint32_t (*read)(void *opaque, uint32_t off);
	void (*write)(void *opaque, uint32_t off, uint32_t val);
	void *opaque;
	unsigned timeout_ms;
};
struct sriov_mbx_replay {
	struct sriov_mbx_record rec; /* what the PF acknowledged, observed as the guest's are */
	unsigned sent;		     /* exchanges */
	unsigned refused;   /* of which the PF refused (its administrator's settings win) */
	char refusals[256]; /* what it refused, for the log */
	char error[128];    /* why it ended early */
};
/* Replays want: VF_RESET, then the mailbox API, frame size, MAC, extra unicast filters, VLANs,
 * multicast hashes and multicast promiscuous mode, as the VF's driver sets them. Returns 0
 * (refusals are not errors), or -ETIMEDOUT, -EPROTO when the PF does not answer as the
 * protocol says (out->error says which step). */
int sriov_mbx_replay(const struct sriov_mbx_vf_io *io, const struct sriov_gen *g,
		     const struct sriov_vf_config *want, struct sriov_mbx_replay *out);

#endif
