/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Intel 82576 virtual-function programming model (facts from the public 82576 datasheet,
 * section 8.28 "Virtual Function Device Registers", and the PF-VF mailbox protocol of the
 * public Linux igb/igbvf headers). Constants and wire structs only: the freestanding test
 * guest includes this header as well as the device model.
 */
#ifndef GODWIT_IGB_VF_H
#define GODWIT_IGB_VF_H

#include <stdint.h>

/* PCI identity of a VF. */
#define IGB_VF_VENDOR 0x8086u
#define IGB_VF_DEVICE 0x10CAu
#define IGB_VF_SUBSYS 0x0000u

/* BAR0: registers, 16 KiB. BAR3: MSI-X table at 0, PBA at 0x2000, 16 KiB. */
#define IGB_VF_BAR0_SIZE  0x4000u
#define IGB_VF_BAR3_SIZE  0x4000u
#define IGB_VF_MSIX_PBA	  0x2000u
#define IGB_VF_MSIX_VECS  3u
#define IGB_VF_MAX_QUEUES 2u

/* BAR0 register offsets. */
#define IGB_CTRL      0x0000u
#define IGB_STATUS    0x0008u
#define IGB_FRTIMER   0x1048u
#define IGB_EICS      0x1520u
#define IGB_EIMS      0x1524u
#define IGB_EIMC      0x1528u
#define IGB_EIAC      0x152Cu
#define IGB_EIAM      0x1530u
#define IGB_EICR      0x1580u
#define IGB_EITR(n)   (0x1680u + 4u * (n))
#define IGB_IVAR0     0x1700u
#define IGB_IVAR_MISC 0x1740u
#define IGB_VMBMEM    0x0800u /* 16 dwords of mailbox memory */
#define IGB_V2PMBX    0x0C40u /* the VF's mailbox control register */

/* Queue registers: one 0x100-byte block per queue, RX blocks from 0x2800, TX from 0x3800
 * (datasheet 8.10, 8.12); the offsets within a block are the same for both directions. */
#define IGB_RXQ_BASE	     0x2800u
#define IGB_TXQ_BASE	     0x3800u
#define IGB_QSTRIDE	     0x100u
#define IGB_Q_BAL	     0x00u /* ring base, low */
#define IGB_Q_BAH	     0x04u /* ring base, high */
#define IGB_Q_LEN	     0x08u /* ring length in bytes */
#define IGB_Q_SRRCTL	     0x0Cu /* RX only: split and replication control (buffer size) */
#define IGB_Q_HEAD	     0x10u
#define IGB_Q_TAIL	     0x18u
#define IGB_Q_DCTL	     0x28u /* RXDCTL / TXDCTL */
#define IGB_QREG(tx, q, reg) (((tx) ? IGB_TXQ_BASE : IGB_RXQ_BASE) + IGB_QSTRIDE * (q) + (reg))
#define IGB_RDBAL(q)	     IGB_QREG(0, q, IGB_Q_BAL)
#define IGB_RDBAH(q)	     IGB_QREG(0, q, IGB_Q_BAH)
#define IGB_RDLEN(q)	     IGB_QREG(0, q, IGB_Q_LEN)
#define IGB_SRRCTL(q)	     IGB_QREG(0, q, IGB_Q_SRRCTL)
#define IGB_RDH(q)	     IGB_QREG(0, q, IGB_Q_HEAD)
#define IGB_RDT(q)	     IGB_QREG(0, q, IGB_Q_TAIL)
#define IGB_RXDCTL(q)	     IGB_QREG(0, q, IGB_Q_DCTL)
#define IGB_TDBAL(q)	     IGB_QREG(1, q, IGB_Q_BAL)
#define IGB_TDBAH(q)	     IGB_QREG(1, q, IGB_Q_BAH)
#define IGB_TDLEN(q)	     IGB_QREG(1, q, IGB_Q_LEN)
#define IGB_TDH(q)	     IGB_QREG(1, q, IGB_Q_HEAD)
#define IGB_TDT(q)	     IGB_QREG(1, q, IGB_Q_TAIL)
#define IGB_TXDCTL(q)	     IGB_QREG(1, q, IGB_Q_DCTL)
#define IGB_Q_LEN_MASK	     0xFFF80u /* RDLEN/TDLEN: ring bytes, a multiple of 128 */

/* Statistics (read-only, wrap at 2^32). */
#define IGB_VFGPRC 0x0F10u /* good packets received */
#define IGB_VFGPTC 0x0F14u /* good packets transmitted */
#define IGB_VFGORC 0x0F18u /* good octets received */
#define IGB_VFGOTC 0x0F34u /* good octets transmitted */
#define IGB_VFMPRC 0x0F3Cu /* multicast packets received */

#define IGB_CTRL_RST	      (1u << 26)
#define IGB_STATUS_FD	      (1u << 0)
#define IGB_STATUS_LU	      (1u << 1)
#define IGB_STATUS_SPEED_1000 (1u << 7)

#define IGB_IVAR_VALID 0x80u /* in each byte of IVAR0 / IVAR_MISC */

#define IGB_SRRCTL_BSIZEPKT_MASK   0x7Fu /* packet buffer size in 1 KiB units */
#define IGB_SRRCTL_BSIZEHDR_SHIFT  8	 /* header buffer size in 64-byte units, bits 11:8 */
#define IGB_SRRCTL_BSIZEHDR_MASK   (0xFu << 8)
#define IGB_SRRCTL_DESCTYPE_MASK   (7u << 25)
#define IGB_SRRCTL_DESCTYPE_ADV1   (1u << 25) /* advanced, one buffer */
#define IGB_SRRCTL_DESCTYPE_SPLIT1 (5u << 25) /* header split, header buffer always used */
#define IGB_SRRCTL_DROP_EN	   (1u << 31)
#define IGB_XDCTL_ENABLE	   (1u << 25) /* RXDCTL / TXDCTL queue enable */

/* V2PMBX bits. */
#define IGB_MBX_REQ   0x01u /* VF: request for PF ready (message written) */
#define IGB_MBX_ACK   0x02u /* VF: message from PF acknowledged */
#define IGB_MBX_VFU   0x04u /* VF owns the buffer */
#define IGB_MBX_PFU   0x08u /* PF owns the buffer */
#define IGB_MBX_PFSTS 0x10u /* PF wrote a message */
#define IGB_MBX_PFACK 0x20u /* PF acknowledged the VF's message */
#define IGB_MBX_RSTI  0x40u /* PF reset in progress */
#define IGB_MBX_RSTD  0x80u /* PF reset done */
#define IGB_MBX_R2C   (IGB_MBX_PFSTS | IGB_MBX_PFACK | IGB_MBX_RSTD) /* cleared on read */
#define IGB_MBX_WORDS 16u

/* Mailbox message word 0: type in bits 15:0, info in 23:16, flags in 31:29. */
#define IGB_MSG_TYPE_MASK  0xFFFFu
#define IGB_MSG_INFO_SHIFT 16
#define IGB_MSG_INFO_MASK  (0xFFu << 16)
#define IGB_MSG_ACK	   0x80000000u
#define IGB_MSG_NACK	   0x40000000u
#define IGB_MSG_CTS	   0x20000000u

#define IGB_VF_RESET	      0x01u /* reply: ACK, MAC in words 1-2, mc filter type in 3 */
#define IGB_VF_SET_MAC_ADDR   0x02u /* MAC in words 1-2 */
#define IGB_VF_SET_MULTICAST  0x03u /* count in info, 16-bit hashes packed in words 1.. */
#define IGB_VF_SET_VLAN	      0x04u /* info != 0: add; word 1: VLAN id */
#define IGB_VF_SET_LPE	      0x05u /* word 1: maximum frame size */
#define IGB_VF_SET_PROMISC    0x06u
#define IGB_PROMISC_MULTICAST (2u << IGB_MSG_INFO_SHIFT) /* SET_PROMISC: all multicast */
/* godwit's profile extension for newer generations (the message numbers ixgbe uses). */
#define IGB_VF_API_NEGOTIATE 0x08u /* word 1: requested API; ACK or NACK */
#define IGB_VF_GET_QUEUES    0x09u /* reply words 1-2: TX and RX queue counts */

/* PF to VF: "the PF reset or reconfigured you; run your reset handshake again" (igb PF). */
#define IGB_PF_CONTROL_MSG 0x0100u
/* What a function's mailbox holds until its reset handshake, and what the PF posts when it
 * begins a reset: NACK without CTS. Linux igbvf's link check reads word 0 whether or not a
 * message is pending, and only "NACK without CTS" ("lost CTS status") makes it reset and
 * renegotiate (e1000_check_for_link_vf); a bare control message only takes the link down. */
#define IGB_PF_NOT_CTS (IGB_PF_CONTROL_MSG | IGB_MSG_NACK)

#define IGB_VF_RESET_MSG_LEN 4u
#define IGB_MC_FILTER_TYPE   0u
#define IGB_MAX_MC_HASHES    30u
#define IGB_MAX_VLANS	     32u
#define IGB_MAX_FRAME	     9728u
#define IGB_MIN_FRAME	     60u

/* SET_MAC_ADDR's info field: 0 sets the VF's own MAC; these manage extra unicast filters
 * (igb PF since Linux 4.19; igbvf sends CLR, then one ADD per secondary address). */
#define IGB_MAC_FILTER_CLR  (1u << IGB_MSG_INFO_SHIFT)
#define IGB_MAC_FILTER_ADD  (2u << IGB_MSG_INFO_SHIFT)
#define IGB_MAX_MAC_FILTERS 3u

/* Mailbox API versions. Gen1 speaks only 1.0 (and NACKs API_NEGOTIATE, as the igb PF does);
 * gen2 also speaks 1.1, which adds GET_QUEUES. */
#define IGB_API_10 0u
#define IGB_API_11 2u

/* Advanced receive descriptor (datasheet 7.1.5). */
union igb_rx_desc {
	struct {
		uint64_t pkt_addr;
		uint64_t hdr_addr;
	} read;
	struct {
		uint32_t info; /* packet type, header length */
		uint32_t rss;
		uint32_t status; /* status 19:0, errors 31:20 */
		uint16_t length;
		uint16_t vlan;
	} wb;
};
#define IGB_RXD_STAT_DD	 0x01u
#define IGB_RXD_STAT_EOP 0x02u
#define IGB_RXD_STAT_VP	 0x08u	    /* a VLAN tag was stripped into wb.vlan */
#define IGB_RXD_ERR_RXE	 (1u << 31) /* RX data error: igbvf drops the frame (FRAME_ERR_MASK) */
/* wb.info: bits 31:16 are hdr_info, whose bits 14:5 give the bytes in the header buffer. */
#define IGB_RXD_HDRLEN_SHIFT 21
#define IGB_RXD_HDRLEN_MASK  (0x3FFu << 21)

/* Advanced transmit descriptor (datasheet 7.2.2). */
union igb_tx_desc {
	struct {
		uint64_t addr;
		uint32_t cmd_type_len;
		uint32_t olinfo_status;
	} read;
	struct {
		uint64_t rsvd;
		uint32_t nxtseq;
		uint32_t status;
	} wb;
};
#define IGB_TXD_LEN_MASK     0xFFFFu
#define IGB_TXD_DTYP_MASK    (0xFu << 20)
#define IGB_TXD_DTYP_CTXT    (0x2u << 20)
#define IGB_TXD_DTYP_DATA    (0x3u << 20)
#define IGB_TXD_CMD_EOP	     (1u << 24)
#define IGB_TXD_CMD_IFCS     (1u << 25)
#define IGB_TXD_CMD_RS	     (1u << 27)
#define IGB_TXD_CMD_DEXT     (1u << 29)
#define IGB_TXD_CMD_VLE	     (1u << 30) /* insert the context's VLAN tag */
#define IGB_TXD_CMD_TSE	     (1u << 31) /* TCP segmentation */
#define IGB_TXD_STAT_DD	     0x01u
#define IGB_TXD_IDX_SHIFT    4	       /* olinfo and mss_l4len_idx: context slot, bits 6:4 */
#define IGB_TXD_POPTS_IXSM   (1u << 8) /* olinfo: insert the IPv4 header checksum */
#define IGB_TXD_POPTS_TXSM   (1u << 9) /* olinfo: insert the TCP/UDP/SCTP checksum */
#define IGB_TXD_PAYLEN_SHIFT 14

/* Advanced context descriptor (datasheet 7.2.2.2): offload parameters for the data
 * descriptors that follow; the queue keeps it in slot IDX until replaced. */
struct igb_tx_ctx {
	uint32_t vlan_macip_lens; /* IPLEN 8:0, MACLEN 15:9, VLAN 31:16 */
	uint32_t seqnum_seed;
	uint32_t type_tucmd_mlhl; /* DTYP/DEXT as in cmd_type_len; TUCMD below */
	uint32_t mss_l4len_idx;	  /* IDX 6:4, L4LEN 15:8, MSS 31:16 */
};
#define IGB_CTX_IPLEN_MASK   0x1FFu
#define IGB_CTX_MACLEN_SHIFT 9
#define IGB_CTX_VLAN_SHIFT   16
#define IGB_CTX_TUCMD_IPV4   (1u << 10)
#define IGB_CTX_TUCMD_L4T    (3u << 11)
#define IGB_CTX_L4T_UDP	     (0u << 11)
#define IGB_CTX_L4T_TCP	     (1u << 11)
#define IGB_CTX_L4T_SCTP     (2u << 11)
#define IGB_CTX_L4LEN_SHIFT  8
#define IGB_CTX_MSS_SHIFT    16
#define IGB_TSO_MAX	     (65536u + 256u) /* the most a TSO frame gathers: 64 KiB + headers */

_Static_assert(sizeof(union igb_rx_desc) == 16, "advanced RX descriptor is 16 bytes");
_Static_assert(sizeof(union igb_tx_desc) == 16, "advanced TX descriptor is 16 bytes");
_Static_assert(sizeof(struct igb_tx_ctx) == 16, "advanced context descriptor is 16 bytes");

/* Ring lengths must be multiples of 128 bytes (8 descriptors). */
#define IGB_RING_ALIGN 128u
#define IGB_RING_MAX   4096u /* descriptors */

/* godwit's test frames (nic-echo, godwit-nicpeer): ethertype and payload header. */
#define GW_NIC_ETHERTYPE 0x88B5u /* IEEE 802 local experimental */
#define GW_NIC_MAGIC	 0x6777u
struct gw_nic_frame {
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t ethertype; /* big-endian GW_NIC_ETHERTYPE */
	uint16_t magic;	    /* GW_NIC_MAGIC, little-endian */
	uint32_t len;	    /* frame length in bytes, including this header */
	uint64_t seq;
	uint32_t sum; /* gw_nic_sum() over the payload after the header */
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct gw_nic_frame) == 36, "test frame header is 36 bytes");
#define GW_NIC_FLAG_ECHO 1u /* set by the guest on the way back */

/* A cheap checksum the guest can afford at ~1M instructions per second. */
static inline uint32_t gw_nic_sum(const uint8_t *p, uint32_t n, uint64_t seq)
{
	uint32_t a = (uint32_t)seq ^ 0x9E3779B9u, b = (uint32_t)(seq >> 32);
	for (uint32_t i = 0; i < n; i++) {
		a += p[i];
		b += a;
	}
	return (b << 16) ^ a;
}

/* A MAC in mailbox words (words 1-2 of SET_MAC_ADDR, and of VF_RESET's reply), and back. */
static inline void igb_mac_from_words(const uint32_t *w, uint8_t mac[6])
{
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)(w[i / 4] >> (8 * (i % 4)));
}

static inline void igb_mac_to_words(const uint8_t mac[6], uint32_t *w)
{
	w[0] = w[1] = 0;
	for (unsigned i = 0; i < 6; i++)
		w[i / 4] |= (uint32_t)mac[i] << (8 * (i % 4));
}

#endif
