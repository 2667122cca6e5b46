/* SPDX-License-Identifier: Apache-2.0 */
/* A VM for fuzz targets without /dev/kvm (fake_vm.h). KVM is a stub: every ioctl on the fake
 * KVM descriptor succeeds and reads back zeros, so what is fuzzed is godwit's own decoding and
 * checking of the state, not KVM's. */
#include "fake_vm.h"

#include "godwit/crc.h"
#include "godwit/log.h"
#include "godwit/sriov.h"
#include "hv_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define FAKE_RAM (64u * 4096u)

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

static int kvm_fd = -1; /* /dev/null: a descriptor that stands for KVM's */

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd >= 0 && fd == kvm_fd) {
		/* KVM takes every state; GET calls leave the caller's zeros. MSR calls answer how
		 * many MSRs they read or wrote: all of them. */
		if (req == KVM_GET_MSRS || req == KVM_SET_MSRS)
			return (int)((struct kvm_msrs *)arg)->nmsrs;
		return 0;
	}
	return __real_ioctl(fd, req, arg);
}

static struct hv_vm *vm;

static int make(void)
{
	kvm_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return -errno;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "fuzz");
	vm->cfg.name = vm->name;
	vm->cfg.mem_size = FAKE_RAM;
	vm->cfg.ncpus = 1;
	vm->kvm_fd = vm->vm_fd = kvm_fd;
	vm->ram_size = FAKE_RAM;
	vm->ncpus = 1;
	vm->xsave_size = 4096;
	vm->nmsrs = 2;
	vm->msr_list[0] = 0x10;	      /* IA32_TIME_STAMP_COUNTER */
	vm->msr_list[1] = 0xc0000080; /* EFER */
	pthread_mutex_init(&vm->slot_lock, NULL);
	pthread_mutex_init(&vm->irq_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	vm->vcpus[0] = (struct hv_vcpu){.vm = vm, .id = 0, .fd = kvm_fd};
	snprintf(vm->vcpus[0].name, sizeof(vm->vcpus[0].name), "fuzz/cpu0");
	for (unsigned i = 1; i < HV_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	int rc;
	if ((rc = hv_irq_init(vm)) || (rc = hv_mem_init(vm)))
		return rc;
	vm->pio = hv_bus_create("pio");
	vm->mmio = hv_bus_create("mmio");
	if (!vm->pio || !vm->mmio)
		return -ENOMEM;
	struct hv_console_config con = {.kind = HV_CONSOLE_NONE};
	if ((rc = hv_serial_create(vm, &con, &vm->serial)) || (rc = hv_rtc_init(vm)) ||
	    (rc = hv_pci_create(vm, &vm->pci)))
		return rc;
	/* One VF of godwit's emulated igb: its state, its mailbox record and the replay. */
	struct sriov_vf_config_spec spec;
	char err[200];
	if (sriov_vf_spec_parse("pf=0,vf=0,gen=2,mac=02:00:00:00:00:01,uplink=none", &spec, err,
				sizeof(err))) {
		fprintf(stderr, "fake_vm: %s\n", err);
		return -EINVAL;
	}
	struct sriov_vf *vf;
	return sriov_vf_attach(vm, &spec, &vf);
}

struct hv_vm *fake_vm(void)
{
	static bool tried;
	if (!tried) {
		tried = true;
		gw_log_set_level(GW_LOG_ERROR);
		int rc = make();
		if (rc) {
			fprintf(stderr, "fake_vm: cannot make the VM: %s\n", strerror(-rc));
			vm = NULL;
		}
	}
	return vm;
}

int fake_vm_state(struct gw_buf *out)
{
	struct hv_vm *v = fake_vm();
	if (!v)
		return -ENODEV;
	gw_buf_init(out);
	return hv_vm_save_state(v, out);
}

void fake_vm_write_seeds(const char *dir, const char *prefix, const struct gw_buf *seeds, size_t n)
{
	if (!dir || !*dir)
		return;
	for (size_t i = 0; i < n; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s-%zu", dir, prefix, i);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len)
			fprintf(stderr, "fake_vm: cannot write the seed %s\n", path);
		if (f)
			fclose(f);
	}
}

void fake_fix_crcs(uint8_t *data, size_t size)
{
	static const char magics[][5] = {"GWST", "GDEV", "GVMS", "GVCP", "GRTC", "GURT",
					 "GPCF", "GPCH", "GVFS", "GIGB", "GVFC"};
	if (size < sizeof(struct gw_sect_hdr))
		return;
	/* From the end: a section nested in another starts after it, so it is fixed first. */
	for (size_t off = size - sizeof(struct gw_sect_hdr) + 1; off-- > 0;) {
		if (data[off] != 'G')
			continue;
		bool known = false;
		for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]) && !known; i++)
			known = !memcmp(data + off, magics[i], 4);
		if (!known)
			continue;
		struct gw_sect_hdr h;
		memcpy(&h, data + off, sizeof(h));
		size_t body = off + sizeof(h);
		if (h.length > size - body)
			continue;
		h.crc = gw_crc32c(0, data + body, h.length);
		memcpy(data + off, &h, sizeof(h));
	}
}
