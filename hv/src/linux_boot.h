/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Linux/x86 boot protocol (the kernel's Documentation/arch/x86/boot.rst), the parts a VMM
 * that boots a bzImage straight into its 64-bit entry needs: the setup header checked, the
 * pieces placed in guest RAM, the e820 map of godwit's guest-physical layout, and the zero
 * page (struct boot_params). Pure: no KVM, no files; the image is a buffer.
 */
#ifndef GODWIT_HV_LINUX_BOOT_H
#define GODWIT_HV_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_LINUX_ZERO_PAGE_SIZE 4096u
#define HV_LINUX_E820_MAX	128u /* entries the zero page holds */

/* What a bzImage's setup header says, checked. */
struct hv_bzimage {
	uint16_t version;  /* boot protocol, 0x020C or later */
	size_t setup_len;  /* real-mode setup: (setup_sects + 1) * 512 bytes */
	size_t hdr_end;	   /* the setup header is [0x1F1, hdr_end) of the image */
	size_t kernel_off; /* the protected-mode kernel: image[kernel_off .. +kernel_len) */
	size_t kernel_len;
	uint64_t pref_address; /* where it prefers to be loaded */
	uint32_t kernel_alignment;
	bool relocatable;
	uint32_t init_size;	  /* bytes from the load address it needs before it runs */
	uint32_t cmdline_size;	  /* longest command line, without its NUL */
	uint32_t initrd_addr_max; /* highest address of the initrd's last byte */
	uint16_t xloadflags;
};

/* The compressed kernel inside a bzImage (protocol 2.08+): [off, off + len) of the image, or
 * -ENOEXEC when the header's payload fields point outside it. */
int hv_bzimage_payload(const void *img, size_t len, const struct hv_bzimage *bz, size_t *off,
		       size_t *plen);

/* A bzImage's payload decompressed on the host (XZ, the Debian kernels' format)
 * into the vmlinux ELF it holds, cached by the image's checksum under cache_dir (NULL: the
 * default, $GODWIT_CACHE_DIR or $XDG_CACHE_HOME/godwit or ~/.cache/godwit). 0 with a malloc'd
 * *out, -ENOTSUP (another format), -EBADMSG (corrupt), -ENOMEM. */
int hv_boot_unpack(const uint8_t *payload, size_t len, const char *cache_dir, uint8_t **out,
		   size_t *out_len, bool *cached);

/* 0, or -ENOEXEC (not a bzImage, or one godwit cannot boot: protocol before 2.12, no 64-bit
 * entry, a header that points outside the image) with the reason in why. */
int hv_bzimage_parse(const void *img, size_t len, struct hv_bzimage *out, char *why, size_t n);

/* Where the pieces go in guest RAM (guest-physical addresses). */
struct hv_linux_layout {
	uint64_t zero_page;
	uint64_t cmdline; /* NUL-terminated */
	uint64_t kernel;  /* the protected-mode kernel's load address */
	uint64_t entry;	  /* the 64-bit entry: kernel + 0x200 */
	uint64_t initrd;  /* 0 when there is none */
	uint64_t initrd_len;
};

/*
 * Places the kernel at its preferred address (aligned), the zero page and the command line
 * below 1 MiB, and the initrd as high in low RAM as the kernel allows, above the kernel's
 * init_size. ram_low_top: RAM is [0, ram_low_top) below 4 GiB. -E2BIG with the reason when the
 * command line is longer than the kernel takes, the kernel does not fit in RAM, or the initrd
 * does not fit between the kernel and its highest address.
 */
int hv_linux_place(const struct hv_bzimage *bz, uint64_t ram_low_top, size_t cmdline_len,
		   uint64_t initrd_len, struct hv_linux_layout *out, char *why, size_t n);

/* e820 types. */
enum {
	HV_E820_RAM = 1,
	HV_E820_RESERVED = 2,
	HV_E820_ACPI = 3,
};

struct hv_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/*
 * godwit's guest-physical layout as an e820 map (docs/guest-abi.md): low RAM without the
 * legacy hole [0x9FC00, 0x100000) (reserved at its top 64 KiB, where ACPI tables may live),
 * the ECAM reserved, the PCI BAR window left as a hole for the host bridge's resources, and RAM
 * above 4 GiB. Returns the entries written to map (at most max).
 */
unsigned hv_linux_e820(uint64_t ram_size, struct hv_e820 *map, unsigned max);

/*
 * The zero page: the image's setup header copied in, the loader's fields set (loader type
 * "undefined", heap, command line, initrd), the e820 map and the ACPI RSDP's address (0:
 * none). -EINVAL for more than HV_LINUX_E820_MAX entries.
 */
int hv_linux_zero_page(const void *img, const struct hv_bzimage *bz,
		       const struct hv_linux_layout *l, const struct hv_e820 *map, unsigned nmap,
		       uint64_t rsdp, uint8_t out[HV_LINUX_ZERO_PAGE_SIZE]);

#endif
