/* SPDX-License-Identifier: Apache-2.0 */
/* The source's half of a migration, shared by api_migrations.c (the API and the stream) and
 * mig_settle.c (the handover, what settles it, and reconciling after a restart). */
#ifndef GODWIT_DAEMON_MIGRATIONS_H
#define GODWIT_DAEMON_MIGRATIONS_H

#include "api.h"

#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/peer.pb-c.h"

#define PH(x)	  GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_##x
#define STEP(x)	  GODWIT__INTERNAL__V1__MIGRATION_STEP__MIGRATION_STEP_##x
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* What the migration does with one device (a DeviceDecision). */
struct gwd_mig_decision {
	char device[16], decision[16], reason[320], source[48], destination[48];
	bool recreate; /* "mismatch": the destination re-creates it on its generation */
};

struct gwd_mig {
	struct gwd_mig *next;
	struct gwd *d;
	char id[33];
	char vm[GWD_NAME_MAX + 1];
	char dest[256];
	/* The destination's grant, presented on every Peer call (and saved in the record: after
	 * a restart it is what lets this host settle the migration with the destination). */
	char dest_grant[256];
	uint32_t channels, downtime_ms, max_time_s;
	uint64_t max_bandwidth;
	char dma_mode[8]; /* shadow, track, off: as the API shows it */
	Godwit__Vmm__V1__DmaMode vmm_dma_mode;
	bool require_passthrough;
	bool allow_tsc_change;
	uint64_t dma_pages, dma_bytes;
	uint32_t stall_timeout_s;
	/* virsh's --timeout and --timeout-action (cancel: true), auto-converge and its steps. */
	uint32_t timeout_s;
	bool timeout_cancel;
	bool no_auto_converge;
	uint32_t throttle_initial, throttle_increment;
	bool channels_auto;	     /* --channels auto: the destination's cores cap channels */
	char channels_reason[96];    /* how channels was chosen, for Get and Watch */
	uint32_t channels_used;	     /* the source VMM's: channels that carry pages */
	char channels_measured[128]; /* what its first round measured (channels_auto) */
	uint32_t throttle_pct;
	uint64_t throughput_bps;      /* between the VMM's last two reports */
	uint64_t prev_bytes, prev_us; /* the previous report's bytes_sent and total_time_us */
	bool timed_out;
	uint64_t pages_resent; /* pages the destination asked for again (hash mismatch) */
	bool stream_tls;
	uint32_t stream_channels, ktls_send, ktls_recv;
	Godwit__V1__MigrationPhase phase;
	uint64_t bytes_sent, bytes_remaining, dirty_rate, exp_downtime_us, downtime_us, total_us;
	uint32_t iteration;
	uint64_t src_checksum, dst_checksum;
	char error[300];
	int64_t started_unix;
	bool cancel;
	bool committing; /* the destination was asked to start the VM: too late to cancel */
	int step;	 /* a MigrationStep, saved in DIR/migrations/ID.pb */
	/* An operator's Resolve for the settling thread (a ResolveMigrationRequest's Keep),
	 * and its answer. */
	int resolve;
	bool resolve_down, resolve_done;
	int resolve_rc;
	char resolve_msg[300];
	unsigned version; /* bumped on every change, for Watch */
	/* One channel to the destination for the whole migration: the commit, on the
	 * downtime path, then needs no new connection. Used by the migration thread only. */
	struct gw_rpc_client *peer;
	unsigned ndecisions;
	struct gwd_mig_decision decisions[GWD_NIC_MAX];
};

/* api_migrations.c */
/* Caller holds d->lock: publishes a change to Get and Watch. */
void mig_bump(struct gwd_mig *m);
/* Saves m's record (caller holds d->lock); 0 or the error, logged. */
int mig_save(struct gwd_mig *m);
/* Publishes the final phase ph with its reason (why; NULL keeps the last) and releases the
 * VM. */
void mig_end(struct gwd_mig *m, Godwit__V1__MigrationPhase ph, const char *why);
int mig_peer_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct gw_rpc_status *st);
int mig_vmm_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		 ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st);
bool mig_final_phase(Godwit__V1__MigrationPhase p);
Godwit__V1__Migration *mig_get_copy(struct gw_rpc_call *call, const struct gwd_mig *m);
struct gwd_mig *mig_find(struct gwd *d, const char *id);

/* mig_settle.c */
/* 4. Handover: the destination starts the VM, then this copy is let go; or, when that cannot
 * be known, the migration stays in doubt (the VM paused here) until it can. */
void mig_handover(struct gwd_mig *m, uint64_t vmm_downtime_us);
int mig_resolve(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		ProtobufCMessage **resp);

#endif
