/* SPDX-License-Identifier: Apache-2.0 */
/* Direct boot of a Linux bzImage at its 64-bit entry: the files read, the pieces placed
 * (linux_boot.c), the ACPI tables (acpi.c) and the zero page written, vCPU 0 in long mode. */
#include "acpi.h"
#include "hv_priv.h"
#include "linux_boot.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KERNEL_FILE (256ull << 20)
#define MAX_INITRD_FILE (HV_RAM_LOW_MAX)

static int read_piece(struct hv_vm *vm, const char *what, const char *path, size_t max,
		      uint8_t **out, size_t *len)
{
	int rc = hv_boot_read_file(path, max, out, len);
	if (rc == -E2BIG)
		GW_ERR(vm->name, "%s %s is larger than %zu MiB, more than godwit loads", what, path,
		       max >> 20);
	else if (rc == -ENOEXEC)
		GW_ERR(vm->name, "%s %s is not a regular file", what, path);
	else if (rc)
		GW_ERR(vm->name, "cannot read %s %s: %s", what, path, strerror(-rc));
	return rc;
}

/*
 * The kernel decompressed on the host (boot_unpack.c) and its vmlinux loaded where it was
 * linked, entered at its own 64-bit entry: the guest skips its decompressor (seconds of a
 * nested guest's boot; an unpacked kernel is cached for the next boot) and the relocation and
 * KASLR that come with it. Only where the kernel is placed at the address it was linked for;
 * otherwise, or for a payload godwit cannot unpack, the bzImage boots as it is (false).
 */
static bool load_unpacked(struct hv_vm *vm, const uint8_t *img, size_t len,
			  const struct hv_bzimage *bz, struct hv_linux_layout *l)
{
	size_t off, plen, ulen;
	uint8_t *elf = NULL;
	bool cached;
	if (getenv("GODWIT_NO_UNPACK") || l->kernel != bz->pref_address ||
	    hv_bzimage_payload(img, len, bz, &off, &plen))
		return false;
	int rc = hv_boot_unpack(img + off, plen, NULL, &elf, &ulen, &cached);
	if (rc) {
		GW_INFO(vm->name,
			"the kernel's payload is not unpacked on the host (%s): the guest "
			"decompresses it",
			rc == -ENOTSUP ? "not XZ" : strerror(-rc));
		return false;
	}
	uint64_t entry = 0, end = 0;
	const char *why = NULL;
	rc = hv_boot_load_elf(vm, elf, ulen, &entry, &end, &why);
	free(elf);
	if (rc || entry < l->kernel || end > l->kernel + bz->init_size) {
		GW_INFO(vm->name,
			"the unpacked kernel cannot be loaded as it is (%s): the guest "
			"decompresses it",
			why ? why : "outside its bzImage's init_size");
		return false;
	}
	GW_INFO(vm->name, "kernel unpacked on the host (%s), entered at %#llx",
		cached ? "from the cache" : "now, and cached", (unsigned long long)entry);
	l->entry = entry;
	return true;
}

static int place(struct hv_vm *vm, const struct hv_linux_boot_config *cfg, const uint8_t *img,
		 size_t len, const uint8_t *initrd, size_t initrd_len)
{
	char why[200];
	struct hv_bzimage bz;
	int rc = hv_bzimage_parse(img, len, &bz, why, sizeof(why));
	if (rc) {
		GW_ERR(vm->name, "kernel %s is not bootable: %s", cfg->kernel, why);
		return rc;
	}
	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	struct hv_linux_layout l;
	rc = hv_linux_place(&bz, vm->ram_low, strlen(cmdline), initrd_len, &l, why, sizeof(why));
	if (rc) {
		GW_ERR(vm->name, "cannot boot %s in %llu MiB: %s", cfg->kernel,
		       (unsigned long long)(vm->ram_size >> 20), why);
		return rc;
	}
	bool unpacked = load_unpacked(vm, img, len, &bz, &l);
	if (!unpacked)
		memcpy(hv_vm_gpa_to_hva(vm, l.kernel, bz.kernel_len), img + bz.kernel_off,
		       bz.kernel_len);
	if (initrd_len)
		memcpy(hv_vm_gpa_to_hva(vm, l.initrd, initrd_len), initrd, initrd_len);
	memcpy(hv_vm_gpa_to_hva(vm, l.cmdline, strlen(cmdline) + 1), cmdline, strlen(cmdline) + 1);

	uint64_t rsdp = 0;
	rc = hv_acpi_build(vm->ncpus, HV_ACPI_BASE,
			   hv_vm_gpa_to_hva(vm, HV_ACPI_BASE, HV_ACPI_MAX_SIZE), HV_ACPI_MAX_SIZE,
			   &rsdp);
	if (rc < 0) {
		GW_ERR(vm->name, "cannot build the ACPI tables: %s", strerror(-rc));
		return rc;
	}
	struct hv_e820 map[HV_LINUX_E820_MAX];
	unsigned nmap = hv_linux_e820(vm->ram_size, map, HV_LINUX_E820_MAX);
	rc = hv_linux_zero_page(img, &bz, &l, map, nmap, rsdp,
				hv_vm_gpa_to_hva(vm, l.zero_page, HV_LINUX_ZERO_PAGE_SIZE));
	if (rc)
		return rc;
	GW_INFO(vm->name,
		"Linux boot protocol %u.%02u: kernel at %#llx, initrd %llu KiB at %#llx, %u "
		"vCPUs",
		bz.version >> 8, bz.version & 0xFF, (unsigned long long)l.kernel,
		(unsigned long long)(initrd_len >> 10), (unsigned long long)l.initrd, vm->ncpus);
	/* The 64-bit entry: RSI holds the zero page; the stack below it is only for the first
	 * instructions, which set up the kernel's own. */
	struct kvm_regs regs = {
	    .rip = l.entry,
	    .rsi = l.zero_page,
	    .rsp = l.zero_page,
	    .rflags = 0x2,
	};
	return hv_boot_long_mode(vm, HV_RAM_HIGH_BASE, &regs);
}

int hv_vm_boot_linux(struct hv_vm *vm, const struct hv_linux_boot_config *cfg)
{
	uint8_t *img = NULL, *initrd = NULL;
	size_t len = 0, initrd_len = 0;
	int rc = read_piece(vm, "kernel", cfg->kernel, MAX_KERNEL_FILE, &img, &len);
	if (rc)
		return rc;
	if (cfg->initrd)
		rc = read_piece(vm, "initrd", cfg->initrd, MAX_INITRD_FILE, &initrd, &initrd_len);
	if (!rc)
		rc = place(vm, cfg, img, len, initrd, initrd_len);
	free(initrd);
	free(img);
	return rc;
}
