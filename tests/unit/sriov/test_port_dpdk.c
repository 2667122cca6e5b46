/* SPDX-License-Identifier: Apache-2.0 */
/* The dpdk: packet port: two ports of one EAL on the ends of a veth pair (DPDK's net_af_packet)
 * carry 100,000 checked frames each way; its specs, errors and device ownership. */
#include "godwit/sriov_port.h"
#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FRAMES	  100000u
#define WINDOW	  256u /* frames in flight each way: under af_packet's RX ring and veth's backlog */
#define ETHERTYPE 0x88B5u

/* The veth pair, named after this process so that runs side by side do not meet. */
static char veth[2][16];

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void veth_remove(void)
{
	if (veth[0][0])
		sh("ip link del %s 2>/dev/null", veth[0]);
}

/* Makes the pair and brings it up, without IPv6 (whose router solicitations would be frames
 * the test did not send; they are told apart anyway). */
static bool veth_make(void)
{
	snprintf(veth[0], sizeof(veth[0]), "gwdp%ua", (unsigned)getpid() % 100000u);
	snprintf(veth[1], sizeof(veth[1]), "gwdp%ub", (unsigned)getpid() % 100000u);
	if (sh("ip link add %s type veth peer name %s 2>/dev/null", veth[0], veth[1])) {
		veth[0][0] = '\0';
		return false;
	}
	atexit(veth_remove);
	for (int i = 0; i < 2; i++) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", veth[i]);
		FILE *f = fopen(path, "w");
		if (f) {
			fputs("1", f);
			fclose(f);
		}
		if (sh("ip link set %s up", veth[i]))
			return false;
	}
	return true;
}

struct frame_hdr {
	uint8_t dst[6], src[6];
	uint8_t type[2];
	uint32_t pid, dir;
	uint64_t seq;
} __attribute__((packed));

static size_t frame_len(uint64_t seq)
{
	return 60 + (size_t)(seq * 7919u % 1455u); /* 60..1514 bytes */
}

static void frame_make(uint8_t *f, unsigned dir, uint64_t seq)
{
	size_t len = frame_len(seq);
	struct frame_hdr h = {.dst = {0x02, 0x67, 0x77, 0xd0, 0x00, (uint8_t)(2 - dir)},
			      .src = {0x02, 0x67, 0x77, 0xd0, 0x00, (uint8_t)(1 + dir)},
			      .type = {ETHERTYPE >> 8, ETHERTYPE & 0xFF},
			      .pid = (uint32_t)getpid(),
			      .dir = dir,
			      .seq = seq};
	memcpy(f, &h, sizeof(h));
	for (size_t i = sizeof(h); i < len; i++)
		f[i] = (uint8_t)(seq * 31u + i * 7u);
}

struct flow {
	uint64_t sent, received, corrupt, out_of_order, foreign;
};

/* One frame at the receiving end of direction dir: ours, in order, intact? */
static void frame_check(struct flow *fl, unsigned dir, const uint8_t *f, ssize_t n)
{
	static uint8_t want[1600];
	struct frame_hdr h;
	if (n < (ssize_t)sizeof(h)) {
		fl->foreign++;
		return;
	}
	memcpy(&h, f, sizeof(h));
	if (h.type[0] != (ETHERTYPE >> 8) || h.type[1] != (ETHERTYPE & 0xFF) ||
	    h.pid != (uint32_t)getpid() || h.dir != dir) {
		fl->foreign++;
		return;
	}
	if (h.seq != fl->received)
		fl->out_of_order++;
	frame_make(want, dir, h.seq);
	if ((size_t)n != frame_len(h.seq) || memcmp(f, want, (size_t)n))
		fl->corrupt++;
	fl->received++;
}

/* Both directions at once, WINDOW frames in flight each way, until every frame came or none
 * came for two seconds. */
static void run_flows(struct sriov_port *p[2], struct flow fl[2])
{
	static uint8_t out[1600], in[10000];
	uint64_t last = mono_ns();
	while ((fl[0].received < FRAMES || fl[1].received < FRAMES) &&
	       mono_ns() - last < 2000000000u) {
		for (unsigned d = 0; d < 2; d++) {
			struct sriov_port *from = p[d];
			while (fl[d].sent < FRAMES && fl[d].sent - fl[d].received < WINDOW) {
				frame_make(out, d, fl[d].sent);
				CU_ASSERT_EQUAL_FATAL(
				    sriov_port_send(from, out, frame_len(fl[d].sent)), 0);
				fl[d].sent++;
			}
			sriov_port_flush(from);
		}
		for (unsigned d = 0; d < 2; d++) {
			ssize_t n;
			while ((n = sriov_port_recv(p[1 - d], in, sizeof(in))) != -EAGAIN) {
				CU_ASSERT_TRUE(n > 0);
				frame_check(&fl[d], d, in, n);
				last = mono_ns();
			}
		}
	}
}

static void test_veth_pair(void)
{
	char spec[2][96], err[256] = "";
	struct sriov_port *p[2] = {NULL, NULL};
	for (unsigned i = 0; i < 2; i++) {
		snprintf(spec[i], sizeof(spec[i]), "dpdk:net_af_packet%u,iface=%s", i, veth[i]);
		int rc = sriov_port_open(spec[i], &p[i], err, sizeof(err));
		if (rc)
			printf("\n    %s: %d (%s) ", spec[i], rc, err);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT_EQUAL(sriov_port_fd(p[i]), -1);
		CU_ASSERT_TRUE(sriov_port_polled(p[i]));
		char want[64];
		snprintf(want, sizeof(want), "dpdk net_af_packet%u (port ", i);
		CU_ASSERT_EQUAL(strncmp(sriov_port_describe(p[i]), want, strlen(want)), 0);
	}
	/* One device is one function's wire. */
	struct sriov_port *again = NULL;
	CU_ASSERT_EQUAL(sriov_port_open(spec[0], &again, err, sizeof(err)), -EBUSY);
	CU_ASSERT_PTR_NULL(again);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "already the port of another function"));

	struct flow fl[2] = {{0}, {0}};
	uint64_t t0 = mono_ns();
	run_flows(p, fl);
	double s = (double)(mono_ns() - t0) / 1e9;
	printf("\n    %u frames each way in %.2f s (%.0f frames/s in all); lost %lu/%lu, corrupt "
	       "%lu/%lu, out of order %lu/%lu, other frames %lu/%lu ",
	       FRAMES, s, 2.0 * FRAMES / s, fl[0].sent - fl[0].received,
	       fl[1].sent - fl[1].received, fl[0].corrupt, fl[1].corrupt, fl[0].out_of_order,
	       fl[1].out_of_order, fl[0].foreign, fl[1].foreign);
	for (unsigned d = 0; d < 2; d++) {
		CU_ASSERT_EQUAL(fl[d].sent, FRAMES);
		CU_ASSERT_EQUAL(fl[d].received, FRAMES);
		CU_ASSERT_EQUAL(fl[d].corrupt, 0);
		CU_ASSERT_EQUAL(fl[d].out_of_order, 0);
	}
	/* The counters saw every frame, and no frame was dropped on the way out. */
	struct sriov_port_stats st;
	sriov_port_stats(p[0], &st);
	CU_ASSERT_EQUAL(st.tx_frames, FRAMES);
	CU_ASSERT_EQUAL(st.tx_dropped, 0);
	CU_ASSERT_TRUE(st.rx_frames >= FRAMES);
	uint64_t bytes = 0;
	for (uint64_t q = 0; q < FRAMES; q++)
		bytes += frame_len(q);
	CU_ASSERT_EQUAL(st.tx_bytes, bytes);

	/* An announce goes out at once, without a flush of its own by the caller. */
	static const uint8_t mac[6] = {0x02, 0x67, 0x77, 0xd0, 0x00, 0x09};
	CU_ASSERT_EQUAL(sriov_port_announce(p[0], mac), 0);
	uint8_t in[2048];
	ssize_t n = -EAGAIN;
	for (uint64_t until = mono_ns() + 2000000000u; mono_ns() < until;) {
		n = sriov_port_recv(p[1], in, sizeof(in));
		if (n == 60 && in[12] == 0x80 && in[13] == 0x35 && !memcmp(in + 6, mac, 6))
			break;
	}
	CU_ASSERT_EQUAL(n, 60);
	/* Too long for the buffer: consumed, and said. */
	uint8_t big[1000];
	frame_make(big, 0, 1); /* 60 + 7919 % 1455 = 504 bytes */
	CU_ASSERT_EQUAL(sriov_port_send(p[0], big, 504), 0);
	sriov_port_flush(p[0]);
	for (uint64_t until = mono_ns() + 2000000000u; mono_ns() < until;) {
		n = sriov_port_recv(p[1], in, 100);
		if (n == -EMSGSIZE)
			break;
	}
	CU_ASSERT_EQUAL(n, -EMSGSIZE);
	CU_ASSERT_EQUAL(sriov_port_send(p[0], big, 13), -EMSGSIZE);

	sriov_port_close(p[0]);
	sriov_port_close(p[1]);
	/* Closed, the device is free again: the same spec opens afresh. */
	CU_ASSERT_EQUAL(sriov_port_open(spec[0], &again, err, sizeof(err)), 0);
	sriov_port_close(again);
}

static void test_errors(void)
{
	static const struct {
		const char *spec;
		int rc;
		const char *says;
	} bad[] = {
	    {"dpdk:", -EINVAL, "dpdk:DEVICE"},
	    {"dpdk:net_tap0, iface=x", -EINVAL, "no blanks"},
	    {"dpdk:,iface=x", -EINVAL, "names no device"},
	    {"dpdk:net_nosuchdriver0", 0, "net_nosuchdriver0: cannot probe"},
	    {"dpdk:net_af_packet7,iface=gwnosuch0", 0, "net_af_packet7: cannot probe"},
	    /* This process's EAL started without PCI (its first port was a virtual device). */
	    {"dpdk:0000:00:1f.6", -EINVAL, "a PCI device must be its first dpdk: port"},
	};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		char err[256] = "";
		struct sriov_port *p = NULL;
		int rc = sriov_port_open(bad[i].spec, &p, err, sizeof(err));
		if (bad[i].rc ? rc != bad[i].rc : rc >= 0)
			printf("\n    %s: %d ", bad[i].spec, rc);
		CU_ASSERT_TRUE(bad[i].rc ? rc == bad[i].rc : rc < 0);
		CU_ASSERT_PTR_NULL(p);
		if (!strstr(err, bad[i].says))
			printf("\n    %s: \"%s\" ", bad[i].spec, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].says));
	}
}

int main(void)
{
	if (!veth_make()) {
		fprintf(stderr, "unit_sriov_port_dpdk: cannot make a veth pair (needs "
				"CAP_NET_ADMIN and veth): skipped\n");
		return GW_TEST_SKIP;
	}
	static const struct gw_test_case cases[] = {
	    {"two ports on a veth pair: 100,000 frames each way", test_veth_pair},
	    {"bad specs and devices", test_errors},
	};
	return gw_test_run("sriov_port_dpdk", cases, GW_TEST_COUNT(cases));
}
