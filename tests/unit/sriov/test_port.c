/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for sriov/src/port.c: real round trips over UDP, unix datagram and packet sockets. */
#include "godwit/sriov_port.h"

#include "../../lib/gw_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static bool wait_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 2000) == 1;
}

static void fill_frame(uint8_t *f, size_t len, uint8_t tag)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(tag + i * 7);
}

/* Checks the fd's flags, then frames both ways between the port and a raw "switch" socket,
 * the announce bytes, size limits and truncation. */
static void roundtrip(struct sriov_port *p, int sw)
{
	int fd = sriov_port_fd(p);
	CU_ASSERT_TRUE(fd >= 0);
	CU_ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CU_ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	uint8_t buf[10000], out[10000];
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);

	/* Port to switch: the reply address is the datagram's source. */
	fill_frame(out, 1500, 1);
	CU_ASSERT_EQUAL(sriov_port_send(p, out, 1500), 0);
	CU_ASSERT_TRUE_FATAL(wait_readable(sw));
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n = recvfrom(sw, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
	CU_ASSERT_EQUAL(n, 1500);
	CU_ASSERT_EQUAL(memcmp(buf, out, 1500), 0);

	/* Switch to port: the smallest and the largest frame. */
	size_t sizes[] = {14, 60, 9728};
	for (size_t i = 0; i < GW_TEST_COUNT(sizes); i++) {
		fill_frame(out, sizes[i], (uint8_t)(10 + i));
		CU_ASSERT_EQUAL(sendto(sw, out, sizes[i], 0, (struct sockaddr *)&from, fromlen),
				(ssize_t)sizes[i]);
		CU_ASSERT_TRUE_FATAL(wait_readable(fd));
		CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), (ssize_t)sizes[i]);
		CU_ASSERT_EQUAL(memcmp(buf, out, sizes[i]), 0);
	}
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);

	/* A frame longer than the buffer is consumed and reported as -EMSGSIZE; so is a runt. */
	CU_ASSERT_EQUAL(sendto(sw, out, 100, 0, (struct sockaddr *)&from, fromlen), 100);
	CU_ASSERT_TRUE_FATAL(wait_readable(fd));
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, 50), -EMSGSIZE);
	CU_ASSERT_EQUAL(sendto(sw, out, 10, 0, (struct sockaddr *)&from, fromlen), 10);
	CU_ASSERT_TRUE_FATAL(wait_readable(fd));
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EMSGSIZE);
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);

	/* Frames outside 14..9728 bytes are refused before they reach the wire. */
	CU_ASSERT_EQUAL(sriov_port_send(p, out, 13), -EMSGSIZE);
	CU_ASSERT_EQUAL(sriov_port_send(p, out, 9729), -EMSGSIZE);
	CU_ASSERT_EQUAL(sriov_port_send(p, out, 0), -EMSGSIZE);

	/* The announce: RFC 903 RARP "request reverse", padded to 60 bytes. */
	const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	CU_ASSERT_EQUAL(sriov_port_announce(p, mac), 0);
	CU_ASSERT_TRUE_FATAL(wait_readable(sw));
	n = recv(sw, buf, sizeof(buf), 0);
	CU_ASSERT_EQUAL_FATAL(n, 60);
	static const uint8_t want[60] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,		    /* broadcast */
	    0x52, 0x54, 0x00, 0x12, 0x34, 0x56,		    /* source: the MAC */
	    0x80, 0x35,					    /* ethertype RARP */
	    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x03, /* Ethernet/IPv4, op 3 */
	    0x52, 0x54, 0x00, 0x12, 0x34, 0x56,		    /* sender hardware address */
	    0x00, 0x00, 0x00, 0x00,			    /* sender protocol address */
	    0x52, 0x54, 0x00, 0x12, 0x34, 0x56,		    /* target hardware address */
	    /* target protocol address and padding: zero */
	};
	CU_ASSERT_EQUAL(memcmp(buf, want, 60), 0);

	struct sriov_port_stats st;
	sriov_port_stats(p, &st);
	CU_ASSERT_EQUAL(st.tx_frames, 2);
	CU_ASSERT_EQUAL(st.tx_bytes, 1500 + 60);
	CU_ASSERT_EQUAL(st.tx_dropped, 0);
	CU_ASSERT_EQUAL(st.rx_frames, 3);
	CU_ASSERT_EQUAL(st.rx_bytes, 14 + 60 + 9728);
	CU_ASSERT_EQUAL(st.rx_errors, 2);
}

static void test_udp4(void)
{
	int sw = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_TRUE_FATAL(sw >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	CU_ASSERT_EQUAL_FATAL(bind(sw, (struct sockaddr *)&a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(sw, (struct sockaddr *)&a, &alen), 0);

	char spec[64], err[256], want[64];
	snprintf(spec, sizeof(spec), "udp:127.0.0.1:%u", ntohs(a.sin_port));
	struct sriov_port *p = NULL;
	CU_ASSERT_EQUAL_FATAL(sriov_port_open(spec, &p, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), " -> 127.0.0.1:%u", ntohs(a.sin_port));
	const char *d = sriov_port_describe(p);
	CU_ASSERT_EQUAL(strncmp(d, "udp 127.0.0.1:", 14), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(d, want));
	roundtrip(p, sw);
	sriov_port_close(p);
	close(sw);
}

/* The uplink takes frames from its peer only: another socket that reaches the port's address,
 * on the same host or from another port number, is dropped and counted. */
static void test_udp_foreign(void)
{
	int sw = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int other = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_TRUE_FATAL(sw >= 0 && other >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	CU_ASSERT_EQUAL_FATAL(bind(sw, (struct sockaddr *)&a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(sw, (struct sockaddr *)&a, &alen), 0);
	char spec[64], err[256];
	snprintf(spec, sizeof(spec), "udp:127.0.0.1:%u", ntohs(a.sin_port));
	struct sriov_port *p = NULL;
	CU_ASSERT_EQUAL_FATAL(sriov_port_open(spec, &p, err, sizeof(err)), 0);
	struct sockaddr_in me;
	socklen_t melen = sizeof(me);
	CU_ASSERT_EQUAL_FATAL(getsockname(sriov_port_fd(p), (struct sockaddr *)&me, &melen), 0);

	uint8_t f[60], buf[128];
	fill_frame(f, sizeof(f), 3);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(sendto(other, f, sizeof(f), 0, (struct sockaddr *)&me, melen), 60);
	CU_ASSERT_TRUE_FATAL(wait_readable(sriov_port_fd(p)));
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);
	/* The peer's own frame still comes through, after the foreign ones. */
	CU_ASSERT_EQUAL(sendto(other, f, sizeof(f), 0, (struct sockaddr *)&me, melen), 60);
	f[0] = 0x42;
	CU_ASSERT_EQUAL(sendto(sw, f, sizeof(f), 0, (struct sockaddr *)&me, melen), 60);
	CU_ASSERT_TRUE_FATAL(wait_readable(sriov_port_fd(p)));
	ssize_t n = -EAGAIN;
	for (int i = 0; i < 100 && n == -EAGAIN; i++) {
		n = sriov_port_recv(p, buf, sizeof(buf));
		if (n == -EAGAIN)
			wait_readable(sriov_port_fd(p));
	}
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(buf[0], 0x42);
	struct sriov_port_stats st;
	sriov_port_stats(p, &st);
	CU_ASSERT_EQUAL(st.rx_frames, 1);
	CU_ASSERT_EQUAL(st.rx_foreign, 4);
	sriov_port_close(p);
	close(other);
	close(sw);
}

static void test_udp6(void)
{
	int sw = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t alen = sizeof(a);
	if (sw < 0 || bind(sw, (struct sockaddr *)&a, sizeof(a)) < 0) {
		printf("\n    note: no IPv6 loopback here, skipped ");
		if (sw >= 0)
			close(sw);
		CU_PASS("no IPv6 loopback");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(getsockname(sw, (struct sockaddr *)&a, &alen), 0);

	/* Bracketed and bare IPv6 literals both work. */
	const char *forms[] = {"udp:[::1]:", "udp:::1:"};
	for (size_t i = 0; i < GW_TEST_COUNT(forms); i++) {
		char spec[64], err[256];
		snprintf(spec, sizeof(spec), "%s%u", forms[i], ntohs(a.sin6_port));
		struct sriov_port *p = NULL;
		CU_ASSERT_EQUAL_FATAL(sriov_port_open(spec, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(strncmp(sriov_port_describe(p), "udp [::1]:", 10), 0);
		if (i == 0) {
			roundtrip(p, sw);
		} else {
			uint8_t f[64] = {0}, buf[128];
			CU_ASSERT_EQUAL(sriov_port_send(p, f, sizeof(f)), 0);
			CU_ASSERT_TRUE(wait_readable(sw));
			CU_ASSERT_EQUAL(recv(sw, buf, sizeof(buf), 0), 64);
		}
		sriov_port_close(p);
	}
	close(sw);
}

static void test_unix(void)
{
	char dir[] = "/tmp/gw-port-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/switch.sock", dir);
	int sw = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_TRUE_FATAL(sw >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	CU_ASSERT_EQUAL_FATAL(bind(sw, (struct sockaddr *)&a, sizeof(a)), 0);

	char spec[160], err[256], want[160];
	snprintf(spec, sizeof(spec), "unix:%s", path);
	struct sriov_port *p = NULL;
	CU_ASSERT_EQUAL_FATAL(sriov_port_open(spec, &p, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), " -> %s", path);
	const char *d = sriov_port_describe(p);
	CU_ASSERT_EQUAL(strncmp(d, "unix @", 6), 0); /* autobound abstract name */
	CU_ASSERT_PTR_NOT_NULL(strstr(d, want));
	roundtrip(p, sw);
	sriov_port_close(p);
	close(sw);

	/* The switch went away: the send fails with an errno and counts as dropped. */
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL_FATAL(sriov_port_open(spec, &p, err, sizeof(err)), 0);
	uint8_t f[60] = {0};
	int rc = sriov_port_send(p, f, sizeof(f));
	CU_ASSERT_TRUE(rc == -ECONNREFUSED || rc == -ENOENT);
	struct sriov_port_stats st;
	sriov_port_stats(p, &st);
	CU_ASSERT_EQUAL(st.tx_dropped, 1);
	CU_ASSERT_EQUAL(st.tx_frames, 0);
	sriov_port_close(p);
	rmdir(dir);
}

static void test_none(void)
{
	struct sriov_port *p = NULL;
	char err[256];
	CU_ASSERT_EQUAL_FATAL(sriov_port_open("none", &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(sriov_port_fd(p), -1);
	CU_ASSERT_STRING_EQUAL(sriov_port_describe(p), "none");
	uint8_t f[64] = {0}, buf[64];
	CU_ASSERT_EQUAL(sriov_port_send(p, f, sizeof(f)), 0);
	CU_ASSERT_EQUAL(sriov_port_send(p, f, 5), -EMSGSIZE);
	const uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
	CU_ASSERT_EQUAL(sriov_port_announce(p, mac), 0);
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);
	struct sriov_port_stats st;
	sriov_port_stats(p, &st);
	CU_ASSERT_EQUAL(st.tx_dropped, 2);
	CU_ASSERT_EQUAL(st.tx_frames, 0);
	CU_ASSERT_EQUAL(st.rx_frames, 0);
	sriov_port_close(p);
	sriov_port_close(NULL);
}

static void test_bad_specs(void)
{
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = '\0';
	const char *bad[] = {
	    "",
	    "bogus",
	    "none:x",
	    "udp:",
	    "udp:127.0.0.1",
	    "udp::9000",
	    "udp:127.0.0.1:",
	    "udp:127.0.0.1:0",
	    "udp:127.0.0.1:65536",
	    "udp:127.0.0.1:12x",
	    "udp:127.0.0.1:-1",
	    "udp:[]:9000",
	    "unix:",
	    longpath,
	    "tap:",
	    "tap:a-name-far-too-long",
	    "packet:",
	    "packet:a-name-far-too-long",
	};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		struct sriov_port *p = NULL;
		char err[256] = "";
		int rc = sriov_port_open(bad[i], &p, err, sizeof(err));
		if (rc != -EINVAL)
			printf("\n    \"%s\": %d (%s) ", bad[i], rc, err);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_PTR_NULL(p);
		CU_ASSERT_TRUE(err[0] != '\0');
	}
	/* A NULL or zero-length error buffer is allowed. */
	struct sriov_port *p = NULL;
	CU_ASSERT_EQUAL(sriov_port_open("bogus", &p, NULL, 0), -EINVAL);
}

static void test_tap(void)
{
	struct sriov_port *p = NULL;
	char err[256] = "";
	int rc = sriov_port_open("tap:gwtest%d", &p, err, sizeof(err));
	if (rc == -EPERM || rc == -EACCES || rc == -ENOENT || rc == -ENODEV) {
		CU_ASSERT_TRUE(err[0] != '\0');
		printf("\n    note: no TAP here (%s) ", err);
		CU_PASS("TAP unavailable");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_TRUE(sriov_port_fd(p) >= 0);
	CU_ASSERT_EQUAL(strncmp(sriov_port_describe(p), "tap gwtest", 10), 0);
	uint8_t buf[64];
	/* The interface is down: nothing arrives. */
	CU_ASSERT_EQUAL(sriov_port_recv(p, buf, sizeof(buf)), -EAGAIN);
	sriov_port_close(p);
}

#define TEST_ETHERTYPE 0x88B5u /* IEEE 802 local experimental */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A test frame: ethertype TEST_ETHERTYPE, then this process's id and tag, so that other
 * traffic on lo (other tests, other runs of this one) is told apart. */
static void packet_frame(uint8_t *f, size_t len, uint32_t tag)
{
	fill_frame(f, len, (uint8_t)tag);
	static const uint8_t dst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	static const uint8_t src[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = TEST_ETHERTYPE >> 8;
	f[13] = TEST_ETHERTYPE & 0xFF;
	uint32_t id[2] = {(uint32_t)getpid(), tag};
	memcpy(f + 14, id, sizeof(id));
}

static bool packet_is(const uint8_t *f, uint32_t tag)
{
	uint8_t want[22];
	packet_frame(want, sizeof(want), tag);
	return memcmp(f, want, sizeof(want)) == 0;
}

/* Receives from p with a buffer of cap bytes for up to 300 ms after the first frame tagged
 * tag (2 s for that one): how many of them came whole, and how many too long for cap. */
static void packet_count(struct sriov_port *p, uint32_t tag, size_t cap, unsigned *whole,
			 unsigned *too_long)
{
	static uint8_t buf[10000];
	*whole = *too_long = 0;
	uint64_t until = mono_ms() + 2000;
	for (uint64_t now = mono_ms(); now < until; now = mono_ms()) {
		struct pollfd pfd = {.fd = sriov_port_fd(p), .events = POLLIN};
		if (poll(&pfd, 1, (int)(until - now)) != 1)
			continue;
		memset(buf, 0, sizeof(buf));
		ssize_t n = sriov_port_recv(p, buf, cap);
		if (n == -EAGAIN || !packet_is(buf, tag))
			continue;
		if (n == -EMSGSIZE)
			(*too_long)++;
		else if (n > 0)
			(*whole)++;
		else
			CU_FAIL("sriov_port_recv failed");
		if (*whole + *too_long == 1)
			until = mono_ms() + 300;
	}
}

/*
 * Sends a frame of len bytes tagged tag+attempt from `from`, and counts its copies at `to`
 * (received with a buffer of cap) and back at `from`, until one attempt brought some copy to
 * both: lo carries the whole machine's loopback traffic (other tests run beside this one), and
 * a packet socket's queue can overflow under it, dropping the frame. A drop is not what is
 * tested; a second copy is, so every attempt's counts are checked.
 */
static void packet_once(struct sriov_port *from, struct sriov_port *to, size_t len, size_t cap,
			uint32_t tag, unsigned want_whole_to, unsigned want_long_to)
{
	uint8_t out[1500];
	for (uint32_t attempt = 0; attempt < 5; attempt++) {
		unsigned w_to, l_to, w_back, l_back;
		packet_frame(out, len, tag + attempt);
		CU_ASSERT_EQUAL_FATAL(sriov_port_send(from, out, len), 0);
		packet_count(to, tag + attempt, cap, &w_to, &l_to);
		packet_count(from, tag + attempt, 10000, &w_back, &l_back);
		CU_ASSERT(w_to <= want_whole_to && l_to <= want_long_to); /* never twice */
		CU_ASSERT(w_back <= 1 && l_back == 0); /* lo's copy coming back in, nothing more */
		if (w_to + l_to && w_back)
			return;
	}
	CU_FAIL("a frame on lo never reached both ports in 5 attempts");
}

/*
 * Two ports on lo. What the kernel does there (packet(7), checked when this test was written):
 * a frame sent on lo is seen by every other packet socket on it twice, leaving
 * (PACKET_OUTGOING) and coming back in; its sender sees only the copy that comes back in, as
 * a frame that leaves a real interface is never seen again by anyone on its host. A port keeps
 * only what came in: each port gets the frame exactly once.
 */
static void test_packet(void)
{
	int probe = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (probe < 0 && errno == EPERM) {
		printf("\n    note: AF_PACKET needs CAP_NET_RAW, skipped ");
		CU_PASS("AF_PACKET not permitted");
		return;
	}
	CU_ASSERT_TRUE_FATAL(probe >= 0);
	close(probe);

	char err[256] = "";
	struct sriov_port *a = NULL, *b = NULL;
	int rc = sriov_port_open("packet:gwnosuch0", &a, err, sizeof(err));
	CU_ASSERT_TRUE(rc == -ENODEV || rc == -EINVAL);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "gwnosuch0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such network interface"));

	rc = sriov_port_open("packet:lo", &a, err, sizeof(err));
	if (rc < 0)
		printf("\n    packet:lo: %d (%s) ", rc, err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(sriov_port_open("packet:lo", &b, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(sriov_port_describe(a), "packet lo");
	int fd = sriov_port_fd(a);
	CU_ASSERT_TRUE(fd >= 0);
	CU_ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CU_ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* Once each, not the outgoing copy too (that would be 2). */
	packet_once(a, b, 60, 10000, 10, 1, 0);
	/* The other way, and a frame longer than the buffer: consumed, -EMSGSIZE. */
	packet_once(b, a, 1500, 100, 20, 0, 1);

	uint8_t out[16] = {0};
	struct sriov_port_stats st;
	sriov_port_stats(a, &st);
	uint64_t tx = st.tx_frames;
	CU_ASSERT_EQUAL(sriov_port_send(a, out, 13), -EMSGSIZE);
	sriov_port_stats(a, &st);
	CU_ASSERT(tx >= 1 && st.tx_frames == tx);
	CU_ASSERT_EQUAL(st.tx_bytes, 60 * tx);
	CU_ASSERT_EQUAL(st.tx_dropped, 0);
	/* At least ours; lo may carry other traffic. */
	CU_ASSERT_TRUE(st.rx_frames >= 1 && st.rx_bytes >= 60 && st.rx_errors >= 1);
	sriov_port_close(a);
	sriov_port_close(b);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"udp over IPv4", test_udp4},
	    {"udp: frames from others than the peer are dropped", test_udp_foreign},
	    {"udp over IPv6", test_udp6},
	    {"unix datagrams", test_unix},
	    {"none", test_none},
	    {"bad specs", test_bad_specs},
	    {"tap", test_tap},
	    {"packet on lo", test_packet},
	};
	return gw_test_run("sriov_port", cases, GW_TEST_COUNT(cases));
}
