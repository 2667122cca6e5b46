/* SPDX-License-Identifier: Apache-2.0 */
/*
 * godwit.v1.Peer: the destination's half of a migration. PrepareIncoming checks the VM fits
 * and spawns a godwit-vmm that waits for the stream; Commit starts it (the only way it ever
 * runs); Abort discards it. Commit and Abort are idempotent, so a source that lost an
 * answer can ask again.
 */
#include "api.h"

#include "godwit/log.h"
#include "godwit/v1/peer.pb-c.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct gwd_vm *find_incoming(struct gwd *d, const char *id)
{
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		if (v->incoming_id[0] && strcmp(v->incoming_id, id) == 0)
			return v;
	}
	return NULL;
}

static int peer_prepare(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__PrepareIncomingRequest *req = (const void *)rq;
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
	struct gwd_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", req->vm_name);
	vm->memory_bytes = req->spec->memory_bytes;
	vm->cpus = req->spec->cpus ? req->spec->cpus : 1;
	vm->guest_path = strdup(req->spec->guest_path);
	vm->cmdline = strdup(req->spec->cmdline ? req->spec->cmdline : "");
	vm->state = GWD_STARTING;
	vm->created_unix = gwd_now();
	vm->pidfd = -1;
	vm->busy = true;
	snprintf(vm->incoming_id, sizeof(vm->incoming_id), "%s", req->migration_id);
	snprintf(vm->reason, sizeof(vm->reason), "incoming migration %s", req->migration_id);
	pthread_mutex_lock(&d->lock);
	if (gwd_vm_find(d, req->vm_name)) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "a VM named '%s' already exists on the destination",
				  req->vm_name);
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
	vm->next = d->vms;
	d->vms = vm;
	gwd_vm_persist(d, vm);
	pthread_mutex_unlock(&d->lock);

	uint32_t ports[8];
	size_t nports = 0;
	int rc = gwd_vm_spawn_incoming(d, vm, req->channels, req->stream_token, ports, &nports, why,
				       sizeof(why));
	if (rc) {
		GW_WARN(vm->name, "cannot prepare the incoming migration: %s", why);
		gwd_vm_stop(d, vm, true, why, sizeof(why));
		pthread_mutex_lock(&d->lock);
		gwd_vm_forget(d, vm);
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
	*resp = &r->base;
	return 0;
}

static int peer_commit(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		       ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__CommitRequest *req = (const void *)rq;
	Godwit__V1__CommitResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__commit_response__init(r);
	*resp = &r->base;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = find_incoming(d, req->migration_id ? req->migration_id : "");
	if (!vm) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "no incoming migration %s here", req->migration_id);
		return -ENOENT;
	}
	if (vm->state == GWD_RUNNING) {
		pthread_mutex_unlock(&d->lock);
		return 0; /* already committed: the answer was lost, not the commit */
	}
	bool alive = vm->monitor_running;
	pthread_mutex_unlock(&d->lock);
	if (!alive) {
		gw_rpc_call_error(call, "the incoming VM's process is gone: %s", vm->reason);
		return -ENOENT;
	}
	Godwit__Vmm__V1__ControlRequest creq = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	ProtobufCMessage *cresp = NULL;
	struct gw_rpc_status st;
	int rc = gwd_vmm_call_kept(d, vm, "Start", &creq.base, &cresp, 10000, &st);
	if (cresp)
		protobuf_c_message_free_unpacked(cresp, NULL);
	pthread_mutex_lock(&d->lock);
	if (rc == 0) {
		vm->state = GWD_RUNNING;
		vm->started_unix = gwd_now();
		snprintf(vm->reason, sizeof(vm->reason), "migrated in (%s)", req->migration_id);
		vm->busy = false;
		gwd_vm_persist(d, vm);
		GW_INFO(vm->name, "migration %s committed: the VM runs here", req->migration_id);
	}
	pthread_mutex_unlock(&d->lock);
	if (rc)
		gw_rpc_call_error(call, "the destination could not start the VM: %s", st.message);
	return rc;
}

static int peer_abort(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__AbortRequest *req = (const void *)rq;
	Godwit__V1__AbortResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__abort_response__init(r);
	*resp = &r->base;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = find_incoming(d, req->migration_id ? req->migration_id : "");
	if (!vm) {
		pthread_mutex_unlock(&d->lock);
		return 0; /* nothing (left) to abort */
	}
	if (vm->state == GWD_RUNNING) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "migration %s was already committed: the VM runs here",
				  req->migration_id);
		return -EBUSY;
	}
	pthread_mutex_unlock(&d->lock);
	char why[200];
	gwd_vm_stop(d, vm, true, why, sizeof(why));
	pthread_mutex_lock(&d->lock);
	GW_INFO(vm->name, "incoming migration %s aborted: %s", req->migration_id,
		req->reason && req->reason[0] ? req->reason : "no reason given");
	gwd_vm_forget(d, vm);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

#define PEER(n, f)                                                                                 \
	{                                                                                          \
		.service = &godwit__v1__peer__descriptor, .name = n, .unary = f                    \
	}

const struct gw_rpc_method gwd_peer_methods[] = {
    PEER("PrepareIncoming", peer_prepare),
    PEER("Commit", peer_commit),
    PEER("Abort", peer_abort),
};
const size_t gwd_peer_nmethods = sizeof(gwd_peer_methods) / sizeof(gwd_peer_methods[0]);
