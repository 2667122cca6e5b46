/* SPDX-License-Identifier: Apache-2.0 */
/* The igb VF model against what the Linux igbvf driver (6.1) does: its bring-up sequence,
 * mailbox words, RX header split and VLAN stripping, TX offloads and TSO, and PF resets. */
#include "igb_dev.h"

#include "godwit/sriov_gen.h"
#include "godwit/sriov_pf.h"

#include "../../lib/gw_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAM_IOVA 0x100000ull
#define RAM_SIZE (1u << 20)
#define TXR	 (RAM_IOVA + 0x1000)
#define RXR	 (RAM_IOVA + 0x2000)
#define TXB	 (RAM_IOVA + 0x10000)
#define RXH	 (RAM_IOVA + 0x30000) /* header buffers, 128 bytes each */
#define RXB	 (RAM_IOVA + 0x40000) /* packet buffers, 2 KiB each */
#define NDESC	 16u

static const uint8_t MAC[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

struct rig {
	uint8_t *ram;
	uint32_t *regs;
	struct dma_map *dma;
	struct sriov_pf_agent *pf;
	struct sriov_port *port;
	int sw;
	struct sockaddr_un peer;
	socklen_t peer_len;
	char path[108];
	struct igb_dev dev;
};

static void rig_open(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->ram = aligned_alloc(4096, RAM_SIZE);
	memset(r->ram, 0, RAM_SIZE);
	CU_ASSERT_FATAL(dma_map_create(&r->dma) == 0);
	CU_ASSERT_FATAL(dma_map_add(r->dma, RAM_IOVA, RAM_SIZE, r->ram, true) == 0);
	struct sriov_gen g;
	sriov_emul_gen(1, &g);
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g, 1, &r->pf) == 0);
	sriov_pf_agent_set_mac(r->pf, 0, MAC);
	snprintf(r->path, sizeof(r->path), "/tmp/gw-test-igbvf-%d.sock", getpid());
	unlink(r->path);
	r->sw = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", r->path);
	CU_ASSERT_FATAL(bind(r->sw, (struct sockaddr *)&a, sizeof(a)) == 0);
	char spec[128], err[128];
	snprintf(spec, sizeof(spec), "unix:%s", r->path);
	CU_ASSERT_FATAL(sriov_port_open(spec, &r->port, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(sriov_port_announce(r->port, MAC) == 0);
	uint8_t buf[128];
	r->peer_len = sizeof(r->peer);
	recvfrom(r->sw, buf, sizeof(buf), 0, (struct sockaddr *)&r->peer, &r->peer_len);
	r->regs = aligned_alloc(4096, IGB_VF_BAR0_SIZE);
	struct igb_dev_io io = {.dma = r->dma, .port = r->port};
	igb_dev_init(&r->dev, "vf0", &g, 0, r->pf, &io, r->regs);
}

static void rig_close(struct rig *r)
{
	igb_dev_fini(&r->dev);
	sriov_port_close(r->port);
	close(r->sw);
	unlink(r->path);
	sriov_pf_agent_destroy(r->pf);
	dma_map_destroy(r->dma);
	free(r->ram);
	free(r->regs);
}

static uint32_t rd(struct rig *r, uint32_t off)
{
	return (uint32_t)igb_dev_read(&r->dev, off, 4);
}

static void wr(struct rig *r, uint32_t off, uint32_t v)
{
	igb_dev_write(&r->dev, off, v, 4);
}

static void *at(struct rig *r, uint64_t iova)
{
	return r->ram + (iova - RAM_IOVA);
}

/* igbvf's v2p_mailbox: clear-on-read bits are kept until checked (e1000_read_v2p_mailbox). */
static uint32_t seen;

static bool check_bit(struct rig *r, uint32_t bit)
{
	seen |= rd(r, IGB_V2PMBX);
	bool on = seen & bit;
	seen &= ~bit;
	return on;
}

/* e1000_write_posted_mbx + e1000_read_posted_mbx, with the device thread in between. */
static void xfer(struct rig *r, const uint32_t *msg, unsigned n, uint32_t *reply, unsigned rn)
{
	wr(r, IGB_V2PMBX, IGB_MBX_VFU);
	CU_ASSERT(rd(r, IGB_V2PMBX) & IGB_MBX_VFU);
	check_bit(r, IGB_MBX_PFACK);
	check_bit(r, IGB_MBX_PFSTS);
	for (unsigned i = 0; i < n; i++)
		wr(r, IGB_VMBMEM + 4 * i, msg[i]);
	wr(r, IGB_V2PMBX, IGB_MBX_REQ);
	igb_dev_process(&r->dev, 8);
	CU_ASSERT(check_bit(r, IGB_MBX_PFACK));
	CU_ASSERT(check_bit(r, IGB_MBX_PFSTS));
	wr(r, IGB_V2PMBX, IGB_MBX_VFU);
	for (unsigned i = 0; i < rn; i++)
		reply[i] = rd(r, IGB_VMBMEM + 4 * i);
	wr(r, IGB_V2PMBX, IGB_MBX_ACK);
}

/* e1000_check_for_link_vf: link is up only if word 0 of the mailbox has CTS; an error (the
 * driver resets) when it holds NACK without CTS. Returns 1 up, 0 down, -1 reset. */
static int check_link(struct rig *r)
{
	check_bit(r, IGB_MBX_RSTD | IGB_MBX_RSTI);
	if (!(rd(r, IGB_STATUS) & IGB_STATUS_LU))
		return 0;
	wr(r, IGB_V2PMBX, IGB_MBX_VFU);
	uint32_t w0 = rd(r, IGB_VMBMEM);
	wr(r, IGB_V2PMBX, IGB_MBX_ACK);
	if (!(w0 & IGB_MSG_CTS))
		return (w0 & IGB_MSG_NACK) ? -1 : 0;
	return 1;
}

/* igbvf_reset + igbvf_open as far as the device sees them (netdev.c, vf.c). */
static void igbvf_up(struct rig *r, uint32_t srrctl)
{
	uint32_t m[IGB_MBX_WORDS] = {0}, rep[IGB_MBX_WORDS];
	wr(r, IGB_CTRL, rd(r, IGB_CTRL) | IGB_CTRL_RST);
	CU_ASSERT(check_bit(r, IGB_MBX_RSTD | IGB_MBX_RSTI));
	m[0] = IGB_VF_RESET;
	xfer(r, m, 1, rep, 3);
	CU_ASSERT_EQUAL(rep[0], IGB_VF_RESET | IGB_MSG_ACK);
	m[0] = IGB_VF_SET_MAC_ADDR;
	memcpy(&m[1], MAC, 6);
	xfer(r, m, 3, rep, 3);
	CU_ASSERT_EQUAL(rep[0] & ~IGB_MSG_CTS, IGB_VF_SET_MAC_ADDR | IGB_MSG_ACK);
	memset(m, 0, sizeof(m));
	m[0] = IGB_VF_SET_MULTICAST | 1u << IGB_MSG_INFO_SHIFT;
	m[1] = 0x010;
	xfer(r, m, IGB_MBX_WORDS, rep, 1);
	m[0] = IGB_VF_SET_MAC_ADDR | IGB_MAC_FILTER_CLR;
	m[1] = m[2] = 0;
	xfer(r, m, 3, rep, 3);
	CU_ASSERT_EQUAL(rep[0],
			IGB_VF_SET_MAC_ADDR | IGB_MAC_FILTER_CLR | IGB_MSG_ACK | IGB_MSG_CTS);
	m[0] = IGB_VF_SET_VLAN | 1u << IGB_MSG_INFO_SHIFT;
	m[1] = 100;
	xfer(r, m, 2, rep, 2);
	CU_ASSERT_EQUAL(rep[0] & ~IGB_MSG_CTS, m[0] | IGB_MSG_ACK);
	wr(r, IGB_TXDCTL(0), rd(r, IGB_TXDCTL(0)) & ~IGB_XDCTL_ENABLE);
	wr(r, IGB_TDLEN(0), NDESC * 16);
	wr(r, IGB_TDBAL(0), (uint32_t)TXR);
	wr(r, IGB_TDBAH(0), 0);
	wr(r, IGB_TDH(0), 0);
	wr(r, IGB_TDT(0), 0);
	wr(r, IGB_TXQ_BASE + 0x14, rd(r, IGB_TXQ_BASE + 0x14) & ~(1u << 11)); /* DCA_TXCTRL */
	wr(r, IGB_TXDCTL(0), IGB_XDCTL_ENABLE);
	wr(r, IGB_SRRCTL(0), srrctl);
	wr(r, IGB_RDBAL(0), (uint32_t)RXR);
	wr(r, IGB_RDBAH(0), 0);
	wr(r, IGB_RDLEN(0), NDESC * 16);
	wr(r, IGB_RDH(0), 0);
	wr(r, IGB_RDT(0), 0);
	m[0] = IGB_VF_SET_LPE;
	m[1] = 9216 + 18 + 4;
	xfer(r, m, 2, rep, 1);
	CU_ASSERT_EQUAL(rep[0], IGB_VF_SET_LPE | IGB_MSG_ACK | IGB_MSG_CTS);
	wr(r, IGB_RXDCTL(0), IGB_XDCTL_ENABLE | 16 | 8 << 8 | 1 << 16);
	union igb_rx_desc *rx = at(r, RXR);
	bool split = (srrctl & IGB_SRRCTL_DESCTYPE_MASK) == IGB_SRRCTL_DESCTYPE_SPLIT1;
	for (unsigned i = 0; i < NDESC; i++) {
		rx[i].read.pkt_addr = RXB + 2048ull * i;
		rx[i].read.hdr_addr = split ? RXH + 128ull * i : 0;
	}
	wr(r, IGB_RDT(0), NDESC - 1);
	wr(r, IGB_IVAR0, (0u | IGB_IVAR_VALID) << 8);
	wr(r, IGB_EITR(0), 488);
	wr(r, IGB_IVAR0, rd(r, IGB_IVAR0) | (1u | IGB_IVAR_VALID));
	wr(r, IGB_EITR(1), 488);
	wr(r, IGB_IVAR_MISC, 2u | IGB_IVAR_VALID);
	rd(r, IGB_EICR);
	wr(r, IGB_EIAC, 7);
	wr(r, IGB_EIAM, 7);
	wr(r, IGB_EIMS, 7);
	CU_ASSERT_EQUAL(check_link(r), 1);
}

static void test_bringup(void)
{
	struct rig r;
	rig_open(&r);
	/* A function that has not done its handshake says "not clear to send". */
	CU_ASSERT_EQUAL(rd(&r, IGB_VMBMEM), IGB_PF_NOT_CTS);
	igbvf_up(&r, 2 | IGB_SRRCTL_DESCTYPE_ADV1 | IGB_SRRCTL_DROP_EN);
	/* igbvf_initialize_last_counter_stats: every counter reads, none takes a write. */
	static const uint32_t stats[] = {0xF10, 0xF14, 0xF18, 0xF34, 0xF3C,
					 0xF40, 0xF44, 0xF48, 0xF50};
	for (unsigned i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
		wr(&r, stats[i], 1234);
		CU_ASSERT_EQUAL(rd(&r, stats[i]), 0);
	}
	CU_ASSERT_EQUAL(rd(&r, IGB_TXQ_BASE + 0x14), 0);
	/* A secondary unicast filter does not replace the VF's MAC, and is received. */
	uint32_t m[3] = {IGB_VF_SET_MAC_ADDR | IGB_MAC_FILTER_ADD, 0x0000AA02u, 0x0100}, rep[3];
	xfer(&r, m, 3, rep, 3);
	CU_ASSERT_EQUAL(rep[0], m[0] | IGB_MSG_ACK | IGB_MSG_CTS);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(r.pf, 0, &c);
	CU_ASSERT_EQUAL(memcmp(c.mac, MAC, 6), 0);
	CU_ASSERT_EQUAL(c.nuc, 1);
	uint8_t f[64] = {0x02, 0xAA, 0, 0, 0, 1};
	sendto(r.sw, f, sizeof(f), 0, (struct sockaddr *)&r.peer, r.peer_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(rd(&r, IGB_RDH(0)), 1);
	CU_ASSERT_EQUAL(rd(&r, IGB_VFGPRC), 1);
	rig_close(&r);
}

static void test_rx_split_vlan(void)
{
	struct rig r;
	rig_open(&r);
	/* igbvf_setup_srrctl once rx_buffer_len reaches 2048 (MTU above 2030): header split
	 * always, 128-byte header buffers, 2 KiB packet buffers. */
	igbvf_up(&r, 2 | (128 >> 6) << IGB_SRRCTL_BSIZEHDR_SHIFT | IGB_SRRCTL_DESCTYPE_SPLIT1 |
			 IGB_SRRCTL_DROP_EN);
	static uint8_t f[5004];
	for (unsigned i = 0; i < sizeof(f); i++)
		f[i] = (uint8_t)(i * 7);
	memcpy(f, MAC, 6);
	f[12] = 0x81; /* tagged with VLAN 100, which the VF joined */
	f[13] = 0x00;
	f[14] = 0x20;
	f[15] = 100;
	sendto(r.sw, f, sizeof(f), 0, (struct sockaddr *)&r.peer, r.peer_len);
	igb_dev_process(&r.dev, 8);
	union igb_rx_desc *rx = at(&r, RXR);
	/* 5000 bytes untagged: 128 in the header buffer, then 2048 + 2048 + 776. */
	CU_ASSERT_EQUAL(rd(&r, IGB_RDH(0)), 3);
	CU_ASSERT_EQUAL(rx[0].wb.info & IGB_RXD_HDRLEN_MASK, 128u << IGB_RXD_HDRLEN_SHIFT);
	CU_ASSERT_EQUAL(rx[0].wb.length, 2048);
	CU_ASSERT_EQUAL(rx[1].wb.length, 2048);
	CU_ASSERT_EQUAL(rx[2].wb.length, 5000 - 128 - 4096);
	CU_ASSERT_EQUAL(rx[0].wb.status & IGB_RXD_STAT_EOP, 0);
	CU_ASSERT_EQUAL(rx[1].wb.status & IGB_RXD_STAT_EOP, 0);
	CU_ASSERT(rx[2].wb.status & IGB_RXD_STAT_EOP);
	CU_ASSERT(rx[2].wb.status & IGB_RXD_STAT_VP);
	CU_ASSERT_EQUAL(rx[2].wb.vlan, 0x2064);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXH), f, 12), 0);
	CU_ASSERT_EQUAL(memcmp((uint8_t *)at(&r, RXH) + 12, f + 16, 116), 0);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXB), f + 132, 2048), 0);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXB + 4096), f + 132 + 4096, 776), 0);
	/* A buffer outside guest memory: igbvf must see a frame error (RXE is bit 31; bit 29
	 * would be a mere TCP checksum error, and the frame would go up the stack). */
	rx[3].read.pkt_addr = 0x7000000000ull;
	sendto(r.sw, f, 300, 0, (struct sockaddr *)&r.peer, r.peer_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(rx[3].wb.status & IGB_RXD_STAT_EOP);
	CU_ASSERT(rx[3].wb.status & 0x97000000u); /* E1000_RXDEXT_ERR_FRAME_ERR_MASK */
	rig_close(&r);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += be16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)s;
}

/* An Ethernet + IPv4 + TCP frame as Linux hands it to igbvf with CHECKSUM_PARTIAL: the TCP
 * checksum field holds the pseudo-header sum, the IP checksum is valid. */
static size_t tcp4_frame(uint8_t *f, size_t pay, bool tso)
{
	memset(f, 0, 54);
	memcpy(f, "\x02\x99\x99\x99\x99\x99", 6);
	memcpy(f + 6, MAC, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *tcp = f + 34;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 20 + pay) >> 8);
	ip[3] = (uint8_t)(20 + 20 + pay);
	ip[4] = 0x12;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	uint16_t c = (uint16_t)~csum(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	tcp[0] = 0x30;
	tcp[2] = 0x00;
	tcp[3] = 0x50;
	tcp[4] = 0x01; /* seq 0x01000000 */
	tcp[12] = 0x50;
	tcp[13] = 0x19; /* ACK PSH FIN */
	for (size_t i = 0; i < pay; i++)
		tcp[20 + i] = (uint8_t)(i * 13 + 1);
	uint32_t ps = csum(ip + 12, 8, 0) + 6 + (tso ? 0 : 20 + (uint32_t)pay);
	c = csum(NULL, 0, ps);
	tcp[16] = (uint8_t)(c >> 8);
	tcp[17] = (uint8_t)c;
	return 54 + pay;
}

static bool tcp4_valid(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14;
	size_t tl = len - 34;
	return csum(ip, 20, 0) == 0xFFFF && be16(ip + 2) == len - 14 &&
	       csum(f + 34, tl, csum(ip + 12, 8, 0) + 6 + (uint32_t)tl) == 0xFFFF;
}

static void post(struct rig *r, unsigned i, const void *d16)
{
	memcpy(&((union igb_tx_desc *)at(r, TXR))[i], d16, 16);
}

static void post_ctx(struct rig *r, unsigned i, uint32_t vlan, uint32_t tucmd, uint32_t mss,
		     uint32_t l4len)
{
	struct igb_tx_ctx c = {
	    .vlan_macip_lens = 20 | 14u << IGB_CTX_MACLEN_SHIFT | vlan << IGB_CTX_VLAN_SHIFT,
	    .type_tucmd_mlhl = tucmd | IGB_TXD_DTYP_CTXT | IGB_TXD_CMD_DEXT,
	    .mss_l4len_idx = mss << IGB_CTX_MSS_SHIFT | l4len << IGB_CTX_L4LEN_SHIFT,
	};
	post(r, i, &c);
}

static void post_data(struct rig *r, unsigned i, uint64_t a, uint32_t len, uint32_t cmd,
		      uint32_t olinfo)
{
	union igb_tx_desc t = {.read = {.addr = a,
					.cmd_type_len = len | IGB_TXD_DTYP_DATA | IGB_TXD_CMD_DEXT |
							IGB_TXD_CMD_IFCS | cmd,
					.olinfo_status = olinfo}};
	post(r, i, &t);
}

static void test_tx_offloads(void)
{
	struct rig r;
	rig_open(&r);
	igbvf_up(&r, 2 | IGB_SRRCTL_DESCTYPE_ADV1);
	uint8_t *f = at(&r, TXB), got[2048];
	const uint32_t last = IGB_TXD_CMD_EOP | IGB_TXD_CMD_RS;
	/* igbvf_tx_csum: a context, then the data with TXSM; header and payload apart. */
	size_t len = tcp4_frame(f, 300, false);
	post_ctx(&r, 0, 0, IGB_CTX_L4T_TCP | IGB_CTX_TUCMD_IPV4, 0, 0);
	post_data(&r, 1, TXB, 54, 0, IGB_TXD_POPTS_TXSM | (uint32_t)len << IGB_TXD_PAYLEN_SHIFT);
	post_data(&r, 2, TXB + 54, 300, last,
		  IGB_TXD_POPTS_TXSM | (uint32_t)len << IGB_TXD_PAYLEN_SHIFT);
	wr(&r, IGB_TDT(0), 3);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(recv(r.sw, got, sizeof(got), MSG_DONTWAIT), (ssize_t)len);
	CU_ASSERT(tcp4_valid(got, len));
	CU_ASSERT(((union igb_tx_desc *)at(&r, TXR))[2].wb.status & IGB_TXD_STAT_DD);
	/* VLAN insertion (VLE): the tag from the context goes in after the addresses. */
	len = tcp4_frame(f, 10, false);
	post_ctx(&r, 3, 0x2064, IGB_CTX_L4T_TCP | IGB_CTX_TUCMD_IPV4, 0, 0);
	post_data(&r, 4, TXB, (uint32_t)len, last | IGB_TXD_CMD_VLE,
		  IGB_TXD_POPTS_TXSM | (uint32_t)len << IGB_TXD_PAYLEN_SHIFT);
	wr(&r, IGB_TDT(0), 5);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(recv(r.sw, got, sizeof(got), MSG_DONTWAIT), (ssize_t)len + 4);
	CU_ASSERT_EQUAL(be16(got + 12), 0x8100);
	CU_ASSERT_EQUAL(be16(got + 14), 0x2064);
	memmove(got + 12, got + 16, len - 12);
	CU_ASSERT(tcp4_valid(got, len));
	/* TSO (igbvf_tso): 2500 bytes of payload at an MSS of 1000 are three segments. */
	len = tcp4_frame(f, 2500, true);
	f[16] = f[17] = 0; /* igbvf zeroes the IPv4 total length */
	post_ctx(&r, 5, 0, IGB_CTX_L4T_TCP | IGB_CTX_TUCMD_IPV4, 1000, 20);
	uint32_t ol = IGB_TXD_POPTS_TXSM | IGB_TXD_POPTS_IXSM | 2500u << IGB_TXD_PAYLEN_SHIFT;
	post_data(&r, 6, TXB, 54, IGB_TXD_CMD_TSE, ol);
	post_data(&r, 7, TXB + 54, 2500, last | IGB_TXD_CMD_TSE, ol);
	wr(&r, IGB_TDT(0), 8);
	igb_dev_process(&r.dev, 8);
	for (unsigned i = 0; i < 3; i++) {
		size_t want = 54 + (i < 2 ? 1000 : 500);
		ssize_t n = recv(r.sw, got, sizeof(got), MSG_DONTWAIT);
		CU_ASSERT_EQUAL_FATAL(n, (ssize_t)want);
		CU_ASSERT(tcp4_valid(got, want));
		CU_ASSERT_EQUAL(be16(got + 18), 0x1200 + i); /* IPv4 id */
		CU_ASSERT_EQUAL(be16(got + 38), 0x0100);     /* seq high half */
		CU_ASSERT_EQUAL(be16(got + 40), 1000 * i);   /* seq low half */
		CU_ASSERT_EQUAL(got[47], i < 2 ? 0x10 : 0x19);
		CU_ASSERT_EQUAL(memcmp(got + 54, f + 54 + 1000 * i, want - 54), 0);
	}
	CU_ASSERT_EQUAL(recv(r.sw, got, sizeof(got), MSG_DONTWAIT), -1);
	CU_ASSERT_EQUAL(rd(&r, IGB_VFGPTC), 5);
	CU_ASSERT_EQUAL(rd(&r, IGB_TDH(0)), 8);
	rig_close(&r);
}

/* The PF resets the function while igbvf runs (godwit's re-creation, or a PF reset). */
static void test_pf_reset(void)
{
	struct rig r;
	rig_open(&r);
	igbvf_up(&r, 2 | IGB_SRRCTL_DESCTYPE_ADV1);
	igb_dev_pf_reset_begin(&r.dev);
	/* RSTI and a message; the link check now fails, so igbvf schedules its reset task. */
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_RSTI);
	CU_ASSERT_EQUAL(check_link(&r), -1);
	CU_ASSERT_EQUAL(check_link(&r), -1); /* and again at the next watchdog run */
	uint32_t m[2] = {IGB_VF_SET_LPE, 1522}, rep[2];
	xfer(&r, m, 2, rep, 1);
	CU_ASSERT_EQUAL(rep[0], IGB_VF_SET_LPE | IGB_MSG_NACK); /* lost CTS */
	/* igbvf_reset_task: down, CTRL.RST (RSTI is enough for it to go on), the handshake. */
	igbvf_up(&r, 2 | IGB_SRRCTL_DESCTYPE_ADV1);
	CU_ASSERT(igb_dev_pf_reset_seen(&r.dev));
	igb_dev_pf_reset_end(&r.dev);
	CU_ASSERT_EQUAL(check_link(&r), 1);
	/* A device re-created for it elsewhere starts with RSTD and "not clear to send": the
	 * driver, which believes it is configured, finds out at its next link check. */
	struct sriov_gen g;
	sriov_emul_gen(1, &g);
	struct igb_dev_io io = {.dma = r.dma};
	igb_dev_fini(&r.dev);
	igb_dev_init(&r.dev, "vf0", &g, 0, r.pf, &io, r.regs);
	CU_ASSERT_EQUAL(check_link(&r), -1);
	rig_close(&r);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"igbvf bring-up", test_bringup},
	    {"rx header split, jumbo frames, VLAN strip", test_rx_split_vlan},
	    {"tx checksum, VLAN insertion, TSO", test_tx_offloads},
	    {"pf reset while up", test_pf_reset},
	};
	return gw_test_run("sriov-igbvf", cases, GW_TEST_COUNT(cases));
}
