/* SPDX-License-Identifier: Apache-2.0 */
/* The nic-echo workload's VF driver state, shared by wl_nic.c (rings) and nic_mbx.c (mailbox). */
#ifndef GODWIT_GUEST_NIC_PRIV_H
#define GODWIT_GUEST_NIC_PRIV_H

#include "guest.h"

#include "godwit/igb_vf.h"

#define NIC_RING 64u   /* descriptors per ring */
#define NIC_BUF	 2048u /* bytes per RX and TX buffer */
#define NIC_POOL 256u  /* hold: RX buffers per queue, posted round robin */

/* Error codes: negated as return values, reported as GW_REPORT_ERROR's first value. */
enum nic_err {
	NIC_ERR_NO_VF = 1,	   /* no 8086:10ca function (or fewer than vf=N+1) on bus 0 */
	NIC_ERR_NO_BAR = 2,	   /* BAR0 or the MSI-X table BAR unassigned, no MSI-X capability */
	NIC_ERR_NO_IRQ = 3,	   /* intx: the Interrupt Line names no I/O APIC pin */
	NIC_ERR_NO_MEM = 4,	   /* rings and buffers do not fit in free RAM */
	NIC_ERR_RESET_TIMEOUT = 5, /* RSTD did not follow CTRL.RST */
	NIC_ERR_MBX_BUSY = 6,	   /* the VF could not take the mailbox (VFU) */
	NIC_ERR_MBX_TIMEOUT = 7,   /* no PFACK or no reply from the PF */
	NIC_ERR_NACK = 8,	   /* the PF refused VF_RESET or SET_LPE */
	NIC_ERR_REPLY = 9,	   /* a reply to another request, or neither ACK nor NACK */
};

enum nic_irq_mode {
	NIC_MSIX,
	NIC_INTX,
	NIC_POLL,
};

struct nic_queue {
	volatile union igb_rx_desc *rx;
	volatile union igb_tx_desc *tx;
	uint8_t *rx_buf; /* NIC_RING buffers of NIC_BUF bytes each */
	uint8_t *tx_buf;
	unsigned rx_next;  /* next RX descriptor the device completes (next_to_clean) */
	unsigned tx_next;  /* next TX descriptor to fill (next_to_use) */
	unsigned tx_clean; /* oldest TX descriptor not yet reclaimed */
	unsigned tx_busy;  /* descriptors from tx_clean to tx_next, handed to the device */
	/* hold: every RX descriptor gets the next buffer of a pool, and a received frame stays
	 * in its buffer until the pool comes round, when it is checked again. */
	uint8_t *pool;
	struct nic_held *held; /* what each pool buffer received */
	unsigned pool_next;
	uint16_t slot[NIC_RING]; /* the pool buffer posted in each descriptor */
};

struct nic_held {
	uint64_t seq;
	uint32_t sum, len;
	uint32_t valid;
	uint32_t pad;
};

struct nic {
	const struct gw_boot_info *bi;
	/* Options. */
	uint64_t count; /* stop after this many echoed frames; 0 = never */
	enum nic_irq_mode mode;
	unsigned vf_index;
	bool set_mac;
	uint8_t want_mac[6];
	bool hold;
	unsigned vlan;	       /* vlan=N: join VLAN N (SET_VLAN), 0 = none */
	unsigned nmc;	       /* mc=N: N multicast hashes (SET_MULTICAST) */
	bool relay;	       /* relay=MAC: pass frames on rather than echo them */
	uint8_t relay_to[6];   /* where frames without GW_NIC_FLAG_ECHO go */
	uint8_t relay_back[6]; /* the last sender of such a frame: where echoes go back */
	/* The function. */
	uint64_t cfg; /* ECAM address of its configuration space */
	uint64_t bar0;
	uint64_t msix_table;
	unsigned msix_cap;
	uint64_t khz;
	/* What the reset handshake settled. */
	uint32_t mbx;	  /* clear-on-read V2PMBX bits seen and not yet consumed */
	const char *step; /* the mailbox exchange in progress, for error messages */
	uint8_t mac[6];
	uint32_t api; /* IGB_API_10 or IGB_API_11 */
	unsigned nq;  /* queue pairs in use */
	struct nic_queue q[IGB_VF_MAX_QUEUES];
	/* Counters. */
	uint64_t echoed, bad, stale, next_report;
};

/* The reset handshake (CTRL.RST, VF_RESET, API_NEGOTIATE, GET_QUEUES, SET_LPE and the optional
 * SET_MAC_ADDR): fills mac, api and nq. Returns 0 or a negative nic_err, with step naming the
 * exchange that failed. */
int nic_vf_reset(struct nic *n);
/* One look at the mailbox outside of an exchange: acknowledges a PF message; true when the PF
 * reset the VF or asks it to run the reset handshake again. */
bool nic_mbx_event(struct nic *n);
/* "02:00:00:00:00:01" into out[18]. */
void nic_mac_str(const uint8_t mac[6], char *out);

#endif
