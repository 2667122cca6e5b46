/* SPDX-License-Identifier: Apache-2.0 */
/* One migration channel: a TCP connection, in clear or under TLS 1.3 keyed by the stream token. */
#ifndef GODWIT_MIG_CHAN_H
#define GODWIT_MIG_CHAN_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The PSK's identity on the wire, and what the derivation mixes in (docs/migration-stream.md). */
#define MIG_TLS_IDENTITY "godwit-mig-v1"
#define MIG_TLS_PSK_LEN	 32

/* The TLS context of one migration's side: the PSK derived from its token. */
struct mig_tls;

/* server: the destination's side. ktls: let the kernel take the record layer where it can. */
int mig_tls_create(const char *token, bool server, bool ktls, struct mig_tls **out);
void mig_tls_free(struct mig_tls *t);
/* HKDF-SHA256 of the token (exposed for the tests): 0 or -EINVAL/-ENOMEM. */
int mig_tls_derive_psk(const char *token, uint8_t psk[MIG_TLS_PSK_LEN]);

struct mig_chan {
	int fd;	  /* non-blocking; every wait is a poll with the timeouts below */
	SSL *ssl; /* NULL: the channel runs in clear */
	/* The kernel encrypts (decrypts) this direction: plain read/write/sendmsg on fd. */
	bool ktls_send, ktls_recv;
	/* A write (read) that makes no progress for this long fails with -ETIMEDOUT; <= 0: no
	 * limit. Set by the owner before the channel is shared between threads. */
	int send_timeout_ms, recv_timeout_ms;
	/* An SSL object takes one call at a time: the reader and a writer of one channel hold
	 * this around each (non-blocking) SSL call, never while they wait. */
	pthread_mutex_t lock;
	/* In clear, pages go by reference through this pipe (chan_splice.c): pipe_cap bytes at
	 * once; 0 when there is none. Used by one thread, the channel's sender or receiver. */
	int pipe[2];
	size_t pipe_cap;
};

void mig_chan_init(struct mig_chan *c);
/* The source's side: takes over fd (connected) and runs the TLS handshake (tls NULL: none)
 * within timeout_ms. 0, or a negative errno with the reason for people in why (the fd is
 * then closed). */
int mig_chan_connect(struct mig_chan *c, int fd, struct mig_tls *tls, int timeout_ms, char *why,
		     size_t n);
/* The destination's side: a server SSL object for fd (admit.c drives its handshake). */
SSL *mig_tls_accept_ssl(struct mig_tls *t, int fd);
/* Takes over fd and ssl (handshake complete, or NULL), as admit.c hands them on. */
void mig_chan_adopt(struct mig_chan *c, int fd, SSL *ssl);
/* Whole writes and reads: 0, -ETIMEDOUT (no progress within the timeout), -ENODATA (the
 * peer closed before n), -EBADMSG (a TLS record failed authentication), or -errno. Writes
 * never raise SIGPIPE. writev consumes iov. */
int mig_chan_write(struct mig_chan *c, const void *p, size_t n);
int mig_chan_writev(struct mig_chan *c, struct iovec *iov, int iovcnt);
int mig_chan_read(struct mig_chan *c, void *p, size_t n);
/* mig_chan_read into iovecs (changed in place): in clear and under kTLS one readv fills as
 * many as the socket holds, so received pages land where they belong without a copy. */
int mig_chan_readv(struct mig_chan *c, struct iovec *iov, int iovcnt);
/* What a channel error means, for messages. */
const char *mig_chan_strerror(int rc);
/* Unblocks every thread waiting on the channel (their calls fail); the fd stays open. */
void mig_chan_shutdown(struct mig_chan *c);
void mig_chan_close(struct mig_chan *c);
/* "TLS 1.3 TLS_AES_128_GCM_SHA256, x25519, kTLS send/receive" or "plaintext". */
void mig_chan_describe(struct mig_chan *c, char *out, size_t n);

/* The reason for the last failed TLS call on this thread, from OpenSSL's error queue, with
 * the cases this protocol makes likely named for people. Clears the queue. */
void mig_tls_reason(bool server, char *out, size_t n);

/* A blocked SIGPIPE for a call that writes through OpenSSL's socket BIO (which uses write(),
 * not MSG_NOSIGNAL): a peer that went away is an error to report, never the end of the
 * VMM. */
struct mig_sigpipe {
	sigset_t old;
	bool pending_before;
};
void mig_sigpipe_block(struct mig_sigpipe *g);
void mig_sigpipe_restore(struct mig_sigpipe *g);

/* Waits for ev on fd until deadline_ms (gw_now_ms scale; 0: forever): 0 or -ETIMEDOUT. */
int mig_chan_wait_fd(int fd, short ev, uint64_t deadline_ms);

/*
 * A read or write's deadline, since its last progress, starts only when it has to wait: the
 * clock is a system call where the kernel does not trust the TSC (in the test hosts, under
 * TCG, an HPET read: 16 % of a destination's perf samples when every call and every partial
 * read took it), and most calls never wait.
 */
#define MIG_DEADLINE_LAZY UINT64_MAX
/* Waits for ev on the channel's fd until *deadline, starting it (timeout_ms from now) if the
 * call has not waited since its last progress (*deadline == MIG_DEADLINE_LAZY). */
int mig_chan_wait(struct mig_chan *c, short ev, uint64_t *deadline, int timeout_ms);
/* mig_chan_writev on the fd itself (in clear, or the kernel's TLS), with sendmsg flags added
 * to MSG_NOSIGNAL (MSG_MORE: more follows). */
int mig_chan_fd_writev(struct mig_chan *c, struct iovec *iov, int iovcnt, int flags);
/* Drops k bytes from the front of iov[0..*iovcnt); returns the new front. */
struct iovec *mig_iov_advance(struct iovec *iov, int *iovcnt, size_t k);

/*
 * Pages by reference, on a channel in clear (chan_splice.c). The source's pages go from guest
 * RAM into the socket without a copy (vmsplice, splice), and the destination's from the socket
 * into RAM's page cache (splice, then hv_vm_ram_splice_in) without a copy into a page cleared
 * first. The source's kernel reads a page when it sends it, not when the batch was built: a page
 * the guest rewrites in between goes with its new bytes, which the batch's hash shows the
 * destination (that asks for it again), as with a page rewritten between hash and writev.
 */
/* The channel's pipe: 0, or -ENOTSUP (under TLS; no pipe) or -errno. Idempotent. */
int mig_chan_pipe_open(struct mig_chan *c);
void mig_chan_pipe_close(struct mig_chan *c);
/* mig_chan_writev of a head (iov[0]) and pages (iov[1..iovcnt), in guest RAM), the pages
 * through the pipe when the channel has one (else, or where the kernel takes no vmsplice,
 * by copy). */
int mig_chan_writev_pages(struct mig_chan *c, struct iovec *iov, int iovcnt);
/* Moves between 1 and max (<= pipe_cap) bytes from the socket into the empty pipe, waiting
 * (recv_timeout_ms) while there are none: how many, or what mig_chan_read returns. */
long mig_chan_splice_in(struct mig_chan *c, size_t max);

#endif
