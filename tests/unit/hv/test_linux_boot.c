/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Linux/x86 boot protocol (hv/src/linux_boot.c): made-up bzImages with
 * every kind of bad header, placement in small and large VMs, the e820 map and the zero page;
 * and the kernels this machine has in /boot, which must parse. */
#include "godwit/hv.h"
#include "linux_boot.h"

#include "../../lib/gw_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETUP_SECTS 27u
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512u)
#define KERNEL_LEN  (3u << 20)
#define IMG_LEN	    (SETUP_LEN + KERNEL_LEN)

static uint8_t img[IMG_LEN];

static void p16(size_t off, uint16_t v)
{
	img[off] = (uint8_t)v;
	img[off + 1] = (uint8_t)(v >> 8);
}
static void p32(size_t off, uint32_t v)
{
	p16(off, (uint16_t)v);
	p16(off + 2, (uint16_t)(v >> 16));
}
static void p64(size_t off, uint64_t v)
{
	p32(off, (uint32_t)v);
	p32(off + 4, (uint32_t)(v >> 32));
}
static uint32_t g32(const uint8_t *p, size_t off)
{
	return (uint32_t)(p[off] | p[off + 1] << 8 | p[off + 2] << 16 | (uint32_t)p[off + 3] << 24);
}
static uint64_t g64(const uint8_t *p, size_t off)
{
	return g32(p, off) | (uint64_t)g32(p, off + 4) << 32;
}

/* A bzImage as a 6.x x86_64 kernel's header looks (protocol 2.15). */
static void make_image(void)
{
	memset(img, 0, sizeof(img));
	img[0x1F1] = SETUP_SECTS;
	p32(0x1F4, KERNEL_LEN / 16);
	p16(0x1FE, 0xAA55);
	img[0x200] = 0xEB;
	img[0x201] = 0x6A; /* header ends at 0x26C */
	p32(0x202, 0x53726448);
	p16(0x206, 0x020F);
	img[0x211] = 0x01;		  /* LOADED_HIGH */
	p32(0x22C, 0x7FFFFFFF);		  /* initrd_addr_max */
	p32(0x230, 0x200000);		  /* kernel_alignment */
	img[0x234] = 1;			  /* relocatable */
	p16(0x236, 0x7F);		  /* XLF_KERNEL_64 and more */
	p32(0x238, 2047);		  /* cmdline_size */
	p64(0x258, 0x1000000);		  /* pref_address */
	p32(0x260, (uint32_t)(24 << 20)); /* init_size */
}

static int parse(struct hv_bzimage *bz, char *why)
{
	return hv_bzimage_parse(img, sizeof(img), bz, why, 200);
}

static void test_parse(void)
{
	make_image();
	struct hv_bzimage bz;
	char why[200] = "";
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(bz.version, 0x020F);
	CU_ASSERT_EQUAL(bz.setup_len, SETUP_LEN);
	CU_ASSERT_EQUAL(bz.kernel_off, SETUP_LEN);
	CU_ASSERT_EQUAL(bz.kernel_len, KERNEL_LEN);
	CU_ASSERT_EQUAL(bz.hdr_end, 0x26C);
	CU_ASSERT_EQUAL(bz.pref_address, 0x1000000);
	CU_ASSERT_EQUAL(bz.kernel_alignment, 0x200000);
	CU_ASSERT_TRUE(bz.relocatable);
	CU_ASSERT_EQUAL(bz.init_size, 24u << 20);
	CU_ASSERT_EQUAL(bz.cmdline_size, 2047);
	img[0x1F1] = 0; /* 0 setup sectors means 4 */
	CU_ASSERT_EQUAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(bz.setup_len, 5 * 512u);
}

static void expect_refused(const char *what, const char *needle)
{
	struct hv_bzimage bz;
	char why[200] = "";
	CU_ASSERT_EQUAL(parse(&bz, why), -ENOEXEC);
	if (!strstr(why, needle)) {
		printf("\n    %s: \"%s\" lacks \"%s\"", what, why, needle);
		CU_FAIL("reason");
	}
}

static void test_bad_images(void)
{
	struct hv_bzimage bz;
	char why[200] = "";
	make_image();
	CU_ASSERT_EQUAL(hv_bzimage_parse(img, 600, &bz, why, sizeof(why)), -ENOEXEC);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "too short"));
	CU_ASSERT_EQUAL(hv_bzimage_parse(img, SETUP_LEN, &bz, why, sizeof(why)), -ENOEXEC);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "truncated"));
	CU_ASSERT_EQUAL(hv_bzimage_parse(img, SETUP_LEN + KERNEL_LEN / 2, &bz, why, sizeof(why)),
			-ENOEXEC);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "truncated"));
	make_image();
	p16(0x1FE, 0);
	expect_refused("no boot flag", "not a Linux bzImage");
	make_image();
	p32(0x202, 0x12345678);
	expect_refused("no HdrS", "not a Linux bzImage");
	make_image();
	p16(0x206, 0x020B);
	expect_refused("old protocol", "too old");
	make_image();
	p16(0x236, 0);
	expect_refused("32-bit kernel", "64-bit entry");
	make_image();
	img[0x211] = 0;
	expect_refused("zImage", "zImage");
	make_image();
	img[0x201] = 0xF0; /* past struct boot_params' header room */
	expect_refused("header too long", "setup header");
	make_image();
	img[0x201] = 0x40; /* ends before the 2.12 fields */
	expect_refused("header too short", "setup header");
	make_image();
	img[0x1F1] = 0xFF;
	p32(0x1F4, 0);
	CU_ASSERT_EQUAL(hv_bzimage_parse(img, 0x100 * 512, &bz, why, sizeof(why)), -ENOEXEC);
	make_image();
	p32(0x230, 0x300000);
	expect_refused("alignment", "power of two");
}

static void test_place(void)
{
	make_image();
	struct hv_bzimage bz;
	char why[200] = "";
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	struct hv_linux_layout l;
	/* 256 MiB: the preferred address, the initrd at the top of RAM, page-aligned. */
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 256u << 20, 100, 5000000, &l, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(l.kernel, 0x1000000);
	CU_ASSERT_EQUAL(l.entry, 0x1000200);
	CU_ASSERT_EQUAL(l.initrd_len, 5000000);
	CU_ASSERT_EQUAL(l.initrd % 4096, 0);
	CU_ASSERT(l.initrd + l.initrd_len <= (256u << 20));
	CU_ASSERT(l.initrd >= l.kernel + bz.init_size);
	CU_ASSERT(l.zero_page < 0x100000 && l.cmdline < 0x100000);
	CU_ASSERT(l.cmdline >= l.zero_page + 4096 || l.cmdline + 2048 <= l.zero_page);
	/* initrd_addr_max caps it below the top of RAM. */
	p32(0x22C, 0x3FFFFFF); /* 64 MiB - 1 */
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 256u << 20, 0, 1u << 20, &l, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(l.initrd, (64u << 20) - (1u << 20));
	/* No initrd: none placed. */
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 256u << 20, 0, 0, &l, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(l.initrd, 0);
	/* 32 MiB: 16 + 24 does not fit; a relocatable kernel goes as low as its alignment. */
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 32u << 20, 0, 0, &l, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(l.kernel, 0x200000);
	/* ... which a fixed one cannot. */
	img[0x234] = 0;
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 32u << 20, 0, 0, &l, why, sizeof(why)), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "must be loaded at 0x1000000"));
	/* A kernel bigger than RAM. */
	img[0x234] = 1;
	p32(0x260, (uint32_t)(40 << 20));
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 32u << 20, 0, 0, &l, why, sizeof(why)), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "needs 40 MiB"));
	/* An initrd that does not fit above the kernel. */
	make_image();
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 64u << 20, 0, 30u << 20, &l, why, sizeof(why)), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "initrd (30 MiB) does not fit"));
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 64u << 20, 0, ~0ull, &l, why, sizeof(why)), -E2BIG);
	/* A command line longer than the kernel takes. */
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 256u << 20, 2048, 0, &l, why, sizeof(why)), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most 2047"));
	CU_ASSERT_EQUAL(hv_linux_place(&bz, 256u << 20, 2047, 0, &l, why, sizeof(why)), 0);
}

static void check_map(uint64_t ram, unsigned expect_n)
{
	struct hv_e820 map[16];
	unsigned n = hv_linux_e820(ram, map, 16);
	CU_ASSERT_EQUAL(n, expect_n);
	uint64_t ram_seen = 0;
	bool ecam = false;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			CU_ASSERT(map[i].addr >= map[i - 1].addr + map[i - 1].size); /* sorted */
		if (map[i].type == HV_E820_RAM) {
			ram_seen += map[i].size;
			/* No RAM in the PCI window or the ECAM. */
			CU_ASSERT(map[i].addr + map[i].size <= HV_MMIO_BASE ||
				  map[i].addr >= HV_RAM_HIGH_BASE);
		}
		if (map[i].type == HV_E820_RESERVED && map[i].addr == HV_ECAM_BASE)
			ecam = map[i].size == (uint64_t)HV_ECAM_BUSES << 20;
	}
	CU_ASSERT_TRUE(ecam);
	/* All of RAM but the legacy hole. */
	CU_ASSERT_EQUAL(ram_seen, ram - (0x100000 - 0x9FC00));
	CU_ASSERT_EQUAL(hv_linux_e820(ram, map, 2), 2); /* never past max */
}

static void test_e820(void)
{
	check_map(256ull << 20, 5);
	check_map(3ull << 30, 5);
	check_map(5ull << 30, 6);
	struct hv_e820 map[8];
	unsigned n = hv_linux_e820(5ull << 30, map, 8);
	CU_ASSERT_EQUAL(map[n - 1].addr, HV_RAM_HIGH_BASE);
	CU_ASSERT_EQUAL(map[n - 1].size, (5ull << 30) - HV_RAM_LOW_MAX);
}

static void test_zero_page(void)
{
	make_image();
	struct hv_bzimage bz;
	char why[200];
	CU_ASSERT_EQUAL_FATAL(parse(&bz, why), 0);
	struct hv_linux_layout l;
	CU_ASSERT_EQUAL_FATAL(hv_linux_place(&bz, 5ull << 30, 10, 1u << 20, &l, why, sizeof(why)),
			      0);
	struct hv_e820 map[8];
	unsigned n = hv_linux_e820(5ull << 30, map, 8);
	static uint8_t zp[HV_LINUX_ZERO_PAGE_SIZE];
	CU_ASSERT_EQUAL_FATAL(hv_linux_zero_page(img, &bz, &l, map, n, 0xF0000, zp), 0);
	CU_ASSERT_EQUAL(memcmp(zp + 0x202, img + 0x202, 4), 0); /* HdrS copied */
	CU_ASSERT_EQUAL(zp[0x1F1], SETUP_SECTS);
	CU_ASSERT_EQUAL(zp[0x210], 0xFF);	 /* loader: undefined */
	CU_ASSERT_EQUAL(zp[0x211] & 0x81, 0x81); /* LOADED_HIGH kept, CAN_USE_HEAP set */
	CU_ASSERT_EQUAL(g32(zp, 0x228), l.cmdline);
	CU_ASSERT_EQUAL(g32(zp, 0x218), (uint32_t)l.initrd);
	CU_ASSERT_EQUAL(g32(zp, 0x21C), 1u << 20);
	CU_ASSERT_EQUAL(g64(zp, 0x070), 0xF0000);
	CU_ASSERT_EQUAL(zp[0x1E8], n);
	for (unsigned i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(g64(zp, 0x2D0 + 20 * i), map[i].addr);
		CU_ASSERT_EQUAL(g64(zp, 0x2D0 + 20 * i + 8), map[i].size);
		CU_ASSERT_EQUAL(g32(zp, 0x2D0 + 20 * i + 16), map[i].type);
	}
	CU_ASSERT_EQUAL(zp[0x26C], 0); /* nothing past the header was copied */
	struct hv_e820 big[HV_LINUX_E820_MAX + 1];
	memset(big, 0, sizeof(big));
	CU_ASSERT_EQUAL(hv_linux_zero_page(img, &bz, &l, big, HV_LINUX_E820_MAX + 1, 0, zp),
			-EINVAL);
}

/* A real kernel's payload unpacked on the host into the vmlinux ELF it holds (linked at the
 * bzImage's preferred address), then found in the cache; a damaged payload is refused. */
static void unpack_real(uint8_t *img, size_t len, const struct hv_bzimage *bz)
{
	size_t off, plen, ulen;
	CU_ASSERT_EQUAL_FATAL(hv_bzimage_payload(img, len, bz, &off, &plen), 0);
	char dir[] = "/tmp/gw-unpack-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	uint8_t *elf = NULL;
	bool cached = true;
	int rc = hv_boot_unpack(img + off, plen, dir, &elf, &ulen, &cached);
	if (rc == -ENOTSUP) {
		printf(" (payload not XZ: the guest decompresses it)");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_FALSE(cached);
	CU_ASSERT_EQUAL(memcmp(elf,
			       "\x7f"
			       "ELF\x02\x01",
			       6),
			0); /* ELF64, little-endian */
	uint64_t entry;
	memcpy(&entry, elf + 24, 8);
	CU_ASSERT_EQUAL(entry, bz->pref_address); /* ENTRY(phys_startup_64) */
	printf(", unpacked on the host: %zu MiB, entry %#llx", ulen >> 20,
	       (unsigned long long)entry);
	uint8_t *again = NULL;
	size_t alen = 0;
	CU_ASSERT_EQUAL(hv_boot_unpack(img + off, plen, dir, &again, &alen, &cached), 0);
	CU_ASSERT_TRUE(cached);
	CU_ASSERT_TRUE(alen == ulen && again && memcmp(again, elf, ulen) == 0);
	free(again);
	free(elf);
	img[off + plen / 2] ^= 0x55; /* a flipped byte: LZMA's own check refuses it */
	CU_ASSERT_EQUAL(hv_boot_unpack(img + off, plen, dir, &again, &alen, &cached), -EBADMSG);
	img[off + plen / 2] ^= 0x55;
	CU_ASSERT_EQUAL(hv_boot_unpack(img, 64, dir, &again, &alen, &cached), -ENOTSUP);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The Debian kernels scripts/install-deps.sh installs (the ones [3 of 8] boots) must parse
 * and place in a 256 MiB VM. */
static void test_real_kernels(void)
{
	DIR *d = opendir("/boot");
	unsigned seen = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "vmlinuz-", 8) != 0)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "/boot/%s", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) || st.st_size < 1024 || st.st_size > (256 << 20)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		uint8_t *buf = malloc((size_t)st.st_size);
		CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
		CU_ASSERT_EQUAL(read(fd, buf, (size_t)st.st_size), st.st_size);
		close(fd);
		struct hv_bzimage bz;
		char why[200] = "";
		int rc = hv_bzimage_parse(buf, (size_t)st.st_size, &bz, why, sizeof(why));
		printf("\n    %s: protocol %x, init_size %u MiB%s%s", e->d_name, bz.version,
		       bz.init_size >> 20, rc ? ": " : "", why);
		CU_ASSERT_EQUAL(rc, 0);
		struct hv_linux_layout l;
		if (rc == 0)
			CU_ASSERT_EQUAL(
			    hv_linux_place(&bz, 256u << 20, 100, 8u << 20, &l, why, sizeof(why)),
			    0);
		if (rc == 0)
			unpack_real(buf, (size_t)st.st_size, &bz);
		free(buf);
		seen++;
	}
	if (d)
		closedir(d);
	if (!seen)
		printf("\n    no /boot/vmlinuz-* on this machine: the made-up images above stand");
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"bzImage header", test_parse},
	    {"bad bzImages refused with a reason", test_bad_images},
	    {"placement in RAM", test_place},
	    {"e820 map", test_e820},
	    {"zero page", test_zero_page},
	    {"this machine's kernels", test_real_kernels},
	};
	return gw_test_run("linux_boot", cases, GW_TEST_COUNT(cases));
}
