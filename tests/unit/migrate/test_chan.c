/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the migration channels on loopback: TLS keyed by the stream token, the
 * destination's listener that only takes the source, and the stall timeout. No KVM. */
#include "admit.h"
#include "chan.h"
#include "ktls_rx.h"
#include "net.h"
#include "stream.h"

#include "godwit/deadline.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static const char TOKEN[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char OTHER[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

static uint8_t pat(size_t off)
{
	return (uint8_t)((off * 131u) ^ (off >> 9) ^ 0x5a);
}

static void fill(uint8_t *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* ---- a destination side on a thread: the listener, then what the test asks of it ---- */

enum srv_mode {
	SRV_VERIFY, /* read n bytes, check the pattern, answer with n bytes of it */
	SRV_ECHO,   /* send back all it reads, n bytes */
	SRV_IDLE,   /* read nothing until released */
	SRV_SPLICE, /* read n bytes through the channel's pipe (mig_chan_splice_in), check them */
};

struct srv {
	int lfd;
	uint16_t port;
	struct mig_tls *tls;
	struct mig_admit a;
	enum srv_mode mode;
	size_t n;
	pthread_t t;
	int release; /* atomic */
	/* results */
	int rc;
	char why[200];
	struct mig_hello hello;
	uint64_t admitted_ms;
	int data_rc;
	bool data_ok;
	int negotiated_group;
	bool ktls_send, ktls_recv;
};

static void *srv_thread(void *arg)
{
	struct srv *s = arg;
	int fd;
	SSL *ssl;
	s->rc = mig_admit_source(s->lfd, &s->a, &fd, &ssl, &s->hello, s->why, sizeof(s->why));
	s->admitted_ms = gw_now_ms();
	if (s->rc)
		return NULL;
	struct mig_chan c;
	mig_chan_init(&c);
	mig_chan_adopt(&c, fd, ssl);
	c.recv_timeout_ms = 20000;
	c.send_timeout_ms = 20000;
	s->ktls_send = c.ktls_send;
	s->ktls_recv = c.ktls_recv;
	s->negotiated_group = c.ssl ? SSL_get_negotiated_group(c.ssl) : 0;
	struct mig_reply r;
	mig_reply_encode(&r, MIG_REPLY_OK, "ok");
	s->data_rc = mig_chan_write(&c, &r, sizeof(r));
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk), *want = malloc(chunk);
	s->data_ok = true;
	if (s->mode == SRV_IDLE) {
		while (!__atomic_load_n(&s->release, __ATOMIC_ACQUIRE))
			usleep(10000);
	}
	if (s->mode == SRV_SPLICE) {
		s->data_rc = mig_chan_pipe_open(&c);
		for (size_t off = 0; off < s->n && s->data_rc == 0;) {
			long k = mig_chan_splice_in(&c, s->n - off);
			if (k < 0) {
				s->data_rc = (int)k;
				break;
			}
			/* at most pipe_cap and more than nothing, all of it in the pipe */
			if ((size_t)k > c.pipe_cap || read(c.pipe[0], buf, (size_t)k) != k)
				s->data_ok = false;
			fill(want, off, (size_t)k);
			if (memcmp(buf, want, (size_t)k) != 0)
				s->data_ok = false;
			off += (size_t)k;
		}
		s->mode = SRV_IDLE; /* nothing to answer */
	}
	for (size_t off = 0; s->mode != SRV_IDLE && off < s->n && s->data_rc == 0;) {
		size_t k = s->n - off < chunk ? s->n - off : chunk;
		if (s->mode == SRV_ECHO && k > 65536)
			k = 65536;
		if (s->mode == SRV_VERIFY) {
			/* Through readv, an empty iovec first and last: those read nothing (a
			 * record with an empty payload), never the stream's end; and a zero-length
			 * read. */
			struct iovec iov[4] = {
			    {buf, 0}, {buf, k / 2}, {buf + k / 2, k - k / 2}, {buf, 0}};
			s->data_rc = mig_chan_readv(&c, iov, 4);
			if (s->data_rc == 0)
				s->data_rc = mig_chan_read(&c, buf + k, 0);
		} else {
			s->data_rc = mig_chan_read(&c, buf, k);
		}
		if (s->data_rc)
			break;
		if (s->mode == SRV_VERIFY) {
			fill(want, off, k);
			if (memcmp(buf, want, k) != 0)
				s->data_ok = false;
		} else {
			s->data_rc = mig_chan_write(&c, buf, k);
		}
		off += k;
	}
	if (s->mode == SRV_VERIFY && s->data_rc == 0) {
		for (size_t off = 0; off < s->n && s->data_rc == 0; off += chunk) {
			size_t k = s->n - off < chunk ? s->n - off : chunk;
			fill(buf, off, k);
			s->data_rc = mig_chan_write(&c, buf, k);
		}
	}
	free(buf);
	free(want);
	mig_chan_close(&c);
	return NULL;
}

static void srv_start(struct srv *s, bool tls, const char *token, enum srv_mode mode, size_t n,
		      int timeout_ms)
{
	memset(s, 0, sizeof(*s));
	CU_ASSERT_EQUAL_FATAL(mig_net_listen("127.0.0.1", &s->lfd, &s->port), 0);
	if (tls)
		CU_ASSERT_EQUAL_FATAL(mig_tls_create(token, true, true, &s->tls), 0);
	s->a = (struct mig_admit){.tls = s->tls,
				  .token = token,
				  .channel = 0,
				  .timeout_ms = timeout_ms,
				  .handshake_ms = 3000};
	s->mode = mode;
	s->n = n;
	pthread_create(&s->t, NULL, srv_thread, s);
}

static void srv_join(struct srv *s)
{
	__atomic_store_n(&s->release, 1, __ATOMIC_RELEASE);
	pthread_join(s->t, NULL);
	close(s->lfd);
	mig_tls_free(s->tls);
}

/* The source's side of a channel: connect, TLS, hello, reply. */
static int client_open(struct mig_chan *c, uint16_t port, struct mig_tls *tls, const char *token,
		       char *why, size_t n)
{
	mig_chan_init(c);
	int fd = mig_net_connect("127.0.0.1", port, 5000);
	if (fd < 0) {
		snprintf(why, n, "connect: %s", strerror(-fd));
		return fd;
	}
	int rc = mig_chan_connect(c, fd, tls, 5000, why, n);
	if (rc)
		return rc;
	c->recv_timeout_ms = 20000;
	c->send_timeout_ms = 20000;
	struct mig_hello h;
	mig_hello_encode(&h, 0, 1, 42, 1 << 20, 0, 0, token);
	struct mig_reply r;
	rc = mig_chan_write(c, &h, sizeof(h));
	if (rc == 0)
		rc = mig_chan_read(c, &r, sizeof(r));
	if (rc == 0 && (mig_reply_check(&r) || r.status != MIG_REPLY_OK)) {
		snprintf(why, n, "refused: %.*s", (int)sizeof(r.message), r.message);
		rc = -EPROTO;
	}
	if (rc)
		mig_chan_close(c);
	return rc;
}

/* The derivation is HKDF-SHA256 (RFC 5869) as docs/migration-stream.md writes it down: an
 * independent computation with HMAC gives the same key, and another token another key. */
/* kTLS only where the kernel's AES is the CPU's: read from /proc/crypto's drivers. */
static bool accelerated(const char *text)
{
	char path[] = "/tmp/gw-crypto-XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	bool r = mig_ktls_accelerated(path);
	unlink(path);
	return r;
}

static void test_ktls_accelerated(void)
{
	const char *generic = "name         : gcm(aes)\n"
			      "driver       : gcm_base(ctr(aes-generic),ghash-generic)\n"
			      "module       : kernel\n\n"
			      "name         : aes\n"
			      "driver       : aes-generic\n"
			      "priority     : 100\n\n"
			      "name         : aes\n"
			      "driver       : aes-fixed-time\n";
	const char *aesni = "name         : aes\n"
			    "driver       : aes-generic\n\n"
			    "name         : __aes\n"
			    "driver       : __aes-aesni\n\n"
			    "name         : aes\n"
			    "driver       : aes-aesni\n"
			    "module       : aesni_intel\n";
	CU_ASSERT_FALSE(accelerated(generic));
	CU_ASSERT_TRUE(accelerated(aesni));
	CU_ASSERT_FALSE(accelerated(""));
	CU_ASSERT_FALSE(mig_ktls_accelerated("/nonexistent/crypto"));
}

static void test_psk_derivation(void)
{
	uint8_t a[MIG_TLS_PSK_LEN], b[MIG_TLS_PSK_LEN], c[MIG_TLS_PSK_LEN];
	CU_ASSERT_EQUAL(mig_tls_derive_psk(TOKEN, a), 0);
	CU_ASSERT_EQUAL(mig_tls_derive_psk(TOKEN, b), 0);
	CU_ASSERT_EQUAL(mig_tls_derive_psk(OTHER, c), 0);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
	static const char salt[] = "godwit-mig-v1", info[] = "godwit migration stream TLS 1.3 PSK";
	unsigned char prk[32], t1[32], msg[sizeof(info)];
	unsigned len = 0;
	HMAC(EVP_sha256(), salt, (int)strlen(salt), (const unsigned char *)TOKEN, strlen(TOKEN),
	     prk, &len);
	CU_ASSERT_EQUAL(len, 32);
	memcpy(msg, info, strlen(info));
	msg[strlen(info)] = 0x01;
	HMAC(EVP_sha256(), prk, 32, msg, strlen(info) + 1, t1, &len);
	CU_ASSERT_EQUAL(memcmp(a, t1, 32), 0);
	CU_ASSERT_EQUAL(mig_tls_derive_psk("", a), -EINVAL);
}

/* Data of many sizes, gathered from many iovecs, arrives intact both ways. */
static void round_trip(bool tls)
{
	/* Sizes around the TLS record (16 KiB) and the stage, tiny and large, in one writev. */
	static const size_t sizes[] = {1,     7,     100,     4096,	     16383, 16384,
				       16385, 65536, 1 << 20, (3 << 20) + 1, 2,	    5000};
	size_t total = 0;
	for (unsigned i = 0; i < GW_TEST_COUNT(sizes); i++)
		total += sizes[i];
	total *= 4; /* the writev goes four times */
	struct srv s;
	srv_start(&s, tls, TOKEN, SRV_VERIFY, total, 10000);
	struct mig_tls *ct = NULL;
	if (tls)
		CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200] = "";
	int rc = client_open(&c, s.port, ct, TOKEN, why, sizeof(why));
	if (rc)
		printf("\n    client: %s", why);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(c.ssl != NULL, tls);
	char desc[160];
	mig_chan_describe(&c, desc, sizeof(desc));
	printf("\n    %s", desc);
	uint8_t *src = malloc(total);
	fill(src, 0, total);
	size_t off = 0;
	for (unsigned rep = 0; rep < 4 && rc == 0; rep++) {
		struct iovec iov[GW_TEST_COUNT(sizes)];
		for (unsigned i = 0; i < GW_TEST_COUNT(sizes); i++) {
			iov[i] = (struct iovec){.iov_base = src + off, .iov_len = sizes[i]};
			off += sizes[i];
		}
		rc = mig_chan_writev(&c, iov, (int)GW_TEST_COUNT(sizes));
	}
	CU_ASSERT_EQUAL(rc, 0);
	/* ...and back, read in odd pieces. */
	uint8_t *back = malloc(total);
	for (size_t got = 0; got < total && rc == 0;) {
		size_t k = total - got < 12345 ? total - got : 12345;
		rc = mig_chan_read(&c, back + got, k);
		got += k;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(memcmp(back, src, total), 0);
	mig_chan_close(&c);
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_EQUAL(s.data_rc, 0);
	CU_ASSERT_TRUE(s.data_ok);
	if (tls) {
		/* psk_dhe_ke: an (EC)DHE exchange ran beside the PSK: forward secrecy. */
		CU_ASSERT_NOT_EQUAL(s.negotiated_group, 0);
		printf("\n    kTLS on the destination: send %s, receive %s",
		       s.ktls_send ? "on" : "off", s.ktls_recv ? "on" : "off");
		/* A kernel that took the sending side takes the receiving one: set up by
		 * hand from the handshake's secrets (OpenSSL 3.0 leaves it in user space). */
		if (s.ktls_send)
			CU_ASSERT_TRUE(s.ktls_recv);
	}
	free(src);
	free(back);
	mig_tls_free(ct);
}

static void test_round_trip_tls(void)
{
	round_trip(true);
}

static void test_round_trip_plain(void)
{
	round_trip(false);
}

/* Pages by reference in clear (chan_splice.c): a head and 300 pages (more than the 256 of a
 * 1 MiB pipe, so two rounds through it) arrive whole and in order through the destination's
 * pipe; under TLS there is no pipe. */
static void test_pages_by_splice(void)
{
	const size_t head = 100, npg = 300, total = head + npg * 4096;
	struct srv s;
	srv_start(&s, false, TOKEN, SRV_SPLICE, total, 10000);
	struct mig_chan c;
	char why[200] = "";
	int rc = client_open(&c, s.port, NULL, TOKEN, why, sizeof(why));
	if (rc)
		printf("\n    client: %s", why);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(mig_chan_pipe_open(&c), 0);
	CU_ASSERT_TRUE(c.pipe_cap >= 4096);
	char desc[160];
	mig_chan_describe(&c, desc, sizeof(desc));
	CU_ASSERT_PTR_NOT_NULL(strstr(desc, "by splice"));
	uint8_t h[100], *pages = mmap(NULL, npg * 4096, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(pages != MAP_FAILED);
	fill(h, 0, head);
	fill(pages, head, npg * 4096);
	struct iovec iov[1 + 300];
	iov[0] = (struct iovec){.iov_base = h, .iov_len = head};
	for (size_t i = 0; i < npg; i++)
		iov[1 + i] = (struct iovec){.iov_base = pages + i * 4096, .iov_len = 4096};
	CU_ASSERT_EQUAL(mig_chan_writev_pages(&c, iov, 1 + (int)npg), 0);
	CU_ASSERT_TRUE(c.pipe_cap >= 4096); /* by splice: no fall back to a copy */
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_EQUAL(s.data_rc, 0);
	CU_ASSERT_TRUE(s.data_ok);
	/* The destination is gone: an error, never a SIGPIPE (splice sends without
	 * MSG_NOSIGNAL). */
	signal(SIGPIPE, SIG_DFL);
	rc = 0;
	for (int i = 0; i < 64 && rc == 0; i++) {
		iov[0] = (struct iovec){.iov_base = h, .iov_len = head};
		for (size_t k = 0; k < npg; k++)
			iov[1 + k] = (struct iovec){.iov_base = pages + k * 4096, .iov_len = 4096};
		rc = mig_chan_writev_pages(&c, iov, 1 + (int)npg);
	}
	signal(SIGPIPE, SIG_IGN);
	CU_ASSERT_TRUE(rc == -EPIPE || rc == -ECONNRESET);
	mig_chan_close(&c);
	CU_ASSERT_EQUAL(c.pipe_cap, 0u);
	munmap(pages, npg * 4096);

	struct mig_chan t;
	mig_chan_init(&t);
	t.ssl = (SSL *)1; /* only looked at, never used */
	CU_ASSERT_EQUAL(mig_chan_pipe_open(&t), -ENOTSUP);
	CU_ASSERT_EQUAL(t.pipe_cap, 0u);
}

struct duplex {
	struct mig_chan *c;
	size_t n;
	int rc;
	bool ok;
};

static void *duplex_reader(void *arg)
{
	struct duplex *d = arg;
	uint8_t buf[40000], want[40000];
	d->ok = true;
	for (size_t off = 0; off < d->n && d->rc == 0;) {
		size_t k = d->n - off < sizeof(buf) ? d->n - off : sizeof(buf);
		d->rc = mig_chan_read(d->c, buf, k);
		fill(want, off, k);
		if (d->rc == 0 && memcmp(buf, want, k))
			d->ok = false;
		off += k;
	}
	return NULL;
}

/* One TLS channel, a reader and a writer on two threads at once (as channel 0 of a
 * migration: records out, SACK/READY in): the shared SSL object is used one call at a time. */
static void test_full_duplex_tls(void)
{
	size_t n = 48u << 20;
	struct srv s;
	srv_start(&s, true, TOKEN, SRV_ECHO, n, 10000);
	struct mig_tls *ct;
	CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(client_open(&c, s.port, ct, TOKEN, why, sizeof(why)), 0);
	struct duplex d = {.c = &c, .n = n};
	pthread_t t;
	pthread_create(&t, NULL, duplex_reader, &d);
	uint8_t *buf = malloc(1 << 20);
	int rc = 0;
	for (size_t off = 0; off < n && rc == 0; off += 1 << 20) {
		fill(buf, off, 1 << 20);
		rc = mig_chan_write(&c, buf, 1 << 20);
	}
	CU_ASSERT_EQUAL(rc, 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(d.rc, 0);
	CU_ASSERT_TRUE(d.ok);
	mig_chan_close(&c);
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_EQUAL(s.data_rc, 0);
	free(buf);
	mig_tls_free(ct);
}

/* A source with another token fails the TLS handshake, and says so; the destination refuses
 * it, says so, and keeps listening until its deadline. */
static void test_wrong_token(void)
{
	struct srv s;
	srv_start(&s, true, TOKEN, SRV_VERIFY, 0, 1500);
	struct mig_tls *ct;
	CU_ASSERT_EQUAL_FATAL(mig_tls_create(OTHER, false, true, &ct), 0);
	struct mig_chan c;
	char why[200] = "";
	int rc = client_open(&c, s.port, ct, OTHER, why, sizeof(why));
	printf("\n    source: %s", why);
	CU_ASSERT_EQUAL(rc, -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "wrong stream token"));
	srv_join(&s);
	printf("\n    destination: %s", s.why);
	CU_ASSERT_EQUAL(s.rc, -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "refused 1 connection"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "wrong stream token"));
	mig_tls_free(ct);
}

static int raw_connect(uint16_t port)
{
	int fd = mig_net_connect("127.0.0.1", port, 5000);
	CU_ASSERT_TRUE(fd >= 0);
	return fd;
}

/* What a raw connection hears before the listener closes it: bytes read (a reply, or 0). */
static ssize_t raw_answer(int fd, void *buf, size_t n)
{
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Connections that are not the source (garbage, a plain hello to a TLS listener, a wrong
 * token in clear, one that says nothing) do not stop the source that connects after them. */
static void impostors_then_source(bool tls)
{
	struct srv s;
	srv_start(&s, tls, TOKEN, SRV_VERIFY, 1 << 20, 8000);
	uint64_t t0 = gw_now_ms();
	int idle = raw_connect(s.port); /* holds a slot, says nothing */
	int junk = raw_connect(s.port);
	/* Longer than a hello, so that a listener in clear can judge it at once. */
	char http[200];
	for (size_t i = 0; i < sizeof(http); i++)
		http[i] = "GET / HTTP/1.0\r\n"[i % 16];
	CU_ASSERT_EQUAL(write(junk, http, sizeof(http)), (ssize_t)sizeof(http));
	int plain = raw_connect(s.port);
	struct mig_hello h;
	mig_hello_encode(&h, 0, 1, 42, 1 << 20, 0, 0, tls ? TOKEN : OTHER);
	CU_ASSERT_EQUAL(write(plain, &h, sizeof(h)), (ssize_t)sizeof(h));
	/* The plain hello is told why: TLS only, or a wrong token. */
	struct mig_reply r;
	CU_ASSERT_EQUAL(raw_answer(plain, &r, sizeof(r)), (ssize_t)sizeof(r));
	CU_ASSERT_EQUAL(mig_reply_check(&r), 0);
	CU_ASSERT_EQUAL(r.status, tls ? MIG_REPLY_TLS : MIG_REPLY_TOKEN);
	printf("\n    a plain hello hears: %.*s", (int)sizeof(r.message), r.message);
	char junkbuf[256];
	ssize_t jn = raw_answer(junk, junkbuf, sizeof(junkbuf));
	CU_ASSERT_TRUE(jn == 0 || (!tls && jn == (ssize_t)sizeof(struct mig_reply)));

	struct mig_tls *ct = NULL;
	if (tls)
		CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200] = "";
	int rc = client_open(&c, s.port, ct, TOKEN, why, sizeof(why));
	if (rc)
		printf("\n    source: %s", why);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	uint8_t *buf = malloc(1 << 20);
	fill(buf, 0, 1 << 20);
	CU_ASSERT_EQUAL(mig_chan_write(&c, buf, 1 << 20), 0);
	CU_ASSERT_EQUAL(mig_chan_read(&c, buf, 1 << 20), 0);
	mig_chan_close(&c);
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_TRUE(s.data_ok);
	/* Taken at once, not after the silent connection's handshake time (3 s). */
	printf("\n    the source was admitted after %llu ms",
	       (unsigned long long)(s.admitted_ms - t0));
	CU_ASSERT_TRUE(s.admitted_ms - t0 < 2500);
	close(idle);
	close(junk);
	close(plain);
	free(buf);
	mig_tls_free(ct);
}

static void test_impostors_tls(void)
{
	impostors_then_source(true);
}

static void test_impostors_plain(void)
{
	impostors_then_source(false);
}

/* ---- a relay between source and destination that keeps what the source sent ---- */
struct relay {
	int lfd;
	uint16_t port, to;
	pthread_t t;
	uint8_t *cap;
	size_t len, cap_size;
};

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	int a = mig_net_accept(r->lfd, 10000);
	int b = a >= 0 ? mig_net_connect("127.0.0.1", r->to, 5000) : -1;
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	uint8_t buf[65536];
	while (a >= 0 && b >= 0 && poll(p, 2, 10000) > 0) {
		bool done = false;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				done = true;
				break;
			}
			if (i == 0 && r->len + (size_t)n <= r->cap_size) {
				memcpy(r->cap + r->len, buf, (size_t)n);
				r->len += (size_t)n;
			}
			if (write(p[1 - i].fd, buf, (size_t)n) != n) {
				done = true;
				break;
			}
		}
		if (done)
			break;
	}
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return NULL;
}

/* The bytes on the wire: with TLS neither the data nor the token shows; in clear (the
 * control: the capture works) both do. */
static void wire(bool tls, bool *data_seen, bool *token_seen)
{
	size_t n = 256 << 10;
	struct srv s;
	srv_start(&s, tls, TOKEN, SRV_VERIFY, n, 10000);
	struct relay r = {.to = s.port, .cap_size = 8 << 20};
	r.cap = malloc(r.cap_size);
	CU_ASSERT_EQUAL_FATAL(mig_net_listen("127.0.0.1", &r.lfd, &r.port), 0);
	pthread_create(&r.t, NULL, relay_thread, &r);
	struct mig_tls *ct = NULL;
	if (tls)
		CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(client_open(&c, r.port, ct, TOKEN, why, sizeof(why)), 0);
	uint8_t *buf = malloc(n);
	fill(buf, 0, n);
	CU_ASSERT_EQUAL(mig_chan_write(&c, buf, n), 0);
	CU_ASSERT_EQUAL(mig_chan_read(&c, buf, n), 0);
	mig_chan_close(&c);
	srv_join(&s);
	pthread_join(r.t, NULL);
	close(r.lfd);
	CU_ASSERT_TRUE(s.data_ok);
	CU_ASSERT_TRUE(r.len >= n);
	/* Any 64-byte window of the data. */
	uint8_t probe[64];
	fill(probe, 100000, sizeof(probe));
	*data_seen = memmem(r.cap, r.len, probe, sizeof(probe)) != NULL;
	*token_seen = memmem(r.cap, r.len, TOKEN, strlen(TOKEN)) != NULL;
	free(r.cap);
	free(buf);
	mig_tls_free(ct);
}

static void test_wire_encrypted(void)
{
	bool data, token;
	wire(false, &data, &token);
	CU_ASSERT_TRUE(data);
	CU_ASSERT_TRUE(token);
	wire(true, &data, &token);
	CU_ASSERT_FALSE(data);
	CU_ASSERT_FALSE(token);
}

/* A destination that stops reading: the write fails with -ETIMEDOUT once nothing moved for
 * the stall timeout, and a read with nothing to read likewise. */
static void stall(bool tls)
{
	struct srv s;
	srv_start(&s, tls, TOKEN, SRV_IDLE, 0, 10000);
	struct mig_tls *ct = NULL;
	if (tls)
		CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(client_open(&c, s.port, ct, TOKEN, why, sizeof(why)), 0);
	c.send_timeout_ms = 700;
	c.recv_timeout_ms = 300;
	uint8_t b;
	uint64_t t0 = gw_now_ms();
	CU_ASSERT_EQUAL(mig_chan_read(&c, &b, 1), -ETIMEDOUT);
	uint64_t t1 = gw_now_ms();
	CU_ASSERT_TRUE(t1 - t0 >= 290 && t1 - t0 < 3000);
	size_t chunk = 4 << 20, sent = 0;
	uint8_t *buf = calloc(1, chunk);
	int rc = 0;
	while (rc == 0 && sent < (2ull << 30)) {
		rc = mig_chan_write(&c, buf, chunk);
		if (rc == 0)
			sent += chunk;
	}
	uint64_t t2 = gw_now_ms();
	printf("\n    %s: %zu MiB went into socket buffers, then %s after %llu ms",
	       tls ? "TLS" : "plain", sent >> 20, mig_chan_strerror(rc),
	       (unsigned long long)(t2 - t1));
	CU_ASSERT_EQUAL(rc, -ETIMEDOUT);
	CU_ASSERT_TRUE(t2 - t1 >= 700 && t2 - t1 < 15000);
	mig_chan_close(&c);
	srv_join(&s);
	free(buf);
	mig_tls_free(ct);
}

static void test_stall_tls(void)
{
	stall(true);
}

static void test_stall_plain(void)
{
	stall(false);
}

/* A destination that goes away: writes fail with an error, never with SIGPIPE (which is
 * left at its default action here, as in a godwit-vmm run by hand). */
static void test_peer_gone_no_sigpipe(void)
{
	signal(SIGPIPE, SIG_DFL);
	struct srv s;
	srv_start(&s, true, TOKEN, SRV_VERIFY, 0, 10000);
	struct mig_tls *ct;
	CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(client_open(&c, s.port, ct, TOKEN, why, sizeof(why)), 0);
	srv_join(&s); /* the destination closed its end */
	uint8_t *buf = calloc(1, 1 << 20);
	int rc = 0;
	for (int i = 0; i < 64 && rc == 0; i++)
		rc = mig_chan_write(&c, buf, 1 << 20);
	CU_ASSERT_TRUE(rc == -EPIPE || rc == -ECONNRESET);
	uint8_t b;
	CU_ASSERT_NOT_EQUAL(mig_chan_read(&c, &b, 1), 0);
	mig_chan_close(&c);
	free(buf);
	mig_tls_free(ct);
	signal(SIGPIPE, SIG_IGN);
}

/* A flood of connections that send junk (more than the listener serves at once) is refused
 * connection by connection, and the source that comes after it is taken. */
static void test_flood_then_source(void)
{
	struct srv s;
	srv_start(&s, true, TOKEN, SRV_VERIFY, 4096, 10000);
	enum { N = 3 * MIG_ADMIT_SLOTS };
	int fds[N];
	char junk[300];
	memset(junk, 'x', sizeof(junk));
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(s.port);
		if (fds[i] >= 0 && write(fds[i], junk, sizeof(junk)) != (ssize_t)sizeof(junk))
			CU_FAIL("junk not written");
	}
	struct mig_tls *ct;
	CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200] = "";
	uint64_t t0 = gw_now_ms();
	int rc = client_open(&c, s.port, ct, TOKEN, why, sizeof(why));
	if (rc)
		printf("\n    source: %s", why);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	uint8_t buf[4096];
	fill(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(mig_chan_write(&c, buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(mig_chan_read(&c, buf, sizeof(buf)), 0);
	printf("\n    admitted %llu ms after %d junk connections",
	       (unsigned long long)(s.admitted_ms - t0), N);
	CU_ASSERT_TRUE(s.admitted_ms - t0 < 2500);
	mig_chan_close(&c);
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_TRUE(s.data_ok);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	mig_tls_free(ct);
}

/* A source and a destination that disagree on TLS are told so, each in its own terms. */
static void test_tls_mismatch(void)
{
	struct srv s;
	srv_start(&s, false, TOKEN, SRV_VERIFY, 0, 1500);
	struct mig_tls *ct;
	CU_ASSERT_EQUAL_FATAL(mig_tls_create(TOKEN, false, true, &ct), 0);
	struct mig_chan c;
	char why[200] = "";
	CU_ASSERT_EQUAL(client_open(&c, s.port, ct, TOKEN, why, sizeof(why)), -EPROTO);
	printf("\n    TLS source, destination in clear: %s", why);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not answer in TLS"));
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "not a godwit migration stream"));
	mig_tls_free(ct);

	srv_start(&s, true, TOKEN, SRV_VERIFY, 0, 1500);
	CU_ASSERT_EQUAL(client_open(&c, s.port, NULL, TOKEN, why, sizeof(why)), -EPROTO);
	printf("\n    source in clear, TLS destination: %s", why);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "over TLS only"));
	srv_join(&s);
	CU_ASSERT_EQUAL(s.rc, -ETIMEDOUT);
}

/* A listener shut down (the migration failed or was freed) ends the wait at once. */
static void test_listener_shutdown(void)
{
	struct srv s;
	srv_start(&s, true, TOKEN, SRV_VERIFY, 0, 20000);
	int idle = raw_connect(s.port);
	usleep(100 * 1000);
	uint64_t t0 = gw_now_ms();
	shutdown(s.lfd, SHUT_RDWR);
	pthread_join(s.t, NULL);
	uint64_t took = gw_now_ms() - t0;
	CU_ASSERT_TRUE(s.rc != 0 && s.rc != -ETIMEDOUT);
	CU_ASSERT_TRUE(took < 2000);
	/* The candidate it held was closed: its peer reads the end. */
	char b;
	CU_ASSERT_TRUE(raw_answer(idle, &b, 1) == 0);
	close(idle);
	close(s.lfd);
	mig_tls_free(s.tls);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"PSK derivation", test_psk_derivation},
	    {"kTLS only on the CPU's AES", test_ktls_accelerated},
	    {"round trip over TLS", test_round_trip_tls},
	    {"round trip in clear", test_round_trip_plain},
	    {"pages by splice in clear", test_pages_by_splice},
	    {"full duplex on one TLS channel", test_full_duplex_tls},
	    {"wrong token fails the handshake on both sides", test_wrong_token},
	    {"impostors, then the source (TLS)", test_impostors_tls},
	    {"impostors, then the source (clear)", test_impostors_plain},
	    {"the wire shows neither data nor token", test_wire_encrypted},
	    {"stall timeout (TLS)", test_stall_tls},
	    {"stall timeout (clear)", test_stall_plain},
	    {"a peer gone raises no SIGPIPE", test_peer_gone_no_sigpipe},
	    {"TLS on one side only", test_tls_mismatch},
	    {"a flood of junk connections, then the source", test_flood_then_source},
	    {"a listener shut down ends the wait", test_listener_shutdown},
	};
	return gw_test_run("migrate_chan", cases, GW_TEST_COUNT(cases));
}
