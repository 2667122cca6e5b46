/* SPDX-License-Identifier: Apache-2.0 */
/* The dpdk: packet port: an ethdev port of this process's own DPDK EAL (no hugepages, nothing
 * shared with other processes), with burst RX and TX through a mempool of its own. */
#include "port_dpdk.h"

#include "godwit/log.h"

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DPDK_RING      512u /* descriptors per queue, before the driver adjusts them */
#define DPDK_TX_RETRY  64u  /* tx_burst calls that took nothing before a batch's rest is dropped */
#define DPDK_ARGS_MAX  12
#define DPDK_SPEC_MAX  256u
#define PORT_MAX_FRAME 9728u

struct port_dpdk {
	uint16_t port_id;
	bool multi_seg; /* the driver sends chained mbufs (frames beyond one mbuf's room) */
	struct rte_mempool *pool;
	struct rte_device *dev;
	unsigned rx_n, rx_pos, tx_n;
	struct rte_mbuf *rx[PORT_DPDK_BURST];
	struct rte_mbuf *tx[PORT_DPDK_BURST];
	uint32_t tx_len[PORT_DPDK_BURST];
};

/*
 * DPDK's EAL starts once per process and keeps its own state in globals, so the one piece of
 * process-wide state here mirrors it: whether the EAL is up (rc: 0 not yet, 1 up, -errno when
 * its start failed; it cannot be tried again), whether it scans PCI, which ethdev ports a
 * godwit port holds, and the arguments EAL was given (it may keep pointers into them).
 */
static struct {
	pthread_mutex_t lock;
	int rc;
	bool pci;
	bool used[RTE_MAX_ETHPORTS];
	char args[DPDK_ARGS_MAX][1100];
	char *argv[DPDK_ARGS_MAX + 1];
} eal = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* "0000:03:00.0" or "03:00.0": a PCI device; anything else names a virtual device. */
static bool name_is_pci(const char *name)
{
	unsigned colons = 0, dots = 0;
	for (const char *c = name; *c; c++) {
		if (*c == ':')
			colons++;
		else if (*c == '.')
			dots++;
		else if (!isxdigit((unsigned char)*c))
			return false;
	}
	return (colons == 1 || colons == 2) && dots == 1;
}

/* The CPUs this thread may run on, as an EAL cpuset ("0-3,6"). */
static void cpus_format(char *out, size_t n)
{
	cpu_set_t set;
	size_t used = 0;
	out[0] = '\0';
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		CPU_ZERO(&set);
	for (int c = 0; c < CPU_SETSIZE && used + 16 < n; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
			e++;
		used += (size_t)snprintf(out + used, n - used, "%s%d", used ? "," : "", c);
		if (e > c)
			used += (size_t)snprintf(out + used, n - used, "-%d", e);
		c = e;
	}
	if (!out[0])
		snprintf(out, n, "0");
}

static void eal_arg(int *argc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void eal_arg(int *argc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(eal.args[*argc], sizeof(eal.args[*argc]), fmt, ap);
	va_end(ap);
	eal.argv[*argc] = eal.args[*argc];
	(*argc)++;
}

/*
 * Starts the EAL (called under eal.lock). Memory comes from anonymous pages (--no-huge), and
 * no configuration is shared (--no-shconf: nothing is written in the runtime directory), so
 * any number of processes can each have their own EAL. (--in-memory says the same but DPDK
 * refuses it beside --no-huge, which implies legacy memory.) Lcore 0 may run on every CPU
 * this thread may: rte_eal_init pins the calling thread to its main lcore's CPUs, and the
 * VMM's threads must keep the placement they were given. PCI is scanned only for a PCI
 * device, and then only that one (-a): the VMM's VFs bound to vfio-pci are not DPDK's.
 */
static int eal_start(const char *pci_name, char *err, size_t errlen)
{
	char cpus[1024];
	int argc = 0;
	cpus_format(cpus, sizeof(cpus));
	eal_arg(&argc, "godwit");
	eal_arg(&argc, "--no-huge");
	eal_arg(&argc, "--no-shconf");
	eal_arg(&argc, "--file-prefix=godwit");
	eal_arg(&argc, "--no-telemetry");
	eal_arg(&argc, "--log-level=*:warning");
	eal_arg(&argc, "--lcores=0@(%s)", cpus);
	if (pci_name) {
		eal_arg(&argc, "-a");
		eal_arg(&argc, "%s", pci_name);
	} else {
		eal_arg(&argc, "--no-pci");
	}
	eal.argv[argc] = NULL;
	/* DPDK's messages go where godwit's log goes: stderr (godwit-vmm's stdout carries its
	 * --json report), and not to syslog as well. */
	rte_openlog_stream(stderr);
	if (rte_eal_init(argc, eal.argv) < 0) {
		int rc = rte_errno > 0 ? -rte_errno : -EIO;
		gw_say(err, errlen, "DPDK EAL did not start: %s", rte_strerror(-rc));
		return rc;
	}
	eal.pci = pci_name != NULL;
	return 1;
}

/* The ethdev name DEVARGS creates: the device name, with a PCI domain added if it had none. */
static void devargs_name(const char *devargs, bool pci, char *out, size_t n)
{
	size_t len = strcspn(devargs, ",");
	bool domain = !pci || strchr(devargs, ':') != strrchr(devargs, ':');
	snprintf(out, n, "%s%.*s", domain ? "" : "0000:", (int)len, devargs);
}

static int port_setup(struct port_dpdk *d, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(d->port_id, &info);
	if (rc < 0) {
		gw_say(err, errlen, "no device information: %s", rte_strerror(-rc));
		return rc;
	}
	d->dev = info.device;
	struct rte_eth_conf conf = {0};
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
		d->multi_seg = true;
	}
	rc = rte_eth_dev_configure(d->port_id, 1, 1, &conf);
	if (rc < 0) {
		gw_say(err, errlen, "configure: %s", rte_strerror(-rc));
		return rc;
	}
	uint16_t nrx = DPDK_RING, ntx = DPDK_RING;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port_id, &nrx, &ntx);
	if (rc < 0) {
		gw_say(err, errlen, "ring sizes: %s", rte_strerror(-rc));
		return rc;
	}
	int socket = rte_eth_dev_socket_id(d->port_id);
	/* Every RX descriptor holds an mbuf; TX takes a batch and what the driver has not yet
	 * freed, plus the frames a caller holds in its RX burst. */
	unsigned n = nrx + ntx + 4 * PORT_DPDK_BURST;
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "gw_port%u", d->port_id);
	d->pool = rte_pktmbuf_pool_create(name, n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!d->pool) {
		rc = rte_errno > 0 ? -rte_errno : -ENOMEM;
		gw_say(err, errlen, "mempool of %u mbufs: %s", n, rte_strerror(-rc));
		return rc;
	}
	rc = rte_eth_rx_queue_setup(d->port_id, 0, nrx, (unsigned)socket, NULL, d->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(d->port_id, 0, ntx, (unsigned)socket, NULL);
	if (rc < 0) {
		gw_say(err, errlen, "queue setup: %s", rte_strerror(-rc));
		return rc;
	}
	/* A VF's MAC is not the device's: take in every frame and let the VF filter, as the
	 * packet: port does. Drivers without the switch (net_ring) take everything anyway. */
	rc = rte_eth_promiscuous_enable(d->port_id);
	if (rc < 0 && rc != -ENOTSUP) {
		gw_say(err, errlen, "promiscuous mode: %s", rte_strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_start(d->port_id);
	if (rc < 0) {
		gw_say(err, errlen, "start: %s", rte_strerror(-rc));
		return rc;
	}
	return 0;
}

/* Called under eal.lock: gives the ethdev port and its device back. */
static void port_release(struct port_dpdk *d, bool started)
{
	if (started)
		rte_eth_dev_stop(d->port_id);
	rte_eth_dev_close(d->port_id);
	/* The device too, so that a later open of the same devargs probes it afresh. */
	if (d->dev)
		rte_dev_remove(d->dev);
	rte_mempool_free(d->pool);
	eal.used[d->port_id] = false;
}

static int port_probe(struct port_dpdk *d, const char *devargs, bool pci, char *err, size_t errlen)
{
	char name[RTE_DEV_NAME_MAX_LEN];
	devargs_name(devargs, pci, name, sizeof(name));
	uint16_t id;
	/* A PCI device on EAL's allow list was probed when EAL started. */
	int rc = rte_eth_dev_get_port_by_name(name, &id) == 0 ? 0 : rte_dev_probe(devargs);
	if (rc == -EEXIST)
		rc = 0;
	if (rc == 0 && rte_eth_dev_get_port_by_name(name, &id) != 0)
		rc = -ENODEV;
	if (rc < 0) {
		gw_say(err, errlen, "dpdk %s: cannot probe the device: %s", name,
		       rc == -ENODEV ? "it made no ethdev port (is it a network device?)"
				     : rte_strerror(-rc));
		return rc;
	}
	if (eal.used[id]) {
		gw_say(err, errlen,
		       "dpdk %s: already the port of another function in this process (give "
		       "each its own device, e.g. net_af_packet0 and net_af_packet1 on one "
		       "interface)",
		       name);
		return -EBUSY;
	}
	d->port_id = id;
	eal.used[id] = true;
	return 0;
}

int port_dpdk_open(const char *devargs, struct port_dpdk **out, char *desc, size_t desclen,
		   char *err, size_t errlen)
{
	size_t len = strlen(devargs);
	if (len == 0 || len >= DPDK_SPEC_MAX || strpbrk(devargs, " \t\n")) {
		gw_say(
		    err, errlen,
		    "dpdk port spec wants dpdk:DEVICE[,KEY=VALUE...] (a DPDK virtual device such "
		    "as net_af_packet0,iface=eth1 or a PCI address), under %u characters, no "
		    "blanks",
		    DPDK_SPEC_MAX);
		return -EINVAL;
	}
	char name[RTE_DEV_NAME_MAX_LEN];
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(devargs, ","), devargs);
	bool pci = name_is_pci(name);
	if (!name[0]) {
		gw_say(err, errlen, "dpdk port spec \"dpdk:%s\" names no device", devargs);
		return -EINVAL;
	}
	struct port_dpdk *d = calloc(1, sizeof(*d));
	if (!d) {
		gw_say(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&eal.lock);
	int rc = eal.rc;
	if (rc == 0)
		rc = eal.rc = eal_start(pci ? name : NULL, err, errlen);
	else if (rc < 0)
		gw_say(err, errlen, "DPDK EAL did not start earlier in this process: %s",
		       rte_strerror(-rc));
	if (rc < 0)
		goto err_unlock;
	if (pci && !eal.pci) {
		gw_say(err, errlen,
		       "dpdk %s: this process started DPDK for a virtual device, without PCI; a "
		       "PCI device must be its first dpdk: port",
		       name);
		rc = -EINVAL;
		goto err_unlock;
	}
	rc = port_probe(d, devargs, pci, err, errlen);
	if (rc < 0)
		goto err_unlock;
	char why[160] = "";
	rc = port_setup(d, why, sizeof(why));
	if (rc < 0) {
		gw_say(err, errlen, "dpdk %s: %s", name, why);
		goto err_release;
	}
	pthread_mutex_unlock(&eal.lock);
	snprintf(desc, desclen, "dpdk %s (port %u)", name, d->port_id);
	*out = d;
	return 0;

err_release:
	port_release(d, false);
err_unlock:
	pthread_mutex_unlock(&eal.lock);
	free(d);
	return rc;
}

void port_dpdk_close(struct port_dpdk *d)
{
	if (!d)
		return;
	for (unsigned i = d->rx_pos; i < d->rx_n; i++)
		rte_pktmbuf_free(d->rx[i]);
	for (unsigned i = 0; i < d->tx_n; i++)
		rte_pktmbuf_free(d->tx[i]);
	pthread_mutex_lock(&eal.lock);
	port_release(d, true);
	pthread_mutex_unlock(&eal.lock);
	free(d);
}

static void stat_add(uint64_t *counter, uint64_t v)
{
	__atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

/* Copies a frame into a fresh mbuf, chained over several when one cannot hold it. */
static struct rte_mbuf *frame_to_mbuf(struct port_dpdk *d, const uint8_t *f, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	if (!m)
		return NULL;
	struct rte_mbuf *seg = m;
	size_t left = len;
	for (;;) {
		size_t k = rte_pktmbuf_tailroom(seg);
		if (k > left)
			k = left;
		memcpy(rte_pktmbuf_mtod(seg, uint8_t *), f, k);
		seg->data_len = (uint16_t)k;
		f += k;
		left -= k;
		if (!left)
			break;
		struct rte_mbuf *next = d->multi_seg ? rte_pktmbuf_alloc(d->pool) : NULL;
		if (!next) {
			rte_pktmbuf_free(m);
			return NULL;
		}
		seg->next = next;
		m->nb_segs++;
		seg = next;
	}
	m->pkt_len = (uint32_t)len;
	return m;
}

int port_dpdk_send(struct port_dpdk *d, const void *frame, size_t len, struct sriov_port_stats *st)
{
	struct rte_mbuf *m = frame_to_mbuf(d, frame, len);
	if (!m) {
		/* Out of mbufs, or a frame beyond one mbuf on a driver that cannot chain: a
		 * wire drops what it cannot carry. */
		stat_add(&st->tx_dropped, 1);
		return -ENOBUFS;
	}
	d->tx_len[d->tx_n] = (uint32_t)len;
	d->tx[d->tx_n++] = m;
	if (d->tx_n == PORT_DPDK_BURST)
		port_dpdk_flush(d, st);
	return 0;
}

void port_dpdk_flush(struct port_dpdk *d, struct sriov_port_stats *st)
{
	unsigned sent = 0, idle = 0;
	uint64_t bytes = 0;
	while (sent < d->tx_n && idle < DPDK_TX_RETRY) {
		uint16_t k =
		    rte_eth_tx_burst(d->port_id, 0, d->tx + sent, (uint16_t)(d->tx_n - sent));
		idle = k ? 0 : idle + 1;
		for (unsigned i = sent; i < sent + k; i++)
			bytes += d->tx_len[i];
		sent += k;
	}
	for (unsigned i = sent; i < d->tx_n; i++)
		rte_pktmbuf_free(d->tx[i]);
	stat_add(&st->tx_frames, sent);
	stat_add(&st->tx_bytes, bytes);
	stat_add(&st->tx_dropped, d->tx_n - sent);
	d->tx_n = 0;
}

ssize_t port_dpdk_recv(struct port_dpdk *d, void *buf, size_t cap)
{
	if (d->rx_pos == d->rx_n) {
		d->rx_pos = 0;
		d->rx_n = rte_eth_rx_burst(d->port_id, 0, d->rx, PORT_DPDK_BURST);
		if (!d->rx_n)
			return -EAGAIN;
	}
	struct rte_mbuf *m = d->rx[d->rx_pos++];
	uint32_t len = rte_pktmbuf_pkt_len(m);
	/* What does not fit is consumed and reported by its length (port.c says -EMSGSIZE). */
	uint32_t k = len < cap ? len : (uint32_t)cap;
	const void *p = rte_pktmbuf_read(m, 0, k, buf);
	if (p && p != buf)
		memcpy(buf, p, k);
	rte_pktmbuf_free(m);
	return len > PORT_MAX_FRAME ? (ssize_t)PORT_MAX_FRAME + 1 : (ssize_t)len;
}
