/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Throughput of one migration channel on loopback: in clear, in clear with MSG_ZEROCOPY (the
 * pages pinned and sent without the kernel's copy on send; completions read from the error
 * queue), TLS 1.3 through OpenSSL, and TLS 1.3 with kTLS where the kernel takes it. Not a test:
 * run by hand, build/tests/bench_migrate_chan [MiB] (default 2048).
 */
#include "admit.h"
#include "chan.h"
#include "net.h"
#include "stream.h"

#include "godwit/deadline.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

static const char TOKEN[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
#define CHUNK (1u << 20)

struct side {
	int lfd;
	struct mig_tls *tls;
	size_t bytes;
	int rc;
	bool ktls_recv;
	double cpu_s;
};

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *receiver(void *arg)
{
	struct side *s = arg;
	struct mig_admit a = {
	    .tls = s->tls, .token = TOKEN, .timeout_ms = 10000, .handshake_ms = 10000};
	struct mig_hello h;
	char why[200];
	int fd;
	SSL *ssl;
	s->rc = mig_admit_source(s->lfd, &a, &fd, &ssl, &h, why, sizeof(why));
	if (s->rc) {
		fprintf(stderr, "receiver: %s\n", why);
		return NULL;
	}
	struct mig_chan c;
	mig_chan_init(&c);
	mig_chan_adopt(&c, fd, ssl);
	s->ktls_recv = c.ktls_recv;
	double cpu0 = thread_cpu_s();
	char *buf = malloc(CHUNK);
	for (size_t got = 0; got < s->bytes && s->rc == 0; got += CHUNK)
		s->rc = mig_chan_read(&c, buf, CHUNK);
	s->cpu_s = thread_cpu_s() - cpu0;
	uint8_t done = 1;
	mig_chan_write(&c, &done, 1);
	free(buf);
	mig_chan_close(&c);
	return NULL;
}

/* MSG_ZEROCOPY sends in flight: each send is numbered; the kernel reports ranges done. */
struct zc {
	uint64_t sent, done, copied;
};

/* Reads completions from the error queue; waits for one when wait. */
static int zc_reap(int fd, struct zc *z, bool wait)
{
	for (;;) {
		char ctl[128];
		struct msghdr m = {.msg_control = ctl, .msg_controllen = sizeof(ctl)};
		if (recvmsg(fd, &m, MSG_ERRQUEUE) < 0) {
			if (errno != EAGAIN)
				return -errno;
			if (!wait)
				return 0;
			struct pollfd p = {.fd = fd, .events = 0};
			poll(&p, 1, 1000); /* POLLERR is always reported */
			wait = false;
			continue;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			struct sock_extended_err e;
			memcpy(&e, CMSG_DATA(cm), sizeof(e));
			if (e.ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			z->done += (uint64_t)(e.ee_data - e.ee_info) + 1;
			if (e.ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				z->copied += (uint64_t)(e.ee_data - e.ee_info) + 1;
		}
		wait = false;
	}
}

/* All n bytes with MSG_ZEROCOPY on a non-blocking socket. */
static int zc_send(int fd, const char *p, size_t n, struct zc *z)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_ZEROCOPY | MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == ENOBUFS) { /* too much pinned: let completions come in */
				int rc = zc_reap(fd, z, true);
				if (rc)
					return rc;
				continue;
			}
			if (errno != EAGAIN)
				return -errno;
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, 1000);
			zc_reap(fd, z, false);
			continue;
		}
		z->sent++;
		p += k;
		n -= (size_t)k;
	}
	return zc_reap(fd, z, false);
}

static int run(const char *name, bool tls, bool ktls, bool zerocopy, size_t mib)
{
	struct side s = {.bytes = mib << 20};
	uint16_t port;
	if (mig_net_listen("127.0.0.1", &s.lfd, &port))
		return 1;
	struct mig_tls *ct = NULL;
	if (tls &&
	    (mig_tls_create(TOKEN, true, ktls, &s.tls) || mig_tls_create(TOKEN, false, ktls, &ct)))
		return 1;
	pthread_t t;
	pthread_create(&t, NULL, receiver, &s);
	struct mig_chan c;
	mig_chan_init(&c);
	char why[200];
	int fd = mig_net_connect("127.0.0.1", port, 5000);
	if (fd < 0 || mig_chan_connect(&c, fd, ct, 5000, why, sizeof(why))) {
		fprintf(stderr, "%s: cannot connect\n", name);
		return 1;
	}
	struct mig_hello h;
	mig_hello_encode(&h, 0, 1, 0, 0, 0, 0, TOKEN);
	mig_chan_write(&c, &h, sizeof(h));
	char *buf = malloc(CHUNK);
	memset(buf, 0xa5, CHUNK);
	uint64_t t0 = gw_now_ms();
	double cpu0 = thread_cpu_s();
	int rc = 0;
	struct zc z = {0};
	if (zerocopy && setsockopt(c.fd, SOL_SOCKET, SO_ZEROCOPY, &(int){1}, sizeof(int)))
		rc = -errno;
	for (size_t off = 0; off < s.bytes && rc == 0; off += CHUNK)
		rc = zerocopy ? zc_send(c.fd, buf, CHUNK, &z) : mig_chan_write(&c, buf, CHUNK);
	while (zerocopy && rc == 0 && z.done < z.sent)
		rc = zc_reap(c.fd, &z, true);
	uint8_t done;
	if (rc == 0)
		rc = mig_chan_read(&c, &done, 1);
	double cpu = thread_cpu_s() - cpu0;
	uint64_t ms = gw_now_ms() - t0;
	pthread_join(t, NULL);
	printf("%-22s %6zu MiB in %6llu ms: %7.0f MB/s; CPU send %.2f s, receive %.2f s; kTLS "
	       "send %s, receive %s",
	       name, mib, (unsigned long long)ms, ms ? (double)s.bytes / 1e3 / (double)ms : 0.0,
	       cpu, s.cpu_s, c.ktls_send ? "on" : "off", s.ktls_recv ? "on" : "off");
	if (zerocopy)
		printf("; %llu sends, %llu completed by a copy after all",
		       (unsigned long long)z.sent, (unsigned long long)z.copied);
	printf("%s\n", rc || s.rc ? " (FAILED)" : "");
	free(buf);
	mig_chan_close(&c);
	close(s.lfd);
	mig_tls_free(s.tls);
	mig_tls_free(ct);
	return rc || s.rc;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 2048;
	int rc = run("plain", false, false, false, mib);
	rc |= run("plain, MSG_ZEROCOPY", false, false, true, mib);
	rc |= run("TLS (OpenSSL)", true, false, false, mib);
	rc |= run("TLS (kTLS if taken)", true, true, false, mib);
	return rc;
}
