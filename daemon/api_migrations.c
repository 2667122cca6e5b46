/* SPDX-License-Identifier: Apache-2.0 */
/*
 * godwit.v1.Migrations: the source's half. A thread per migration asks the destination
 * godwitd to prepare (authenticated by the destination's token), tells the local VMM to
 * stream, follows it, and at the handover commits on the destination before the source
 * lets go. Anything that fails before the commit aborts the destination and resumes here.
 */
#include "migrations.h"
#include "ops.h"

#include "godwit/log.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/peer.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* How long the source VMM may leave the migration thread's polls unanswered (a loaded host,
 * a VMM busy in its stop-and-copy) before the migration is given up for a lost VMM. */
#define VMM_SILENCE_MAX_S 30

static bool final_phase(Godwit__V1__MigrationPhase p)
{
	return p == PH(DONE) || p == PH(FAILED) || p == PH(CANCELLED);
}

/* nbytes (<= 32) from getrandom(2), in hex. -EIO when the kernel has none to give: a token
 * anyone could guess is worse than no migration. */
static int random_hex(char *out, size_t nbytes)
{
	uint8_t raw[32];
	if (nbytes > sizeof(raw) || getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return -EIO;
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", raw[i]);
	return 0;
}

/* Caller holds d->lock. */
static void bump(struct gwd_mig *m)
{
	m->version++;
	pthread_cond_broadcast(&m->d->cond);
}

int mig_save(struct gwd_mig *m)
{
	Godwit__V1__Migration st = GODWIT__V1__MIGRATION__INIT;
	st.id = m->id;
	st.vm = m->vm;
	st.destination = m->dest;
	st.phase = m->phase;
	st.bytes_sent = m->bytes_sent;
	st.downtime_us = m->downtime_us;
	st.total_time_us = m->total_us;
	st.error = m->error;
	st.started_unix = m->started_unix;
	st.dma_mode = m->dma_mode;
	Godwit__Internal__V1__MigrationRecord rec = GODWIT__INTERNAL__V1__MIGRATION_RECORD__INIT;
	rec.id = m->id;
	rec.source = true;
	rec.step = m->step;
	rec.status = &st;
	rec.peer = m->dest;
	rec.peer_token = m->dest_grant;
	rec.vm = m->vm;
	return gwd_migrec_save(m->d, &rec);
}

static void end_migration(struct gwd_mig *m, Godwit__V1__MigrationPhase ph, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void end_migration(struct gwd_mig *m, Godwit__V1__MigrationPhase ph, const char *fmt, ...)
{
	struct gwd *d = m->d;
	gw_rpc_client_close(m->peer);
	m->peer = NULL;
	pthread_mutex_lock(&d->lock);
	bool counted = final_phase(m->phase); /* ended before (a settled migration's record) */
	m->phase = ph;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m->error, sizeof(m->error), fmt, ap);
		va_end(ap);
	}
	struct gwd_vm *vm = gwd_vm_find(d, m->vm);
	if (vm)
		vm->busy = false;
	m->step = ph == PH(DONE) ? STEP(COMMITTED) : m->committing ? STEP(ABORTED) : STEP(ENDED);
	m->committing = false;
	mig_save(m);
	bump(m);
	if (!counted) {
		/* The VMM's total time; one that never got so far took what the clock says. */
		uint64_t us =
		    m->total_us ? m->total_us : (uint64_t)(gwd_now() - m->started_unix) * 1000000u;
		gwd_metrics_mig_ended(d->metrics, ph, us, m->downtime_us, m->bytes_sent,
				      m->dma_pages, m->dma_bytes);
	}
	pthread_mutex_unlock(&d->lock);
	if (ph == PH(DONE))
		GW_INFO(m->vm, "migration %s to %s done: %.1f ms downtime, %.2f s in all", m->id,
			m->dest, m->downtime_us / 1000.0, m->total_us / 1e6);
	else
		GW_WARN(m->vm, "migration %s to %s ended: %s", m->id, m->dest, m->error);
}

#define VMM_MS(x) GODWIT__VMM__V1__MIGRATION_STATE__MIGRATION_STATE_##x

/* The source VMM's migration states, as phases of the API and as words in messages. */
static const struct {
	Godwit__V1__MigrationPhase phase;
	const char *name;
} vmm_states[] = {
    [VMM_MS(UNSPECIFIED)] = {PH(FAILED), "in an unknown state"},
    [VMM_MS(SETUP)] = {PH(SETUP), "setup"},
    [VMM_MS(PRECOPY)] = {PH(PRECOPY), "precopy"},
    [VMM_MS(STOP_AND_COPY)] = {PH(STOP_AND_COPY), "stop-and-copy"},
    [VMM_MS(HANDOVER)] = {PH(HANDOVER), "handover"},
    [VMM_MS(DONE)] = {PH(DONE), "done"},
    [VMM_MS(FAILED)] = {PH(FAILED), "failed"},
    [VMM_MS(CANCELLED)] = {PH(CANCELLED), "cancelled"},
};

#define VMM_STATE(s) vmm_states[(unsigned)(s) < NELEMS(vmm_states) ? (s) : 0]

/* The API's DMA mode names; the API validates against them. */
static const struct {
	const char *name;
	Godwit__Vmm__V1__DmaMode vmm;
} dma_modes[] = {
    {"shadow", GODWIT__VMM__V1__DMA_MODE__DMA_MODE_SHADOW},
    {"track", GODWIT__VMM__V1__DMA_MODE__DMA_MODE_TRACK},
    {"off", GODWIT__VMM__V1__DMA_MODE__DMA_MODE_OFF},
};

static int dma_mode_parse_api(const char *name, Godwit__Vmm__V1__DmaMode *out)
{
	for (size_t i = 0; i < NELEMS(dma_modes); i++) {
		if (!strcmp(name, dma_modes[i].name)) {
			*out = dma_modes[i].vmm;
			return 0;
		}
	}
	return -EINVAL;
}

static int peer_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, struct gw_rpc_status *st)
{
	*resp = NULL;
	/* This host's certificate proves who the source is (mutual TLS); the grant, that the
	 * destination's operator let this VM come. */
	if (!m->peer && (gw_rpc_client_open_tls(m->dest, NULL, 0, m->d->tls, NULL, &m->peer) ||
			 gw_rpc_client_set_auth(m->peer, "Grant", m->dest_grant))) {
		gw_rpc_client_close(m->peer);
		m->peer = NULL;
		st->code = GW_RPC_INTERNAL;
		snprintf(st->message, sizeof(st->message), "cannot open a channel to %s", m->dest);
		return -EIO;
	}
	enum gw_rpc_code code =
	    gw_rpc_unary(m->peer, &godwit__v1__peer__descriptor, method, req, resp, 30000, st);
	return code == GW_RPC_OK ? 0 : gw_rpc_errno_from_code(code);
}

static int peer_abort(struct gwd_mig *m, const char *reason)
{
	Godwit__V1__AbortRequest a = GODWIT__V1__ABORT_REQUEST__INIT;
	a.migration_id = m->id;
	a.reason = (char *)reason;
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	int rc = peer_call(m, "Abort", &a.base, &resp, &st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (rc)
		GW_WARN(m->vm, "destination did not take the abort of %s: %s", m->id, st.message);
	return rc;
}

/* The source VM's control socket, over one channel kept for the whole migration (it is
 * polled every 200 ms). Only the migration thread uses it; vm is busy while it runs. */
static int vmm_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		    ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st)
{
	pthread_mutex_lock(&m->d->lock);
	struct gwd_vm *vm = gwd_vm_find(m->d, m->vm);
	pthread_mutex_unlock(&m->d->lock);
	if (!vm) {
		*resp = NULL;
		st->code = GW_RPC_NOT_FOUND;
		snprintf(st->message, sizeof(st->message), "VM %s is gone", m->vm);
		return -ENOENT;
	}
	return gwd_vmm_call_kept(m->d, vm, method, req, resp, timeout_ms, st);
}

/* PrepareIncoming as built from the VM: its spec and each NIC's generation and MAC. */
struct prep_msg {
	Godwit__V1__PrepareIncomingRequest req;
	struct gwd_vm_pb *pb;
	Godwit__V1__MigratingNic nics[GWD_NIC_MAX], *nicp[GWD_NIC_MAX];
	char device[GWD_NIC_MAX][8];
};

static int prep_build(struct gwd_mig *m, struct prep_msg *pm)
{
	memset(pm, 0, sizeof(*pm));
	godwit__v1__prepare_incoming_request__init(&pm->req);
	pm->pb = malloc(sizeof(*pm->pb));
	if (!pm->pb)
		return -ENOMEM;
	pthread_mutex_lock(&m->d->lock);
	struct gwd_vm *vm = gwd_vm_find(m->d, m->vm);
	if (vm) {
		gwd_vm_to_pb(m->d, vm, pm->pb);
		pm->pb->spec.guest_path = strdup(vm->guest_path);
		pm->pb->spec.kernel_path = strdup(vm->kernel_path);
		pm->pb->spec.initrd_path = strdup(vm->initrd_path);
		pm->pb->spec.cmdline = strdup(vm->cmdline);
		for (unsigned i = 0; i < vm->nnics; i++) {
			const struct gwd_nic *nic = &vm->nics[i];
			if (nic->emulated)
				snprintf(m->decisions[i].source, sizeof(m->decisions[i].source),
					 "emulated gen%u", nic->gen.gen);
			else
				snprintf(m->decisions[i].source, sizeof(m->decisions[i].source),
					 "pf%u vf%u gen%u", nic->pf, nic->vf, nic->gen.gen);
		}
	}
	pthread_mutex_unlock(&m->d->lock);
	if (!vm) {
		free(pm->pb);
		pm->pb = NULL;
		return -ENOENT;
	}
	for (size_t i = 0; i < pm->pb->spec.n_nics; i++) {
		godwit__v1__migrating_nic__init(&pm->nics[i]);
		snprintf(pm->device[i], sizeof(pm->device[i]), "nic%zu", i);
		pm->nics[i].device = pm->device[i];
		pm->nics[i].kind = (char *)"vf";
		pm->nics[i].gen = &pm->pb->nics[i].gen;
		pm->nics[i].mac = pm->pb->nics[i].mac;
		pm->nicp[i] = &pm->nics[i];
	}
	pm->req.migration_id = m->id;
	pm->req.vm_name = m->vm;
	pm->req.spec = &pm->pb->spec;
	pm->req.channels = m->channels;
	pm->req.channels_auto = m->channels_auto;
	pm->req.nics = pm->nicp;
	pm->req.n_nics = pm->pb->spec.n_nics;
	pm->req.require_passthrough = m->require_passthrough;
	pm->req.plaintext_stream = m->d->insecure;
	return 0;
}

static void prep_free(struct prep_msg *pm)
{
	if (!pm->pb)
		return;
	free(pm->pb->spec.guest_path);
	free(pm->pb->spec.kernel_path);
	free(pm->pb->spec.initrd_path);
	free(pm->pb->spec.cmdline);
	free(pm->pb);
	pm->pb = NULL;
}

/* Keeps what the destination decided for each device, for Get and Watch. */
static void take_decisions(struct gwd_mig *m, const Godwit__V1__PrepareIncomingResponse *pr)
{
	pthread_mutex_lock(&m->d->lock);
	const struct gwd_vm *vm = gwd_vm_find(m->d, m->vm);
	m->ndecisions = 0;
	for (size_t i = 0; i < pr->n_decisions && i < GWD_NIC_MAX; i++) {
		const Godwit__V1__DeviceDecision *dd = pr->decisions[i];
		struct gwd_mig_decision *md = &m->decisions[m->ndecisions++];
		snprintf(md->device, sizeof(md->device), "%s", dd->device);
		snprintf(md->decision, sizeof(md->decision), "%s", dd->decision);
		/* The decision's one word the source acts on, read once as it comes in. A VF
		 * passed through with VFIO has no vendor migration driver: its state is its
		 * registers, read at the stop, which a destination's model of the same VF takes
		 * over; a VFIO VF there cannot take them (dd->recreate). */
		const struct gwd_nic *nic = vm && i < vm->nnics ? &vm->nics[i] : NULL;
		bool vfio =
		    nic && nic->backed && !nic->emulated && nic->backend == GWD_BACKEND_VFIO;
		md->recreate = dd->recreate || !strcmp(md->decision, "mismatch");
		if (vfio && !md->recreate)
			snprintf(md->reason, sizeof(md->reason),
				 "%.200s; the VFIO VF's registers are read at the stop and the "
				 "model there takes them over",
				 dd->reason);
		else
			snprintf(md->reason, sizeof(md->reason), "%s", dd->reason);
		snprintf(md->destination, sizeof(md->destination), "%s", dd->destination);
	}
	bump(m);
	pthread_mutex_unlock(&m->d->lock);
	for (unsigned i = 0; i < m->ndecisions; i++)
		GW_INFO(m->vm, "migration %s: %s %s: %s (%s -> %s)", m->id, m->decisions[i].device,
			m->decisions[i].decision, m->decisions[i].reason, m->decisions[i].source,
			m->decisions[i].destination);
}

/* The source VMM's process still runs (its monitor has not seen it exit). */
static bool vmm_alive(struct gwd_mig *m)
{
	pthread_mutex_lock(&m->d->lock);
	struct gwd_vm *vm = gwd_vm_find(m->d, m->vm);
	bool alive = vm && vm->monitor_running;
	pthread_mutex_unlock(&m->d->lock);
	return alive;
}

/* The source VMM stopped answering. The destination is told to drop what it received; once it
 * has, the VMM is asked (best effort: it may answer again later) to cancel, which resumes the
 * VM even from the handover. If the destination could not be told, the VM might run there: it
 * is not resumed here. */
static void vmm_lost(struct gwd_mig *m, const struct gw_rpc_status *st)
{
	char why[300];
	snprintf(why, sizeof(why), "%s: %s", gw_rpc_code_name(st->code),
		 st->message[0] ? st->message : "no answer");
	if (peer_abort(m, "source VMM unreachable")) {
		end_migration(m, PH(FAILED),
			      "lost the source VMM (%s), and the destination %s could not be told "
			      "to abort: the VM is not resumed here until an operator checks",
			      why, m->dest);
		return;
	}
	Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status cs;
	bool resumed = vmm_call(m, "MigrateCancel", &creq.base, &resp, 15000, &cs) == 0;
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	end_migration(m, PH(FAILED), "lost the source VMM (%s)%s", why,
		      resumed ? "; it answered the cancel: the VM keeps running on this host"
			      : "; the destination dropped the VM");
}

/* 1. The destination prepares: this is where a wrong token, too little memory or no VF to
 * back a NIC stops everything, before any VM state moves. Its answer, or NULL once the
 * migration ended. */
static Godwit__V1__PrepareIncomingResponse *dest_prepare(struct gwd_mig *m, char *token)
{
	struct prep_msg pm;
	struct gw_rpc_status st;
	Godwit__V1__PrepareIncomingResponse *pr = NULL;
	int rc = prep_build(m, &pm);
	if (rc) {
		end_migration(m, PH(FAILED), "cannot describe VM %s to the destination: %s", m->vm,
			      strerror(-rc));
		return NULL;
	}
	pm.req.stream_token = token;
	rc = peer_call(m, "PrepareIncoming", &pm.req.base, (ProtobufCMessage **)&pr, &st);
	prep_free(&pm);
	if (rc) {
		/* An answer lost on the way may leave a VMM prepared there: it is told to go. */
		if (st.code == GW_RPC_UNAVAILABLE || st.code == GW_RPC_DEADLINE_EXCEEDED)
			peer_abort(m, "the source did not get the prepare's answer");
		end_migration(m, PH(FAILED), "the destination %s refused the migration: %s: %s",
			      m->dest, gw_rpc_code_name(st.code), st.message);
		return NULL;
	}
	take_decisions(m, pr);
	if (m->channels_auto) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		pthread_mutex_lock(&m->d->lock);
		m->channels =
		    gwd_mig_channels_auto(ncpu < 1 ? 1 : (unsigned)ncpu, pr->online_cpus, 8,
					  m->channels_reason, sizeof(m->channels_reason));
		bump(m);
		pthread_mutex_unlock(&m->d->lock);
		GW_INFO(m->vm, "migration %s: channels %s; the destination listens on %zu", m->id,
			m->channels_reason, pr->n_stream_ports);
	}
	return pr;
}

/* 2. The VMM streams to the ports the destination's VMM listens on. 0, or an error once the
 * migration ended. */
static int vmm_stream(struct gwd_mig *m, const Godwit__V1__PrepareIncomingResponse *pr, char *token)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", pr->stream_host);
	if (!host[0] || !strcmp(host, "0.0.0.0")) {
		snprintf(host, sizeof(host), "%s", m->dest);
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = '\0';
	}
	Godwit__Vmm__V1__MigrateOutRequest out = GODWIT__VMM__V1__MIGRATE_OUT_REQUEST__INIT;
	out.host = host;
	out.ports = pr->stream_ports;
	out.n_ports = pr->n_stream_ports;
	out.token = token;
	out.downtime_limit_ms = m->downtime_ms;
	out.max_time_s = m->max_time_s;
	out.max_bandwidth = m->max_bandwidth;
	out.verify = false; /* a RAM checksum on both sides would add to the downtime */
	out.dma_mode = m->vmm_dma_mode;
	out.allow_tsc_change = m->allow_tsc_change;
	out.plaintext = m->d->insecure;
	out.stall_timeout_s = m->stall_timeout_s;
	out.timeout_s = m->timeout_s;
	out.timeout_action =
	    m->timeout_cancel
		? GODWIT__VMM__V1__MIGRATE_OUT_REQUEST__TIMEOUT_ACTION__TIMEOUT_ACTION_CANCEL
		: GODWIT__VMM__V1__MIGRATE_OUT_REQUEST__TIMEOUT_ACTION__TIMEOUT_ACTION_SUSPEND;
	out.no_auto_converge = m->no_auto_converge;
	out.throttle_initial_pct = m->throttle_initial;
	out.throttle_increment_pct = m->throttle_increment;
	out.probe_channels = m->channels_auto;
	uint32_t recreate[GWD_NIC_MAX];
	pthread_mutex_lock(&m->d->lock);
	for (unsigned i = 0; i < m->ndecisions; i++)
		if (m->decisions[i].recreate)
			recreate[out.n_recreate_vfs++] = i;
	pthread_mutex_unlock(&m->d->lock);
	out.recreate_vfs = out.n_recreate_vfs ? recreate : NULL;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status st;
	/* The VMM answers once its migration thread runs (milliseconds), but a loaded host can
	 * hold that answer back for seconds (more than 10 s was seen in a test host, with a Linux
	 * guest under TCG): a deadline that expires there fails a migration the VMM started. */
	int rc = vmm_call(m, "MigrateOut", &out.base, &resp, 60000, &st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (rc) {
		peer_abort(m, st.message);
		end_migration(m, PH(FAILED), "the VMM could not start the migration: %s",
			      st.message);
	}
	return rc;
}

/* What the source VMM reported, for Get and Watch. A final phase is published by
 * end_migration, together with its reason. */
static void take_stats(struct gwd_mig *m, const Godwit__Vmm__V1__MigrationStats *ms,
		       Godwit__V1__MigrationPhase ph)
{
	pthread_mutex_lock(&m->d->lock);
	if (!final_phase(ph))
		m->phase = ph;
	m->bytes_sent = ms->bytes_sent;
	m->bytes_remaining = ms->bytes_remaining;
	m->dirty_rate = ms->dirty_rate_pps;
	m->iteration = ms->iteration;
	m->exp_downtime_us = ms->expected_downtime_us;
	m->downtime_us = ms->downtime_us;
	m->total_us = ms->total_time_us;
	m->src_checksum = ms->ram_checksum;
	m->dma_pages = ms->dma_pages_dirtied;
	m->dma_bytes = ms->dma_bytes_copied;
	m->stream_tls = ms->tls;
	m->stream_channels = ms->channels;
	m->ktls_send = ms->ktls_send_channels;
	m->ktls_recv = ms->ktls_recv_channels;
	m->throttle_pct = ms->throttle_pct;
	m->timed_out = ms->timed_out;
	m->pages_resent = ms->pages_resent;
	m->channels_used = ms->channels_used;
	if (ms->channels_probe && ms->channels_probe[0])
		snprintf(m->channels_measured, sizeof(m->channels_measured), "%s",
			 ms->channels_probe);
	/* Over the VMM's clock (total_time_us is taken with bytes_sent): exact however late the
	 * report came. */
	if (ms->total_time_us > m->prev_us && ms->bytes_sent >= m->prev_bytes)
		m->throughput_bps =
		    (ms->bytes_sent - m->prev_bytes) * 1000000u / (ms->total_time_us - m->prev_us);
	if (ms->total_time_us != m->prev_us) {
		m->prev_us = ms->total_time_us;
		m->prev_bytes = ms->bytes_sent;
	}
	bump(m);
	pthread_mutex_unlock(&m->d->lock);
}

/* Asks the VMM to cancel once the API asked to; true from then on. */
static bool forward_cancel(struct gwd_mig *m, bool cancel_sent)
{
	pthread_mutex_lock(&m->d->lock);
	bool want_cancel = m->cancel && !cancel_sent;
	pthread_mutex_unlock(&m->d->lock);
	if (want_cancel) {
		Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;
		struct gw_rpc_status st;
		vmm_call(m, "MigrateCancel", &creq.base, &resp, 15000, &st);
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
	}
	return cancel_sent || want_cancel;
}

/* 3. Follows the VMM until the handover (0, and the VMM's downtime so far) or the end (an
 * error once the migration ended). */
static int follow_vmm(struct gwd_mig *m, uint64_t *vmm_downtime_us)
{
	Godwit__Vmm__V1__MigrationStats *ms = NULL;
	struct gw_rpc_status st;
	bool cancel_sent = false;
	int64_t answered = gwd_now(); /* when the VMM last answered a poll */
	for (;;) {
		cancel_sent = forward_cancel(m, cancel_sent);
		if (ms)
			protobuf_c_message_free_unpacked(&ms->base, NULL);
		ms = NULL;
		Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
		int rc = vmm_call(m, cancel_sent ? "MigrationStatus" : "MigrationWait", &creq.base,
				  (ProtobufCMessage **)&ms, 5000, &st);
		if (rc && (st.code == GW_RPC_DEADLINE_EXCEEDED || st.code == GW_RPC_UNAVAILABLE) &&
		    vmm_alive(m) && gwd_now() - answered < VMM_SILENCE_MAX_S) {
			/* Slow to answer is not gone (a loaded host): ask again. */
			GW_DEBUG(m->vm, "migration %s: the VMM did not answer: %s; asking again",
				 m->id, st.message);
			usleep(200 * 1000);
			continue;
		}
		if (rc) {
			vmm_lost(m, &st);
			return rc;
		}
		answered = gwd_now();
		Godwit__V1__MigrationPhase ph = VMM_STATE(ms->state).phase;
		take_stats(m, ms, ph);
		if (ph == PH(HANDOVER))
			break;
		if (final_phase(ph)) {
			char err[300];
			if (ms->error && ms->error[0])
				snprintf(err, sizeof(err), "%s", ms->error);
			else
				snprintf(err, sizeof(err),
					 "the source VMM ended the migration %s "
					 "without a reason",
					 VMM_STATE(ms->state).name);
			peer_abort(m, err);
			protobuf_c_message_free_unpacked(&ms->base, NULL);
			end_migration(m, ph, "%s; the VM keeps running on this host", err);
			return -ECANCELED;
		}
	}
	*vmm_downtime_us = ms->downtime_us;
	protobuf_c_message_free_unpacked(&ms->base, NULL);
	return 0;
}

static void *migration_thread(void *arg)
{
	struct gwd_mig *m = arg;
	gw_log_thread_fields(m->vm, m->id);
	char token[65];
	if (random_hex(token, 32)) {
		end_migration(m, PH(FAILED), "cannot draw a stream token: getrandom failed");
		return NULL;
	}
	Godwit__V1__PrepareIncomingResponse *pr = dest_prepare(m, token);
	if (!pr)
		return NULL;
	int rc = vmm_stream(m, pr, token);
	protobuf_c_message_free_unpacked(&pr->base, NULL);
	uint64_t vmm_downtime_us;
	if (rc == 0 && follow_vmm(m, &vmm_downtime_us) == 0)
		mig_handover(m, vmm_downtime_us);
	return NULL;
}

static Godwit__V1__Migration *mig_copy(struct gw_rpc_call *call, const struct gwd_mig *m)
{
	Godwit__V1__Migration *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return NULL;
	godwit__v1__migration__init(r);
	r->id = gw_rpc_call_strdup(call, m->id);
	r->vm = gw_rpc_call_strdup(call, m->vm);
	r->destination = gw_rpc_call_strdup(call, m->dest);
	r->phase = m->phase;
	r->bytes_sent = m->bytes_sent;
	r->bytes_remaining = m->bytes_remaining;
	r->dirty_rate_pps = m->dirty_rate;
	r->iteration = m->iteration;
	r->expected_downtime_us = m->exp_downtime_us;
	r->downtime_us = m->downtime_us;
	r->total_time_us = m->total_us;
	r->error = gw_rpc_call_strdup(call, m->error);
	r->started_unix = m->started_unix;
	r->dma_mode = gw_rpc_call_strdup(call, m->dma_mode);
	r->dma_pages_dirtied = m->dma_pages;
	r->dma_bytes_copied = m->dma_bytes;
	r->stream_tls = m->stream_tls;
	r->stream_channels = m->stream_channels;
	r->ktls_send_channels = m->ktls_send;
	r->ktls_recv_channels = m->ktls_recv;
	r->throttle_pct = m->throttle_pct;
	r->throughput_bps = m->throughput_bps;
	r->timed_out = m->timed_out;
	r->pages_resent = m->pages_resent;
	r->channels_reason = gw_rpc_call_strdup(call, m->channels_reason);
	r->channels_used = m->channels_used;
	r->channels_measured = gw_rpc_call_strdup(call, m->channels_measured);
	r->decisions = gw_rpc_call_alloc(call, GWD_NIC_MAX * sizeof(*r->decisions));
	for (unsigned i = 0; r->decisions && i < m->ndecisions; i++) {
		const struct gwd_mig_decision *md = &m->decisions[i];
		Godwit__V1__DeviceDecision *dd = gw_rpc_call_alloc(call, sizeof(*dd));
		if (!dd)
			break;
		godwit__v1__device_decision__init(dd);
		dd->device = gw_rpc_call_strdup(call, md->device);
		dd->decision = gw_rpc_call_strdup(call, md->decision);
		dd->reason = gw_rpc_call_strdup(call, md->reason);
		dd->source = gw_rpc_call_strdup(call, md->source);
		dd->destination = gw_rpc_call_strdup(call, md->destination);
		r->decisions[r->n_decisions++] = dd;
	}
	return r;
}

static struct gwd_mig *find_mig(struct gwd *d, const char *id)
{
	for (struct gwd_mig *m = d->migs; m; m = m->next) {
		if (id && strcmp(m->id, id) == 0)
			return m;
	}
	return NULL;
}

static int mig_migrate(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		       ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__MigrateRequest *req = (const void *)rq;
	char why[200];
	if (gwd_validate_name(req->vm, why, sizeof(why))) {
		gw_rpc_call_error(call, "%s", why);
		return -EINVAL;
	}
	if (!req->destination || !strchr(req->destination, ':') || strlen(req->destination) > 250 ||
	    !req->destination_grant || !req->destination_grant[0] ||
	    strlen(req->destination_grant) > 250) {
		gw_rpc_call_error(call, "a destination HOST:PORT and the grant its godwitd gave "
					"(GrantIncoming) are required");
		return -EINVAL;
	}
	if (!d->tls && !d->insecure && !gwd_addr_is_loopback(req->destination)) {
		gw_rpc_call_error(call,
				  "%s is another host and this godwitd has no TLS: start it "
				  "with --tls-cert, --tls-key and --tls-ca (or --insecure)",
				  req->destination);
		return -EPERM;
	}
	if (gwd_validate_migrate_tuning(req, why, sizeof(why))) {
		gw_rpc_call_error(call, "%s", why);
		return -EINVAL;
	}
	const char *dma = req->dma_mode && req->dma_mode[0] ? req->dma_mode : "shadow";
	Godwit__Vmm__V1__DmaMode vmm_dma;
	if (dma_mode_parse_api(dma, &vmm_dma)) {
		gw_rpc_call_error(call, "dma_mode \"%s\": use shadow (the default), track or off",
				  dma);
		return -EINVAL;
	}
	struct gwd_mig *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->d = d;
	if (random_hex(m->id, 8)) {
		free(m);
		gw_rpc_call_error(call, "cannot draw a migration ID: getrandom failed");
		return -EIO;
	}
	snprintf(m->vm, sizeof(m->vm), "%s", req->vm);
	snprintf(m->dest, sizeof(m->dest), "%s", req->destination);
	snprintf(m->dest_grant, sizeof(m->dest_grant), "%s", req->destination_grant);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->channels_auto = req->channels == 0;
	if (m->channels_auto)
		/* The most this host wants; the destination's answer may lower it. */
		m->channels = gwd_mig_channels_auto(ncpu < 1 ? 1 : (unsigned)ncpu, 0, 8,
						    m->channels_reason, sizeof(m->channels_reason));
	else {
		m->channels = req->channels;
		snprintf(m->channels_reason, sizeof(m->channels_reason), "asked: %u",
			 req->channels);
	}
	m->timeout_s = req->timeout_s;
	m->timeout_cancel = req->timeout_action && !strcmp(req->timeout_action, "cancel");
	m->no_auto_converge = req->no_auto_converge;
	m->throttle_initial = req->throttle_initial_pct;
	m->throttle_increment = req->throttle_increment_pct;
	m->downtime_ms = req->downtime_limit_ms ? req->downtime_limit_ms : 50;
	m->max_time_s = req->max_time_s;
	m->max_bandwidth = req->max_bandwidth;
	snprintf(m->dma_mode, sizeof(m->dma_mode), "%s", dma);
	m->vmm_dma_mode = vmm_dma;
	m->require_passthrough = req->require_passthrough;
	m->allow_tsc_change = req->allow_tsc_change;
	m->stall_timeout_s = req->stall_timeout_s;
	m->phase = PH(SETUP);
	m->started_unix = gwd_now();
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = gwd_vm_find(d, req->vm);
	int rc = 0;
	if (!vm) {
		gw_rpc_call_error(call, "no VM named '%s' on this host", req->vm);
		rc = -ENOENT;
	} else if (vm->state != GWD_RUNNING || !vm->monitor_running) {
		gw_rpc_call_error(call, "VM '%s' is not running; only running VMs migrate",
				  req->vm);
		rc = -EBUSY;
	} else if (vm->busy) {
		gw_rpc_call_error(call, "another operation on VM '%s' is in progress", req->vm);
		rc = -EBUSY;
	}
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		free(m);
		return rc;
	}
	/* On disk before anything moves: a restarted godwitd finds it and finishes it. */
	m->step = STEP(STREAMING);
	if (mig_save(m)) {
		pthread_mutex_unlock(&d->lock);
		free(m);
		gw_rpc_call_error(call, "cannot save the migration's record in %s/migrations",
				  d->state_dir);
		return -EIO;
	}
	vm->busy = true;
	m->next = d->migs;
	d->migs = m;
	*resp = &mig_copy(call, m)->base;
	pthread_mutex_unlock(&d->lock);
	pthread_t t;
	if (pthread_create(&t, NULL, migration_thread, m)) {
		end_migration(m, PH(FAILED), "cannot start the migration thread");
		return 0;
	}
	pthread_detach(t);
	GW_INFO(req->vm, "migration %s to %s started", m->id, m->dest);
	return 0;
}

static int mig_get(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		   ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__MigrationRef *req = (const void *)rq;
	pthread_mutex_lock(&d->lock);
	struct gwd_mig *m = find_mig(d, req->id);
	if (m)
		*resp = &mig_copy(call, m)->base;
	pthread_mutex_unlock(&d->lock);
	if (!m) {
		gw_rpc_call_error(call, "no migration %s on this host", req->id);
		return -ENOENT;
	}
	return 0;
}

static int mig_cancel(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__MigrationRef *req = (const void *)rq;
	pthread_mutex_lock(&d->lock);
	struct gwd_mig *m = find_mig(d, req->id);
	int rc = 0;
	if (!m) {
		gw_rpc_call_error(call, "no migration %s on this host", req->id);
		rc = -ENOENT;
	} else if (final_phase(m->phase)) {
		gw_rpc_call_error(call, "migration %s has already ended", req->id);
		rc = -EBUSY;
	} else if (m->committing) {
		gw_rpc_call_error(call,
				  "migration %s is past its point of no return: the destination "
				  "is starting the VM (see 'godwit migration status %s')",
				  req->id, req->id);
		rc = -EBUSY;
	} else {
		m->cancel = true;
		bump(m);
		*resp = &mig_copy(call, m)->base;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int mig_list(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		    ProtobufCMessage **resp)
{
	(void)rq;
	struct gwd *d = ctx;
	Godwit__V1__ListMigrationsResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__list_migrations_response__init(r);
	pthread_mutex_lock(&d->lock);
	size_t n = 0;
	for (struct gwd_mig *m = d->migs; m; m = m->next)
		n++;
	r->migrations = gw_rpc_call_alloc(call, (n ? n : 1) * sizeof(*r->migrations));
	for (struct gwd_mig *m = d->migs; m && r->migrations; m = m->next)
		r->migrations[r->n_migrations++] = mig_copy(call, m);
	pthread_mutex_unlock(&d->lock);
	*resp = &r->base;
	return 0;
}

static int mig_watch(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq)
{
	struct gwd *d = ctx;
	const Godwit__V1__MigrationRef *req = (const void *)rq;
	unsigned seen = ~0u;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		struct gwd_mig *m = find_mig(d, req->id);
		if (!m) {
			pthread_mutex_unlock(&d->lock);
			gw_rpc_call_error(call, "no migration %s on this host", req->id);
			return -ENOENT;
		}
		while (m->version == seen && !d->shutting_down) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
				break;
		}
		bool changed = m->version != seen;
		seen = m->version;
		Godwit__V1__Migration *copy = changed ? mig_copy(call, m) : NULL;
		bool done = final_phase(m->phase);
		pthread_mutex_unlock(&d->lock);
		if (copy && gw_rpc_stream_send(call, &copy->base))
			return -ECANCELED;
		if (done || d->shutting_down)
			return 0;
		if (gw_rpc_call_cancelled(call))
			return -ECANCELED;
	}
}

/* What mig_settle.c uses of this file. */
bool mig_final_phase(Godwit__V1__MigrationPhase p)
{
	return final_phase(p);
}

void mig_bump(struct gwd_mig *m)
{
	bump(m);
}

void mig_end(struct gwd_mig *m, Godwit__V1__MigrationPhase ph, const char *why)
{
	if (why)
		end_migration(m, ph, "%s", why);
	else
		end_migration(m, ph, NULL);
}

int mig_peer_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct gw_rpc_status *st)
{
	return peer_call(m, method, req, resp, st);
}

int mig_vmm_call(struct gwd_mig *m, const char *method, const ProtobufCMessage *req,
		 ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st)
{
	return vmm_call(m, method, req, resp, timeout_ms, st);
}

Godwit__V1__Migration *mig_get_copy(struct gw_rpc_call *call, const struct gwd_mig *m)
{
	return mig_copy(call, m);
}

struct gwd_mig *mig_find(struct gwd *d, const char *id)
{
	return find_mig(d, id);
}

#define MIG(n, f)                                                                                  \
	{                                                                                          \
		.service = &godwit__v1__migrations__descriptor, .name = n, .unary = f              \
	}

const struct gw_rpc_method gwd_migrations_methods[] = {
    MIG("Migrate", mig_migrate),
    MIG("Get", mig_get),
    MIG("Cancel", mig_cancel),
    MIG("List", mig_list),
    MIG("Resolve", mig_resolve),
    {.service = &godwit__v1__migrations__descriptor, .name = "Watch", .stream = mig_watch},
};
const size_t gwd_migrations_nmethods =
    sizeof(gwd_migrations_methods) / sizeof(gwd_migrations_methods[0]);
