/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-vfbench: packets per second and CPU per packet through the emulated VF's device model
 * (sriov/'s igb register model and its packet port) with the guest's driver played on the host. */
#include "igb_dev.h"

#include "godwit/dma.h"
#include "godwit/igb_vf.h"
#include "godwit/sriov_gen.h"
#include "godwit/sriov_pf.h"
#include "godwit/sriov_port.h"

#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* As emul.c's device thread: frames per queue per round, and how long it waits when a round
 * found nothing to do (a port with an fd wakes it earlier; a polled one, dpdk:, does not). */
#define BUDGET	     32u
#define IDLE_WAIT_MS 100
#define POLL_WAIT_US 200

/* Guest memory: the rings, then RX buffers, then TX buffers (as nic-echo lays them out). */
#define RAM_IOVA 0x100000ull
#define RAM_SIZE (2u << 20)
#define RX_RING	 0x0000u
#define TX_RING	 0x1000u
#define RX_BUFS	 0x10000u
#define TX_BUFS	 0x100000u
#define BUF	 2048u
#define RING_MAX 256u
#define RARP_LEN 60u

#define NS_PER_SEC    UINT64_C(1000000000)
#define ANNOUNCE_NS   NS_PER_SEC /* until the first frame comes, the driver announces again */
#define DRAIN_NS      NS_PER_SEC
#define EXIT_FAIL     1
#define EXIT_USAGE    2
#define VF_MAC_STRING "02:67:77:00:0e:02"

struct opts {
	const char *uplink;
	uint64_t frames;
	unsigned ring;
	unsigned timeout_s;
	bool json;
};

/* The guest's side: its memory and its driver's ring state (nic-echo's queue_service). */
struct drv {
	uint8_t *ram;
	unsigned ring;
	unsigned rx_next, tx_next, tx_clean, tx_busy;
	uint64_t echoed, bad, announces;
};

struct vfb {
	struct opts o;
	struct drv g;
	struct dma_map *dma;
	struct sriov_pf_agent *pf;
	struct sriov_port *port;
	uint32_t *regs;
	struct igb_dev dev;
	bool dev_up;
	uint8_t mac[6];
	uint64_t rounds, idle_waits, irqs;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void on_msix(void *opaque, unsigned vec)
{
	(void)vec;
	((struct vfb *)opaque)->irqs++;
}

static void on_intx(void *opaque, bool level)
{
	(void)opaque;
	(void)level;
}

/* The driver and the device share one thread here: the next round follows every register
 * write, so a kick has nothing to wake. */
static void on_kick(void *opaque)
{
	(void)opaque;
}

static void *at(struct vfb *b, uint32_t off)
{
	return b->g.ram + off;
}

static union igb_rx_desc *rx_desc(struct vfb *b, unsigned i)
{
	return (union igb_rx_desc *)at(b, RX_RING) + i;
}

static union igb_tx_desc *tx_desc(struct vfb *b, unsigned i)
{
	return (union igb_tx_desc *)at(b, TX_RING) + i;
}

static uint32_t rd(struct vfb *b, uint32_t off)
{
	return (uint32_t)igb_dev_read(&b->dev, off, 4);
}

static void wr(struct vfb *b, uint32_t off, uint32_t v)
{
	igb_dev_write(&b->dev, off, v, 4);
}

/* One round of the device, as emul.c's thread runs it: mailbox, TX rings, one flush of the
 * port, then up to BUDGET frames from the port into the RX rings. (Its DMA-shadow round after
 * each one is for migrations, of which there is none here.) */
static unsigned device_round(struct vfb *b)
{
	b->rounds++;
	return igb_dev_process(&b->dev, BUDGET);
}

/* ... and its wait when a round found nothing to do. */
static void device_wait(struct vfb *b)
{
	struct pollfd p = {.fd = sriov_port_fd(b->port), .events = POLLIN};
	bool polled = sriov_port_polled(b->port);
	struct timespec ts = {0, polled ? POLL_WAIT_US * 1000L : IDLE_WAIT_MS * 1000000L};
	b->idle_waits++;
	ppoll(&p, p.fd >= 0 ? 1 : 0, &ts, NULL);
}

/* The VF reset handshake as igbvf does it: CTRL.RST, then VF_RESET through the mailbox; the
 * reply carries the MAC the PF gave the function. */
static int drv_reset(struct vfb *b)
{
	wr(b, IGB_CTRL, IGB_CTRL_RST);
	if (!(rd(b, IGB_V2PMBX) & IGB_MBX_RSTD))
		return -EIO;
	wr(b, IGB_V2PMBX, IGB_MBX_VFU);
	wr(b, IGB_VMBMEM, IGB_VF_RESET);
	wr(b, IGB_V2PMBX, IGB_MBX_REQ);
	uint32_t m = 0;
	for (unsigned i = 0; i < 16 && !(m & IGB_MBX_PFSTS); i++) {
		device_round(b);
		m |= rd(b, IGB_V2PMBX);
	}
	if (!(m & IGB_MBX_PFSTS))
		return -ETIMEDOUT;
	uint32_t reply[3];
	for (unsigned i = 0; i < 3; i++)
		reply[i] = rd(b, IGB_VMBMEM + 4 * i);
	wr(b, IGB_V2PMBX, IGB_MBX_ACK);
	if (reply[0] != (IGB_VF_RESET | IGB_MSG_ACK))
		return -EPROTO;
	igb_mac_from_words(reply + 1, b->mac);
	return 0;
}

/* nic-echo's ring_setup for queue 0, polled (no interrupt unmasked). */
static void drv_rings(struct vfb *b)
{
	unsigned n = b->g.ring;
	for (unsigned i = 0; i < n; i++) {
		rx_desc(b, i)->read.pkt_addr = RAM_IOVA + RX_BUFS + (uint64_t)BUF * i;
		rx_desc(b, i)->read.hdr_addr = 0;
		memset(tx_desc(b, i), 0, sizeof(union igb_tx_desc));
	}
	wr(b, IGB_SRRCTL(0), (BUF >> 10) | IGB_SRRCTL_DESCTYPE_ADV1);
	wr(b, IGB_RDBAL(0), (uint32_t)(RAM_IOVA + RX_RING));
	wr(b, IGB_RDBAH(0), 0);
	wr(b, IGB_RDLEN(0), n * (uint32_t)sizeof(union igb_rx_desc));
	wr(b, IGB_RDH(0), 0);
	wr(b, IGB_RXDCTL(0), IGB_XDCTL_ENABLE);
	wr(b, IGB_RDT(0), n - 1); /* the last one stays the driver's: head != tail */
	wr(b, IGB_TDBAL(0), (uint32_t)(RAM_IOVA + TX_RING));
	wr(b, IGB_TDBAH(0), 0);
	wr(b, IGB_TDLEN(0), n * (uint32_t)sizeof(union igb_tx_desc));
	wr(b, IGB_TDH(0), 0);
	wr(b, IGB_TDT(0), 0);
	wr(b, IGB_TXDCTL(0), IGB_XDCTL_ENABLE);
	wr(b, IGB_EIMC, ~0u);
}

static void tx_post(struct vfb *b, uint32_t len)
{
	struct drv *g = &b->g;
	union igb_tx_desc *t = tx_desc(b, g->tx_next);
	t->read.addr = RAM_IOVA + TX_BUFS + (uint64_t)BUF * g->tx_next;
	t->read.cmd_type_len = len | IGB_TXD_DTYP_DATA | IGB_TXD_CMD_EOP | IGB_TXD_CMD_IFCS |
			       IGB_TXD_CMD_RS | IGB_TXD_CMD_DEXT;
	t->read.olinfo_status = len << IGB_TXD_PAYLEN_SHIFT;
	g->tx_next = (g->tx_next + 1) % g->ring;
	g->tx_busy++;
}

/* A RARP from the VF's MAC: the switch (godwit-nicpeer) learns where the function is. */
static void drv_announce(struct vfb *b)
{
	struct drv *g = &b->g;
	if (g->tx_busy == g->ring - 1)
		return;
	uint8_t *f = at(b, TX_BUFS + BUF * g->tx_next);
	static const uint8_t rarp[] = {0x80, 0x35, 0, 1, 0x08, 0, 6, 4, 0, 3};
	memset(f, 0, RARP_LEN);
	memset(f, 0xFF, 6);
	memcpy(f + 6, b->mac, 6);
	memcpy(f + 12, rarp, sizeof(rarp));
	memcpy(f + 22, b->mac, 6); /* sender hardware address */
	memcpy(f + 32, b->mac, 6); /* target hardware address */
	tx_post(b, RARP_LEN);
	g->announces++;
	wr(b, IGB_TDT(0), g->tx_next);
}

static bool frame_ok(const uint8_t *buf, uint32_t len, uint32_t status)
{
	const struct gw_nic_frame *f = (const struct gw_nic_frame *)buf;
	if (!(status & IGB_RXD_STAT_EOP) || (status & IGB_RXD_ERR_RXE) || len < sizeof(*f) ||
	    len > BUF)
		return false;
	if (f->ethertype != htobe16(GW_NIC_ETHERTYPE) || f->magic != GW_NIC_MAGIC || f->len != len)
		return false;
	return gw_nic_sum(buf + sizeof(*f), len - (uint32_t)sizeof(*f), f->seq) == f->sum;
}

static void tx_reclaim(struct vfb *b)
{
	struct drv *g = &b->g;
	while (g->tx_busy && (tx_desc(b, g->tx_clean)->wb.status & IGB_TXD_STAT_DD)) {
		g->tx_clean = (g->tx_clean + 1) % g->ring;
		g->tx_busy--;
	}
}

/* nic-echo's queue_service: every frame the device completed is checked and echoed (back to
 * its sender, addresses swapped, GW_NIC_FLAG_ECHO set), its RX descriptor posted again, and
 * the batch ends with one RDT and one TDT write. Returns the descriptors it took. */
static unsigned drv_service(struct vfb *b)
{
	struct drv *g = &b->g;
	unsigned i = g->rx_next, took = 0, sent = 0;
	tx_reclaim(b);
	while (g->echoed < b->o.frames) {
		union igb_rx_desc *d = rx_desc(b, i);
		uint32_t status = d->wb.status;
		if (!(status & IGB_RXD_STAT_DD) || g->tx_busy == g->ring - 1)
			break;
		const uint8_t *in = at(b, RX_BUFS + BUF * i);
		uint32_t len = d->wb.length;
		if (len == RARP_LEN && in[12] == 0x80 && in[13] == 0x35) {
			/* Another function's announce on a shared segment: not for us. */
		} else if (frame_ok(in, len, status)) {
			uint8_t *buf = at(b, TX_BUFS + BUF * g->tx_next);
			struct gw_nic_frame *out = (struct gw_nic_frame *)buf;
			const struct gw_nic_frame *f = (const struct gw_nic_frame *)in;
			memcpy(buf, in, len);
			memcpy(out->dst, f->src, 6);
			memcpy(out->src, f->dst, 6);
			out->flags |= GW_NIC_FLAG_ECHO;
			tx_post(b, len);
			g->echoed++;
			sent++;
		} else {
			g->bad++;
		}
		d->read.pkt_addr = RAM_IOVA + RX_BUFS + (uint64_t)BUF * i;
		d->read.hdr_addr = 0; /* clears DD */
		i = (i + 1) % g->ring;
		took++;
	}
	if (!took)
		return 0;
	/* RX descriptors go back before the echoes leave, as nic-echo does. */
	wr(b, IGB_RDT(0), (i + g->ring - 1) % g->ring);
	if (sent)
		wr(b, IGB_TDT(0), g->tx_next);
	g->rx_next = i;
	return took;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: godwit-vfbench --uplink SPEC [--frames N] [--ring N] [--timeout S] [--json]\n"
	    "\n"
	    "Runs the emulated VF's device model (the igb register model, its RX/TX ring\n"
	    "engines and the packet port) as godwit-vmm's device thread does, with the guest's\n"
	    "driver played on the host: it echoes the test frames godwit-nicpeer sends, as the\n"
	    "test guest's nic-echo does, and reports packets per second and CPU per packet.\n"
	    "No VM, no vCPU, no /dev/kvm.\n"
	    "\n"
	    "  --uplink SPEC   the VF's port: udp:HOST:PORT, unix:PATH, tap:NAME, packet:IFNAME,\n"
	    "                  dpdk:DEVARGS (as godwit-vmm's --vf ...,uplink=)\n"
	    "  --frames N      echo N good frames, then stop (default 100000)\n"
	    "  --ring N        descriptors per RX and TX ring, 8..%u (default 64, as nic-echo)\n"
	    "  --timeout S     give up after S seconds (default 120)\n"
	    "  --json          print the report as one JSON object\n"
	    "\n"
	    "The VF's MAC is " VF_MAC_STRING
	    ". Exit codes: 0 N frames echoed, none bad; 1 otherwise;\n"
	    "2 usage error or the port did not open.\n",
	    RING_MAX);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"uplink", required_argument, NULL, 'u'},
					   {"frames", required_argument, NULL, 'f'},
					   {"ring", required_argument, NULL, 'r'},
					   {"timeout", required_argument, NULL, 't'},
					   {"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	*o = (struct opts){.frames = 100000, .ring = 64, .timeout_s = 120};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;
		if (optarg) {
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (c != 'u' && (errno || *end || !*optarg)) {
				fprintf(stderr, "godwit-vfbench: bad number \"%s\"\n", optarg);
				return -EINVAL;
			}
		}
		switch (c) {
		case 'u':
			o->uplink = optarg;
			break;
		case 'f':
			o->frames = v;
			break;
		case 'r':
			if (v < 8 || v > RING_MAX) {
				fprintf(stderr, "godwit-vfbench: --ring wants 8..%u\n", RING_MAX);
				return -EINVAL;
			}
			o->ring = (unsigned)v;
			break;
		case 't':
			o->timeout_s = (unsigned)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->uplink || optind != argc || !o->frames) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int vfb_open(struct vfb *b, double *open_ms)
{
	static const uint8_t mac[6] = {0x02, 0x67, 0x77, 0x00, 0x0e, 0x02};
	char err[160] = "";
	struct sriov_gen gen;
	b->g.ring = b->o.ring;
	b->g.ram = aligned_alloc(4096, RAM_SIZE);
	b->regs = aligned_alloc(4096, IGB_VF_BAR0_SIZE);
	if (!b->g.ram || !b->regs)
		return -ENOMEM;
	memset(b->g.ram, 0, RAM_SIZE);
	memset(b->regs, 0, IGB_VF_BAR0_SIZE);
	int rc = dma_map_create(&b->dma);
	if (rc == 0)
		rc = dma_map_add(b->dma, RAM_IOVA, RAM_SIZE, b->g.ram, true);
	if (rc == 0)
		rc = sriov_emul_gen(1, &gen);
	if (rc == 0)
		rc = sriov_pf_agent_create(&gen, 1, &b->pf);
	if (rc == 0)
		rc = sriov_pf_agent_set_mac(b->pf, 0, mac);
	if (rc) {
		fprintf(stderr, "godwit-vfbench: setup: %s\n", strerror(-rc));
		return rc;
	}
	uint64_t t0 = now_ns();
	rc = sriov_port_open(b->o.uplink, &b->port, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "godwit-vfbench: uplink '%s': %s\n", b->o.uplink,
			*err ? err : strerror(-rc));
		return rc;
	}
	*open_ms = (double)(now_ns() - t0) / 1e6;
	struct igb_dev_io io = {.dma = b->dma,
				.port = b->port,
				.msix = on_msix,
				.intx = on_intx,
				.kick = on_kick,
				.opaque = b};
	rc = igb_dev_init(&b->dev, "vfbench", &gen, 0, b->pf, &io, b->regs);
	if (rc) {
		fprintf(stderr, "godwit-vfbench: device: %s\n", strerror(-rc));
		return rc;
	}
	b->dev_up = true;
	rc = drv_reset(b);
	if (rc) {
		fprintf(stderr, "godwit-vfbench: VF reset handshake: %s\n", strerror(-rc));
		return rc;
	}
	drv_rings(b);
	return 0;
}

static void vfb_close(struct vfb *b)
{
	if (b->dev_up)
		igb_dev_fini(&b->dev);
	sriov_port_close(b->port);
	if (b->pf)
		sriov_pf_agent_destroy(b->pf);
	dma_map_destroy(b->dma);
	free(b->regs);
	free(b->g.ram);
}

struct run {
	uint64_t t_first, t_end;
	double cpu_first, cpu_end;
	bool timed_out;
};

/* Rounds of the device and the driver until N frames were echoed and their TX descriptors
 * came back done (or the time is up). */
static void vfb_run(struct vfb *b, struct run *r)
{
	uint64_t start = now_ns(), deadline = start + (uint64_t)b->o.timeout_s * NS_PER_SEC;
	uint64_t last_announce = start, drain_end = 0;
	drv_announce(b);
	for (;;) {
		unsigned did = device_round(b);
		unsigned took = drv_service(b);
		uint64_t t = now_ns();
		if (!r->t_first && (took || b->g.echoed)) {
			r->t_first = t;
			r->cpu_first = cpu_s();
		}
		if (b->g.echoed >= b->o.frames) {
			tx_reclaim(b);
			if (!drain_end)
				drain_end = t + DRAIN_NS;
			if (!b->g.tx_busy || t >= drain_end)
				break;
		}
		if (t >= deadline) {
			r->timed_out = true;
			break;
		}
		if (!r->t_first && t - last_announce >= ANNOUNCE_NS) {
			drv_announce(b);
			last_announce = t;
		}
		if (!did && !took)
			device_wait(b);
	}
	r->t_end = now_ns();
	r->cpu_end = cpu_s();
	if (!r->t_first) {
		r->t_first = r->t_end;
		r->cpu_first = r->cpu_end;
	}
}

static void report(struct vfb *b, const struct run *r, double open_ms, bool pass)
{
	struct igb_dev_stats st;
	igb_dev_get_stats(&b->dev, &st);
	double secs = (double)(r->t_end - r->t_first) / 1e9;
	double cpu = r->cpu_end - r->cpu_first;
	uint64_t n = b->g.echoed;
	double pps = secs > 0 ? (double)n / secs : 0;
	double cpu_ns = n ? cpu * 1e9 / (double)n : 0;
	if (!b->o.json) {
		printf("godwit-vfbench: %s\n", sriov_port_describe(b->port));
		printf("  echoed %" PRIu64 " of %" PRIu64 " frames, bad %" PRIu64 ", in %.3f s\n",
		       n, b->o.frames, b->g.bad, secs);
		printf("  %.0f packets/s, %.2f us CPU per packet, %" PRIu64
		       " device rounds, %" PRIu64 " idle waits\n",
		       pps, cpu_ns / 1e3, b->rounds, b->idle_waits);
		printf("  device: rx %" PRIu64 " (no descriptor %" PRIu64 ", filtered %" PRIu64
		       ") tx %" PRIu64 " (dropped %" PRIu64 ") dma faults %" PRIu64 "\n",
		       st.rx_frames, st.rx_no_desc, st.rx_filtered, st.tx_frames, st.tx_dropped,
		       st.dma_faults);
		printf("result: %s\n", pass ? "PASS" : r->timed_out ? "FAIL (timed out)" : "FAIL");
		return;
	}
	printf("{\"uplink\":\"%s\",\"describe\":\"%s\",\"result\":\"%s\",\"frames\":%" PRIu64
	       ",\"echoed\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"ring\":%u,\"budget\":%u"
	       ",\"seconds\":%.6f,\"pps\":%.1f,\"cpu_s\":%.6f,\"cpu_ns_per_packet\":%.1f"
	       ",\"open_ms\":%.1f,\"rounds\":%" PRIu64 ",\"idle_waits\":%" PRIu64
	       ",\"announces\":%" PRIu64 ",\"rx_frames\":%" PRIu64 ",\"rx_no_desc\":%" PRIu64
	       ",\"rx_filtered\":%" PRIu64 ",\"tx_frames\":%" PRIu64 ",\"tx_dropped\":%" PRIu64
	       ",\"dma_faults\":%" PRIu64 ",\"timed_out\":%s}\n",
	       b->o.uplink, sriov_port_describe(b->port), pass ? "pass" : "fail", b->o.frames, n,
	       b->g.bad, b->o.ring, BUDGET, secs, pps, cpu, cpu_ns, open_ms, b->rounds,
	       b->idle_waits, b->g.announces, st.rx_frames, st.rx_no_desc, st.rx_filtered,
	       st.tx_frames, st.tx_dropped, st.dma_faults, r->timed_out ? "true" : "false");
}

int main(int argc, char **argv)
{
	struct vfb *b = calloc(1, sizeof(*b));
	if (!b)
		return EXIT_FAIL;
	int ret = EXIT_USAGE;
	double open_ms = 0;
	if (parse(argc, argv, &b->o) == 0 && vfb_open(b, &open_ms) == 0) {
		struct run r = {0};
		vfb_run(b, &r);
		bool pass = b->g.echoed >= b->o.frames && !b->g.bad && !r.timed_out;
		report(b, &r, open_ms, pass);
		ret = pass ? 0 : EXIT_FAIL;
	}
	vfb_close(b);
	free(b);
	return ret;
}
