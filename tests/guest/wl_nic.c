/* SPDX-License-Identifier: Apache-2.0 */
/* Workload nic-echo: a small 82576 VF driver that checks godwit's test frames and echoes them. */
#include "nic_priv.h"

/* PCI configuration space (PCI Local Bus 3.0, 6.1; MSI-X: 6.8.2). */
#define PCI_COMMAND	   0x04
#define PCI_CMD_MEM	   0x0002u
#define PCI_CMD_MASTER	   0x0004u
#define PCI_CMD_INTX_OFF   0x0400u
#define PCI_STATUS_CAPS	   (1u << 20) /* status bit 4, in the dword at 0x04 */
#define PCI_REVISION	   0x08
#define PCI_BAR0	   0x10
#define PCI_CAP_PTR	   0x34
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_CAP_MSIX	   0x11
#define MSIX_CTRL	   2 /* message control, 16 bits after the capability header */
#define MSIX_TABLE	   4 /* table offset and BAR indicator */
#define MSIX_ENABLE	   0x8000u
#define MSIX_FN_MASK	   0x4000u
#define MSI_ADDR_BSP	   0xFEE00000u /* fixed delivery to APIC id 0 */
/* The I/O APIC (82093AA datasheet, 3.2.4): redirection entry of pin p at 0x10 + 2p. */
#define IOAPIC_BASE	   0xFEC00000ull
#define IOAPIC_WIN	   0x10
#define IOAPIC_PINS	   24u
#define IOAPIC_LEVEL	   (1u << 15)
#define MBX_VECTOR	   2u /* MSI-X vector (and EICR bit) of the mailbox; queue q uses q */
#define REPORT_EVERY	   1000u
#define RARP_LEN	   60u	 /* a minimum Ethernet frame without its FCS */
#define IDLE_WAIT_MS	   1000u /* halt at most this long between looks at the rings */
#define MBX_LOOK_MS	   250u	 /* V2PMBX reads: a PF-side reset clears EIMS, so no IRQ tells */
#define MBX_LOOK_POLL_MS   100u
#define TX_WAIT_MS	   10u
#define POLL_SPIN_US	   50u
#define PAUSE_US	   100u	      /* sleeps while the last echoes leave */
#define NIC_MEM_RINGS	   0x10000ull /* rings of all queue pairs, then their buffers */
#define NIC_MEM_QUEUE_BUFS (2ull * NIC_RING * NIC_BUF)
#define NIC_MEM_SIZE	   (NIC_MEM_RINGS + IGB_VF_MAX_QUEUES * NIC_MEM_QUEUE_BUFS)
#define NIC_MEM_HELD	   0x4000ull /* hold: the tables of what each pool buffer received */
#define NIC_MEM_POOL	   (NIC_MEM_HELD + IGB_VF_MAX_QUEUES * (uint64_t)NIC_POOL * NIC_BUF)
#define barrier()	   __asm__ volatile("" ::: "memory")

static inline void cfg_write16(uint64_t addr, uint16_t v)
{
	*(volatile uint16_t *)(uintptr_t)addr = v;
}

static void pause_us(const struct nic *n, uint64_t us)
{
	sleep_until(rdtsc() + n->khz * us / 1000);
}

/* ---- options ---- */

static bool take(const char **p, const char *word)
{
	size_t len = 0;
	while (word[len])
		len++;
	if (strncmp(*p, word, len) != 0)
		return false;
	*p += len;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool parse_mac(const char **p, uint8_t *mac)
{
	const char *s = *p;
	for (unsigned i = 0; i < 6; i++) {
		int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0 || (i < 5 && s[2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += i < 5 ? 3 : 2;
	}
	*p = s;
	return true;
}

/* "count[:opt,opt...]" with opt one of intx, poll, hold, vlan=N, mc=N, vf=N,
 * mac=XX:XX:XX:XX:XX:XX, relay=XX:XX:XX:XX:XX:XX. */
static bool parse_args(struct nic *n, const char *a)
{
	uint64_t v;
	if (*a && *a != ':' && !parse_u64(&a, &n->count))
		return false;
	if (*a != ':')
		return *a == '\0' || *a == ' ';
	a++;
	while (*a && *a != ' ') {
		if (take(&a, "intx")) {
			n->mode = NIC_INTX;
		} else if (take(&a, "poll")) {
			n->mode = NIC_POLL;
		} else if (take(&a, "hold")) {
			n->hold = true;
		} else if (take(&a, "vlan=")) {
			if (!parse_u64(&a, &v) || v == 0 || v > 4095)
				return false;
			n->vlan = (unsigned)v;
		} else if (take(&a, "mc=")) {
			if (!parse_u64(&a, &v) || v > IGB_MAX_MC_HASHES)
				return false;
			n->nmc = (unsigned)v;
		} else if (take(&a, "vf=")) {
			if (!parse_u64(&a, &v) || v > 255)
				return false;
			n->vf_index = (unsigned)v;
		} else if (take(&a, "mac=")) {
			if (!parse_mac(&a, n->want_mac))
				return false;
			n->set_mac = true;
		} else if (take(&a, "relay=")) {
			if (!parse_mac(&a, n->relay_to))
				return false;
			n->relay = true;
		} else {
			return false;
		}
		if (*a == ',')
			a++;
		else if (*a && *a != ' ')
			return false;
	}
	return true;
}

/* ---- the PCI function ---- */

static int pci_find_vf(struct nic *n)
{
	const uint32_t id = IGB_VF_DEVICE << 16 | IGB_VF_VENDOR;
	unsigned skip = n->vf_index;
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint64_t cfg =
			    n->bi->ecam_base + ((uint64_t)dev << 15) + ((uint64_t)fn << 12);
			if (mmio_read32(cfg) != id || skip--)
				continue;
			n->cfg = cfg;
			uint32_t rev = mmio_read32(cfg + PCI_REVISION) & 0xFF;
			con_printf("nic-echo: VF at 00:%02x.%u revision %u\n", dev, fn, rev);
			return 0;
		}
	}
	return -NIC_ERR_NO_VF;
}

static uint64_t pci_bar(const struct nic *n, unsigned bar)
{
	uint32_t lo = mmio_read32(n->cfg + PCI_BAR0 + 4 * bar);
	if (lo & 1)
		return 0; /* an I/O BAR */
	uint64_t addr = lo & ~0xFu;
	if (((lo >> 1) & 3) == 2 && bar < 5)
		addr |= (uint64_t)mmio_read32(n->cfg + PCI_BAR0 + 4 * bar + 4) << 32;
	return addr;
}

static unsigned pci_find_cap(const struct nic *n, unsigned id)
{
	if (!(mmio_read32(n->cfg + PCI_COMMAND) & PCI_STATUS_CAPS))
		return 0;
	unsigned pos = mmio_read32(n->cfg + PCI_CAP_PTR) & 0xFC;
	for (unsigned hops = 0; pos >= 0x40 && hops < 48; hops++) {
		uint32_t hdr = mmio_read32(n->cfg + pos);
		if ((hdr & 0xFF) == id)
			return pos;
		pos = (hdr >> 8) & 0xFC;
	}
	return 0;
}

static int nic_probe(struct nic *n)
{
	int rc = pci_find_vf(n);
	if (rc)
		return rc;
	n->bar0 = pci_bar(n, 0);
	if (!n->bar0)
		return -NIC_ERR_NO_BAR;
	if (n->mode != NIC_MSIX)
		return 0;
	n->msix_cap = pci_find_cap(n, PCI_CAP_MSIX);
	if (!n->msix_cap)
		return -NIC_ERR_NO_BAR;
	uint32_t t = mmio_read32(n->cfg + n->msix_cap + MSIX_TABLE);
	uint64_t bar = (t & 7) < 6 ? pci_bar(n, t & 7) : 0;
	n->msix_table = bar ? bar + (t & ~7u) : 0;
	return n->msix_table ? 0 : -NIC_ERR_NO_BAR;
}

/* ---- interrupts ---- */

static void msix_setup(const struct nic *n)
{
	uint64_t ctl = n->cfg + n->msix_cap + MSIX_CTRL;
	/* Enabled but masked as a whole while the table changes (PCI 3.0, 6.8.2.3). */
	cfg_write16(ctl, MSIX_ENABLE | MSIX_FN_MASK);
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		uint64_t e = n->msix_table + 16 * v;
		mmio_write32(e + 0, MSI_ADDR_BSP);
		mmio_write32(e + 4, 0);
		mmio_write32(e + 8, NIC_VECTOR_BASE + v);
		mmio_write32(e + 12, 0); /* unmasked */
	}
	cfg_write16(ctl, MSIX_ENABLE);
}

static void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

/* The command register and the interrupt path; done again after every reset. */
static int irq_setup(struct nic *n)
{
	uint16_t cmd = PCI_CMD_MEM | PCI_CMD_MASTER;
	if (n->mode != NIC_INTX)
		cmd |= PCI_CMD_INTX_OFF;
	cfg_write16(n->cfg + PCI_COMMAND, cmd);
	if (n->mode == NIC_MSIX) {
		msix_setup(n);
		return 0;
	}
	if (n->mode == NIC_POLL)
		return 0;
	/* The VMM raises the GSI it wrote into the Interrupt Line; GSI g is I/O APIC pin g. */
	unsigned pin = mmio_read32(n->cfg + PCI_INTERRUPT_LINE) & 0xFF;
	if (pin == 0 || pin >= IOAPIC_PINS)
		return -NIC_ERR_NO_IRQ;
	nic_intx_eicr = n->bar0 + IGB_EICR; /* before the pin is unmasked */
	ioapic_write(0x11 + 2 * pin, 0);    /* destination APIC id 0 */
	ioapic_write(0x10 + 2 * pin, NIC_INTX_VECTOR | IOAPIC_LEVEL); /* fixed, active-high */
	return 0;
}

/* Which cause goes to which vector, and which vectors clear and mask themselves. */
static void irq_regs(const struct nic *n)
{
	uint32_t ivar = 0, queues = (1u << n->nq) - 1;
	if (n->mode == NIC_POLL) {
		mmio_write32(n->bar0 + IGB_EIMC, ~0u);
		return;
	}
	for (unsigned q = 0; q < n->nq; q++) /* RX queue q in byte 2q, TX queue q in 2q + 1 */
		ivar |= ((q | IGB_IVAR_VALID) * 0x0101u) << (16 * q);
	mmio_write32(n->bar0 + IGB_IVAR0, ivar);
	mmio_write32(n->bar0 + IGB_IVAR_MISC, MBX_VECTOR | IGB_IVAR_VALID);
	mmio_write32(n->bar0 + IGB_EIAC, queues);
	mmio_write32(n->bar0 + IGB_EIAM, queues);
	mmio_write32(n->bar0 + IGB_EIMS, queues | 1u << MBX_VECTOR);
}

/* ---- rings ---- */

/* The buffer to post in RX descriptor i: its own, or (hold) the pool's next. */
static uint8_t *rx_post_buf(struct nic_queue *r, unsigned i, bool hold)
{
	if (!hold)
		return r->rx_buf + i * NIC_BUF;
	unsigned k = r->pool_next++ % NIC_POOL;
	r->slot[i] = (uint16_t)k;
	r->held[k].valid = 0; /* from now on the device may write it */
	return r->pool + k * NIC_BUF;
}

static uint8_t *rx_cur_buf(struct nic_queue *r, unsigned i, bool hold)
{
	return hold ? r->pool + r->slot[i] * NIC_BUF : r->rx_buf + i * NIC_BUF;
}

static void ring_setup(struct nic *n, unsigned q)
{
	struct nic_queue *r = &n->q[q];
	uint64_t b = n->bar0, rx = (uintptr_t)r->rx, tx = (uintptr_t)r->tx;
	for (unsigned i = 0; i < NIC_RING; i++) {
		r->rx[i].read.pkt_addr = (uintptr_t)rx_post_buf(r, i, n->hold);
		r->rx[i].read.hdr_addr = 0;
		r->tx[i].read.addr = 0;
		r->tx[i].read.cmd_type_len = 0;
		r->tx[i].read.olinfo_status = 0;
	}
	r->rx_next = r->tx_next = r->tx_clean = r->tx_busy = 0;
	barrier();
	mmio_write32(b + IGB_SRRCTL(q), (NIC_BUF >> 10) | IGB_SRRCTL_DESCTYPE_ADV1);
	mmio_write32(b + IGB_RDBAL(q), (uint32_t)rx);
	mmio_write32(b + IGB_RDBAH(q), (uint32_t)(rx >> 32));
	mmio_write32(b + IGB_RDLEN(q), NIC_RING * sizeof(union igb_rx_desc));
	mmio_write32(b + IGB_RDH(q), 0);
	mmio_write32(b + IGB_RXDCTL(q), IGB_XDCTL_ENABLE);
	mmio_write32(b + IGB_RDT(q), NIC_RING - 1); /* the last one stays ours: head != tail */
	mmio_write32(b + IGB_TDBAL(q), (uint32_t)tx);
	mmio_write32(b + IGB_TDBAH(q), (uint32_t)(tx >> 32));
	mmio_write32(b + IGB_TDLEN(q), NIC_RING * sizeof(union igb_tx_desc));
	mmio_write32(b + IGB_TDH(q), 0);
	mmio_write32(b + IGB_TDT(q), 0);
	mmio_write32(b + IGB_TXDCTL(q), IGB_XDCTL_ENABLE);
}

/* Fixed places from free_base, the same after every reset: rings, then 64 + 64 buffers. */
static void ring_place(struct nic *n, uint64_t base)
{
	for (unsigned q = 0; q < IGB_VF_MAX_QUEUES; q++) {
		uint64_t rings = base + q * 2 * NIC_RING * 16, bufs = base + NIC_MEM_RINGS;
		bufs += q * NIC_MEM_QUEUE_BUFS;
		n->q[q].rx = (volatile union igb_rx_desc *)(uintptr_t)rings;
		n->q[q].tx = (volatile union igb_tx_desc *)(uintptr_t)(rings + NIC_RING * 16);
		n->q[q].rx_buf = (uint8_t *)(uintptr_t)bufs;
		uint64_t pool = base + NIC_MEM_SIZE;
		n->q[q].held =
		    (struct nic_held *)(uintptr_t)(pool + q * NIC_POOL * sizeof(struct nic_held));
		n->q[q].pool = (uint8_t *)(uintptr_t)(pool + NIC_MEM_HELD + q * NIC_POOL * NIC_BUF);
		n->q[q].tx_buf = (uint8_t *)(uintptr_t)(bufs + NIC_RING * NIC_BUF);
	}
}

/* With every ring ready, a RARP from the VF's MAC tells the switch (and the test peer) that
 * frames for it may come, as a guest's gratuitous frame at link-up does. */
static void nic_announce(struct nic *n)
{
	struct nic_queue *r = &n->q[0];
	unsigned t = r->tx_next;
	uint8_t *f = r->tx_buf + t * NIC_BUF;
	static const uint8_t rarp[] = {0x80, 0x35, 0, 1, 0x08, 0, 6, 4, 0, 3};
	__builtin_memset(f, 0, RARP_LEN);
	__builtin_memset(f, 0xFF, 6);
	__builtin_memcpy(f + 6, n->mac, 6);
	__builtin_memcpy(f + 12, rarp, sizeof(rarp));
	__builtin_memcpy(f + 22, n->mac, 6); /* sender hardware address */
	__builtin_memcpy(f + 32, n->mac, 6); /* target hardware address */
	r->tx[t].read.addr = (uintptr_t)f;
	r->tx[t].read.cmd_type_len = RARP_LEN | IGB_TXD_DTYP_DATA | IGB_TXD_CMD_EOP |
				     IGB_TXD_CMD_IFCS | IGB_TXD_CMD_RS | IGB_TXD_CMD_DEXT;
	r->tx[t].read.olinfo_status = RARP_LEN << IGB_TXD_PAYLEN_SHIFT;
	r->tx_next = (t + 1) % NIC_RING;
	r->tx_busy++;
	barrier();
	mmio_write32(n->bar0 + IGB_TDT(0), r->tx_next);
}

static void print_ready(const struct nic *n)
{
	char mac[18];
	nic_mac_str(n->mac, mac);
	con_printf("nic-echo: ready mac=%s queues=%u api=%s\n", mac, n->nq,
		   n->api == IGB_API_11 ? "1.1" : "1.0");
	bd_report(GW_REPORT_NIC_READY, n->nq, n->api);
}

/* Everything after probing: the interrupt path, the reset handshake, rings, routing. */
static int nic_bringup(struct nic *n)
{
	int rc = irq_setup(n);
	if (rc == 0)
		rc = nic_vf_reset(n);
	if (rc)
		return rc;
	for (unsigned q = 0; q < n->nq; q++)
		ring_setup(n, q);
	irq_regs(n);
	nic_announce(n);
	print_ready(n);
	return 0;
}

static int nic_renegotiate(struct nic *n)
{
	con_puts("nic-echo: reset by PF, renegotiating\n");
	return nic_bringup(n);
}

/* ---- the echo path ---- */

/* The frame and the 2 KiB buffers are whole qwords apart, so whole qwords are copied. */
static void copy_frame(void *dst, const void *src, uint32_t len)
{
	uint64_t qwords = (len + 7) / 8;
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(qwords) : : "memory");
}

static bool frame_ok(const uint8_t *buf, uint32_t len, uint32_t status)
{
	const struct gw_nic_frame *f = (const struct gw_nic_frame *)buf;
	const uint16_t ethertype_be =
	    (uint16_t)(GW_NIC_ETHERTYPE >> 8 | (GW_NIC_ETHERTYPE & 0xFF) << 8);
	if (!(status & IGB_RXD_STAT_EOP) || (status & IGB_RXD_ERR_RXE) || len < sizeof(*f) ||
	    len > NIC_BUF)
		return false;
	if (f->ethertype != ethertype_be || f->magic != GW_NIC_MAGIC || f->len != len)
		return false;
	return gw_nic_sum(buf + sizeof(*f), len - (uint32_t)sizeof(*f), f->seq) == f->sum;
}

/* Sends a good frame on: back to its sender with GW_NIC_FLAG_ECHO set or, with relay=MAC, a
 * frame without the flag on to MAC and one with it back to the last sender of such a frame
 * (frames between a peer and another VM pass through this one unchanged but for their
 * addresses). */
static void echo_frame(struct nic *n, struct nic_queue *r, const uint8_t *in, uint32_t len)
{
	unsigned t = r->tx_next;
	uint8_t *buf = r->tx_buf + t * NIC_BUF;
	struct gw_nic_frame *out = (struct gw_nic_frame *)buf;
	const struct gw_nic_frame *f = (const struct gw_nic_frame *)in;
	copy_frame(buf, in, len);
	if (!n->relay) {
		__builtin_memcpy(out->dst, f->src, 6);
		out->flags |= GW_NIC_FLAG_ECHO;
	} else if (f->flags & GW_NIC_FLAG_ECHO) {
		__builtin_memcpy(out->dst, n->relay_back, 6);
	} else {
		__builtin_memcpy(n->relay_back, f->src, 6);
		__builtin_memcpy(out->dst, n->relay_to, 6);
	}
	__builtin_memcpy(out->src, f->dst, 6);
	r->tx[t].read.addr = (uintptr_t)buf;
	r->tx[t].read.cmd_type_len = len | IGB_TXD_DTYP_DATA | IGB_TXD_CMD_EOP | IGB_TXD_CMD_IFCS |
				     IGB_TXD_CMD_RS | IGB_TXD_CMD_DEXT;
	r->tx[t].read.olinfo_status = len << IGB_TXD_PAYLEN_SHIFT;
	r->tx_next = (t + 1) % NIC_RING;
	r->tx_busy++;
}

/* hold: what pool buffer k received. */
static void held_note(struct nic_queue *r, unsigned k, const uint8_t *buf, uint32_t len)
{
	const struct gw_nic_frame *f = (const struct gw_nic_frame *)buf;
	r->held[k].seq = f->seq;
	r->held[k].sum = f->sum;
	r->held[k].len = len;
	r->held[k].valid = 1;
}

/* hold: pool buffer k is about to be posted again; what it received must still be there,
 * intact. Nothing but the device ever wrote it, so a difference means that a device write
 * got lost on the way, as when a migration left a page behind. */
static void held_check(struct nic *n, struct nic_queue *r, unsigned k)
{
	struct nic_held *h = &r->held[k];
	if (!h->valid)
		return;
	h->valid = 0;
	const uint8_t *buf = r->pool + k * NIC_BUF;
	const struct gw_nic_frame *f = (const struct gw_nic_frame *)buf;
	if (frame_ok(buf, h->len, IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP) && f->seq == h->seq &&
	    f->sum == h->sum)
		return;
	n->bad++;
	if (n->stale < 4)
		bd_report(GW_REPORT_NIC_STALE, k, h->seq);
	if (n->stale++ < 4)
		con_printf("nic-echo: held buffer %u changed: it received frame %lu, now holds "
			   "%s %lu\n",
			   k, h->seq,
			   frame_ok(buf, h->len, IGB_RXD_STAT_DD | IGB_RXD_STAT_EOP)
			       ? "frame"
			       : "garbage, seq",
			   f->seq);
}

static void tx_reclaim(struct nic_queue *r)
{
	while (r->tx_busy && (r->tx[r->tx_clean].wb.status & IGB_TXD_STAT_DD)) {
		r->tx_clean = (r->tx_clean + 1) % NIC_RING;
		r->tx_busy--;
	}
}

/* Handles the frames the device completed on queue q, up to echoed == stop_at, with one TDT
 * and one RDT write at the end. Sets *tx_full when it stopped for want of TX descriptors. */
static void queue_service(struct nic *n, unsigned q, uint64_t stop_at, bool *tx_full)
{
	struct nic_queue *r = &n->q[q];
	unsigned i = r->rx_next, sent = 0;
	tx_reclaim(r);
	while (n->echoed < stop_at) {
		volatile union igb_rx_desc *d = &r->rx[i];
		uint32_t status = d->wb.status;
		if (!(status & IGB_RXD_STAT_DD))
			break;
		if (r->tx_busy == NIC_RING - 1) {
			*tx_full = true;
			break;
		}
		barrier(); /* the buffer is read only after DD was seen */
		uint8_t *buf = rx_cur_buf(r, i, n->hold);
		uint32_t len = d->wb.length;
		if (len >= 18 && buf[12] == 0x81 && buf[13] == 0x00 && len <= NIC_BUF) {
			/* A VLAN tag the device kept (one whose pool does not strip): the frame
			 * inside it is what is echoed. */
			for (uint32_t k = 12; k + 4 < len; k++) /* forward: it moves down */
				buf[k] = buf[k + 4];
			len -= 4;
		}
		if (len == RARP_LEN && buf[12] == 0x80 && buf[13] == 0x35) {
			/* Another function's announce on a shared segment: not for us. */
		} else if (frame_ok(buf, len, status)) {
			echo_frame(n, r, buf, len);
			n->echoed++;
			sent++;
			if (n->hold)
				held_note(r, r->slot[i], buf, len);
		} else {
			n->bad++;
		}
		if (n->hold)
			held_check(n, r, r->pool_next % NIC_POOL);
		d->read.pkt_addr = (uintptr_t)rx_post_buf(r, i, n->hold);
		d->read.hdr_addr = 0; /* clears DD */
		i = (i + 1) % NIC_RING;
	}
	if (i == r->rx_next)
		return;
	barrier(); /* descriptors and TX buffers are written before the device hears of them */
	/* RX descriptors go back before the echoes leave: each echo lets the peer send another
	 * frame, and those must find room even when a whole batch of them comes at once. */
	mmio_write32(n->bar0 + IGB_RDT(q), (i + NIC_RING - 1) % NIC_RING);
	if (sent)
		mmio_write32(n->bar0 + IGB_TDT(q), r->tx_next);
	r->rx_next = i;
}

static bool rx_pending(const struct nic *n)
{
	for (unsigned q = 0; q < n->nq; q++) {
		if (n->q[q].rx[n->q[q].rx_next].wb.status & IGB_RXD_STAT_DD)
			return true;
	}
	return false;
}

/* Lets the last echoes leave before the VM stops: at most a second. */
static void tx_drain(struct nic *n)
{
	uint64_t end = rdtsc() + n->khz * 1000;
	for (;;) {
		unsigned busy = 0;
		for (unsigned q = 0; q < n->nq; q++) {
			tx_reclaim(&n->q[q]);
			busy += n->q[q].tx_busy;
		}
		if (!busy || rdtsc() >= end)
			return;
		pause_us(n, PAUSE_US);
	}
}

static void report_progress(struct nic *n)
{
	while (n->echoed >= n->next_report) {
		con_printf("nic-echo: echoed %lu bad %lu\n", n->echoed, n->bad);
		bd_report(GW_REPORT_NIC_PROGRESS, n->echoed, n->bad);
		n->next_report += REPORT_EVERY;
	}
}

enum nic_wait {
	WAIT_NONE, /* frames are waiting: go round again now */
	WAIT_TX,   /* the TX ring is full: wait briefly for completions */
	WAIT_IDLE, /* nothing to do: wait for an interrupt */
};

/* One round over all queues. */
static enum nic_wait echo_round(struct nic *n, uint32_t cause)
{
	uint32_t queues = (1u << n->nq) - 1;
	uint64_t stop_at = n->next_report;
	bool tx_full = false;
	if (n->count && n->count < stop_at)
		stop_at = n->count;
	for (unsigned q = 0; q < n->nq; q++)
		queue_service(n, q, stop_at, &tx_full);
	/* The vectors that fired masked themselves (EIAM): on again, in one write. */
	if (n->mode != NIC_POLL && (cause & queues))
		mmio_write32(n->bar0 + IGB_EIMS, cause & queues);
	report_progress(n);
	if (tx_full)
		return WAIT_TX;
	return rx_pending(n) ? WAIT_NONE : WAIT_IDLE;
}

/* Polling spins rather than halts: a timer wakeup costs more VM exits than the look it buys.
 * Otherwise halt until an interrupt, but not past the next look at the mailbox. */
static void echo_wait(const struct nic *n, enum nic_wait how, uint64_t seen, uint64_t next_look)
{
	uint64_t now = rdtsc();
	if (how == WAIT_NONE)
		return;
	if (n->mode == NIC_POLL) {
		while (rdtsc() < now + n->khz * POLL_SPIN_US / 1000)
			__asm__ volatile("pause");
		return;
	}
	/* TX completions interrupt on the queue's vector too. */
	uint64_t end = now + n->khz * (how == WAIT_TX ? TX_WAIT_MS : IDLE_WAIT_MS);
	wait_counter(&nic_irqs, seen + 1, end < next_look ? end : next_look);
}

static int echo_loop(struct nic *n)
{
	uint64_t look_every = n->khz * (n->mode == NIC_POLL ? MBX_LOOK_POLL_MS : MBX_LOOK_MS);
	uint64_t next_look = rdtsc() + look_every;
	while (!n->count || n->echoed < n->count) {
		uint64_t seen = nic_irqs; /* before the rings are looked at: no wakeup is lost */
		uint32_t cause = __atomic_exchange_n(&nic_irq_cause, 0, __ATOMIC_SEQ_CST);
		if ((cause & 1u << MBX_VECTOR) || rdtsc() >= next_look) {
			next_look = rdtsc() + look_every;
			if (nic_mbx_event(n)) {
				int rc = nic_renegotiate(n);
				if (rc)
					return rc;
				continue;
			}
		}
		echo_wait(n, echo_round(n, cause), seen, next_look);
	}
	tx_drain(n);
	return 0;
}

static int nic_fail(const struct nic *n, int rc)
{
	static const char *const what[] = {
	    [NIC_ERR_NO_VF] = "no 8086:10ca function found on bus 0",
	    [NIC_ERR_NO_BAR] = "BAR0, the MSI-X capability or its table BAR is missing",
	    [NIC_ERR_NO_IRQ] = "the Interrupt Line names no I/O APIC pin",
	    [NIC_ERR_NO_MEM] = "rings and buffers do not fit in free RAM",
	    [NIC_ERR_RESET_TIMEOUT] = "no RSTD after CTRL.RST",
	    [NIC_ERR_MBX_BUSY] = "could not take the mailbox (VFU)",
	    [NIC_ERR_MBX_TIMEOUT] = "mailbox timeout",
	    [NIC_ERR_NACK] = "the PF answered NACK",
	    [NIC_ERR_REPLY] = "unexpected mailbox reply",
	};
	unsigned code = (unsigned)-rc;
	const char *msg = code < sizeof(what) / sizeof(what[0]) && what[code] ? what[code] : "?";
	if (code >= NIC_ERR_RESET_TIMEOUT)
		con_printf("nic-echo: error: %s (%s)\n", msg, n->step ? n->step : "-");
	else
		con_printf("nic-echo: error: %s\n", msg);
	bd_report(GW_REPORT_ERROR, code, 0);
	return 3;
}

int wl_nic_echo(struct guest_env *env)
{
	struct nic n = {.bi = env->bi, .next_report = REPORT_EVERY};
	if (!parse_args(&n, env->args)) {
		con_puts("nic-echo: usage "
			 "nic-echo[:count[:intx|poll|hold|vlan=N|mc=N|vf=N|mac=XX:XX:XX:XX:XX:XX|"
			 "relay=XX:XX:XX:XX:XX:XX,...]]\n");
		return 2;
	}
	if (env->free_base + NIC_MEM_SIZE + (n.hold ? NIC_MEM_POOL : 0) > env->free_end)
		return nic_fail(&n, -NIC_ERR_NO_MEM);
	n.khz = tsc_khz();
	ring_place(&n, env->free_base);
	int rc = nic_probe(&n);
	if (rc == 0)
		rc = nic_bringup(&n);
	if (rc == 0)
		rc = echo_loop(&n);
	if (rc)
		return nic_fail(&n, rc);
	con_printf("nic-echo: done echoed %lu bad %lu\n", n.echoed, n.bad);
	bd_report(GW_REPORT_NIC_END, n.echoed, n.bad);
	return n.bad ? 1 : 0;
}
