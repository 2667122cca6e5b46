/* SPDX-License-Identifier: Apache-2.0 */
/* Packet ports: carry an emulated function's Ethernet frames over UDP, unix datagrams, a TAP, a
 * network interface (AF_PACKET) or a DPDK ethdev port (port_dpdk.c). */
#include "godwit/sriov_port.h"

#include "port_dpdk.h"

#include "godwit/parse.h"
#include "godwit/sock.h"

#include "godwit/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PORT_MIN_FRAME 14u   /* an Ethernet header (IEEE 802.3 clause 3.1.1, FCS not carried) */
#define PORT_MAX_FRAME 9728u /* the 82576's largest frame (IGB_MAX_FRAME) */
#define PORT_SOCKBUF   (1 << 20)
#define PORT_TAP_SPILL 65536u /* a TAP can hand us anything up to its MTU (64 KiB on lo-like) */
/* Frames leaving the interface (PACKET_OUTGOING) one recv on a packet port passes over before
 * it says -EAGAIN, so that a busy interface cannot hold the caller; poll still reports the rest. */
#define PORT_PACKET_SKIP 256u

/* RFC 903 (RARP) on Ethernet: 14-byte header plus the 28-byte ARP-format body, padded to the
 * 60-byte minimum frame (FCS not carried). */
#define RARP_ETHERTYPE	    0x8035u
#define RARP_FRAME_LEN	    60u
#define RARP_OP_REQUEST_REV 3u

enum port_kind {
	PORT_NONE,
	PORT_UDP,
	PORT_UNIX,
	PORT_TAP,
	PORT_PACKET,
	PORT_DPDK,
};

struct sriov_port {
	enum port_kind kind;
	int fd;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int ifindex; /* PORT_PACKET: the interface frames go out on */
	struct port_dpdk *dpdk;
	/* TAP reads can be longer than the caller's buffer: the rest lands here so that a
	 * truncation can be seen (only the receiving thread touches it). */
	uint8_t *spill;
	char desc[192];
	struct sriov_port_stats stats; /* updated with __atomic builtins */
};

static void stat_add(uint64_t *counter, uint64_t v)
{
	__atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
}

static int open_udp(struct sriov_port *p, const char *arg, char *err, size_t errlen)
{
	char host[256];
	const char *portstr;
	if (gw_sock_split_host_port(arg, host, sizeof(host), &portstr) < 0) {
		gw_say(err, errlen, "udp port spec wants udp:HOST:PORT, got \"udp:%s\"", arg);
		return -EINVAL;
	}
	uint64_t portnum;
	if (gw_parse_u64(portstr, 1, 65535, &portnum) < 0) {
		gw_say(err, errlen, "udp port \"%s\" is not a number in 1..65535", portstr);
		return -EINVAL;
	}

	const char *why = "";
	int rc = gw_sock_resolve(host, portstr, SOCK_DGRAM, 0, &p->peer, &p->peer_len, &why);
	if (rc < 0) {
		gw_say(err, errlen, "cannot resolve udp host \"%s\": %s", host, why);
		/* A name that does not resolve is a bad spec, like a malformed one. */
		return rc == -EHOSTUNREACH ? -EINVAL : rc;
	}

	int fd = socket(p->peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		rc = -errno;
		gw_say(err, errlen, "udp socket: %s", strerror(-rc));
		return rc;
	}
	/* A burst of frames during a migration must not overflow. */
	gw_sock_set_buffers(fd, PORT_SOCKBUF, true);

	/* No connect(), which would report ICMP errors of earlier frames on later calls: frames go
	 * out with sendto, and only those from the peer's address and port are received
	 * (recv_udp). Bind an ephemeral port on the address family's loopback when the peer is
	 * local, so nothing is exposed beyond the host, else on any address. */
	struct sockaddr_storage local = {.ss_family = p->peer.ss_family};
	socklen_t local_len;
	bool loop = addr_is_loopback((const struct sockaddr *)&p->peer);
	if (p->peer.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&local;
		in->sin_addr.s_addr = htonl(loop ? INADDR_LOOPBACK : INADDR_ANY);
		local_len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
		const struct sockaddr_in6 *peer6 = (const struct sockaddr_in6 *)&p->peer;
		if (loop && IN6_IS_ADDR_V4MAPPED(&peer6->sin6_addr))
			in6->sin6_addr = peer6->sin6_addr;
		else
			in6->sin6_addr = loop ? in6addr_loopback : in6addr_any;
		local_len = sizeof(*in6);
	}
	if (bind(fd, (struct sockaddr *)&local, local_len) < 0) {
		rc = -errno;
		gw_say(err, errlen, "udp bind: %s", strerror(-rc));
		goto err_close_fd;
	}
	local_len = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
		rc = -errno;
		gw_say(err, errlen, "udp getsockname: %s", strerror(-rc));
		goto err_close_fd;
	}
	char a[80], b[80];
	gw_sock_addr_format((struct sockaddr *)&local, local_len, a, sizeof(a));
	gw_sock_addr_format((struct sockaddr *)&p->peer, p->peer_len, b, sizeof(b));
	snprintf(p->desc, sizeof(p->desc), "udp %s -> %s", a, b);
	p->fd = fd;
	return 0;

err_close_fd:
	close(fd);
	return rc;
}

static int open_unix(struct sriov_port *p, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&p->peer;
	int rc = gw_sock_unix_addr(path, un, &p->peer_len);
	if (rc == -EINVAL) {
		gw_say(err, errlen, "unix port spec wants unix:PATH");
		return -EINVAL;
	}
	if (rc < 0) {
		gw_say(err, errlen, "unix socket path is %zu bytes, the limit is %zu", strlen(path),
		       sizeof(un->sun_path) - 1);
		return -EINVAL;
	}

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		gw_say(err, errlen, "unix socket: %s", strerror(-rc));
		return rc;
	}
	gw_sock_set_buffers(fd, PORT_SOCKBUF, true);
	/* Autobind (unix(7)): an address of just the family gets a unique abstract name, so
	 * the peer has somewhere to send its replies. */
	struct sockaddr_un local = {.sun_family = AF_UNIX};
	if (bind(fd, (struct sockaddr *)&local, sizeof(sa_family_t)) < 0) {
		rc = -errno;
		gw_say(err, errlen, "unix autobind: %s", strerror(-rc));
		goto err_close_fd;
	}
	socklen_t local_len = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) {
		rc = -errno;
		gw_say(err, errlen, "unix getsockname: %s", strerror(-rc));
		goto err_close_fd;
	}
	char a[sizeof(local.sun_path) + 2];
	gw_sock_addr_format((struct sockaddr *)&local, local_len, a, sizeof(a));
	snprintf(p->desc, sizeof(p->desc), "unix %s -> %s", a, path);
	p->fd = fd;
	return 0;

err_close_fd:
	close(fd);
	return rc;
}

static int open_tap(struct sriov_port *p, const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);
	if (n == 0 || n >= IFNAMSIZ) {
		gw_say(err, errlen, "tap port spec wants tap:NAME with 1..%d characters",
		       IFNAMSIZ - 1);
		return -EINVAL;
	}
	int rc;
	p->spill = malloc(PORT_TAP_SPILL);
	if (!p->spill) {
		gw_say(err, errlen, "tap %s: out of memory", name);
		return -ENOMEM;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		gw_say(err, errlen, "tap %s: cannot open /dev/net/tun: %s", name, strerror(-rc));
		goto err_free_spill;
	}
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	memcpy(ifr.ifr_name, name, n);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		gw_say(err, errlen, "tap %s: TUNSETIFF: %s%s", name, strerror(-rc),
		       rc == -EPERM
			   ? " (needs CAP_NET_ADMIN or a persistent tap owned by this user)"
			   : "");
		goto err_close_fd;
	}
	/* TUNSETIFF writes back the real name (a "%d" in NAME is expanded by the kernel). */
	snprintf(p->desc, sizeof(p->desc), "tap %.*s", IFNAMSIZ, ifr.ifr_name);
	p->fd = fd;
	return 0;

err_close_fd:
	close(fd);
err_free_spill:
	free(p->spill);
	p->spill = NULL;
	return rc;
}

static int open_packet(struct sriov_port *p, const char *name, char *err, size_t errlen)
{
	const char *why = "";
	int fd = gw_sock_packet_open(name, &p->ifindex, &why);
	if (fd == -EINVAL) {
		gw_say(err, errlen, "packet port spec wants packet:IFNAME with 1..%d characters",
		       IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (fd < 0) {
		gw_say(err, errlen, "packet %s: %s%s%s%s", name, why, fd == -ENODEV ? "" : ": ",
		       fd == -ENODEV ? "" : strerror(-fd),
		       fd == -EPERM ? " (needs CAP_NET_RAW)" : "");
		return fd;
	}
	gw_sock_set_buffers(fd, PORT_SOCKBUF, true);
	snprintf(p->desc, sizeof(p->desc), "packet %s", name);
	p->fd = fd;
	return 0;
}

int sriov_port_open(const char *spec, struct sriov_port **out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!spec || !out) {
		gw_say(err, errlen, "no port spec");
		return -EINVAL;
	}
	struct sriov_port *p = calloc(1, sizeof(*p));
	if (!p) {
		gw_say(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->fd = -1;
	int rc;
	if (strcmp(spec, "none") == 0) {
		p->kind = PORT_NONE;
		snprintf(p->desc, sizeof(p->desc), "none");
		rc = 0;
	} else if (strncmp(spec, "udp:", 4) == 0) {
		p->kind = PORT_UDP;
		rc = open_udp(p, spec + 4, err, errlen);
	} else if (strncmp(spec, "unix:", 5) == 0) {
		p->kind = PORT_UNIX;
		rc = open_unix(p, spec + 5, err, errlen);
	} else if (strncmp(spec, "tap:", 4) == 0) {
		p->kind = PORT_TAP;
		rc = open_tap(p, spec + 4, err, errlen);
	} else if (strncmp(spec, "packet:", 7) == 0) {
		p->kind = PORT_PACKET;
		rc = open_packet(p, spec + 7, err, errlen);
	} else if (strncmp(spec, "dpdk:", 5) == 0) {
		p->kind = PORT_DPDK;
		rc = port_dpdk_open(spec + 5, &p->dpdk, p->desc, sizeof(p->desc), err, errlen);
	} else {
		gw_say(err, errlen,
		       "unknown port spec \"%s\" (want none, udp:HOST:PORT, unix:PATH, tap:NAME, "
		       "packet:IFNAME or dpdk:DEVICE[,KEY=VALUE...])",
		       spec);
		rc = -EINVAL;
	}
	if (rc < 0)
		goto err_free_port;
	*out = p;
	return 0;

err_free_port:
	free(p);
	return rc;
}

void sriov_port_close(struct sriov_port *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	port_dpdk_close(p->dpdk);
	free(p->spill);
	free(p);
}

int sriov_port_fd(const struct sriov_port *p)
{
	return p->fd;
}

bool sriov_port_polled(const struct sriov_port *p)
{
	return p->kind == PORT_DPDK;
}

void sriov_port_flush(struct sriov_port *p)
{
	if (p->kind == PORT_DPDK)
		port_dpdk_flush(p->dpdk, &p->stats);
}

int sriov_port_send(struct sriov_port *p, const void *frame, size_t len)
{
	if (len < PORT_MIN_FRAME || len > PORT_MAX_FRAME)
		return -EMSGSIZE;
	if (p->kind == PORT_NONE) {
		stat_add(&p->stats.tx_dropped, 1);
		return 0;
	}
	if (p->kind == PORT_DPDK)
		return port_dpdk_send(p->dpdk, frame, len, &p->stats);
	ssize_t n;
	do {
		if (p->kind == PORT_TAP) {
			n = write(p->fd, frame, len);
		} else if (p->kind == PORT_PACKET) {
			/* The frame's own ethertype and destination (packet(7)): what the kernel
			 * would have parsed from the header anyway. */
			const uint8_t *f = frame;
			struct sockaddr_ll to = {
			    .sll_family = AF_PACKET,
			    .sll_protocol = htons((uint16_t)(f[12] << 8 | f[13])),
			    .sll_ifindex = p->ifindex,
			    .sll_halen = 6,
			};
			memcpy(to.sll_addr, f, 6);
			n = sendto(p->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)&to, sizeof(to));
		} else {
			n = sendto(p->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)&p->peer, p->peer_len);
		}
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* The frame is gone either way: a wire drops what it cannot carry. */
		int rc = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		stat_add(&p->stats.tx_dropped, 1);
		return rc;
	}
	stat_add(&p->stats.tx_frames, 1);
	stat_add(&p->stats.tx_bytes, len);
	return 0;
}

/*
 * One frame that came in on a packet port's interface, as recv(2) with MSG_TRUNC. A packet
 * socket also sees every frame that leaves the interface (PACKET_OUTGOING, packet(7)): those
 * of other sockets, such as another port on the same interface, are passed over. The kernel
 * never hands a socket the outgoing copy of its own frames, but on a loopback interface every
 * frame sent also comes back in, to every socket on it, its sender's included.
 */
static ssize_t recv_incoming(int fd, void *buf, size_t cap)
{
	for (unsigned i = 0; i < PORT_PACKET_SKIP; i++) {
		struct sockaddr_ll from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fromlen);
		if (n < 0 || from.sll_pkttype != PACKET_OUTGOING)
			return n;
	}
	errno = EAGAIN;
	return -1;
}

static bool from_peer(const struct sriov_port *p, const struct sockaddr_storage *from,
		      socklen_t fromlen)
{
	if (from->ss_family != p->peer.ss_family)
		return false;
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)from, *b = (const void *)&p->peer;
		return fromlen >= sizeof(*a) && a->sin_port == b->sin_port &&
		       a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)from, *b = (const void *)&p->peer;
	return fromlen >= sizeof(*a) && a->sin6_port == b->sin6_port &&
	       !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) &&
	       (!b->sin6_scope_id || a->sin6_scope_id == b->sin6_scope_id);
}

/*
 * One datagram from the uplink's peer, as recv(2) with MSG_TRUNC. The socket is bound, not
 * connected (a connected UDP socket reports ICMP errors of earlier sends on later calls), so
 * anyone who can reach its port can send to it: what comes from another address or port is no
 * frame of the wire, and is dropped and counted (rx_foreign).
 */
static ssize_t recv_udp(struct sriov_port *p, void *buf, size_t cap)
{
	for (unsigned i = 0; i < PORT_PACKET_SKIP; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(p->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fromlen);
		if (n < 0 || from_peer(p, &from, fromlen))
			return n;
		stat_add(&p->stats.rx_foreign, 1);
	}
	errno = EAGAIN;
	return -1;
}

ssize_t sriov_port_recv(struct sriov_port *p, void *buf, size_t cap)
{
	if (p->kind == PORT_NONE)
		return -EAGAIN;
	ssize_t n;
	do {
		if (p->kind == PORT_TAP) {
			struct iovec iov[2] = {
			    {.iov_base = buf, .iov_len = cap},
			    {.iov_base = p->spill, .iov_len = PORT_TAP_SPILL},
			};
			n = readv(p->fd, iov, 2);
		} else if (p->kind == PORT_PACKET) {
			n = recv_incoming(p->fd, buf, cap);
		} else if (p->kind == PORT_UDP) {
			n = recv_udp(p, buf, cap);
		} else if (p->kind == PORT_DPDK) {
			n = port_dpdk_recv(p->dpdk, buf, cap);
			if (n < 0) /* never EINTR: the loop ends */
				errno = (int)-n;
		} else {
			/* MSG_TRUNC: the datagram's real length, so truncation is visible. */
			n = recv(p->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
		}
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if ((size_t)n > cap || n < (ssize_t)PORT_MIN_FRAME || n > (ssize_t)PORT_MAX_FRAME) {
		stat_add(&p->stats.rx_errors, 1);
		return -EMSGSIZE;
	}
	stat_add(&p->stats.rx_frames, 1);
	stat_add(&p->stats.rx_bytes, (uint64_t)n);
	return n;
}

int sriov_port_announce(struct sriov_port *p, const uint8_t mac[6])
{
	uint8_t f[RARP_FRAME_LEN] = {0};
	memset(f, 0xFF, 6); /* broadcast: every switch port learns where the MAC lives */
	memcpy(f + 6, mac, 6);
	f[12] = RARP_ETHERTYPE >> 8;
	f[13] = RARP_ETHERTYPE & 0xFF;
	uint8_t *r = f + 14;
	r[0] = 0; /* hardware type 1: Ethernet */
	r[1] = 1;
	r[2] = 0x08; /* protocol type 0x0800: IPv4 */
	r[3] = 0x00;
	r[4] = 6; /* hardware address length */
	r[5] = 4; /* protocol address length */
	r[6] = 0;
	r[7] = RARP_OP_REQUEST_REV;
	memcpy(r + 8, mac, 6);	/* sender hardware address; sender protocol address 0 */
	memcpy(r + 18, mac, 6); /* target hardware address; target protocol address 0 */
	int rc = sriov_port_send(p, f, sizeof(f));
	sriov_port_flush(p);
	return rc;
}

const char *sriov_port_describe(const struct sriov_port *p)
{
	return p->desc;
}

void sriov_port_stats(const struct sriov_port *p, struct sriov_port_stats *out)
{
	out->tx_frames = __atomic_load_n(&p->stats.tx_frames, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&p->stats.tx_bytes, __ATOMIC_RELAXED);
	out->tx_dropped = __atomic_load_n(&p->stats.tx_dropped, __ATOMIC_RELAXED);
	out->rx_frames = __atomic_load_n(&p->stats.rx_frames, __ATOMIC_RELAXED);
	out->rx_bytes = __atomic_load_n(&p->stats.rx_bytes, __ATOMIC_RELAXED);
	out->rx_errors = __atomic_load_n(&p->stats.rx_errors, __ATOMIC_RELAXED);
	out->rx_foreign = __atomic_load_n(&p->stats.rx_foreign, __ATOMIC_RELAXED);
}
