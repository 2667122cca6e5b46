/* SPDX-License-Identifier: Apache-2.0 */
/* godwit.v1.Vms: create, start, stop, delete, list, get, console. */
#include "api.h"

#include "godwit/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

/* Copies vm into a Vm message allocated on the call's arena; caller holds d->lock. */
static Godwit__V1__Vm *vm_copy(struct gwd *d, struct gw_rpc_call *call, const struct gwd_vm *vm)
{
	struct gwd_vm_pb *pb = gw_rpc_call_alloc(call, sizeof(*pb));
	if (!pb)
		return NULL;
	gwd_vm_to_pb(d, vm, pb);
	pb->vm.name = gw_rpc_call_strdup(call, vm->name);
	pb->vm.reason = gw_rpc_call_strdup(call, vm->reason);
	pb->spec.guest_path = gw_rpc_call_strdup(call, vm->guest_path);
	pb->spec.kernel_path = gw_rpc_call_strdup(call, vm->kernel_path);
	pb->spec.initrd_path = gw_rpc_call_strdup(call, vm->initrd_path);
	pb->spec.cmdline = gw_rpc_call_strdup(call, vm->cmdline);
	return &pb->vm;
}

static int not_found(struct gw_rpc_call *call, const char *name)
{
	gw_rpc_call_error(call, "no VM named '%s' on this host (see 'godwit vm list')", name);
	return -ENOENT;
}

static int check_name(struct gw_rpc_call *call, const char *name)
{
	char why[200];
	int rc = gwd_validate_name(name, why, sizeof(why));
	if (rc)
		gw_rpc_call_error(call, "%s", why);
	return rc;
}

static int vms_create(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__CreateVmRequest *req = (const void *)rq;
	gw_log_thread_fields(req->name, NULL);
	char why[300];
	int rc = check_name(call, req->name);
	if (rc)
		return rc;
	if ((rc = gwd_validate_spec(req->spec, host_memory(), why, sizeof(why)))) {
		gw_rpc_call_error(call, "%s", why);
		return rc;
	}
	const Godwit__V1__VmSpec *spec = req->spec;
	const char *kernel = spec->kernel_path ? spec->kernel_path : "";
	/* Whether godwit-vmm can boot the files shows when the VM starts (as for the test
	 * guest); here, only that godwitd can read them. */
	if ((rc = gwd_boot_files_check(spec->guest_path, kernel, spec->initrd_path, why,
				       sizeof(why)))) {
		gw_rpc_call_error(call, "%s", why);
		return rc;
	}
	struct gwd_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", req->name);
	vm->memory_bytes = spec->memory_bytes;
	vm->cpus = spec->cpus ? spec->cpus : 1;
	if (gwd_vm_set_boot(vm, spec)) {
		gwd_vm_free(vm);
		return -ENOMEM;
	}
	vm->state = GWD_DEFINED;
	vm->created_unix = gwd_now();
	vm->pidfd = -1;
	pthread_mutex_lock(&d->lock);
	if (gwd_vm_find(d, req->name)) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "a VM named '%s' already exists on this host", req->name);
		return -EEXIST;
	}
	rc = gwd_nics_alloc(d, vm, req->spec, why, sizeof(why));
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "%s", why);
		/* All VFs held: RESOURCE_EXHAUSTED; none on this host: FAILED_PRECONDITION. */
		return rc == -ENOSPC ? -ENOSPC : -EBUSY;
	}
	rc = gwd_vm_persist(d, vm);
	if (rc) {
		gwd_nics_release(d, vm);
		pthread_mutex_unlock(&d->lock);
		gwd_vm_free(vm);
		gw_rpc_call_error(call, "cannot save the VM definition: %s", strerror(-rc));
		return rc;
	}
	vm->next = d->vms;
	d->vms = vm;
	*resp = &vm_copy(d, call, vm)->base;
	pthread_mutex_unlock(&d->lock);
	GW_INFO(req->name, "defined: %llu MiB, %u vCPU(s), %zu NIC(s), %s %s%s%s",
		(unsigned long long)(vm->memory_bytes >> 20), vm->cpus, spec->n_nics,
		kernel[0] ? "kernel" : "guest", kernel[0] ? kernel : spec->guest_path,
		spec->initrd_path && spec->initrd_path[0] ? ", initrd " : "",
		spec->initrd_path ? spec->initrd_path : "");
	return 0;
}

/* Looks a VM up and marks it busy; fails when another operation holds it. */
static int claim(struct gwd *d, struct gw_rpc_call *call, const char *name, struct gwd_vm **out)
{
	int rc = check_name(call, name);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = gwd_vm_find(d, name);
	if (!vm) {
		pthread_mutex_unlock(&d->lock);
		return not_found(call, name);
	}
	if (vm->busy) {
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "another operation on VM '%s' is in progress; retry", name);
		return -EBUSY;
	}
	vm->busy = true;
	*out = vm;
	return 0; /* d->lock stays held */
}

static int vms_start(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		     ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__VmRef *req = (const void *)rq;
	gw_log_thread_fields(req->name, NULL);
	struct gwd_vm *vm;
	int rc = claim(d, call, req->name, &vm);
	if (rc)
		return rc;
	if (vm->state == GWD_RUNNING || vm->state == GWD_PAUSED || vm->state == GWD_STARTING ||
	    vm->monitor_running) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "VM '%s' is already running", req->name);
		return -EALREADY;
	}
	int nic = gwd_nics_unbacked(vm);
	if (nic >= 0) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "VM '%s' cannot start: nic%d has no VF on this host: %s",
				  req->name, nic, vm->nics[nic].reason);
		return -EBUSY;
	}
	uint64_t used = gwd_memory_in_use(d);
	if (used + vm->memory_bytes > d->memory_limit) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(
		    call,
		    "not enough memory: VM '%s' needs %llu MiB, %llu MiB of this "
		    "host's %llu MiB limit are free",
		    req->name, (unsigned long long)(vm->memory_bytes >> 20),
		    (unsigned long long)((used < d->memory_limit ? d->memory_limit - used : 0) >>
					 20),
		    (unsigned long long)(d->memory_limit >> 20));
		return -ENOSPC;
	}
	vm->state = GWD_STARTING;
	vm->reason[0] = '\0';
	pthread_mutex_unlock(&d->lock);

	char why[400];
	rc = gwd_vm_spawn(d, vm, why, sizeof(why));
	pthread_mutex_lock(&d->lock);
	if (rc == 0) {
		vm->state = GWD_RUNNING;
		vm->started_unix = gwd_now();
		GW_INFO(vm->name, "running as godwit-vmm pid %d", (int)vm->pid);
	} else {
		if (!vm->monitor_running) {
			vm->state = GWD_FAILED;
			snprintf(vm->reason, sizeof(vm->reason), "%s", why);
		}
		GW_WARN(vm->name, "start failed: %s", why);
		gw_rpc_call_error(call, "cannot start VM '%s': %s", vm->name, why);
	}
	int prc = gwd_vm_persist(d, vm);
	if (rc == 0 && prc) {
		/* It runs, but a restarted godwitd would not know it: the caller must hear it. */
		gw_rpc_call_error(call,
				  "VM '%s' runs as godwit-vmm pid %d, but its record cannot be "
				  "saved in %s: %s",
				  vm->name, (int)vm->pid, d->state_dir, strerror(-prc));
		rc = -EIO;
	}
	vm->busy = false;
	if (rc == 0)
		*resp = &vm_copy(d, call, vm)->base;
	pthread_mutex_unlock(&d->lock);
	return rc == 0 ? 0 : (rc == -EINVAL ? -EINVAL : -EIO);
}

static int vms_stop(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		    ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__StopVmRequest *req = (const void *)rq;
	gw_log_thread_fields(req->name, NULL);
	struct gwd_vm *vm;
	int rc = claim(d, call, req->name, &vm);
	if (rc)
		return rc;
	if (!vm->monitor_running) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "VM '%s' is not running", req->name);
		return -EBUSY;
	}
	vm->state = GWD_STOPPING;
	rc = gwd_vm_persist(d, vm);
	if (rc) {
		vm->state = GWD_RUNNING;
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "VM '%s' not stopped: its record cannot be saved in %s: %s",
				  req->name, d->state_dir, strerror(-rc));
		return rc;
	}
	pthread_mutex_unlock(&d->lock);
	char why[200];
	rc = gwd_vm_stop(d, vm, req->force, why, sizeof(why));
	pthread_mutex_lock(&d->lock);
	vm->busy = false;
	if (rc)
		gw_rpc_call_error(call, "%s", why);
	else
		*resp = &vm_copy(d, call, vm)->base;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int vms_delete(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		      ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__VmRef *req = (const void *)rq;
	gw_log_thread_fields(req->name, NULL);
	struct gwd_vm *vm;
	int rc = claim(d, call, req->name, &vm);
	if (rc)
		return rc;
	if (vm->monitor_running) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "VM '%s' is running: stop it first ('godwit vm stop %s')",
				  req->name, req->name);
		return -EBUSY;
	}
	/* Forgotten only once its record is gone from the disk: else a restart brings it back. */
	rc = gwd_vm_remove_files(d, vm->name);
	if (rc) {
		vm->busy = false;
		pthread_mutex_unlock(&d->lock);
		gw_rpc_call_error(call, "cannot delete VM '%s': its record stays in %s/vms: %s",
				  req->name, d->state_dir, strerror(-rc));
		return rc;
	}
	for (struct gwd_vm **pp = &d->vms; *pp; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	gwd_nics_release(d, vm);
	pthread_mutex_unlock(&d->lock);
	GW_INFO(vm->name, "deleted");
	gwd_vm_free(vm);
	Godwit__V1__DeleteVmResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__delete_vm_response__init(r);
	*resp = &r->base;
	return 0;
}

static int vms_list(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		    ProtobufCMessage **resp)
{
	(void)rq;
	struct gwd *d = ctx;
	Godwit__V1__ListVmsResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	godwit__v1__list_vms_response__init(r);
	pthread_mutex_lock(&d->lock);
	size_t n = 0;
	for (struct gwd_vm *v = d->vms; v; v = v->next)
		n++;
	r->vms = gw_rpc_call_alloc(call, (n ? n : 1) * sizeof(*r->vms));
	for (struct gwd_vm *v = d->vms; v && r->vms; v = v->next)
		r->vms[r->n_vms++] = vm_copy(d, call, v);
	pthread_mutex_unlock(&d->lock);
	*resp = &r->base;
	return 0;
}

/* The VMM's record of a VF's mailbox configuration, as the API shows it. */
static Godwit__V1__NicRecord *nic_record(struct gw_rpc_call *call,
					 const Godwit__Vmm__V1__VfState *v)
{
	Godwit__V1__NicRecord *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return NULL;
	godwit__v1__nic_record__init(r);
	r->mac = gw_rpc_call_strdup(call, v->mac);
	r->vlans = gw_rpc_call_alloc(call, (v->n_vlans + 1) * sizeof(uint32_t));
	for (size_t i = 0; r->vlans && i < v->n_vlans; i++)
		r->vlans[r->n_vlans++] = v->vlans[i];
	r->multicast = v->multicast;
	r->max_frame = v->max_frame;
	r->api = (char *)(v->api == GODWIT__VMM__V1__MAILBOX_API__MAILBOX_API_1_1 ? "1.1" : "1.0");
	r->exchanges = v->exchanges;
	r->denied = v->denied;
	r->trap_windows = v->trap_windows;
	r->mbx_page_exits = v->mbx_page_exits;
	r->direct_pages = v->direct_pages;
	r->mbx_idle_exits = v->mbx_idle_exits;
	r->dma_mode = (char *)(v->dma_mode == GODWIT__VMM__V1__DMA_MODE__DMA_MODE_SHADOW  ? "shadow"
			       : v->dma_mode == GODWIT__VMM__V1__DMA_MODE__DMA_MODE_TRACK ? "track"
											  : "off");
	return r;
}

static int vms_get(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		   ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__VmRef *req = (const void *)rq;
	int rc = check_name(call, req->name);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = gwd_vm_find(d, req->name);
	Godwit__V1__Vm *out = vm ? vm_copy(d, call, vm) : NULL;
	bool running = vm && vm->monitor_running;
	pthread_mutex_unlock(&d->lock);
	if (!vm)
		return not_found(call, req->name);
	*resp = &out->base;
	if (running && out) {
		/* Live figures come from the VMM; without an answer they stay 0. */
		Godwit__Vmm__V1__ControlRequest cr = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
		ProtobufCMessage *sr = NULL;
		struct gw_rpc_status st;
		if (gwd_vmm_call(d, req->name, "Status", &cr.base, &sr, 2000, &st) == 0 && sr) {
			const Godwit__Vmm__V1__VmmStatus *vs = (const void *)sr;
			out->exits_io = vs->exits_io;
			out->exits_mmio = vs->exits_mmio;
			for (size_t i = 0; i < vs->n_vfs && i < out->n_nics; i++)
				out->nics[i]->recorded = nic_record(call, vs->vfs[i]);
		}
		if (sr)
			protobuf_c_message_free_unpacked(sr, NULL);
	}
	return 0;
}

static int vms_console(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq)
{
	struct gwd *d = ctx;
	const Godwit__V1__ConsoleRequest *req = (const void *)rq;
	int rc = check_name(call, req->name);
	if (rc)
		return rc;
	char path[560];
	pthread_mutex_lock(&d->lock);
	struct gwd_vm *vm = gwd_vm_find(d, req->name);
	bool running = vm && vm->monitor_running;
	if (vm)
		gwd_vm_dir(d, vm->name, "console.sock", path, sizeof(path));
	pthread_mutex_unlock(&d->lock);
	if (!vm)
		return not_found(call, req->name);
	if (!running) {
		gw_rpc_call_error(call, "VM '%s' is not running: it has no console", req->name);
		return -EBUSY;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		gw_rpc_call_error(call, "cannot attach to the console of '%s': %s", req->name,
				  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EAGAIN;
	}
	/* Relay until the VM's console closes (the VM ended) or the client goes away. */
	uint8_t buf[4096];
	rc = 0;
	while (!gw_rpc_call_cancelled(call)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, 200);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		Godwit__V1__ConsoleChunk chunk = GODWIT__V1__CONSOLE_CHUNK__INIT;
		chunk.data.data = buf;
		chunk.data.len = (size_t)n;
		if (gw_rpc_stream_send(call, &chunk.base)) {
			rc = -ECANCELED;
			break;
		}
	}
	close(fd);
	return rc;
}

#define VMS(n, f)                                                                                  \
	{                                                                                          \
		.service = &godwit__v1__vms__descriptor, .name = n, .unary = f                     \
	}

const struct gw_rpc_method gwd_vms_methods[] = {
    VMS("Create", vms_create),
    VMS("Start", vms_start),
    VMS("Stop", vms_stop),
    VMS("Delete", vms_delete),
    VMS("List", vms_list),
    VMS("Get", vms_get),
    {.service = &godwit__v1__vms__descriptor, .name = "Console", .stream = vms_console},
};
const size_t gwd_vms_nmethods = sizeof(gwd_vms_methods) / sizeof(gwd_vms_methods[0]);
