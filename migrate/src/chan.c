/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The migration channel: TLS 1.3 with an external PSK derived from the stream token (no
 * certificates: a peer that completes the handshake knows the token), psk_dhe_ke for forward
 * secrecy, AES-128-GCM so that the kernel can take the record layer (kTLS). A direction the
 * kernel took is read and written on the fd itself, so the copy stays in the kernel; the
 * other goes through SSL_read/SSL_write. Sockets are non-blocking and every wait is a poll,
 * which bounds it (the stall timeout) and lets a reader and a writer share one SSL object.
 */
#include "chan.h"
#include "ktls_rx.h"

#include "godwit/deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* HKDF inputs: the salt names the protocol and its version, the info what the key is for. */
#define PSK_SALT "godwit-mig-v1"
#define PSK_INFO "godwit migration stream TLS 1.3 PSK"
/* TLS_AES_128_GCM_SHA256 (RFC 8446 B.4): its hash is the PSK's, and kTLS takes it. */
static const unsigned char PSK_CIPHER[2] = {0x13, 0x01};
/* A full TLS record's plaintext: what small iovecs are gathered into before SSL_write. */
#define STAGE_BYTES 16384u
/* OpenSSL's receive buffer: room for several records, so that one read(2) brings them
 * (read-ahead) rather than two per record, header and body. */
#define READ_BUFFER (4u * 16384u + 1024u)

struct mig_tls {
	SSL_CTX *ctx;
	uint8_t psk[MIG_TLS_PSK_LEN];
};

int mig_tls_derive_psk(const char *token, uint8_t psk[MIG_TLS_PSK_LEN])
{
	size_t len = token ? strlen(token) : 0;
	if (len == 0)
		return -EINVAL;
	return mig_hkdf_sha256(false, token, len, PSK_SALT, sizeof(PSK_SALT) - 1, PSK_INFO,
			       sizeof(PSK_INFO) - 1, psk, MIG_TLS_PSK_LEN);
}

/* The PSK as OpenSSL takes it: a TLS 1.3 session with the key as its master key. */
static SSL_SESSION *psk_session(SSL *ssl)
{
	const struct mig_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, PSK_CIPHER);
	SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;
	if (!s)
		return NULL;
	if (!SSL_SESSION_set1_master_key(s, t->psk, sizeof(t->psk)) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* Client: offers the PSK (RFC 8446 4.2.11). md is set on a second ClientHello after a
 * HelloRetryRequest: the PSK only fits a suite of its own hash. */
static int psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess)
{
	SSL_SESSION *s = psk_session(ssl);
	if (!s)
		return 0;
	const EVP_MD *own = SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s));
	if (md && (!own || EVP_MD_get_type(md) != EVP_MD_get_type(own))) {
		SSL_SESSION_free(s);
		*sess = NULL;
		return 1;
	}
	*sess = s;
	*id = (const unsigned char *)MIG_TLS_IDENTITY;
	*idlen = sizeof(MIG_TLS_IDENTITY) - 1;
	return 1;
}

/* Server: the PSK for our identity; any other identity finds none, and with no certificate
 * to fall back on, the handshake fails. */
static int psk_find(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	*sess = NULL;
	if (idlen != sizeof(MIG_TLS_IDENTITY) - 1 || memcmp(id, MIG_TLS_IDENTITY, idlen) != 0)
		return 1;
	*sess = psk_session(ssl);
	return *sess ? 1 : 0;
}

int mig_tls_create(const char *token, bool server, bool ktls, struct mig_tls **out)
{
	struct mig_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	int rc = mig_tls_derive_psk(token, t->psk);
	if (rc)
		goto err_free;
	if (ktls && !mig_ktls_accelerated("/proc/crypto"))
		ktls = false;
	t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx) {
		rc = -ENOMEM;
		goto err_free;
	}
	SSL_CTX *ctx = t->ctx;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")) {
		rc = -EINVAL;
		goto err_ctx;
	}
	/* psk_dhe_ke only: OpenSSL offers and accepts psk_ke (no key exchange, no forward
	 * secrecy) only with SSL_OP_ALLOW_NO_DHE_KEX, which stays off. An end of stream
	 * without close_notify is read as the end: the stream's own END records tell a cut. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | (ktls ? SSL_OP_ENABLE_KTLS : 0));
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT | SSL_OP_ALLOW_NO_DHE_KEX);
	/* One handshake per channel and never a resumption: no tickets, no cache. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_app_data(ctx, t);
	if (ktls && mig_ktls_rx_prepare(ctx)) {
		rc = -ENOMEM;
		goto err_ctx;
	}
	if (server) {
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find);
	} else {
		SSL_CTX_set_psk_use_session_callback(ctx, psk_use);
		/* No trusted certificates: a server that answers with one instead of the PSK
		 * fails verification. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	*out = t;
	return 0;
err_ctx:
	SSL_CTX_free(t->ctx);
err_free:
	OPENSSL_cleanse(t->psk, sizeof(t->psk));
	free(t);
	ERR_clear_error();
	return rc;
}

void mig_tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	OPENSSL_cleanse(t->psk, sizeof(t->psk));
	free(t);
}

void mig_tls_reason(bool server, char *out, size_t n)
{
	unsigned long e = ERR_peek_error();
	const char *lib = e ? ERR_reason_error_string(e) : NULL;
	const char *what = NULL;
	switch (e && ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0) {
	case SSL_R_BINDER_DOES_NOT_VERIFY:
		what = "wrong stream token: the source does not hold this migration's key";
		break;
	/* OpenSSL answers a binder that does not verify with illegal_parameter; RFC 8446
	 * 4.2.11 suggests decrypt_error. Either way, here it means the key. */
	case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
	case SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER:
		what = "wrong stream token: the destination does not hold this migration's key";
		break;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_RECORD_LENGTH_MISMATCH:
		what = server ? "not a TLS handshake (a source without TLS, or not a godwit source)"
			      : "the destination does not answer in TLS (does it run without TLS?)";
		break;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
	case SSL_R_MISSING_PSK_KEX_MODES_EXTENSION:
		what = "the peer offered no key for this migration (not a godwit source)";
		break;
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		what = "the destination answered with a certificate, not this migration's key";
		break;
	default:
		break;
	}
	if (what)
		snprintf(out, n, "%s (TLS: %s)", what, lib ? lib : "?");
	else if (lib)
		snprintf(out, n, "TLS: %s", lib);
	else
		snprintf(out, n, "the connection closed during the TLS handshake");
	ERR_clear_error();
}

void mig_sigpipe_block(struct mig_sigpipe *g)
{
	sigset_t pipe, pend;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
	sigpending(&pend);
	g->pending_before = sigismember(&pend, SIGPIPE);
}

void mig_sigpipe_restore(struct mig_sigpipe *g)
{
	/* A SIGPIPE our write raised while blocked is pending for this thread: take it. */
	if (!g->pending_before) {
		sigset_t pipe, pend;
		sigemptyset(&pipe);
		sigaddset(&pipe, SIGPIPE);
		sigpending(&pend);
		if (sigismember(&pend, SIGPIPE)) {
			struct timespec zero = {0, 0};
			while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
				;
		}
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms > 0 ? gw_now_ms() + (uint64_t)timeout_ms : 0;
}

int mig_chan_wait(struct mig_chan *c, short ev, uint64_t *deadline, int timeout_ms)
{
	if (*deadline == MIG_DEADLINE_LAZY)
		*deadline = deadline_of(timeout_ms);
	return mig_chan_wait_fd(c->fd, ev, *deadline);
}

int mig_chan_wait_fd(int fd, short ev, uint64_t deadline_ms)
{
	for (;;) {
		int to = -1;
		if (deadline_ms) {
			uint64_t now = gw_now_ms();
			if (now >= deadline_ms)
				return -ETIMEDOUT;
			uint64_t left = deadline_ms - now;
			to = left > INT_MAX ? INT_MAX : (int)left;
		}
		struct pollfd p = {.fd = fd, .events = ev};
		int r = poll(&p, 1, to);
		/* Errors and hang-ups too: the call that follows reports them. */
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

void mig_chan_init(struct mig_chan *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->pipe[0] = c->pipe[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void mig_chan_adopt(struct mig_chan *c, int fd, SSL *ssl)
{
	set_nonblock(fd);
	c->fd = fd;
	c->ssl = ssl;
	c->ktls_send = ssl && BIO_get_ktls_send(SSL_get_wbio(ssl));
	c->ktls_recv = ssl && BIO_get_ktls_recv(SSL_get_rbio(ssl));
	if (ssl && !c->ktls_recv)
		c->ktls_recv = mig_ktls_rx_install(ssl, fd) == 0;
	/* Read-ahead only once the handshake decided on kTLS: bytes OpenSSL read ahead of the
	 * keys' change would keep the kernel from taking the receiving side. */
	if (ssl && !c->ktls_recv)
		SSL_set_read_ahead(ssl, 1);
}

static SSL *ssl_new(struct mig_tls *t, int fd)
{
	SSL *ssl = SSL_new(t->ctx);
	if (ssl && !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		return NULL;
	}
	if (ssl && mig_ktls_rx_attach(ssl)) {
		SSL_free(ssl);
		return NULL;
	}
	if (ssl)
		SSL_set_default_read_buffer_len(ssl, READ_BUFFER);
	return ssl;
}

SSL *mig_tls_accept_ssl(struct mig_tls *t, int fd)
{
	SSL *ssl = ssl_new(t, fd);
	if (ssl)
		SSL_set_accept_state(ssl);
	ERR_clear_error();
	return ssl;
}

int mig_chan_connect(struct mig_chan *c, int fd, struct mig_tls *tls, int timeout_ms, char *why,
		     size_t n)
{
	set_nonblock(fd);
	if (!tls) {
		mig_chan_adopt(c, fd, NULL);
		return 0;
	}
	SSL *ssl = ssl_new(tls, fd);
	int rc = 0;
	if (!ssl) {
		snprintf(why, n, "cannot set up TLS: out of memory");
		rc = -ENOMEM;
		goto err_ssl;
	}
	SSL_set_connect_state(ssl);
	uint64_t deadline = deadline_of(timeout_ms);
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	for (;;) {
		ERR_clear_error();
		int r = SSL_do_handshake(ssl);
		if (r == 1)
			break;
		int err = SSL_get_error(ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			rc = mig_chan_wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
					      deadline);
			if (rc) {
				snprintf(why, n,
					 "no TLS handshake from the destination within %d s",
					 timeout_ms / 1000);
				break;
			}
			continue;
		}
		mig_tls_reason(false, why, n);
		rc = -EPROTO;
		break;
	}
	mig_sigpipe_restore(&g);
	if (rc)
		goto err_ssl;
	/* Defence in depth: the handshake must have used the PSK, nothing else. */
	if (!SSL_session_reused(ssl)) {
		snprintf(why, n, "the destination did not use this migration's key");
		rc = -EPROTO;
		goto err_ssl;
	}
	mig_chan_adopt(c, fd, ssl);
	return 0;
err_ssl:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return rc;
}

const char *mig_chan_strerror(int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
		return "no progress before the timeout";
	case -ENODATA:
		return "connection closed";
	case -EBADMSG:
		return "a TLS record failed authentication (corrupt or altered on the way)";
	case -EPROTO:
		return "a TLS record other than data (an alert or a key update) in the stream";
	default:
		return strerror(-rc);
	}
}

struct iovec *mig_iov_advance(struct iovec *iov, int *iovcnt, size_t k)
{
	while (*iovcnt > 0 && k >= iov->iov_len) {
		k -= iov->iov_len;
		iov++;
		(*iovcnt)--;
	}
	if (*iovcnt > 0) {
		iov->iov_base = (char *)iov->iov_base + k;
		iov->iov_len -= k;
	}
	return iov;
}

int mig_chan_fd_writev(struct mig_chan *c, struct iovec *iov, int iovcnt, int flags)
{
	uint64_t deadline = MIG_DEADLINE_LAZY;
	while (iovcnt > 0) {
		/* MSG_NOSIGNAL: a peer that went away is an error to report, never a SIGPIPE,
		 * whose default action would end this whole process and the VM it runs. */
		struct msghdr m = {.msg_iov = iov,
				   .msg_iovlen = (size_t)(iovcnt > IOV_MAX ? IOV_MAX : iovcnt)};
		ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL | flags);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			int rc = mig_chan_wait(c, POLLOUT, &deadline, c->send_timeout_ms);
			if (rc)
				return rc;
			continue;
		}
		deadline = MIG_DEADLINE_LAZY;
		iov = mig_iov_advance(iov, &iovcnt, (size_t)k);
	}
	return 0;
}

/* One SSL call under the channel's lock; what to do next as 0 (done, *k bytes), a poll event
 * to wait for, or a negative errno. */
static int ssl_call(struct mig_chan *c, bool wr, void *p, size_t n, size_t *k, short *ev)
{
	pthread_mutex_lock(&c->lock);
	ERR_clear_error();
	int ok = wr ? SSL_write_ex(c->ssl, p, n, k) : SSL_read_ex(c->ssl, p, n, k);
	int err = ok ? SSL_ERROR_NONE : SSL_get_error(c->ssl, 0);
	int sys = errno;
	pthread_mutex_unlock(&c->lock);
	*ev = 0;
	switch (err) {
	case SSL_ERROR_NONE:
		return 0;
	case SSL_ERROR_WANT_READ:
		*ev = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*ev = POLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -ENODATA;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return sys && sys != EAGAIN ? -sys : -ENODATA;
	default:
		ERR_clear_error();
		return -EBADMSG;
	}
}

static int ssl_write_all(struct mig_chan *c, const void *p, size_t n, uint64_t *deadline)
{
	while (n > 0) {
		size_t k = 0;
		short ev;
		int rc = ssl_call(c, true, (void *)p, n, &k, &ev);
		if (rc)
			return rc;
		if (ev) {
			rc = mig_chan_wait(c, ev, deadline, c->send_timeout_ms);
			if (rc)
				return rc;
			continue;
		}
		*deadline = MIG_DEADLINE_LAZY;
		p = (const char *)p + k;
		n -= k;
	}
	return 0;
}

/* Through OpenSSL: small iovecs are gathered into full records, large ones go as they are. */
static int ssl_writev(struct mig_chan *c, struct iovec *iov, int iovcnt)
{
	uint64_t deadline = MIG_DEADLINE_LAZY;
	char *stage = NULL;
	size_t staged = 0;
	int rc = 0;
	for (int i = 0; i < iovcnt && rc == 0; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		if (len >= STAGE_BYTES) {
			if (staged)
				rc = ssl_write_all(c, stage, staged, &deadline);
			staged = 0;
			if (rc == 0)
				rc = ssl_write_all(c, p, len, &deadline);
			continue;
		}
		if (!stage && !(stage = malloc(STAGE_BYTES))) {
			rc = -ENOMEM;
			break;
		}
		while (len > 0 && rc == 0) {
			size_t take = STAGE_BYTES - staged < len ? STAGE_BYTES - staged : len;
			memcpy(stage + staged, p, take);
			staged += take;
			p += take;
			len -= take;
			if (staged == STAGE_BYTES) {
				rc = ssl_write_all(c, stage, staged, &deadline);
				staged = 0;
			}
		}
	}
	if (rc == 0 && staged)
		rc = ssl_write_all(c, stage, staged, &deadline);
	free(stage);
	return rc;
}

int mig_chan_writev(struct mig_chan *c, struct iovec *iov, int iovcnt)
{
	if (!c->ssl || c->ktls_send)
		return mig_chan_fd_writev(c, iov, iovcnt, 0);
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	int rc = ssl_writev(c, iov, iovcnt);
	mig_sigpipe_restore(&g);
	return rc;
}

int mig_chan_write(struct mig_chan *c, const void *p, size_t n)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	return mig_chan_writev(c, &iov, 1);
}

/* Reads on the fd into iovecs, one readv for as many of them as the socket holds: in clear,
 * or the kernel's TLS (which fails a record that does not authenticate with EBADMSG). */
static int fd_readv(struct mig_chan *c, struct iovec *iov, int iovcnt, uint64_t *deadline)
{
	/* Empty iovecs first: a readv of nothing would read as the end of the stream. */
	iov = mig_iov_advance(iov, &iovcnt, 0);
	while (iovcnt > 0) {
		ssize_t r = readv(c->fd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* The kernel's TLS answers a record that is not data (an alert, a key
			 * update) to a plain read with EIO. */
			if (errno == EIO && c->ktls_recv)
				return -EPROTO;
			if (errno != EAGAIN)
				return -errno;
			int rc = mig_chan_wait(c, POLLIN, deadline, c->recv_timeout_ms);
			if (rc)
				return rc;
			continue;
		}
		if (r == 0)
			return -ENODATA;
		iov = mig_iov_advance(iov, &iovcnt, (size_t)r);
		*deadline = MIG_DEADLINE_LAZY;
	}
	return 0;
}

/* fd_readv into one buffer, from *got to n (all of it, or an error). */
static int fd_read(struct mig_chan *c, char *p, size_t n, size_t *got, uint64_t *deadline)
{
	struct iovec iov = {.iov_base = p + *got, .iov_len = n - *got};
	int rc = fd_readv(c, &iov, 1, deadline);
	if (rc == 0)
		*got = n;
	return rc;
}

/* Whether OpenSSL still holds received bytes: read those through it first. */
static bool ssl_pending(struct mig_chan *c)
{
	pthread_mutex_lock(&c->lock);
	bool p = SSL_has_pending(c->ssl);
	pthread_mutex_unlock(&c->lock);
	return p;
}

int mig_chan_read(struct mig_chan *c, void *p, size_t n)
{
	uint64_t deadline = MIG_DEADLINE_LAZY;
	size_t got = 0;
	if (!c->ssl)
		return fd_read(c, p, n, &got, &deadline);
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	int rc = 0;
	while (got < n && rc == 0) {
		if (c->ktls_recv && !ssl_pending(c)) {
			rc = fd_read(c, p, n, &got, &deadline);
			break;
		}
		size_t k = 0;
		short ev;
		rc = ssl_call(c, false, (char *)p + got, n - got, &k, &ev);
		if (rc == 0 && ev)
			rc = mig_chan_wait(c, ev, &deadline, c->recv_timeout_ms);
		else if (rc == 0) {
			got += k;
			deadline = MIG_DEADLINE_LAZY;
		}
	}
	mig_sigpipe_restore(&g);
	return rc;
}

int mig_chan_readv(struct mig_chan *c, struct iovec *iov, int iovcnt)
{
	uint64_t deadline = MIG_DEADLINE_LAZY;
	if (!c->ssl)
		return fd_readv(c, iov, iovcnt, &deadline);
	struct mig_sigpipe g;
	mig_sigpipe_block(&g);
	int rc = 0;
	iov = mig_iov_advance(iov, &iovcnt, 0);
	while (iovcnt > 0 && rc == 0) {
		if (c->ktls_recv && !ssl_pending(c)) {
			rc = fd_readv(c, iov, iovcnt, &deadline);
			break;
		}
		/* OpenSSL decrypts a record into its buffer, then copies into the iovec. */
		size_t k = 0;
		short ev;
		rc = ssl_call(c, false, iov->iov_base, iov->iov_len, &k, &ev);
		if (rc == 0 && ev)
			rc = mig_chan_wait(c, ev, &deadline, c->recv_timeout_ms);
		else if (rc == 0) {
			iov = mig_iov_advance(iov, &iovcnt, k);
			deadline = MIG_DEADLINE_LAZY;
		}
	}
	mig_sigpipe_restore(&g);
	return rc;
}

void mig_chan_shutdown(struct mig_chan *c)
{
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

void mig_chan_close(struct mig_chan *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->ktls_send = c->ktls_recv = false;
	mig_chan_pipe_close(c);
}

void mig_chan_describe(struct mig_chan *c, char *out, size_t n)
{
	if (!c->ssl) {
		snprintf(out, n, "plaintext, pages %s", c->pipe_cap ? "by splice" : "by copy");
		return;
	}
	int nid = SSL_get_negotiated_group(c->ssl);
	const char *grp = nid > 0 ? OBJ_nid2sn(nid) : NULL;
	snprintf(out, n, "%s %s, PSK with %s, kTLS send %s, receive %s", SSL_get_version(c->ssl),
		 SSL_get_cipher_name(c->ssl), grp ? grp : "no key exchange",
		 c->ktls_send ? "on" : "off", c->ktls_recv ? "on" : "off");
}
