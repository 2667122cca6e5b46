/* SPDX-License-Identifier: Apache-2.0 */
/* vCPUs: one thread each, the KVM_RUN loop, exit dispatch, pause/kick and per-vCPU state. */
#include "cpuid.h"
#include "hv_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define HV_KICK_SIGNAL	      SIGUSR1
#define MSR_IA32_TSC	      0x10u
#define MSR_IA32_TSC_DEADLINE 0x6E0u

/* A kick only has to interrupt KVM_RUN; the handler itself does nothing. */
static void kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void kick_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(HV_KICK_SIGNAL, &sa, NULL);
}

unsigned hv_vcpu_id(const struct hv_vcpu *vcpu)
{
	return vcpu->id;
}

struct hv_vm *hv_vcpu_vm(struct hv_vcpu *vcpu)
{
	return vcpu->vm;
}

int hv_vcpu_init(struct hv_vm *vm, unsigned id)
{
	struct hv_vcpu *vcpu = &vm->vcpus[id];
	vcpu->vm = vm;
	vcpu->id = id;
	char vmname[sizeof(vm->name)];
	memcpy(vmname, vm->name, sizeof(vmname));
	snprintf(vcpu->name, sizeof(vcpu->name), "%.32s/cpu%u", vmname, id);
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		int rc = -errno;
		GW_ERR(vcpu->name, "KVM_CREATE_VCPU failed: %s", strerror(errno));
		return rc;
	}
	vcpu->run_size = (size_t)vm->vcpu_mmap_size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		int rc = -errno;
		vcpu->run = NULL;
		GW_ERR(vcpu->name, "cannot map kvm_run: %s", strerror(errno));
		close(vcpu->fd);
		vcpu->fd = -1;
		return rc;
	}
	/* The CPUID table is shared; only the APIC ID differs per vCPU. */
	hv_cpuid_vcpu(vm->cpuid, id);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, vm->cpuid) < 0) {
		int rc = -errno;
		GW_ERR(vcpu->name, "KVM_SET_CPUID2 failed: %s", strerror(errno));
		return rc;
	}
	return 0;
}

void hv_vcpu_fini(struct hv_vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

void hv_vm_kick_locked(struct hv_vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct hv_vcpu *v = &vm->vcpus[i];
		if (!v->thread_started)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, HV_KICK_SIGNAL);
	}
}

void hv_vm_request_stop(struct hv_vm *vm, enum hv_stop_reason why, int code)
{
	pthread_mutex_lock(&vm->run_lock);
	if (vm->stop_reason == HV_STOP_NONE) {
		vm->stop_reason = why;
		vm->guest_exit_code = code;
	}
	vm->req = HV_REQ_STOP;
	hv_vm_kick_locked(vm);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

static bool handle_exit(struct hv_vcpu *vcpu);

/* KVM_RUN with immediate_exit set: KVM completes the I/O the last exit left pending and
 * returns -EINTR without entering the guest. An access that KVM splits (MMIO across a page,
 * string I/O past a page) exits again instead, with its next part: that exit is handled and
 * completed in turn, never dropped. */
static int finish_pending(struct hv_vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	for (unsigned parts = 0;; parts++) {
		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		if (r < 0)
			return errno == EINTR || errno == EAGAIN ? 0 : -errno;
		unsigned why = vcpu->run->exit_reason;
		if ((why != KVM_EXIT_IO && why != KVM_EXIT_MMIO) || parts >= 64) {
			GW_WARN(vcpu->name,
				"exit %u while completing an I/O (part %u): left pending", why,
				parts);
			return 0;
		}
		handle_exit(vcpu);
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	}
}

int hv_vcpu_complete_io(struct hv_vcpu *vcpu)
{
	int rc = finish_pending(vcpu);
	pthread_mutex_lock(&vcpu->vm->run_lock);
	__atomic_store_n(&vcpu->run->immediate_exit, vcpu->vm->req != HV_REQ_RUN, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vcpu->vm->run_lock);
	return rc;
}

static void handle_io(struct hv_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct hv_vm *vm = vcpu->vm;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	/* Copied first: a handler may re-enter KVM_RUN to retire the access (backdoor). */
	unsigned size = run->io.size;
	uint32_t count = run->io.count;
	uint16_t port = run->io.port;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	atomic_fetch_add(&vm->st_io, 1);
	if (size == 0 || size > 4 || (size_t)count * size > 4096 || run->io.data_offset > 4096) {
		GW_WARN(vcpu->name, "malformed port I/O exit ignored");
		return;
	}
	for (uint32_t i = 0; i < count; i++, data += size) {
		uint64_t v = 0;
		if (out) {
			memcpy(&v, data, size);
			if (hv_bus_write(vm->pio, vcpu, port, v, size) == -ENOENT)
				GW_DEBUG(vcpu->name, "write to unclaimed port 0x%x ignored", port);
		} else {
			if (hv_bus_read(vm->pio, vcpu, port, &v, size) == -ENOENT)
				GW_DEBUG(vcpu->name, "read of unclaimed port 0x%x", port);
			memcpy(data, &v, size);
		}
	}
}

static void handle_mmio(struct hv_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct hv_vm *vm = vcpu->vm;
	unsigned len = run->mmio.len;
	atomic_fetch_add(&vm->st_mmio, 1);
	if (len == 0 || len > 8) {
		GW_WARN(vcpu->name, "MMIO access of %u bytes at 0x%llx ignored", len,
			(unsigned long long)run->mmio.phys_addr);
		return;
	}
	uint64_t v = 0;
	int rc;
	if (run->mmio.is_write) {
		memcpy(&v, run->mmio.data, len);
		rc = hv_bus_write(vm->mmio, vcpu, run->mmio.phys_addr, v, len);
	} else {
		rc = hv_bus_read(vm->mmio, vcpu, run->mmio.phys_addr, &v, len);
		memcpy(run->mmio.data, &v, len);
	}
	if (rc == -ENOENT) {
		atomic_fetch_add(&vm->st_mmio_unhandled, 1);
		/* A guest can loop on this: log the first few, then only count. */
		if (atomic_fetch_add(&vm->unhandled_logged, 1) < 16)
			GW_WARN(vcpu->name,
				"guest %s %u bytes at unmapped address 0x%llx: %s all-ones",
				run->mmio.is_write ? "wrote" : "read", len,
				(unsigned long long)run->mmio.phys_addr,
				run->mmio.is_write ? "dropped, reads return" : "returned");
	}
}

/* Returns false when the vCPU must stop. */
static bool handle_exit(struct hv_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct hv_vm *vm = vcpu->vm;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_HLT:
		atomic_fetch_add(&vm->st_hlt, 1);
		return true;
	case KVM_EXIT_INTR:
		atomic_fetch_add(&vm->st_intr, 1);
		return true;
	case KVM_EXIT_SHUTDOWN: {
		struct kvm_regs regs;
		ioctl(vcpu->fd, KVM_GET_REGS, &regs);
		GW_ERR(vcpu->name, "guest shut down (triple fault) at rip 0x%llx; stopping the VM",
		       (unsigned long long)regs.rip);
		hv_vm_request_stop(vm, HV_STOP_SHUTDOWN, 0);
		return false;
	}
	case KVM_EXIT_SYSTEM_EVENT:
		GW_INFO(vcpu->name, "guest requested system event %u; stopping the VM",
			run->system_event.type);
		hv_vm_request_stop(vm, HV_STOP_SHUTDOWN, 0);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		GW_ERR(vcpu->name, "KVM internal error (suberror %u) running the guest; stopping",
		       run->internal.suberror);
		hv_vm_request_stop(vm, HV_STOP_ERROR, 0);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		GW_ERR(vcpu->name, "KVM could not enter the guest (reason 0x%llx); stopping",
		       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		hv_vm_request_stop(vm, HV_STOP_ERROR, 0);
		return false;
	default:
		atomic_fetch_add(&vm->st_other, 1);
		GW_ERR(vcpu->name, "unexpected KVM exit %u; stopping the VM", run->exit_reason);
		hv_vm_request_stop(vm, HV_STOP_ERROR, 0);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct hv_vcpu *vcpu = arg;
	struct hv_vm *vm = vcpu->vm;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, HV_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	pthread_mutex_lock(&vm->run_lock);
	for (;;) {
		if (vm->req == HV_REQ_STOP)
			break;
		if (vm->req == HV_REQ_PAUSE || vm->holds) {
			pthread_mutex_unlock(&vm->run_lock);
			/* Finish any I/O the last exit left pending so saved state is complete. */
			finish_pending(vcpu);
			pthread_mutex_lock(&vm->run_lock);
			vm->parked++;
			pthread_cond_broadcast(&vm->run_cond);
			while (vm->req == HV_REQ_PAUSE || (vm->holds && vm->req != HV_REQ_STOP))
				pthread_cond_wait(&vm->run_cond, &vm->run_lock);
			vm->parked--;
			continue;
		}
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&vm->run_lock);

		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		bool keep = true;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				atomic_fetch_add(&vm->st_intr, 1);
			} else {
				GW_ERR(vcpu->name, "KVM_RUN failed: %s; stopping the VM",
				       strerror(errno));
				hv_vm_request_stop(vm, HV_STOP_ERROR, 0);
				keep = false;
			}
		} else {
			keep = handle_exit(vcpu);
		}
		pthread_mutex_lock(&vm->run_lock);
		if (!keep)
			break;
	}
	vm->running_threads--;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	return NULL;
}

int hv_vcpu_start_thread(struct hv_vcpu *vcpu)
{
	pthread_once(&kick_once, kick_install);
	int rc = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	if (rc)
		return -rc;
	vcpu->thread_started = true;
	char tname[16];
	snprintf(tname, sizeof(tname), "vcpu%u", vcpu->id);
	pthread_setname_np(vcpu->thread, tname);
	return 0;
}

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs)
{
	return ioctl(vcpu->fd, KVM_GET_REGS, regs) < 0 ? -errno : 0;
}

int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs)
{
	return ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0 ? -errno : 0;
}

static int get_msrs(struct hv_vcpu *vcpu, struct hv_vcpu_state *s)
{
	struct hv_vm *vm = vcpu->vm;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[HV_STATE_MAX_MSRS];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = vm->nmsrs;
	for (unsigned i = 0; i < vm->nmsrs; i++)
		m.e[i].index = vm->msr_list[i];
	int n = ioctl(vcpu->fd, KVM_GET_MSRS, &m);
	if (n < 0)
		return -errno;
	if ((unsigned)n != vm->nmsrs) {
		GW_ERR(vcpu->name, "KVM read %d of %u MSRs (stopped at 0x%x)", n, vm->nmsrs,
		       vm->msr_list[n]);
		return -EIO;
	}
	s->nmsrs = vm->nmsrs;
	for (unsigned i = 0; i < vm->nmsrs; i++)
		s->msrs[i] = (struct hv_msr){.index = m.e[i].index, .value = m.e[i].data};
	return 0;
}

/* Sets MSRs in a given order: the TSC first, the TSC deadline last (it arms the LAPIC timer
 * only once the TSC and the LAPIC's timer mode are in place). */
static int set_msrs(struct hv_vcpu *vcpu, const struct hv_vcpu_state *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[HV_STATE_MAX_MSRS];
	} m;
	memset(&m, 0, sizeof(m));
	unsigned n = 0;
	for (unsigned pass = 0; pass < 3; pass++) {
		for (unsigned i = 0; i < s->nmsrs; i++) {
			uint32_t idx = s->msrs[i].index;
			unsigned want = idx == MSR_IA32_TSC	       ? 0
					: idx == MSR_IA32_TSC_DEADLINE ? 2
								       : 1;
			if (want != pass)
				continue;
			m.e[n].index = idx;
			m.e[n].data = s->msrs[i].value;
			n++;
		}
	}
	m.hdr.nmsrs = n;
	int r = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return -errno;
	if ((unsigned)r != n) {
		GW_ERR(vcpu->name, "KVM accepted %d of %u MSRs (refused 0x%x)", r, n, m.e[r].index);
		return -EINVAL;
	}
	return 0;
}

int hv_vcpu_save(struct hv_vcpu *vcpu, struct hv_vcpu_state *s)
{
	struct hv_vm *vm = vcpu->vm;
	memset(s, 0, sizeof(*s));
	s->id = vcpu->id;
	s->xsave_len = vm->xsave_size;
	s->xsave = calloc(1, s->xsave_len);
	if (!s->xsave)
		return -ENOMEM;
	int rc = 0;
	unsigned long xsave_ioctl = vm->xsave_size > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &s->mp_state) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_REGS, &s->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
	    ioctl(vcpu->fd, xsave_ioctl, s->xsave) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_XCRS, &s->xcrs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0) {
		rc = -errno;
		GW_ERR(vcpu->name, "reading vCPU state failed: %s", strerror(errno));
		goto err_release;
	}
	rc = get_msrs(vcpu, s);
	if (rc)
		goto err_release;
	return 0;

err_release:
	hv_vcpu_state_release(s);
	return rc;
}

int hv_vcpu_load(struct hv_vcpu *vcpu, const struct hv_vcpu_state *s)
{
	struct hv_vm *vm = vcpu->vm;
	if (s->xsave_len != vm->xsave_size) {
		GW_ERR(vcpu->name, "saved XSAVE area is %u bytes, this host uses %u", s->xsave_len,
		       vm->xsave_size);
		return -EINVAL;
	}
	struct kvm_vcpu_events ev = s->events;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	const char *what = "sregs";
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &s->sregs) < 0)
		goto err;
	what = "regs";
	if (ioctl(vcpu->fd, KVM_SET_REGS, &s->regs) < 0)
		goto err;
	what = "xsave";
	if (ioctl(vcpu->fd, KVM_SET_XSAVE, s->xsave) < 0)
		goto err;
	what = "xcrs";
	if (ioctl(vcpu->fd, KVM_SET_XCRS, &s->xcrs) < 0)
		goto err;
	what = "lapic";
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &s->lapic) < 0)
		goto err;
	int rc = set_msrs(vcpu, s);
	if (rc)
		return rc;
	what = "vcpu events";
	if (ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		goto err;
	what = "debug registers";
	if (ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		goto err;
	what = "mp state";
	if (ioctl(vcpu->fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
		goto err;
	return 0;
err:
	rc = -errno;
	GW_ERR(vcpu->name, "KVM refused the saved %s: %s", what, strerror(errno));
	return rc;
}
