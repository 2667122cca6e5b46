/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The receiving side: one listening socket and thread per channel. Each checks the
 * handshake (version, token, channel, RAM size, configuration digest), then applies RAM
 * batches until END. When every channel has ended and the state arrived on channel 0, the
 * state is loaded and READY goes back on channel 0. Any bad input fails the whole stream
 * with a FAIL record that names the cause; the VM is then never started.
 */
#include "godwit/deadline.h"
#include "admit.h"
#include "mig_priv.h"

#include "godwit/bitmap.h"
#include "godwit/crc.h"
#include "godwit/log.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

struct mig_dchan {
	struct mig_dest *d;
	unsigned idx;
	int lfd;
	struct mig_chan io; /* set under wlock once admitted */
	uint16_t port;
	pthread_t thread;
	/* The RAM batch being received: its head, and where its pages land. */
	uint8_t head[MIG_RAMB_HEAD_MIN + 8 * MIG_BATCH_MAX];
	struct iovec iov[MIG_BATCH_MAX];
};

struct mig_dest {
	struct hv_vm *vm;
	struct mig_params p;
	unsigned n;
	struct mig_dchan ch[MIG_MAX_CHANNELS];
	struct mig_tls *tls; /* NULL: the channels run in clear */
	uint8_t *ram;
	uint64_t npages;
	uint64_t *touched; /* pages written so far; the rest are still holes */
	bool no_populate;  /* the kernel refused MADV_POPULATE_WRITE: faults it is */
	pthread_mutex_t lock, wlock;
	pthread_cond_t cond;
	unsigned ended;
	bool have_state, failed, ready;
	struct gw_buf state;
	struct mig_stats st;
	uint64_t t_start;
};

/* Sends a record on channel 0 (the return path); wlock orders concurrent writers. */
static void send_ctl_raw(struct mig_dest *d, uint32_t tag, const void *p, uint32_t len)
{
	struct gw_buf b;
	gw_buf_init(&b);
	mig_record_put(&b, tag, p, len);
	pthread_mutex_lock(&d->wlock);
	if (d->ch[0].io.fd >= 0 && !b.err)
		mig_chan_write(&d->ch[0].io, b.data, b.len);
	pthread_mutex_unlock(&d->wlock);
	gw_buf_release(&b);
}

static void send_ctl(struct mig_dest *d, uint32_t tag, const char *msg)
{
	send_ctl_raw(d, tag, msg, msg ? (uint32_t)strlen(msg) : 0);
}

static void fail(struct mig_dest *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct mig_dest *d, const char *fmt, ...)
{
	pthread_mutex_lock(&d->lock);
	bool first = !d->failed;
	if (first) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->st.error, sizeof(d->st.error), fmt, ap);
		va_end(ap);
		d->failed = true;
		d->st.state = MIG_FAILED;
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (!first)
		return;
	GW_WARN("incoming", "%s", d->st.error);
	send_ctl(d, MIG_TAG_FAIL, d->st.error);
	/* Every channel's thread ends: those still waiting for the source stop listening. */
	pthread_mutex_lock(&d->wlock);
	for (unsigned i = 0; i < d->n; i++) {
		mig_chan_shutdown(&d->ch[i].io);
		if (d->ch[i].lfd >= 0)
			shutdown(d->ch[i].lfd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&d->wlock);
}

static int check_hello(struct mig_dchan *c, const struct mig_hello *h, char *msg, size_t n)
{
	struct mig_dest *d = c->d;
	int rc = mig_hello_check(h);
	if (rc == -EBADMSG) {
		snprintf(msg, n, "channel %u: not a godwit migration stream (bad magic or CRC)",
			 c->idx);
		return MIG_REPLY_MALFORMED;
	}
	if (rc == -EPROTO) {
		snprintf(msg, n, "stream version %u is not supported (this godwit speaks %u)",
			 h->version, MIG_STREAM_VERSION);
		return MIG_REPLY_VERSION;
	}
	/* Constant-time token compare. */
	unsigned diff = 0;
	for (unsigned i = 0; i < MIG_TOKEN_LEN; i++)
		diff |= (unsigned)(h->token[i] ^ d->p.token[i]);
	if (diff) {
		snprintf(msg, n, "wrong stream token on channel %u", c->idx);
		return MIG_REPLY_TOKEN;
	}
	if (h->channel != c->idx || h->nchannels != d->n) {
		snprintf(msg, n, "channel mismatch: got %u of %u on port %u, expected %u of %u",
			 h->channel, h->nchannels, c->port, c->idx, d->n);
		return MIG_REPLY_CHANNEL;
	}
	if (h->ram_size != hv_vm_ram_size(d->vm)) {
		snprintf(
		    msg, n,
		    "not enough memory: the VM has %llu MiB of RAM, the destination VM %llu MiB",
		    (unsigned long long)(h->ram_size >> 20),
		    (unsigned long long)(hv_vm_ram_size(d->vm) >> 20));
		return MIG_REPLY_MEMORY;
	}
	if (h->config_digest != mig_config_digest(d->vm)) {
		snprintf(msg, n,
			 "the VM's configuration (vCPUs, devices) differs from the "
			 "destination's");
		return MIG_REPLY_CONFIG;
	}
	/* The incoming VM's vCPUs run at this host's TSC rate until its state is loaded. */
	int host_khz = hv_vm_tsc_khz(d->vm);
	char why[240];
	enum hv_tsc_plan plan = hv_tsc_plan(
	    le32toh(h->tsc_khz), host_khz > 0 ? (uint32_t)host_khz : 0, hv_vm_tsc_scaling(d->vm),
	    le16toh(h->flags) & MIG_HELLO_TSC_ANY, why, sizeof(why));
	if (plan == HV_TSC_REFUSE) {
		snprintf(msg, n, "%s", why);
		return MIG_REPLY_CONFIG;
	}
	if (plan == HV_TSC_DRIFT && c->idx == 0)
		GW_WARN(hv_vm_name(d->vm), "%s", why);
	return MIG_REPLY_OK;
}

static void complete(struct mig_dest *d);

static const char *tag_name(uint32_t tag)
{
	switch (tag) {
	case MIG_TAG_RAM:
		return "RAM batch";
	case MIG_TAG_STATE:
		return "VM state";
	case MIG_TAG_END:
		return "end marker";
	default:
		return "record";
	}
}

/* A read of the stream failed: the failure's reason, with what was being read. */
static void read_failed(struct mig_dchan *c, int rc, const char *what)
{
	if (rc == -EBADMSG)
		fail(c->d, "channel %u: corrupt stream: %s", c->idx, mig_chan_strerror(rc));
	else
		fail(c->d, "channel %u: stream cut inside a %s (%s)", c->idx, what,
		     mig_chan_strerror(rc));
}

/* Asks the source for a batch's pages again (channel 0's return path). */
static void send_nack(struct mig_dchan *c, const struct mig_batch_view *v)
{
	struct mig_dest *d = c->d;
	uint8_t rec[8 + 8 * MIG_BATCH_MAX];
	uint32_t hd[2] = {htole32(c->idx), 0}, n = 0;
	for (uint32_t i = 0; i < v->count; i++) {
		bool zero;
		uint64_t pg = htole64(mig_batch_entry(v, i, &zero));
		if (!zero)
			memcpy(rec + 8 + 8 * (size_t)n++, &pg, 8);
	}
	hd[1] = htole32(n);
	memcpy(rec, hd, sizeof(hd));
	/* Counted before the NACK leaves: whoever reads the NACK then sees it in the stats. */
	__atomic_add_fetch(&d->st.pages_resent, n, __ATOMIC_RELEASE);
	send_ctl_raw(d, MIG_TAG_NACK, rec, 8 + 8 * n);
}

/* Faults in RAM for [pg, pg + n) with one call, rather than one fault per page inside readv. */
static void populate(struct mig_dest *d, uint64_t pg, uint64_t n)
{
	if (!n || __atomic_load_n(&d->no_populate, __ATOMIC_RELAXED))
		return;
	if (madvise(d->ram + pg * MIG_PAGE, n * MIG_PAGE, MADV_POPULATE_WRITE) == 0)
		return;
	if (errno == EINVAL) {
		GW_DEBUG("incoming", "MADV_POPULATE_WRITE: %s: pages are faulted in one by one",
			 strerror(errno));
		__atomic_store_n(&d->no_populate, true, __ATOMIC_RELAXED);
	}
}

/*
 * Points c->iov at the batch's data pages in guest RAM. The pages still holes here are
 * populated first, each run of consecutive ones with one call: the first round brings every
 * page of a filled guest, and a page fault per page costs the receiving thread more than the
 * call does (in a test host under TCG, taking the faults was 6 % of the destination's perf
 * samples; clearing the new pages, 17 %, is the same either way).
 */
static void batch_targets(struct mig_dchan *c, const struct mig_batch_view *v)
{
	struct mig_dest *d = c->d;
	uint64_t run = 0, n = 0;
	for (uint32_t i = 0, j = 0; i < v->count; i++) {
		bool zero;
		uint64_t pg = mig_batch_entry(v, i, &zero);
		if (zero)
			continue;
		c->iov[j++] =
		    (struct iovec){.iov_base = d->ram + pg * MIG_PAGE, .iov_len = MIG_PAGE};
		if (gw_bitmap_test(d->touched, pg))
			continue;
		if (n && pg == run + n) {
			n++;
			continue;
		}
		populate(d, run, n);
		run = pg;
		n = 1;
	}
	populate(d, run, n);
}

/* len bytes of the stream into RAM at offset off, through the channel's pipe: 0, or -1 once
 * failed. */
static int splice_run(struct mig_dchan *c, uint64_t off, uint64_t len)
{
	while (len) {
		long k = mig_chan_splice_in(&c->io, len);
		if (k < 0) {
			read_failed(c, (int)k, "RAM batch");
			return -1;
		}
		int rc = hv_vm_ram_splice_in(c->d->vm, c->io.pipe[0], off, (size_t)k);
		if (rc) {
			fail(c->d, "channel %u: cannot put received pages into RAM: %s", c->idx,
			     strerror(-rc));
			return -1;
		}
		off += (uint64_t)k;
		len -= (uint64_t)k;
	}
	return 0;
}

/* The batch's data pages by splice (chan.h), each run of consecutive pages with one
 * splice_run: 0, or -1 once failed. */
static int splice_pages(struct mig_dchan *c, const struct mig_batch_view *v)
{
	uint64_t run = 0, n = 0;
	for (uint32_t i = 0; i < v->count; i++) {
		bool zero;
		uint64_t pg = mig_batch_entry(v, i, &zero);
		if (zero)
			continue;
		if (n && pg == run + n) {
			n++;
			continue;
		}
		if (n && splice_run(c, run * MIG_PAGE, n * MIG_PAGE))
			return -1;
		run = pg;
		n = 1;
	}
	return n ? splice_run(c, run * MIG_PAGE, n * MIG_PAGE) : 0;
}

/*
 * A RAM batch after its record header: the head is read and checked in full (CRC, counts,
 * every index inside RAM) before any byte lands; then the pages are read straight into guest
 * RAM, and checked against the batch's hash unless TLS authenticated them. A mismatch in a
 * batch sent while the VM ran asks for its pages again (the guest may have rewritten one
 * between the source's hash and its send); in one sent while it was paused, it fails the
 * stream. 0, or -1 once failed.
 */
static int recv_batch(struct mig_dchan *c, const struct gw_sect_hdr *hdr)
{
	struct mig_dest *d = c->d;
	if (le16toh(hdr->flags) || le32toh(hdr->length) < MIG_RAMB_HEAD_MIN) {
		fail(d, "channel %u: corrupt stream: RAM batch header", c->idx);
		return -1;
	}
	int rc = mig_chan_read(&c->io, c->head, MIG_RAMB_HEAD_MIN);
	long head_len = rc ? 0 : mig_batch_head_len(hdr, c->head);
	if (rc == 0 && head_len < 0) {
		fail(d, "channel %u: corrupt stream: RAM batch of %u bytes says it holds more",
		     c->idx, le32toh(hdr->length));
		return -1;
	}
	if (rc == 0 && head_len > (long)MIG_RAMB_HEAD_MIN)
		rc = mig_chan_read(&c->io, c->head + MIG_RAMB_HEAD_MIN,
				   (size_t)head_len - MIG_RAMB_HEAD_MIN);
	if (rc) {
		read_failed(c, rc, "RAM batch");
		return -1;
	}
	struct mig_batch_view v;
	rc = mig_batch_head_check(hdr, c->head, (size_t)head_len, d->npages, &v);
	if (rc == -EBADMSG) {
		fail(d, "channel %u: corrupt stream: CRC mismatch in the head of a RAM batch",
		     c->idx);
		return -1;
	}
	if (rc) {
		fail(d,
		     "channel %u: malformed RAM batch (page outside RAM or counts that disagree)",
		     c->idx);
		return -1;
	}
	if ((v.flags & MIG_RAMB_NO_HASH) && !c->io.ssl) {
		fail(d, "channel %u: corrupt stream: a RAM batch without CRC on a channel in clear",
		     c->idx);
		return -1;
	}
	if (c->io.pipe_cap) {
		if (splice_pages(c, &v))
			return -1;
	} else {
		batch_targets(c, &v);
		if (v.ndata && (rc = mig_chan_readv(&c->io, c->iov, (int)v.ndata))) {
			read_failed(c, rc, "RAM batch");
			return -1;
		}
	}
	__atomic_add_fetch(&d->st.bytes_sent, sizeof(*hdr) + le32toh(hdr->length),
			   __ATOMIC_RELAXED);
	uint64_t pages = 0, zeros = 0;
	mig_batch_apply_zero(&v, d->ram, d->touched, &pages, &zeros);
	__atomic_add_fetch(&d->st.pages_sent, pages, __ATOMIC_RELAXED);
	__atomic_add_fetch(&d->st.zero_pages, zeros, __ATOMIC_RELAXED);
	if ((v.flags & MIG_RAMB_NO_HASH) || mig_batch_hash_ram(&v, d->ram) == v.hash)
		return 0;
	if (v.flags & MIG_RAMB_STABLE) {
		fail(d,
		     "channel %u: corrupt stream: the pages of a RAM batch sent while the VM was "
		     "paused do not match their hash",
		     c->idx);
		return -1;
	}
	send_nack(c, &v);
	return 0;
}

/* One admitted channel's stream (c->io holds the connection from the source, h its hello):
 * the answer to the hello, then records until END or the first failure. */
static void dchan_serve(struct mig_dchan *c, const struct mig_hello *hp)
{
	struct mig_dest *d = c->d;
	struct mig_hello h = *hp;
	char msg[200];
	int rc;
	int status = check_hello(c, &h, msg, sizeof(msg));
	struct mig_reply r;
	mig_reply_encode(&r, (enum mig_reply_status)status, status ? msg : "ok");
	mig_chan_write(&c->io, &r, sizeof(r));
	if (status) {
		fail(d, "refused the stream: %s", msg);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (d->st.state == MIG_SETUP)
		d->st.state = MIG_PRECOPY;
	pthread_mutex_unlock(&d->lock);

	uint8_t *buf = NULL;
	size_t cap = 0;
	for (;;) {
		struct gw_sect_hdr hdr;
		rc = mig_chan_read(&c->io, &hdr, sizeof(hdr));
		if (rc == -EBADMSG) {
			fail(d, "channel %u: corrupt stream: %s", c->idx, mig_chan_strerror(rc));
			break;
		}
		if (rc) {
			fail(d, "channel %u: stream cut before its end (%s)", c->idx,
			     mig_chan_strerror(rc));
			break;
		}
		rc = mig_record_check_hdr(&hdr);
		if (rc) {
			fail(d, "channel %u: corrupt stream: %s record header", c->idx,
			     rc == -EPROTO ? "unsupported version in a" : "unknown or oversized");
			break;
		}
		if (hdr.magic == MIG_TAG_RAM) {
			if (recv_batch(c, &hdr))
				break;
			continue;
		}
		if (hdr.length > cap) {
			uint8_t *nb = realloc(buf, hdr.length);
			if (!nb) {
				fail(d, "out of memory receiving a %u-byte record", hdr.length);
				break;
			}
			buf = nb;
			cap = hdr.length;
		}
		if (hdr.length && (rc = mig_chan_read(&c->io, buf, hdr.length))) {
			read_failed(c, rc, tag_name(hdr.magic));
			break;
		}
		/* Without a CRC only over TLS, whose records authenticate every byte. */
		if (le16toh(hdr.flags) & GW_SECT_NO_CRC) {
			if (!c->io.ssl) {
				fail(d,
				     "channel %u: corrupt stream: a %s without CRC on a channel in "
				     "clear",
				     c->idx, tag_name(hdr.magic));
				break;
			}
		} else if (gw_crc32c(0, buf, hdr.length) != hdr.crc) {
			fail(d, "channel %u: corrupt stream: CRC mismatch in a %s of %u bytes",
			     c->idx, tag_name(hdr.magic), hdr.length);
			break;
		}
		__atomic_add_fetch(&d->st.bytes_sent, sizeof(hdr) + hdr.length, __ATOMIC_RELAXED);
		if (hdr.magic == MIG_TAG_STATE && c->idx == 0) {
			pthread_mutex_lock(&d->lock);
			d->state.len = 0;
			gw_buf_put(&d->state, buf, hdr.length);
			d->have_state = true;
			bool last = d->ended == d->n && !d->failed;
			pthread_mutex_unlock(&d->lock);
			if (last)
				complete(d);
		} else if (hdr.magic == MIG_TAG_SYNC) {
			/* Everything before it on this channel is applied: say so. */
			uint32_t ch = htole32(c->idx);
			send_ctl_raw(d, MIG_TAG_SACK, &ch, sizeof(ch));
		} else if (hdr.magic == MIG_TAG_END) {
			pthread_mutex_lock(&d->lock);
			d->ended++;
			bool last = d->ended == d->n && d->have_state && !d->failed;
			pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->lock);
			if (last)
				complete(d);
			break;
		} else if (hdr.magic == MIG_TAG_FAIL) {
			fail(d, "the source gave up: %.*s", (int)hdr.length, (const char *)buf);
			break;
		} else {
			fail(d, "channel %u: unexpected %s record", c->idx, tag_name(hdr.magic));
			break;
		}
	}
	free(buf);
}

/* Takes a connection on the channel's port into c->io. */
static void dchan_adopt(struct mig_dchan *c, int fd, SSL *ssl)
{
	struct mig_dest *d = c->d;
	pthread_mutex_lock(&d->wlock);
	mig_chan_adopt(&c->io, fd, ssl);
	/* A source that stops sending for this long is gone (a paced pre-copy sends a batch
	 * at least every few seconds; a channel without pages, a keepalive every eighth). */
	c->io.recv_timeout_ms = (int)(d->p.idle_timeout_s ? d->p.idle_timeout_s : 120) * 1000;
	c->io.send_timeout_ms = (int)d->p.stall_timeout_s * 1000;
	pthread_mutex_unlock(&d->wlock);
	int prc = ssl ? 0 : mig_chan_pipe_open(&c->io);
	if (prc)
		GW_DEBUG("incoming", "channel %u: no pipe for pages (%s): they are read by copy",
			 c->idx, strerror(-prc));
	char desc[160];
	mig_chan_describe(&c->io, desc, sizeof(desc));
	GW_INFO("incoming", "channel %u: the source connected: %s", c->idx, desc);
	pthread_mutex_lock(&d->lock);
	d->st.channels++;
	d->st.ktls_send += c->io.ktls_send;
	d->st.ktls_recv += c->io.ktls_recv;
	pthread_mutex_unlock(&d->lock);
}

static void *dchan_thread(void *arg)
{
	struct mig_dchan *c = arg;
	struct mig_dest *d = c->d;
	int to = d->p.accept_timeout_ms ? d->p.accept_timeout_ms : 60000;
	/* Anyone may connect to the port: only a connection that proves it knows the token
	 * (TLS with its key, then the hello) is the source; the others are refused. */
	struct mig_admit a = {.tls = d->tls,
			      .token = d->p.token,
			      .channel = c->idx,
			      .timeout_ms = to,
			      /* A loaded host may need seconds for a TLS handshake; a
			       * connection that sends nothing still frees its slot in time
			       * for the source, whose own bound is the stall timeout (30 s). */
			      .handshake_ms = 20000};
	struct mig_hello h;
	char msg[200];
	int fd;
	SSL *ssl;
	int rc = mig_admit_source(c->lfd, &a, &fd, &ssl, &h, msg, sizeof(msg));
	if (rc == -ETIMEDOUT) {
		fail(d, "no migration stream arrived on channel %u within %d s (%s)", c->idx,
		     to / 1000, msg);
		return NULL;
	}
	if (rc) {
		fail(d, "channel %u: stopped listening for the source: %s", c->idx, strerror(-rc));
		return NULL;
	}
	dchan_adopt(c, fd, ssl);
	dchan_serve(c, &h);
	return NULL;
}

/* A destination for vm with no channel yet; NULL when out of memory. */
static struct mig_dest *dest_alloc(struct hv_vm *vm, const struct mig_params *p)
{
	struct mig_dest *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->vm = vm;
	d->p = *p;
	d->n = p->channels;
	d->st.tls = p->tls;
	if (p->tls) {
		if (mig_tls_create(p->token, true, true, &d->tls)) {
			free(d);
			return NULL;
		}
	}
	d->ram = hv_vm_ram_base(vm);
	d->npages = hv_vm_ram_size(vm) / MIG_PAGE;
	d->touched = gw_bitmap_alloc(d->npages);
	if (!d->touched) {
		mig_tls_free(d->tls);
		free(d);
		return NULL;
	}
	/* RAM pages already written before the stream (there should be none) count as touched. */
	hv_vm_ram_present(vm, d->touched);
	d->t_start = mig_now_us();
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->wlock, NULL);
	pthread_cond_init(&d->cond, NULL);
	gw_buf_init(&d->state);
	for (unsigned i = 0; i < d->n; i++) {
		d->ch[i] = (struct mig_dchan){.d = d, .idx = i, .lfd = -1};
		mig_chan_init(&d->ch[i].io);
	}
	return d;
}

static void dest_free_unstarted(struct mig_dest *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		if (d->ch[i].lfd >= 0)
			close(d->ch[i].lfd);
	}
	gw_buf_release(&d->state);
	gw_bitmap_free(d->touched);
	mig_tls_free(d->tls);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->wlock);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int mig_dest_serve_fd(struct hv_vm *vm, const struct mig_params *p, int fd, char *err, size_t n)
{
	snprintf(err, n, "%s", "");
	if (p->channels != 1 || strlen(p->token) != MIG_TOKEN_LEN || p->tls)
		return -EINVAL;
	struct mig_dest *d = dest_alloc(vm, p);
	if (!d)
		return -ENOMEM;
	struct mig_dchan *c = &d->ch[0];
	dchan_adopt(c, fd, NULL);
	struct mig_hello h;
	if (mig_chan_read(&c->io, &h, sizeof(h)))
		fail(d, "channel 0: the source closed the connection during the handshake");
	else
		dchan_serve(c, &h);
	int rc = d->ready ? 0 : -EPROTO;
	snprintf(err, n, "%s", d->st.error);
	/* The caller owns fd: the channel lets go of it without closing it. */
	c->io.fd = -1;
	mig_chan_close(&c->io);
	dest_free_unstarted(d);
	return rc;
}

int mig_dest_listen(struct hv_vm *vm, const char *host, const struct mig_params *p,
		    struct mig_dest **out)
{
	if (p->channels == 0 || p->channels > MIG_MAX_CHANNELS || strlen(p->token) != MIG_TOKEN_LEN)
		return -EINVAL;
	struct mig_dest *d = dest_alloc(vm, p);
	if (!d)
		return -ENOMEM;
	int rc = 0;
	for (unsigned i = 0; i < d->n && rc == 0; i++)
		rc = mig_net_listen(host, &d->ch[i].lfd, &d->ch[i].port);
	if (rc) {
		dest_free_unstarted(d);
		return rc;
	}
	for (unsigned i = 0; i < d->n; i++)
		pthread_create(&d->ch[i].thread, NULL, dchan_thread, &d->ch[i]);
	*out = d;
	return 0;
}

void mig_dest_ports(struct mig_dest *d, uint16_t *ports, unsigned *n)
{
	for (unsigned i = 0; i < d->n; i++)
		ports[i] = d->ch[i].port;
	*n = d->n;
}

/* Runs on the channel thread that brought the last piece: loads the state, says READY. */
static void complete(struct mig_dest *d)
{
	uint64_t t0 = mig_now_us();
	int rc = hv_vm_load_state(d->vm, d->state.data, d->state.len);
	uint64_t t1 = mig_now_us();
	if (rc) {
		fail(d, "the VM state did not load: %s", strerror(-rc));
		return;
	}
	if (d->p.verify)
		d->st.ram_checksum = mig_ram_checksum(d->vm);
	/* Ready before READY goes out: whoever hears it may start the VM at once. */
	pthread_mutex_lock(&d->lock);
	d->ready = true;
	d->st.state = MIG_HANDOVER;
	d->st.total_time_us = mig_now_us() - d->t_start;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	send_ctl(d, MIG_TAG_READY, NULL);
	GW_INFO("incoming", "all state received; loaded in %.1f ms; ready to run",
		(t1 - t0) / 1000.0);
}

int mig_dest_wait(struct mig_dest *d, int timeout_ms)
{
	struct timespec ts = gw_deadline_ms(timeout_ms);
	pthread_mutex_lock(&d->lock);
	while (!d->failed && !d->ready) {
		if (timeout_ms < 0)
			pthread_cond_wait(&d->cond, &d->lock);
		else if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	}
	int rc = d->failed ? -EPROTO : d->ready ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

const char *mig_dest_error(struct mig_dest *d)
{
	return d->st.error;
}

void mig_dest_stats(struct mig_dest *d, struct mig_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

void mig_dest_abort(struct mig_dest *d)
{
	pthread_mutex_lock(&d->lock);
	bool ready = d->ready;
	pthread_mutex_unlock(&d->lock);
	if (!ready)
		fail(d, "the incoming migration was aborted");
}

void mig_dest_free(struct mig_dest *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->wlock);
	for (unsigned i = 0; i < d->n; i++) {
		mig_chan_shutdown(&d->ch[i].io);
		if (d->ch[i].lfd >= 0)
			shutdown(d->ch[i].lfd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&d->wlock);
	for (unsigned i = 0; i < d->n; i++) {
		pthread_join(d->ch[i].thread, NULL);
		mig_chan_close(&d->ch[i].io);
		close(d->ch[i].lfd);
	}
	mig_tls_free(d->tls);
	gw_buf_release(&d->state);
	gw_bitmap_free(d->touched);
	free(d);
}
