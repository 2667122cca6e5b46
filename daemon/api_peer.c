/* SPDX-License-Identifier: Apache-2.0 */
/*
 * godwit.v1.Peer: the destination's half of a migration. PrepareIncoming checks the VM fits
 * and spawns a godwit-vmm that waits for the stream; Commit starts it (the only way it ever
 * runs); Abort discards it. Commit and Abort are idempotent, so a source that lost an
 * answer can ask again.
 */
#include "api.h"
#include "ops.h"

#include "godwit/log.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/peer.pb-c.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEP(x) GODWIT__INTERNAL__V1__MIGRATION_STEP__MIGRATION_STEP_##x

/* The destination's record of migration id at step; caller holds d->lock. */
static int incoming_record(struct gwd *d, const char *id, const char *vm, int step)
{
	Godwit__Internal__V1__MigrationRecord rec = GODWIT__INTERNAL__V1__MIGRATION_RECORD__INIT;
	rec.id = (char *)id;
	rec.vm = (char *)vm;
	rec.source = false;
	rec.step = step;
	return gwd_migrec_save(d, &rec);
}

static struct gwd_vm *find_incoming(struct gwd *d, const char *id)
{
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		if (v->incoming_id[0] && strcmp(v->incoming_id, id) == 0)
			return v;
	}
	return NULL;
}

/* The NICs the source sends must be the spec's, one for one, each with a usable MAC. */
static int check_nics(const Godwit__V1__PrepareIncomingRequest *req, char *why, size_t n)
{
	if (req->n_nics != req->spec->n_nics) {
		snprintf(why, n, "malformed PrepareIncoming: %zu NICs in the spec, %zu described",
			 req->spec->n_nics, req->n_nics);
		return -EINVAL;
	}
	for (size_t i = 0; i < req->n_nics; i++) {
		if (!req->nics[i]->gen || gwd_validate_mac(req->nics[i]->mac, why, n)) {
			snprintf(why, n,
				 "malformed PrepareIncoming: nic%zu lacks a generation or "
				 "a valid MAC",
				 i);
			return -EINVAL;
		}
	}
	return 0;
}

/* A VFIO VF for an incoming NIC: its device state cannot be loaded, so the source re-creates
 * the device whatever the generations say (they only name the decision). The VF gets the
 * NIC's MAC as its administrator's MAC on its PF, where the guest's driver finds it when it
 * renegotiates. 0, or -ENODEV when this host has no VFIO VF free. Caller holds d->lock. */
static int incoming_vfio(struct gwd *d, const char *vm, size_t i, struct gwd_nic *nic,
			 const struct sriov_gen *src, char *reason, size_t n)
{
	char sub[160];
	if (gwd_pool_alloc(&d->pool, vm, nic->mac, 0, GWD_BACKEND_VFIO, &nic->pf, &nic->vf, sub,
			   sizeof(sub)))
		return -ENODEV;
	if (gwd_nic_take(d, vm, i, nic, sub, sizeof(sub))) {
		GW_WARN(vm, "%s", sub);
		return -ENODEV;
	}
	const struct gwd_pf *pf = &d->pool.pfs[nic->pf];
	char cmp[120];
	nic->gen_differs = sriov_gen_compare(src, &pf->gen, cmp, sizeof(cmp)) != SRIOV_GEN_MATCH;
	snprintf(reason, n,
		 "%s: a VFIO VF here (%s), which cannot load device state: re-created, the "
		 "driver renegotiates",
		 cmp, nic->host);
	nic->recreated = true;
	return 0;
}

/* Backs each incoming NIC with a free VF whose generation matches the source's ("match"),
 * else with a free VF of another generation ("mismatch": re-created), else, when this host
 * has no free VF at all, with the VMM's own model of the source's generation ("absent").
 * Emulated VFs come first, as their state can move as it is, unless the VM asked for
 * backend vfio; a VFIO VF is always re-created ("match" or "mismatch" by the identities).
 * On failure holds none. Caller holds d->lock. */
static int incoming_nics(struct gwd *d, struct gwd_vm *vm,
			 const Godwit__V1__PrepareIncomingRequest *req, char (*reasons)[320],
			 char *why, size_t n)
{
	gwd_pool_refresh(d); /* VFs libvirt's domains hold now are not offered */
	for (size_t i = 0; i < req->n_nics; i++) {
		struct gwd_nic *nic = &vm->nics[i];
		struct sriov_gen src;
		memset(nic, 0, sizeof(*nic));
		gwd_gen_from_pb(req->nics[i]->gen, &src);
		snprintf(nic->mac, sizeof(nic->mac), "%s", req->nics[i]->mac);
		nic->want_gen = req->spec->nics[i]->gen;
		/* The port VLAN goes with the VM (set on this host's PF when a real VF backs
		 * it); the source's VF address does not. */
		nic->vlan = req->spec->nics[i]->vlan <= 4094 ? req->spec->nics[i]->vlan : 0;
		nic->untrusted =
		    req->spec->nics[i]->trust && !strcmp(req->spec->nics[i]->trust, "off");
		if (req->spec->nics[i]->backend)
			snprintf(nic->want_backend, sizeof(nic->want_backend), "%.7s",
				 req->spec->nics[i]->backend);
		bool want_vfio = !strcmp(nic->want_backend, "vfio");
		int rc = want_vfio ? incoming_vfio(d, vm->name, i, nic, &src, reasons[i],
						   sizeof(reasons[i]))
				   : -ENODEV;
		if (rc)
			rc = gwd_pool_alloc_match(&d->pool, vm->name, nic->mac, &src,
						  GWD_BACKEND_EMUL, &nic->pf, &nic->vf, reasons[i],
						  sizeof(reasons[i]));
		if (rc && !want_vfio)
			rc = incoming_vfio(d, vm->name, i, nic, &src, reasons[i],
					   sizeof(reasons[i]));
		unsigned free_vfs = 0;
		for (unsigned p = 0; p < d->pool.npfs; p++)
			if (d->pool.pfs[p].backend == GWD_BACKEND_EMUL)
				free_vfs += gwd_pool_free_vfs(&d->pool, p);
		if (rc && free_vfs == 0) {
			/* absent: no VF here can back it. The VMM's own model of the same
			 * generation serves the same interface, unless passthrough is required. */
			char has[200];
			gwd_pool_summary(&d->pool, has, sizeof(has));
			if (req->require_passthrough) {
				snprintf(why, n,
					 "nic%zu: the destination has no free VF (has: %s) and "
					 "passthrough is required",
					 i, has);
				gwd_nics_release(d, vm);
				return -ENODEV;
			}
			nic->gen = src;
			nic->emulated = true;
			if (nic->vlan)
				GW_WARN(vm->name,
					"nic%zu: the VMM's model backs it here, which has no port "
					"VLAN: VLAN %u is not applied",
					i, nic->vlan);
			snprintf(reasons[i], sizeof(reasons[i]),
				 "no free VF here (has: %s): the VMM's own gen%u model takes over",
				 has, src.gen);
			vm->nnics++;
			continue;
		}
		if (rc) {
			/* mismatch: a free VF of another generation. The source quiesces the
			 * device and leaves its state behind; it is re-created here and the guest
			 * driver renegotiates. */
			char cmp[120], other[160];
			rc = gwd_pool_alloc(&d->pool, vm->name, nic->mac, 0, GWD_BACKEND_EMUL,
					    &nic->pf, &nic->vf, other, sizeof(other));
			if (rc) {
				snprintf(why, n, "nic%zu: %s", i, other);
				gwd_nics_release(d, vm);
				return rc;
			}
			sriov_gen_compare(&src, &d->pool.pfs[nic->pf].gen, cmp, sizeof(cmp));
			snprintf(
			    reasons[i], sizeof(reasons[i]),
			    "%s: quiesced on the source, re-created here, the driver renegotiates",
			    cmp);
			nic->recreated = nic->gen_differs = true;
		}
		nic->gen = d->pool.pfs[nic->pf].gen;
		nic->backend = d->pool.pfs[nic->pf].backend;
		nic->backed = true;
		if (nic->vlan && nic->backend != GWD_BACKEND_VFIO)
			GW_WARN(
			    vm->name,
			    "nic%zu: an emulated VF backs it here, which has no port VLAN: VLAN "
			    "%u is not applied",
			    i, nic->vlan);
		vm->nnics++;
	}
	return 0;
}

/* One "match" decision per NIC, on the call's arena. */
static int fill_decisions(struct gw_rpc_call *call, const struct gwd_vm *vm, char (*reasons)[320],
			  Godwit__V1__PrepareIncomingResponse *r)
{
	r->decisions = gw_rpc_call_alloc(call, GWD_NIC_MAX * sizeof(*r->decisions));
	if (!r->decisions)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->nnics; i++) {
		Godwit__V1__DeviceDecision *dd = gw_rpc_call_alloc(call, sizeof(*dd));
		if (!dd)
			return -ENOMEM;
		godwit__v1__device_decision__init(dd);
		dd->device = gw_rpc_call_printf(call, "nic%u", i);
		const struct gwd_nic *nic = &vm->nics[i];
		dd->decision = (char *)(nic->emulated	   ? "absent"
					: nic->gen_differs ? "mismatch"
							   : "match");
		dd->recreate = nic->recreated;
		dd->reason = gw_rpc_call_strdup(call, reasons[i]);
		dd->destination = nic->emulated
				      ? gw_rpc_call_printf(call, "emulated gen%u", nic->gen.gen)
				      : gw_rpc_call_printf(call, "pf%u vf%u gen%u", nic->pf,
							   nic->vf, nic->gen.gen);
		r->decisions[r->n_decisions++] = dd;
	}
	return 0;
}

static int peer_prepare(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__PrepareIncomingRequest *req = (const void *)rq;
	gw_log_thread_fields(req->vm_name, req->migration_id);
	char why[400];
	if (gwd_validate_name(req->vm_name, why, sizeof(why)) ||
	    gwd_validate_spec(req->spec, 0, why, sizeof(why))) {
		gw_rpc_call_error(call, "%s", why);
		return -EINVAL;
	}
	if (!req->migration_id || strlen(req->migration_id) < 8 ||
	    strlen(req->migration_id) >= sizeof(((struct gwd_vm *)0)->incoming_id) ||
	    !req->stream_token || strlen(req->stream_token) != 64 || req->channels == 0 ||
	    req->channels > 8) {
		gw_rpc_call_error(call, "malformed PrepareIncoming: migration id, 64-character "
					"stream token and 1..8 channels are required");
		return -EINVAL;
	}
	int grc = gwd_grant_check(d, call, req->vm_name, req->migration_id);
	if (grc)
		return grc;
	if (req->plaintext_stream && !d->insecure) {
		gw_rpc_call_error(call,
				  "this host takes migration streams encrypted only (a stream "
				  "in clear needs --insecure on both hosts)");
		return -EPERM;
	}
	if (check_nics(req, why, sizeof(why))) {
		gw_rpc_call_error(call, "%s", why);
		return -EINVAL;
	}
	struct gwd_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", req->vm_name);
	vm->memory_bytes = req->spec->memory_bytes;
	vm->cpus = req->spec->cpus ? req->spec->cpus : 1;
	/* The destination needs none of the boot files (the VM's state arrives in the stream);
	 * it keeps their paths so that the VM shows what it booted, and boots them if it is
	 * started again here. */
	if (gwd_vm_set_boot(vm, req->spec)) {
		gwd_vm_free(vm);
		return -ENOMEM;
	}
	vm->state = GWD_STARTING;
	vm->created_unix = gwd_now();
	vm->pidfd = -1;
	vm->busy = true;
	vm->in_step = STEP(PREPARED);
	vm->in_preparing = true; /* an Abort meanwhile is told to ask again */
	snprintf(vm->incoming_id, sizeof(vm->incoming_id), "%s", req->migration_id);
	vm->incoming_plaintext = req->plaintext_stream;
	snprintf(vm->reason, sizeof(vm->reason), "incoming migration %s", req->migration_id);
	pthread_mutex_lock(&d->lock);
	if (gwd_vm_find(d, req->vm_name)) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "a VM named '%s' already exists on the destination",
				  req->vm_name);
		return -EEXIST;
	}
	if (find_incoming(d, req->migration_id) || gwd_migrec_step(d, req->migration_id)) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "migration %s was already prepared here",
				  req->migration_id);
		return -EEXIST;
	}
	uint64_t used = gwd_memory_in_use(d);
	if (used + vm->memory_bytes > d->memory_limit) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(
		    call,
		    "not enough memory on the destination: the VM needs %llu MiB, %llu "
		    "MiB of its %llu MiB are free",
		    (unsigned long long)(vm->memory_bytes >> 20),
		    (unsigned long long)((d->memory_limit > used ? d->memory_limit - used : 0) >>
					 20),
		    (unsigned long long)(d->memory_limit >> 20));
		gwd_vm_free(vm);
		return -ENOSPC;
	}
	char reasons[GWD_NIC_MAX][320];
	if (incoming_nics(d, vm, req, reasons, why, sizeof(why))) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "%s", why);
		return -EBUSY; /* FAILED_PRECONDITION: this host cannot back the VM's NICs */
	}
	vm->next = d->vms;
	d->vms = vm;
	/* Both records before the fork: a restart finds the VMM (its pid is saved right after
	 * the fork) and knows which migration it belongs to. */
	int rc = incoming_record(d, req->migration_id, vm->name, STEP(PREPARED));
	if (rc == 0)
		rc = gwd_vm_persist(d, vm);
	if (rc) {
		gwd_vm_forget(d, vm);
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "the destination cannot save the incoming VM's record: %s",
				  strerror(-rc));
		return -EIO;
	}
	pthread_mutex_unlock(&d->lock);

	uint32_t ports[8];
	size_t nports = 0;
	/* The source's "--channels auto": no more channels than this host has cores. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nchan = req->channels;
	if (req->channels_auto && ncpu >= 1 && (unsigned long)ncpu < nchan)
		nchan = (unsigned)ncpu;
	rc = gwd_vm_spawn_incoming(d, vm, nchan, req->stream_token, ports, &nports, why,
				   sizeof(why));
	if (rc) {
		GW_WARN(vm->name, "cannot prepare the incoming migration: %s", why);
		gwd_vm_stop(d, vm, true, why, sizeof(why));
		pthread_mutex_lock(&d->lock);
		incoming_record(d, req->migration_id, vm->name, STEP(ABORTED));
		gwd_vm_forget(d, vm);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "the destination cannot receive the VM: %s", why);
		return rc;
	}
	/* Open the control channel now, so that the commit does not pay for it. */
	Godwit__Vmm__V1__ControlRequest sreq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	ProtobufCMessage *sresp = NULL;
	struct gw_rpc_status sst;
	if (gwd_vmm_call_kept(d, vm, "Status", &sreq.base, &sresp, 5000, &sst) == 0)
		protobuf_c_message_free_unpacked(sresp, NULL);
	pthread_mutex_lock(&d->lock);
	vm->in_preparing = false;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	GW_INFO(vm->name, "incoming migration %s: waiting on %zu port(s)", req->migration_id,
		nports);
	Godwit__V1__PrepareIncomingResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	uint32_t *p = gw_rpc_call_alloc(call, nports * sizeof(uint32_t));
	if (!r || !p)
		return -ENOMEM;
	godwit__v1__prepare_incoming_response__init(r);
	r->stream_host = gw_rpc_call_strdup(call, d->stream_host);
	memcpy(p, ports, nports * sizeof(uint32_t));
	r->stream_ports = p;
	r->n_stream_ports = nports;
	r->online_cpus = ncpu < 1 ? 0 : (uint32_t)ncpu;
	*resp = &r->base;
	return fill_decisions(call, vm, reasons, r);
}

/* The commit starts the VM here: the only way an incoming VM ever runs. Idempotent: one
 * already made succeeds again (the source lost the first answer), one that comes while
 * another runs waits for its result. Nothing frees an incoming VM while its step is
 * COMMITTING (Abort refuses, the time limit skips it), so vm stays valid unlocked. */
static int peer_commit(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		       ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__CommitRequest *req = (const void *)rq;
	gw_log_thread_fields(NULL, req->migration_id);
	int grc = gwd_grant_check(d, call, NULL, req->migration_id);
	if (grc)
		return grc;
	const char *id = req->migration_id ? req->migration_id : "";
	Godwit__V1__CommitResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__commit_response__init(r);
	*resp = &r->base;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm;
	while ((vm = find_incoming(d, id)) && vm->in_step == STEP(COMMITTING))
		pthread_cond_wait(&d->cond, &d->lock);
	if (!vm) {
		int step = gwd_migrec_step(d, id);
		pthread_mutex_unlock(&d->lock);
		if (step == STEP(COMMITTED))
			return 0; /* already committed: the answer was lost, not the commit */
		if (step == STEP(ABORTED)) {
			gw_rpc_call_error(
			    call, "migration %s was aborted here: the VM never ran here", id);
			return -EBUSY;
		}
		gw_rpc_call_error(call, "no incoming migration %s here", id);
		return -ENOENT;
	}
	if (vm->in_preparing || vm->in_aborting) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "incoming migration %s is %s", id,
				  vm->in_aborting ? "being aborted" : "still being prepared");
		return -EBUSY;
	}
	if (!vm->monitor_running) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "the incoming VM's process is gone: %s", vm->reason);
		return -ENOENT;
	}
	/* The step is on disk before the VMM is asked: a restart then checks what the VMM did. */
	if (incoming_record(d, id, vm->name, STEP(COMMITTING))) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "the destination cannot save the commit of %s", id);
		return -EIO;
	}
	vm->in_step = STEP(COMMITTING);
	pthread_mutex_unlock(&d->lock);

	Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	ProtobufCMessage *cresp = NULL;
	struct gw_rpc_status st;
	int rc = gwd_vmm_call_kept(d, vm, "Start", &creq.base, &cresp, 10000, &st);
	if (cresp)
		protobuf_c_message_free_unpacked(cresp, NULL);
	pthread_mutex_lock(&d->lock);
	if (rc == 0) {
		/* Recorded first: from here on an Abort is refused even once the VM is gone. */
		incoming_record(d, id, vm->name, STEP(COMMITTED));
		vm->in_step = 0;
		vm->incoming_id[0] = '\0';
		vm->state = GWD_RUNNING;
		vm->started_unix = gwd_now();
		snprintf(vm->reason, sizeof(vm->reason), "migrated in (%s)", id);
		vm->busy = false;
		gwd_vm_persist(d, vm);
		gwd_metrics_incoming_ended(d->metrics, true);
		GW_INFO(vm->name, "migration %s committed: the VM runs here", id);
	} else {
		/* Still prepared: the source aborts it, or asks again. */
		incoming_record(d, id, vm->name, STEP(PREPARED));
		vm->in_step = STEP(PREPARED);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		gw_rpc_call_error(call, "the destination could not start the VM: %s", st.message);
	return rc;
}

/* Aborts incoming migration id: its VMM is killed and the VM forgotten. 0; -EBUSY (why says
 * why) once it was committed or while a commit runs; -EAGAIN while it is being prepared.
 * A second abort of the same migration waits for the first. */
static int incoming_abort(struct gwd *d, const char *id, const char *reason, char *why, size_t n)
{
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm;
	while ((vm = find_incoming(d, id)) && vm->in_aborting)
		pthread_cond_wait(&d->cond, &d->lock);
	int rc = 0;
	if (!vm) {
		if (gwd_migrec_step(d, id) == STEP(COMMITTED)) {
			snprintf(why, n, "migration %s was already committed: the VM runs here",
				 id);
			rc = -EBUSY;
		}
		pthread_mutex_unlock(&d->lock);
		return rc; /* else nothing (left) to abort */
	}
	if (vm->in_step == STEP(COMMITTING)) {
		snprintf(why, n, "migration %s is being committed: ask again", id);
		rc = -EBUSY;
	} else if (vm->in_preparing) {
		snprintf(why, n, "migration %s is still being prepared: ask again", id);
		rc = -EAGAIN;
	} else if (incoming_record(d, id, vm->name, STEP(ABORTED))) {
		snprintf(why, n, "the destination cannot save the abort of %s", id);
		rc = -EIO;
	}
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		return rc;
	}
	/* Decided and on disk; in_aborting keeps vm ours while the lock is dropped. */
	vm->in_aborting = true;
	pthread_mutex_unlock(&d->lock);
	char stop_why[200];
	gwd_vm_stop(d, vm, true, stop_why, sizeof(stop_why));
	pthread_mutex_lock(&d->lock);
	GW_INFO(vm->name, "incoming migration %s aborted: %s", id,
		reason && reason[0] ? reason : "no reason given");
	gwd_metrics_incoming_ended(d->metrics, false);
	gwd_vm_forget(d, vm);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int peer_abort(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__AbortRequest *req = (const void *)rq;
	gw_log_thread_fields(NULL, req->migration_id);
	int grc = gwd_grant_check(d, call, NULL, req->migration_id);
	if (grc)
		return grc;
	Godwit__V1__AbortResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__abort_response__init(r);
	*resp = &r->base;
	char why[200];
	int rc = incoming_abort(d, req->migration_id ? req->migration_id : "", req->reason, why,
				sizeof(why));
	if (rc)
		gw_rpc_call_error(call, "%s", why);
	return rc;
}

#define QSTATE(x) GODWIT__V1__QUERY_INCOMING_RESPONSE__STATE__STATE_##x

static int peer_query(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__QueryIncomingRequest *req = (const void *)rq;
	int grc = gwd_grant_check(d, call, NULL, req->migration_id);
	if (grc)
		return grc;
	const char *id = req->migration_id ? req->migration_id : "";
	Godwit__V1__QueryIncomingResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__query_incoming_response__init(r);
	pthread_mutex_lock(&d->lock);
	const struct gwd_vm *vm = find_incoming(d, id);
	int step = vm ? 0 : gwd_migrec_step(d, id);
	if (vm)
		r->state = vm->in_aborting		     ? QSTATE(ABORTED)
			   : vm->in_step == STEP(COMMITTING) ? QSTATE(COMMITTING)
							     : QSTATE(PREPARED);
	else
		r->state = step == STEP(COMMITTED) ? QSTATE(COMMITTED)
			   : step == STEP(ABORTED) ? QSTATE(ABORTED)
						   : QSTATE(UNKNOWN);
	pthread_mutex_unlock(&d->lock);
	*resp = &r->base;
	return 0;
}

/* A prepared incoming VM the time limit looks at. */
struct incoming_look {
	char id[40], name[GWD_NAME_MAX + 1];
	bool alive;
};

/* One look at each prepared incoming VM: one whose VMM ended (its source vanished mid-stream)
 * is forgotten; one whose VMM holds the whole stream but was not committed within the limit
 * is aborted. The VMM is asked without d->lock held, by name. */
static void incoming_expire(struct gwd *d)
{
	struct incoming_look look[16];
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	for (struct gwd_vm *v = d->vms; v && n < 16; v = v->next) {
		if (!v->incoming_id[0] || v->in_step != STEP(PREPARED) || v->in_preparing ||
		    v->in_aborting)
			continue;
		snprintf(look[n].id, sizeof(look[n].id), "%s", v->incoming_id);
		snprintf(look[n].name, sizeof(look[n].name), "%s", v->name);
		look[n++].alive = v->monitor_running;
	}
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		char why[200], reason[120] = "";
		if (!look[i].alive) {
			snprintf(reason, sizeof(reason), "its VMM ended before a commit");
		} else {
			Godwit__Vmm__V1__ControlRequest creq =
			    GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
			Godwit__Vmm__V1__VmmStatus *st = NULL;
			struct gw_rpc_status rs;
			if (gwd_vmm_call(d, look[i].name, "Status", &creq.base,
					 (ProtobufCMessage **)&st, 3000, &rs))
				continue;
			bool ready = st->incoming_state ==
				     GODWIT__VMM__V1__INCOMING_STATE__INCOMING_STATE_READY;
			protobuf_c_message_free_unpacked(&st->base, NULL);
			if (!ready)
				continue;
			int64_t now = gwd_now(), since = now;
			pthread_mutex_lock(&d->lock);
			struct gwd_vm *vm = find_incoming(d, look[i].id);
			if (vm && !vm->in_ready_since)
				vm->in_ready_since = now;
			if (vm)
				since = vm->in_ready_since;
			pthread_mutex_unlock(&d->lock);
			if (now - since < (int64_t)d->incoming_timeout_s)
				continue;
			snprintf(reason, sizeof(reason),
				 "not committed within %u s of receiving the whole stream",
				 d->incoming_timeout_s);
		}
		if (incoming_abort(d, look[i].id, reason, why, sizeof(why)) == 0)
			GW_WARN(look[i].name, "incoming migration %s given up: %s", look[i].id,
				reason);
	}
}

static void *incoming_timer(void *arg)
{
	struct gwd *d = arg;
	for (;;) {
		sleep(1);
		pthread_mutex_lock(&d->lock);
		bool stop = d->shutting_down;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			return NULL;
		incoming_expire(d);
	}
}

void gwd_incoming_reconcile(struct gwd *d)
{
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *next;
	for (struct gwd_vm *vm = d->vms; vm; vm = next) {
		next = vm->next;
		if (!vm->incoming_id[0])
			continue;
		char id[40];
		snprintf(id, sizeof(id), "%s", vm->incoming_id);
		int step = gwd_migrec_step(d, id);
		if (vm->monitor_running && vm->state == GWD_RUNNING) {
			/* The commit reached the VMM before the restart: the VM runs here. */
			incoming_record(d, id, vm->name, STEP(COMMITTED));
			vm->incoming_id[0] = '\0';
			vm->busy = false;
			snprintf(vm->reason, sizeof(vm->reason), "migrated in (%s)", id);
			gwd_vm_persist(d, vm);
			GW_INFO(vm->name, "incoming migration %s: committed before the restart",
				id);
		} else if (vm->monitor_running) {
			/* Its VMM waits (for the stream or the commit): prepared again, even if a
			 * commit had begun (its Start never reached the VMM: it is paused). */
			if (step != STEP(PREPARED))
				incoming_record(d, id, vm->name, STEP(PREPARED));
			vm->state = GWD_STARTING;
			vm->busy = true;
			vm->in_step = STEP(PREPARED);
			GW_INFO(vm->name, "incoming migration %s: still prepared after the restart",
				id);
		} else if (step == STEP(COMMITTED)) {
			/* Committed, then its VMM ended while godwitd was down: an ordinary VM. */
			vm->incoming_id[0] = '\0';
			vm->busy = false;
			gwd_vm_persist(d, vm);
		} else {
			incoming_record(d, id, vm->name, STEP(ABORTED));
			GW_INFO(vm->name,
				"incoming migration %s: its VMM is gone after the restart; aborted",
				id);
			gwd_vm_forget(d, vm);
		}
	}
	pthread_mutex_unlock(&d->lock);
	pthread_t t;
	if (pthread_create(&t, NULL, incoming_timer, d) == 0)
		pthread_detach(t);
	else
		GW_WARN("godwitd", "cannot start the incoming migrations' timer");
}

#define PEER(n, f)                                                                                 \
	{                                                                                          \
		.service = &godwit__v1__peer__descriptor, .name = n, .unary = f, .peer = true      \
	}

const struct gw_rpc_method gwd_peer_methods[] = {
    PEER("PrepareIncoming", peer_prepare),
    PEER("Commit", peer_commit),
    PEER("Abort", peer_abort),
    PEER("QueryIncoming", peer_query),
};
const size_t gwd_peer_nmethods = sizeof(gwd_peer_methods) / sizeof(gwd_peer_methods[0]);
