/* SPDX-License-Identifier: Apache-2.0 */
/* Sockets for the migration channels: no Nagle, whole reads and writes. */
#include "net.h"

#include "godwit/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The buffers are left to the kernel's autotuning, which grows them up to tcp_rmem's and
 * tcp_wmem's maximum (6 and 4 MiB by default). Setting SO_RCVBUF or SO_SNDBUF turns autotuning
 * off and is capped at net.core.rmem_max and wmem_max, 208 KiB by default: asking for 8 MiB
 * gave each channel 416 KiB, and more wake-ups per byte on both sides.
 */
void mig_net_tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	/* Whatever getaddrinfo says, the peer cannot be reached (status.c: UNAVAILABLE). */
	return gw_sock_resolve(host, ps, SOCK_STREAM, 0, ss, len, NULL) ? -EHOSTUNREACH : 0;
}

int mig_net_listen(const char *host, int *out_fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = resolve(host, 0, &ss, &len);
	if (rc)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	mig_net_tune(fd);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*out_fd = fd;
	return 0;
}

int mig_net_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = resolve(host, port, &ss, &len);
	if (rc)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	mig_net_tune(fd);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int pr = poll(&p, 1, timeout_ms);
	int err = 0;
	socklen_t el = sizeof(err);
	if (pr <= 0) {
		close(fd);
		return pr == 0 ? -ETIMEDOUT : -errno;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		close(fd);
		return -err;
	}
	/* Back to blocking: each channel is served by a thread of its own. */
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

int mig_net_accept(int lfd, int timeout_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int pr;
	do {
		pr = poll(&p, 1, timeout_ms);
	} while (pr < 0 && errno == EINTR);
	if (pr == 0)
		return -ETIMEDOUT;
	if (pr < 0)
		return -errno;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	mig_net_tune(fd);
	return fd;
}

int mig_net_writev_full(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		/* MSG_NOSIGNAL: a peer that went away (the other VMM killed, the network cut,
		 * our own shutdown of the channel) is an error to report, never a SIGPIPE,
		 * whose default action would end this whole process and the VM it runs. */
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int mig_net_write_full(int fd, const void *p, size_t n)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	return mig_net_writev_full(fd, &iov, 1);
}

int mig_net_read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		got += (size_t)r;
	}
	return 0;
}
