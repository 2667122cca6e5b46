/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-vmm's control socket: the godwit.vmm.v1.Vmm service over gRPC on a unix socket. */
#include "control.h"

#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/vmm/v1/vmm.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct vmm_control {
	struct hv_vm *vm;
	struct gw_rpc_server *srv;
	struct timespec started;
	char listen[300];
};

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
	st->state = gw_rpc_call_strdup(call, hv_run_state_name(hv_vm_run_state(c->vm)));
	st->memory_bytes = hv_vm_ram_size(c->vm);
	st->cpus = hv_vm_ncpus(c->vm);
	st->pid = (int32_t)getpid();
	st->exits_io = ex.io;
	st->exits_mmio = ex.mmio;
	st->stop_reason =
	    gw_rpc_call_strdup(call, why == HV_STOP_NONE ? "" : hv_stop_reason_name(why));
	st->guest_exit_code = code;
	st->uptime_ms = (uint64_t)uptime_ms(c);
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
	int rc = hv_vm_start(c->vm);
	if (rc) {
		gw_rpc_call_error(call, "cannot start the VM: %s", strerror(-rc));
		return rc;
	}
	GW_INFO("vmm", "VM started on request of the control socket");
	return status(c, call, resp);
}

static int do_pause(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		    ProtobufCMessage **resp)
{
	(void)req;
	struct vmm_control *c = ctx;
	if (hv_vm_run_state(c->vm) != HV_RUN_RUNNING) {
		gw_rpc_call_error(call, "the VM is %s, not running",
				  hv_run_state_name(hv_vm_run_state(c->vm)));
		return -EBUSY;
	}
	int rc = hv_vm_pause(c->vm);
	if (rc) {
		gw_rpc_call_error(call, "cannot pause the VM: %s", strerror(-rc));
		return rc;
	}
	return status(c, call, resp);
}

static int do_resume(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
		     ProtobufCMessage **resp)
{
	(void)req;
	struct vmm_control *c = ctx;
	if (hv_vm_run_state(c->vm) != HV_RUN_PAUSED) {
		gw_rpc_call_error(call, "the VM is %s, not paused",
				  hv_run_state_name(hv_vm_run_state(c->vm)));
		return -EBUSY;
	}
	int rc = hv_vm_resume(c->vm);
	if (rc) {
		gw_rpc_call_error(call, "cannot resume the VM: %s", strerror(-rc));
		return rc;
	}
	return status(c, call, resp);
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

#define VMM_METHOD(n, fn)                                                                          \
	{                                                                                          \
		.service = &godwit__vmm__v1__vmm__descriptor, .name = n, .unary = fn               \
	}

static const struct gw_rpc_method methods[] = {
    VMM_METHOD("Status", do_status), VMM_METHOD("Start", do_start), VMM_METHOD("Pause", do_pause),
    VMM_METHOD("Resume", do_resume), VMM_METHOD("Stop", do_stop),
};

int vmm_control_start(struct hv_vm *vm, const char *path, struct vmm_control **out)
{
	struct vmm_control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vm = vm;
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
	free(c);
}
