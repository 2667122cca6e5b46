/* SPDX-License-Identifier: Apache-2.0 */
/* The Linux/x86 boot protocol for a 64-bit direct boot (Documentation/arch/x86/boot.rst). */
#include "linux_boot.h"

#include "godwit/hv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The setup header, at these offsets of the image and of the zero page alike. */
#define HDR_START	    0x1F1u
#define OFF_SETUP_SECTS	    0x1F1u /* u8 */
#define OFF_SYSSIZE	    0x1F4u /* u32, 16-byte units */
#define OFF_BOOT_FLAG	    0x1FEu /* u16, 0xAA55 */
#define OFF_JUMP	    0x200u /* u16: EB, then the header's length past 0x202 */
#define OFF_HEADER	    0x202u /* u32, "HdrS" */
#define OFF_VERSION	    0x206u /* u16 */
#define OFF_TYPE_OF_LOADER  0x210u /* u8 */
#define OFF_LOADFLAGS	    0x211u /* u8 */
#define OFF_CODE32_START    0x214u /* u32 */
#define OFF_RAMDISK_IMAGE   0x218u /* u32 */
#define OFF_RAMDISK_SIZE    0x21Cu /* u32 */
#define OFF_HEAP_END_PTR    0x224u /* u16 */
#define OFF_CMD_LINE_PTR    0x228u /* u32 */
#define OFF_INITRD_ADDR_MAX 0x22Cu /* u32 */
#define OFF_KERNEL_ALIGN    0x230u /* u32 */
#define OFF_RELOCATABLE	    0x234u /* u8 */
#define OFF_XLOADFLAGS	    0x236u /* u16 */
#define OFF_CMDLINE_SIZE    0x238u /* u32 */
#define OFF_PAYLOAD_OFFSET  0x248u /* u32, from the protected-mode kernel's start */
#define OFF_PAYLOAD_LENGTH  0x24Cu /* u32 */
#define OFF_PREF_ADDRESS    0x258u /* u64 */
#define OFF_INIT_SIZE	    0x260u /* u32 */
#define HDR_MIN_END	    0x264u /* protocol 2.12 has every field above */
#define HDR_MAX_END	    0x290u /* where struct boot_params' next member begins */

#define HDRS_MAGIC	     0x53726448u /* "HdrS" */
#define LOADED_HIGH	     0x01u
#define CAN_USE_HEAP	     0x80u
#define XLF_KERNEL_64	     0x0001u
#define LOADER_UNDEFINED     0xFFu
#define PROTOCOL_MIN	     0x020Cu /* xloadflags, and so the 64-bit entry flag */
#define ENTRY64_OFFSET	     0x200u
#define HEAP_END	     0xFE00u
#define COMMAND_LINE_MAX_LEN 0xFFFFu

/* Zero page fields outside the setup header. */
#define ZP_ACPI_RSDP_ADDR    0x070u /* u64 */
#define ZP_EXT_RAMDISK_IMAGE 0x0C0u /* u32 */
#define ZP_EXT_RAMDISK_SIZE  0x0C4u /* u32 */
#define ZP_EXT_CMD_LINE_PTR  0x0C8u /* u32 */
#define ZP_E820_ENTRIES	     0x1E8u /* u8 */
#define ZP_E820_TABLE	     0x2D0u /* 20 bytes an entry */
#define E820_ENTRY_SIZE	     20u

/* Placement below 1 MiB, clear of the VMM's GDT and page tables (boot.c: 0x1000-0x8FFF for the
 * first 4 GiB a Linux guest has mapped at its entry). */
#define ZERO_PAGE_GPA 0x10000ull
#define CMDLINE_GPA   0x20000ull
#define LOW_RAM_END   0x9FC00ull /* then the EBDA */
#define BIOS_AREA     0xF0000ull /* the last 64 KiB below 1 MiB: room for ACPI tables */

static uint16_t get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return (uint32_t)get16(p, off) | (uint32_t)get16(p, off + 2) << 16;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return (uint64_t)get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

static int refuse(int rc, char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(int rc, char *why, size_t n, const char *fmt, ...)
{
	if (why && n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int hv_bzimage_parse(const void *img, size_t len, struct hv_bzimage *out, char *why, size_t n)
{
	const uint8_t *p = img;
	memset(out, 0, sizeof(*out));
	if (len < 1024)
		return refuse(-ENOEXEC, why, n, "%zu bytes is too short for a bzImage", len);
	if (get16(p, OFF_BOOT_FLAG) != 0xAA55 || get32(p, OFF_HEADER) != HDRS_MAGIC)
		return refuse(-ENOEXEC, why, n,
			      "not a Linux bzImage (no boot flag 0xAA55 and \"HdrS\" header)");
	out->version = get16(p, OFF_VERSION);
	if (out->version < PROTOCOL_MIN)
		return refuse(-ENOEXEC, why, n,
			      "boot protocol %u.%02u is too old: godwit needs 2.12 or later",
			      out->version >> 8, out->version & 0xFF);
	unsigned sects = p[OFF_SETUP_SECTS] ? p[OFF_SETUP_SECTS] : 4;
	out->setup_len = (sects + 1) * 512u;
	out->hdr_end = OFF_HEADER + p[OFF_JUMP + 1];
	if (p[OFF_JUMP] != 0xEB || out->hdr_end < HDR_MIN_END || out->hdr_end > HDR_MAX_END ||
	    out->hdr_end > out->setup_len)
		return refuse(-ENOEXEC, why, n,
			      "the setup header's length (%zu bytes) makes no sense",
			      out->hdr_end - HDR_START);
	if (out->setup_len >= len)
		return refuse(-ENOEXEC, why, n,
			      "truncated: the image ends (%zu bytes) inside its %zu-byte setup",
			      len, out->setup_len);
	out->kernel_off = out->setup_len;
	out->kernel_len = len - out->setup_len;
	uint64_t syssize = (uint64_t)get32(p, OFF_SYSSIZE) * 16u;
	if (syssize > out->kernel_len)
		return refuse(-ENOEXEC, why, n,
			      "truncated: the kernel is %llu bytes, the image holds %zu of them",
			      (unsigned long long)syssize, out->kernel_len);
	if (!(p[OFF_LOADFLAGS] & LOADED_HIGH))
		return refuse(-ENOEXEC, why, n,
			      "a zImage (loaded low): godwit boots bzImages only");
	out->xloadflags = get16(p, OFF_XLOADFLAGS);
	if (!(out->xloadflags & XLF_KERNEL_64))
		return refuse(-ENOEXEC, why, n,
			      "the kernel has no 64-bit entry point (a 32-bit kernel?)");
	out->pref_address = get64(p, OFF_PREF_ADDRESS);
	out->kernel_alignment = get32(p, OFF_KERNEL_ALIGN);
	out->relocatable = p[OFF_RELOCATABLE] != 0;
	out->init_size = get32(p, OFF_INIT_SIZE);
	out->cmdline_size = get32(p, OFF_CMDLINE_SIZE);
	out->initrd_addr_max = get32(p, OFF_INITRD_ADDR_MAX);
	if (out->kernel_alignment & (out->kernel_alignment - 1))
		return refuse(-ENOEXEC, why, n, "kernel alignment %#x is not a power of two",
			      out->kernel_alignment);
	if (out->init_size < out->kernel_len)
		out->init_size = (uint32_t)out->kernel_len; /* never less than what is loaded */
	return 0;
}

int hv_bzimage_payload(const void *img, size_t len, const struct hv_bzimage *bz, size_t *off,
		       size_t *plen)
{
	const uint8_t *p = img;
	uint64_t o = (uint64_t)bz->kernel_off + get32(p, OFF_PAYLOAD_OFFSET);
	uint64_t n = get32(p, OFF_PAYLOAD_LENGTH);
	if (n == 0 || o > len || n > len - o || o + n > bz->kernel_off + bz->kernel_len)
		return -ENOEXEC;
	*off = (size_t)o;
	*plen = (size_t)n;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a ? (v + a - 1) & ~(a - 1) : v;
}

static bool fits(uint64_t base, uint64_t len, uint64_t top)
{
	return base <= top && len <= top - base;
}

int hv_linux_place(const struct hv_bzimage *bz, uint64_t ram_low_top, size_t cmdline_len,
		   uint64_t initrd_len, struct hv_linux_layout *out, char *why, size_t n)
{
	memset(out, 0, sizeof(*out));
	size_t cmd_max =
	    bz->cmdline_size < COMMAND_LINE_MAX_LEN ? bz->cmdline_size : COMMAND_LINE_MAX_LEN;
	if (cmdline_len > cmd_max)
		return refuse(-E2BIG, why, n,
			      "the command line is %zu bytes; this kernel takes at most %zu",
			      cmdline_len, cmd_max);
	out->zero_page = ZERO_PAGE_GPA;
	out->cmdline = CMDLINE_GPA;
	uint64_t align = bz->kernel_alignment ? bz->kernel_alignment : HV_MEM_ALIGN;
	uint64_t at = bz->pref_address ? bz->pref_address : HV_GUEST_LOAD;
	if (at % align || !fits(at, bz->init_size, ram_low_top)) {
		if (!bz->relocatable)
			return refuse(
			    -E2BIG, why, n,
			    "the kernel must be loaded at %#llx and needs %u MiB from there; "
			    "the VM has %llu MiB of low RAM",
			    (unsigned long long)at, (bz->init_size + 0xFFFFFu) >> 20,
			    (unsigned long long)(ram_low_top >> 20));
		at = align_up(HV_GUEST_LOAD, align); /* relocatable: as low as it may go */
	}
	if (!fits(at, bz->init_size, ram_low_top))
		return refuse(-E2BIG, why, n,
			      "the kernel needs %u MiB of RAM from %#llx to start; the VM has %llu "
			      "MiB below 4 GiB",
			      (bz->init_size + 0xFFFFFu) >> 20, (unsigned long long)at,
			      (unsigned long long)(ram_low_top >> 20));
	out->kernel = at;
	out->entry = at + ENTRY64_OFFSET;
	if (!initrd_len)
		return 0;
	uint64_t floor = align_up(at + bz->init_size, HV_PAGE_SIZE);
	uint64_t top = ram_low_top;
	if (bz->initrd_addr_max && (uint64_t)bz->initrd_addr_max + 1 < top)
		top = (uint64_t)bz->initrd_addr_max + 1;
	if (initrd_len > top || ((top - initrd_len) & ~(HV_PAGE_SIZE - 1)) < floor)
		return refuse(-E2BIG, why, n,
			      "the initrd (%llu MiB) does not fit between the kernel's end at %llu "
			      "MiB and %llu MiB; give the VM more memory",
			      (unsigned long long)((initrd_len + 0xFFFFF) >> 20),
			      (unsigned long long)(floor >> 20), (unsigned long long)(top >> 20));
	out->initrd = (top - initrd_len) & ~(HV_PAGE_SIZE - 1);
	out->initrd_len = initrd_len;
	return 0;
}

static unsigned add(struct hv_e820 *map, unsigned k, unsigned max, uint64_t addr, uint64_t size,
		    uint32_t type)
{
	if (k < max && size)
		map[k++] = (struct hv_e820){.addr = addr, .size = size, .type = type};
	return k;
}

unsigned hv_linux_e820(uint64_t ram_size, struct hv_e820 *map, unsigned max)
{
	uint64_t low = ram_size < HV_RAM_LOW_MAX ? ram_size : HV_RAM_LOW_MAX;
	unsigned k = 0;
	k = add(map, k, max, 0, LOW_RAM_END, HV_E820_RAM);
	k = add(map, k, max, LOW_RAM_END, 0xA0000 - LOW_RAM_END, HV_E820_RESERVED);
	k = add(map, k, max, BIOS_AREA, HV_GUEST_LOAD - BIOS_AREA, HV_E820_RESERVED);
	k = add(map, k, max, HV_GUEST_LOAD, low - HV_GUEST_LOAD, HV_E820_RAM);
	k = add(map, k, max, HV_ECAM_BASE, (uint64_t)HV_ECAM_BUSES << 20, HV_E820_RESERVED);
	if (ram_size > low)
		k = add(map, k, max, HV_RAM_HIGH_BASE, ram_size - low, HV_E820_RAM);
	return k;
}

int hv_linux_zero_page(const void *img, const struct hv_bzimage *bz,
		       const struct hv_linux_layout *l, const struct hv_e820 *map, unsigned nmap,
		       uint64_t rsdp, uint8_t out[HV_LINUX_ZERO_PAGE_SIZE])
{
	if (nmap > HV_LINUX_E820_MAX)
		return -EINVAL;
	memset(out, 0, HV_LINUX_ZERO_PAGE_SIZE);
	memcpy(out + HDR_START, (const uint8_t *)img + HDR_START, bz->hdr_end - HDR_START);
	out[OFF_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	out[OFF_LOADFLAGS] |= CAN_USE_HEAP;
	put16(out, OFF_HEAP_END_PTR, HEAP_END);
	put32(out, OFF_CODE32_START, (uint32_t)l->kernel);
	put32(out, OFF_CMD_LINE_PTR, (uint32_t)l->cmdline);
	put32(out, ZP_EXT_CMD_LINE_PTR, (uint32_t)(l->cmdline >> 32));
	put32(out, OFF_RAMDISK_IMAGE, (uint32_t)l->initrd);
	put32(out, ZP_EXT_RAMDISK_IMAGE, (uint32_t)(l->initrd >> 32));
	put32(out, OFF_RAMDISK_SIZE, (uint32_t)l->initrd_len);
	put32(out, ZP_EXT_RAMDISK_SIZE, (uint32_t)(l->initrd_len >> 32));
	put64(out, ZP_ACPI_RSDP_ADDR, rsdp);
	out[ZP_E820_ENTRIES] = (uint8_t)nmap;
	for (unsigned i = 0; i < nmap; i++) {
		size_t e = ZP_E820_TABLE + i * E820_ENTRY_SIZE;
		put64(out, e, map[i].addr);
		put64(out, e + 8, map[i].size);
		put32(out, e + 16, map[i].type);
	}
	return 0;
}
