/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-nicpeer: the switch and traffic generator at the far end of an emulated NIC's port. */
#include "godwit/igb_vf.h"
#include "godwit/log.h"
#include "godwit/parse.h"
#include "godwit/sock.h"
#include "godwit/sriov_port.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOG "nicpeer"

#define EXIT_LOSS	 1
#define EXIT_USAGE	 2
#define EXIT_NO_ANNOUNCE 3

#define NS_PER_SEC	UINT64_C(1000000000)
#define ECHO_TIMEOUT_NS (2 * NS_PER_SEC) /* a frame unanswered this long is lost */
#define PROGRESS_NS	NS_PER_SEC
#define STATS_NS	(500 * UINT64_C(1000000))
#define RARP_ETHERTYPE	0x8035u
#define VLAN_TPID	0x8100u /* an IEEE 802.1Q tag */
#define VLAN_TAG	4u
#define ETH_HDR		14u
#define MIN_SIZE	60u /* the minimum Ethernet frame, FCS not carried */
#define RX_BUF		65536u
#define SEND_BATCH	256u
#define RECV_BATCH	1024u
#define PORT_POLL_NS	(20 * UINT64_C(1000)) /* a dpdk: port has no fd: look again this soon */

/* The peer's own MAC, a locally administered unicast address. */
static const uint8_t peer_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

#define SEQ_LIST 16 /* lost and duplicated frames the report names */

enum seq_state {
	SEQ_OUTSTANDING,
	SEQ_ECHOED,
	SEQ_TIMED_OUT, /* counted lost for the window; a late echo still counts */
	SEQ_LATE,      /* echoed after it had timed out */
};

/* One place the VF lived at (a migration moves it): frames sent there, and the arrival of the
 * latest echo that came from there, which shows the VF there was still at work then. */
struct vf_place {
	struct sockaddr_storage addr;
	socklen_t len;
	uint64_t last_echo_rt; /* CLOCK_REALTIME ns; 0: none yet */
};

enum phase {
	PHASE_WAITING, /* for the VF's first announce */
	PHASE_RUNNING,
	PHASE_DRAINING, /* nothing more to send: waiting for the echoes in flight */
	PHASE_DONE,
};

static const char *const phase_names[] = {
    [PHASE_WAITING] = "waiting",
    [PHASE_RUNNING] = "running",
    [PHASE_DRAINING] = "draining",
    [PHASE_DONE] = "done",
};

struct opts {
	const char *listen;
	uint64_t count; /* 0: until --duration or a signal */
	uint64_t rate;	/* frames per second, 0: as fast as the window allows */
	uint64_t window;
	uint64_t size;
	uint64_t duration_ns; /* 0: none */
	uint64_t wait_announce_ns;
	const char *ready_file;
	const char *stats_file;
	uint64_t stats_ns; /* how often the stats file is rewritten */
	bool json;
	bool quiet;
	bool vf_mac_given; /* --vf-mac: the VF announced before the peer started */
	uint8_t vf_mac[6];
	uint64_t vlan; /* --vlan: the 802.1Q VLAN ID frames carry on the wire, 0: untagged */
};

struct peer {
	struct opts o;
	int fd;
	int sigfd;
	char bound[288];	 /* the listen address as a port spec, e.g. "udp:127.0.0.1:41234" */
	char unix_path[108];	 /* unlinked on exit when we bound it */
	bool packet;		 /* frames on a wire: an AF_PACKET socket, or a dpdk: port */
	int ifindex;		 /* packet: that interface */
	struct sriov_port *port; /* dpdk: the ethdev port frames go through (no fd) */

	/* Where the VF lives, learned from its latest RARP announce. */
	bool have_vf;
	struct sockaddr_storage vf;
	socklen_t vf_len;
	uint8_t vf_mac[6];
	char vf_desc[128];
	uint64_t announces;

	/* Per-sequence bookkeeping, indexed by seq (from 1). */
	uint64_t *sent_ns;
	uint64_t *sent_rt; /* CLOCK_REALTIME once sendto returned: the frame is at the VF's port */
	uint16_t *place;   /* index into places: where the frame was sent */
	uint8_t *state;

	/* Where the VF lived, oldest first; the last is where frames go now. */
	struct vf_place *places;
	unsigned nplaces;
	uint64_t cap;
	uint64_t oldest; /* no frame below this is still outstanding */
	uint64_t outstanding;

	uint64_t sent, received, late, dups, corrupt, ignored, send_errors;
	uint64_t dup_seq[SEQ_LIST]; /* the first duplicated frames, for the report */
	uint64_t rtt_min, rtt_max, rtt_sum;

	/* The current interval with frames outstanding and no echo, and the longest one. */
	bool in_outage;
	uint64_t outage_start, outage_sent0;
	uint64_t max_outage_ns, max_outage_sent;

	enum phase phase;
	int signals;
	bool blocked_out; /* the socket was full: wait for POLLOUT */
	uint64_t t_start, t_announce, t_first_send, t_last_echo, t_end, next_send_at;
	uint64_t next_progress, next_stats;
	bool stats_warned, send_warned;

	uint8_t *txbuf, *rxbuf;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* The clock of the kernel's receive timestamps (SO_TIMESTAMPNS). */
static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: godwit-nicpeer --listen udp:HOST:PORT|unix:PATH|packet:IFNAME|dpdk:DEVARGS\n"
	    "                      [options]\n"
	    "\n"
	    "Plays the switch and a traffic generator for an emulated NIC function whose port\n"
	    "spec is the listen address: learns the function from its RARP announces, sends it\n"
	    "numbered test frames and checks the echoes that come back.\n"
	    "\n"
	    "Options:\n"
	    "  --listen SPEC            address to bind (udp:127.0.0.1:0 picks a free port), or\n"
	    "                           packet:IFNAME: frames on a network interface (needs\n"
	    "                           CAP_NET_RAW; the interface goes promiscuous meanwhile),\n"
	    "                           or dpdk:DEVARGS: frames through a DPDK ethdev port, as\n"
	    "                           the VF's dpdk: uplink takes it (net_memif0,role=server,\n"
	    "                           socket=PATH serves a VF whose uplink is its client)\n"
	    "  --count N                frames to send (default 0: until --duration or a signal)\n"
	    "  --rate PPS               at most PPS frames per second (default: window-bound)\n"
	    "  --window W               at most W frames awaiting their echo (default 16)\n"
	    "  --size BYTES             frame size, %u..%u (default 64)\n"
	    "  --duration SECONDS       stop sending after this long (from the first announce)\n"
	    "  --wait-announce SECONDS  give up when no announce came this long (default 60)\n"
	    "  --vf-mac MAC             packet: and dpdk: only: the VF's MAC, for a VF that\n"
	    "                           announced before the peer started; frames go to it\n"
	    "                           at once\n"
	    "  --vlan VID               send each frame with an 802.1Q tag for VLAN VID\n"
	    "                           (1..4094, 4 bytes beyond --size on the wire); echoes\n"
	    "                           are taken tagged or untagged (a VF strips the tag)\n"
	    "  --ready-file PATH        write the bound spec here once bound\n"
	    "  --stats-file PATH        write the JSON report here every 500 ms\n"
	    "  --stats-every MS         ... or every MS milliseconds (10..60000)\n"
	    "  --json                   print the final report as one JSON object\n"
	    "  --quiet                  no progress lines or informational logs\n"
	    "  --help                   this help\n"
	    "\n"
	    "A frame unanswered for 2 s is lost (a later echo still counts, as late). The run\n"
	    "ends when every frame is echoed or lost; SIGINT/SIGTERM stop sending (a second one\n"
	    "stops at once).\n"
	    "\n"
	    "Exit codes: 0 every frame echoed intact, 1 loss, duplicates or corruption,\n"
	    "2 usage error, 3 no announce or cannot bind.\n",
	    MIN_SIZE, IGB_MAX_FRAME);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "godwit-nicpeer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'godwit-nicpeer --help'.\n");
	return EXIT_USAGE;
}

/* "1.5" seconds; 0 < value <= one year. */
static int parse_seconds(const char *s, uint64_t *out_ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 365 * 86400.0)
		return -EINVAL;
	*out_ns = (uint64_t)(v * 1e9);
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_LISTEN = 256,
		OPT_COUNT,
		OPT_RATE,
		OPT_WINDOW,
		OPT_SIZE,
		OPT_DURATION,
		OPT_WAIT,
		OPT_READY,
		OPT_STATS,
		OPT_STATS_EVERY,
		OPT_JSON,
		OPT_QUIET,
		OPT_HELP,
		OPT_VF_MAC,
		OPT_VLAN,
	};
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"rate", required_argument, NULL, OPT_RATE},
	    {"window", required_argument, NULL, OPT_WINDOW},
	    {"size", required_argument, NULL, OPT_SIZE},
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"wait-announce", required_argument, NULL, OPT_WAIT},
	    {"ready-file", required_argument, NULL, OPT_READY},
	    {"stats-file", required_argument, NULL, OPT_STATS},
	    {"stats-every", required_argument, NULL, OPT_STATS_EVERY},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"vf-mac", required_argument, NULL, OPT_VF_MAC},
	    {"vlan", required_argument, NULL, OPT_VLAN},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct opts){
	    .window = 16, .size = 64, .wait_announce_ns = 60 * NS_PER_SEC, .stats_ns = STATS_NS};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_COUNT:
			if (gw_parse_u64(optarg, 0, UINT32_MAX, &o->count) < 0)
				return usage_error("--count wants a number, got \"%s\"", optarg);
			break;
		case OPT_RATE:
			if (gw_parse_u64(optarg, 1, 10000000, &o->rate) < 0)
				return usage_error("--rate wants 1..10000000 frames per second, "
						   "got \"%s\"",
						   optarg);
			break;
		case OPT_WINDOW:
			if (gw_parse_u64(optarg, 1, 65536, &o->window) < 0)
				return usage_error("--window wants 1..65536, got \"%s\"", optarg);
			break;
		case OPT_SIZE:
			if (gw_parse_u64(optarg, MIN_SIZE, IGB_MAX_FRAME, &o->size) < 0)
				return usage_error("--size wants %u..%u bytes, got \"%s\"",
						   MIN_SIZE, IGB_MAX_FRAME, optarg);
			break;
		case OPT_DURATION:
			if (parse_seconds(optarg, &o->duration_ns) < 0)
				return usage_error("--duration wants seconds, got \"%s\"", optarg);
			break;
		case OPT_WAIT:
			if (parse_seconds(optarg, &o->wait_announce_ns) < 0)
				return usage_error("--wait-announce wants seconds, got \"%s\"",
						   optarg);
			break;
		case OPT_READY:
			o->ready_file = optarg;
			break;
		case OPT_VF_MAC: {
			unsigned b[6];
			char tail;
			if (sscanf(optarg, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
				   &b[4], &b[5], &tail) != 6 ||
			    (b[0] & 1))
				return usage_error("--vf-mac wants a unicast MAC, got \"%s\"",
						   optarg);
			for (int i = 0; i < 6; i++)
				o->vf_mac[i] = (uint8_t)b[i];
			o->vf_mac_given = true;
			break;
		}
		case OPT_VLAN:
			if (gw_parse_u64(optarg, 1, 4094, &o->vlan) < 0)
				return usage_error("--vlan wants a VLAN ID 1..4094, got \"%s\"",
						   optarg);
			break;
		case OPT_STATS:
			o->stats_file = optarg;
			break;
		case OPT_STATS_EVERY: {
			uint64_t ms;
			if (gw_parse_u64(optarg, 10, 60000, &ms) < 0)
				return usage_error("--stats-every wants 10..60000 ms, got \"%s\"",
						   optarg);
			o->stats_ns = ms * UINT64_C(1000000);
			break;
		}
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (optopt)
				return usage_error("option '%s' is unknown or lacks its value",
						   argv[optind - 1]);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->listen)
		return usage_error("--listen is required");
	return 0;
}

static int bind_udp(struct peer *pr, const char *arg, char *err, size_t errlen)
{
	char host[256];
	const char *portstr;
	uint64_t port;
	if (gw_sock_split_host_port(arg, host, sizeof(host), &portstr) < 0 ||
	    gw_parse_u64(portstr, 0, 65535, &port) < 0) {
		snprintf(err, errlen,
			 "--listen wants udp:HOST:PORT (PORT 0 picks one), got \"udp:%s\"", arg);
		return -EINVAL;
	}

	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_DGRAM,
	    .ai_protocol = IPPROTO_UDP,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			rc = -errno;
			close(fd);
			continue;
		}
		pr->fd = fd;
		rc = 0;
		break;
	}
	freeaddrinfo(res);
	if (rc < 0) {
		snprintf(err, errlen, "cannot bind udp:%s: %s", arg, strerror(-rc));
		return rc;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(pr->fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "getsockname: %s", strerror(-rc));
		close(pr->fd);
		pr->fd = -1;
		return rc;
	}
	char a[96];
	gw_sock_addr_format((struct sockaddr *)&ss, len, a, sizeof(a));
	snprintf(pr->bound, sizeof(pr->bound), "udp:%s", a);
	return 0;
}

static int bind_unix(struct peer *pr, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un un;
	socklen_t len;
	if (gw_sock_unix_addr(path, &un, &len) < 0) {
		snprintf(err, errlen, "--listen wants unix:PATH with 1..%zu characters",
			 sizeof(un.sun_path) - 1);
		return -EINVAL;
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "unix socket: %s", strerror(-rc));
		return rc;
	}
	/* A socket file nobody listens on is left over from an earlier run: replace it. A
	 * live one belongs to someone else. */
	struct stat st;
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		if (connect(fd, (struct sockaddr *)&un, len) == 0) {
			close(fd);
			snprintf(err, errlen, "%s is in use by another process", path);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&un, len) < 0) {
		int rc = -errno;
		close(fd);
		snprintf(err, errlen, "cannot bind unix:%s: %s", path, strerror(-rc));
		return rc;
	}
	pr->fd = fd;
	snprintf(pr->unix_path, sizeof(pr->unix_path), "%s", path);
	snprintf(pr->bound, sizeof(pr->bound), "unix:%s", path);
	return 0;
}

/* A network interface: the VF is a MAC on the wire, reached through the interface. */
static int bind_packet(struct peer *pr, const char *name, char *err, size_t errlen)
{
	const char *why = "";
	int ifindex, fd = gw_sock_packet_open(name, &ifindex, &why);
	if (fd == -EINVAL) {
		snprintf(err, errlen, "--listen wants packet:IFNAME, got \"packet:%s\": %s", name,
			 why);
		return -EINVAL;
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open packet:%s: %s%s%s%s", name, why,
			 fd == -ENODEV ? "" : ": ", fd == -ENODEV ? "" : strerror(-fd),
			 fd == -EPERM ? " (needs CAP_NET_RAW)" : "");
		return fd;
	}
	pr->fd = fd;
	pr->packet = true;
	pr->ifindex = ifindex;
	snprintf(pr->bound, sizeof(pr->bound), "packet:%s", name);
	return 0;
}

/* A DPDK ethdev port: the VF is a MAC on the port's wire, as with packet:. */
static int bind_dpdk(struct peer *pr, char *err, size_t errlen)
{
	int rc = sriov_port_open(pr->o.listen, &pr->port, err, errlen);
	if (rc < 0)
		return rc;
	pr->packet = true;
	snprintf(pr->bound, sizeof(pr->bound), "%s", pr->o.listen);
	return 0;
}

/* Binds --listen; -EINVAL means the spec itself is malformed (a usage error). */
static int peer_bind(struct peer *pr, char *err, size_t errlen)
{
	int rc;
	if (strncmp(pr->o.listen, "udp:", 4) == 0) {
		rc = bind_udp(pr, pr->o.listen + 4, err, errlen);
	} else if (strncmp(pr->o.listen, "unix:", 5) == 0) {
		rc = bind_unix(pr, pr->o.listen + 5, err, errlen);
	} else if (strncmp(pr->o.listen, "packet:", 7) == 0) {
		rc = bind_packet(pr, pr->o.listen + 7, err, errlen);
	} else if (strncmp(pr->o.listen, "dpdk:", 5) == 0) {
		return bind_dpdk(pr, err, errlen);
	} else {
		snprintf(err, errlen,
			 "--listen wants udp:HOST:PORT, unix:PATH, packet:IFNAME or dpdk:DEVARGS, "
			 "got \"%s\"",
			 pr->o.listen);
		return -EINVAL;
	}
	if (rc == 0) {
		/* Best effort: a migration's burst must not overflow. */
		gw_sock_set_buffers(pr->fd, 1 << 20, true);
		/* When each echo reached us, not when we got round to reading it: what tells
		 * frames sent before it from frames sent after (lost_running). */
		int on = 1;
		if (setsockopt(pr->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
			GW_DEBUG(LOG, "SO_TIMESTAMPNS: %s: echoes are stamped when read",
				 strerror(errno));
	}
	return rc;
}

/* Writes PATH.tmp then renames it over PATH, so a reader never sees half a file. */
static int write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	int rc = 0;
	if (fwrite(data, 1, len, f) != len)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void mac_format(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

struct report {
	uint64_t lost, lost_running;
	double max_outage_ms, pps, rtt_min_us, rtt_avg_us, rtt_max_us, elapsed_s;
	uint64_t sent_during_outage;
};

/*
 * Lost frames that reached their VF while it was still at work: an echo from the place a frame
 * was sent to arrived after that frame had been sent. The VF had it in its port before it sent
 * that echo (a datagram to a local socket is queued before sendto returns), and a VF that
 * stops takes in what its port holds; so a frame lost to a VF that stopped for good, as a
 * migration's source does, was sent after the last echo from there. While the run goes on,
 * only frames that timed out count.
 */
static bool lost_running(const struct peer *pr, uint64_t s)
{
	uint8_t st = pr->state[s];
	if (st == SEQ_ECHOED || st == SEQ_LATE ||
	    (st == SEQ_OUTSTANDING && pr->phase != PHASE_DONE))
		return false;
	return pr->sent_rt[s] < pr->places[pr->place[s]].last_echo_rt;
}

static uint64_t count_lost_running(const struct peer *pr)
{
	uint64_t n = 0;
	for (uint64_t s = 1; s <= pr->sent; s++)
		n += lost_running(pr, s);
	return n;
}

/* When the first LOST_TIMES of them were sent (CLOCK_REALTIME, ms): what a test matches
 * against the moments a device could not receive. */
#define LOST_TIMES 64
static void json_lost_times(const struct peer *pr, FILE *f)
{
	fprintf(f, ",\"lost_running_sent_ms\":[");
	unsigned n = 0;
	for (uint64_t s = 1; s <= pr->sent && n < LOST_TIMES; s++)
		if (lost_running(pr, s))
			fprintf(f, "%s%.3f", n++ ? "," : "", (double)pr->sent_rt[s] / 1e6);
	fprintf(f, "]");
}

/* Which frames never came back and which came back twice (the first SEQ_LIST of each): a
 * loss paired with a duplicate tells a frame overwritten on the way from one dropped. */
static void json_seqs(const struct peer *pr, FILE *f)
{
	fprintf(f, ",\"lost_seqs\":[");
	unsigned n = 0;
	for (uint64_t s = 1; s <= pr->sent && n < SEQ_LIST; s++)
		if (pr->state[s] != SEQ_ECHOED && pr->state[s] != SEQ_LATE)
			fprintf(f, "%s%" PRIu64, n++ ? "," : "", s);
	fprintf(f, "],\"duplicate_seqs\":[");
	for (uint64_t i = 0; i < pr->dups && i < SEQ_LIST; i++)
		fprintf(f, "%s%" PRIu64, i ? "," : "", pr->dup_seq[i]);
	fprintf(f, "]");
}

static void report_compute(const struct peer *pr, uint64_t now, struct report *r)
{
	*r = (struct report){.lost = pr->sent - pr->received,
			     .lost_running = count_lost_running(pr)};
	uint64_t outage = pr->max_outage_ns, during = pr->max_outage_sent;
	if (pr->in_outage && now - pr->outage_start > outage) {
		outage = now - pr->outage_start;
		during = pr->sent - pr->outage_sent0;
	}
	r->max_outage_ms = (double)outage / 1e6;
	r->sent_during_outage = during;
	if (pr->received) {
		r->rtt_min_us = (double)pr->rtt_min / 1e3;
		r->rtt_max_us = (double)pr->rtt_max / 1e3;
		r->rtt_avg_us = (double)pr->rtt_sum / (double)pr->received / 1e3;
	}
	/* Echoes per second over the active period: first send to last echo (or now while
	 * the run is still going). */
	uint64_t until = pr->phase == PHASE_DONE ? pr->t_last_echo : now;
	if (pr->received && until > pr->t_first_send)
		r->pps = (double)pr->received * 1e9 / (double)(until - pr->t_first_send);
	r->elapsed_s = (double)(now - pr->t_start) / 1e9;
}

static int exit_code(const struct peer *pr)
{
	if (!pr->announces)
		return EXIT_NO_ANNOUNCE;
	if (pr->sent != pr->received || pr->dups || pr->corrupt)
		return EXIT_LOSS;
	return 0;
}

static void report_json(const struct peer *pr, uint64_t now, FILE *f)
{
	struct report r;
	report_compute(pr, now, &r);
	char mac[18] = "";
	if (pr->have_vf)
		mac_format(pr->vf_mac, mac);
	fprintf(f, "{\"listen\":");
	json_string(f, pr->bound);
	fprintf(f, ",\"state\":\"%s\"", phase_names[pr->phase]);
	if (pr->phase == PHASE_DONE) {
		static const char *const results[] = {"pass", "fail", "usage", "no-announce"};
		fprintf(f, ",\"result\":\"%s\"", results[exit_code(pr)]);
	}
	fprintf(f, ",\"vf_mac\":");
	json_string(f, mac);
	fprintf(f, ",\"vf_addr\":");
	json_string(f, pr->vf_desc);
	fprintf(f,
		",\"size\":%" PRIu64 ",\"window\":%" PRIu64 ",\"rate\":%" PRIu64
		",\"count\":%" PRIu64 ",\"vlan\":%" PRIu64 ",\"elapsed_s\":%.3f",
		pr->o.size, pr->o.window, pr->o.rate, pr->o.count, pr->o.vlan, r.elapsed_s);
	fprintf(f,
		",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"lost_running\":%" PRIu64 ",\"late\":%" PRIu64 ",\"duplicates\":%" PRIu64
		",\"corrupt\":%" PRIu64 ",\"ignored\":%" PRIu64 ",\"send_errors\":%" PRIu64
		",\"outstanding\":%" PRIu64 ",\"announces\":%" PRIu64,
		pr->sent, pr->received, r.lost, r.lost_running, pr->late, pr->dups, pr->corrupt,
		pr->ignored, pr->send_errors, pr->outstanding, pr->announces);
	json_lost_times(pr, f);
	json_seqs(pr, f);
	fprintf(f,
		",\"max_outage_ms\":%.1f,\"sent_during_outage\":%" PRIu64
		",\"pps\":%.1f,\"rtt_us\":{\"min\":%.1f,\"avg\":%.1f,\"max\":%.1f}}\n",
		r.max_outage_ms, r.sent_during_outage, r.pps, r.rtt_min_us, r.rtt_avg_us,
		r.rtt_max_us);
}

static void report_human(const struct peer *pr, uint64_t now, FILE *f)
{
	struct report r;
	report_compute(pr, now, &r);
	if (pr->have_vf) {
		char mac[18];
		mac_format(pr->vf_mac, mac);
		fprintf(f, "godwit-nicpeer: %s <-> VF %s at %s\n", pr->bound, mac, pr->vf_desc);
	} else {
		fprintf(f, "godwit-nicpeer: %s: no announce from a VF\n", pr->bound);
	}
	fprintf(f,
		"  sent %" PRIu64 "  received %" PRIu64 "  lost %" PRIu64 " (%" PRIu64
		" while the VF ran)  late %" PRIu64 "  duplicates %" PRIu64 "  corrupt %" PRIu64
		"\n",
		pr->sent, pr->received, r.lost, r.lost_running, pr->late, pr->dups, pr->corrupt);
	fprintf(f,
		"  announces %" PRIu64 "  max outage %.1f ms (%" PRIu64
		" frames sent during it)  ignored %" PRIu64 "  send errors %" PRIu64 "\n",
		pr->announces, r.max_outage_ms, r.sent_during_outage, pr->ignored, pr->send_errors);
	fprintf(f, "  %.1f echoes/s  rtt min/avg/max %.1f/%.1f/%.1f us  over %.3f s\n", r.pps,
		r.rtt_min_us, r.rtt_avg_us, r.rtt_max_us, r.elapsed_s);
	switch (exit_code(pr)) {
	case 0:
		fprintf(f, "result: PASS (every frame echoed intact)\n");
		break;
	case EXIT_LOSS:
		fprintf(f, "result: FAIL (loss, duplicates or corruption)\n");
		break;
	default:
		fprintf(f, "result: NO ANNOUNCE\n");
	}
}

static void write_stats(struct peer *pr, uint64_t now)
{
	if (!pr->o.stats_file)
		return;
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);
	if (!f)
		return;
	report_json(pr, now, f);
	fclose(f);
	int rc = write_atomic(pr->o.stats_file, data, len);
	free(data);
	if (rc < 0 && !pr->stats_warned) {
		GW_WARN(LOG, "cannot write the stats file %s: %s", pr->o.stats_file, strerror(-rc));
		pr->stats_warned = true;
	}
}

static void progress(const struct peer *pr, uint64_t now)
{
	if (pr->phase == PHASE_WAITING) {
		uint64_t waited = now - pr->t_start;
		fprintf(stderr,
			"godwit-nicpeer: waiting for the VF's announce on %s (%" PRIu64 " s)\n",
			pr->bound, waited / NS_PER_SEC);
		return;
	}
	struct report r;
	report_compute(pr, now, &r);
	fprintf(stderr,
		"godwit-nicpeer: sent %" PRIu64 " received %" PRIu64 " lost %" PRIu64
		" dup %" PRIu64 " corrupt %" PRIu64 " outstanding %" PRIu64 " announces %" PRIu64
		" %.0f/s max outage %.1f ms\n",
		pr->sent, pr->received, r.lost, pr->dups, pr->corrupt, pr->outstanding,
		pr->announces, r.pps, r.max_outage_ms);
}

static uint8_t pattern_byte(uint64_t seq, uint32_t i)
{
	uint8_t s = (uint8_t)(seq ^ (seq >> 8) ^ (seq >> 16) ^ (seq >> 24));
	return (uint8_t)(s + i * 0x1Du + (i >> 8));
}

static int seq_reserve(struct peer *pr, uint64_t seq)
{
	if (seq < pr->cap)
		return 0;
	uint64_t cap = pr->cap ? pr->cap * 2 : 4096;
	while (cap <= seq)
		cap *= 2;
	uint64_t *t = realloc(pr->sent_ns, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	pr->sent_ns = t;
	t = realloc(pr->sent_rt, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	pr->sent_rt = t;
	uint16_t *pl = realloc(pr->place, cap * sizeof(*pl));
	if (!pl)
		return -ENOMEM;
	pr->place = pl;
	uint8_t *s = realloc(pr->state, cap);
	if (!s)
		return -ENOMEM;
	pr->state = s;
	pr->cap = cap;
	return 0;
}

static void outage_close(struct peer *pr, uint64_t now)
{
	if (!pr->in_outage)
		return;
	if (now - pr->outage_start > pr->max_outage_ns) {
		pr->max_outage_ns = now - pr->outage_start;
		pr->max_outage_sent = pr->sent - pr->outage_sent0;
	}
	pr->in_outage = false;
}

/* An outage opens at NOW with the frames up to SENT0 sent before it. */
static void outage_open(struct peer *pr, uint64_t now, uint64_t sent0)
{
	pr->in_outage = true;
	pr->outage_start = now;
	pr->outage_sent0 = sent0;
}

/* How many frames had been sent when an echo stamped at_rt arrived: the loop may have sent
 * more between its arrival and our reading it, and those went out during what follows. */
static uint64_t sent_before(const struct peer *pr, uint64_t at_rt)
{
	uint64_t n = pr->sent;
	while (n > 0 && pr->sent_rt[n] > at_rt)
		n--;
	return n;
}

/* The place frames go to now: a new one when the VF announces itself from a new address. */
static int place_push(struct peer *pr, const struct sockaddr_storage *from, socklen_t fromlen)
{
	if (pr->nplaces == UINT16_MAX)
		return -ENOSPC;
	struct vf_place *p = realloc(pr->places, (pr->nplaces + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	pr->places = p;
	p += pr->nplaces++;
	memset(p, 0, sizeof(*p));
	memcpy(&p->addr, from, fromlen);
	p->len = fromlen;
	return 0;
}

/* An intact echo from FROM, arrived at at_rt: the VF at that place was at work then. */
static void place_saw_echo(struct peer *pr, const struct sockaddr_storage *from, socklen_t fromlen,
			   uint64_t at_rt)
{
	for (unsigned i = pr->nplaces; i-- > 0;) {
		struct vf_place *p = &pr->places[i];
		if (p->len == fromlen && memcmp(&p->addr, from, fromlen) == 0) {
			if (at_rt > p->last_echo_rt)
				p->last_echo_rt = at_rt;
			return;
		}
	}
}

/* Sends txbuf's first SIZE bytes to the VF: 0, -EAGAIN when the socket is full, or -errno.
 * A dpdk: port batches them until the round's flush (run). */
static int frame_out(struct peer *pr, uint32_t size)
{
	if (pr->port)
		return sriov_port_send(pr->port, pr->txbuf, size);
	ssize_t n;
	do {
		n = sendto(pr->fd, pr->txbuf, size, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&pr->vf, pr->vf_len);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* Sends the next frame; returns 0, -EAGAIN when the socket is full, or -ENOMEM. */
static int send_one(struct peer *pr, uint64_t now)
{
	uint64_t seq = pr->sent + 1;
	int rc = seq_reserve(pr, seq);
	if (rc < 0)
		return rc;
	uint32_t size = (uint32_t)pr->o.size, plen = size - (uint32_t)sizeof(struct gw_nic_frame);
	uint8_t *payload = pr->txbuf + sizeof(struct gw_nic_frame);
	for (uint32_t i = 0; i < plen; i++)
		payload[i] = pattern_byte(seq, i);
	struct gw_nic_frame h = {
	    .ethertype = htobe16(GW_NIC_ETHERTYPE),
	    .magic = htole16(GW_NIC_MAGIC),
	    .len = htole32(size),
	    .seq = htole64(seq),
	    .sum = htole32(gw_nic_sum(payload, plen, seq)),
	    .flags = 0,
	};
	memcpy(h.dst, pr->vf_mac, 6);
	memcpy(h.src, peer_mac, 6);
	memcpy(pr->txbuf, &h, sizeof(h));
	if (pr->o.vlan) {
		/* The tag goes between the source MAC and the ethertype (IEEE 802.1Q). */
		memmove(pr->txbuf + 12 + VLAN_TAG, pr->txbuf + 12, size - 12);
		pr->txbuf[12] = VLAN_TPID >> 8;
		pr->txbuf[13] = VLAN_TPID & 0xFF;
		pr->txbuf[14] = (uint8_t)(pr->o.vlan >> 8);
		pr->txbuf[15] = (uint8_t)pr->o.vlan;
		size += VLAN_TAG;
	}

	rc = frame_out(pr, size);
	if (rc == -EAGAIN) {
		pr->blocked_out = true;
		return -EAGAIN;
	}
	if (rc < 0) {
		/* The VF is gone (a unix socket after its VMM exited, say), or a dpdk: port
		 * had no buffer: the frame is sent into the void and will be counted lost, as
		 * on a wire. */
		pr->send_errors++;
		if (!pr->send_warned) {
			GW_DEBUG(LOG, "sending to %s: %s", pr->vf_desc, strerror(-rc));
			pr->send_warned = true;
		}
	}
	if (!pr->in_outage)
		outage_open(pr, now, pr->sent);
	pr->sent_ns[seq] = now;
	/* After sendto: a datagram to a local socket is in its queue by now (a dpdk: port's
	 * is once the round's flush, right after, hands it over). */
	pr->sent_rt[seq] = real_ns();
	pr->place[seq] = (uint16_t)(pr->nplaces - 1);
	pr->state[seq] = SEQ_OUTSTANDING;
	pr->outstanding++;
	pr->sent++;
	if (pr->sent == 1) {
		pr->t_first_send = now;
		pr->oldest = 1;
	}
	if (pr->o.rate) {
		uint64_t interval = NS_PER_SEC / pr->o.rate;
		pr->next_send_at += interval;
		/* Behind schedule (a full window, say): do not burst to catch up. */
		if (pr->next_send_at + interval < now)
			pr->next_send_at = now;
	}
	return 0;
}

/* Frames unanswered for ECHO_TIMEOUT_NS stop holding the window. */
static void expire(struct peer *pr, uint64_t now)
{
	while (pr->oldest && pr->oldest <= pr->sent) {
		uint64_t s = pr->oldest;
		if (pr->state[s] == SEQ_OUTSTANDING) {
			if (now - pr->sent_ns[s] < ECHO_TIMEOUT_NS)
				break;
			pr->state[s] = SEQ_TIMED_OUT;
			pr->outstanding--;
		}
		pr->oldest++;
	}
}

static void on_announce(struct peer *pr, const uint8_t *f, const struct sockaddr_storage *from,
			socklen_t fromlen)
{
	if (from->ss_family == AF_UNIX && fromlen <= sizeof(sa_family_t)) {
		GW_WARN(LOG, "an announce came from an unbound unix socket: nowhere to reply");
		pr->ignored++;
		return;
	}
	pr->announces++;
	bool moved = !pr->have_vf || fromlen != pr->vf_len || memcmp(from, &pr->vf, fromlen) != 0;
	/* The same address announcing again once it has answered: a VM that moved between two
	 * hosts the peer reaches the same way (one wire, one MAC). What is lost from now on is
	 * judged by what answers from now on, not by the echoes from before the move. */
	bool again = !moved && pr->nplaces && pr->places[pr->nplaces - 1].last_echo_rt;
	if ((moved || again) && place_push(pr, from, fromlen) < 0) {
		GW_ERR(LOG, "out of memory for the VF's places: announce ignored");
		pr->ignored++;
		return;
	}
	if (pr->have_vf && moved) {
		/* The VF moved (a migration's destination announcing). What is in flight to
		 * the old address may never come back: release the window rather than stall up
		 * to 2 s, so the outage measured is the VF's. Echoes of those frames still
		 * count, as late. */
		for (uint64_t s = pr->oldest; s && s <= pr->sent; s++) {
			if (pr->state[s] == SEQ_OUTSTANDING) {
				pr->state[s] = SEQ_TIMED_OUT;
				pr->outstanding--;
			}
		}
	}
	memcpy(&pr->vf, from, sizeof(*from));
	pr->vf_len = fromlen;
	memcpy(pr->vf_mac, f + 6, 6);
	gw_sock_addr_format((const struct sockaddr *)from, fromlen, pr->vf_desc,
			    sizeof(pr->vf_desc));
	pr->have_vf = true;
	char mac[18];
	mac_format(pr->vf_mac, mac);
	GW_INFO(LOG, "announce %" PRIu64 ": VF %s is at %s", pr->announces, mac, pr->vf_desc);
}

/* Validates an echo: header fields, the checksum and the seq-derived payload. */
static bool echo_intact(const struct peer *pr, const uint8_t *f, size_t n, uint64_t *seq_out)
{
	if (n < sizeof(struct gw_nic_frame) || n != pr->o.size)
		return false;
	struct gw_nic_frame h;
	memcpy(&h, f, sizeof(h));
	uint64_t seq = le64toh(h.seq);
	uint32_t plen = (uint32_t)(n - sizeof(h));
	const uint8_t *payload = f + sizeof(h);
	if (le16toh(h.magic) != GW_NIC_MAGIC || le32toh(h.len) != n ||
	    !(le32toh(h.flags) & GW_NIC_FLAG_ECHO))
		return false;
	if (seq == 0 || seq > pr->sent) /* never sent */
		return false;
	if (le32toh(h.sum) != gw_nic_sum(payload, plen, seq))
		return false;
	for (uint32_t i = 0; i < plen; i++)
		if (payload[i] != pattern_byte(seq, i))
			return false;
	*seq_out = seq;
	return true;
}

static void on_frame(struct peer *pr, const uint8_t *f, size_t n,
		     const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now,
		     uint64_t at_rt)
{
	if (n < ETH_HDR || n > RX_BUF) {
		pr->ignored++;
		return;
	}
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == RARP_ETHERTYPE) {
		on_announce(pr, f, from, fromlen);
		return;
	}
	if (type != GW_NIC_ETHERTYPE) {
		pr->ignored++; /* the guest's own traffic: not ours to judge */
		return;
	}
	uint64_t seq;
	if (!echo_intact(pr, f, n, &seq)) {
		pr->corrupt++;
		return;
	}
	place_saw_echo(pr, from, fromlen, at_rt);
	switch (pr->state[seq]) {
	case SEQ_OUTSTANDING:
		pr->state[seq] = SEQ_ECHOED;
		pr->outstanding--;
		break;
	case SEQ_TIMED_OUT:
		pr->state[seq] = SEQ_LATE;
		pr->late++;
		break;
	default:
		if (pr->dups < SEQ_LIST)
			pr->dup_seq[pr->dups] = seq;
		pr->dups++;
		return;
	}
	pr->received++;
	uint64_t rtt = now - pr->sent_ns[seq];
	if (pr->received == 1 || rtt < pr->rtt_min)
		pr->rtt_min = rtt;
	if (rtt > pr->rtt_max)
		pr->rtt_max = rtt;
	pr->rtt_sum += rtt;
	pr->t_last_echo = now;
	outage_close(pr, now);
	if (pr->outstanding)
		outage_open(pr, now, sent_before(pr, at_rt));
}

/*
 * A frame from a packet socket: whether it is ours to look at, and if so its source as the
 * place frames to its sender go (the interface and the sender's MAC, with our frames'
 * ethertype for sendto). The socket sees all the wire carries: frames leaving the interface
 * (PACKET_OUTGOING; on a loopback interface ours also come back in, to their VF's MAC) and
 * frames between others; the peer takes in only broadcasts and frames to its own MAC.
 */
static bool packet_take(const uint8_t *f, size_t n, struct sockaddr_storage *from,
			socklen_t *fromlen)
{
	const struct sockaddr_ll *ll = (const struct sockaddr_ll *)from;
	if (n < ETH_HDR || ll->sll_pkttype == PACKET_OUTGOING ||
	    (!(f[0] & 1) && memcmp(f, peer_mac, 6) != 0))
		return false;
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(GW_NIC_ETHERTYPE),
	    .sll_ifindex = ll->sll_ifindex,
	    .sll_halen = 6,
	};
	memcpy(to.sll_addr, f + 6, 6);
	memset(from, 0, sizeof(*from));
	memcpy(from, &to, sizeof(to));
	*fromlen = sizeof(to);
	return true;
}

/* A frame in rxbuf, N bytes, from FROM, which reached us at AT_RT (CLOCK_REALTIME). */
static void frame_in(struct peer *pr, size_t n, struct sockaddr_storage *from, socklen_t fromlen,
		     uint64_t at_rt)
{
	if (pr->packet && !packet_take(pr->rxbuf, n, from, &fromlen))
		return; /* not to us: not counted, not even as ignored */
	if (pr->o.vlan && n >= ETH_HDR + VLAN_TAG && n <= RX_BUF &&
	    (pr->rxbuf[12] << 8 | pr->rxbuf[13]) == VLAN_TPID) {
		/* An echo that kept its tag: judged as the frame inside it. */
		memmove(pr->rxbuf + 12, pr->rxbuf + 12 + VLAN_TAG, n - 12 - VLAN_TAG);
		n -= VLAN_TAG;
	}
	on_frame(pr, pr->rxbuf, n, from, fromlen, now_ns(), at_rt);
}

static void receive_all(struct peer *pr)
{
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		struct sockaddr_storage from;
		union {
			char buf[CMSG_SPACE(sizeof(struct timespec))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = pr->rxbuf, .iov_len = RX_BUF};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(pr->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				GW_DEBUG(LOG, "recvmsg: %s", strerror(errno));
			return;
		}
		uint64_t at_rt = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
				at_rt = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
			}
		}
		if (!at_rt)
			at_rt = real_ns(); /* no stamp: now, the latest it can have arrived */
		frame_in(pr, (size_t)n, &from, mh.msg_namelen, at_rt);
	}
}

/* A dpdk: port: what its RX queue holds. Its frames carry no stamp (read now), and come from
 * the wire as a packet socket's would (to us or broadcast; nothing of ours loops back). */
static void receive_port(struct peer *pr)
{
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		ssize_t n = sriov_port_recv(pr->port, pr->rxbuf, RX_BUF);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			GW_DEBUG(LOG, "receiving from %s: %s", pr->bound, strerror((int)-n));
			pr->ignored++;
			continue;
		}
		struct sockaddr_storage from = {0};
		struct sockaddr_ll *ll = (struct sockaddr_ll *)&from;
		ll->sll_family = AF_PACKET;
		ll->sll_pkttype = PACKET_HOST;
		frame_in(pr, (size_t)n, &from, sizeof(*ll), real_ns());
	}
}

static bool can_send(const struct peer *pr, uint64_t now)
{
	return pr->phase == PHASE_RUNNING && !pr->blocked_out &&
	       (!pr->o.count || pr->sent < pr->o.count) && pr->outstanding < pr->o.window &&
	       (!pr->o.rate || now >= pr->next_send_at);
}

static void advance_phase(struct peer *pr, uint64_t now)
{
	switch (pr->phase) {
	case PHASE_WAITING:
		if (pr->signals) {
			pr->phase = PHASE_DONE;
		} else if (pr->have_vf) {
			pr->phase = PHASE_RUNNING;
			pr->t_announce = now;
			pr->next_send_at = now;
		} else if (now - pr->t_start >= pr->o.wait_announce_ns) {
			GW_ERR(LOG,
			       "no RARP announce reached %s within %g s: is the VF's port spec "
			       "'%s' and is its link up?",
			       pr->bound, (double)pr->o.wait_announce_ns / 1e9, pr->bound);
			pr->phase = PHASE_DONE;
		}
		break;
	case PHASE_RUNNING:
		if (pr->signals || (pr->o.count && pr->sent >= pr->o.count) ||
		    (pr->o.duration_ns && now - pr->t_announce >= pr->o.duration_ns))
			pr->phase = PHASE_DRAINING;
		break;
	case PHASE_DRAINING:
		/* Every frame is echoed or has timed out (at most 2 s after the last send). */
		if (!pr->outstanding)
			pr->phase = PHASE_DONE;
		break;
	case PHASE_DONE:
		break;
	}
	if (pr->phase == PHASE_DONE)
		pr->t_end = now;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* How long the loop may sleep before something is due. */
static uint64_t sleep_ns(const struct peer *pr, uint64_t now)
{
	uint64_t until = now + 100 * UINT64_C(1000000); /* a signal's backstop */
	if (!pr->o.quiet)
		until = min_u64(until, pr->next_progress);
	if (pr->o.stats_file)
		until = min_u64(until, pr->next_stats);
	if (pr->phase == PHASE_WAITING)
		until = min_u64(until, pr->t_start + pr->o.wait_announce_ns);
	if (pr->phase == PHASE_RUNNING) {
		if (pr->o.duration_ns)
			until = min_u64(until, pr->t_announce + pr->o.duration_ns);
		if (pr->o.rate && pr->outstanding < pr->o.window)
			until = min_u64(until, pr->next_send_at);
	}
	if (pr->outstanding && pr->oldest && pr->oldest <= pr->sent)
		until = min_u64(until, pr->sent_ns[pr->oldest] + ECHO_TIMEOUT_NS);
	return until > now ? until - now : 0;
}

static int setup_signals(struct peer *pr, char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "sigprocmask: %s", strerror(-rc));
		return rc;
	}
	pr->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (pr->sigfd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "signalfd: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void read_signals(struct peer *pr)
{
	struct signalfd_siginfo si;
	while (read(pr->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		pr->signals++;
		GW_INFO(LOG, "%s: %s", strsignal((int)si.ssi_signo),
			pr->signals == 1 ? "no more frames; waiting for the echoes in flight"
					 : "stopping now");
	}
}

static int run(struct peer *pr)
{
	pr->t_start = now_ns();
	pr->next_progress = pr->t_start + PROGRESS_NS;
	pr->next_stats = pr->t_start;
	while (pr->phase != PHASE_DONE) {
		uint64_t now = now_ns();
		expire(pr, now);
		advance_phase(pr, now);
		if (pr->phase == PHASE_DONE)
			break;
		for (unsigned i = 0; i < SEND_BATCH && can_send(pr, now); i++) {
			int rc = send_one(pr, now);
			if (rc == -ENOMEM) {
				GW_ERR(LOG, "out of memory after %" PRIu64 " frames", pr->sent);
				pr->phase = PHASE_DRAINING;
			}
			if (rc < 0)
				break;
		}
		if (pr->port)
			sriov_port_flush(pr->port);
		if (!pr->o.quiet && now >= pr->next_progress) {
			progress(pr, now);
			pr->next_progress += PROGRESS_NS;
			if (pr->next_progress <= now)
				pr->next_progress = now + PROGRESS_NS;
		}
		if (pr->o.stats_file && now >= pr->next_stats) {
			write_stats(pr, now);
			pr->next_stats = now + pr->o.stats_ns;
		}

		/* Still room to send: go round again at once (after a look at the socket). */
		uint64_t ns = can_send(pr, now) ? 0 : sleep_ns(pr, now);
		if (pr->port && ns > PORT_POLL_NS)
			ns = PORT_POLL_NS;
		struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_SEC),
				      .tv_nsec = (long)(ns % NS_PER_SEC)};
		struct pollfd pfd[2] = {
		    {.fd = pr->fd, .events = POLLIN | (pr->blocked_out ? POLLOUT : 0)},
		    {.fd = pr->sigfd, .events = POLLIN},
		};
		int n = ppoll(pfd, 2, &ts, NULL);
		if (n < 0 && errno != EINTR) {
			GW_ERR(LOG, "ppoll: %s", strerror(errno));
			pr->phase = PHASE_DONE;
			break;
		}
		if (pr->port)
			receive_port(pr);
		if (n <= 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			read_signals(pr);
			if (pr->signals > 1)
				pr->phase = PHASE_DONE;
		}
		if (pfd[0].revents & POLLOUT)
			pr->blocked_out = false;
		if (pfd[0].revents & (POLLIN | POLLERR))
			receive_all(pr);
	}
	uint64_t now = now_ns();
	pr->t_end = now;
	expire(pr, now);
	/* An outage that ran to the end closes now. */
	outage_close(pr, now);
	return exit_code(pr);
}

int main(int argc, char **argv)
{
	gw_log_set_ident("godwit-nicpeer");
	struct peer pr = {.fd = -1, .sigfd = -1};
	int rc = parse_opts(argc, argv, &pr.o);
	if (rc)
		return rc;
	if (pr.o.quiet)
		gw_log_set_level(GW_LOG_WARN);

	int ret = EXIT_NO_ANNOUNCE;
	char err[512] = "";
	pr.txbuf = malloc(IGB_MAX_FRAME + VLAN_TAG);
	pr.rxbuf = malloc(RX_BUF);
	if (!pr.txbuf || !pr.rxbuf) {
		GW_ERR(LOG, "out of memory");
		goto out_free;
	}
	if (pr.o.count && seq_reserve(&pr, pr.o.count + 1) < 0) {
		GW_ERR(LOG, "out of memory for %" PRIu64 " frames", pr.o.count);
		goto out_free;
	}
	if (setup_signals(&pr, err, sizeof(err)) < 0) {
		GW_ERR(LOG, "%s", err);
		goto out_free;
	}
	rc = peer_bind(&pr, err, sizeof(err));
	if (rc == -EINVAL) {
		ret = usage_error("%s", err);
		goto out_close_sigfd;
	}
	if (rc < 0) {
		GW_ERR(LOG, "%s", err);
		goto out_close_sigfd;
	}
	if (pr.o.ready_file) {
		char line[sizeof(pr.bound) + 1];
		int len = snprintf(line, sizeof(line), "%s\n", pr.bound);
		rc = write_atomic(pr.o.ready_file, line, (size_t)len);
		if (rc < 0) {
			GW_ERR(LOG, "cannot write the ready file %s: %s", pr.o.ready_file,
			       strerror(-rc));
			goto out_close_fd;
		}
	}
	if (pr.o.vf_mac_given) {
		if (!pr.packet) {
			ret = usage_error("--vf-mac needs a packet:IFNAME or dpdk:DEVARGS port");
			goto out_close_fd;
		}
		/* As if it had announced: the wire address of a MAC on this interface. */
		struct sockaddr_storage ss = {0};
		struct sockaddr_ll *ll = (struct sockaddr_ll *)&ss;
		uint8_t f[12] = {0};
		ll->sll_family = AF_PACKET;
		ll->sll_protocol = htons(GW_NIC_ETHERTYPE); /* as packet_take spells a place */
		ll->sll_ifindex = pr.ifindex;
		ll->sll_halen = 6;
		memcpy(ll->sll_addr, pr.o.vf_mac, 6);
		memcpy(f + 6, pr.o.vf_mac, 6);
		on_announce(&pr, f, &ss, sizeof(*ll));
		pr.announces--; /* none came: "announces" counts the VF's own */
	}
	GW_INFO(LOG, "listening on %s; waiting for the VF's announce", pr.bound);

	ret = run(&pr);
	write_stats(&pr, pr.t_end);
	if (pr.o.json)
		report_json(&pr, pr.t_end, stdout);
	else
		report_human(&pr, pr.t_end, stdout);
	fflush(stdout);

out_close_fd:
	if (pr.port)
		sriov_port_close(pr.port);
	else
		close(pr.fd);
	if (pr.unix_path[0])
		unlink(pr.unix_path);
out_close_sigfd:
	close(pr.sigfd);
out_free:
	free(pr.sent_ns);
	free(pr.sent_rt);
	free(pr.place);
	free(pr.places);
	free(pr.state);
	free(pr.rxbuf);
	free(pr.txbuf);
	return ret;
}
