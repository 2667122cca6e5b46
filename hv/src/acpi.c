/* SPDX-License-Identifier: Apache-2.0 */
/* ACPI tables and the DSDT's AML (ACPI 6.4: 5.2 tables, 20.2 AML encoding, 6.4 resources). */
#include "acpi.h"

#include "godwit/buf.h"
#include "godwit/hv.h"

#include <errno.h>
#include <string.h>

#define SDT_HEADER_LEN 36u
#define RSDP_LEN       36u
#define FADT_LEN       276u /* revision 6 */
#define OEM_ID	       "GODWIT"
#define OEM_TABLE_ID   "GODWITVM"
#define CREATOR_ID     "GDWT"

/* ---- tables ---- */

static void put8(struct gw_buf *b, uint8_t v)
{
	gw_buf_put(b, &v, 1);
}

static void put_str(struct gw_buf *b, const char *s, size_t n)
{
	char tmp[16];
	memset(tmp, ' ', sizeof(tmp));
	memcpy(tmp, s, strlen(s) < n ? strlen(s) : n);
	gw_buf_put(b, tmp, n);
}

/* Opens a system description table; sdt_end fills in its length and checksum. */
static size_t sdt_begin(struct gw_buf *b, const char *sig, uint8_t rev)
{
	size_t at = b->len;
	gw_buf_put(b, sig, 4);
	gw_buf_put_u32(b, 0); /* length */
	put8(b, rev);
	put8(b, 0); /* checksum */
	put_str(b, OEM_ID, 6);
	put_str(b, OEM_TABLE_ID, 8);
	gw_buf_put_u32(b, 1);
	gw_buf_put(b, CREATOR_ID, 4);
	gw_buf_put_u32(b, 1);
	return at;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Sets a table's checksum from the length in its header. */
static void sdt_checksum(uint8_t *t)
{
	uint32_t len;
	memcpy(&len, t + 4, 4);
	t[9] = 0;
	t[9] = (uint8_t)(0 - sum(t, len));
}

static void sdt_end(struct gw_buf *b, size_t at)
{
	if (b->err)
		return;
	uint32_t len = (uint32_t)(b->len - at);
	memcpy(b->data + at + 4, &len, 4);
	sdt_checksum(b->data + at);
}

static void align16(struct gw_buf *b)
{
	static const uint8_t zero[16];
	if (b->len % 16)
		gw_buf_put(b, zero, 16 - b->len % 16);
}

/* ---- AML (ACPI 6.4 section 20) ---- */

#define AML_NAME    0x08
#define AML_BYTE    0x0A
#define AML_WORD    0x0B
#define AML_DWORD   0x0C
#define AML_STRING  0x0D
#define AML_QWORD   0x0E
#define AML_SCOPE   0x10
#define AML_BUFFER  0x11
#define AML_PACKAGE 0x12
#define AML_EXT	    0x5B
#define AML_DEVICE  0x82 /* after AML_EXT */
#define AML_ROOT    0x5C
#define AML_ZERO    0x00
#define AML_ONE	    0x01
#define AML_END_TAG 0x79

static void aml_int(struct gw_buf *b, uint64_t v)
{
	if (v == 0) {
		put8(b, AML_ZERO);
	} else if (v == 1) {
		put8(b, AML_ONE);
	} else if (v <= 0xFF) {
		put8(b, AML_BYTE);
		put8(b, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		put8(b, AML_WORD);
		gw_buf_put_u16(b, (uint16_t)v);
	} else if (v <= 0xFFFFFFFFu) {
		put8(b, AML_DWORD);
		gw_buf_put_u32(b, (uint32_t)v);
	} else {
		put8(b, AML_QWORD);
		gw_buf_put_u64(b, v);
	}
}

/* A compressed EISA id ("PNP0A08") as the DWord AML stores it. */
static void aml_eisaid(struct gw_buf *b, const char *id)
{
	uint16_t letters = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	unsigned hex = 0;
	for (int i = 3; i < 7; i++)
		hex = hex << 4 | (unsigned)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
	put8(b, AML_DWORD);
	put8(b, (uint8_t)(letters >> 8));
	put8(b, (uint8_t)letters);
	put8(b, (uint8_t)(hex >> 8));
	put8(b, (uint8_t)hex);
}

/* Op, PkgLength (which counts itself), then body. */
static void aml_wrap(struct gw_buf *b, const uint8_t *op, size_t oplen, const struct gw_buf *body)
{
	gw_buf_put(b, op, oplen);
	size_t n = 1;
	while (n < 4 && body->len + n > (n == 1 ? 63u : (1u << (4 + 8 * (n - 1))) - 1))
		n++;
	size_t total = body->len + n;
	if (n == 1) {
		put8(b, (uint8_t)total);
	} else {
		put8(b, (uint8_t)((n - 1) << 6 | (total & 0x0F)));
		for (size_t i = 1; i < n; i++)
			put8(b, (uint8_t)(total >> (4 + 8 * (i - 1))));
	}
	gw_buf_put(b, body->data, body->len);
	if (body->err && !b->err)
		b->err = body->err;
}

static void aml_name_seg(struct gw_buf *b, const char *seg)
{
	gw_buf_put(b, seg, 4);
}

static void aml_name_int(struct gw_buf *b, const char *seg, uint64_t v)
{
	put8(b, AML_NAME);
	aml_name_seg(b, seg);
	aml_int(b, v);
}

static void aml_name_eisaid(struct gw_buf *b, const char *seg, const char *id)
{
	put8(b, AML_NAME);
	aml_name_seg(b, seg);
	aml_eisaid(b, id);
}

/* Name(seg, Buffer() { resource descriptors..., EndTag }) */
static void aml_name_resources(struct gw_buf *b, const char *seg, const struct gw_buf *res)
{
	struct gw_buf body;
	gw_buf_init(&body);
	aml_int(&body, res->len + 2);
	gw_buf_put(&body, res->data, res->len);
	put8(&body, AML_END_TAG);
	put8(&body, 0); /* checksum: none */
	put8(b, AML_NAME);
	aml_name_seg(b, seg);
	const uint8_t op = AML_BUFFER;
	aml_wrap(b, &op, 1, &body);
	gw_buf_release(&body);
}

static void aml_device(struct gw_buf *b, const char *seg, const struct gw_buf *body)
{
	struct gw_buf all;
	gw_buf_init(&all);
	aml_name_seg(&all, seg);
	gw_buf_put(&all, body->data, body->len);
	const uint8_t op[2] = {AML_EXT, AML_DEVICE};
	aml_wrap(b, op, 2, &all);
	gw_buf_release(&all);
}

/* ---- resource descriptors (ACPI 6.4 section 6.4) ---- */

/* Word Address Space Descriptor: bus numbers (type 2). */
static void res_bus(struct gw_buf *b, uint16_t min, uint16_t max)
{
	put8(b, 0x88);
	gw_buf_put_u16(b, 13);
	put8(b, 2);    /* bus number range */
	put8(b, 0x0C); /* MIF, MAF: fixed */
	put8(b, 0);
	gw_buf_put_u16(b, 0); /* granularity */
	gw_buf_put_u16(b, min);
	gw_buf_put_u16(b, max);
	gw_buf_put_u16(b, 0); /* translation */
	gw_buf_put_u16(b, (uint16_t)(max - min + 1));
}

/* DWord Address Space Descriptor: memory (type 0), read-write, not cacheable. */
static void res_mem32(struct gw_buf *b, uint32_t min, uint32_t len)
{
	put8(b, 0x87);
	gw_buf_put_u16(b, 23);
	put8(b, 0);    /* memory */
	put8(b, 0x0C); /* MIF, MAF: fixed; producer-consumer: producer (0) */
	put8(b, 0x01); /* read-write, non-cacheable */
	gw_buf_put_u32(b, 0);
	gw_buf_put_u32(b, min);
	gw_buf_put_u32(b, min + len - 1);
	gw_buf_put_u32(b, 0);
	gw_buf_put_u32(b, len);
}

/* I/O Port Descriptor, 16-bit decode. */
static void res_io(struct gw_buf *b, uint16_t base, uint8_t len)
{
	put8(b, 0x47);
	put8(b, 0x01);
	gw_buf_put_u16(b, base);
	gw_buf_put_u16(b, base);
	put8(b, 1);
	put8(b, len);
}

/* 32-bit Fixed Memory Range Descriptor, read-write. */
static void res_mem32_fixed(struct gw_buf *b, uint32_t base, uint32_t len)
{
	put8(b, 0x86);
	gw_buf_put_u16(b, 9);
	put8(b, 1);
	gw_buf_put_u32(b, base);
	gw_buf_put_u32(b, len);
}

/* IRQ Descriptor without flags (edge, active high). */
static void res_irq(struct gw_buf *b, unsigned irq)
{
	put8(b, 0x22);
	gw_buf_put_u16(b, (uint16_t)(1u << irq));
}

/* ---- the DSDT's devices ---- */

static void dsdt_pci(struct gw_buf *sb)
{
	struct gw_buf d, res, prt;
	gw_buf_init(&d);
	gw_buf_init(&res);
	gw_buf_init(&prt);
	aml_name_eisaid(&d, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(&d, "_CID", "PNP0A03");
	aml_name_int(&d, "_SEG", 0);
	aml_name_int(&d, "_BBN", 0);
	aml_name_int(&d, "_UID", 0);
	res_bus(&res, 0, HV_ECAM_BUSES - 1);
	res_mem32(&res, (uint32_t)HV_MMIO_BASE, (uint32_t)(HV_ECAM_BASE - HV_MMIO_BASE));
	aml_name_resources(&d, "_CRS", &res);
	/* INTx: every pin of slot s on GSI 16 + (s mod 8), as hv_pci_intx_gsi routes it. */
	put8(&prt, 32 * 4);
	for (unsigned s = 0; s < 32; s++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			struct gw_buf e;
			gw_buf_init(&e);
			put8(&e, 4);
			aml_int(&e, (uint64_t)s << 16 | 0xFFFF);
			aml_int(&e, pin);
			aml_int(&e, 0); /* source: none, the next field is a GSI */
			aml_int(&e, hv_pci_intx_gsi(s << 3));
			const uint8_t op = AML_PACKAGE;
			aml_wrap(&prt, &op, 1, &e);
			gw_buf_release(&e);
		}
	}
	put8(&d, AML_NAME);
	aml_name_seg(&d, "_PRT");
	const uint8_t op = AML_PACKAGE;
	aml_wrap(&d, &op, 1, &prt);
	aml_device(sb, "PCI0", &d);
	gw_buf_release(&prt);
	gw_buf_release(&res);
	gw_buf_release(&d);
}

/* The ECAM as a motherboard resource: Linux uses an MCFG region only where the firmware
 * reserves it so (PCI Firmware spec 3.2, 4.1.2). */
static void dsdt_ecam(struct gw_buf *sb)
{
	struct gw_buf d, res;
	gw_buf_init(&d);
	gw_buf_init(&res);
	aml_name_eisaid(&d, "_HID", "PNP0C02");
	aml_name_int(&d, "_UID", 0);
	res_mem32_fixed(&res, (uint32_t)HV_ECAM_BASE, HV_ECAM_BUSES << 20);
	aml_name_resources(&d, "_CRS", &res);
	aml_device(sb, "ECAM", &d);
	gw_buf_release(&res);
	gw_buf_release(&d);
}

static void dsdt_com1(struct gw_buf *sb)
{
	struct gw_buf d, res;
	gw_buf_init(&d);
	gw_buf_init(&res);
	aml_name_eisaid(&d, "_HID", "PNP0501"); /* 16550A-compatible */
	aml_name_int(&d, "_UID", 1);
	res_io(&res, 0x3F8, 8);
	res_irq(&res, 4);
	aml_name_resources(&d, "_CRS", &res);
	aml_device(sb, "COM1", &d);
	gw_buf_release(&res);
	gw_buf_release(&d);
}

/* The CMOS RTC (hv's rtc.c), without an IRQ: it raises none (no periodic, alarm or update
 * interrupt), and Linux's rtc-cmos then runs it as a plain clock that hctosys reads at boot. */
static void dsdt_rtc(struct gw_buf *sb)
{
	struct gw_buf d, res;
	gw_buf_init(&d);
	gw_buf_init(&res);
	aml_name_eisaid(&d, "_HID", "PNP0B00"); /* AT real-time clock */
	res_io(&res, HV_ACPI_RTC_PORT, 2);
	aml_name_resources(&d, "_CRS", &res);
	aml_device(sb, "RTC_", &d);
	gw_buf_release(&res);
	gw_buf_release(&d);
}

/* \_S5_: the sleep type the FADT's sleep control register takes for soft-off. */
static void dsdt_s5(struct gw_buf *b)
{
	struct gw_buf pkg;
	gw_buf_init(&pkg);
	put8(&pkg, 2);
	aml_int(&pkg, HV_ACPI_S5_TYPE); /* SLP_TYPa */
	aml_int(&pkg, HV_ACPI_S5_TYPE); /* SLP_TYPb */
	put8(b, AML_NAME);
	aml_name_seg(b, "_S5_");
	const uint8_t op = AML_PACKAGE;
	aml_wrap(b, &op, 1, &pkg);
	gw_buf_release(&pkg);
}

static void build_dsdt(struct gw_buf *b)
{
	size_t at = sdt_begin(b, "DSDT", 2);
	dsdt_s5(b);
	struct gw_buf sb;
	gw_buf_init(&sb);
	put8(&sb, AML_ROOT);
	aml_name_seg(&sb, "_SB_");
	dsdt_pci(&sb);
	dsdt_ecam(&sb);
	dsdt_com1(&sb);
	dsdt_rtc(&sb);
	const uint8_t op = AML_SCOPE;
	aml_wrap(b, &op, 1, &sb);
	gw_buf_release(&sb);
	sdt_end(b, at);
}

/* ---- fixed-format tables ---- */

/* A Generic Address Structure for one byte-wide I/O port. */
static void gas_port(uint8_t *at, uint16_t port)
{
	memset(at, 0, 12);
	at[0] = 1; /* system I/O */
	at[1] = 8; /* bit width */
	at[3] = 1; /* byte access */
	uint64_t addr = port;
	memcpy(at + 4, &addr, 8);
}

static void build_fadt(struct gw_buf *b, uint64_t dsdt)
{
	size_t at = sdt_begin(b, "FACP", 6);
	uint8_t *f = gw_buf_reserve(b, FADT_LEN - SDT_HEADER_LEN);
	if (!f)
		return;
	memset(f, 0, FADT_LEN - SDT_HEADER_LEN);
	uint32_t dsdt32 = (uint32_t)dsdt;
	memcpy(f + 40 - SDT_HEADER_LEN, &dsdt32, 4);
	/* CENTURY: the CMOS RTC's century register. */
	f[108 - SDT_HEADER_LEN] = HV_ACPI_RTC_CENTURY;
	/* IAPC_BOOT_ARCH: no VGA (a CMOS RTC is present: bit 5 clear). */
	uint16_t boot_arch = 1u << 2;
	memcpy(f + 109 - SDT_HEADER_LEN, &boot_arch, 2);
	/* Flags: hardware-reduced ACPI (no PM registers, no SCI), power and sleep buttons as
	 * control methods (none), a reset register. */
	uint32_t flags = 1u << 20 | 1u << 4 | 1u << 5 | 1u << 10;
	memcpy(f + 112 - SDT_HEADER_LEN, &flags, 4);
	gas_port(f + 116 - SDT_HEADER_LEN, HV_ACPI_RESET_PORT);
	f[128 - SDT_HEADER_LEN] = HV_ACPI_RESET_VALUE;
	gas_port(f + 244 - SDT_HEADER_LEN, HV_ACPI_SLEEP_CTL_PORT);
	gas_port(f + 256 - SDT_HEADER_LEN, HV_ACPI_SLEEP_STS_PORT);
	f[131 - SDT_HEADER_LEN] = 4; /* FADT minor version: 6.4 */
	memcpy(f + 140 - SDT_HEADER_LEN, &dsdt, 8);
	memcpy(f + 268 - SDT_HEADER_LEN, "GODWITVM", 8); /* hypervisor vendor identity */
	sdt_end(b, at);
}

static void build_madt(struct gw_buf *b, unsigned ncpus)
{
	size_t at = sdt_begin(b, "APIC", 5);
	gw_buf_put_u32(b, HV_LAPIC_BASE);
	gw_buf_put_u32(b, 1); /* PCAT_COMPAT: there are 8259 PICs */
	for (unsigned i = 0; i < ncpus; i++) {
		put8(b, 0); /* processor local APIC */
		put8(b, 8);
		put8(b, (uint8_t)i);  /* processor UID */
		put8(b, (uint8_t)i);  /* APIC id */
		gw_buf_put_u32(b, 1); /* enabled */
	}
	put8(b, 1); /* I/O APIC */
	put8(b, 12);
	put8(b, 0); /* id */
	put8(b, 0);
	gw_buf_put_u32(b, HV_IOAPIC_BASE);
	gw_buf_put_u32(b, 0); /* GSI base */
	put8(b, 2);	      /* interrupt source override: ISA IRQ0 (the PIT) on GSI 2 */
	put8(b, 10);
	put8(b, 0);
	put8(b, 0);
	gw_buf_put_u32(b, 2);
	gw_buf_put_u16(b, 0); /* conforming polarity and trigger */
	sdt_end(b, at);
}

static void build_mcfg(struct gw_buf *b)
{
	size_t at = sdt_begin(b, "MCFG", 1);
	gw_buf_put_u64(b, 0); /* reserved */
	gw_buf_put_u64(b, HV_ECAM_BASE);
	gw_buf_put_u16(b, 0); /* segment */
	put8(b, 0);	      /* buses 0 .. HV_ECAM_BUSES - 1 */
	put8(b, HV_ECAM_BUSES - 1);
	gw_buf_put_u32(b, 0);
	sdt_end(b, at);
}

int hv_acpi_build(unsigned ncpus, uint64_t base, uint8_t *out, size_t cap, uint64_t *rsdp)
{
	if (ncpus == 0 || ncpus > 255)
		return -EINVAL;
	struct gw_buf b;
	gw_buf_init(&b);
	/* RSDP first, 16-aligned at base; XSDT after it, then the tables it lists. */
	gw_buf_put(&b, "RSD PTR ", 8);
	put8(&b, 0);
	put_str(&b, OEM_ID, 6);
	put8(&b, 2);	       /* revision: ACPI 2.0+, XSDT */
	gw_buf_put_u32(&b, 0); /* no RSDT */
	gw_buf_put_u32(&b, RSDP_LEN);
	gw_buf_put_u64(&b, 0); /* XSDT, below */
	put8(&b, 0);
	gw_buf_put(&b, "\0\0\0", 3);
	align16(&b);
	size_t xsdt = sdt_begin(&b, "XSDT", 1);
	size_t entries = b.len;
	for (int i = 0; i < 3; i++)
		gw_buf_put_u64(&b, 0);
	sdt_end(&b, xsdt);
	align16(&b);
	size_t dsdt = b.len;
	build_dsdt(&b);
	align16(&b);
	size_t fadt = b.len;
	build_fadt(&b, base + dsdt);
	align16(&b);
	size_t madt = b.len;
	build_madt(&b, ncpus);
	align16(&b);
	size_t mcfg = b.len;
	build_mcfg(&b);
	int rc = b.err;
	if (!rc && b.len > cap)
		rc = -ENOSPC;
	if (rc) {
		gw_buf_release(&b);
		return rc;
	}
	uint64_t tabs[3] = {base + fadt, base + madt, base + mcfg};
	memcpy(b.data + entries, tabs, sizeof(tabs));
	sdt_checksum(b.data + xsdt); /* again, with the entries */
	uint64_t xsdt_gpa = base + xsdt;
	memcpy(b.data + 24, &xsdt_gpa, 8);
	b.data[8] = (uint8_t)(0 - sum(b.data, 20));
	b.data[32] = (uint8_t)(0 - sum(b.data, RSDP_LEN));
	memcpy(out, b.data, b.len);
	size_t used = b.len;
	gw_buf_release(&b);
	*rsdp = base;
	return (int)used;
}
