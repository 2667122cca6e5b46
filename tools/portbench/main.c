/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-portbench: packets per second and CPU per packet of the packet port layer alone (no
 * guest, no emulated NIC): one port sends numbered frames, another receives them. */
#include "godwit/sriov_port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH	 32u /* frames a sender hands over between two flushes, as one device round */
#define STALL_NS 500000000ull

struct bench {
	struct sriov_port *tx, *rx;
	int sink; /* udp: the plain socket the udp: port sends to (-1 otherwise) */
	uint64_t frames;
	unsigned size, window;
	uint64_t sent, got, bad, lost; /* got, bad: written by the receiver (atomics) */
	uint64_t warm;		       /* warm-up frames received (atomic) */
	bool done;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void frame_make(uint8_t *f, unsigned size, uint64_t seq)
{
	static const uint8_t hdr[14] = {0x02, 0x67, 0x77, 0xbe, 0x00, 0x02, 0x02,
					0x67, 0x77, 0xbe, 0x00, 0x01, 0x88, 0xB5};
	memcpy(f, hdr, sizeof(hdr));
	memcpy(f + 14, &seq, sizeof(seq));
	for (unsigned i = 22; i < size; i++)
		f[i] = (uint8_t)(seq + i);
}

/* Ours (not the kernel's IPv6 chatter on an interface), whole and unchanged? */
static int frame_check(const uint8_t *f, ssize_t n, unsigned size)
{
	if (n < 22 || f[12] != 0x88 || f[13] != 0xB5 || f[5] != 0x02)
		return -1; /* not ours */
	uint64_t seq;
	memcpy(&seq, f + 14, sizeof(seq));
	if ((unsigned)n != size)
		return 0;
	for (unsigned i = 22; i < size; i++)
		if (f[i] != (uint8_t)(seq + i))
			return 0;
	return 1;
}

static ssize_t recv_one(struct bench *b, uint8_t *buf, size_t cap)
{
	if (b->sink >= 0) {
		/* What the udp: port does per frame: one recvfrom. */
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(b->sink, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fl);
		return n < 0 ? -errno : n;
	}
	return sriov_port_recv(b->rx, buf, cap);
}

static void *receiver(void *arg)
{
	struct bench *b = arg;
	uint8_t buf[10000];
	int fd = b->sink >= 0 ? b->sink : sriov_port_fd(b->rx);
	while (!__atomic_load_n(&b->done, __ATOMIC_ACQUIRE)) {
		ssize_t n = recv_one(b, buf, sizeof(buf));
		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			/* A poll-mode port is looked at again at once, as DPDK does; the others
			 * wait for their fd. */
			if (fd < 0) {
				sched_yield();
			} else {
				struct pollfd p = {.fd = fd, .events = POLLIN};
				poll(&p, 1, 10);
			}
			continue;
		}
		if (n >= 14 && buf[12] == 0x88 && buf[13] == 0xB5 && buf[5] == 0x03) {
			__atomic_fetch_add(&b->warm, 1, __ATOMIC_RELEASE);
			continue;
		}
		int ok = frame_check(buf, n, b->size);
		if (ok < 0)
			continue;
		if (!ok)
			__atomic_fetch_add(&b->bad, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&b->got, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Sends every frame with at most window in flight; frames that do not come within half a
 * second of the last progress are counted lost and release the window. */
static void sender(struct bench *b)
{
	uint8_t f[10000];
	uint64_t last = now_ns(), seen = 0;
	while (b->sent < b->frames) {
		uint64_t got = __atomic_load_n(&b->got, __ATOMIC_ACQUIRE);
		if (got != seen) {
			seen = got;
			last = now_ns();
		}
		if (b->sent - got - b->lost >= b->window) {
			if (now_ns() - last > STALL_NS) {
				b->lost = b->sent - got;
				last = now_ns();
			}
			sched_yield();
			continue;
		}
		unsigned k = 0;
		while (k < BATCH && b->sent < b->frames && b->sent - got - b->lost < b->window) {
			frame_make(f, b->size, b->sent);
			if (sriov_port_send(b->tx, f, b->size) != 0)
				b->lost++; /* dropped on the way out */
			b->sent++;
			k++;
		}
		sriov_port_flush(b->tx);
	}
	uint64_t end = now_ns() + STALL_NS;
	while (__atomic_load_n(&b->got, __ATOMIC_ACQUIRE) + b->lost < b->sent && now_ns() < end)
		sched_yield();
	uint64_t got = __atomic_load_n(&b->got, __ATOMIC_ACQUIRE);
	b->lost = b->sent > got ? b->sent - got : 0;
}

/* Until a frame gets through: a TAP's carrier, a bridge port's state, an AF_PACKET ring may
 * take a moment after the ports open, and that is not what is measured. */
static int warm_up(struct bench *b)
{
	uint8_t f[64];
	frame_make(f, sizeof(f), 0);
	f[5] = 0x03;
	for (int i = 0; i < 500; i++) {
		sriov_port_send(b->tx, f, sizeof(f));
		sriov_port_flush(b->tx);
		usleep(10000);
		if (__atomic_load_n(&b->warm, __ATOMIC_ACQUIRE))
			return 0;
	}
	fprintf(stderr, "godwit-portbench: no frame got through in 5 s\n");
	return -1;
}

/* Resident memory in KiB (/proc/self/status VmRSS), or 0. */
static unsigned long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static int open_port(const char *spec, struct sriov_port **p)
{
	char err[256];
	int rc = sriov_port_open(spec, p, err, sizeof(err));
	if (rc)
		fprintf(stderr, "godwit-portbench: %s: %s\n", spec, err);
	return rc;
}

/* udp: the udp: port sends to a plain socket on loopback (the port takes frames from its peer
 * only, and two ports cannot name each other's ephemeral address before both exist). */
static int open_udp(struct bench *b)
{
	b->sink = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int buf = 1 << 20;
	if (b->sink < 0 || bind(b->sink, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(b->sink, (struct sockaddr *)&a, &al) < 0 ||
	    setsockopt(b->sink, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) < 0) {
		perror("godwit-portbench: udp sink");
		return -1;
	}
	char spec[64];
	snprintf(spec, sizeof(spec), "udp:127.0.0.1:%u", ntohs(a.sin_port));
	return open_port(spec, &b->tx);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: godwit-portbench [--frames N] [--size BYTES] [--window W] "
		"[--label NAME] (udp | FROM-SPEC TO-SPEC)\n"
		"  Sends N numbered frames (default 1000000, 64 bytes, 256 in flight) from one\n"
		"  packet port to another and prints one JSON line: packets per second, and the\n"
		"  process's CPU time (user + system) per packet. 'udp': a udp: port sending to\n"
		"  a plain socket on loopback.\n");
}

int main(int argc, char **argv)
{
	struct bench b = {.sink = -1, .frames = 1000000, .size = 64, .window = 256};
	const char *label = NULL;
	static const struct option opts[] = {
	    {"frames", required_argument, NULL, 'n'}, {"size", required_argument, NULL, 's'},
	    {"window", required_argument, NULL, 'w'}, {"label", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			b.frames = strtoull(optarg, NULL, 10);
		else if (c == 's')
			b.size = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'w')
			b.window = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'l')
			label = optarg;
		else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	int left = argc - optind;
	if (!b.frames || b.size < 60 || b.size > 1514 || !b.window ||
	    !(left == 1 ? !strcmp(argv[optind], "udp") : left == 2)) {
		usage(stderr);
		return 2;
	}
	unsigned long rss0 = rss_kib();
	uint64_t o0 = now_ns();
	if (left == 1 ? open_udp(&b)
		      : open_port(argv[optind], &b.tx) || open_port(argv[optind + 1], &b.rx))
		return 1;
	/* What opening the two ports cost: for dpdk:, the EAL's start is in it. */
	double open_ms = (double)(now_ns() - o0) / 1e6;
	unsigned long open_rss = rss_kib() - rss0;
	pthread_t t;
	if (pthread_create(&t, NULL, receiver, &b)) {
		fprintf(stderr, "godwit-portbench: no receiver thread\n");
		return 1;
	}
	if (warm_up(&b)) {
		__atomic_store_n(&b.done, true, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		return 1;
	}
	usleep(100000); /* the rest of the warm-up frames drain */
	double c0 = cpu_s();
	uint64_t t0 = now_ns();
	sender(&b);
	uint64_t t1 = now_ns();
	double c1 = cpu_s();
	__atomic_store_n(&b.done, true, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	double s = (double)(t1 - t0) / 1e9;
	uint64_t got = b.sent - b.lost;
	printf("{\"port\":\"%s\",\"describe\":\"%s\",\"frames\":%lu,\"size\":%u,\"window\":%u,"
	       "\"received\":%lu,\"lost\":%lu,\"corrupt\":%lu,\"seconds\":%.3f,\"pps\":%.0f,"
	       "\"cpu_s\":%.3f,\"cpu_ns_per_packet\":%.0f,\"cores_busy\":%.2f,\"open_ms\":%.1f,"
	       "\"open_rss_kib\":%lu}\n",
	       label ? label : argv[optind], sriov_port_describe(b.tx), (unsigned long)b.frames,
	       b.size, b.window, (unsigned long)got, (unsigned long)b.lost, (unsigned long)b.bad, s,
	       (double)got / s, c1 - c0, got ? (c1 - c0) * 1e9 / (double)got : 0.0, (c1 - c0) / s,
	       open_ms, open_rss);
	sriov_port_close(b.tx);
	sriov_port_close(b.rx);
	if (b.sink >= 0)
		close(b.sink);
	return b.lost || b.bad ? 1 : 0;
}
