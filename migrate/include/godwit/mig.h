/* SPDX-License-Identifier: Apache-2.0 */
/* The live-migration engine: pre-copy of RAM, then device, vCPU and VM state, over N TCP
 * channels, with a handover the caller commits or aborts. */
#ifndef GODWIT_MIG_H
#define GODWIT_MIG_H

#include <stdbool.h>
#include <stdint.h>

#include "godwit/hv.h"

#define MIG_MAX_CHANNELS 8
#define MIG_TOKEN_LEN	 64 /* the one-time stream token: 64 hex characters */

/* Session states; the transition table is in session.c (docs/migration-stream.md). */
enum mig_state {
	MIG_SETUP = 0,
	MIG_PRECOPY,
	MIG_STOP_AND_COPY,
	MIG_HANDOVER, /* destination has everything, VM paused on both sides: commit or abort */
	MIG_DONE,
	MIG_FAILED,
	MIG_CANCELLED,
	MIG_NSTATES,
};

enum mig_event {
	MIG_EV_CONNECTED = 0, /* every channel's handshake accepted */
	MIG_EV_CONVERGED,     /* remaining dirty set fits the downtime limit (or was forced) */
	MIG_EV_DEST_READY,    /* destination loaded all state */
	MIG_EV_COMMIT,
	MIG_EV_ABORT,
	MIG_EV_ERROR,
	MIG_EV_CANCEL,
	MIG_NEVENTS,
};

struct mig_transition {
	enum mig_state next;
	bool resume_source; /* the source VM must run again */
	bool valid;
};

/* 0 and *t filled, or -EINVAL when the event is not allowed in that state. */
int mig_transition(enum mig_state s, enum mig_event e, struct mig_transition *t);
const char *mig_state_name(enum mig_state s);
const char *mig_event_name(enum mig_event e);
bool mig_state_final(enum mig_state s);

/* What the source does when pre-copy still runs at mig_params.timeout_s (virsh migrate's
 * --timeout-action). */
enum mig_timeout_action {
	MIG_TIMEOUT_SUSPEND = 0, /* pause the VM: the rest goes as stop-and-copy, and completes */
	MIG_TIMEOUT_CANCEL,	 /* cancel the migration: the VM keeps running here */
};

struct mig_params {
	char token[MIG_TOKEN_LEN + 1];
	unsigned channels;	    /* 1..MIG_MAX_CHANNELS */
	uint32_t downtime_limit_ms; /* default 50 */
	uint32_t max_time_s;	    /* 0: no limit */
	uint64_t max_bandwidth;	    /* bytes/s over all channels; 0: unlimited */
	unsigned max_iterations;    /* force stop-and-copy after this many; default 30 */
	bool verify;		    /* checksum all of RAM on both sides at handover */
	int accept_timeout_ms;	    /* destination: how long to wait for the source (60 s) */
	unsigned dma_mode;	    /* dma_shadow.h's enum dma_mode; default shadow */
	/* TLS 1.3 on every channel, keyed by the token (default); false: in clear, for
	 * loopback test setups (docs/migration-stream.md). Both sides must agree. */
	bool tls;
	/* Source: the migration fails when the destination takes no data, confirms nothing
	 * and does not report READY for this long (default 30); 0: no limit. */
	uint32_t stall_timeout_s;
	/* Destination: a channel silent this long is gone (default 120). Source: a channel that
	 * carries no pages (probe_channels kept fewer) sends an empty batch every eighth of it,
	 * so both sides need the same value. */
	uint32_t idle_timeout_s;
	/* Source: a destination whose KVM cannot run the guest's TSC rate may take the VM
	 * anyway, at its host's rate (hv_tsc_plan); else it refuses at the handshake. */
	bool allow_tsc_change;
	/* Source: called once the VM keeps running here after all (the migration failed or
	 * was cancelled or aborted), for what was prepared for it (devices quiesced). */
	void (*stays)(void *opaque);
	/* Source, virsh's --timeout: pre-copy that has not converged timeout_s after the start
	 * (0: never) takes timeout_action, at once, even in the middle of a round. */
	uint32_t timeout_s;
	unsigned timeout_action; /* enum mig_timeout_action */
	/* Source: auto-converge (default on): a pre-copy whose dirty set stops shrinking pauses
	 * the vCPUs for throttle_initial_pct of every 100 ms, then throttle_increment_pct more
	 * each such round (QEMU's cpu-throttle-initial/-increment; 0: 20 and 10), up to 95. */
	bool auto_converge;
	/* Source, --channels auto: the first round measures how many of the channels pay: it
	 * sends on 1, then 2, ... of them and keeps the fewest past which the rate stops
	 * growing by a tenth (the link, or the cores, is the bound). The others stay connected
	 * and carry only the end of the stream. false: pages go on every channel. */
	bool probe_channels;
	uint32_t throttle_initial_pct;
	uint32_t throttle_increment_pct;
	void *hook_opaque; /* for stays, before_track and before_stop */
	/* Source: called once the channels are up, before dirty tracking starts (devices whose
	 * DMA the dirty log cannot see quiesce now, so the first full copy holds all they
	 * wrote); an error fails the migration with that reason, and the VM stays. */
	int (*before_track)(void *opaque, char *why, size_t n);
	/* Source: called once pre-copy converged, the VM still running, before it stops for
	 * the last copy (devices to quiesce for re-creation elsewhere); an error fails the
	 * migration with that reason, and the VM stays. */
	int (*before_stop)(void *opaque, char *why, size_t n);
};

void mig_params_default(struct mig_params *p);

struct mig_stats {
	enum mig_state state;
	uint32_t iteration;
	uint64_t bytes_sent; /* on the wire, headers included */
	uint64_t pages_sent;
	uint64_t zero_pages;
	/* pages sent again because the destination found a batch sent while the VM ran not
	 * matching its hash (the guest rewrote a page during the send, or the bytes were
	 * damaged on the way); on the destination, the pages it asked for again */
	uint64_t pages_resent;
	uint64_t bytes_remaining; /* dirty pages left * page size */
	uint64_t dirty_rate_pps;
	uint64_t bandwidth_bps; /* bytes/s, last iteration */
	uint64_t expected_downtime_us;
	uint64_t downtime_us; /* VM paused until the destination was ready */
	uint64_t total_time_us;
	uint32_t throttle_pct;	  /* the auto-converge throttle now (0 once it ended) */
	bool timed_out;		  /* mig_params.timeout_s passed: its timeout_action was taken */
	uint64_t ram_checksum;	  /* of the source RAM at stop-and-copy (after the last pass) */
	unsigned dma_mode;	  /* source: the DMA mode this migration runs with */
	uint64_t dma_pages;	  /* source: guest pages device DMA made dirty (shadow, track) */
	uint64_t dma_bytes;	  /* source: bytes shadowing copied into guest buffers */
	bool tls;		  /* the channels run TLS 1.3 */
	uint8_t channels;	  /* channels connected */
	uint8_t channels_used;	  /* source: channels that carry pages (probe_channels) */
	char channels_probe[192]; /* source: what probe_channels measured, for people */
	uint8_t ktls_send;	  /* channels whose sending direction the kernel encrypts */
	uint8_t ktls_recv;	  /* channels whose receiving direction the kernel decrypts */
	char error[256];
};

/* Digest of what must be equal on both sides (RAM size, vCPUs, devices). */
uint64_t mig_config_digest(struct hv_vm *vm);
/* A checksum of all of RAM (for verification: equal on both sides at handover). */
uint64_t mig_ram_checksum(struct hv_vm *vm);

/* ---- source ---- */
struct mig_source;
/* Connects to host:ports[i] and runs the migration on its own threads. */
int mig_source_start(struct hv_vm *vm, const char *host, const uint16_t *ports,
		     const struct mig_params *p, struct mig_source **out);
void mig_source_stats(struct mig_source *s, struct mig_stats *out);
void mig_source_cancel(struct mig_source *s);
/* Waits until the session reaches HANDOVER or a final state, or timeout_ms (-1: forever). */
enum mig_state mig_source_wait(struct mig_source *s, int timeout_ms);
/* At HANDOVER: commit (the source VM is then stopped for good) or abort (it resumes).
 * -EBUSY when the session is not (or no longer) at its handover. */
int mig_source_finish(struct mig_source *s, bool commit);
void mig_source_free(struct mig_source *s);

/* ---- destination ---- */
struct mig_dest;
/* Listens on `channels` ephemeral ports of host for a stream carrying this token. The VM
 * must be created (same RAM size, same devices) and not started. */
int mig_dest_listen(struct hv_vm *vm, const char *host, const struct mig_params *p,
		    struct mig_dest **out);
void mig_dest_ports(struct mig_dest *d, uint16_t *ports, unsigned *n);
/* Waits until the stream completed and the state loaded (the channel threads do that and
 * answer READY by themselves): 0 (the VM may now be started), -ETIMEDOUT, or -EPROTO with
 * the reason in mig_dest_error. */
int mig_dest_wait(struct mig_dest *d, int timeout_ms);
const char *mig_dest_error(struct mig_dest *d);
void mig_dest_stats(struct mig_dest *d, struct mig_stats *out);
/* Fails a stream still in progress (no effect once ready). */
void mig_dest_abort(struct mig_dest *d);
void mig_dest_free(struct mig_dest *d);

#endif
