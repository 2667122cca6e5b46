/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pages by reference on a channel in clear (chan.h): a pipe between guest RAM and the socket.
 * The source hands the kernel its pages (vmsplice takes references, splice gives them to the
 * socket), so its thread copies nothing. The destination moves the socket's bytes into the
 * pipe (references again) and hv_vm_ram_splice_in copies them into RAM's page cache, which
 * needs no page cleared and mapped first. In a test host under TCG a loopback transfer of 512
 * MiB into a memfd took 2.5 s of CPU per receiving thread by readv, 1.5 s by splice.
 */
#include "chan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_WANT (1u << 20) /* a 256-page batch at once; the default limit for a user */
#define PAGE	  4096u

int mig_chan_pipe_open(struct mig_chan *c)
{
	if (c->ssl)
		return -ENOTSUP;
	if (c->pipe_cap)
		return 0;
	/* Non-blocking, so that no call on it holds the thread. The callers keep it empty
	 * between calls (the source gives the socket all it vmspliced, the destination moves all
	 * it spliced into RAM before the next splice), so an EAGAIN is the socket's, which its
	 * poll waits out; an error that leaves bytes in it fails the stream. */
	if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		c->pipe[0] = c->pipe[1] = -1;
		return -errno;
	}
	int cap = fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_WANT);
	if (cap < 0)
		cap = fcntl(c->pipe[1], F_GETPIPE_SZ); /* above /proc/sys/fs/pipe-max-size */
	if (cap < (int)PAGE) {
		int rc = cap < 0 ? -errno : -ENOTSUP;
		mig_chan_pipe_close(c);
		return rc;
	}
	c->pipe_cap = (size_t)cap;
	return 0;
}

void mig_chan_pipe_close(struct mig_chan *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->pipe[i] >= 0)
			close(c->pipe[i]);
		c->pipe[i] = -1;
	}
	c->pipe_cap = 0;
}

/* Gives the socket the n bytes in the pipe. */
static int pipe_to_socket(struct mig_chan *c, size_t n, bool more, uint64_t *deadline)
{
	while (n) {
		ssize_t k = splice(c->pipe[0], NULL, c->fd, NULL, n,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0));
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0)
			return -EIO; /* the pipe held less than n */
		if (k < 0 && errno != EAGAIN)
			return -errno;
		if (k < 0) {
			int rc = mig_chan_wait(c, POLLOUT, deadline, c->send_timeout_ms);
			if (rc)
				return rc;
			continue;
		}
		*deadline = MIG_DEADLINE_LAZY;
		n -= (size_t)k;
	}
	return 0;
}

/* The pages of iov[0..iovcnt) by reference, a pipe's worth at a time. 1 when the kernel
 * takes no vmsplice here and nothing was sent (the caller copies instead), 0, or -errno. */
static int send_pages(struct mig_chan *c, struct iovec *iov, int iovcnt, uint64_t *deadline)
{
	bool first = true;
	while (iovcnt > 0) {
		int m = 0;
		size_t bytes = 0;
		while (m < iovcnt && m < IOV_MAX && bytes + iov[m].iov_len <= c->pipe_cap)
			bytes += iov[m++].iov_len;
		if (m == 0)
			m = 1; /* larger than the pipe: vmsplice takes what fits */
		ssize_t k = vmsplice(c->pipe[1], iov, (unsigned long)m, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return first && (errno == EINVAL || errno == ENOSYS) ? 1 : -errno;
		if (k == 0)
			return -EIO;
		first = false;
		iov = mig_iov_advance(iov, &iovcnt, (size_t)k);
		int rc = pipe_to_socket(c, (size_t)k, iovcnt > 0, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

int mig_chan_writev_pages(struct mig_chan *c, struct iovec *iov, int iovcnt)
{
	if (!c->pipe_cap || iovcnt < 2)
		return mig_chan_writev(c, iov, iovcnt);
	int rc = mig_chan_fd_writev(c, iov, 1, MSG_MORE); /* the head */
	if (rc)
		return rc;
	uint64_t deadline = MIG_DEADLINE_LAZY;
	/* splice into a socket sends without MSG_NOSIGNAL: a peer that went away must be an
	 * error here, never a SIGPIPE that ends the VMM */
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	rc = send_pages(c, iov + 1, iovcnt - 1, &deadline);
	mig_sigpipe_restore(&g);
	if (rc == 1) {
		mig_chan_pipe_close(c); /* and by copy from now on */
		return mig_chan_writev(c, iov + 1, iovcnt - 1);
	}
	return rc;
}

long mig_chan_splice_in(struct mig_chan *c, size_t max)
{
	uint64_t deadline = MIG_DEADLINE_LAZY;
	if (max > c->pipe_cap)
		max = c->pipe_cap;
	for (;;) {
		ssize_t k =
		    splice(c->fd, NULL, c->pipe[1], NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (k > 0)
			return (long)k;
		if (k == 0)
			return -ENODATA;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int rc = mig_chan_wait(c, POLLIN, &deadline, c->recv_timeout_ms);
		if (rc)
			return rc;
	}
}
