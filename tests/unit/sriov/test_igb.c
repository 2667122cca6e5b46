/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the igb profile: VF register semantics, the mailbox and the PF agent, the
 * RX/TX descriptor engines, device state, and every kind of bad input a guest can give. */
#include "igb_dev.h"

#include "godwit/sriov_gen.h"
#include "godwit/sriov_pf.h"

#include "../../lib/gw_test.h"
#include "../../lib/store_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAM_IOVA 0x100000ull
#define RAM_SIZE (1u << 20)

struct rig {
	uint8_t *ram;
	struct dma_map *dma;
	struct sriov_pf_agent *pf;
	struct sriov_port *port;
	int sw; /* the "switch" socket at the other end of the port */
	struct sockaddr_un port_addr;
	socklen_t port_addr_len;
	char path[108];
	uint32_t *regs, *regs2;
	struct igb_dev dev, dev2;
	unsigned msix[IGB_VF_MSIX_VECS], kicks;
	int intx;
	int xchg;		    /* the mailbox page traps (1) or is mapped (0), per mbx_xchg */
	unsigned xchg_on, xchg_off; /* how often each was asked */
};

static const uint8_t MAC[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

static void on_msix(void *o, unsigned v)
{
	((struct rig *)o)->msix[v]++;
}
static void on_intx(void *o, bool l)
{
	((struct rig *)o)->intx = l;
}
static void on_kick(void *o)
{
	((struct rig *)o)->kicks++;
}
static void on_xchg(void *o, bool on)
{
	struct rig *r = o;
	CU_ASSERT_NOT_EQUAL(r->xchg, on); /* strictly alternating */
	r->xchg = on;
	if (on)
		r->xchg_on++;
	else
		r->xchg_off++;
}

static void rig_open(struct rig *r, unsigned gen)
{
	memset(r, 0, sizeof(*r));
	r->ram = aligned_alloc(4096, RAM_SIZE);
	memset(r->ram, 0, RAM_SIZE);
	CU_ASSERT_FATAL(dma_map_create(&r->dma) == 0);
	CU_ASSERT_FATAL(dma_map_add(r->dma, RAM_IOVA, RAM_SIZE, r->ram, true) == 0);
	struct sriov_gen g;
	sriov_emul_gen(gen, &g);
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g, 7, &r->pf) == 0);
	sriov_pf_agent_set_mac(r->pf, 0, MAC);
	snprintf(r->path, sizeof(r->path), "/tmp/gw-test-igb-%d.sock", getpid());
	unlink(r->path);
	r->sw = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", r->path);
	CU_ASSERT_FATAL(bind(r->sw, (struct sockaddr *)&a, sizeof(a)) == 0);
	char spec[128], err[128];
	snprintf(spec, sizeof(spec), "unix:%s", r->path);
	CU_ASSERT_FATAL(sriov_port_open(spec, &r->port, err, sizeof(err)) == 0);
	/* The announce tells the switch where the port is. */
	CU_ASSERT_FATAL(sriov_port_announce(r->port, MAC) == 0);
	uint8_t buf[128];
	r->port_addr_len = sizeof(r->port_addr);
	CU_ASSERT(recvfrom(r->sw, buf, sizeof(buf), 0, (struct sockaddr *)&r->port_addr,
			   &r->port_addr_len) == 60);
	r->regs = aligned_alloc(4096, IGB_VF_BAR0_SIZE);
	r->regs2 = aligned_alloc(4096, IGB_VF_BAR0_SIZE);
	struct igb_dev_io io = {.dma = r->dma,
				.port = r->port,
				.msix = on_msix,
				.intx = on_intx,
				.kick = on_kick,
				.mbx_xchg = on_xchg,
				.opaque = r};
	r->xchg = 1; /* power-on: RSTD pending, the page traps */
	igb_dev_init(&r->dev, "vf0", &g, 0, r->pf, &io, r->regs);
	struct igb_dev_io io2 = io;
	io2.port = NULL;
	io2.mbx_xchg = NULL;
	igb_dev_init(&r->dev2, "vf1", &g, 1, r->pf, &io2, r->regs2);
}

static void rig_close(struct rig *r)
{
	igb_dev_fini(&r->dev);
	igb_dev_fini(&r->dev2);
	sriov_port_close(r->port);
	close(r->sw);
	unlink(r->path);
	sriov_pf_agent_destroy(r->pf);
	dma_map_destroy(r->dma);
	free(r->ram);
	free(r->regs);
	free(r->regs2);
}

static uint32_t rd(struct rig *r, uint32_t off)
{
	return (uint32_t)igb_dev_read(&r->dev, off, 4);
}
static void wr(struct rig *r, uint32_t off, uint32_t v)
{
	igb_dev_write(&r->dev, off, v, 4);
}
static void wr2(struct rig *r, uint32_t off, uint32_t v)
{
	igb_dev_write(&r->dev2, off, v, 4);
}

/* The VF side of one mailbox exchange, as igbvf does it; returns the reply length seen. */
static void mbx_send(struct rig *r, const uint32_t *msg, unsigned n, uint32_t *reply)
{
	wr(r, IGB_V2PMBX, IGB_MBX_VFU);
	CU_ASSERT(rd(r, IGB_V2PMBX) & IGB_MBX_VFU);
	for (unsigned i = 0; i < n; i++)
		wr(r, IGB_VMBMEM + 4 * i, msg[i]);
	wr(r, IGB_V2PMBX, IGB_MBX_REQ);
	igb_dev_process(&r->dev, 8);
	uint32_t m = rd(r, IGB_V2PMBX);
	CU_ASSERT(m & IGB_MBX_PFACK);
	CU_ASSERT(m & IGB_MBX_PFSTS);
	CU_ASSERT_FALSE(rd(r, IGB_V2PMBX) & (IGB_MBX_PFACK | IGB_MBX_PFSTS)); /* read clears */
	for (unsigned i = 0; i < IGB_MBX_WORDS; i++)
		reply[i] = rd(r, IGB_VMBMEM + 4 * i);
	wr(r, IGB_V2PMBX, IGB_MBX_ACK);
}

static void vf_reset(struct rig *r)
{
	uint32_t msg = IGB_VF_RESET, reply[IGB_MBX_WORDS];
	wr(r, IGB_CTRL, IGB_CTRL_RST);
	CU_ASSERT(rd(r, IGB_V2PMBX) & IGB_MBX_RSTD);
	mbx_send(r, &msg, 1, reply);
	CU_ASSERT_EQUAL(reply[0], IGB_VF_RESET | IGB_MSG_ACK);
	CU_ASSERT_EQUAL(reply[1], 0x33221102u);
	CU_ASSERT_EQUAL(reply[2] & 0xFFFF, 0x5544u);
}

static void test_registers(void)
{
	struct rig r;
	rig_open(&r, 1);
	CU_ASSERT(rd(&r, IGB_STATUS) & IGB_STATUS_LU);
	/* Interrupt causes: EICS sets, read clears, write 1 clears. */
	wr(&r, IGB_EICS, 0x5);
	CU_ASSERT_EQUAL(rd(&r, IGB_EICR), 0x5);
	CU_ASSERT_EQUAL(rd(&r, IGB_EICR), 0);
	wr(&r, IGB_EICS, 0x3);
	wr(&r, IGB_EICR, 0x1);
	CU_ASSERT_EQUAL(rd(&r, IGB_EICR), 0x2);
	/* INTx follows EICR & EIMS while MSI-X is off. */
	wr(&r, IGB_EIMS, 0x1);
	wr(&r, IGB_EICS, 0x1);
	CU_ASSERT_EQUAL(r.intx, 1);
	rd(&r, IGB_EICR);
	CU_ASSERT_EQUAL(r.intx, 0);
	/* MSI-X: a masked cause stays latched and fires when unmasked; EIAM auto-masks. */
	igb_dev_set_msix(&r.dev, true);
	wr(&r, IGB_EIMC, 0x7);
	wr(&r, IGB_EICS, 0x2);
	CU_ASSERT_EQUAL(r.msix[1], 0);
	wr(&r, IGB_EIAM, 0x2);
	wr(&r, IGB_EIMS, 0x2);
	CU_ASSERT_EQUAL(r.msix[1], 1);
	CU_ASSERT_EQUAL(rd(&r, IGB_EIMS) & 0x2, 0);
	/* Statistics are read-only; odd sizes and misaligned accesses are dropped. */
	wr(&r, IGB_VFGPRC, 1234);
	CU_ASSERT_EQUAL(rd(&r, IGB_VFGPRC), 0);
	igb_dev_write(&r.dev, IGB_EIMS + 1, 0xFF, 4);
	igb_dev_write(&r.dev, IGB_EIMS, 0xFF, 2);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev, IGB_STATUS, 1), 0);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev, IGB_VF_BAR0_SIZE, 4), 0);
	/* Queue 1 does not exist on gen1: it reads as zero and ignores writes. */
	wr(&r, IGB_RDLEN(1), 4096);
	CU_ASSERT_EQUAL(rd(&r, IGB_RDLEN(1)), 0);
	rig_close(&r);
}

static void test_garbage_everywhere(void)
{
	struct rig r;
	rig_open(&r, 2);
	igb_dev_write(&r.dev2, IGB_CTRL, IGB_CTRL_RST, 4);
	struct sriov_vf_config before, after;
	sriov_pf_agent_vf_config(r.pf, 1, &before);
	/* Every register of VF 0, every size, random values; the device keeps working. */
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (unsigned pass = 0; pass < 4; pass++) {
		for (uint32_t off = 0; off < IGB_VF_BAR0_SIZE; off += 4) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			igb_dev_write(&r.dev, off + (x & 3), x, 1u << (x >> 62));
			igb_dev_write(&r.dev, off, x >> 8, 4);
			igb_dev_read(&r.dev, off, 4);
		}
		igb_dev_process(&r.dev, 64);
	}
	sriov_pf_agent_vf_config(r.pf, 1, &after);
	CU_ASSERT_EQUAL(memcmp(&before, &after, sizeof(before)), 0);
	/* And a reset brings it back to a usable state. */
	vf_reset(&r);
	rig_close(&r);
}

static void test_mailbox_registers(void)
{
	struct rig r;
	rig_open(&r, 1);
	igb_dev_set_msix(&r.dev, true);
	vf_reset(&r);
	wr(&r, IGB_IVAR_MISC, 2 | IGB_IVAR_VALID);
	wr(&r, IGB_EIMS, 0x4);
	uint32_t promisc = IGB_VF_SET_PROMISC, rep0[IGB_MBX_WORDS];
	mbx_send(&r, &promisc, 1, rep0);
	CU_ASSERT(r.msix[2] >= 1); /* mailbox interrupts on the vector IVAR_MISC names */
	/* Before the handshake nothing but a reset is accepted: the PF NACKs. */
	wr(&r, IGB_CTRL, IGB_CTRL_RST);
	uint32_t msg[2] = {IGB_VF_SET_LPE, 1522}, reply[IGB_MBX_WORDS];
	mbx_send(&r, msg, 2, reply);
	CU_ASSERT(reply[0] & IGB_MSG_NACK);
	vf_reset(&r);
	mbx_send(&r, msg, 2, reply);
	CU_ASSERT_EQUAL(reply[0], IGB_VF_SET_LPE | IGB_MSG_ACK | IGB_MSG_CTS);
	/* While the VF holds the buffer the PF's reply waits. */
	wr(&r, IGB_V2PMBX, IGB_MBX_VFU);
	wr(&r, IGB_VMBMEM, IGB_VF_SET_PROMISC);
	wr(&r, IGB_V2PMBX, IGB_MBX_REQ | IGB_MBX_VFU);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_FALSE(rd(&r, IGB_V2PMBX) & IGB_MBX_PFSTS);
	wr(&r, IGB_V2PMBX, 0);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_PFSTS);
	rig_close(&r);
}

static unsigned agent(struct sriov_pf_agent *a, unsigned vf, const uint32_t *m, unsigned n,
		      uint32_t *reply)
{
	return sriov_pf_agent_handle(a, vf, m, n, reply);
}

static void test_pf_agent(void)
{
	struct sriov_gen g1, g2;
	sriov_emul_gen(1, &g1);
	sriov_emul_gen(2, &g2);
	struct sriov_pf_agent *a, *b;
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g1, 2, &a) == 0);
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g2, 2, &b) == 0);
	uint32_t rep[IGB_MBX_WORDS], m[IGB_MBX_WORDS + 1] = {IGB_VF_RESET};
	CU_ASSERT_EQUAL(agent(a, 0, m, 1, rep), IGB_VF_RESET_MSG_LEN);
	CU_ASSERT_EQUAL(agent(b, 0, m, 1, rep), IGB_VF_RESET_MSG_LEN);
	/* MAC: a unicast address is taken, multicast or zero is refused. */
	uint32_t mac[3] = {IGB_VF_SET_MAC_ADDR, 0x33221102, 0x5544};
	agent(a, 0, mac, 3, rep);
	CU_ASSERT_EQUAL(rep[0] & IGB_MSG_ACK, IGB_MSG_ACK);
	mac[1] = 0x33221101;
	agent(a, 0, mac, 3, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(a, 0, &c);
	CU_ASSERT_EQUAL(memcmp(c.mac, MAC, 6), 0);
	/* Multicast: at most 30 hashes, and the words must be there. */
	uint32_t mc[16] = {IGB_VF_SET_MULTICAST | (3u << IGB_MSG_INFO_SHIFT), 0x00020001, 0x3};
	agent(a, 0, mc, 16, rep);
	CU_ASSERT(rep[0] & IGB_MSG_ACK);
	sriov_pf_agent_vf_config(a, 0, &c);
	CU_ASSERT_EQUAL(c.nmc, 3);
	CU_ASSERT_EQUAL(c.mc_hashes[2], 3);
	mc[0] = IGB_VF_SET_MULTICAST | (31u << IGB_MSG_INFO_SHIFT);
	agent(a, 0, mc, 16, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	mc[0] = IGB_VF_SET_MULTICAST | (8u << IGB_MSG_INFO_SHIFT);
	agent(a, 0, mc, 3, rep); /* claims 8 hashes, carries 4 */
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	/* VLANs: add, add again, remove; id beyond 4095 refused; table full refused. */
	uint32_t vl[2] = {IGB_VF_SET_VLAN | (1u << IGB_MSG_INFO_SHIFT), 100};
	agent(a, 0, vl, 2, rep);
	agent(a, 0, vl, 2, rep);
	sriov_pf_agent_vf_config(a, 0, &c);
	CU_ASSERT_EQUAL(c.nvlans, 1);
	vl[1] = 5000;
	agent(a, 0, vl, 2, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	for (uint32_t v = 1; v <= IGB_MAX_VLANS + 1; v++) {
		vl[1] = v;
		agent(a, 0, vl, 2, rep);
	}
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	vl[0] = IGB_VF_SET_VLAN;
	vl[1] = 100;
	agent(a, 0, vl, 2, rep);
	sriov_pf_agent_vf_config(a, 0, &c);
	CU_ASSERT_EQUAL(c.nvlans, IGB_MAX_VLANS - 1);
	/* Long packets within range only. */
	uint32_t lpe[2] = {IGB_VF_SET_LPE, 100000};
	agent(a, 0, lpe, 2, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	/* API negotiation: gen1 NACKs it like any unknown message, gen2 takes 1.1. */
	uint32_t api[2] = {IGB_VF_API_NEGOTIATE, IGB_API_11}, gq = IGB_VF_GET_QUEUES;
	agent(a, 0, api, 2, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	agent(a, 0, &gq, 1, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	agent(b, 0, api, 2, rep);
	CU_ASSERT(rep[0] & IGB_MSG_ACK);
	CU_ASSERT_EQUAL(agent(b, 0, &gq, 1, rep), 4);
	CU_ASSERT_EQUAL(rep[1], 2);
	/* Oversized, empty, unknown, stray replies and VFs the PF lacks. */
	CU_ASSERT_EQUAL(agent(a, 0, m, IGB_MBX_WORDS + 1, rep), 1);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	CU_ASSERT_EQUAL(agent(a, 0, m, 0, rep), 1);
	uint32_t unk = 0x77;
	agent(a, 0, &unk, 1, rep);
	CU_ASSERT(rep[0] & IGB_MSG_NACK);
	uint32_t stray = IGB_VF_RESET | IGB_MSG_ACK;
	CU_ASSERT_EQUAL(agent(a, 0, &stray, 1, rep), 0);
	CU_ASSERT_EQUAL(agent(a, 5, m, 1, rep), 0);
	/* VF 1 was never touched by any of this. */
	sriov_pf_agent_vf_config(a, 1, &c);
	CU_ASSERT_EQUAL(c.requests, 0);
	CU_ASSERT_FALSE(c.clear_to_send);
	sriov_pf_agent_destroy(a);
	sriov_pf_agent_destroy(b);
}

static enum sriov_mbx_verdict deny_mac(void *opaque, const struct sriov_mbx_event *ev)
{
	unsigned *seen = opaque;
	if (ev->vf_reset)
		return SRIOV_MBX_ACCEPT;
	if (ev->reply) {
		seen[1]++;
		return SRIOV_MBX_ACCEPT;
	}
	seen[0]++;
	if ((ev->msg[0] & IGB_MSG_TYPE_MASK) == IGB_VF_SET_MAC_ADDR)
		return SRIOV_MBX_DENY;
	return SRIOV_MBX_OBSERVE;
}

static void test_pf_callback_and_state(void)
{
	struct sriov_gen g;
	sriov_emul_gen(1, &g);
	struct sriov_pf_agent *a;
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g, 1, &a) == 0);
	sriov_pf_agent_set_mac(a, 0, MAC);
	unsigned seen[2] = {0, 0};
	sriov_pf_agent_set_callback(a, deny_mac, seen);
	uint32_t rep[IGB_MBX_WORDS], m = IGB_VF_RESET;
	agent(a, 0, &m, 1, rep);
	uint32_t mac[3] = {IGB_VF_SET_MAC_ADDR, 0x12345602, 0x9a78};
	agent(a, 0, mac, 3, rep);
	CU_ASSERT_EQUAL(rep[0], IGB_VF_SET_MAC_ADDR | IGB_MSG_NACK | IGB_MSG_CTS);
	CU_ASSERT_EQUAL(seen[0], 2);
	CU_ASSERT_EQUAL(seen[1], 1); /* the reset was observed, the denied MAC was not */
	struct sriov_vf_config c, d;
	sriov_pf_agent_vf_config(a, 0, &c);
	CU_ASSERT_EQUAL(memcmp(c.mac, MAC, 6), 0);
	/* Settings round-trip; any truncation or bad count is refused. */
	c.nvlans = 2;
	c.vlans[0] = 7;
	c.vlans[1] = 4095;
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(sriov_vf_config_save(&c, &b), 0);
	CU_ASSERT_EQUAL(sriov_vf_config_load(&d, b.data, b.len), 0);
	CU_ASSERT_EQUAL(d.vlans[1], 4095);
	CU_ASSERT_EQUAL(memcmp(d.mac, c.mac, 6), 0);
	for (size_t n = 0; n < b.len; n++)
		CU_ASSERT_NOT_EQUAL(sriov_vf_config_load(&d, b.data, n), 0);
	b.data[10] = 0xFF; /* a section length far beyond the input */
	CU_ASSERT_NOT_EQUAL(sriov_vf_config_load(&d, b.data, b.len), 0);
	gw_buf_release(&b);
	/* More VLANs than the table holds cannot be saved; a VLAN id past 4095 does not load. */
	gw_buf_init(&b);
	c.nvlans = IGB_MAX_VLANS + 1;
	CU_ASSERT_EQUAL(sriov_vf_config_save(&c, &b), -EINVAL);
	c.nvlans = 2;
	c.vlans[1] = 4096;
	CU_ASSERT_EQUAL(sriov_vf_config_save(&c, &b), 0);
	CU_ASSERT_EQUAL(sriov_vf_config_load(&d, b.data, b.len), -EBADMSG);
	gw_buf_release(&b);
	sriov_pf_agent_destroy(a);
}

#define TXR   (RAM_IOVA + 0x0000)
#define RXR   (RAM_IOVA + 0x1000)
#define TXB   (RAM_IOVA + 0x10000)
#define RXB   (RAM_IOVA + 0x40000)
#define NDESC 8u

static void *at(struct rig *r, uint64_t iova)
{
	return r->ram + (iova - RAM_IOVA);
}

static void rings_up(struct rig *r)
{
	vf_reset(r);
	wr(r, IGB_TDBAL(0), (uint32_t)TXR);
	wr(r, IGB_TDLEN(0), NDESC * 16);
	wr(r, IGB_TXDCTL(0), IGB_XDCTL_ENABLE);
	wr(r, IGB_RDBAL(0), (uint32_t)RXR);
	wr(r, IGB_RDLEN(0), NDESC * 16);
	wr(r, IGB_SRRCTL(0), 2 | IGB_SRRCTL_DESCTYPE_ADV1);
	wr(r, IGB_RXDCTL(0), IGB_XDCTL_ENABLE);
	union igb_rx_desc *rx = at(r, RXR);
	for (unsigned i = 0; i < NDESC; i++)
		rx[i].read.pkt_addr = RXB + 2048ull * i;
	wr(r, IGB_RDT(0), NDESC - 1);
	wr(r, IGB_IVAR0, 0x8080);
	wr(r, IGB_EIMS, 1);
}

static void post_tx(struct rig *r, unsigned i, uint64_t addr, uint32_t len, uint32_t cmd)
{
	union igb_tx_desc *t = &((union igb_tx_desc *)at(r, TXR))[i];
	t->read.addr = addr;
	t->read.cmd_type_len = len | IGB_TXD_DTYP_DATA | IGB_TXD_CMD_DEXT | cmd;
	t->read.olinfo_status = 0;
}

static ssize_t sw_recv(struct rig *r, uint8_t *buf, size_t n)
{
	return recv(r->sw, buf, n, MSG_DONTWAIT);
}

static void test_tx(void)
{
	struct rig r;
	rig_open(&r, 1);
	rings_up(&r);
	uint8_t *b = at(&r, TXB);
	for (unsigned i = 0; i < 200; i++)
		b[i] = (uint8_t)i;
	/* One frame in two buffers; RS on the last. */
	post_tx(&r, 0, TXB, 100, 0);
	post_tx(&r, 1, TXB + 100, 100, IGB_TXD_CMD_EOP | IGB_TXD_CMD_RS);
	wr(&r, IGB_TDT(0), 1); /* EOP not posted yet: nothing goes out */
	igb_dev_process(&r.dev, 8);
	uint8_t got[512];
	CU_ASSERT_EQUAL(sw_recv(&r, got, sizeof(got)), -1);
	wr(&r, IGB_TDT(0), 2);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(sw_recv(&r, got, sizeof(got)), 200);
	CU_ASSERT_EQUAL(memcmp(got, b, 200), 0);
	CU_ASSERT_EQUAL(rd(&r, IGB_TDH(0)), 2);
	union igb_tx_desc *t = at(&r, TXR);
	CU_ASSERT(t[1].wb.status & IGB_TXD_STAT_DD);
	CU_ASSERT_EQUAL(rd(&r, IGB_VFGPTC), 1);
	/* Zero-length, a buffer outside guest memory, and a frame beyond the largest jumbo
	 * frame: each is dropped, the ring moves on, nothing is sent. */
	post_tx(&r, 2, TXB, 0, IGB_TXD_CMD_EOP | IGB_TXD_CMD_RS);
	post_tx(&r, 3, 0xdead0000ull, 64, IGB_TXD_CMD_EOP | IGB_TXD_CMD_RS);
	post_tx(&r, 4, TXB, 0xFFFF, 0);
	post_tx(&r, 5, TXB, 0xFFFF, IGB_TXD_CMD_EOP);
	post_tx(&r, 6, TXB, 64, IGB_TXD_CMD_EOP);
	wr(&r, IGB_TDT(0), 7);
	igb_dev_process(&r.dev, 16);
	CU_ASSERT_EQUAL(rd(&r, IGB_TDH(0)), 7);
	CU_ASSERT_EQUAL(sw_recv(&r, got, sizeof(got)), 64);
	CU_ASSERT_EQUAL(sw_recv(&r, got, sizeof(got)), -1);
	CU_ASSERT(r.dev.st.tx_dropped >= 3);
	/* A ring outside guest memory stops that queue as a device error; no crash. */
	wr(&r, IGB_TDBAL(0), 0x40000000);
	wr(&r, IGB_TDT(0), 0);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(r.dev.queue_error[1][0]);
	/* A tail beyond the ring is as bad. */
	wr(&r, IGB_RDT(0), 4000);
	uint8_t f[64] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
	sendto(r.sw, f, sizeof(f), 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(r.dev.queue_error[0][0]);
	rig_close(&r);
}

static void frame_to(uint8_t *f, size_t n, const uint8_t *dst)
{
	memset(f, 0xA5, n);
	memcpy(f, dst, 6);
	f[12] = 0x88;
	f[13] = 0xB5;
}

/* A driver re-posts a descriptor as soon as it sees DD: the device stores each word of a
 * write-back once, the status last. A second store of the write-back (glibc's memcpy of 16
 * bytes makes two) would put buffer address 0 and DD back over the re-post: the next frame
 * then goes to guest-physical 0 and the driver reads its buffer's old frame again. */
static void test_writeback_stores(void)
{
	struct rig r;
	rig_open(&r, 1);
	rings_up(&r);
	uint8_t f[64];
	frame_to(f, sizeof(f), MAC);
	sendto(r.sw, f, sizeof(f), 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	union igb_rx_desc *rx = at(&r, RXR);
	struct gw_store_trace t;
	CU_ASSERT_FATAL(gw_store_trace_start(rx, &t) == 0);
	igb_dev_process(&r.dev, 8);
	gw_store_trace_stop();
	CU_ASSERT_EQUAL(rx[0].wb.status, IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP);
	CU_ASSERT_EQUAL(t.n, 2);
	CU_ASSERT_EQUAL(t.at[0], (uintptr_t)&rx[0]);
	CU_ASSERT_EQUAL(t.at[1], (uintptr_t)&rx[0] + 8);
	/* TX: DD, once, into the status dword. */
	memcpy(at(&r, TXB), f, sizeof(f));
	post_tx(&r, 0, TXB, sizeof(f), IGB_TXD_CMD_EOP | IGB_TXD_CMD_RS);
	union igb_tx_desc *tx = at(&r, TXR);
	wr(&r, IGB_TDT(0), 1);
	CU_ASSERT_FATAL(gw_store_trace_start(tx, &t) == 0);
	igb_dev_process(&r.dev, 8);
	gw_store_trace_stop();
	CU_ASSERT(tx[0].wb.status & IGB_TXD_STAT_DD);
	CU_ASSERT_EQUAL(t.n, 1);
	CU_ASSERT_EQUAL(t.at[0], (uintptr_t)&tx[0] + 12);
	rig_close(&r);
}

static void test_rx(void)
{
	struct rig r;
	rig_open(&r, 1);
	rings_up(&r);
	uint8_t f[3000];
	frame_to(f, 300, MAC);
	f[20] = 0x42;
	sendto(r.sw, f, 300, 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 8);
	union igb_rx_desc *rx = at(&r, RXR);
	CU_ASSERT_EQUAL(rx[0].wb.status, IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP);
	CU_ASSERT_EQUAL(rx[0].wb.length, 300);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXB), f, 300), 0);
	CU_ASSERT_EQUAL(rd(&r, IGB_RDH(0)), 1);
	CU_ASSERT_EQUAL(rd(&r, IGB_EICR) & 1, 1);
	/* Another MAC is filtered; a frame longer than the buffer spans two descriptors. */
	uint8_t other[6] = {0x02, 9, 9, 9, 9, 9};
	frame_to(f, 100, other);
	sendto(r.sw, f, 100, 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(rd(&r, IGB_RDH(0)), 1);
	CU_ASSERT_EQUAL(r.dev.st.rx_filtered, 1);
	uint32_t lpe[2] = {IGB_VF_SET_LPE, 9000}, rep[IGB_MBX_WORDS];
	mbx_send(&r, lpe, 2, rep);
	frame_to(f, 2500, MAC);
	sendto(r.sw, f, 2500, 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(rx[1].wb.status, IGB_RXD_STAT_DD);
	CU_ASSERT_EQUAL(rx[1].wb.length, 2048);
	CU_ASSERT_EQUAL(rx[2].wb.status, IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP);
	CU_ASSERT_EQUAL(rx[2].wb.length, 2500 - 2048);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXB + 2048), f, 2048), 0);
	CU_ASSERT_EQUAL(memcmp(at(&r, RXB + 4096), f + 2048, 2500 - 2048), 0);
	/* A buffer address outside guest memory: error completion, nothing written. */
	rx[3].read.pkt_addr = 0x7000000000ull;
	frame_to(f, 64, MAC);
	sendto(r.sw, f, 64, 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(rx[3].wb.status & IGB_RXD_ERR_RXE);
	CU_ASSERT(rx[3].wb.status & IGB_RXD_STAT_EOP);
	/* No descriptors left: frames are dropped and counted. */
	for (unsigned i = 0; i < NDESC + 2; i++)
		sendto(r.sw, f, 64, 0, (struct sockaddr *)&r.port_addr, r.port_addr_len);
	igb_dev_process(&r.dev, 32);
	CU_ASSERT_EQUAL(rd(&r, IGB_RDH(0)), NDESC - 1);
	CU_ASSERT(r.dev.st.rx_no_desc >= 3);
	rig_close(&r);
}

static void test_state(void)
{
	struct rig r;
	rig_open(&r, 1);
	rings_up(&r);
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(igb_dev_save(&r.dev, &b), 0);
	/* Into VF 1 of the same generation: every register moves, the PF-side settings do not
	 * (a destination's PF never saw the exchanges: the VMM's record is replayed instead). */
	CU_ASSERT_EQUAL(igb_dev_load(&r.dev2, b.data, b.len), 0);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev2, IGB_RDT(0), 4), NDESC - 1);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(r.pf, 1, &c);
	CU_ASSERT_FALSE(c.clear_to_send);
	for (size_t n = 0; n < b.len; n += 97)
		CU_ASSERT_NOT_EQUAL(igb_dev_load(&r.dev2, b.data, n), 0);
	/* Another generation cannot take it. */
	struct rig r2;
	rig_open(&r2, 2);
	CU_ASSERT_EQUAL(igb_dev_load(&r2.dev, b.data, b.len), -EINVAL);
	rig_close(&r2);
	gw_buf_release(&b);
	/* CTRL.RST: queues off, mailbox says reset done, the PF forgets the handshake. */
	wr(&r, IGB_CTRL, IGB_CTRL_RST);
	CU_ASSERT_EQUAL(rd(&r, IGB_RXDCTL(0)), 0);
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_RSTD);
	sriov_pf_agent_vf_config(r.pf, 0, &c);
	CU_ASSERT_FALSE(c.clear_to_send);
	rig_close(&r);
}

/* The state of a VF that is not this model (a real one, vfio.c), made of its registers: this
 * model takes it over as its own; the mailbox idle. */
static void test_state_from_regs(void)
{
	struct rig r;
	rig_open(&r, 1);
	rings_up(&r);
	wr(&r, IGB_EIMS, 5);
	struct sriov_gen g;
	sriov_emul_gen(1, &g);
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(igb_dev_regs_save(&g, r.regs, &b), 0);
	CU_ASSERT_EQUAL(igb_dev_load(&r.dev2, b.data, b.len), 0);
	for (uint32_t off = 0; off < IGB_VF_BAR0_SIZE; off += 4)
		if (off != IGB_V2PMBX && r.regs[off / 4] != r.regs2[off / 4])
			CU_FAIL("a register did not move");
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev2, IGB_RDT(0), 4), NDESC - 1);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev2, IGB_RXDCTL(0), 4) & IGB_XDCTL_ENABLE,
			IGB_XDCTL_ENABLE);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev2, IGB_EIMS, 4), 5);
	CU_ASSERT_EQUAL(igb_dev_read(&r.dev2, IGB_V2PMBX, 4) &
			    (IGB_MBX_PFSTS | IGB_MBX_PFACK | IGB_MBX_RSTD | IGB_MBX_RSTI),
			0);
	/* A PF reset played to the driver then (a migration onward that re-creates the VF):
	 * the driver sees it, in the register and in the page's memory. */
	igb_dev_pf_reset_begin(&r.dev2);
	CU_ASSERT(r.regs2[IGB_V2PMBX / 4] & IGB_MBX_RSTI);
	CU_ASSERT(igb_dev_read(&r.dev2, IGB_V2PMBX, 4) & IGB_MBX_RSTI);
	wr2(&r, IGB_CTRL, IGB_CTRL_RST);
	CU_ASSERT_TRUE(igb_dev_pf_reset_seen(&r.dev2));
	/* Another generation's model refuses it, as any state of this one. */
	struct rig r2;
	rig_open(&r2, 2);
	CU_ASSERT_EQUAL(igb_dev_load(&r2.dev, b.data, b.len), -EINVAL);
	rig_close(&r2);
	gw_buf_release(&b);
	rig_close(&r);
}

/* Mailbox interception: the device says when an exchange begins (before any clear-on-read
 * bit is set) and ends; in between the page traps, outside it the page's memory shows
 * exactly what a read would. */
static void test_mbx_exchanges(void)
{
	struct rig r;
	rig_open(&r, 2);
	CU_ASSERT_EQUAL(r.xchg, 1);
	/* Reading RSTD ends the power-on exchange. */
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_RSTD);
	CU_ASSERT_EQUAL(r.xchg, 0);
	CU_ASSERT_EQUAL(r.regs[IGB_V2PMBX / 4] & IGB_MBX_R2C, 0);
	/* A read of a quiet mailbox starts nothing. */
	rd(&r, IGB_V2PMBX);
	rd(&r, IGB_STATUS);
	CU_ASSERT_EQUAL(r.xchg_on, 0);
	CU_ASSERT_EQUAL(r.dev.st.mbx_idle_access, 2);
	/* CTRL.RST: a PF message (RSTD) for the VF: the page traps before the bit is set. */
	wr(&r, IGB_CTRL, IGB_CTRL_RST);
	CU_ASSERT_EQUAL(r.xchg, 1);
	CU_ASSERT_EQUAL(r.regs[IGB_V2PMBX / 4] & IGB_MBX_R2C, 0); /* only a trapped read sees it */
	uint32_t msg = IGB_VF_RESET, reply[IGB_MBX_WORDS];
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_RSTD);
	CU_ASSERT_EQUAL(r.xchg, 0);
	/* One request, one exchange: begun by the VF's first write, ended by its ACK. */
	unsigned on = r.xchg_on;
	uint64_t acc = r.dev.st.mbx_xchg_access;
	mbx_send(&r, &msg, 1, reply);
	CU_ASSERT_EQUAL(r.xchg_on, on + 1);
	CU_ASSERT_EQUAL(r.xchg, 0);
	/* VFU, its read-back, 1 word, REQ, 2 status reads, 16 reply words, ACK. */
	CU_ASSERT_EQUAL(r.dev.st.mbx_xchg_access - acc, 23);
	CU_ASSERT_EQUAL(r.regs[IGB_V2PMBX / 4], 0);
	/* Reads of the control register that find nothing new are counted apart: the driver's
	 * wait for the PF, as many as the PF's latency allows. Here the read-back of VFU and 5
	 * polls before the PF's round answers; not the read that finds the answer. */
	uint64_t polls = r.dev.st.mbx_wait_polls;
	acc = r.dev.st.mbx_xchg_access;
	wr(&r, IGB_V2PMBX, IGB_MBX_VFU);
	rd(&r, IGB_V2PMBX);
	wr(&r, IGB_VMBMEM, IGB_VF_RESET);
	wr(&r, IGB_V2PMBX, IGB_MBX_REQ);
	for (unsigned i = 0; i < 5; i++)
		CU_ASSERT_FALSE(rd(&r, IGB_V2PMBX) & IGB_MBX_PFSTS);
	igb_dev_process(&r.dev, 8);
	CU_ASSERT(rd(&r, IGB_V2PMBX) & IGB_MBX_PFSTS);
	for (unsigned i = 0; i < IGB_MBX_WORDS; i++)
		reply[i] = rd(&r, IGB_VMBMEM + 4 * i);
	wr(&r, IGB_V2PMBX, IGB_MBX_ACK);
	CU_ASSERT_EQUAL(r.xchg, 0);
	CU_ASSERT_EQUAL(r.dev.st.mbx_wait_polls - polls, 6);
	CU_ASSERT_EQUAL(r.dev.st.mbx_xchg_access - acc, 27);
	/* Out of order: an ACK with nothing to acknowledge, a REQ without a message, a VF that
	 * keeps the buffer: each is an exchange that ends as soon as nothing is pending. */
	wr(&r, IGB_V2PMBX, IGB_MBX_ACK);
	CU_ASSERT_EQUAL(r.xchg, 0);
	wr(&r, IGB_V2PMBX, IGB_MBX_REQ);
	CU_ASSERT_EQUAL(r.xchg, 1); /* the PF has a request to read */
	igb_dev_process(&r.dev, 8);
	CU_ASSERT_EQUAL(r.xchg, 1); /* PFACK waits to be read */
	/* The buffer still held the PF's last reply, an ACK: not a request, so no answer. */
	uint32_t m = rd(&r, IGB_V2PMBX);
	CU_ASSERT(m & IGB_MBX_PFACK);
	CU_ASSERT_FALSE(m & IGB_MBX_PFSTS);
	CU_ASSERT_EQUAL(r.xchg, 0);
	wr(&r, IGB_V2PMBX, IGB_MBX_VFU);
	CU_ASSERT_EQUAL(r.xchg, 1); /* held: the VF owns the buffer */
	wr(&r, IGB_V2PMBX, 0);
	CU_ASSERT_EQUAL(r.xchg, 0);
	/* Oversized and garbage writes into the message buffer while the page traps. */
	for (unsigned i = 0; i < 64; i++)
		wr(&r, IGB_VMBMEM + 4 * (i % IGB_MBX_WORDS), 0xDEAD0000u + i);
	wr(&r, IGB_V2PMBX, IGB_MBX_REQ | IGB_MBX_ACK | IGB_MBX_VFU | 0xFFFFFF00u);
	igb_dev_process(&r.dev, 8);
	rd(&r, IGB_V2PMBX);
	wr(&r, IGB_V2PMBX, IGB_MBX_ACK);
	igb_dev_process(&r.dev, 8);
	rd(&r, IGB_V2PMBX);
	CU_ASSERT_EQUAL(r.xchg, 0);
	CU_ASSERT_EQUAL(r.xchg_off, r.xchg_on + 1); /* + the power-on exchange */
	CU_ASSERT_EQUAL(r.dev.st.mbx_exchanges, 1 + r.xchg_on);
	rig_close(&r);
}

static enum sriov_mbx_verdict count_resets(void *opaque, const struct sriov_mbx_event *ev)
{
	if (ev->vf_reset && ev->vf == 2)
		(*(unsigned *)opaque)++;
	return SRIOV_MBX_ACCEPT;
}

/* The VMM's record: built from observed exchanges only, what the PF ACKed; replayed into a
 * blank PF agent it puts the same settings in force. */
static void test_mbx_record(void)
{
	struct sriov_gen g;
	sriov_emul_gen(2, &g);
	struct sriov_mbx_record rec;
	sriov_mbx_record_init(&rec, MAC);
	static const uint8_t NEWMAC[6] = {0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE};
	uint32_t reset = IGB_VF_RESET;
	uint32_t reset_ack[4] = {IGB_VF_RESET | IGB_MSG_ACK, 0x33221102u, 0x5544u, 0};
	uint32_t setmac[3] = {IGB_VF_SET_MAC_ADDR, 0xCCBBAA02u, 0xEEDDu};
	uint32_t vlan[2] = {IGB_VF_SET_VLAN | 1u << IGB_MSG_INFO_SHIFT, 100};
	uint32_t vlan2[2] = {IGB_VF_SET_VLAN | 1u << IGB_MSG_INFO_SHIFT, 200};
	uint32_t unvlan[2] = {IGB_VF_SET_VLAN, 200};
	uint32_t mc[3] = {IGB_VF_SET_MULTICAST | 3u << IGB_MSG_INFO_SHIFT, 0x0BBB0AAAu, 0x0CCCu};
	uint32_t lpe[2] = {IGB_VF_SET_LPE, 9000};
	uint32_t api[2] = {IGB_VF_API_NEGOTIATE, IGB_API_11};
	uint32_t badlpe[2] = {IGB_VF_SET_LPE, 100000};
	uint32_t ack = IGB_MSG_ACK | IGB_MSG_CTS, nack = IGB_MSG_NACK | IGB_MSG_CTS;
	struct {
		const uint32_t *m;
		unsigned len;
		const uint32_t *rep;
		unsigned rlen;
	} seq[] = {
	    {&reset, 1, reset_ack, 4}, {setmac, 3, &ack, 1}, {vlan, 2, &ack, 1},
	    {vlan2, 2, &ack, 1},       {unvlan, 2, &ack, 1}, {mc, 3, &ack, 1},
	    {lpe, 2, &ack, 1},	       {api, 2, &ack, 1},    {badlpe, 2, &nack, 1},
	};
	for (size_t i = 0; i < GW_TEST_COUNT(seq); i++) {
		struct sriov_mbx_event ev = {.msg = seq[i].m,
					     .len = seq[i].len,
					     .reply = seq[i].rep,
					     .reply_len = seq[i].rlen};
		sriov_mbx_record_observe(&rec, &g, &ev);
	}
	/* Malformed: no reply, oversized, empty. None counts or changes anything. */
	struct sriov_mbx_event bad[] = {{.msg = lpe, .len = 2},
					{.msg = lpe, .len = 99, .reply = &ack, .reply_len = 1},
					{.msg = lpe, .len = 0, .reply = &ack, .reply_len = 1}};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++)
		sriov_mbx_record_observe(&rec, &g, &bad[i]);
	CU_ASSERT_EQUAL(rec.exchanges, GW_TEST_COUNT(seq));
	CU_ASSERT_EQUAL(rec.nacked, 1);
	CU_ASSERT_EQUAL(memcmp(rec.cfg.mac, NEWMAC, 6), 0);
	CU_ASSERT_EQUAL(rec.cfg.nvlans, 1);
	CU_ASSERT_EQUAL(rec.cfg.vlans[0], 100);
	CU_ASSERT_EQUAL(rec.cfg.nmc, 3);
	CU_ASSERT_EQUAL(rec.cfg.mc_hashes[2], 0x0CCC);
	CU_ASSERT_EQUAL(rec.cfg.max_frame, 9000);
	CU_ASSERT_EQUAL(rec.cfg.api, IGB_API_11);
	CU_ASSERT(rec.cfg.clear_to_send);
	/* Replay into a PF agent that never saw any of it. */
	struct sriov_pf_agent *pf;
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g, 7, &pf) == 0);
	CU_ASSERT_EQUAL(sriov_pf_agent_put_vf_config(pf, 3, &rec.cfg), 0);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(pf, 3, &c);
	CU_ASSERT_EQUAL(memcmp(c.mac, NEWMAC, 6), 0);
	CU_ASSERT_EQUAL(c.nvlans, 1);
	CU_ASSERT_EQUAL(c.nmc, 3);
	CU_ASSERT_EQUAL(c.max_frame, 9000);
	CU_ASSERT(c.clear_to_send); /* the guest needs no new handshake */
	/* ...and the record survives the migration stream's encoding. */
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(sriov_vf_config_save(&rec.cfg, &b), 0);
	struct sriov_vf_config back;
	CU_ASSERT_EQUAL(sriov_vf_config_load(&back, b.data, b.len), 0);
	CU_ASSERT_EQUAL(memcmp(&back.mac, rec.cfg.mac, 6), 0);
	CU_ASSERT_EQUAL(back.nmc, 3);
	gw_buf_release(&b);
	sriov_pf_agent_destroy(pf);
	/* A VF reset clears what the VF had set. */
	struct sriov_mbx_event ev = {.msg = &reset, .len = 1, .reply = reset_ack, .reply_len = 4};
	sriov_mbx_record_observe(&rec, &g, &ev);
	CU_ASSERT_EQUAL(rec.cfg.nvlans, 0);
	CU_ASSERT_EQUAL(rec.cfg.nmc, 0);
	CU_ASSERT_EQUAL(memcmp(rec.cfg.mac, MAC, 6), 0);
	CU_ASSERT_EQUAL(rec.cfg.requests, GW_TEST_COUNT(seq) + 1);
	CU_ASSERT_EQUAL(rec.cfg.nacks, 1);
	/* So does a reset of the function (CTRL.RST), which the PF agent reports: the record
	 * then says what the PF has, the administrator's MAC and no handshake yet. */
	sriov_mbx_record_observe(
	    &rec, &g,
	    &(struct sriov_mbx_event){.msg = setmac, .len = 3, .reply = &ack, .reply_len = 1});
	CU_ASSERT_EQUAL(memcmp(rec.cfg.mac, NEWMAC, 6), 0);
	sriov_mbx_record_observe(&rec, &g, &(struct sriov_mbx_event){.vf_reset = true});
	CU_ASSERT_EQUAL(memcmp(rec.cfg.mac, MAC, 6), 0);
	CU_ASSERT_FALSE(rec.cfg.clear_to_send);
	/* The agent tells its callback about resets. */
	struct sriov_pf_agent *pf2;
	CU_ASSERT_FATAL(sriov_pf_agent_create(&g, 7, &pf2) == 0);
	unsigned resets = 0;
	sriov_pf_agent_set_callback(pf2, count_resets, &resets);
	sriov_pf_agent_vf_reset(pf2, 2);
	sriov_pf_agent_vf_reset(pf2, 99); /* no such VF: nothing */
	CU_ASSERT_EQUAL(resets, 1);
	sriov_pf_agent_destroy(pf2);
}

/* The replay's view of the VF: its registers, with the PF (the agent behind the model) doing
 * its side of the mailbox before each read, as a PF driver's interrupt handler would. */
struct replay_io {
	struct rig *r;
	bool pf_answers;
	unsigned reads;
};
static uint32_t replay_read(void *o, uint32_t off)
{
	struct replay_io *x = o;
	x->reads++;
	if (x->pf_answers)
		igb_dev_process(&x->r->dev, 8);
	return rd(x->r, off);
}
static void replay_write(void *o, uint32_t off, uint32_t v)
{
	wr(((struct replay_io *)o)->r, off, v);
}

/* Linux's igb with an administrator's MAC on an untrusted VF: the VF's own MAC is refused,
 * its extra unicast filters are not. */
static enum sriov_mbx_verdict admin_mac(void *opaque, const struct sriov_mbx_event *ev)
{
	(void)opaque;
	if (!ev->vf_reset && !ev->reply && ev->msg[0] == IGB_VF_SET_MAC_ADDR)
		return SRIOV_MBX_DENY;
	return SRIOV_MBX_ACCEPT;
}

static void test_mbx_replay(void)
{
	static const uint8_t NEWMAC[6] = {0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE};
	static const uint8_t UC[6] = {0x02, 0x01, 0x02, 0x03, 0x04, 0x05};
	struct rig r;
	rig_open(&r, 2);
	struct sriov_vf_config want = {.nvlans = 2,
				       .vlans = {100, 200},
				       .nmc = 3,
				       .mc_hashes = {0xAAA, 0xBBB, 0xCCC},
				       .max_frame = 9000,
				       .nuc = 1,
				       .api = IGB_API_11,
				       .promisc = true};
	memcpy(want.mac, NEWMAC, 6);
	memcpy(want.uc[0], UC, 6);
	struct replay_io x = {.r = &r, .pf_answers = true};
	struct sriov_mbx_vf_io io = {
	    .read = replay_read, .write = replay_write, .opaque = &x, .timeout_ms = 1000};
	struct sriov_gen g;
	sriov_emul_gen(2, &g);
	struct sriov_mbx_replay out;
	/* A PF that never heard of the VF learns everything from its mailbox. */
	CU_ASSERT_EQUAL_FATAL(sriov_mbx_replay(&io, &g, &want, &out), 0);
	CU_ASSERT_EQUAL(out.sent, 10); /* reset, API, LPE, MAC, clear, add, 2 VLANs, mc, promisc */
	CU_ASSERT_EQUAL(out.refused, 0);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(r.pf, 0, &c);
	CU_ASSERT(c.clear_to_send);
	CU_ASSERT_EQUAL(memcmp(c.mac, NEWMAC, 6), 0);
	CU_ASSERT_EQUAL(c.nvlans, 2);
	CU_ASSERT_EQUAL(c.vlans[1], 200);
	CU_ASSERT_EQUAL(c.nmc, 3);
	CU_ASSERT_EQUAL(c.mc_hashes[2], 0xCCC);
	CU_ASSERT_EQUAL(c.max_frame, 9000);
	CU_ASSERT_EQUAL(c.api, IGB_API_11);
	CU_ASSERT_EQUAL(c.nuc, 1);
	CU_ASSERT_EQUAL(memcmp(c.uc[0], UC, 6), 0);
	CU_ASSERT(c.promisc);
	/* The replay's record says what the PF acknowledged: all of it. */
	CU_ASSERT_EQUAL(memcmp(out.rec.cfg.mac, NEWMAC, 6), 0);
	CU_ASSERT_EQUAL(out.rec.cfg.nvlans, 2);
	CU_ASSERT_EQUAL(out.rec.cfg.nmc, 3);
	CU_ASSERT_EQUAL(out.rec.exchanges, 10);
	/* Every reply was taken: no message of the PF's is left for the guest's driver. */
	CU_ASSERT_FALSE(rd(&r, IGB_V2PMBX) & (IGB_MBX_PFSTS | IGB_MBX_PFACK));

	/* The administrator's settings win: a PF that refuses the MAC keeps its own, the rest
	 * goes on, and the record says the PF's MAC. */
	sriov_pf_agent_set_callback(r.pf, admin_mac, NULL);
	CU_ASSERT_EQUAL(sriov_mbx_replay(&io, &g, &want, &out), 0);
	CU_ASSERT_EQUAL(out.refused, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.refusals, "MAC 02:aa:bb:cc:dd:ee"));
	sriov_pf_agent_vf_config(r.pf, 0, &c);
	CU_ASSERT_EQUAL(memcmp(c.mac, MAC, 6), 0);
	CU_ASSERT_EQUAL(memcmp(out.rec.cfg.mac, MAC, 6), 0);
	CU_ASSERT_EQUAL(c.nvlans, 2);
	CU_ASSERT_EQUAL(out.rec.cfg.nvlans, 2);
	sriov_pf_agent_set_callback(r.pf, NULL, NULL);

	/* A PF that does not answer: the replay fails in its time and says at which step. */
	x.pf_answers = false;
	io.timeout_ms = 50;
	CU_ASSERT_EQUAL(sriov_mbx_replay(&io, &g, &want, &out), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.error, "VF_RESET: no acknowledgement"));
	CU_ASSERT_EQUAL(out.sent, 0);
	rig_close(&r);
}

/* A PF that posts a control message of its own (its link changed) before each reply: the
 * replay acknowledges it and waits on for the reply. Just enough of the VF's mailbox. */
struct chatty_pf {
	uint32_t mem[IGB_MBX_WORDS], req[IGB_MBX_WORDS];
	uint32_t bits;	   /* clear-on-read bits the VF has yet to read */
	unsigned pending;  /* 2: the control message is next, 1: then the reply */
	unsigned controls; /* control messages acknowledged */
	bool mute;	   /* acknowledges requests and never replies */
};
static uint32_t chatty_read(void *o, uint32_t off)
{
	struct chatty_pf *c = o;
	if (off == IGB_V2PMBX) {
		uint32_t v = c->bits | IGB_MBX_VFU;
		c->bits = 0;
		return v;
	}
	return c->mem[(off - IGB_VMBMEM) / 4];
}
static void chatty_write(void *o, uint32_t off, uint32_t v)
{
	struct chatty_pf *c = o;
	if (off != IGB_V2PMBX) {
		c->mem[(off - IGB_VMBMEM) / 4] = v;
		return;
	}
	if ((v & IGB_MBX_REQ) && c->mute) {
		c->bits |= IGB_MBX_PFACK;
	} else if (v & IGB_MBX_REQ) {
		memcpy(c->req, c->mem, sizeof(c->req));
		c->mem[0] = IGB_PF_CONTROL_MSG | IGB_MSG_CTS;
		c->bits |= IGB_MBX_PFACK | IGB_MBX_PFSTS;
		c->pending = 2;
	} else if ((v & IGB_MBX_ACK) && c->pending == 2) {
		c->controls++;
		memcpy(c->mem, c->req, sizeof(c->mem));
		c->mem[0] = c->req[0] | IGB_MSG_ACK | IGB_MSG_CTS;
		if ((c->req[0] & IGB_MSG_TYPE_MASK) == IGB_VF_RESET)
			igb_mac_to_words(MAC, &c->mem[1]);
		c->bits |= IGB_MBX_PFSTS;
		c->pending = 1;
	} else if (v & IGB_MBX_ACK) {
		c->pending = 0;
	}
}

static void test_mbx_replay_pf_messages(void)
{
	struct chatty_pf c = {0};
	struct sriov_mbx_vf_io io = {
	    .read = chatty_read, .write = chatty_write, .opaque = &c, .timeout_ms = 1000};
	struct sriov_gen g;
	sriov_emul_gen(1, &g);
	struct sriov_vf_config want = {.nvlans = 1, .vlans = {7}, .max_frame = 1522};
	memcpy(want.mac, MAC, 6);
	struct sriov_mbx_replay out;
	CU_ASSERT_EQUAL(sriov_mbx_replay(&io, &g, &want, &out), 0);
	CU_ASSERT_EQUAL(out.sent, 3); /* reset, LPE, VLAN: the MAC is the reset's already */
	CU_ASSERT_EQUAL(c.controls, 3);
	CU_ASSERT_EQUAL(out.rec.cfg.nvlans, 1);
	CU_ASSERT_EQUAL(out.rec.cfg.max_frame, 1522);
	CU_ASSERT_EQUAL(memcmp(out.rec.cfg.mac, MAC, 6), 0);
	/* A PF that takes a request and never answers it: the error says which. */
	struct chatty_pf mute = {.mute = true};
	io.opaque = &mute;
	io.timeout_ms = 50;
	CU_ASSERT_EQUAL(sriov_mbx_replay(&io, &g, &want, &out), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.error, "VF_RESET: no reply"));
}

/* A VF configuration from the migration stream holds only what a PF acknowledges, and a
 * trust=off NIC takes from it only what its guest may set. */
static void test_replayed_config_checked(void)
{
	static const uint8_t admin[6] = {0x02, 0xaa, 0, 0, 0, 1};
	static const uint8_t other[6] = {0x02, 0xbb, 0, 0, 0, 2};
	struct sriov_vf_config good = {.api = IGB_API_11,
				       .max_frame = 9018,
				       .nvlans = 2,
				       .vlans = {0, 4095},
				       .nmc = IGB_MAX_MC_HASHES,
				       .nuc = 1};
	memcpy(good.mac, admin, 6);
	memcpy(good.uc[0], other, 6);
	char why[200];
	CU_ASSERT_EQUAL(sriov_vf_config_check(&good, why, sizeof(why)), 0);
	struct gw_buf b;
	struct sriov_vf_config back;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(sriov_vf_config_save(&good, &b), 0);
	CU_ASSERT_EQUAL(sriov_vf_config_load(&back, b.data, b.len), 0);
	gw_buf_release(&b);
	static const char *const want[] = {"multicast",
					   "all zero",
					   "not a unicast address",
					   "twice",
					   "past 4095",
					   "outside 60..9728",
					   "outside 60..9728",
					   "neither 1.0 nor 1.1",
					   "neither 1.0 nor 1.1"};
	for (unsigned i = 0; i < GW_TEST_COUNT(want); i++) {
		struct sriov_vf_config c = good;
		switch (i) {
		case 0:
			c.mac[0] |= 1;
			break;
		case 1:
			memset(c.mac, 0, 6);
			break;
		case 2:
			c.uc[0][0] = 0x01;
			break;
		case 3:
			c.vlans[1] = 0;
			break;
		case 4:
			c.vlans[1] = 4096;
			break;
		case 5:
			c.max_frame = 59;
			break;
		case 6:
			c.max_frame = IGB_MAX_FRAME + 1;
			break;
		case 7:
			c.api = 1; /* IGB_API_10 is 0, IGB_API_11 is 2 */
			break;
		default:
			c.api = 7;
			break;
		}
		why[0] = '\0';
		CU_ASSERT_EQUAL(sriov_vf_config_check(&c, why, sizeof(why)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, want[i]));
		/* ...and such a record does not load from the stream. */
		gw_buf_init(&b);
		CU_ASSERT_EQUAL_FATAL(sriov_vf_config_save(&c, &b), 0);
		CU_ASSERT_EQUAL(sriov_vf_config_load(&back, b.data, b.len), -EBADMSG);
		gw_buf_release(&b);
	}

	/* trust=off: the guest's own MAC and its unicast filters are not replayed. */
	struct sriov_vf_config c = good;
	char what[120];
	CU_ASSERT_EQUAL(sriov_vf_config_untrusted(&c, admin, what, sizeof(what)), 1);
	CU_ASSERT_EQUAL(c.nuc, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(what, "1 unicast filters"));
	c = good;
	memcpy(c.mac, other, 6);
	CU_ASSERT_EQUAL(sriov_vf_config_untrusted(&c, admin, what, sizeof(what)), 2);
	CU_ASSERT_EQUAL(memcmp(c.mac, admin, 6), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(what, "MAC 02:bb:00:00:00:02"));
	CU_ASSERT_EQUAL(c.nvlans, 2); /* VLANs, multicast, frame size and API stay */
	CU_ASSERT_EQUAL(c.nmc, IGB_MAX_MC_HASHES);
	CU_ASSERT_EQUAL(c.max_frame, 9018);
	c.nuc = 0;
	CU_ASSERT_EQUAL(sriov_vf_config_untrusted(&c, admin, what, sizeof(what)), 0);
	CU_ASSERT_STRING_EQUAL(what, "");
}

static void test_generations(void)
{
	struct sriov_gen a, b;
	char why[128];
	sriov_emul_gen(1, &a);
	sriov_emul_gen(2, &b);
	CU_ASSERT_EQUAL(sriov_gen_compare(&a, &a, why, sizeof(why)), SRIOV_GEN_MATCH);
	CU_ASSERT_EQUAL(sriov_gen_compare(&a, &b, why, sizeof(why)), SRIOV_GEN_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "revision"));
	CU_ASSERT_EQUAL(sriov_gen_compare(&a, NULL, why, sizeof(why)), SRIOV_GEN_ABSENT);
	b = a;
	b.device = 0x1515;
	CU_ASSERT_EQUAL(sriov_gen_compare(&a, &b, NULL, 0), SRIOV_GEN_ABSENT);
	b = a;
	b.queues = 4;
	CU_ASSERT_EQUAL(sriov_gen_compare(&a, &b, NULL, 0), SRIOV_GEN_MISMATCH);
	CU_ASSERT_EQUAL(sriov_emul_gen(3, &b), -EINVAL);
	CU_ASSERT_STRING_EQUAL(sriov_gen_cmp_name(SRIOV_GEN_ABSENT), "absent");
}

static void test_dma_map(void)
{
	struct dma_map *m;
	static uint8_t mem[8192] __attribute__((aligned(4096)));
	CU_ASSERT_FATAL(dma_map_create(&m) == 0);
	CU_ASSERT_EQUAL(dma_map_add(m, 0x1000, 8192, mem, true), 0);
	CU_ASSERT_EQUAL(dma_map_add(m, 0x2000, 4096, mem, true), -EEXIST);
	CU_ASSERT_EQUAL(dma_map_add(m, 0x10001, 4096, mem, true), -EINVAL);
	uint8_t b[16] = {1, 2, 3};
	CU_ASSERT_EQUAL(dma_write(m, 0x1000 + 8192 - 16, b, 16), 0);
	CU_ASSERT_EQUAL(dma_write(m, 0x1000 + 8192 - 8, b, 16), -EFAULT);
	CU_ASSERT_EQUAL(dma_read(m, ~0ull - 4, b, 16), -EFAULT);
	CU_ASSERT_EQUAL(dma_read(m, 0xFFF, b, 2), -EFAULT);
	CU_ASSERT_EQUAL(mem[8192 - 16], 1);
	struct dma_stats s;
	dma_map_stats(m, &s);
	CU_ASSERT_EQUAL(s.faults, 3);
	dma_map_destroy(m);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"registers", test_registers},
	    {"garbage everywhere", test_garbage_everywhere},
	    {"mailbox registers", test_mailbox_registers},
	    {"pf agent", test_pf_agent},
	    {"pf callback and state", test_pf_callback_and_state},
	    {"tx descriptors", test_tx},
	    {"rx descriptors", test_rx},
	    {"write-backs store each word once, the status last", test_writeback_stores},
	    {"device state", test_state},
	    {"state made of a real VF's registers", test_state_from_regs},
	    {"mailbox exchanges trap the page", test_mbx_exchanges},
	    {"mailbox record and replay", test_mbx_record},
	    {"mailbox replay through a VF's registers", test_mbx_replay},
	    {"mailbox replay past the PF's own messages", test_mbx_replay_pf_messages},
	    {"replayed VF configuration: checked, and trust=off", test_replayed_config_checked},
	    {"generations", test_generations},
	    {"dma map", test_dma_map},
	};
	return gw_test_run("sriov-igb", cases, GW_TEST_COUNT(cases));
}
