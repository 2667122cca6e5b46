/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-vmm's control socket: the godwit.vmm.v1.Vmm service over gRPC on a unix socket. */
#include "control.h"

#include "godwit/dma_shadow.h"
#include "godwit/sriov.h"
#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/vmm/v1/vmm.pb-c.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VMM_CONTROL_MAX_VFS 8u

/* The control protocol's enums (vmm.proto) for the VMM's own. */
#define PB_RUN(x) GODWIT__VMM__V1__RUN_STATE__RUN_STATE_##x
#define PB_MIG(x) GODWIT__VMM__V1__MIGRATION_STATE__MIGRATION_STATE_##x
#define PB_DMA(x) GODWIT__VMM__V1__DMA_MODE__DMA_MODE_##x

static const Godwit__Vmm__V1__RunState pb_run_states[] = {
    [HV_RUN_CREATED] = PB_RUN(CREATED),
    [HV_RUN_RUNNING] = PB_RUN(RUNNING),
    [HV_RUN_PAUSED] = PB_RUN(PAUSED),
    [HV_RUN_STOPPED] = PB_RUN(STOPPED),
};

static const Godwit__Vmm__V1__MigrationState pb_mig_states[MIG_NSTATES] = {
    [MIG_SETUP] = PB_MIG(SETUP),
    [MIG_PRECOPY] = PB_MIG(PRECOPY),
    [MIG_STOP_AND_COPY] = PB_MIG(STOP_AND_COPY),
    [MIG_HANDOVER] = PB_MIG(HANDOVER),
    [MIG_DONE] = PB_MIG(DONE),
    [MIG_FAILED] = PB_MIG(FAILED),
    [MIG_CANCELLED] = PB_MIG(CANCELLED),
};

static const Godwit__Vmm__V1__DmaMode pb_dma_modes[] = {
    [DMA_MODE_OFF] = PB_DMA(OFF),
    [DMA_MODE_SHADOW] = PB_DMA(SHADOW),
    [DMA_MODE_TRACK] = PB_DMA(TRACK),
};

#define PB_OF(table, v)                                                                            \
	((unsigned)(v) < sizeof(table) / sizeof((table)[0]) ? (table)[v] : 0 /* unspecified */)

/* A request's DMA mode: 0, or -EINVAL for a value this VMM does not know. */
static int dma_mode_from_pb(Godwit__Vmm__V1__DmaMode pb, enum dma_mode *out)
{
	if (pb == PB_DMA(UNSPECIFIED))
		return 0; /* the default stays */
	for (unsigned m = 0; m < sizeof(pb_dma_modes) / sizeof(pb_dma_modes[0]); m++) {
		if (pb_dma_modes[m] == pb) {
			*out = (enum dma_mode)m;
			return 0;
		}
	}
	return -EINVAL;
}

struct vmm_control {
	struct hv_vm *vm;
	struct gw_rpc_server *srv;
	struct timespec started;
	char listen[300];
	pthread_mutex_t lock;
	struct mig_source *out; /* outgoing migration, if any */
	struct mig_dest *in;	/* incoming migration, if any */
	bool in_ready, in_failed, migrated;
	char in_error[256];
	pthread_t in_thread;
	bool in_thread_started;
	struct sriov_vf *const *vfs;
	unsigned nvfs;
	unsigned recreate[VMM_CONTROL_MAX_VFS]; /* VF indexes the migration re-creates */
	unsigned nrecreate;
};

void vmm_control_set_vfs(struct vmm_control *c, struct sriov_vf *const *vfs, unsigned n)
{
	c->vfs = vfs;
	c->nvfs = n;
}

/* How long the guest's driver has to reset a VF the PF signalled a reset on. godwit's test
 * driver looks at its mailbox every 250 ms; Linux's igbvf resets from its watchdog (every
 * 2 s) and no sooner than 10 s after its previous reset: about 12 s at worst. */
#define RECREATE_WAIT_MS 15000

/* The VM stays here (the migration failed, was cancelled or aborted): quiesced VFs go on. */
static void vfs_stay(void *opaque)
{
	struct vmm_control *c = opaque;
	for (unsigned i = 0; i < c->nvfs; i++)
		sriov_vf_recreate_cancel(c->vfs[i]);
}

/* The VFs the destination re-creates are quiesced: before tracking starts those whose DMA
 * the dirty log cannot see (untracked_only), before stop-and-copy the rest. */
static int vfs_quiesce_some(struct vmm_control *c, bool untracked_only, char *why, size_t n)
{
	for (unsigned i = 0; i < c->nrecreate; i++) {
		struct sriov_vf *vf = c->vfs[c->recreate[i]];
		if (untracked_only && sriov_vf_dma_tracked(vf))
			continue;
		int rc = sriov_vf_recreate_prepare(vf, RECREATE_WAIT_MS);
		if (rc) {
			snprintf(
			    why, n,
			    "VF %u: the guest driver did not reset it within %d ms, so it cannot "
			    "be re-created on the destination's generation",
			    c->recreate[i], RECREATE_WAIT_MS);
			return rc;
		}
	}
	return 0;
}

static int vfs_quiesce_untracked(void *opaque, char *why, size_t n)
{
	return vfs_quiesce_some(opaque, true, why, n);
}

static int vfs_quiesce(void *opaque, char *why, size_t n)
{
	return vfs_quiesce_some(opaque, false, why, n);
}

static Godwit__Vmm__V1__VfState *vf_state(struct gw_rpc_call *call, struct sriov_vf *vf)
{
	Godwit__Vmm__V1__VfState *v = gw_rpc_call_alloc(call, sizeof(*v));
	if (!v)
		return NULL;
	godwit__vmm__v1__vf_state__init(v);
	struct sriov_vf_status s;
	sriov_vf_status(vf, &s);
	const struct sriov_vf_config *c = &s.record.cfg;
	char mac[18];
	sriov_mac_format(c->mac, mac);
	v->name = gw_rpc_call_strdup(call, s.name);
	v->mac = gw_rpc_call_strdup(call, mac);
	v->vlans = gw_rpc_call_alloc(call, (c->nvlans + 1) * sizeof(uint32_t));
	for (unsigned i = 0; v->vlans && i < c->nvlans; i++)
		v->vlans[v->n_vlans++] = c->vlans[i];
	v->multicast = c->nmc;
	v->max_frame = c->max_frame;
	v->api = c->api == IGB_API_11 ? GODWIT__VMM__V1__MAILBOX_API__MAILBOX_API_1_1
				      : GODWIT__VMM__V1__MAILBOX_API__MAILBOX_API_1_0;
	v->exchanges = s.record.exchanges;
	v->denied = s.record.denied;
	v->trap_windows = s.mbx_exchanges;
	v->mbx_page_exits = s.mbx_exits;
	v->mbx_idle_exits = s.mbx_idle_exits;
	enum dma_mode dm;
	v->dma_mode =
	    dma_mode_parse(s.dma_mode, &dm) ? PB_DMA(UNSPECIFIED) : PB_OF(pb_dma_modes, dm);
	v->backing = s.emulated ? GODWIT__VMM__V1__VF_BACKING__VF_BACKING_EMULATED
				: GODWIT__VMM__V1__VF_BACKING__VF_BACKING_PASSTHROUGH;
	v->recreate_quiesces = s.recreate_quiesces;
	v->direct_pages = s.direct_pages;
	return v;
}

static int64_t uptime_ms(const struct vmm_control *c)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - c->started.tv_sec) * 1000 +
	       (now.tv_nsec - c->started.tv_nsec) / 1000000;
}

static int status(struct vmm_control *c, struct gw_rpc_call *call, ProtobufCMessage **resp)
{
	Godwit__Vmm__V1__VmmStatus *st = gw_rpc_call_alloc(call, sizeof(*st));
	if (!st)
		return -ENOMEM;
	godwit__vmm__v1__vmm_status__init(st);
	struct hv_exit_stats ex;
	hv_vm_exit_stats(c->vm, &ex);
	int code = 0;
	enum hv_stop_reason why = hv_vm_stop_reason(c->vm, &code);
	st->state = PB_OF(pb_run_states, hv_vm_run_state(c->vm));
	st->memory_bytes = hv_vm_ram_size(c->vm);
	st->cpus = hv_vm_ncpus(c->vm);
	st->pid = (int32_t)getpid();
	st->exits_io = ex.io;
	st->exits_mmio = ex.mmio;
	st->stop_reason =
	    gw_rpc_call_strdup(call, why == HV_STOP_NONE ? "" : hv_stop_reason_name(why));
	st->guest_exit_code = code;
	st->uptime_ms = (uint64_t)uptime_ms(c);
	pthread_mutex_lock(&c->lock);
	if (c->in) {
		st->incoming_state =
		    c->in_failed  ? GODWIT__VMM__V1__INCOMING_STATE__INCOMING_STATE_FAILED
		    : c->in_ready ? GODWIT__VMM__V1__INCOMING_STATE__INCOMING_STATE_READY
				  : GODWIT__VMM__V1__INCOMING_STATE__INCOMING_STATE_WAITING;
		st->incoming_error = gw_rpc_call_strdup(call, c->in_error);
		uint16_t ports[MIG_MAX_CHANNELS];
		unsigned n = 0;
		mig_dest_ports(c->in, ports, &n);
		st->incoming_ports = gw_rpc_call_alloc(call, n * sizeof(uint32_t));
		for (unsigned i = 0; i < n && st->incoming_ports; i++)
			st->incoming_ports[st->n_incoming_ports++] = ports[i];
		struct mig_stats ms;
		mig_dest_stats(c->in, &ms);
		st->ram_checksum = ms.ram_checksum;
		st->incoming_tls = ms.tls;
		st->incoming_channels = ms.channels;
		st->incoming_ktls_send_channels = ms.ktls_send;
		st->incoming_ktls_recv_channels = ms.ktls_recv;
	}
	pthread_mutex_unlock(&c->lock);
	st->vfs = c->nvfs ? gw_rpc_call_alloc(call, c->nvfs * sizeof(*st->vfs)) : NULL;
	for (unsigned i = 0; st->vfs && i < c->nvfs; i++) {
		st->vfs[i] = vf_state(call, c->vfs[i]);
		if (!st->vfs[i])
			break;
		st->n_vfs++;
	}
	*resp = &st->base;
	return 0;
}

static int do_status(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		     ProtobufCMessage **resp)
{
	(void)req;
	return status(ctx, call, resp);
}

static int do_start(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		    ProtobufCMessage **resp)
{
	(void)req;
	struct vmm_control *c = ctx;
	if (hv_vm_run_state(c->vm) != HV_RUN_CREATED) {
		gw_rpc_call_error(call, "the VM has already been started");
		return -EALREADY;
	}
	pthread_mutex_lock(&c->lock);
	struct mig_dest *in = c->in;
	pthread_mutex_unlock(&c->lock);
	/* Asked by the stream's own state, not by the incoming thread's flag, which may lag. */
	bool gated = in && mig_dest_wait(in, 0) != 0;
	/* An incoming VM runs only once the whole stream arrived and its state loaded. */
	if (gated) {
		gw_rpc_call_error(call, "the incoming migration has not completed: %s",
				  c->in_error[0] ? c->in_error : "still receiving");
		return -EBUSY;
	}
	int rc = hv_vm_start(c->vm);
	if (rc) {
		gw_rpc_call_error(call, "cannot start the VM: %s", strerror(-rc));
		return rc;
	}
	GW_INFO("vmm", "VM started on request of the control socket");
	return status(c, call, resp);
}

/* Pause and resume: the same check, action and answer, from and to opposite states. */
static int transition(struct vmm_control *c, struct gw_rpc_call *call, ProtobufCMessage **resp,
		      enum hv_run_state from, int (*act)(struct hv_vm *), const char *verb)
{
	enum hv_run_state now = hv_vm_run_state(c->vm);
	if (now != from) {
		gw_rpc_call_error(call, "the VM is %s, not %s", hv_run_state_name(now),
				  hv_run_state_name(from));
		return -EBUSY;
	}
	int rc = act(c->vm);
	if (rc) {
		gw_rpc_call_error(call, "cannot %s the VM: %s", verb, strerror(-rc));
		return rc;
	}
	return status(c, call, resp);
}

static int do_pause(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		    ProtobufCMessage **resp)
{
	(void)req;
	return transition(ctx, call, resp, HV_RUN_RUNNING, hv_vm_pause, "pause");
}

static int do_resume(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		     ProtobufCMessage **resp)
{
	(void)req;
	return transition(ctx, call, resp, HV_RUN_PAUSED, hv_vm_resume, "resume");
}

static int do_stop(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		   ProtobufCMessage **resp)
{
	(void)req;
	struct vmm_control *c = ctx;
	GW_INFO("vmm", "stop requested on the control socket");
	hv_vm_stop(c->vm);
	return status(c, call, resp);
}

/* The outgoing migration, or NULL with the call's error set. */
static struct mig_source *outgoing(struct vmm_control *c, struct gw_rpc_call *call)
{
	pthread_mutex_lock(&c->lock);
	struct mig_source *out = c->out;
	pthread_mutex_unlock(&c->lock);
	if (!out)
		gw_rpc_call_error(call, "no outgoing migration");
	return out;
}

static int mig_stats_reply(struct vmm_control *c, struct gw_rpc_call *call, ProtobufCMessage **resp)
{
	Godwit__Vmm__V1__MigrationStats *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__vmm__v1__migration_stats__init(r);
	struct mig_stats st;
	struct mig_source *out = outgoing(c, call);
	if (!out)
		return -ENOENT;
	mig_source_stats(out, &st);
	r->state = PB_OF(pb_mig_states, st.state);
	r->iteration = st.iteration;
	r->bytes_sent = st.bytes_sent;
	r->bytes_remaining = st.bytes_remaining;
	r->dirty_rate_pps = st.dirty_rate_pps;
	r->expected_downtime_us = st.expected_downtime_us;
	r->downtime_us = st.downtime_us;
	r->total_time_us = st.total_time_us;
	r->error = gw_rpc_call_strdup(call, st.error);
	r->ram_checksum = st.ram_checksum;
	r->bandwidth_bps = st.bandwidth_bps;
	r->throttle_pct = st.throttle_pct;
	r->pages_sent = st.pages_sent;
	r->zero_pages = st.zero_pages;
	r->dma_mode = PB_OF(pb_dma_modes, st.dma_mode);
	r->dma_pages_dirtied = st.dma_pages;
	r->dma_bytes_copied = st.dma_bytes;
	r->tls = st.tls;
	r->channels = st.channels;
	r->ktls_send_channels = st.ktls_send;
	r->ktls_recv_channels = st.ktls_recv;
	r->timed_out = st.timed_out;
	r->pages_resent = st.pages_resent;
	r->channels_used = st.channels_used;
	r->channels_probe = gw_rpc_call_strdup(call, st.channels_probe);
	*resp = &r->base;
	return 0;
}

static int do_migrate_out(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			  ProtobufCMessage **resp)
{
	struct vmm_control *c = ctx;
	const Godwit__Vmm__V1__MigrateOutRequest *req = (const void *)rq;
	if (hv_vm_run_state(c->vm) != HV_RUN_RUNNING) {
		gw_rpc_call_error(call, "only a running VM can migrate (it is %s)",
				  hv_run_state_name(hv_vm_run_state(c->vm)));
		return -EBUSY;
	}
	if (req->n_ports == 0 || req->n_ports > MIG_MAX_CHANNELS || !req->host ||
	    strlen(req->token) != MIG_TOKEN_LEN) {
		gw_rpc_call_error(call,
				  "a migration needs a host, 1 to %d ports and a %d-character "
				  "token",
				  MIG_MAX_CHANNELS, MIG_TOKEN_LEN);
		return -EINVAL;
	}
	struct mig_params p;
	mig_params_default(&p);
	snprintf(p.token, sizeof(p.token), "%s", req->token);
	p.channels = (unsigned)req->n_ports;
	if (req->downtime_limit_ms)
		p.downtime_limit_ms = req->downtime_limit_ms;
	p.max_time_s = req->max_time_s;
	p.max_bandwidth = req->max_bandwidth;
	p.verify = req->verify;
	p.allow_tsc_change = req->allow_tsc_change;
	p.tls = !req->plaintext;
	if (req->stall_timeout_s)
		p.stall_timeout_s = req->stall_timeout_s;
	p.timeout_s = req->timeout_s;
	p.timeout_action =
	    req->timeout_action ==
		    GODWIT__VMM__V1__MIGRATE_OUT_REQUEST__TIMEOUT_ACTION__TIMEOUT_ACTION_CANCEL
		? MIG_TIMEOUT_CANCEL
		: MIG_TIMEOUT_SUSPEND;
	p.auto_converge = !req->no_auto_converge;
	p.probe_channels = req->probe_channels;
	if (req->throttle_initial_pct)
		p.throttle_initial_pct = req->throttle_initial_pct;
	if (req->throttle_increment_pct)
		p.throttle_increment_pct = req->throttle_increment_pct;
	if (p.throttle_initial_pct > 95 || p.throttle_increment_pct > 95) {
		gw_rpc_call_error(call, "auto-converge percentages take 1..95");
		return -EINVAL;
	}
	enum dma_mode dm = (enum dma_mode)p.dma_mode;
	if (dma_mode_from_pb(req->dma_mode, &dm)) {
		gw_rpc_call_error(call, "unknown DMA mode %d (shadow, track or off)",
				  (int)req->dma_mode);
		return -EINVAL;
	}
	p.dma_mode = dm;
	uint16_t ports[MIG_MAX_CHANNELS];
	for (size_t i = 0; i < req->n_ports; i++)
		ports[i] = (uint16_t)req->ports[i];
	pthread_mutex_lock(&c->lock);
	if (c->out) {
		struct mig_stats st;
		mig_source_stats(c->out, &st);
		if (!mig_state_final(st.state)) {
			pthread_mutex_unlock(&c->lock);
			gw_rpc_call_error(call, "a migration of this VM is already running");
			return -EALREADY;
		}
		mig_source_free(c->out);
		c->out = NULL;
	}
	/* Devices the destination re-creates on another generation: quiesced once pre-copy
	 * converged, while the guest still runs and can react (docs/devices.md). */
	c->nrecreate = 0;
	for (size_t i = 0; i < req->n_recreate_vfs && i < VMM_CONTROL_MAX_VFS; i++) {
		if (req->recreate_vfs[i] >= c->nvfs) {
			pthread_mutex_unlock(&c->lock);
			gw_rpc_call_error(call, "no VF %u to re-create", req->recreate_vfs[i]);
			return -EINVAL;
		}
		c->recreate[c->nrecreate++] = req->recreate_vfs[i];
	}
	p.before_track = c->nrecreate ? vfs_quiesce_untracked : NULL;
	p.before_stop = c->nrecreate ? vfs_quiesce : NULL;
	p.stays = vfs_stay;
	p.hook_opaque = c;
	int rc = mig_source_start(c->vm, req->host, ports, &p, &c->out);
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		vfs_stay(c);
		gw_rpc_call_error(call, "cannot start the migration: %s", strerror(-rc));
		return rc;
	}
	GW_INFO("vmm",
		"migrating to %s over %zu channel(s), %s, stall timeout %u s, timeout %u s (%s), "
		"auto-converge %s",
		req->host, req->n_ports, p.tls ? "TLS 1.3" : "in clear", p.stall_timeout_s,
		p.timeout_s, p.timeout_action == MIG_TIMEOUT_CANCEL ? "cancel" : "suspend",
		p.auto_converge ? "on" : "off");
	return mig_stats_reply(c, call, resp);
}

static int do_migration_status(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			       ProtobufCMessage **resp)
{
	(void)rq;
	return mig_stats_reply(ctx, call, resp);
}

static int do_migration_wait(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			     ProtobufCMessage **resp)
{
	(void)rq;
	struct vmm_control *c = ctx;
	struct mig_source *out = outgoing(c, call);
	if (!out)
		return -ENOENT;
	mig_source_wait(out, 200);
	return mig_stats_reply(c, call, resp);
}

static int do_migrate_finish(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			     ProtobufCMessage **resp)
{
	struct vmm_control *c = ctx;
	const Godwit__Vmm__V1__FinishRequest *req = (const void *)rq;
	struct mig_source *out = outgoing(c, call);
	if (!out)
		return -ENOENT;
	int rc = mig_source_finish(out, req->commit);
	if (rc) {
		gw_rpc_call_error(call, "the migration is not at its handover");
		return rc;
	}
	if (req->commit) {
		pthread_mutex_lock(&c->lock);
		c->migrated = true;
		pthread_mutex_unlock(&c->lock);
		GW_INFO("vmm", "handover committed: the VM runs on the destination; exiting");
	} else {
		GW_INFO("vmm", "handover aborted: the VM resumes here");
	}
	return mig_stats_reply(c, call, resp);
}

static int do_migrate_cancel(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			     ProtobufCMessage **resp)
{
	(void)rq;
	struct vmm_control *c = ctx;
	struct mig_source *out = outgoing(c, call);
	if (!out)
		return -ENOENT;
	mig_source_cancel(out);
	mig_source_wait(out, 10000);
	return mig_stats_reply(c, call, resp);
}

static void *incoming_thread(void *arg)
{
	struct vmm_control *c = arg;
	int rc = mig_dest_wait(c->in, -1);
	pthread_mutex_lock(&c->lock);
	if (rc == 0) {
		c->in_ready = true;
	} else {
		c->in_failed = true;
		snprintf(c->in_error, sizeof(c->in_error), "%s", mig_dest_error(c->in));
	}
	pthread_mutex_unlock(&c->lock);
	if (rc) {
		GW_ERR("vmm", "incoming migration failed: %s", c->in_error);
		hv_vm_stop(c->vm); /* nothing to run: this VMM ends */
	}
	return NULL;
}

void vmm_control_set_incoming(struct vmm_control *c, struct mig_dest *d)
{
	pthread_mutex_lock(&c->lock);
	c->in = d;
	pthread_mutex_unlock(&c->lock);
	if (pthread_create(&c->in_thread, NULL, incoming_thread, c) == 0)
		c->in_thread_started = true;
}

const char *vmm_control_outcome(struct vmm_control *c)
{
	if (!c)
		return NULL;
	pthread_mutex_lock(&c->lock);
	const char *o = c->migrated ? "migrated" : c->in_failed ? "incoming-failed" : NULL;
	pthread_mutex_unlock(&c->lock);
	return o;
}

#define VMM_METHOD(n, fn)                                                                          \
	{                                                                                          \
		.service = &godwit__vmm__v1__vmm__descriptor, .name = n, .unary = fn               \
	}

static const struct gw_rpc_method methods[] = {
    VMM_METHOD("Status", do_status),
    VMM_METHOD("Start", do_start),
    VMM_METHOD("Pause", do_pause),
    VMM_METHOD("Resume", do_resume),
    VMM_METHOD("Stop", do_stop),
    VMM_METHOD("MigrateOut", do_migrate_out),
    VMM_METHOD("MigrationStatus", do_migration_status),
    VMM_METHOD("MigrationWait", do_migration_wait),
    VMM_METHOD("MigrateFinish", do_migrate_finish),
    VMM_METHOD("MigrateCancel", do_migrate_cancel),
};

int vmm_control_start(struct hv_vm *vm, const char *path, struct vmm_control **out)
{
	struct vmm_control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vm = vm;
	pthread_mutex_init(&c->lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	snprintf(c->listen, sizeof(c->listen), "unix:%s", path);
	const char *listen[] = {c->listen, NULL};
	struct gw_rpc_server_config cfg = {.listen = listen, .log_prefix = "vmm-control"};
	int rc =
	    gw_rpc_server_start(&cfg, methods, sizeof(methods) / sizeof(methods[0]), c, &c->srv);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void vmm_control_stop(struct vmm_control *c)
{
	if (!c)
		return;
	gw_rpc_server_shutdown(c->srv);
	if (c->out)
		mig_source_free(c->out);
	if (c->in) {
		mig_dest_abort(c->in); /* unblocks the incoming thread */
		if (c->in_thread_started)
			pthread_join(c->in_thread, NULL);
		mig_dest_free(c->in);
	}
	free(c);
}
