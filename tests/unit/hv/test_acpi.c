/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the ACPI tables (hv/src/acpi.c): structure and checksums of every table, and
 * iasl (acpica-tools, installed by scripts/install-deps.sh) disassembling each of them. */
#include "acpi.h"
#include "godwit/hv.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint8_t tabs[HV_ACPI_MAX_SIZE];

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
}
static uint64_t g64(const uint8_t *p)
{
	return g32(p) | (uint64_t)g32(p + 4) << 32;
}
static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* The table at guest address gpa, checked: inside what was built, its checksum right. */
static const uint8_t *table(uint64_t gpa, int used, const char *sig)
{
	CU_ASSERT_FATAL(gpa >= HV_ACPI_BASE && gpa + 36 <= HV_ACPI_BASE + (uint64_t)used);
	const uint8_t *t = tabs + (gpa - HV_ACPI_BASE);
	uint32_t len = g32(t + 4);
	CU_ASSERT_FATAL(gpa + len <= HV_ACPI_BASE + (uint64_t)used);
	CU_ASSERT_EQUAL(memcmp(t, sig, 4), 0);
	CU_ASSERT_EQUAL(sum(t, len), 0);
	return t;
}

struct built {
	int used;
	const uint8_t *rsdp, *xsdt, *fadt, *dsdt, *madt, *mcfg;
};

static void build(unsigned ncpus, struct built *b)
{
	uint64_t rsdp = 0;
	b->used = hv_acpi_build(ncpus, HV_ACPI_BASE, tabs, sizeof(tabs), &rsdp);
	CU_ASSERT_FATAL(b->used > 0);
	CU_ASSERT_EQUAL(rsdp, HV_ACPI_BASE);
	b->rsdp = tabs;
	CU_ASSERT_EQUAL(memcmp(b->rsdp, "RSD PTR ", 8), 0);
	CU_ASSERT_EQUAL(sum(b->rsdp, 20), 0);
	CU_ASSERT_EQUAL(sum(b->rsdp, 36), 0);
	CU_ASSERT_EQUAL(b->rsdp[15], 2);
	b->xsdt = table(g64(b->rsdp + 24), b->used, "XSDT");
	CU_ASSERT_EQUAL(g32(b->xsdt + 4), 36 + 3 * 8);
	b->fadt = table(g64(b->xsdt + 36), b->used, "FACP");
	b->madt = table(g64(b->xsdt + 44), b->used, "APIC");
	b->mcfg = table(g64(b->xsdt + 52), b->used, "MCFG");
	b->dsdt = table(g64(b->fadt + 140), b->used, "DSDT");
	CU_ASSERT_EQUAL(g32(b->fadt + 40), g64(b->fadt + 140)); /* DSDT and X_DSDT agree */
}

static void test_tables(void)
{
	for (unsigned n = 1; n <= 8; n++) {
		struct built b;
		build(n, &b);
		CU_ASSERT_EQUAL(g32(b.fadt + 4), 276);
		CU_ASSERT_TRUE(g32(b.fadt + 112) & (1u << 20)); /* hardware-reduced */
		/* A CMOS RTC: IAPC_BOOT_ARCH does not say "no CMOS RTC" (bit 5), CENTURY names
		 * its century register, and the DSDT has \_SB.RTC_ (PNP0B00) at 0x70-0x71 with
		 * no IRQ descriptor (the device raises none). */
		CU_ASSERT_EQUAL(b.fadt[109] | b.fadt[110] << 8, 1u << 2);
		CU_ASSERT_EQUAL(b.fadt[108], 0x32);
		const uint8_t rtc_crs[] = {0x08, '_',  'C',  'R',  'S',	 0x11, 0x0D, 0x0A, 0x0A,
					   0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x79};
		const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0B, 0x00};
		/* DeviceOp (5B 82), a one-byte PkgLength, the name, then the body. */
		const uint8_t *dev = memmem(b.dsdt, g32(b.dsdt + 4), "RTC_", 4);
		CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
		CU_ASSERT_FATAL(dev - b.dsdt >= 3 && dev[-3] == 0x5B && dev[-2] == 0x82);
		size_t dev_left = dev[-1] - 1u;
		CU_ASSERT_PTR_NOT_NULL(memmem(dev, dev_left, hid, sizeof(hid)));
		CU_ASSERT_PTR_NOT_NULL(memmem(dev, dev_left, rtc_crs, sizeof(rtc_crs)));
		/* Power-off and reset: sleep control/status and reset registers on godwit's ports
		 * (system I/O, one byte), the reset value, and \_S5_ in the DSDT with that type. */
		CU_ASSERT_TRUE(g32(b.fadt + 112) & (1u << 10));
		CU_ASSERT_EQUAL(b.fadt[116], 1);
		CU_ASSERT_EQUAL(g64(b.fadt + 120), HV_ACPI_RESET_PORT);
		CU_ASSERT_EQUAL(b.fadt[128], HV_ACPI_RESET_VALUE);
		CU_ASSERT_EQUAL(b.fadt[244], 1);
		CU_ASSERT_EQUAL(g64(b.fadt + 248), HV_ACPI_SLEEP_CTL_PORT);
		CU_ASSERT_EQUAL(b.fadt[256], 1);
		CU_ASSERT_EQUAL(g64(b.fadt + 260), HV_ACPI_SLEEP_STS_PORT);
		const uint8_t s5[] = {0x08, '_',  'S',	'5',  '_',  0x12,
				      0x06, 0x02, 0x0A, 0x05, 0x0A, 0x05};
		CU_ASSERT_PTR_NOT_NULL(memmem(b.dsdt, g32(b.dsdt + 4), s5, sizeof(s5)));
		/* MADT: n local APICs (ids 0..n-1, enabled), the I/O APIC, IRQ0 -> GSI 2. */
		uint32_t len = g32(b.madt + 4);
		CU_ASSERT_EQUAL(g32(b.madt + 36), HV_LAPIC_BASE);
		unsigned lapics = 0, ioapics = 0, overrides = 0;
		for (uint32_t off = 44; off < len; off += b.madt[off + 1]) {
			const uint8_t *e = b.madt + off;
			CU_ASSERT_FATAL(e[1] >= 2 && off + e[1] <= len);
			if (e[0] == 0) {
				CU_ASSERT_EQUAL(e[3], lapics);
				CU_ASSERT_EQUAL(g32(e + 4), 1);
				lapics++;
			} else if (e[0] == 1) {
				CU_ASSERT_EQUAL(g32(e + 4), HV_IOAPIC_BASE);
				ioapics++;
			} else if (e[0] == 2) {
				CU_ASSERT_EQUAL(e[3], 0);
				CU_ASSERT_EQUAL(g32(e + 4), 2);
				overrides++;
			}
		}
		CU_ASSERT_EQUAL(lapics, n);
		CU_ASSERT_EQUAL(ioapics, 1);
		CU_ASSERT_EQUAL(overrides, 1);
		/* MCFG: godwit's ECAM, segment 0, every bus it decodes. */
		CU_ASSERT_EQUAL(g32(b.mcfg + 4), 60);
		CU_ASSERT_EQUAL(g64(b.mcfg + 44), HV_ECAM_BASE);
		CU_ASSERT_EQUAL(b.mcfg[54], 0);
		CU_ASSERT_EQUAL(b.mcfg[55], HV_ECAM_BUSES - 1);
	}
	uint64_t r;
	CU_ASSERT_EQUAL(hv_acpi_build(0, HV_ACPI_BASE, tabs, sizeof(tabs), &r), -EINVAL);
	CU_ASSERT_EQUAL(hv_acpi_build(2, HV_ACPI_BASE, tabs, 100, &r), -ENOSPC);
}

/* Writes each table to its own file and has iasl disassemble it; returns the DSDT's text. */
static char *iasl_all(const struct built *b, const char *dir)
{
	const struct {
		const char *name;
		const uint8_t *t;
	} files[] = {{"facp", b->fadt},
		     {"apic", b->madt},
		     {"mcfg", b->mcfg},
		     {"dsdt", b->dsdt},
		     {"xsdt", b->xsdt}};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[512], cmd[1200];
		snprintf(path, sizeof(path), "%s/%s.dat", dir, files[i].name);
		FILE *f = fopen(path, "wb");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		CU_ASSERT_EQUAL(fwrite(files[i].t, 1, g32(files[i].t + 4), f), g32(files[i].t + 4));
		fclose(f);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >%s.log 2>&1", dir,
			 files[i].name, files[i].name);
		int rc = system(cmd);
		if (rc != 0)
			printf("\n    iasl -d %s.dat failed (%d); see %s/%s.log", files[i].name, rc,
			       dir, files[i].name);
		CU_ASSERT_EQUAL(rc, 0);
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
	FILE *f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	static char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	return text;
}

static void test_iasl(void)
{
	if (system("iasl -v >/dev/null 2>&1") != 0) {
		CU_FAIL("iasl not found: run scripts/install-deps.sh (acpica-tools)");
		return;
	}
	char dir[] = "/tmp/gw-acpi-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	struct built b;
	build(2, &b);
	const char *dsl = iasl_all(&b, dir);
	static const char *const want[] = {
	    "Device (PCI0)",
	    "EisaId (\"PNP0A08\")",
	    "EisaId (\"PNP0A03\")",
	    "WordBusNumber",
	    "DWordMemory",
	    "0xC0000000",
	    "0xDFFFFFFF",
	    "Name (_PRT, Package (0x80)",
	    "0x0007FFFF",
	    "Device (COM1)",
	    "EisaId (\"PNP0501\")",
	    "0x03F8",
	    "IRQNoFlags ()",
	    "Name (_S5, Package (0x02)",
	    "Device (ECAM)",
	    "EisaId (\"PNP0C02\")",
	    "Memory32Fixed (ReadWrite,",
	    "0x01000000,         // Address Length",
	    "Device (RTC)",
	    "EisaId (\"PNP0B00\")",
	    "IO (Decode16,\n                    0x0070,             // Range Minimum",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(dsl, want[i])) {
			printf("\n    the DSDT disassembly lacks \"%s\"", want[i]);
			CU_FAIL("DSDT content");
		}
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"tables: structure and checksums", test_tables},
	    {"iasl -d accepts every table", test_iasl},
	};
	return gw_test_run("acpi", cases, GW_TEST_COUNT(cases));
}
