/* SPDX-License-Identifier: Apache-2.0 */
/* VM lifecycle: /dev/kvm, the platform (RAM, irqchip, PIT, UART, backdoor, PCI), run control
 * and whole-VM state. */
#include "godwit/deadline.h"
#include "cpuid.h"
#include "hv_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define HV_TSS_ADDR	 0xFFFBD000ull
#define HV_IDMAP_ADDR	 0xFFFBC000ull
#define HV_STATE_MAGIC	 GW_FOURCC('G', 'W', 'S', 'T')
#define HV_STATE_VERSION 1
#define HV_DEV_MAGIC	 GW_FOURCC('G', 'D', 'E', 'V')
#define HV_DEV_VERSION	 2 /* 2: device blobs are field-table sections (docs/state-format.md) */

/* MSRs godwit saves, in restore order (TSC first; the TSC deadline is re-ordered last).
 * Only those KVM lists in KVM_GET_MSR_INDEX_LIST and can read are kept. */
static const uint32_t wanted_msrs[] = {
    0x00000010, /* IA32_TSC */
    0x0000003B, /* IA32_TSC_ADJUST */
    0x00000174, /* IA32_SYSENTER_CS */
    0x00000175, /* IA32_SYSENTER_ESP */
    0x00000176, /* IA32_SYSENTER_EIP */
    0x000001A0, /* IA32_MISC_ENABLE */
    0x00000277, /* IA32_PAT */
    0x000002FF, /* IA32_MTRR_DEF_TYPE */
    0xC0000081, /* STAR */
    0xC0000082, /* LSTAR */
    0xC0000083, /* CSTAR */
    0xC0000084, /* SFMASK */
    0xC0000102, /* KERNEL_GS_BASE */
    0xC0000103, /* TSC_AUX */
    0x4B564D00, /* KVM wall clock */
    0x4B564D01, /* KVM system time */
    0x4B564D03, /* KVM steal time */
    0x4B564D04, /* KVM PV EOI */
    0x4B564D06, /* KVM async PF interrupt (before async PF enable) */
    0x4B564D02, /* KVM async PF enable */
    0x000006E0, /* IA32_TSC_DEADLINE */
};

const char *hv_stop_reason_name(enum hv_stop_reason r)
{
	switch (r) {
	case HV_STOP_NONE:
		return "running";
	case HV_STOP_GUEST_EXIT:
		return "guest-exit";
	case HV_STOP_SHUTDOWN:
		return "shutdown";
	case HV_STOP_ERROR:
		return "error";
	case HV_STOP_REQUESTED:
		return "stopped";
	}
	return "unknown";
}

void hv_kvm_probe(struct hv_kvm_info *out)
{
	memset(out, 0, sizeof(*out));
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(out->error, sizeof(out->error), "/dev/kvm: %s", strerror(errno));
		return;
	}
	out->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (out->api_version != KVM_API_VERSION) {
		snprintf(out->error, sizeof(out->error), "/dev/kvm speaks API version %d, not %d",
			 out->api_version, KVM_API_VERSION);
		close(fd);
		return;
	}
	out->available = true;
	out->irqchip = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) > 0;
	out->manual_dirty_log =
	    ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0;
	out->tsc_control = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
	int mv = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	out->max_vcpus = mv > 0 ? (unsigned)mv : 0;
	close(fd);
}

static int open_kvm(struct hv_vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int rc = -errno;
		if (errno == ENOENT)
			GW_ERR(vm->name,
			       "/dev/kvm does not exist: load kvm_intel or kvm_amd, or run "
			       "on a host with hardware virtualization");
		else if (errno == EACCES || errno == EPERM)
			GW_ERR(vm->name, "permission denied opening /dev/kvm: run as root or add "
					 "the user to the kvm group");
		else
			GW_ERR(vm->name, "cannot open /dev/kvm: %s", strerror(errno));
		return rc;
	}
	int ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver < 0) {
		GW_ERR(vm->name, "/dev/kvm is not a KVM device (%s)", strerror(errno));
		return -ENODEV;
	}
	if (ver != KVM_API_VERSION) {
		GW_ERR(vm->name, "/dev/kvm speaks API version %d, godwit needs %d", ver,
		       KVM_API_VERSION);
		return -ENOTSUP;
	}
	return 0;
}

static int check_caps(struct hv_vm *vm)
{
	static const struct {
		int cap;
		const char *name;
	} need[] = {
	    {KVM_CAP_IRQCHIP, "IRQCHIP"},
	    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
	    {KVM_CAP_IRQFD, "IRQFD"},
	    {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
	    {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
	    {KVM_CAP_READONLY_MEM, "READONLY_MEM"},
	    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
	    {KVM_CAP_XCRS, "XCRS"},
	    {KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS"},
	    {KVM_CAP_DEBUGREGS, "DEBUGREGS"},
	    {KVM_CAP_PIT2, "PIT2"},
	    {KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK"},
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			GW_ERR(vm->name, "this kernel's KVM lacks KVM_CAP_%s, which godwit needs",
			       need[i].name);
			return -ENOTSUP;
		}
	}
	int xs = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->xsave_size = xs > 4096 ? (uint32_t)xs : 4096;
	return 0;
}

static int probe_msrs(struct hv_vm *vm)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe); /* E2BIG, fills nmsrs */
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int rc = -errno;
		free(list);
		return rc;
	}
	vm->nmsrs = 0;
	for (size_t w = 0; w < sizeof(wanted_msrs) / sizeof(wanted_msrs[0]); w++) {
		for (uint32_t i = 0; i < list->nmsrs; i++) {
			if (list->indices[i] == wanted_msrs[w]) {
				vm->msr_list[vm->nmsrs++] = wanted_msrs[w];
				break;
			}
		}
	}
	free(list);
	return 0;
}

/* Drops MSRs this vCPU cannot read, so that save never fails half-way. */
static void filter_msrs(struct hv_vm *vm)
{
	unsigned kept = 0;
	for (unsigned i = 0; i < vm->nmsrs; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} m = {.hdr.nmsrs = 1, .e.index = vm->msr_list[i]};
		if (ioctl(vm->vcpus[0].fd, KVM_GET_MSRS, &m) == 1)
			vm->msr_list[kept++] = vm->msr_list[i];
		else
			GW_DEBUG(vm->name, "MSR 0x%x not readable; not saved", vm->msr_list[i]);
	}
	vm->nmsrs = kept;
}

static int get_cpuid(struct hv_vm *vm)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			int rc = hv_cpuid_setup(c, n, vm->ncpus);
			if (rc)
				GW_ERR(vm->name, "no room for the CPUID topology leaves");
			return rc;
		}
		int err = errno;
		free(c);
		if (err != E2BIG)
			return -err;
	}
	return -E2BIG;
}

static int platform_init(struct hv_vm *vm)
{
	int rc;
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, HV_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){HV_IDMAP_ADDR}) < 0) {
		rc = -errno;
		GW_ERR(vm->name, "KVM refused the TSS/identity-map addresses: %s", strerror(errno));
		return rc;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		rc = -errno;
		GW_ERR(vm->name, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
		return rc;
	}
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		rc = -errno;
		GW_ERR(vm->name, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
		return rc;
	}
	struct kvm_enable_cap cap = {
	    .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
	    .args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
	};
	vm->manual_protect = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	if (!vm->manual_protect)
		GW_INFO(vm->name, "dirty log without manual protect (KVM lacks it)");
	/* No virtual PMU: its counters are state godwit does not migrate, and a guest's NMI
	 * watchdog on them is load a nested host does badly with. CPUID hides it too
	 * (cpuid.c), for KVMs without this capability. Before any vCPU exists, as KVM wants. */
	struct kvm_enable_cap pmu = {.cap = KVM_CAP_PMU_CAPABILITY, .args[0] = KVM_PMU_CAP_DISABLE};
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PMU_CAPABILITY) > 0 &&
	    ioctl(vm->vm_fd, KVM_ENABLE_CAP, &pmu) < 0)
		GW_INFO(vm->name, "KVM kept the virtual PMU: %s", strerror(errno));
	return 0;
}

static int validate(const struct hv_vm_config *cfg)
{
	if (!hv_mem_size_valid(cfg->mem_size)) {
		GW_ERR(cfg->name, "memory size must be " HV_MEM_RULE);
		return -EINVAL;
	}
	if (cfg->ncpus == 0 || cfg->ncpus > HV_MAX_VCPUS) {
		GW_ERR(cfg->name, "vCPU count must be between 1 and %u", HV_MAX_VCPUS);
		return -EINVAL;
	}
	return 0;
}

int hv_vm_create(const struct hv_vm_config *cfg_in, struct hv_vm **out)
{
	struct hv_vm_config cfg = *cfg_in;
	if (!cfg.name)
		cfg.name = "vm";
	if (!cfg.ncpus)
		cfg.ncpus = 1;
	int rc = validate(&cfg);
	if (rc)
		return rc;
	struct hv_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", cfg.name);
	vm->cfg = cfg;
	vm->cfg.name = vm->name;
	vm->kvm_fd = vm->vm_fd = vm->ram_fd = -1;
	vm->ram_size = cfg.mem_size;
	vm->ncpus = cfg.ncpus;
	for (unsigned i = 0; i < HV_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->slot_lock, NULL);
	pthread_mutex_init(&vm->irq_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);

	rc = open_kvm(vm);
	if (rc)
		goto err_destroy;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = -errno;
		GW_ERR(vm->name, "KVM_CREATE_VM failed: %s", strerror(errno));
		goto err_destroy;
	}
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0) {
		rc = -EIO;
		goto err_destroy;
	}
	if ((rc = check_caps(vm)) || (rc = platform_init(vm)) || (rc = hv_irq_init(vm)) ||
	    (rc = hv_mem_init(vm)) || (rc = get_cpuid(vm)) || (rc = probe_msrs(vm)))
		goto err_destroy;
	vm->pio = hv_bus_create("pio");
	vm->mmio = hv_bus_create("mmio");
	if (!vm->pio || !vm->mmio) {
		rc = -ENOMEM;
		goto err_destroy;
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = hv_vcpu_init(vm, i);
		if (rc)
			goto err_destroy;
	}
	filter_msrs(vm);
	int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	atomic_store(&vm->tsc_khz, khz > 0 ? (uint32_t)khz : 0);
	if ((rc = hv_serial_create(vm, &cfg.console, &vm->serial)) || (rc = hv_backdoor_init(vm)) ||
	    (rc = hv_acpi_pm_init(vm)) || (rc = hv_rtc_init(vm)) ||
	    (rc = hv_pci_create(vm, &vm->pci)))
		goto err_destroy;
	*out = vm;
	return 0;

err_destroy:
	hv_vm_destroy(vm);
	return rc;
}

void hv_vm_destroy(struct hv_vm *vm)
{
	if (!vm)
		return;
	if (vm->started) {
		hv_vm_request_stop(vm, HV_STOP_REQUESTED, 0);
		for (unsigned i = 0; i < vm->ncpus; i++) {
			if (vm->vcpus[i].thread_started)
				pthread_join(vm->vcpus[i].thread, NULL);
		}
	}
	hv_dirty_stop(vm);
	hv_pci_destroy(vm->pci);
	hv_serial_destroy(vm->serial);
	hv_rtc_destroy(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		hv_vcpu_fini(&vm->vcpus[i]);
	hv_bus_destroy(vm->pio);
	hv_bus_destroy(vm->mmio);
	hv_mem_fini(vm);
	hv_irq_fini(vm);
	free(vm->cpuid);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_cond_destroy(&vm->run_cond);
	pthread_mutex_destroy(&vm->run_lock);
	pthread_mutex_destroy(&vm->irq_lock);
	pthread_mutex_destroy(&vm->slot_lock);
	free(vm);
}

void hv_vm_set_events(struct hv_vm *vm, const struct hv_vm_events *ev)
{
	vm->events = *ev;
}

const char *hv_vm_name(const struct hv_vm *vm)
{
	return vm->name;
}

void hv_vm_describe(struct hv_vm *vm, char *out, size_t n)
{
	int len =
	    snprintf(out, n, "ram=%llu;cpus=%u;", (unsigned long long)vm->ram_size, vm->ncpus);
	for (unsigned i = 0; i < vm->ndevices && len > 0 && (size_t)len < n; i++)
		len += snprintf(out + len, n - (size_t)len, "dev=%s:%s;", vm->devices[i].name,
				vm->devices[i].ops->kind);
}

int hv_device_register(struct hv_vm *vm, const char *name, const struct hv_device_ops *ops,
		       void *opaque)
{
	if (vm->ndevices == HV_MAX_DEVICES)
		return -ENOSPC;
	for (unsigned i = 0; i < vm->ndevices; i++) {
		if (strcmp(vm->devices[i].name, name) == 0)
			return -EEXIST;
	}
	struct hv_device *d = &vm->devices[vm->ndevices++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ops = ops;
	d->opaque = opaque;
	return 0;
}

/* Devices stop their own work (DMA, wire I/O) while vCPUs are parked: a paused VM is a
 * frozen VM, which is what stop-and-copy needs (VFIO calls this state STOP). */
static void devices_run(struct hv_vm *vm, bool run)
{
	for (unsigned i = 0; i < vm->ndevices; i++) {
		const struct hv_device *d = &vm->devices[i];
		int (*fn)(void *) = run ? d->ops->resume : d->ops->quiesce;
		int rc = fn ? fn(d->opaque) : 0;
		if (rc)
			GW_WARN(vm->name, "device %s did not %s: %s", d->name,
				run ? "resume" : "quiesce", strerror(-rc));
	}
}

int hv_vm_start(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	if (vm->started) {
		pthread_mutex_unlock(&vm->run_lock);
		return -EALREADY;
	}
	vm->started = true;
	vm->req = HV_REQ_RUN;
	pthread_mutex_unlock(&vm->run_lock);
	devices_run(vm, true);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		pthread_mutex_lock(&vm->run_lock);
		vm->running_threads++;
		pthread_mutex_unlock(&vm->run_lock);
		int rc = hv_vcpu_start_thread(&vm->vcpus[i]);
		if (rc) {
			pthread_mutex_lock(&vm->run_lock);
			vm->running_threads--;
			pthread_mutex_unlock(&vm->run_lock);
			GW_ERR(vm->name, "cannot start vCPU thread: %s", strerror(-rc));
			hv_vm_request_stop(vm, HV_STOP_ERROR, 0);
			return rc;
		}
	}
	return 0;
}

int hv_vm_pause(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	int rc = 0;
	if (!vm->started || vm->req == HV_REQ_STOP) {
		rc = vm->started ? -ESRCH : 0;
		goto out_unlock;
	}
	vm->req = HV_REQ_PAUSE;
	while (vm->req == HV_REQ_PAUSE && vm->parked < vm->running_threads) {
		/* Kick again on every round: a kick can race with a vCPU entering KVM_RUN. */
		hv_vm_kick_locked(vm);
		struct timespec ts = gw_deadline_ms(50);
		pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &ts);
	}
	if (vm->req == HV_REQ_STOP)
		rc = -ESRCH;
out_unlock:
	pthread_mutex_unlock(&vm->run_lock);
	if (rc == 0 && vm->started)
		devices_run(vm, false);
	return rc;
}

int hv_vm_hold_vcpus(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	int rc = 0;
	if (vm->req == HV_REQ_STOP) {
		rc = -ESRCH;
		goto out_unlock;
	}
	vm->holds++;
	while (vm->req != HV_REQ_STOP && vm->parked < vm->running_threads) {
		hv_vm_kick_locked(vm); /* again each round: a kick can race with KVM_RUN */
		struct timespec ts = gw_deadline_ms(50);
		pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &ts);
	}
	if (vm->req == HV_REQ_STOP) {
		vm->holds--;
		pthread_cond_broadcast(&vm->run_cond);
		rc = -ESRCH;
	}
out_unlock:
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

void hv_vm_release_vcpus(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	if (vm->holds)
		vm->holds--;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

int hv_vm_resume(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	int rc = 0;
	if (vm->req == HV_REQ_PAUSE) {
		devices_run(vm, true);
		vm->req = HV_REQ_RUN;
		pthread_cond_broadcast(&vm->run_cond);
	} else if (vm->req == HV_REQ_STOP) {
		rc = -ESRCH;
	}
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

void hv_vm_stop(struct hv_vm *vm)
{
	hv_vm_request_stop(vm, HV_STOP_REQUESTED, 0);
}

int hv_vm_wait(struct hv_vm *vm, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&vm->run_lock);
	while (!(vm->req == HV_REQ_STOP && vm->running_threads == 0)) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&vm->run_cond, &vm->run_lock);
		} else if (pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&vm->run_lock);
	return rc;
}

bool hv_vm_is_stopped(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	bool s = vm->req == HV_REQ_STOP;
	pthread_mutex_unlock(&vm->run_lock);
	return s;
}

enum hv_run_state hv_vm_run_state(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	enum hv_run_state st = vm->req == HV_REQ_STOP	 ? HV_RUN_STOPPED
			       : !vm->started		 ? HV_RUN_CREATED
			       : vm->req == HV_REQ_PAUSE ? HV_RUN_PAUSED
							 : HV_RUN_RUNNING;
	pthread_mutex_unlock(&vm->run_lock);
	return st;
}

const char *hv_run_state_name(enum hv_run_state s)
{
	static const char *const names[] = {"created", "running", "paused", "stopped"};
	return (unsigned)s < 4 ? names[s] : "unknown";
}

enum hv_stop_reason hv_vm_stop_reason(struct hv_vm *vm, int *code)
{
	pthread_mutex_lock(&vm->run_lock);
	enum hv_stop_reason r = vm->stop_reason;
	if (code)
		*code = vm->guest_exit_code;
	pthread_mutex_unlock(&vm->run_lock);
	return r;
}

void hv_vm_exit_stats(struct hv_vm *vm, struct hv_exit_stats *o)
{
	o->io = atomic_load(&vm->st_io);
	o->mmio = atomic_load(&vm->st_mmio);
	o->mmio_unhandled = atomic_load(&vm->st_mmio_unhandled);
	o->hlt = atomic_load(&vm->st_hlt);
	o->intr = atomic_load(&vm->st_intr);
	o->other = atomic_load(&vm->st_other);
}

static bool vm_is_quiet(struct hv_vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	bool quiet = !vm->started || vm->req == HV_REQ_STOP ||
		     (vm->req == HV_REQ_PAUSE && vm->parked == vm->running_threads);
	pthread_mutex_unlock(&vm->run_lock);
	return quiet;
}

static int save_vm_part(struct hv_vm *vm, struct gw_buf *out)
{
	struct hv_vm_state s;
	memset(&s, 0, sizeof(s));
	s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	s.realtime_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	int khz = hv_vm_tsc_khz(vm);
	s.tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &s.clock) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic_master) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.ioapic) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_PIT2, &s.pit) < 0) {
		int rc = -errno;
		GW_ERR(vm->name, "reading VM state failed: %s", strerror(errno));
		return rc;
	}
	return hv_vm_state_serialize(&s, out);
}

int hv_vm_save_state(struct hv_vm *vm, struct gw_buf *out)
{
	if (!vm_is_quiet(vm))
		return -EBUSY;
	size_t off = gw_sect_begin(out, HV_STATE_MAGIC, HV_STATE_VERSION);
	gw_buf_put_u32(out, vm->ncpus);
	int rc = save_vm_part(vm, out);
	for (unsigned i = 0; rc == 0 && i < vm->ncpus; i++) {
		struct hv_vcpu_state s;
		rc = hv_vcpu_save(&vm->vcpus[i], &s);
		if (rc == 0) {
			rc = hv_vcpu_state_serialize(&s, out);
			hv_vcpu_state_release(&s);
		}
	}
	gw_buf_put_u32(out, vm->ndevices);
	for (unsigned i = 0; rc == 0 && i < vm->ndevices; i++) {
		struct hv_device *d = &vm->devices[i];
		size_t doff = gw_sect_begin(out, HV_DEV_MAGIC, HV_DEV_VERSION);
		gw_field_put(out, 1, d->name, (uint32_t)strlen(d->name));
		size_t len_at = out->len;
		gw_buf_put_u32(out, 0);
		size_t start = out->len;
		rc = d->ops->save ? d->ops->save(d->opaque, out) : 0;
		if (rc == 0 && !out->err) {
			uint32_t dlen = (uint32_t)(out->len - start);
			memcpy(out->data + len_at, &dlen, 4);
		}
		gw_sect_end(out, doff);
	}
	gw_sect_end(out, off);
	return rc ? rc : out->err;
}

static struct hv_device *find_device(struct hv_vm *vm, const void *name, uint32_t len)
{
	for (unsigned i = 0; i < vm->ndevices; i++) {
		if (strlen(vm->devices[i].name) == len &&
		    memcmp(vm->devices[i].name, name, len) == 0)
			return &vm->devices[i];
	}
	return NULL;
}

static int load_vm_part(struct hv_vm *vm, struct gw_rd *rd)
{
	struct hv_vm_state s;
	int rc = hv_vm_state_deserialize(rd, &s);
	if (rc)
		return rc;
	/* kvmclock goes on from where it was, plus the real time the VM spent in transit (never
	 * back, whatever the two hosts' clocks say). KVM's own realtime pair is not used: it
	 * exists only where the host's clocksource is the TSC. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	if (s.realtime_ns && now_ns > s.realtime_ns)
		s.clock.clock += now_ns - s.realtime_ns;
	s.clock.flags = 0;
	if (s.tsc_khz) {
		/* Before the vCPUs' TSC MSRs are loaded, so they are read at the right rate.
		 * The migration's handshake already refused a rate this host cannot run unless
		 * the operator allowed it (hv_tsc_plan). */
		int khz = hv_vm_tsc_khz(vm);
		if (khz > 0 && (uint32_t)khz != s.tsc_khz && hv_vm_set_tsc_khz(vm, s.tsc_khz))
			GW_WARN(vm->name,
				"the guest's TSC runs at this host's %d kHz instead of its %u kHz "
				"(KVM cannot scale it here)",
				khz, s.tsc_khz);
	}
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.pic_master) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.ioapic) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_PIT2, &s.pit) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_CLOCK, &s.clock) < 0) {
		rc = -errno;
		GW_ERR(vm->name, "KVM refused the saved VM state: %s", strerror(errno));
		return rc;
	}
	return 0;
}

int hv_vm_load_state(struct hv_vm *vm, const void *data, size_t len)
{
	if (!vm_is_quiet(vm))
		return -EBUSY;
	struct gw_rd in, body;
	gw_rd_init(&in, data, len);
	int rc = gw_sect_read(&in, HV_STATE_MAGIC, HV_STATE_VERSION, &body);
	if (rc)
		return rc;
	uint32_t ncpus, ndev;
	if (gw_rd_u32(&body, &ncpus))
		return -EBADMSG;
	if (ncpus != vm->ncpus) {
		GW_ERR(vm->name, "saved state has %u vCPUs, this VM has %u", ncpus, vm->ncpus);
		return -EINVAL;
	}
	rc = load_vm_part(vm, &body);
	for (unsigned i = 0; rc == 0 && i < ncpus; i++) {
		struct hv_vcpu_state s;
		rc = hv_vcpu_state_deserialize(&body, &s);
		if (rc)
			break;
		rc = s.id < vm->ncpus ? hv_vcpu_load(&vm->vcpus[s.id], &s) : -EBADMSG;
		hv_vcpu_state_release(&s);
	}
	if (rc)
		return rc;
	if (gw_rd_u32(&body, &ndev))
		return -EBADMSG;
	for (uint32_t i = 0; i < ndev; i++) {
		struct gw_rd dev;
		uint16_t id;
		const void *name, *blob;
		uint32_t nlen, blen;
		rc = gw_sect_read(&body, HV_DEV_MAGIC, HV_DEV_VERSION, &dev);
		if (rc)
			return rc;
		if (gw_field_next(&dev, &id, &name, &nlen) || id != 1 || gw_rd_u32(&dev, &blen) ||
		    gw_rd_ptr(&dev, &blob, blen))
			return -EBADMSG;
		struct hv_device *d = find_device(vm, name, nlen);
		if (!d) {
			GW_ERR(vm->name, "saved state holds device '%.*s', which this VM lacks",
			       (int)nlen, (const char *)name);
			return -EINVAL;
		}
		if (d->ops->load && (rc = d->ops->load(d->opaque, blob, blen))) {
			GW_ERR(vm->name, "device %s refused its saved state: %s", d->name,
			       strerror(-rc));
			return rc;
		}
	}
	return body.left ? -EBADMSG : 0;
}

int hv_vm_tsc_khz(struct hv_vm *vm)
{
	uint32_t khz = atomic_load(&vm->tsc_khz);
	return khz ? (int)khz : -ENOTSUP;
}

bool hv_vm_tsc_scaling(struct hv_vm *vm)
{
	return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0;
}

int hv_vm_set_tsc_khz(struct hv_vm *vm, uint32_t khz)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		/* Without scaling KVM refuses a lower rate and emulates a higher one by catching
		 * up at exits, which is no way to keep a guest's time: both are refused. */
		if (!hv_vm_tsc_scaling(vm) ||
		    ioctl(vm->vcpus[i].fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
			return -EOPNOTSUPP;
	}
	atomic_store(&vm->tsc_khz, khz);
	return 0;
}

struct hv_bus *hv_vm_pio_bus(struct hv_vm *vm)
{
	return vm->pio;
}

struct hv_bus *hv_vm_mmio_bus(struct hv_vm *vm)
{
	return vm->mmio;
}
