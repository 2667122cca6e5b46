/* SPDX-License-Identifier: Apache-2.0 */
/* Socket addresses and options: one parser, resolver and formatter for every module. */
#include "godwit/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int gw_sock_split_host_port(const char *s, char *host, size_t hostlen, const char **port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon)
		return -EINVAL;
	const char *h = s;
	size_t n = (size_t)(colon - s);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

int gw_sock_resolve(const char *host, const char *port, int socktype, int flags,
		    struct sockaddr_storage *ss, socklen_t *len, const char **why)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = socktype,
	    .ai_flags = AI_NUMERICSERV | flags,
	};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		int e = errno;
		if (why)
			*why = rc == EAI_SYSTEM ? strerror(e) : gai_strerror(rc);
		switch (rc) {
		case EAI_SYSTEM:
			return e ? -e : -EIO;
		case EAI_MEMORY:
			return -ENOMEM;
		case EAI_AGAIN:
			return -EAGAIN;
		case EAI_BADFLAGS:
		case EAI_FAMILY:
		case EAI_SERVICE:
		case EAI_SOCKTYPE:
			return -EINVAL;
		default:
			return -EHOSTUNREACH;
		}
	}
	if (ai->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(ai);
		if (why)
			*why = "unexpected address size";
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int gw_sock_unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len)
{
	size_t n = strlen(path);
	if (n == 0)
		return -EINVAL;
	if (n >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int gw_sock_packet_open(const char *ifname, int *ifindex, const char **why)
{
	size_t n = ifname ? strlen(ifname) : 0;
	if (n == 0 || n >= IFNAMSIZ) {
		*why = "interface name must have 1..15 characters";
		return -EINVAL;
	}
	unsigned idx = if_nametoindex(ifname);
	if (idx == 0) {
		int rc = errno == ENXIO || errno == ENODEV || errno == 0 ? -ENODEV : -errno;
		*why = rc == -ENODEV ? "no such network interface" : "if_nametoindex";
		return rc;
	}
	/* Protocol 0: the socket takes in nothing until bind() names the interface, so no frame
	 * from another interface is ever queued (packet(7)). */
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = "socket(AF_PACKET)";
		return -errno;
	}
	int rc;
	struct sockaddr_ll sll = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(ETH_P_ALL),
	    .sll_ifindex = (int)idx,
	};
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = -errno;
		*why = "bind";
		goto err_close_fd;
	}
	struct packet_mreq mr = {.mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC};
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		rc = -errno;
		*why = "PACKET_ADD_MEMBERSHIP (promiscuous mode)";
		goto err_close_fd;
	}
	*ifindex = (int)idx;
	return fd;

err_close_fd:
	close(fd);
	return rc;
}

void gw_sock_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
		return;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t plen = len > off ? len - off : 0;
		if (plen == 0)
			snprintf(out, n, "(unbound)");
		else if (un->sun_path[0] == '\0') /* abstract: unix(7) */
			snprintf(out, n, "@%.*s", (int)(plen - 1), un->sun_path + 1);
		else
			snprintf(out, n, "%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
		return;
	}
	case AF_PACKET: {
		const struct sockaddr_ll *ll = (const struct sockaddr_ll *)sa;
		char ifname[IF_NAMESIZE];
		if (!if_indextoname((unsigned)ll->sll_ifindex, ifname))
			snprintf(ifname, sizeof(ifname), "if%d", ll->sll_ifindex);
		const unsigned char *a = ll->sll_addr;
		if (ll->sll_halen == 6)
			snprintf(out, n, "%s %02x:%02x:%02x:%02x:%02x:%02x", ifname, a[0], a[1],
				 a[2], a[3], a[4], a[5]);
		else
			snprintf(out, n, "%s", ifname);
		return;
	}
	default:
		snprintf(out, n, "(family %d)", sa->sa_family);
	}
}

void gw_sock_set_buffers(int fd, int bytes, bool force)
{
	if (!force || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (!force || setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}
