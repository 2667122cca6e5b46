/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The destination's listener. Whoever connects first used to be taken as the source, so any
 * connection to the port could kill the migration; now a connection is the source only once
 * it proved it knows the stream token (the TLS handshake with the key derived from it, then
 * the token in the hello), and until then it is one of several candidates, each driven by
 * poll with its own deadline. The others are refused, closed and logged.
 */
#include "admit.h"
#include "net.h"

#include "godwit/deadline.h"
#include "godwit/log.h"
#include "godwit/sock.h"

#include <endian.h>
#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS_HANDSHAKE_RECORD 0x16 /* RFC 8446 5.1: ContentType handshake */
#define LOGGED_REFUSALS	     10

enum phase {
	PH_FIRST, /* TLS: the first bytes tell a TLS ClientHello from a hello in clear */
	PH_TLS,	  /* the TLS handshake */
	PH_HELLO, /* reading the 104-byte hello */
};

struct cand {
	int fd;
	SSL *ssl;
	enum phase ph;
	short ev;
	uint64_t deadline;
	size_t got;
	struct mig_hello hello;
	char peer[64];
};

struct admit_run {
	const struct mig_admit *a;
	struct cand c[MIG_ADMIT_SLOTS];
	unsigned nc;
	unsigned refused;
	char last[200];
};

/* Best effort: a refused peer may read why (it is not waited for). */
static void refuse_reply(struct cand *k, enum mig_reply_status st, const char *msg)
{
	struct mig_reply r;
	mig_reply_encode(&r, st, msg);
	if (k->ssl) {
		struct mig_sigpipe g;
		mig_sigpipe_block(&g);
		size_t w;
		SSL_write_ex(k->ssl, &r, sizeof(r), &w);
		mig_sigpipe_restore(&g);
		ERR_clear_error();
	} else {
		ssize_t w = send(k->fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
}

static void cand_close(struct cand *k)
{
	SSL_free(k->ssl);
	if (k->fd >= 0)
		close(k->fd);
	k->ssl = NULL;
	k->fd = -1;
}

static void drop(struct admit_run *r, unsigned i, const char *why)
{
	struct cand *k = &r->c[i];
	/* A flood of connections must not flood the log: the first ones, then a count. */
	if (r->refused < LOGGED_REFUSALS)
		GW_WARN("incoming", "channel %u: refused a connection from %s: %s", r->a->channel,
			k->peer, why);
	r->refused++;
	snprintf(r->last, sizeof(r->last), "%s", why);
	cand_close(k);
	r->c[i] = r->c[--r->nc];
}

/* 0, or -errno when the listener itself failed (shut down: the migration ended). */
static int take(struct admit_run *r, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		/* Gone before we took it, or out of descriptors: the next poll retries, after
		 * a pause in the second case, or it would find the same connection at once. */
		if (errno == EINVAL || errno == EBADF || errno == ENOTSOCK)
			return -errno;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			usleep(100 * 1000);
		return 0;
	}
	struct cand *k = &r->c[r->nc++];
	*k = (struct cand){.fd = fd, .ph = r->a->tls ? PH_FIRST : PH_HELLO, .ev = POLLIN};
	k->deadline = gw_now_ms() + (uint64_t)(r->a->handshake_ms > 0 ? r->a->handshake_ms : 10000);
	gw_sock_addr_format((struct sockaddr *)&ss, len, k->peer, sizeof(k->peer));
	mig_net_tune(fd);
	return 0;
}

/* The hello is in: 0 when it is the source's, else the refusal given. */
static int check(struct admit_run *r, struct cand *k, char *why, size_t n)
{
	if (mig_hello_check(&k->hello) == -EBADMSG) {
		snprintf(why, n, "not a godwit migration stream (bad magic or CRC)");
		refuse_reply(k, MIG_REPLY_MALFORMED, why);
		return -EBADMSG;
	}
	/* Constant-time compare. A hello of another version that passed the CRC has this
	 * version's layout: its token is where ours is, and its version is refused later. */
	unsigned diff = 0;
	for (unsigned i = 0; i < MIG_TOKEN_LEN; i++)
		diff |= (unsigned)(k->hello.token[i] ^ r->a->token[i]);
	if (diff) {
		snprintf(why, n, "wrong stream token on channel %u", r->a->channel);
		refuse_reply(k, MIG_REPLY_TOKEN, why);
		return -EACCES;
	}
	return 0;
}

/* A connection that speaks in clear to a TLS listener: a godwit source without TLS is told
 * so, anything else is dropped. 0: it is a TLS ClientHello. */
static int first_bytes(struct cand *k, char *why, size_t n)
{
	uint8_t b[4];
	ssize_t got = recv(k->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return -EAGAIN;
	if (got <= 0) {
		snprintf(why, n, "closed before its handshake");
		return -ENODATA;
	}
	if (b[0] == TLS_HANDSHAKE_RECORD)
		return 0;
	uint32_t magic;
	memcpy(&magic, b, sizeof(magic));
	if (got == 4 && le32toh(magic) == MIG_STREAM_MAGIC) {
		snprintf(why, n,
			 "a godwit source without TLS: this destination takes the stream "
			 "over TLS only");
		/* Its hello is read first: a close with unread bytes resets the connection,
		 * and the reset could overtake the reply. */
		ssize_t rd = recv(k->fd, &k->hello, sizeof(k->hello), MSG_DONTWAIT);
		(void)rd;
		refuse_reply(k, MIG_REPLY_TLS, why);
		return -EPROTO;
	}
	snprintf(why, n, "not a TLS handshake");
	return -EPROTO;
}

/* Reads what there is of the hello: 1 complete, 0 waiting (k->ev), -1 the peer went (why). */
static int read_hello(struct cand *k, char *why, size_t n)
{
	while (k->got < sizeof(k->hello)) {
		uint8_t *dst = (uint8_t *)&k->hello + k->got;
		size_t want = sizeof(k->hello) - k->got;
		if (k->ssl) {
			size_t got = 0;
			ERR_clear_error();
			if (SSL_read_ex(k->ssl, dst, want, &got)) {
				k->got += got;
				continue;
			}
			int err = SSL_get_error(k->ssl, 0);
			ERR_clear_error();
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				k->ev = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return 0;
			}
		} else {
			ssize_t got = recv(k->fd, dst, want, MSG_DONTWAIT);
			if (got > 0) {
				k->got += (size_t)got;
				continue;
			}
			if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
				k->ev = POLLIN;
				return 0;
			}
		}
		snprintf(why, n, "closed before its hello was complete (%zu of %zu bytes)", k->got,
			 sizeof(k->hello));
		return -1;
	}
	return 1;
}

/* Moves a candidate along: 1 admitted, 0 waiting (k->ev), -1 dropped (why). */
static int step(struct admit_run *r, struct cand *k, char *why, size_t n)
{
	int rc;
	if (k->ph == PH_FIRST) {
		rc = first_bytes(k, why, n);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return -1;
		k->ssl = mig_tls_accept_ssl(r->a->tls, k->fd);
		if (!k->ssl) {
			snprintf(why, n, "cannot set up TLS: out of memory");
			return -1;
		}
		k->ph = PH_TLS;
	}
	if (k->ph == PH_TLS) {
		struct mig_sigpipe g;
		mig_sigpipe_block(&g);
		ERR_clear_error();
		int hr = SSL_do_handshake(k->ssl);
		int err = hr == 1 ? SSL_ERROR_NONE : SSL_get_error(k->ssl, hr);
		if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ &&
		    err != SSL_ERROR_WANT_WRITE)
			mig_tls_reason(true, why, n);
		mig_sigpipe_restore(&g);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			k->ev = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
			return 0;
		}
		if (err != SSL_ERROR_NONE)
			return -1;
		if (!SSL_session_reused(k->ssl)) {
			snprintf(why, n, "the handshake did not use this migration's key");
			return -1;
		}
		k->ph = PH_HELLO;
		k->ev = POLLIN;
	}
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	rc = read_hello(k, why, n);
	mig_sigpipe_restore(&g);
	if (rc <= 0)
		return rc;
	return check(r, k, why, n) == 0 ? 1 : -1;
}

int mig_admit_source(int lfd, const struct mig_admit *a, int *fd, SSL **ssl,
		     struct mig_hello *hello, char *why, size_t n)
{
	struct admit_run r = {.a = a};
	uint64_t end = gw_now_ms() + (uint64_t)(a->timeout_ms > 0 ? a->timeout_ms : 0);
	int rc = -ETIMEDOUT;
	for (;;) {
		uint64_t now = gw_now_ms();
		for (unsigned i = 0; i < r.nc;) {
			if (now >= r.c[i].deadline) {
				drop(&r, i, "no handshake within its time");
				continue;
			}
			i++;
		}
		if (now >= end)
			break;
		struct pollfd p[MIG_ADMIT_SLOTS + 1];
		uint64_t wake = end;
		for (unsigned i = 0; i < r.nc; i++) {
			p[i] = (struct pollfd){.fd = r.c[i].fd, .events = r.c[i].ev};
			if (r.c[i].deadline < wake)
				wake = r.c[i].deadline;
		}
		/* A full table leaves the rest in the listen queue until a slot frees. */
		unsigned nc0 = r.nc, np = r.nc;
		bool listening = r.nc < MIG_ADMIT_SLOTS;
		if (listening)
			p[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		int pr = poll(p, np, (int)(wake - now));
		if (pr < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (pr <= 0)
			continue;
		/* A listener that was shut down (the migration ended) reports an error. */
		if (listening && (p[nc0].revents & (POLLERR | POLLNVAL))) {
			rc = -ECANCELED;
			break;
		}
		bool admitted = false;
		/* Candidates first, from the last: a drop moves the last one into its slot,
		 * which was then already served. */
		for (unsigned i = nc0; i-- > 0 && !admitted;) {
			if (!p[i].revents)
				continue;
			char reason[200] = "";
			int s = step(&r, &r.c[i], reason, sizeof(reason));
			if (s < 0) {
				drop(&r, i, reason);
			} else if (s > 0) {
				*hello = r.c[i].hello;
				*fd = r.c[i].fd;
				*ssl = r.c[i].ssl;
				r.c[i] = r.c[--r.nc];
				admitted = true;
			}
		}
		if (admitted) {
			rc = 0;
			break;
		}
		if (listening && (p[nc0].revents & (POLLIN | POLLHUP)) && r.nc < MIG_ADMIT_SLOTS) {
			rc = take(&r, lfd);
			if (rc)
				break;
			rc = -ETIMEDOUT;
		}
	}
	for (unsigned i = 0; i < r.nc; i++) {
		GW_WARN("incoming", "channel %u: closed a connection from %s: %s", a->channel,
			r.c[i].peer, rc == 0 ? "the source arrived first" : "the wait ended");
		cand_close(&r.c[i]);
	}
	if (r.refused > LOGGED_REFUSALS)
		GW_WARN("incoming", "channel %u: refused %u connections in all", a->channel,
			r.refused);
	if (rc == -ETIMEDOUT) {
		if (r.refused)
			snprintf(why, n, "refused %u connection(s); the last: %s", r.refused,
				 r.last);
		else
			snprintf(why, n, "nobody connected");
	}
	return rc;
}
