/* SPDX-License-Identifier: Apache-2.0 */
/* Direct boot of an ELF64 guest in long mode: page tables, GDT, boot info and registers. */
#include "hv_priv.h"

#include "godwit/hv_abi.h"
#include "godwit/log.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Low memory the VMM owns before the guest image (all below HV_GUEST_LOAD); a Linux guest's
 * zero page and command line sit above it (linux_boot.c). */
#define BOOT_GDT	 0x1000ull
#define BOOT_TSS	 0x1800ull
#define BOOT_INFO	 0x2000ull
#define BOOT_CMDLINE	 0x2100ull
#define BOOT_CMDLINE_MAX (0x1000 - 0x100)
#define BOOT_PML4	 0x3000ull
#define BOOT_PDPT	 0x4000ull
#define BOOT_PD		 0x5000ull /* one page per GiB mapped */
#define MAX_GUEST_FILE	 (64ull << 20)
/* The selectors of Linux's 64-bit boot protocol (__BOOT_CS, __BOOT_DS), loaded for both kinds
 * of guest; the test guest's interrupt gates name 0x08 (docs/guest-abi.md), which is the same
 * 64-bit code segment. */
#define SEL_CODE_ABI 0x08u
#define SEL_CODE     0x10u
#define SEL_DATA     0x18u
#define SEL_TSS	     0x20u

#define PTE_P  0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull

#define CR0_PE	       0x1ull
#define CR0_MP	       0x2ull
#define CR0_ET	       0x10ull
#define CR0_NE	       0x20ull
#define CR0_WP	       0x10000ull
#define CR0_PG	       0x80000000ull
#define CR4_PAE	       0x20ull
#define CR4_OSFXSR     0x200ull
#define CR4_OSXMMEXCPT 0x400ull
#define EFER_LME       0x100ull
#define EFER_LMA       0x400ull

int hv_boot_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	/* Non-blocking: opening a FIFO for reading would wait for a writer (fifo(7)); it is
	 * refused below like anything that is not a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOEXEC;
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -E2BIG;
		goto out_close;
	}
	*len = (size_t)st.st_size;
	*out = malloc(*len ? *len : 1);
	if (!*out) {
		rc = -ENOMEM;
		goto out_close;
	}
	size_t got = 0;
	while (got < *len) {
		ssize_t r = read(fd, *out + got, *len - got);
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			free(*out);
			goto out_close;
		}
		got += (size_t)r;
	}
out_close:
	close(fd);
	return rc;
}

int hv_boot_load_elf(struct hv_vm *vm, const uint8_t *img, size_t len, uint64_t *entry,
		     uint64_t *image_end, const char **why)
{
	if (len < SELFMAG || memcmp(img, ELFMAG, SELFMAG) != 0) {
		*why = "not an ELF file";
		return -ENOEXEC;
	}
	if (len < sizeof(Elf64_Ehdr)) {
		*why = "file is shorter than an ELF header";
		return -ENOEXEC;
	}
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		*why = "not a little-endian x86-64 ELF64 file";
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		*why = "not a statically linked executable (ET_EXEC)";
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
		*why = "program header table is missing or out of bounds";
		return -ENOEXEC;
	}
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	bool entry_ok = false;
	unsigned loads = 0;
	*image_end = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		loads++;
		uint64_t pa = ph[i].p_paddr, fsz = ph[i].p_filesz, msz = ph[i].p_memsz;
		if (fsz > msz || ph[i].p_offset > len || fsz > len - ph[i].p_offset) {
			*why = "a segment lies outside the file";
			return -ENOEXEC;
		}
		if (pa < HV_GUEST_LOAD) {
			*why = "a segment loads below 1 MiB, which the VMM reserves";
			return -ENOEXEC;
		}
		uint8_t *dst = hv_vm_gpa_to_hva(vm, pa, msz ? msz : 1);
		if (!dst) {
			*why = "a segment does not fit in guest RAM";
			return -E2BIG;
		}
		memcpy(dst, img + ph[i].p_offset, fsz);
		memset(dst + fsz, 0, msz - fsz);
		/* The entry is a virtual address (the test guest, where both are the same) or a
		 * physical one (a Linux vmlinux: ENTRY(phys_startup_64)). */
		if ((ph[i].p_flags & PF_X) &&
		    ((eh->e_entry >= ph[i].p_vaddr && eh->e_entry - ph[i].p_vaddr < msz) ||
		     (eh->e_entry >= pa && eh->e_entry - pa < msz)))
			entry_ok = true;
		if (pa + msz > *image_end)
			*image_end = pa + msz;
	}
	if (!loads) {
		*why = "no loadable segment";
		return -ENOEXEC;
	}
	if (!entry_ok) {
		*why = "entry point is not inside an executable segment";
		return -ENOEXEC;
	}
	*entry = eh->e_entry;
	return 0;
}

/* Identity map of [0, top) with 2 MiB pages (at least the first 4 GiB: RAM, ECAM, the LAPIC
 * and IOAPIC). */
static int build_page_tables(struct hv_vm *vm, uint64_t top)
{
	if (top < HV_RAM_HIGH_BASE)
		top = HV_RAM_HIGH_BASE;
	uint64_t gibs = (top + (1ull << 30) - 1) >> 30;
	if (BOOT_PD + gibs * HV_PAGE_SIZE > HV_GUEST_LOAD || gibs > 512)
		return -E2BIG;
	uint64_t *pml4 = hv_vm_gpa_to_hva(vm, BOOT_PML4, HV_PAGE_SIZE);
	uint64_t *pdpt = hv_vm_gpa_to_hva(vm, BOOT_PDPT, HV_PAGE_SIZE);
	uint64_t *pd = hv_vm_gpa_to_hva(vm, BOOT_PD, gibs * HV_PAGE_SIZE);
	if (!pml4 || !pdpt || !pd)
		return -E2BIG;
	memset(pml4, 0, HV_PAGE_SIZE);
	memset(pdpt, 0, HV_PAGE_SIZE);
	pml4[0] = BOOT_PDPT | PTE_P | PTE_RW;
	for (uint64_t g = 0; g < gibs; g++) {
		pdpt[g] = (BOOT_PD + g * HV_PAGE_SIZE) | PTE_P | PTE_RW;
		for (uint64_t e = 0; e < 512; e++)
			pd[g * 512 + e] = ((g << 30) + (e << 21)) | PTE_P | PTE_RW | PTE_PS;
	}
	return 0;
}

static void build_gdt(struct hv_vm *vm)
{
	uint64_t *gdt = hv_vm_gpa_to_hva(vm, BOOT_GDT, 0x800);
	memset(gdt, 0, 0x800);
	gdt[SEL_CODE_ABI / 8] = 0x00AF9B000000FFFFull; /* 64-bit code, DPL 0 */
	gdt[SEL_CODE / 8] = gdt[SEL_CODE_ABI / 8];
	gdt[SEL_DATA / 8] = 0x00CF93000000FFFFull; /* flat 4 GiB data, DPL 0 */
	/* 64-bit TSS (two slots), base BOOT_TSS, limit 0x67, busy. */
	gdt[SEL_TSS / 8] =
	    0x00008B0000000067ull | ((BOOT_TSS & 0xFFFFFF) << 16) | ((BOOT_TSS >> 24) & 0xFF) << 56;
	gdt[SEL_TSS / 8 + 1] = BOOT_TSS >> 32;
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, bool code)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xFFFFFFFF,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = code ? 0 : 1,
	    .s = 1,
	    .l = code ? 1 : 0,
	    .g = 1,
	};
}

static int setup_vcpu0(struct hv_vm *vm, const struct kvm_regs *regs)
{
	struct hv_vcpu *v = &vm->vcpus[0];
	struct kvm_sregs sr;
	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	sr.cs = seg(SEL_CODE, 0xB, true);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = seg(SEL_DATA, 0x3, false);
	sr.tr = (struct kvm_segment){
	    .base = BOOT_TSS, .limit = 0x67, .selector = SEL_TSS, .type = 0xB, .present = 1};
	sr.ldt = (struct kvm_segment){.selector = 0, .type = 0x2, .present = 1, .limit = 0xFFFF};
	sr.gdt.base = BOOT_GDT;
	sr.gdt.limit = (SEL_TSS / 8 + 2) * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sr.cr3 = BOOT_PML4;
	sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sr.efer = EFER_LME | EFER_LMA;
	int rc = hv_vcpu_set_sregs(v, &sr);
	return rc ? rc : hv_vcpu_set_regs(v, regs);
}

int hv_boot_long_mode(struct hv_vm *vm, uint64_t map_top, const struct kvm_regs *regs)
{
	int rc = build_page_tables(vm, map_top);
	if (rc) {
		GW_ERR(vm->name, "cannot build page tables for %llu bytes of RAM",
		       (unsigned long long)vm->ram_size);
		return rc;
	}
	build_gdt(vm);
	memset(hv_vm_gpa_to_hva(vm, BOOT_TSS, 0x68), 0, 0x68);
	rc = setup_vcpu0(vm, regs);
	if (rc)
		GW_ERR(vm->name, "KVM refused the boot register state: %s", strerror(-rc));
	return rc;
}

int hv_vm_boot_elf(struct hv_vm *vm, const char *path, const char *cmdline)
{
	uint8_t *img = NULL;
	size_t len = 0;
	const char *why = NULL;
	uint64_t entry = 0, image_end = 0;
	if (!cmdline)
		cmdline = "";
	if (strlen(cmdline) >= BOOT_CMDLINE_MAX) {
		GW_ERR(vm->name, "command line longer than %d bytes", BOOT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	int rc = hv_boot_read_file(path, MAX_GUEST_FILE, &img, &len);
	if (rc) {
		GW_ERR(vm->name, "cannot read guest %s: %s", path,
		       rc == -ENOEXEC ? "not a regular file" : strerror(-rc));
		return rc;
	}
	rc = hv_boot_load_elf(vm, img, len, &entry, &image_end, &why);
	free(img);
	if (rc) {
		GW_ERR(vm->name, "guest %s is not bootable: %s", path, why);
		return rc;
	}
	char *cl = hv_vm_gpa_to_hva(vm, BOOT_CMDLINE, BOOT_CMDLINE_MAX);
	snprintf(cl, BOOT_CMDLINE_MAX, "%s", cmdline);
	struct gw_boot_info *bi = hv_vm_gpa_to_hva(vm, BOOT_INFO, sizeof(*bi));
	*bi = (struct gw_boot_info){
	    .magic = GW_BOOT_INFO_MAGIC,
	    .version = GW_BOOT_INFO_VERSION,
	    .ncpus = vm->ncpus,
	    .ram_size = vm->ram_size,
	    .ram_low_top = vm->ram_low,
	    .cmdline_gpa = BOOT_CMDLINE,
	    .ecam_base = HV_ECAM_BASE,
	    .ecam_buses = HV_ECAM_BUSES,
	    .serial_port = 0x3F8,
	    .free_gpa = (image_end + HV_PAGE_SIZE - 1) & ~(HV_PAGE_SIZE - 1),
	};
	struct kvm_regs regs = {
	    .rip = entry,
	    .rdi = BOOT_INFO,
	    .rsp = HV_GUEST_LOAD, /* the guest switches to its own stack at once */
	    .rflags = 0x2,
	};
	return hv_boot_long_mode(vm, HV_RAM_HIGH_BASE + (vm->ram_size - vm->ram_low), &regs);
}
