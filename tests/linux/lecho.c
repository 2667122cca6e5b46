/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw-lecho: godwit's echo responder for Linux guests. It answers godwit-nicpeer's test frames
 * on one interface over an AF_PACKET socket exactly as the test guest's nic-echo workload does
 * (tests/guest/wl_nic.c: MACs swapped, GW_NIC_FLAG_ECHO set, everything else as received) and
 * announces the interface's MAC with an RFC 903 RARP frame, from which the peer learns where
 * the guest lives.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "godwit/igb_vf.h" /* struct gw_nic_frame, gw_nic_sum: constants and inline code only */

/* RFC 903 on Ethernet, as sriov/src/port.c and the test guest send it: 14-byte header and the
 * 28-byte ARP-format body (RFC 826), padded to the 60-byte minimum frame. */
#define RARP_ETHERTYPE 0x8035u
#define RARP_LEN       60u
#define RARP_OP_RREQ   3u

#define RX_BUF 16384u /* more than IGB_MAX_FRAME, so an oversized frame shows as one */

struct lecho {
	const char *ifname;
	int ifindex;
	int fd;
	uint8_t mac[6];
	uint64_t count;		    /* stop after this many echoes; 0: never */
	unsigned stats_every_s;	    /* counters this often when they changed; 0: never */
	unsigned announce_every_ms; /* announce again until the first test frame; 0: once */
	bool quiet;
	uint64_t rx, tx, bad, announces, txerr;
	uint8_t buf[RX_BUF];
};

static volatile sig_atomic_t want_stats, want_announce, want_stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_stats = 1;
	else if (sig == SIGUSR2)
		want_announce = 1;
	else
		want_stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void print_stats(const struct lecho *l)
{
	printf("lecho: rx %" PRIu64 " tx %" PRIu64 " bad %" PRIu64 " announces %" PRIu64
	       " txerr %" PRIu64 "\n",
	       l->rx, l->tx, l->bad, l->announces, l->txerr);
}

/* The MAC is read again for every announce: the PF may have given the VF a new one. */
static int read_mac(struct lecho *l)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->ifname);
	if (ioctl(l->fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return -EPROTOTYPE;
	memcpy(l->mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

static int send_frame(struct lecho *l, const void *f, size_t len, uint16_t ethertype)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(ethertype),
	    .sll_ifindex = l->ifindex,
	    .sll_halen = 6,
	};
	memcpy(to.sll_addr, f, 6);
	ssize_t n;
	do {
		n = sendto(l->fd, f, len, 0, (const struct sockaddr *)&to, sizeof(to));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EMSGSIZE;
}

static void announce(struct lecho *l)
{
	int rc = read_mac(l);
	uint8_t f[RARP_LEN];
	memset(f, 0, sizeof(f));
	memset(f, 0xFF, 6); /* broadcast, so every switch port learns where the MAC lives */
	memcpy(f + 6, l->mac, 6);
	f[12] = RARP_ETHERTYPE >> 8;
	f[13] = RARP_ETHERTYPE & 0xFF;
	uint8_t *r = f + 14;
	r[1] = 1;    /* hardware type 1: Ethernet */
	r[2] = 0x08; /* protocol type 0x0800: IPv4 */
	r[4] = 6;    /* hardware address length */
	r[5] = 4;    /* protocol address length */
	r[7] = RARP_OP_RREQ;
	memcpy(r + 8, l->mac, 6);  /* sender hardware address; its protocol address is 0 */
	memcpy(r + 18, l->mac, 6); /* target hardware address; its protocol address is 0 */
	if (rc == 0)
		rc = send_frame(l, f, sizeof(f), RARP_ETHERTYPE);
	if (rc) {
		l->txerr++;
		fprintf(stderr, "lecho: announce on %s failed: %s\n", l->ifname, strerror(-rc));
		return;
	}
	l->announces++;
	if (!l->quiet)
		printf("lecho: announce %" PRIu64 " mac=%02x:%02x:%02x:%02x:%02x:%02x\n",
		       l->announces, l->mac[0], l->mac[1], l->mac[2], l->mac[3], l->mac[4],
		       l->mac[5]);
}

/* The checks of the test guest's frame_ok(): ethertype, magic, the length the header claims
 * against the length received, and the checksum over the payload. */
static bool frame_ok(const uint8_t *buf, size_t len)
{
	struct gw_nic_frame h;
	if (len < sizeof(h) || len > IGB_MAX_FRAME)
		return false;
	memcpy(&h, buf, sizeof(h));
	if (be16toh(h.ethertype) != GW_NIC_ETHERTYPE || le16toh(h.magic) != GW_NIC_MAGIC ||
	    le32toh(h.len) != len)
		return false;
	return gw_nic_sum(buf + sizeof(h), (uint32_t)(len - sizeof(h)), le64toh(h.seq)) ==
	       le32toh(h.sum);
}

static void echo(struct lecho *l, uint8_t *buf, size_t len)
{
	struct gw_nic_frame h;
	memcpy(&h, buf, sizeof(h));
	uint8_t mac[6];
	memcpy(mac, h.dst, 6);
	memcpy(h.dst, h.src, 6);
	memcpy(h.src, mac, 6);
	h.flags = htole32(le32toh(h.flags) | GW_NIC_FLAG_ECHO);
	memcpy(buf, &h, sizeof(h));
	int rc = send_frame(l, buf, len, GW_NIC_ETHERTYPE);
	if (rc) {
		if (l->txerr++ < 4)
			fprintf(stderr, "lecho: echo of seq %" PRIu64 " failed: %s\n",
				le64toh(h.seq), strerror(-rc));
		return;
	}
	l->tx++;
}

/* Takes in what the socket holds; returns false when the socket failed. */
static bool drain(struct lecho *l)
{
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(l->fd, l->buf, sizeof(l->buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return true;
			fprintf(stderr, "lecho: receive on %s: %s\n", l->ifname, strerror(errno));
			return false;
		}
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue; /* our own echoes, if the kernel shows them */
		l->rx++;
		if ((size_t)n <= sizeof(l->buf) && frame_ok(l->buf, (size_t)n))
			echo(l, l->buf, (size_t)n);
		else
			l->bad++;
		if (l->count && l->tx >= l->count)
			return true;
	}
}

static int open_socket(struct lecho *l)
{
	l->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(GW_NIC_ETHERTYPE));
	if (l->fd < 0) {
		fprintf(stderr, "lecho: AF_PACKET socket: %s\n", strerror(errno));
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->ifname);
	if (ioctl(l->fd, SIOCGIFINDEX, &ifr) < 0) {
		fprintf(stderr, "lecho: no interface %s: %s\n", l->ifname, strerror(errno));
		return -1;
	}
	l->ifindex = ifr.ifr_ifindex;
	struct sockaddr_ll at = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(GW_NIC_ETHERTYPE),
	    .sll_ifindex = l->ifindex,
	};
	if (bind(l->fd, (const struct sockaddr *)&at, sizeof(at)) < 0) {
		fprintf(stderr, "lecho: bind to %s: %s\n", l->ifname, strerror(errno));
		return -1;
	}
	int rc = read_mac(l);
	if (rc) {
		fprintf(stderr, "lecho: MAC of %s: %s\n", l->ifname, strerror(-rc));
		return -1;
	}
	return 0;
}

static int run(struct lecho *l)
{
	/* The signals are taken only inside ppoll(), so no request is lost between a look at
	 * the flags and the wait. */
	static const int sigs[] = {SIGUSR1, SIGUSR2, SIGINT, SIGTERM};
	sigset_t block, during_wait;
	sigemptyset(&block);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaddset(&block, sigs[i]);
		sigaction(sigs[i], &sa, NULL);
	}
	sigprocmask(SIG_BLOCK, &block, &during_wait);
	sigdelset(&during_wait, SIGUSR1);
	sigdelset(&during_wait, SIGUSR2);
	sigdelset(&during_wait, SIGINT);
	sigdelset(&during_wait, SIGTERM);

	if (open_socket(l))
		return 1;
	printf("lecho: ready dev=%s ifindex=%d mac=%02x:%02x:%02x:%02x:%02x:%02x\n", l->ifname,
	       l->ifindex, l->mac[0], l->mac[1], l->mac[2], l->mac[3], l->mac[4], l->mac[5]);
	announce(l);
	uint64_t t = now_ms();
	uint64_t next_announce = t + l->announce_every_ms;
	uint64_t next_stats = t + 1000u * l->stats_every_s;
	uint64_t shown[3] = {0, 0, 0};
	int rc = 0;
	while (!want_stop && !(l->count && l->tx >= l->count)) {
		t = now_ms();
		bool announcing = l->announce_every_ms && l->rx == 0;
		if (want_announce || (announcing && t >= next_announce)) {
			want_announce = 0;
			announce(l);
			next_announce = t + l->announce_every_ms;
		}
		if (want_stats ||
		    (l->stats_every_s && t >= next_stats &&
		     (shown[0] != l->rx || shown[1] != l->tx || shown[2] != l->bad))) {
			want_stats = 0;
			print_stats(l);
			shown[0] = l->rx;
			shown[1] = l->tx;
			shown[2] = l->bad;
		}
		if (l->stats_every_s && t >= next_stats)
			next_stats = t + 1000u * l->stats_every_s;
		uint64_t until = l->stats_every_s ? next_stats : t + 1000u;
		if (announcing && next_announce < until)
			until = next_announce;
		uint64_t wait_ms = until > t ? until - t : 0;
		struct timespec ts = {.tv_sec = (time_t)(wait_ms / 1000u),
				      .tv_nsec = (long)(wait_ms % 1000u) * 1000000L};
		struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
		int n = ppoll(&pfd, 1, &ts, &during_wait);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "lecho: poll: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		if (n > 0 && !drain(l)) {
			rc = 1;
			break;
		}
	}
	print_stats(l);
	close(l->fd);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: gw-lecho [--count N] [--stats-every SECONDS] [--announce-every MS]\n"
	    "                [--quiet] [--help] IFNAME\n"
	    "Echoes godwit-nicpeer's test frames (ethertype 0x88B5) received on IFNAME back to\n"
	    "their sender with the MACs swapped and GW_NIC_FLAG_ECHO set; frames that fail the\n"
	    "checks (magic, length, checksum) count as bad and are not echoed. Announces the\n"
	    "interface's MAC with a RARP frame (RFC 903) at start, on SIGUSR2, and every MS\n"
	    "milliseconds until the first test frame came (--announce-every; default 0: once).\n"
	    "Prints 'lecho: rx N tx N bad N announces N txerr N' on SIGUSR1, at exit, and\n"
	    "every SECONDS when the counters changed (default 10; 0: never).\n"
	    "  --count N   exit 0 after N echoes (default 0: run until SIGINT or SIGTERM)\n"
	    "  --quiet     no line per announce\n");
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static struct lecho l = {.fd = -1, .stats_every_s = 10};
	static const struct option opts[] = {
	    {"count", required_argument, NULL, 'c'},
	    {"stats-every", required_argument, NULL, 's'},
	    {"announce-every", required_argument, NULL, 'a'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (!parse_u64(optarg, UINT64_MAX, &l.count))
				goto err_usage;
			break;
		case 's':
			if (!parse_u64(optarg, 86400, &v))
				goto err_usage;
			l.stats_every_s = (unsigned)v;
			break;
		case 'a':
			if (!parse_u64(optarg, 3600000, &v))
				goto err_usage;
			l.announce_every_ms = (unsigned)v;
			break;
		case 'q':
			l.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto err_usage;
		}
	}
	if (optind != argc - 1 || strlen(argv[optind]) >= IFNAMSIZ)
		goto err_usage;
	l.ifname = argv[optind];
	return run(&l);

err_usage:
	usage(stderr);
	return 2;
}
