/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The source's handover and what settles it. The commit is on disk (step COMMITTING) before
 * it is sent; from then on the VM resumes here only once the destination confirmed that it
 * does not run the VM (an abort it accepted), and is let go only once it confirmed the
 * commit. Until one of the two is known the migration is in doubt and the VM stays paused.
 * A restarted godwitd finishes its migrations from their records the same way.
 */
#include "migrations.h"

#include "godwit/log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a migration in doubt asks the destination again. */
#define IN_DOUBT_RETRY_S 3
/* A destination resolved as down (--destination-down) is asked to abort every
 * OWED_ABORT_RETRY_S, OWED_ABORT_MAX_S at most. */
#define OWED_ABORT_RETRY_S 5
#define OWED_ABORT_MAX_S   3600
/* Attempts of a commit whose answer did not come (a lost connection): Commit is idempotent. */
#define COMMIT_ATTEMPTS 5

#define KEEP(x) GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_##x

static int vmm_finish(struct gwd_mig *m, bool commit, struct gw_rpc_status *st)
{
	Godwit__Vmm__V1__FinishRequest f = GODWIT__VMM__V1__FINISH_REQUEST__INIT;
	f.commit = commit;
	ProtobufCMessage *resp;
	int rc = mig_vmm_call(m, "MigrateFinish", &f.base, &resp, 10000, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static bool transport_error(enum gw_rpc_code c)
{
	return c == GW_RPC_UNAVAILABLE || c == GW_RPC_DEADLINE_EXCEEDED;
}

/* What the destination says of the VM. */
enum dest_says {
	DEST_ABORTED,	/* it does not run the VM and never will */
	DEST_COMMITTED, /* it runs the VM */
	DEST_BUSY,	/* a commit (or the prepare) is running there: ask again */
	DEST_UNKNOWN,	/* no answer that settles it */
};

/* Asks the destination to abort; a refusal is followed by a query of what it did instead. */
static enum dest_says dest_abort(struct gwd_mig *m, const char *reason, char *why, size_t n)
{
	Godwit__V1__AbortRequest a = GODWIT__V1__ABORT_REQUEST__INIT;
	a.migration_id = m->id;
	a.reason = (char *)reason;
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	int rc = mig_peer_call(m, "Abort", &a.base, &resp, &st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (rc == 0)
		return DEST_ABORTED;
	snprintf(why, n, "%s: %s", gw_rpc_code_name(st.code), st.message);
	if (st.code != GW_RPC_FAILED_PRECONDITION)
		return st.code == GW_RPC_UNAVAILABLE && strstr(st.message, "ask again")
			   ? DEST_BUSY
			   : DEST_UNKNOWN;
	Godwit__V1__QueryIncomingRequest q = GODWIT__V1__QUERY_INCOMING_REQUEST__INIT;
	q.migration_id = m->id;
	Godwit__V1__QueryIncomingResponse *qr = NULL;
	if (mig_peer_call(m, "QueryIncoming", &q.base, (ProtobufCMessage **)&qr, &st)) {
		snprintf(why, n,
			 "the destination refused the abort and its state cannot be read: "
			 "%s",
			 st.message);
		return DEST_UNKNOWN;
	}
	enum dest_says says = DEST_BUSY;
	if (qr->state == GODWIT__V1__QUERY_INCOMING_RESPONSE__STATE__STATE_COMMITTED)
		says = DEST_COMMITTED;
	protobuf_c_message_free_unpacked(&qr->base, NULL);
	return says;
}

/* One Commit; 0, or an error with st saying why. */
static int dest_commit_once(struct gwd_mig *m, struct gw_rpc_status *st)
{
	Godwit__V1__CommitRequest cr = GODWIT__V1__COMMIT_REQUEST__INIT;
	cr.migration_id = m->id;
	ProtobufCMessage *resp = NULL;
	int rc = mig_peer_call(m, "Commit", &cr.base, &resp, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* The commit, asked again while its answer is lost (a retry of a commit that was made
 * succeeds, one made while the first runs gets the first's result). */
static int dest_commit(struct gwd_mig *m, uint64_t *commit_us, struct gw_rpc_status *st)
{
	struct timespec c0, c1;
	clock_gettime(CLOCK_MONOTONIC, &c0);
	int rc = -EIO;
	for (int attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
		rc = dest_commit_once(m, st);
		if (rc == 0 || !transport_error(st->code))
			break;
		GW_WARN(m->vm, "migration %s: the commit's answer did not come (%s); asking again",
			m->id, st->message);
		usleep((useconds_t)(250 * 1000 * (attempt + 1)));
	}
	clock_gettime(CLOCK_MONOTONIC, &c1);
	*commit_us =
	    (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000L + (c1.tv_nsec - c0.tv_nsec) / 1000);
	return rc;
}

/* The destination runs the VM: this copy is let go, and forgotten once its VMM exited. */
static void let_go(struct gwd_mig *m, uint64_t downtime_us)
{
	struct gwd *d = m->d;
	struct gw_rpc_status fs;
	int frc = vmm_finish(m, true, &fs);
	if (frc)
		GW_WARN(m->vm, "migration %s: the VMM did not take the commit (%s); ending it",
			m->id, fs.message);
	pthread_mutex_lock(&d->lock);
	if (downtime_us)
		m->downtime_us = downtime_us;
	m->bytes_remaining = 0;
	struct gwd_vm *vm = gwd_vm_find(d, m->vm);
	/* A VMM that did not take the commit must not go on: the VM runs there. */
	if (vm && vm->monitor_running && vm->pid > 0 && frc)
		kill(vm->pid, SIGKILL);
	pthread_mutex_unlock(&d->lock);
	/* The VMM exits; once its monitor saw that, the VM is no longer ours. */
	for (int i = 0; i < 200 && vm; i++) {
		pthread_mutex_lock(&d->lock);
		vm = gwd_vm_find(d, m->vm);
		bool gone = !vm || !vm->monitor_running;
		if (vm && gone) {
			GW_INFO(vm->name, "migrated to %s; forgotten here", m->dest);
			gwd_vm_forget(d, vm);
			vm = NULL;
		}
		pthread_mutex_unlock(&d->lock);
		if (!gone)
			usleep(50 * 1000);
	}
	mig_end(m, PH(DONE), NULL);
}

/* The VMM's run state (VmmStatus.state), or RUN_STATE_UNSPECIFIED with st saying why. */
static Godwit__Vmm__V1__RunState vmm_run_state(struct gwd_mig *m, const char *method,
					       struct gw_rpc_status *st)
{
	Godwit__Vmm__V1__ControlRequest rq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	Godwit__Vmm__V1__VmmStatus *rs = NULL;
	Godwit__Vmm__V1__RunState state = GODWIT__VMM__V1__RUN_STATE__RUN_STATE_UNSPECIFIED;
	if (mig_vmm_call(m, method, &rq.base, (ProtobufCMessage **)&rs, 10000, st) == 0 && rs)
		state = rs->state;
	if (rs)
		protobuf_c_message_free_unpacked(&rs->base, NULL);
	return state;
}

/*
 * The abort, told to the VMM, which resumes the VM: asked again while its answer is lost. A
 * Finish the VMM refuses (an earlier one whose answer was lost took the migration out of its
 * handover) is no answer either: what counts is that the VM runs, so a VM the VMM still holds
 * paused is resumed. False, with why, when the VM does not run here.
 */
static bool vmm_abort_resume(struct gwd_mig *m, char *why, size_t n)
{
	struct gw_rpc_status st;
	for (int attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
		if (vmm_finish(m, false, &st) == 0)
			return true;
		if (!transport_error(st.code))
			break;
		GW_WARN(m->vm,
			"migration %s: the VMM's answer to the abort did not come (%s); "
			"asking again",
			m->id, st.message);
		usleep((useconds_t)(250 * 1000 * (attempt + 1)));
	}
	GW_WARN(m->vm,
		"migration %s: the VMM did not take the abort (%s: %s); checking that the VM "
		"runs",
		m->id, gw_rpc_code_name(st.code), st.message);
	Godwit__Vmm__V1__RunState rs = vmm_run_state(m, "Status", &st);
	if (rs == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_PAUSED)
		rs = vmm_run_state(m, "Resume", &st);
	if (rs == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_RUNNING)
		return true;
	if (rs == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_UNSPECIFIED)
		snprintf(why, n, "the VMM does not answer: %s", st.message);
	else
		snprintf(why, n, "the VMM holds the VM %s",
			 rs == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_STOPPED ? "stopped"
									     : "not running");
	return false;
}

/* The destination confirmed it does not run the VM: it resumes here. */
static void resume_here(struct gwd_mig *m, bool cancelled, const char *why)
{
	struct gwd *d = m->d;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = gwd_vm_find(d, m->vm);
	if (vm)
		gwd_nics_steer_back(d, vm); /* before it runs again */
	pthread_mutex_unlock(&d->lock);
	char fail[300] = "";
	bool runs = vmm_abort_resume(m, fail, sizeof(fail));
	pthread_mutex_lock(&d->lock);
	vm = gwd_vm_find(d, m->vm);
	if (vm) {
		vm->migrated_to[0] = '\0';
		if (runs && vm->monitor_running && vm->state == GWD_PAUSED)
			vm->state = GWD_RUNNING; /* adopted paused at its handover */
		gwd_vm_persist(d, vm);
	}
	pthread_mutex_unlock(&d->lock);
	char msg[800];
	if (runs) {
		snprintf(msg, sizeof(msg),
			 "the destination did not take the VM (%s); it keeps running here", why);
	} else {
		snprintf(
		    msg, sizeof(msg),
		    "the destination did not take the VM (%s), but it could not be resumed here "
		    "(%s): its vmm.log says more; 'godwit vm stop --force %s' and 'vm start' "
		    "boot it again, without what its memory held",
		    why, fail, m->vm);
		GW_ERR(m->vm, "migration %s: %s", m->id, msg);
	}
	mig_end(m, cancelled ? PH(CANCELLED) : PH(FAILED), msg);
}

/* An operator's Resolve, answered: rc and the message the caller gets. */
static void resolve_answer(struct gwd_mig *m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void resolve_answer(struct gwd_mig *m, int rc, const char *fmt, ...)
{
	pthread_mutex_lock(&m->d->lock);
	m->resolve_rc = rc;
	m->resolve_msg[0] = '\0';
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m->resolve_msg, sizeof(m->resolve_msg), fmt, ap);
		va_end(ap);
	}
	m->resolve_done = true;
	mig_bump(m);
	pthread_mutex_unlock(&m->d->lock);
}

/* The migration is in doubt from here until it is settled: Get, List and Watch show it. */
static void announce_doubt(struct gwd_mig *m, const char *why)
{
	pthread_mutex_lock(&m->d->lock);
	m->phase = PH(IN_DOUBT);
	m->step = STEP(IN_DOUBT);
	snprintf(m->error, sizeof(m->error),
		 "handover in doubt: %.200s; the VM stays paused here while godwitd asks %s again "
		 "(or 'godwit migration resolve')",
		 why, m->dest);
	mig_save(m);
	mig_bump(m);
	pthread_mutex_unlock(&m->d->lock);
	GW_WARN(m->vm, "migration %s: %s", m->id, m->error);
}

/* Waits up to s seconds for an operator's Resolve; its Keep, or 0. */
static int await_resolve(struct gwd_mig *m, unsigned s, bool *down)
{
	struct gwd *d = m->d;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s;
	pthread_mutex_lock(&d->lock);
	while (!(m->resolve && !m->resolve_done) && !d->shutting_down)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	int keep = m->resolve && !m->resolve_done ? m->resolve : 0;
	*down = m->resolve_down;
	pthread_mutex_unlock(&d->lock);
	return keep;
}

/*
 * Resolved with --destination-down: the VM runs here again, and the destination's copy, if its
 * host comes back, waits there for a commit that never comes (until its time limit for
 * prepared VMs, --incoming-timeout). The abort is owed: asked again until the destination
 * confirms it and drops its copy, or godwitd stops, or OWED_ABORT_MAX_S passed.
 */
static void owe_abort(struct gwd_mig *m)
{
	struct gwd *d = m->d;
	time_t end = time(NULL) + OWED_ABORT_MAX_S;
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += OWED_ABORT_RETRY_S;
		pthread_mutex_lock(&d->lock);
		while (!d->shutting_down &&
		       pthread_cond_timedwait(&d->cond, &d->lock, &ts) != ETIMEDOUT)
			;
		bool stop = d->shutting_down;
		pthread_mutex_unlock(&d->lock);
		if (stop || time(NULL) >= end)
			return;
		char why[300] = "";
		enum dest_says says = dest_abort(
		    m, "resolved by an operator: the VM runs on the source", why, sizeof(why));
		if (says == DEST_ABORTED) {
			GW_INFO(m->vm, "migration %s: %s is back and dropped its copy", m->id,
				m->dest);
			return;
		}
		if (says == DEST_COMMITTED) {
			GW_ERR(m->vm,
			       "migration %s: %s says it committed, though the VM was resumed here "
			       "(--destination-down): the VM may run on both hosts; stop one",
			       m->id, m->dest);
			return;
		}
	}
}

/* Settles a handover whose commit was not confirmed: the destination is asked to abort until
 * it confirms that, or that it committed; an operator's Resolve may decide meanwhile. */
static void settle(struct gwd_mig *m, bool cancelled, const char *reason, uint64_t downtime_us)
{
	bool announced = false;
	for (;;) {
		char why[300] = "";
		enum dest_says says = dest_abort(m, reason, why, sizeof(why));
		if (says == DEST_ABORTED) {
			resume_here(m, cancelled, reason);
			return;
		}
		if (says == DEST_COMMITTED) {
			GW_INFO(m->vm, "migration %s: the destination had committed: letting go",
				m->id);
			let_go(m, downtime_us);
			return;
		}
		if (says == DEST_UNKNOWN && !announced) {
			announce_doubt(m, why);
			announced = true;
		}
		bool down = false;
		int keep = await_resolve(m, says == DEST_BUSY ? 1 : IN_DOUBT_RETRY_S, &down);
		if (keep == KEEP(DESTINATION)) {
			struct gw_rpc_status st;
			if (dest_commit_once(m, &st) == 0) {
				let_go(m, downtime_us);
				resolve_answer(m, 0, NULL);
				return;
			}
			resolve_answer(m, gw_rpc_errno_from_code(st.code),
				       "the destination did not commit: %s: %s",
				       gw_rpc_code_name(st.code), st.message);
		} else if (keep == KEEP(SOURCE)) {
			says = dest_abort(m, "resolved by an operator: keep the source", why,
					  sizeof(why));
			if (says == DEST_ABORTED || (says == DEST_UNKNOWN && down)) {
				resume_here(
				    m, false,
				    says == DEST_ABORTED
					? "resolved by an operator: the destination aborted"
					: "resolved by an operator: the destination is down");
				resolve_answer(m, 0, NULL);
				if (says != DEST_ABORTED)
					owe_abort(m);
				return;
			}
			if (says == DEST_COMMITTED) {
				let_go(m, downtime_us);
				resolve_answer(
				    m, -EBUSY,
				    "the VM runs on the destination %s (it committed): it "
				    "cannot be kept here; it was let go",
				    m->dest);
				return;
			}
			resolve_answer(
			    m, says == DEST_BUSY ? -EAGAIN : -EBUSY,
			    "the destination did not confirm the abort (%s); resuming here "
			    "could run the VM twice. If its host is down and stays down, "
			    "add --destination-down",
			    why);
		}
	}
}

void mig_handover(struct gwd_mig *m, uint64_t vmm_downtime_us)
{
	struct gwd *d = m->d;
	pthread_mutex_lock(&d->lock);
	bool cancelled = m->cancel;
	/* The commit is on disk before it is sent: a restart then asks the destination. */
	int rc = 0;
	if (!cancelled) {
		m->committing = true;
		m->step = STEP(COMMITTING);
		rc = mig_save(m);
		if (rc) {
			m->committing = false;
			m->step = STEP(STREAMING);
		}
	}
	struct gwd_vm *vm = gwd_vm_find(d, m->vm);
	if (vm)
		snprintf(vm->migrated_to, sizeof(vm->migrated_to), "%s", m->dest);
	/* The VM is stopped here: from the moment it runs there, no frame of its may end at
	 * its idle VF here. */
	if (vm && !cancelled && !rc)
		gwd_nics_steer_away(d, vm);
	pthread_mutex_unlock(&d->lock);
	if (cancelled || rc) {
		/* No Commit was sent: the destination can never run the VM, whatever it says. */
		char why[300];
		dest_abort(m, cancelled ? "cancelled" : "the source cannot save its record", why,
			   sizeof(why));
		resume_here(m, cancelled, cancelled ? "cancelled" : "cannot save the commit");
		return;
	}
	struct gw_rpc_status st;
	uint64_t commit_us;
	if (dest_commit(m, &commit_us, &st) == 0) {
		let_go(m, vmm_downtime_us + commit_us);
		return;
	}
	char why[300];
	snprintf(why, sizeof(why), "%s", st.message);
	settle(m, false, why, vmm_downtime_us);
}

/* A migration of the previous run, finished from its record. */
static void *reconcile_thread(void *arg)
{
	struct gwd_mig *m = arg;
	gw_log_thread_fields(m->vm, m->id);
	struct gwd *d = m->d;
	pthread_mutex_lock(&d->lock);
	int step = m->step;
	struct gwd_vm *vm = gwd_vm_find(d, m->vm);
	bool alive = vm && vm->monitor_running;
	pthread_mutex_unlock(&d->lock);
	if (step != STEP(STREAMING)) {
		settle(m, false, "godwitd restarted during the handover", 0);
		return NULL;
	}
	/* No Commit was ever sent: the destination cannot run the VM. It is told to drop what
	 * it holds (or its time limit does), and the VMM's migration is cancelled: the VM
	 * resumes here even from its handover. */
	char why[300];
	if (dest_abort(m, "the source's godwitd restarted", why, sizeof(why)) != DEST_ABORTED)
		GW_WARN(m->vm, "migration %s: the destination did not take the abort (%s)", m->id,
			why);
	bool resumed = false;
	if (alive) {
		Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;
		struct gw_rpc_status cs;
		resumed = mig_vmm_call(m, "MigrateCancel", &creq.base, &resp, 15000, &cs) == 0 ||
			  cs.code == GW_RPC_NOT_FOUND;
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
	}
	pthread_mutex_lock(&d->lock);
	vm = gwd_vm_find(d, m->vm);
	if (vm) {
		vm->migrated_to[0] = '\0';
		if (resumed && vm->monitor_running && vm->state == GWD_PAUSED)
			vm->state = GWD_RUNNING;
		gwd_vm_persist(d, vm);
	}
	pthread_mutex_unlock(&d->lock);
	mig_end(m, PH(FAILED),
		resumed ? "godwitd restarted during the migration, before its handover: cancelled; "
			  "the VM keeps running here"
			: "godwitd restarted during the migration, before its handover: the VM's "
			  "VMM is gone");
	return NULL;
}

static void reconcile_one(struct gwd *d, Godwit__Internal__V1__MigrationRecord *rec)
{
	const Godwit__V1__Migration *st = rec->status;
	if (!rec->source || !st || !rec->vm || !rec->peer) {
		gwd_migrec_free(rec);
		return;
	}
	struct gwd_mig *m = calloc(1, sizeof(*m));
	if (!m) {
		gwd_migrec_free(rec);
		return;
	}
	m->d = d;
	snprintf(m->id, sizeof(m->id), "%s", rec->id);
	snprintf(m->vm, sizeof(m->vm), "%s", rec->vm);
	snprintf(m->dest, sizeof(m->dest), "%s", rec->peer);
	snprintf(m->dest_grant, sizeof(m->dest_grant), "%s",
		 rec->peer_token ? rec->peer_token : "");
	snprintf(m->error, sizeof(m->error), "%s", st->error ? st->error : "");
	snprintf(m->dma_mode, sizeof(m->dma_mode), "%s", st->dma_mode ? st->dma_mode : "");
	m->phase = st->phase;
	m->bytes_sent = st->bytes_sent;
	m->downtime_us = st->downtime_us;
	m->total_us = st->total_time_us;
	m->started_unix = st->started_unix;
	m->step = rec->step;
	bool open = rec->step == STEP(STREAMING) || rec->step == STEP(COMMITTING) ||
		    rec->step == STEP(IN_DOUBT);
	gwd_migrec_free(rec);
	pthread_mutex_lock(&d->lock);
	m->next = d->migs;
	d->migs = m;
	struct gwd_vm *vm = open ? gwd_vm_find(d, m->vm) : NULL;
	if (vm) {
		vm->busy = true;
		snprintf(vm->migrated_to, sizeof(vm->migrated_to), "%s", m->dest);
	}
	m->committing = open && m->step != STEP(STREAMING);
	pthread_mutex_unlock(&d->lock);
	if (!open)
		return;
	GW_INFO(m->vm, "migration %s to %s was under way when godwitd stopped: finishing it", m->id,
		m->dest);
	pthread_t t;
	if (pthread_create(&t, NULL, reconcile_thread, m) == 0)
		pthread_detach(t);
	else
		GW_ERR(m->vm, "cannot start the thread that finishes migration %s", m->id);
}

void gwd_migrations_reconcile(struct gwd *d)
{
	gwd_migrec_each(d, reconcile_one);
}

int mig_resolve(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__ResolveMigrationRequest *req = (const void *)rq;
	if (req->keep != KEEP(SOURCE) && req->keep != KEEP(DESTINATION)) {
		gw_rpc_call_error(call, "say which copy to keep: the source or the destination");
		return -EINVAL;
	}
	if (req->destination_down && req->keep != KEEP(SOURCE)) {
		gw_rpc_call_error(call, "destination_down goes with keeping the source");
		return -EINVAL;
	}
	pthread_mutex_lock(&d->lock);
	struct gwd_mig *m = mig_find(d, req->id);
	int rc = 0;
	if (!m) {
		gw_rpc_call_error(call, "no migration %s on this host", req->id);
		rc = -ENOENT;
	} else if (m->phase != PH(IN_DOUBT)) {
		gw_rpc_call_error(call, "migration %s is not in doubt: nothing to resolve",
				  req->id);
		rc = -EBUSY;
	} else if (m->resolve) {
		gw_rpc_call_error(call, "migration %s is being resolved already", req->id);
		rc = -EBUSY;
	}
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		return rc;
	}
	m->resolve = req->keep;
	m->resolve_down = req->destination_down;
	m->resolve_done = false;
	pthread_cond_broadcast(&d->cond);
	/* The settling thread acts (it owns the channel to the destination) and answers. */
	while (!m->resolve_done && !d->shutting_down)
		pthread_cond_wait(&d->cond, &d->lock);
	rc = m->resolve_done ? m->resolve_rc : -ECANCELED;
	if (rc)
		gw_rpc_call_error(call, "%s", m->resolve_msg[0] ? m->resolve_msg : "not resolved");
	else
		*resp = &mig_get_copy(call, m)->base;
	m->resolve = 0;
	m->resolve_done = false;
	pthread_mutex_unlock(&d->lock);
	return rc;
}
