/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sending side. One thread per channel sends the pages of its chunks in each round; the
 * session thread runs the rounds: all of RAM first, then what was dirtied meanwhile, until
 * the rest fits the downtime limit; then it pauses the VM, sends the last pages and the
 * state, and waits for the destination's READY. A reader on channel 0 hears READY or FAIL.
 */
#include "godwit/deadline.h"
#include "converge.h"
#include "mig_priv.h"

#include "godwit/bitmap.h"
#include "godwit/dma_shadow.h"
#include "godwit/log.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mig_schan {
	struct mig_source *s;
	unsigned idx;
	struct mig_chan io;
	pthread_t thread;
	struct mig_batch batch;
	uint64_t bytes;
	int err;
	/* Writes from outside the channel's thread (the session's SYNC) against its own
	 * keepalives; the thread's page batches need none (the session writes only between
	 * rounds, when the thread waits). */
	pthread_mutex_t wlock;
	bool ended;	  /* it sent its END */
	unsigned epoch;	  /* the pacing epoch it last saw */
	uint64_t pace_b0; /* its bytes when that epoch began */
};

struct mig_source {
	struct hv_vm *vm;
	struct mig_params p;
	uint64_t dma_pages0, dma_bytes0; /* hv's device DMA counters when tracking began */
	char host[256];
	uint16_t ports[MIG_MAX_CHANNELS];
	unsigned n;
	unsigned active; /* channels 0..active-1 carry pages; fixed once the first page went */
	uint64_t part_lo, part_hi; /* the pages of work the round under way covers */
	/* max_bandwidth is kept over an epoch: a round, or one step of the channel measure
	 * (many short ranges, whose pauses in between must not lower the rate) */
	unsigned epoch;
	uint64_t epoch_t0;
	struct mig_schan ch[MIG_MAX_CHANNELS];
	struct mig_tls *tls; /* NULL: the channels run in clear */
	uint64_t npages;
	uint64_t *work;	   /* pages to send in the current round */
	uint64_t *present; /* pages RAM holds data for; the others are holes: zeros */
	uint64_t *resend;  /* pages the destination asked for again (NACK), under lock */
	unsigned sacks;	   /* channels that confirmed a SYNC */

	pthread_t session, reader, throttler;
	bool reader_started, throttler_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned round;	  /* incremented to start a round */
	bool round_final; /* the last round: also state and END */
	unsigned done;	  /* channels finished with the current round */
	bool quit;	  /* channel threads exit */
	bool cancel;
	bool dest_ready, dest_failed;
	char dest_msg[200];
	bool dest_said; /* dest_msg is the destination's own FAIL reason */
	bool reader_done;
	char local_err[256]; /* a channel's write failure: often the echo of the real cause */
	bool decided, commit;
	struct gw_buf state; /* hv_vm_save_state at stop-and-copy */
	uint32_t throttle_pct;
	struct mig_stats st;
	uint64_t t_start;
	bool throttle_off;     /* the throttler ends */
	uint64_t suspended_at; /* when the --timeout paused the VM (0: it did not) */
	bool stop_prepared;    /* before_stop ran (the --timeout runs it before it suspends) */
	/* The round under way (in_round): its pages, and pages_sent when it began, so that the
	 * stats' bytes_remaining falls as it goes instead of only between rounds. */
	bool in_round;
	uint64_t round_pages, round_sent0;
	bool probed; /* probe_channels ran (in the first round) */
};

static void set_error(struct mig_source *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct mig_source *s, const char *fmt, ...)
{
	pthread_mutex_lock(&s->lock);
	if (!s->st.error[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->st.error, sizeof(s->st.error), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static bool should_stop(struct mig_source *s)
{
	return s->cancel || s->dest_failed || s->st.error[0] || s->local_err[0];
}

/* Unblocks every thread stuck in a socket call. */
static void shutdown_channels(struct mig_source *s)
{
	for (unsigned i = 0; i < s->n; i++)
		mig_chan_shutdown(&s->ch[i].io);
}

static int send_buf(struct mig_schan *c, struct gw_buf *b)
{
	if (b->err)
		return b->err;
	int rc = mig_chan_write(&c->io, b->data, b->len);
	if (rc == 0) {
		c->bytes += b->len;
		__atomic_add_fetch(&c->s->st.bytes_sent, b->len, __ATOMIC_RELAXED);
	}
	return rc;
}

/* Keeps a channel under its share of max_bandwidth over the round. */
static void pace(struct mig_schan *c, unsigned active, uint64_t round_start_us,
		 uint64_t round_bytes)
{
	uint64_t bw = c->s->p.max_bandwidth;
	if (!bw)
		return;
	uint64_t share = bw / active;
	uint64_t due_us = round_bytes * 1000000u / (share ? share : 1);
	/* In short naps, so that a failure or cancel is seen at once. */
	for (;;) {
		uint64_t el = mig_now_us() - round_start_us;
		if (due_us <= el || should_stop(c->s))
			break;
		uint64_t nap = due_us - el;
		usleep((useconds_t)(nap > 20000 ? 20000 : nap));
	}
}

/* Sends the batch under construction (if any) straight from guest RAM, and starts the next. */
static int send_batch(struct mig_schan *c)
{
	struct mig_source *s = c->s;
	if (!c->batch.count)
		return 0;
	int iovcnt;
	size_t len = mig_batch_end(&c->batch, &iovcnt);
	__atomic_add_fetch(&s->st.pages_sent, c->batch.count, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->st.zero_pages, c->batch.zero, __ATOMIC_RELAXED);
	/* By reference the kernel reads a page when it transmits it (over loopback, when the
	 * destination takes it), which a page the
	 * guest rewrites meanwhile only costs a NACK while the VM runs. With the VM paused
	 * (MIG_RAMB_STABLE) a mismatch fails the stream, and a device still writing RAM there
	 * must not have longer to do it than the copy takes. */
	int rc = c->batch.flags & MIG_RAMB_STABLE
		     ? mig_chan_writev(&c->io, c->batch.iov, iovcnt)
		     : mig_chan_writev_pages(&c->io, c->batch.iov, iovcnt);
	if (rc == 0) {
		c->bytes += len;
		__atomic_add_fetch(&s->st.bytes_sent, len, __ATOMIC_RELAXED);
	}
	mig_batch_begin(&c->batch, c->batch.flags);
	return rc;
}

/* This channel's pages of work in [lo, hi), its chunks out of `active` (none when it is not
 * one of them); the final round adds the state (channel 0) and END on every channel. */
static int send_round(struct mig_schan *c, bool final, uint64_t lo, uint64_t hi, unsigned active,
		      uint64_t start)
{
	struct mig_source *s = c->s;
	uint8_t *ram = hv_vm_ram_base(s->vm);
	uint64_t bytes0 = c->pace_b0;
	/* Over TLS the records authenticate the pages; while the VM is paused nothing rewrites
	 * them, so a page that does not match its hash there was damaged on the way. */
	mig_batch_begin(&c->batch,
			(c->io.ssl ? MIG_RAMB_NO_HASH : 0) | (final ? MIG_RAMB_STABLE : 0));
	if (c->idx >= active)
		lo = hi; /* no pages: only what the final round adds */
	for (uint64_t pg = gw_bitmap_next_set(s->work, hi, lo); pg < hi;
	     pg = gw_bitmap_next_set(s->work, hi, pg + 1)) {
		if (mig_channel_of(pg, active) != c->idx) {
			/* skip to this channel's next chunk */
			uint64_t next = (pg / MIG_CHUNK_PAGES + 1) * MIG_CHUNK_PAGES;
			pg = next - 1;
			continue;
		}
		/* A hole was never written: it is zeros, and reading it would allocate it. */
		if (gw_bitmap_test(s->present, pg))
			mig_batch_add(&c->batch, pg, ram + pg * MIG_PAGE);
		else
			mig_batch_add_zero(&c->batch, pg);
		if (c->batch.count == MIG_BATCH_PAGES) {
			int rc = send_batch(c);
			if (rc)
				return rc;
			if (should_stop(s))
				return -ECANCELED;
			pace(c, active, start, c->bytes - bytes0);
		}
	}
	int rc = send_batch(c);
	if (rc)
		return rc;
	if (!final) {
		/* A round smaller than a batch per channel is paced too, or it would go out
		 * unlimited (seen: 870 KB in 18 ms under a 133 KB/s limit). The final round is
		 * not held at its end: that would only lengthen the downtime. */
		pace(c, active, start, c->bytes - bytes0);
		return 0;
	}
	struct gw_buf rec;
	gw_buf_init(&rec);
	if (c->idx == 0)
		mig_record_put(&rec, MIG_TAG_STATE, s->state.data, (uint32_t)s->state.len);
	mig_record_put(&rec, MIG_TAG_END, NULL, 0);
	rc = send_buf(c, &rec);
	gw_buf_release(&rec);
	c->ended = rc == 0;
	return rc;
}

/* An empty RAM batch: what a channel without pages sends so that the destination, which
 * gives up on a channel silent for idle_timeout_s, keeps it. A failure shows in the rounds. */
static void keepalive(struct mig_schan *c)
{
	mig_batch_begin(&c->batch, c->io.ssl ? MIG_RAMB_NO_HASH : 0);
	int iovcnt;
	size_t len = mig_batch_end(&c->batch, &iovcnt);
	pthread_mutex_lock(&c->wlock);
	int rc = mig_chan_writev(&c->io, c->batch.iov, iovcnt);
	pthread_mutex_unlock(&c->wlock);
	if (rc == 0) {
		c->bytes += len;
		__atomic_add_fetch(&c->s->st.bytes_sent, len, __ATOMIC_RELAXED);
	}
}

/* How often a channel without pages sends a keepalive: an eighth of the idle timeout. */
static long keepalive_ms(const struct mig_source *s)
{
	long ms = (long)s->p.idle_timeout_s * 1000 / 8;
	return ms < 250 ? 250 : ms;
}

static void *chan_thread(void *arg)
{
	struct mig_schan *c = arg;
	struct mig_source *s = c->s;
	unsigned seen = 0;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->quit && s->round == seen) {
			if (c->idx < s->active || c->ended || c->err) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			/* Left without pages by the measure: it waits for the final round's END,
			 * keeping the destination from giving up on it meanwhile. */
			struct timespec ts = gw_deadline_ms(keepalive_ms(s));
			if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT &&
			    !s->quit && s->round == seen) {
				pthread_mutex_unlock(&s->lock);
				keepalive(c);
				pthread_mutex_lock(&s->lock);
			}
		}
		if (s->quit)
			break;
		seen = s->round;
		bool final = s->round_final;
		uint64_t lo = s->part_lo, hi = s->part_hi, t0 = s->epoch_t0;
		unsigned active = s->active;
		if (c->epoch != s->epoch) {
			c->epoch = s->epoch;
			c->pace_b0 = c->bytes;
		}
		pthread_mutex_unlock(&s->lock);
		int rc = send_round(c, final, lo, hi, active, t0);
		pthread_mutex_lock(&s->lock);
		if (rc == -ETIMEDOUT && !s->local_err[0] && !s->cancel && !s->dest_failed)
			snprintf(s->local_err, sizeof(s->local_err),
				 "channel %u: the destination took no data for %u s (stall "
				 "timeout): it may be stopped or overloaded",
				 c->idx, s->p.stall_timeout_s);
		else if (rc && rc != -ECANCELED && !s->local_err[0] && !s->cancel &&
			 !s->dest_failed)
			snprintf(s->local_err, sizeof(s->local_err),
				 "channel %u: connection to the destination lost: %s", c->idx,
				 mig_chan_strerror(rc));
		if (rc)
			c->err = rc;
		s->done++;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* A NACK: pages of a batch sent while the VM ran that did not match their hash at the
 * destination (rewritten by the guest between hash and send, or damaged on the way). They go
 * again in the next round, or in the final one, which the SYNC before the pause orders after
 * every NACK of pre-copy. -EBADMSG when malformed. */
static int take_nack(struct mig_source *s, const char *buf, uint32_t len)
{
	uint32_t hd[2];
	if (len < sizeof(hd))
		return -EBADMSG;
	memcpy(hd, buf, sizeof(hd));
	uint32_t count = le32toh(hd[1]);
	if (count > MIG_BATCH_MAX || len != sizeof(hd) + 8 * (uint64_t)count)
		return -EBADMSG;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t pg;
		memcpy(&pg, buf + sizeof(hd) + 8 * (size_t)i, 8);
		pg = le64toh(pg);
		if (pg < s->npages)
			gw_bitmap_set(s->resend, pg);
	}
	s->st.pages_resent += count;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Adds the pages the destination asked for again to the next round's work. */
static void take_resends(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	for (uint64_t w = 0; w < (s->npages + 63) / 64; w++) {
		s->work[w] |= s->resend[w];
		s->resend[w] = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Channel 0's return direction: SACKs, then READY, or FAIL with the destination's reason. */
static void *reader_thread(void *arg)
{
	struct mig_source *s = arg;
	struct mig_chan *io = &s->ch[0].io;
	char msg[200] = "";
	bool ready = false;
	int rc = 0;
	for (;;) {
		struct gw_sect_hdr h;
		char buf[8 + 8 * MIG_BATCH_MAX];
		rc = mig_chan_read(io, &h, sizeof(h));
		if (rc == 0)
			rc = mig_record_check_hdr(&h);
		if (rc)
			break;
		if (h.length >= sizeof(buf)) {
			snprintf(msg, sizeof(msg), "oversized record from the destination");
			break;
		}
		if ((rc = mig_chan_read(io, buf, h.length)))
			break;
		if (h.magic == MIG_TAG_NACK) {
			if (take_nack(s, buf, h.length)) {
				snprintf(msg, sizeof(msg),
					 "malformed request to resend pages from the destination");
				break;
			}
			continue;
		}
		if (h.magic == MIG_TAG_SACK) {
			pthread_mutex_lock(&s->lock);
			s->sacks++;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		if (h.magic == MIG_TAG_READY)
			ready = true;
		else if (h.magic == MIG_TAG_FAIL)
			snprintf(msg, sizeof(msg), "%.*s", (int)h.length, buf);
		if (h.magic == MIG_TAG_FAIL)
			s->dest_said = true;
		else
			snprintf(msg, sizeof(msg), "unexpected record from the destination");
		break;
	}
	pthread_mutex_lock(&s->lock);
	if (ready) {
		s->dest_ready = true;
	} else if (!s->cancel) {
		s->dest_failed = true;
		if (!msg[0])
			snprintf(msg, sizeof(msg), "the destination closed the stream (%s)",
				 rc ? mig_chan_strerror(rc) : "no reason given");
		snprintf(s->dest_msg, sizeof(s->dest_msg), "%s", msg);
	}
	s->reader_done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (!ready && !s->cancel)
		shutdown_channels(s);
	return NULL;
}

/* Under the lock: waits until *count reaches want or the session stops, the stall timeout
 * counting from each change of *count (*seen: the value last seen). ETIMEDOUT or 0. */
static int wait_progress(struct mig_source *s, unsigned *seen, const unsigned *count, unsigned want)
{
	uint32_t to = s->p.stall_timeout_s;
	struct timespec ts = gw_deadline_ms((long)to * 1000);
	while (*count < want && !should_stop(s)) {
		if (!to) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		if (*count != *seen) {
			*seen = *count;
			ts = gw_deadline_ms((long)to * 1000);
		}
		if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT &&
		    *count == *seen && !should_stop(s))
			return ETIMEDOUT;
	}
	*seen = *count;
	return 0;
}

/* Waits until the destination has applied everything sent so far, so that the pause that
 * follows does not also wait for a backlog in socket buffers. */
static int sync_channels(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	s->sacks = 0;
	pthread_mutex_unlock(&s->lock);
	struct gw_buf rec;
	gw_buf_init(&rec);
	mig_record_put(&rec, MIG_TAG_SYNC, NULL, 0);
	int rc = 0;
	for (unsigned i = 0; i < s->n && rc == 0; i++) {
		pthread_mutex_lock(&s->ch[i].wlock);
		rc = mig_chan_write(&s->ch[i].io, rec.data, rec.len);
		pthread_mutex_unlock(&s->ch[i].wlock);
		if (rc == 0)
			__atomic_add_fetch(&s->st.bytes_sent, rec.len, __ATOMIC_RELAXED);
	}
	gw_buf_release(&rec);
	if (rc == -ETIMEDOUT) {
		set_error(s, "the destination took no data for %u s (stall timeout)",
			  s->p.stall_timeout_s);
		return rc;
	}
	if (rc) {
		set_error(s, "connection to the destination lost: %s", mig_chan_strerror(rc));
		return rc;
	}
	/* Each confirmation is progress: the stall timeout counts from the last one. */
	pthread_mutex_lock(&s->lock);
	unsigned seen = s->sacks;
	int wr = wait_progress(s, &seen, &s->sacks, s->n);
	rc = s->sacks < s->n ? -ECANCELED : 0;
	pthread_mutex_unlock(&s->lock);
	if (wr == ETIMEDOUT) {
		set_error(s,
			  "the destination confirmed %u of %u channels' data within %u s (stall "
			  "timeout): it may be stopped or overloaded",
			  seen, s->n, s->p.stall_timeout_s);
		return -ETIMEDOUT;
	}
	return rc;
}

/* Auto-converge: pauses the vCPUs for throttle_pct of every 100 ms. */
static void *throttle_thread(void *arg)
{
	struct mig_source *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->quit && !s->throttle_off) {
		unsigned pct = s->throttle_pct;
		pthread_mutex_unlock(&s->lock);
		if (pct) {
			hv_vm_pause(s->vm);
			usleep(pct * 1000);
			hv_vm_resume(s->vm);
			usleep((100 - pct) * 1000);
		} else {
			usleep(50 * 1000);
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void stop_throttler(struct mig_source *s);
static int run_hook(struct mig_source *s, int (*hook)(void *, char *, size_t));

/* Under the lock: milliseconds until the --timeout acts; -1 when it never will (none, or it
 * already did), 0 when it is due. */
static long timeout_left_ms(struct mig_source *s)
{
	if (!s->p.timeout_s || s->st.timed_out)
		return -1;
	uint64_t due = s->t_start + (uint64_t)s->p.timeout_s * 1000000u, now = mig_now_us();
	return now >= due ? 0 : (long)((due - now + 999) / 1000);
}

/*
 * virsh's --timeout: pre-copy has run timeout_s without converging. "cancel" ends the
 * migration as a cancel does (the VM keeps running here); "suspend" pauses the VM, so that
 * the round under way and the stop-and-copy after it finish with nothing dirtied meanwhile.
 */
static void timeout_fire(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	s->st.timed_out = true;
	if (s->p.timeout_action == MIG_TIMEOUT_CANCEL) {
		if (!s->st.error[0])
			snprintf(s->st.error, sizeof(s->st.error),
				 "not finished after %u s (--timeout): cancelled, as its timeout "
				 "action says",
				 s->p.timeout_s);
		s->cancel = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		shutdown_channels(s);
		return;
	}
	pthread_mutex_unlock(&s->lock);
	stop_throttler(s);
	/* What must be prepared while the guest still runs (a driver resetting a VF) is
	 * prepared now: once suspended the guest could not react. */
	if (run_hook(s, s->p.before_stop))
		return;
	s->stop_prepared = true;
	uint64_t t = mig_now_us();
	int rc = hv_vm_pause(s->vm);
	if (rc) {
		set_error(s, "--timeout: cannot suspend the VM: %s", strerror(-rc));
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->suspended_at = t;
	s->throttle_pct = s->st.throttle_pct = 0;
	pthread_mutex_unlock(&s->lock);
	GW_INFO("migrate",
		"pre-copy not finished after %u s (--timeout): VM suspended, the rest goes as "
		"stop-and-copy",
		s->p.timeout_s);
}

/* Sends the pages of work in [lo, hi) on every channel and waits for all of them; in
 * pre-copy the --timeout acts in the middle of it. */
static int run_range(struct mig_source *s, bool final, uint64_t lo, uint64_t hi, bool new_epoch)
{
	pthread_mutex_lock(&s->lock);
	if (new_epoch) {
		s->epoch++;
		s->epoch_t0 = mig_now_us();
	}
	s->part_lo = lo;
	s->part_hi = hi;
	s->done = 0;
	s->round_final = final;
	s->round++;
	pthread_cond_broadcast(&s->cond);
	while (s->done < s->n) {
		long left = final ? -1 : timeout_left_ms(s);
		if (left == 0) {
			pthread_mutex_unlock(&s->lock);
			timeout_fire(s);
			pthread_mutex_lock(&s->lock);
		} else if (left > 0) {
			struct timespec ts = gw_deadline_ms(left);
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		} else {
			pthread_cond_wait(&s->cond, &s->lock);
		}
	}
	int rc = should_stop(s) ? -ECANCELED : 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* --channels auto's measure (mig_params.probe_channels), at the start of the first round:
 * steps of PROBE_STEP_BYTES (or PROBE_STEP_US) of that round's pages on 1, 2, ... channels,
 * until one more channel adds less than a tenth to the rate. What it sent is off the round's
 * work; a SYNC then lets the destination apply all of it, so that no page of the probe can
 * land after its next copy, which may go on another channel. */
#define PROBE_STEP_BYTES (48u << 20)
#define PROBE_STEP_US	 500000u
#define PROBE_MIN_BYTES	 (8u << 20) /* a step cut short by RAM's end says nothing below */
/* Sent before each step's clock starts: what the new channel's socket buffers swallow at once
 * (several MiB on a fast link) is not the link's rate. */
#define PROBE_WARM_BYTES (8u << 20)
#define PROBE_GAIN	 1.10

/* Appends to out (cap bytes, len used so far) what fits of fmt. */
static void say(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	if (*len + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static int probe_channels(struct mig_source *s)
{
	uint64_t nchunks = (s->npages + MIG_CHUNK_PAGES - 1) / MIG_CHUNK_PAGES, next = 0;
	char out[sizeof(s->st.channels_probe)] = "";
	size_t cap = sizeof(out) - 24, len = 0; /* room kept for the choice at the end */
	double best = 0;
	unsigned pick = 0;
	bool decided = false; /* a step gained too little, or every channel was measured */
	for (unsigned k = 1; k <= s->n && next < nchunks; k++) {
		pthread_mutex_lock(&s->lock);
		s->active = k;
		pthread_mutex_unlock(&s->lock);
		uint64_t t0 = mig_now_us(),
			 b0 = __atomic_load_n(&s->st.bytes_sent, __ATOMIC_RELAXED);
		uint64_t b = 0, el = 0;
		bool warm = false;
		uint64_t first = next * MIG_CHUNK_PAGES; /* the step's first range: a new epoch */
		while (next < nchunks && b < PROBE_STEP_BYTES && el < PROBE_STEP_US) {
			uint64_t lo = next * MIG_CHUNK_PAGES, hi = (next + k) * MIG_CHUNK_PAGES;
			if (hi > s->npages)
				hi = s->npages;
			next += k;
			int rc = run_range(s, false, lo, hi, lo == first);
			if (rc)
				return rc;
			gw_bitmap_clear_range(s->work, lo, hi - lo);
			b = __atomic_load_n(&s->st.bytes_sent, __ATOMIC_RELAXED) - b0;
			el = mig_now_us() - t0;
			if (!warm && b >= PROBE_WARM_BYTES) {
				warm = true; /* the clock starts now */
				t0 += el;
				b0 += b;
				b = el = 0;
			}
		}
		/* A step ends on its time or its bytes, and then its rate is the link's (or the
		 * cores'); one that RAM's end cut short is a rate only with enough data. */
		if (el < PROBE_STEP_US && b < PROBE_STEP_BYTES && b < PROBE_MIN_BYTES) {
			say(out, cap, &len, "%s%u: too little data to measure", len ? ", " : "", k);
			break;
		}
		double rate = (double)b / ((double)(el ? el : 1) / 1e6);
		say(out, cap, &len, rate < 10e6 ? "%s%u: %.2f MB/s" : "%s%u: %.0f MB/s",
		    len ? ", " : "", k, rate / 1e6);
		if (pick && rate < best * PROBE_GAIN) {
			decided = true;
			break;
		}
		best = rate > best ? rate : best;
		pick = k;
		decided = k == s->n;
	}
	/* Without a step that gained too little, whether more channels pay is unknown: all of
	 * them, as without the measure. */
	if (!decided)
		pick = s->n;
	cap = sizeof(out);
	say(out, cap, &len, " -> %u of %u", pick, s->n);
	pthread_mutex_lock(&s->lock);
	s->active = pick;
	s->st.channels_used = (uint8_t)pick;
	memcpy(s->st.channels_probe, out, sizeof(out));
	pthread_mutex_unlock(&s->lock);
	GW_INFO("migrate", "channels measured: %s", out);
	return sync_channels(s);
}

/* One round: every page of work, on the channels that carry pages; the first round of a
 * migration with probe_channels starts with the measure. */
static int run_round(struct mig_source *s, bool final)
{
	gw_bitmap_zero(s->present, s->npages);
	if (hv_vm_ram_present(s->vm, s->present))
		gw_bitmap_set_range(s->present, 0, s->npages); /* unknown: read every page */
	uint64_t pages = gw_bitmap_count(s->work, s->npages);
	pthread_mutex_lock(&s->lock);
	s->round_pages = pages;
	s->round_sent0 = __atomic_load_n(&s->st.pages_sent, __ATOMIC_RELAXED);
	s->in_round = true;
	bool probe = s->p.probe_channels && !s->probed && !final && s->n > 1;
	s->probed = true;
	pthread_mutex_unlock(&s->lock);
	int rc = probe ? probe_channels(s) : 0;
	if (rc == 0)
		rc = run_range(s, final, 0, s->npages, true);
	pthread_mutex_lock(&s->lock);
	s->in_round = false;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int handshake(struct mig_source *s, unsigned i)
{
	struct mig_schan *c = &s->ch[i];
	int fd = mig_net_connect(s->host, s->ports[i], 10000);
	if (fd < 0) {
		set_error(s, "cannot connect channel %u to %s:%u: %s", i, s->host, s->ports[i],
			  strerror(-fd));
		return fd;
	}
	/* The handshake is bounded even without a stall timeout: a destination that takes
	 * the connection and says nothing must not hold the session in setup. */
	int hs_ms = (int)(s->p.stall_timeout_s ? s->p.stall_timeout_s : 30) * 1000;
	char why[200];
	int rc = mig_chan_connect(&c->io, fd, s->tls, hs_ms, why, sizeof(why));
	if (rc) {
		set_error(s, "TLS handshake on channel %u failed: %s", i, why);
		return rc;
	}
	c->io.send_timeout_ms = hs_ms;
	c->io.recv_timeout_ms = hs_ms;
	struct mig_hello h;
	int khz = hv_vm_tsc_khz(s->vm);
	mig_hello_encode(&h, (uint16_t)i, (uint16_t)s->n, mig_config_digest(s->vm),
			 hv_vm_ram_size(s->vm), khz > 0 ? (uint32_t)khz : 0,
			 s->p.allow_tsc_change ? MIG_HELLO_TSC_ANY : 0, s->p.token);
	struct mig_reply r;
	rc = mig_chan_write(&c->io, &h, sizeof(h));
	if (rc == 0)
		rc = mig_chan_read(&c->io, &r, sizeof(r));
	if (rc) {
		set_error(s, "handshake on channel %u failed: %s", i,
			  rc == -ENODATA     ? "the destination closed the connection"
			  : rc == -ETIMEDOUT ? "the destination did not answer"
					     : mig_chan_strerror(rc));
		return rc;
	}
	if (mig_reply_check(&r)) {
		set_error(s, "the destination's handshake reply is not a godwit reply");
		return -EBADMSG;
	}
	if (r.status != MIG_REPLY_OK) {
		set_error(s, "the destination refused the stream: %.*s", (int)sizeof(r.message),
			  r.message);
		return -EPROTO;
	}
	/* From here the reader waits as long as the session runs; writes that stall fail. */
	c->io.recv_timeout_ms = 0;
	c->io.send_timeout_ms = (int)s->p.stall_timeout_s * 1000;
	int prc = s->tls ? 0 : mig_chan_pipe_open(&c->io);
	if (prc)
		GW_DEBUG("migrate", "channel %u: no pipe for pages (%s): they are sent by copy", i,
			 strerror(-prc));
	char desc[160];
	mig_chan_describe(&c->io, desc, sizeof(desc));
	GW_INFO("migrate", "channel %u: %s", i, desc);
	pthread_mutex_lock(&s->lock);
	s->st.channels++;
	s->st.ktls_send += c->io.ktls_send;
	s->st.ktls_recv += c->io.ktls_recv;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * Moves the session along the state table (session.c), and does what the table says: when the
 * source stays the owner, the VM runs again (it may be paused for stop-and-copy or the
 * handover) and what was prepared for the move is undone. -EINVAL, nothing changed, when the
 * event is not allowed in the current state.
 */
static int finish_state(struct mig_source *s, enum mig_event ev, enum mig_state *was)
{
	struct mig_transition t;
	pthread_mutex_lock(&s->lock);
	*was = s->st.state;
	int rc = mig_transition(s->st.state, ev, &t);
	if (rc == 0) {
		s->st.state = t.next;
		if (t.resume_source) {
			hv_vm_resume(s->vm);
			if (s->p.stays)
				s->p.stays(s->p.hook_opaque);
		}
	}
	s->st.total_time_us = mig_now_us() - s->t_start;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* finish_state for a caller that has nobody to return the refusal to. */
static void step(struct mig_source *s, enum mig_event ev)
{
	enum mig_state from;
	if (finish_state(s, ev, &from))
		GW_WARN("migrate", "event '%s' is not allowed in state %s; ignored",
			mig_event_name(ev), mig_state_name(from));
}

/* Ends the auto-converge throttler, which leaves the vCPUs running. */
static void stop_throttler(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	s->throttle_off = true;
	pthread_mutex_unlock(&s->lock);
	if (s->throttler_started) {
		pthread_join(s->throttler, NULL);
		s->throttler_started = false;
	}
}

/* Setup: every channel's handshake, its sender thread, and the reader on channel 0. */
static int connect_channels(struct mig_source *s)
{
	int rc = 0;
	for (unsigned i = 0; i < s->n && rc == 0; i++)
		rc = handshake(s, i);
	for (unsigned i = 0; i < s->n; i++) {
		if (s->ch[i].io.fd >= 0)
			pthread_create(&s->ch[i].thread, NULL, chan_thread, &s->ch[i]);
	}
	if (rc)
		return rc;
	pthread_create(&s->reader, NULL, reader_thread, s);
	s->reader_started = true;
	return 0;
}

/* Dirty tracking from here on (KVM's log and device DMA), and the throttler. */
/* One of the caller's preparations (before_track, before_stop): its error fails the
 * migration with its reason. */
static int run_hook(struct mig_source *s, int (*hook)(void *, char *, size_t))
{
	if (!hook)
		return 0;
	char why[200] = "";
	int rc = hook(s->p.hook_opaque, why, sizeof(why));
	if (rc)
		set_error(s, "%s", why[0] ? why : strerror(-rc));
	return rc;
}

static int start_tracking(struct mig_source *s)
{
	int rc = run_hook(s, s->p.before_track);
	if (rc)
		return rc;
	uint64_t pages0, bytes0;
	hv_dirty_dma_stats(s->vm, &pages0, &bytes0);
	s->dma_bytes0 = bytes0;
	__atomic_store_n(&s->dma_pages0, pages0, __ATOMIC_RELEASE); /* stats read it first */
	hv_dirty_set_dma_mode(s->vm, s->p.dma_mode);
	rc = hv_dirty_start(s->vm);
	if (rc) {
		set_error(s, "cannot start dirty tracking: %s", strerror(-rc));
		return rc;
	}
	if (s->p.auto_converge) {
		pthread_create(&s->throttler, NULL, throttle_thread, s);
		s->throttler_started = true;
	}
	return 0;
}

/* Pre-copy: all of RAM, then what was dirtied meanwhile, until mig_converge_decide says stop
 * (0) or give up (an error). */
static int precopy(struct mig_source *s)
{
	gw_bitmap_set_range(s->work, 0, s->npages);
	uint64_t prev_dirty = UINT64_MAX;
	for (;;) {
		uint64_t t0 = mig_now_us(), b0 = s->st.bytes_sent;
		s->st.iteration++;
		int rc = run_round(s, false);
		if (rc)
			return rc;
		struct mig_round r = {
		    .iteration = s->st.iteration,
		    .duration_us = mig_now_us() - t0,
		    .bytes = s->st.bytes_sent - b0,
		    .prev_dirty_pages = prev_dirty,
		};
		gw_bitmap_zero(s->work, s->npages);
		rc = hv_dirty_collect(s->vm, s->work);
		if (rc) {
			set_error(s, "reading the dirty log failed: %s", strerror(-rc));
			return rc;
		}
		take_resends(s);
		r.dirty_pages = gw_bitmap_count(s->work, s->npages);
		r.elapsed_us = mig_now_us() - s->t_start;
		struct mig_decision d;
		pthread_mutex_lock(&s->lock);
		r.bandwidth_bps = s->st.bandwidth_bps;
		r.throttle_pct = s->throttle_pct;
		mig_converge_decide(&s->p, &r, &d);
		if (s->st.timed_out) {
			/* Suspended by the --timeout: nothing to throttle, and nothing to wait
			 * for; a timeout that cancelled ended the round already. */
			d.throttle_pct = 0;
			if (d.verdict == MIG_VERDICT_NEXT_ROUND)
				d.verdict = MIG_VERDICT_FORCED;
		}
		s->st.bandwidth_bps = d.bandwidth_bps;
		s->st.dirty_rate_pps = d.dirty_rate_pps;
		s->st.bytes_remaining = d.bytes_remaining;
		s->st.expected_downtime_us = d.expected_downtime_us;
		s->throttle_pct = s->st.throttle_pct = d.throttle_pct;
		pthread_mutex_unlock(&s->lock);
		prev_dirty = r.dirty_pages;
		GW_INFO("migrate",
			"round %u: %llu bytes in %.1f ms, %llu pages dirtied meanwhile; bandwidth "
			"%llu KB/s, expected downtime %.1f ms, throttle %u %%: %s",
			r.iteration, (unsigned long long)r.bytes, r.duration_us / 1000.0,
			(unsigned long long)r.dirty_pages,
			(unsigned long long)(d.bandwidth_bps / 1000u),
			d.expected_downtime_us / 1000.0, d.throttle_pct,
			mig_verdict_name(d.verdict));
		switch (d.verdict) {
		case MIG_VERDICT_GIVE_UP:
			set_error(s,
				  "gave up after the maximum time of %u s (dirty rate %llu "
				  "pages/s, bandwidth %llu MB/s)",
				  s->p.max_time_s, (unsigned long long)d.dirty_rate_pps,
				  (unsigned long long)(d.bandwidth_bps / 1000000u));
			return -ETIMEDOUT;
		case MIG_VERDICT_CONVERGED:
		case MIG_VERDICT_FORCED:
			return 0;
		case MIG_VERDICT_NEXT_ROUND:
			break;
		}
		if (should_stop(s))
			return -ECANCELED;
		/* Due between two rounds: acts before the next one starts. */
		pthread_mutex_lock(&s->lock);
		bool due = timeout_left_ms(s) == 0;
		pthread_mutex_unlock(&s->lock);
		if (due) {
			timeout_fire(s);
			if (should_stop(s))
				return -ECANCELED;
			return 0;
		}
	}
}

/* Converged, the VM still running: the caller's preparations (devices to quiesce), then a
 * SYNC so that the pause does not also wait for a backlog in socket buffers. */
static int prepare_stop(struct mig_source *s)
{
	int rc = s->stop_prepared ? 0 : run_hook(s, s->p.before_stop);
	return rc ? rc : sync_channels(s);
}

/* When the stop-and-copy's parts began, for the log line at the handover. */
struct stop_times {
	uint64_t pause, paused, state, sent;
};

/* Stop-and-copy: pauses the VM, sends the last pages and the state, and waits for the
 * destination's READY. */
static int stop_and_copy(struct mig_source *s, struct stop_times *t)
{
	step(s, MIG_EV_CONVERGED);
	stop_throttler(s);
	t->pause = mig_now_us();
	int rc = hv_vm_pause(s->vm);
	t->paused = mig_now_us();
	if (s->suspended_at) /* paused since the --timeout: the downtime began then */
		t->pause = s->suspended_at;
	if (rc) {
		set_error(s, "cannot pause the VM: %s", strerror(-rc));
		return rc;
	}
	rc = hv_dirty_collect(s->vm, s->work);
	take_resends(s);
	if (rc == 0)
		rc = hv_vm_save_state(s->vm, &s->state);
	if (rc) {
		set_error(s, "cannot capture the VM's final state: %s", strerror(-rc));
		return rc;
	}
	s->st.bytes_remaining = gw_bitmap_count(s->work, s->npages) * MIG_PAGE;
	t->state = mig_now_us();
	rc = run_round(s, true);
	if (rc)
		return rc;
	t->sent = mig_now_us();
	/* The VM is paused here: a destination that never answers must not keep it so. */
	uint32_t to = s->p.stall_timeout_s;
	struct timespec ts = gw_deadline_ms((long)to * 1000);
	bool late = false;
	pthread_mutex_lock(&s->lock);
	while (!s->dest_ready && !s->dest_failed && !s->cancel && !late) {
		if (!to)
			pthread_cond_wait(&s->cond, &s->lock);
		else if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
			late = !s->dest_ready && !s->dest_failed && !s->cancel;
	}
	bool ready = s->dest_ready;
	s->st.downtime_us = mig_now_us() - t->pause;
	s->st.bytes_remaining = 0;
	pthread_mutex_unlock(&s->lock);
	if (late) {
		set_error(s,
			  "the destination did not report the VM ready within %u s of the last "
			  "data (stall timeout): it may be stopped or overloaded",
			  to);
		return -ETIMEDOUT;
	}
	return ready ? 0 : -ECANCELED;
}

/* The destination holds a complete, paused copy: the caller commits or aborts. */
static void handover(struct mig_source *s, const struct stop_times *t)
{
	if (s->p.verify)
		s->st.ram_checksum = mig_ram_checksum(s->vm);
	step(s, MIG_EV_DEST_READY);
	GW_INFO("migrate",
		"destination ready: %llu pages sent (%llu zero); paused for %.1f ms so far: pause "
		"%.1f, state %.1f, last pages %.1f, destination load %.1f",
		(unsigned long long)s->st.pages_sent, (unsigned long long)s->st.zero_pages,
		s->st.downtime_us / 1000.0, (t->paused - t->pause) / 1000.0,
		(t->state - t->paused) / 1000.0, (t->sent - t->state) / 1000.0,
		(t->pause + s->st.downtime_us - t->sent) / 1000.0);
	hv_dirty_stop(s->vm);
}

/* Anything before the handover failed or was cancelled: the reason, then the table's ERROR
 * or CANCEL, which resumes the VM here and undoes what was prepared for the move. */
static void fail(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	/* A write that failed because the destination hung up is an echo: give the reader a
	 * moment to hear the destination's own reason, which names the cause. */
	if (s->reader_started && !s->cancel) {
		struct timespec ts = gw_deadline_ms(1000);
		while (!s->reader_done &&
		       pthread_cond_timedwait(&s->cond, &s->lock, &ts) != ETIMEDOUT)
			;
	}
	if (!s->st.error[0]) {
		const char *why = s->dest_said	    ? s->dest_msg
				  : s->local_err[0] ? s->local_err
				  : s->dest_failed  ? s->dest_msg
						    : "";
		snprintf(s->st.error, sizeof(s->st.error), "%s", why);
	}
	bool cancelled = s->cancel;
	if (!s->st.error[0])
		snprintf(s->st.error, sizeof(s->st.error), "%s",
			 cancelled ? "cancelled" : "migration failed");
	pthread_mutex_unlock(&s->lock);
	stop_throttler(s);
	shutdown_channels(s);
	hv_dirty_stop(s->vm);
	GW_WARN("migrate", "%s; the VM keeps running here", s->st.error);
	step(s, cancelled ? MIG_EV_CANCEL : MIG_EV_ERROR);
}

static void *session_thread(void *arg)
{
	struct mig_source *s = arg;
	struct stop_times t;
	if (connect_channels(s))
		goto fail;
	step(s, MIG_EV_CONNECTED);
	if (start_tracking(s) || precopy(s) || prepare_stop(s) || stop_and_copy(s, &t))
		goto fail;
	handover(s, &t);
	return NULL;
fail:
	fail(s);
	return NULL;
}

void mig_params_default(struct mig_params *p)
{
	memset(p, 0, sizeof(*p));
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	p->channels = n < 1 ? 1 : n > MIG_MAX_CHANNELS ? MIG_MAX_CHANNELS : (unsigned)n;
	p->downtime_limit_ms = 50;
	p->max_iterations = 30;
	p->dma_mode = DMA_MODE_SHADOW;
	p->tls = true;
	p->stall_timeout_s = 30;
	p->idle_timeout_s = 120;
	p->timeout_action = MIG_TIMEOUT_SUSPEND;
	p->auto_converge = true;
	p->throttle_initial_pct = MIG_THROTTLE_FIRST;
	p->throttle_increment_pct = MIG_THROTTLE_STEP;
}

int mig_source_start(struct hv_vm *vm, const char *host, const uint16_t *ports,
		     const struct mig_params *p, struct mig_source **out)
{
	if (p->channels == 0 || p->channels > MIG_MAX_CHANNELS || strlen(host) >= 256 ||
	    p->timeout_action > MIG_TIMEOUT_CANCEL || p->throttle_initial_pct > MIG_THROTTLE_MAX ||
	    p->throttle_increment_pct > MIG_THROTTLE_MAX)
		return -EINVAL;
	struct mig_source *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	s->p = *p;
	s->dma_pages0 = s->dma_bytes0 = UINT64_MAX;
	if (!s->p.downtime_limit_ms)
		s->p.downtime_limit_ms = 50;
	if (!s->p.max_iterations)
		s->p.max_iterations = 30;
	if (!s->p.idle_timeout_s)
		s->p.idle_timeout_s = 120;
	if (p->tls) {
		int rc = mig_tls_create(p->token, false, true, &s->tls);
		if (rc) {
			free(s);
			return rc;
		}
	}
	s->st.tls = p->tls;
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->n = p->channels;
	s->active = s->n;
	s->st.channels_used = (uint8_t)s->n;
	memcpy(s->ports, ports, s->n * sizeof(ports[0]));
	s->npages = hv_vm_ram_size(vm) / MIG_PAGE;
	s->work = gw_bitmap_alloc(s->npages);
	s->present = gw_bitmap_alloc(s->npages);
	s->resend = gw_bitmap_alloc(s->npages);
	if (!s->work || !s->present || !s->resend) {
		free(s->work);
		free(s->present);
		free(s->resend);
		mig_tls_free(s->tls);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	gw_buf_init(&s->state);
	for (unsigned i = 0; i < s->n; i++) {
		s->ch[i] = (struct mig_schan){.s = s, .idx = i};
		pthread_mutex_init(&s->ch[i].wlock, NULL);
		mig_chan_init(&s->ch[i].io);
	}
	s->st.state = MIG_SETUP;
	s->t_start = mig_now_us();
	if (pthread_create(&s->session, NULL, session_thread, s)) {
		free(s->work);
		free(s->present);
		free(s->resend);
		mig_tls_free(s->tls);
		free(s);
		return -EAGAIN;
	}
	*out = s;
	return 0;
}

void mig_source_stats(struct mig_source *s, struct mig_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->bytes_sent = __atomic_load_n(&s->st.bytes_sent, __ATOMIC_RELAXED);
	if (s->in_round) {
		/* This round's pages not yet sent; what the guest dirties meanwhile counts once
		 * the round ends and the dirty log is read. */
		uint64_t sent =
		    __atomic_load_n(&s->st.pages_sent, __ATOMIC_RELAXED) - s->round_sent0;
		out->bytes_remaining =
		    (s->round_pages > sent ? s->round_pages - sent : 0) * MIG_PAGE;
	}
	out->dma_mode = s->p.dma_mode;
	uint64_t pages, bytes;
	hv_dirty_dma_stats(s->vm, &pages, &bytes);
	if (__atomic_load_n(&s->dma_pages0, __ATOMIC_ACQUIRE) != UINT64_MAX) {
		out->dma_pages = pages - s->dma_pages0;
		out->dma_bytes = bytes - s->dma_bytes0;
	}
	if (!mig_state_final(s->st.state) && s->st.state != MIG_HANDOVER)
		out->total_time_us = mig_now_us() - s->t_start;
	pthread_mutex_unlock(&s->lock);
}

void mig_source_cancel(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	enum mig_state st = s->st.state;
	s->cancel = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (st == MIG_HANDOVER) {
		/* Only valid once the destination was told to abort: the source resumes. */
		set_error(s, "cancelled at handover");
		step(s, MIG_EV_CANCEL);
	}
	if (!mig_state_final(st))
		shutdown_channels(s);
}

enum mig_state mig_source_wait(struct mig_source *s, int timeout_ms)
{
	struct timespec ts = gw_deadline_ms(timeout_ms);
	pthread_mutex_lock(&s->lock);
	while (s->st.state != MIG_HANDOVER && !mig_state_final(s->st.state)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cond, &s->lock);
		else if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
			break;
	}
	enum mig_state st = s->st.state;
	pthread_mutex_unlock(&s->lock);
	return st;
}

int mig_source_finish(struct mig_source *s, bool commit)
{
	pthread_mutex_lock(&s->lock);
	if (s->st.state != MIG_HANDOVER) {
		pthread_mutex_unlock(&s->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&s->lock);
	enum mig_state was;
	int rc;
	if (commit) {
		/* The destination runs the VM now: this copy must never run again. */
		hv_vm_stop(s->vm);
		rc = finish_state(s, MIG_EV_COMMIT, &was);
	} else {
		set_error(s, "handover aborted");
		rc = finish_state(s, MIG_EV_ABORT, &was);
	}
	shutdown_channels(s);
	return rc ? -EBUSY : 0; /* a cancel came first */
}

void mig_source_free(struct mig_source *s)
{
	if (!s)
		return;
	mig_source_cancel(s);
	pthread_join(s->session, NULL);
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	shutdown_channels(s);
	/* Every thread that uses a channel's descriptor ends before any is closed: a closed
	 * number is soon another descriptor's (a control connection, the next migration's
	 * channel), which a late read or shutdown here would then break. */
	for (unsigned i = 0; i < s->n; i++) {
		if (s->ch[i].io.fd >= 0)
			pthread_join(s->ch[i].thread, NULL);
	}
	if (s->reader_started)
		pthread_join(s->reader, NULL);
	for (unsigned i = 0; i < s->n; i++) {
		mig_chan_close(&s->ch[i].io);
	}
	mig_tls_free(s->tls);
	gw_buf_release(&s->state);
	free(s->work);
	free(s->present);
	free(s->resend);
	free(s);
}
