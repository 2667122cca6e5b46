/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the hypervisor core shared by its source files. */
#ifndef GODWIT_HV_PRIV_H
#define GODWIT_HV_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "godwit/hv.h"
#include "godwit/hv_state.h"

#define HV_MAX_SLOTS	  512
#define HV_MAX_DEVICES	  32
#define HV_MAX_GSI_ROUTES 1024
#define HV_SLOT_RAM_LOW	  0
#define HV_SLOT_RAM_HIGH  1
#define HV_SLOT_FIRST_DYN 2

struct hv_serial;
struct hv_pci;

struct hv_vcpu {
	struct hv_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	char name[48];
};

struct hv_slot {
	bool used;
	uint64_t gpa;
	uint64_t len;
	void *hva;
	uint32_t flags;
};

struct hv_device {
	char name[32];
	const struct hv_device_ops *ops;
	void *opaque;
};

enum hv_run_req {
	HV_REQ_RUN = 0,
	HV_REQ_PAUSE,
	HV_REQ_STOP,
};

struct hv_vm {
	char name[32];
	struct hv_vm_config cfg;
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;

	/* RAM: one memfd; [0, ram_low) at GPA 0 and the rest at HV_RAM_HIGH_BASE. */
	int ram_fd;
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t ram_low;
	/* Ranges split off (hv_vm_ram_split) and not yet joined: there the memfd is not what
	 * the guest sees. */
	unsigned ram_splits;

	struct hv_slot slots[HV_MAX_SLOTS];
	pthread_mutex_t slot_lock;

	struct hv_bus *pio;
	struct hv_bus *mmio;

	/* GSI routing table as last committed with KVM_SET_GSI_ROUTING. */
	pthread_mutex_t irq_lock;
	struct kvm_irq_routing *routing;
	unsigned next_gsi;

	unsigned ncpus;
	struct hv_vcpu vcpus[HV_MAX_VCPUS];
	struct kvm_cpuid2 *cpuid;
	uint32_t msr_list[HV_STATE_MAX_MSRS];
	unsigned nmsrs;
	uint32_t xsave_size;
	/* The vCPUs' TSC rate in kHz, read before their threads start: a vCPU ioctl waits for
	 * the vCPU to leave KVM_RUN, which an idle guest may not do for a long time. */
	_Atomic uint32_t tsc_khz;

	/* Run control, guarded by run_lock. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	enum hv_run_req req;
	unsigned holds; /* hv_vm_hold_vcpus callers: vCPUs stay parked while non-zero */
	unsigned parked;
	unsigned running_threads;
	bool started;
	enum hv_stop_reason stop_reason;
	int guest_exit_code;

	struct hv_vm_events events;

	_Atomic uint64_t st_io, st_mmio, st_mmio_unhandled, st_hlt, st_intr, st_other;
	_Atomic uint64_t unhandled_logged;

	/* Dirty tracking. */
	bool dirty_on;
	unsigned dma_mode;	       /* passed to devices; dma.h's enum dma_mode */
	uint64_t dma_pages, dma_bytes; /* device DMA made visible (atomic adds) */
	bool manual_protect;	       /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	uint64_t *vmm_dirty;	       /* written by any thread with atomic ops */
	uint64_t *kvm_dirty_scratch;

	struct hv_device devices[HV_MAX_DEVICES];
	unsigned ndevices;

	struct hv_serial *serial;
	struct hv_pci *pci;
};

/* vcpu.c */
int hv_vcpu_init(struct hv_vm *vm, unsigned id);
void hv_vcpu_fini(struct hv_vcpu *vcpu);
int hv_vcpu_start_thread(struct hv_vcpu *vcpu);
/* Completes a pending I/O exit so that registers are architecturally consistent. */
int hv_vcpu_complete_io(struct hv_vcpu *vcpu);
int hv_vcpu_save(struct hv_vcpu *vcpu, struct hv_vcpu_state *s);
int hv_vcpu_load(struct hv_vcpu *vcpu, const struct hv_vcpu_state *s);
int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs);
int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs);
int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs);
/* Interrupts every vCPU's KVM_RUN; caller holds run_lock. */
void hv_vm_kick_locked(struct hv_vm *vm);
void hv_vm_request_stop(struct hv_vm *vm, enum hv_stop_reason why, int code);

/* memory.c */
int hv_mem_init(struct hv_vm *vm);
void hv_mem_fini(struct hv_vm *vm);
int hv_slot_set(struct hv_vm *vm, unsigned slot, uint64_t gpa, uint64_t len, void *hva,
		uint32_t flags);
int hv_slot_alloc(struct hv_vm *vm);

/* irq.c */
int hv_irq_init(struct hv_vm *vm);
void hv_irq_fini(struct hv_vm *vm);

/* serial.c */
int hv_serial_create(struct hv_vm *vm, const struct hv_console_config *cfg, struct hv_serial **out);
void hv_serial_destroy(struct hv_serial *s);

/* backdoor.c */
int hv_backdoor_init(struct hv_vm *vm);

/* acpi_pm.c */
int hv_acpi_pm_init(struct hv_vm *vm);

/* rtc.c: the CMOS RTC on ports 0x70-0x71, device "rtc"; destroy frees it (after the vCPUs). */
int hv_rtc_init(struct hv_vm *vm);
void hv_rtc_destroy(struct hv_vm *vm);

/* pci.c */
int hv_pci_create(struct hv_vm *vm, struct hv_pci **out);
void hv_pci_destroy(struct hv_pci *pci);

/* boot.c: what both kinds of guest boot share. */
/* Reads a regular file of at most max bytes: -ENOENT..., -ENOEXEC (not a regular file),
 * -E2BIG (larger than max). */
int hv_boot_read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* Validates an ELF64 x86-64 executable and copies every PT_LOAD segment to its physical
 * address (at or above 1 MiB); the entry in *entry, the end of the highest segment in *end.
 * -ENOEXEC or -E2BIG with the reason in *why. */
int hv_boot_load_elf(struct hv_vm *vm, const uint8_t *img, size_t len, uint64_t *entry,
		     uint64_t *end, const char **why);
/* Identity-maps [0, map_top) (at least 4 GiB), loads the boot GDT (Linux's __BOOT_CS 0x10 and
 * __BOOT_DS 0x18) and a TSS, and puts vCPU 0 in long mode with regs. */
int hv_boot_long_mode(struct hv_vm *vm, uint64_t map_top, const struct kvm_regs *regs);

/* dirty.c */
void hv_dirty_fini(struct hv_vm *vm);

#endif
