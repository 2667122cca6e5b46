/* SPDX-License-Identifier: Apache-2.0 */
/* Socket addresses and options shared by the packet ports, the migration channels and tools. */
#ifndef GODWIT_SOCK_H
#define GODWIT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Splits "HOST:PORT" or "[HOST]:PORT" at the last colon (IPv6 literals may go unbracketed):
 * HOST into host (NUL-terminated), *port points at PORT inside s. 0 or -EINVAL. */
int gw_sock_split_host_port(const char *s, char *host, size_t hostlen, const char **port);

/* The first address getaddrinfo(3) gives for host and the numeric port string, of socktype
 * (SOCK_STREAM, SOCK_DGRAM) with extra AI_* flags. 0 or a negative errno: -EHOSTUNREACH when
 * the name does not resolve, -EINVAL for a malformed request, -ENOMEM, -EAGAIN (try again),
 * or the system's errno. When why is not NULL it gets getaddrinfo's own words on failure. */
int gw_sock_resolve(const char *host, const char *port, int socktype, int flags,
		    struct sockaddr_storage *ss, socklen_t *len, const char **why);

/* A unix(7) address for path, and its length. 0, -EINVAL (empty) or -ENAMETOOLONG. */
int gw_sock_unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len);

/* An AF_PACKET raw socket (packet(7)) for every protocol (ETH_P_ALL), bound to the interface
 * ifname, non-blocking and close-on-exec, with the interface in promiscuous mode for as long as
 * the socket is open (PACKET_MR_PROMISC: frames to other MACs, such as a VF's, are seen too).
 * Returns the fd and the interface's index in *ifindex, or a negative errno: -EINVAL (ifname
 * empty or IFNAMSIZ or longer), -ENODEV (no such interface), -EPERM (no CAP_NET_RAW), or the
 * system's errno; *why then names the step that failed. */
int gw_sock_packet_open(const char *ifname, int *ifindex, const char **why);

/* "127.0.0.1:40000", "[::1]:40000", "@0001f" (abstract unix), "/path", "(unbound)", or for
 * AF_PACKET the interface and link address: "ens4 02:00:00:00:00:01". */
void gw_sock_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n);

/* Best effort: both socket buffers to bytes. With force, the SO_*BUFFORCE variants first
 * (they need CAP_NET_ADMIN); the plain ones are capped by net.core.[rw]mem_max. */
void gw_sock_set_buffers(int fd, int bytes, bool force);

#endif
