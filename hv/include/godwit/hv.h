/* SPDX-License-Identifier: Apache-2.0 */
/* The hypervisor core: a KVM VM with RAM, vCPU threads, buses, interrupts and its state. */
#ifndef GODWIT_HV_H
#define GODWIT_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/buf.h"

struct hv_vm;
struct hv_vcpu;
struct hv_bus;

#define HV_PAGE_SIZE  4096ull
#define HV_PAGE_SHIFT 12

/* Guest-physical layout (docs/guest-abi.md, "Guest-physical layout"). */
#define HV_RAM_LOW_MAX	 0xC0000000ull	/* RAM below 4 GiB ends here at most */
#define HV_RAM_HIGH_BASE 0x100000000ull /* the rest of RAM starts here */
#define HV_MMIO_BASE	 0xC0000000ull	/* BAR window */
#define HV_ECAM_BASE	 0xE0000000ull
#define HV_ECAM_BUSES	 16u
#define HV_GUEST_LOAD	 0x100000ull /* guest images load at or above 1 MiB */
#define HV_MEM_MIN	 (16ull << 20)
#define HV_MEM_MAX	 (32ull << 30)
#define HV_MEM_ALIGN	 (2ull << 20) /* RAM is mapped with 2 MiB pages (boot.c) */
#define HV_MAX_VCPUS	 8u

/* The one rule for a VM's RAM size, checked by hv_vm_create, godwit-vmm's options and godwitd's
 * API alike; HV_MEM_RULE says it in words for their error messages. */
#define HV_MEM_RULE "a multiple of 2 MiB from 16 MiB to 32 GiB"
static inline bool hv_mem_size_valid(uint64_t size)
{
	return size >= HV_MEM_MIN && size <= HV_MEM_MAX && size % HV_MEM_ALIGN == 0;
}

enum hv_console_kind {
	HV_CONSOLE_NONE = 0, /* output discarded */
	HV_CONSOLE_STDIO,    /* output to stdout, input from stdin */
	HV_CONSOLE_FILE,     /* output appended to a file */
	HV_CONSOLE_UNIX,     /* a listening unix socket; each connected client sees the output */
	HV_CONSOLE_FD,	     /* output to a caller-supplied fd (duplicated) */
};

struct hv_console_config {
	enum hv_console_kind kind;
	const char *path; /* FILE, UNIX */
	int fd;		  /* FD */
};

/* Parses "stdio", "none", "file:PATH", "unix:PATH". 0 or -EINVAL. */
int hv_console_parse(const char *s, struct hv_console_config *out);

struct hv_vm_config {
	const char *name; /* log prefix; default "vm" */
	uint64_t mem_size;
	unsigned ncpus;
	bool hugepages;
	struct hv_console_config console;
};

/* What /dev/kvm offers, for inventories; error says why when it is unusable. */
struct hv_kvm_info {
	bool available;
	int api_version;
	bool irqchip;
	bool manual_dirty_log;
	bool tsc_control;
	unsigned max_vcpus;
	char error[160];
};
void hv_kvm_probe(struct hv_kvm_info *out);

/* Why a VM stopped running. */
enum hv_stop_reason {
	HV_STOP_NONE = 0,
	HV_STOP_GUEST_EXIT, /* the guest called GW_BD_EXIT */
	HV_STOP_SHUTDOWN,   /* triple fault or guest shutdown */
	HV_STOP_ERROR,	    /* KVM failed to run the guest (internal error, failed entry) */
	HV_STOP_REQUESTED,  /* hv_vm_stop() */
};
const char *hv_stop_reason_name(enum hv_stop_reason r);

/* Callbacks from vCPU threads; keep them short. */
struct hv_vm_events {
	void (*report)(void *opaque, struct hv_vm *vm, uint32_t kind, uint64_t a, uint64_t b);
	void *opaque;
};

/* Counters of VM exits seen by userspace, by kind. */
struct hv_exit_stats {
	uint64_t io;
	uint64_t mmio;
	uint64_t mmio_unhandled;
	uint64_t hlt;
	uint64_t intr;
	uint64_t other;
};

/*
 * Opens /dev/kvm, creates the VM with RAM, in-kernel irqchip and PIT, the serial console,
 * the backdoor port and the PCI host bridge. Errors: -ENOENT/-EACCES (no usable /dev/kvm),
 * -EINVAL (bad config), -ENOMEM, -ENOTSUP (a KVM capability is missing); a one-line reason is
 * logged. The VM does not run until hv_vm_start().
 */
int hv_vm_create(const struct hv_vm_config *cfg, struct hv_vm **out);
void hv_vm_destroy(struct hv_vm *vm);
void hv_vm_set_events(struct hv_vm *vm, const struct hv_vm_events *ev);
const char *hv_vm_name(const struct hv_vm *vm);
/* A canonical description of what a migration peer must match: RAM, vCPUs, devices. */
void hv_vm_describe(struct hv_vm *vm, char *out, size_t n);

/* Loads an ELF64 guest, writes boot info and page tables, and points vCPU 0 at its entry in
 * long mode. -ENOENT (no file), -ENOEXEC (not a loadable x86-64 ELF), -E2BIG (does not fit). */
int hv_vm_boot_elf(struct hv_vm *vm, const char *path, const char *cmdline);

/* A Linux kernel to boot: a bzImage (boot protocol 2.12 or later, 64-bit entry). */
struct hv_linux_boot_config {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: empty */
};
/* Loads the kernel, initrd and command line, writes the ACPI tables, the e820 map and the zero
 * page, and points vCPU 0 at the kernel's 64-bit entry (docs/godwit-vmm.md, "Linux guests").
 * The reason for a refusal is logged: -ENOENT etc. (a file cannot be read), -ENOEXEC (not a
 * bzImage godwit can boot), -E2BIG (kernel, initrd or command line do not fit). */
int hv_vm_boot_linux(struct hv_vm *vm, const struct hv_linux_boot_config *cfg);

int hv_vm_start(struct hv_vm *vm);
/* Brings every vCPU out of KVM_RUN with pending I/O completed; state is then consistent. */
int hv_vm_pause(struct hv_vm *vm);
int hv_vm_resume(struct hv_vm *vm);
/* Parks every vCPU outside KVM_RUN (pending I/O completed) until the matching release, and
 * leaves the devices alone, unlike hv_vm_pause: for a device that must change what the guest
 * sees of memory in one step while it keeps working. Holds nest; -ESRCH once the VM stops.
 * Not from a vCPU thread, nor with a lock a vCPU's exit handler may take. */
int hv_vm_hold_vcpus(struct hv_vm *vm);
void hv_vm_release_vcpus(struct hv_vm *vm);
void hv_vm_stop(struct hv_vm *vm);
/* Waits until the VM stops or timeout_ms passes (-1: forever). 0 when stopped, -ETIMEDOUT. */
int hv_vm_wait(struct hv_vm *vm, int timeout_ms);
bool hv_vm_is_stopped(struct hv_vm *vm);
enum hv_run_state {
	HV_RUN_CREATED = 0, /* not started yet */
	HV_RUN_RUNNING,
	HV_RUN_PAUSED,
	HV_RUN_STOPPED,
};
enum hv_run_state hv_vm_run_state(struct hv_vm *vm);
const char *hv_run_state_name(enum hv_run_state s);
enum hv_stop_reason hv_vm_stop_reason(struct hv_vm *vm, int *guest_exit_code);
void hv_vm_exit_stats(struct hv_vm *vm, struct hv_exit_stats *out);

/* RAM. Offsets index the RAM backing (low part, then high part); dirty bitmaps use them. */
uint64_t hv_vm_ram_size(const struct hv_vm *vm);
unsigned hv_vm_ncpus(const struct hv_vm *vm);
uint8_t *hv_vm_ram_base(struct hv_vm *vm);
/* RAM as guest-physical ranges (low part, then the part above 4 GiB): what a device's IOMMU
 * maps at IOVA = guest-physical address. Returns how many (1 or 2) it wrote to out. */
struct hv_ram_range {
	uint64_t gpa, len;
	void *hva;
};
unsigned hv_vm_ram_ranges(struct hv_vm *vm, struct hv_ram_range out[2]);
/* Host pointer for [gpa, gpa + len) when it lies wholly in RAM, else NULL. */
void *hv_vm_gpa_to_hva(struct hv_vm *vm, uint64_t gpa, uint64_t len);
/* RAM offset of a guest-physical address, or -EFAULT. */
int hv_vm_gpa_to_ram_offset(const struct hv_vm *vm, uint64_t gpa, uint64_t *off);
uint64_t hv_vm_ram_offset_to_gpa(const struct hv_vm *vm, uint64_t off);
/* Sets the bit of every RAM page that has ever been written (the rest are holes that read
 * as zero), without touching the pages: SEEK_DATA/SEEK_HOLE on the RAM memfd. */
int hv_vm_ram_present(struct hv_vm *vm, uint64_t *bitmap);
/* Splits what the guest sees of [gpa, gpa + len) (whole pages in one RAM range) from what a
 * device reaches there through its IOMMU: the guest's view becomes a copy, in one step, while
 * the device keeps the RAM pages, which *dev_view then shows the VMM. The VMM keeps the two in
 * step itself until join, which gives the guest the RAM pages (as they are then) again and
 * drops its copy. -EINVAL (not whole pages of RAM), -ENOTSUP (hugepage-backed RAM). Hold the
 * vCPUs (hv_vm_hold_vcpus) around both, or the guest may write the side being dropped. */
int hv_vm_ram_split(struct hv_vm *vm, uint64_t gpa, uint64_t len, void **dev_view);
int hv_vm_ram_join(struct hv_vm *vm, uint64_t gpa, uint64_t len, void *dev_view);
/* Moves len bytes waiting in pipe_fd into RAM at offset off, as the guest sees it. Where the
 * memfd is what the guest sees (no range split anywhere, no hugepages), by splice into its page
 * cache: a page the guest never wrote is then filled without being cleared and faulted in
 * first (migration's receive, where that cost the thread as much as the copy). Elsewhere
 * read() through the mapping. Concurrent calls serialise on the memfd's inode lock for their
 * copies. 0, -EFAULT (outside RAM), -EIO (the pipe held
 * less), or -errno. */
int hv_vm_ram_splice_in(struct hv_vm *vm, int pipe_fd, uint64_t off, size_t len);

/* Buses: one for port I/O, one for MMIO. Handlers run on vCPU threads (vcpu != NULL) or on
 * the caller's thread for accesses the VMM makes itself (vcpu == NULL). */
struct hv_io_ops {
	void (*read)(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
		     unsigned size);
	void (*write)(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
		      unsigned size);
};

struct hv_bus *hv_bus_create(const char *name);
void hv_bus_destroy(struct hv_bus *bus);
/* -EINVAL (empty or wrapping range), -EEXIST (overlaps a registered range), -ENOMEM. */
int hv_bus_register(struct hv_bus *bus, uint64_t base, uint64_t len, const struct hv_io_ops *ops,
		    void *opaque, const char *name);
int hv_bus_unregister(struct hv_bus *bus, uint64_t base);
/* Dispatches one access; -ENOENT when nothing is registered there (reads then yield ~0). */
int hv_bus_read(struct hv_bus *bus, struct hv_vcpu *vcpu, uint64_t addr, uint64_t *val,
		unsigned size);
int hv_bus_write(struct hv_bus *bus, struct hv_vcpu *vcpu, uint64_t addr, uint64_t val,
		 unsigned size);
struct hv_bus *hv_vm_pio_bus(struct hv_vm *vm);
struct hv_bus *hv_vm_mmio_bus(struct hv_vm *vm);

/* Interrupts. */
int hv_vm_irq_line(struct hv_vm *vm, unsigned gsi, bool level);
/* Allocates a GSI routed to an MSI message; returns the GSI or a negative errno. */
int hv_vm_msi_route_add(struct hv_vm *vm, uint64_t addr, uint32_t data);
int hv_vm_msi_route_update(struct hv_vm *vm, unsigned gsi, uint64_t addr, uint32_t data);
int hv_vm_msi_route_remove(struct hv_vm *vm, unsigned gsi);
int hv_vm_signal_msi(struct hv_vm *vm, uint64_t addr, uint32_t data);
int hv_vm_irqfd(struct hv_vm *vm, int fd, unsigned gsi, bool assign);
/* An eventfd signalled by guest writes of len bytes at addr, with no exit to userspace. */
int hv_vm_ioeventfd(struct hv_vm *vm, int fd, uint64_t addr, unsigned len, bool pio, bool assign);

/*
 * Direct-mapped guest-physical regions (for device BAR pages): host memory at hva appears at
 * gpa with no exits; readonly makes writes exit as MMIO. Returns a slot handle or -errno.
 */
int hv_vm_map(struct hv_vm *vm, uint64_t gpa, uint64_t len, void *hva, bool readonly);
int hv_vm_unmap(struct hv_vm *vm, int handle);

/* Dirty tracking: KVM's dirty log (manual protect) for vCPU writes, plus the VMM's bitmap for
 * writes the VMM and device threads make. Bits index RAM pages by RAM offset. */
int hv_dirty_start(struct hv_vm *vm);
void hv_dirty_stop(struct hv_vm *vm);
bool hv_dirty_active(struct hv_vm *vm);
/* What devices should do about their DMA while dirty logging is on: a number hv passes
 * through without reading (dma.h's enum dma_mode), set before hv_dirty_start. */
void hv_dirty_set_dma_mode(struct hv_vm *vm, unsigned mode);
unsigned hv_dirty_dma_mode(struct hv_vm *vm);
/* Devices count what they made visible (pages marked, bytes copied); the migration reports
 * it. Safe from any thread; the counters run for the VM's lifetime. */
void hv_dirty_dma_account(struct hv_vm *vm, uint64_t pages, uint64_t bytes);
void hv_dirty_dma_stats(struct hv_vm *vm, uint64_t *pages, uint64_t *bytes);
/* Marks [gpa, gpa + len) dirty on the VMM side; safe from any thread; outside RAM is ignored. */
void hv_dirty_mark(struct hv_vm *vm, uint64_t gpa, uint64_t len);
/* ORs into out (hv_vm_ram_size / 4 KiB bits) every page dirtied since the last collect, from
 * both sources, and re-arms tracking for them. */
int hv_dirty_collect(struct hv_vm *vm, uint64_t *out);
/* Pure merge step, exposed for tests: out |= kvm_bits (of one slot at first_page) | vmm bits. */
void hv_dirty_merge(uint64_t *out, const uint64_t *kvm_bits, size_t first_page, size_t npages);

/*
 * PCI functions on the host bridge's bus 0. cfg and wmask are the function's initial
 * configuration space and its guest-writable bits. cfg_written runs after every guest write
 * to the function's space (on a vCPU thread, no hv lock held) and once with reg 0 and size
 * 4096 after its space was loaded from a saved state; the device re-reads what it cares
 * about (command register, BARs, capabilities) with hv_pci_cfg_get.
 */
struct hv_pci_dev_ops {
	void (*cfg_written)(void *opaque, unsigned reg, unsigned size);
};
/* -EINVAL (bdf 0 or beyond bus 0), -EEXIST (taken), -ENOMEM. */
int hv_pci_add_function(struct hv_vm *vm, unsigned bdf, const uint8_t *cfg, const uint8_t *wmask,
			const struct hv_pci_dev_ops *ops, void *opaque);
int hv_pci_remove_function(struct hv_vm *vm, unsigned bdf);
/* The functions present on bus 0, in order, as bdf numbers (bus 0: device << 3 | function):
 * how many there are; at most max are written. */
unsigned hv_pci_functions(struct hv_vm *vm, uint16_t *bdfs, unsigned max);
/* The lowest free device number on bus 0 (function 0), or -ENOSPC. */
int hv_pci_free_slot(struct hv_vm *vm);
uint64_t hv_pci_cfg_get(struct hv_vm *vm, unsigned bdf, unsigned reg, unsigned size);
/* Sets bits a device owns (status, pending bits), ignoring the guest-writable mask. */
void hv_pci_cfg_put(struct hv_vm *vm, unsigned bdf, unsigned reg, uint64_t val, unsigned size);
/* Assigns a BAR address the way firmware would: size-aligned, in the MMIO window below
 * ECAM, never reused within the VM. 0 when the window is exhausted. Deterministic: a VM
 * built the same way gets the same addresses (a migration destination relies on it). */
uint64_t hv_pci_alloc_mmio(struct hv_vm *vm, uint64_t size);
/* The GSI that a function's INTx pin A raises (an I/O APIC pin from 16 up). */
unsigned hv_pci_intx_gsi(unsigned bdf);

/* Devices reach the migration engine only through this interface. */
struct hv_device_ops {
	const char *kind;
	int (*save)(void *opaque, struct gw_buf *out);
	int (*load)(void *opaque, const void *data, size_t len);
	int (*quiesce)(void *opaque);
	int (*resume)(void *opaque);
	void (*dirty_log_start)(void *opaque);
	void (*dirty_log_stop)(void *opaque);
};
int hv_device_register(struct hv_vm *vm, const char *name, const struct hv_device_ops *ops,
		       void *opaque);

/* Guest time. The VM's state carries kvmclock and the TSC frequency; a destination advances
 * kvmclock by the real time that passed between save and load, and sets the saved TSC rate
 * on its vCPUs (KVM's TSC scaling) where it differs from its host's. */
/* The vCPUs' TSC frequency in kHz, or a negative errno. */
int hv_vm_tsc_khz(struct hv_vm *vm);
/* Sets it on every vCPU (KVM_SET_TSC_KHZ): -EOPNOTSUPP when KVM refuses the rate. */
int hv_vm_set_tsc_khz(struct hv_vm *vm, uint32_t khz);
/* Whether this host's KVM can run a guest's TSC at another rate than the host's. */
bool hv_vm_tsc_scaling(struct hv_vm *vm);
enum hv_tsc_plan {
	HV_TSC_SAME = 0, /* within KVM's tolerance (250 ppm), or a rate unknown */
	HV_TSC_SCALE,	 /* KVM scales it: set the VM's rate */
	HV_TSC_DRIFT,	 /* no scaling, and the operator allowed it: go on at the host's rate */
	HV_TSC_REFUSE,	 /* no scaling, not allowed: refuse, with why */
};
/* Pure: what a destination with a host TSC of host_khz does about a VM at vm_khz. why is set
 * for DRIFT and REFUSE. */
enum hv_tsc_plan hv_tsc_plan(uint32_t vm_khz, uint32_t host_khz, bool scaling, bool allow,
			     char *why, size_t n);

/* Whole-VM state (VM, every vCPU, every device; not RAM) as one section. The VM must be
 * paused or not started. Load rejects a wrong version (-EPROTO), corruption (-EBADMSG) and a
 * state that does not fit this VM (-EINVAL). */
int hv_vm_save_state(struct hv_vm *vm, struct gw_buf *out);
int hv_vm_load_state(struct hv_vm *vm, const void *data, size_t len);

/* vCPU access for handlers running on a vCPU thread. */
unsigned hv_vcpu_id(const struct hv_vcpu *vcpu);
struct hv_vm *hv_vcpu_vm(struct hv_vcpu *vcpu);

#endif
