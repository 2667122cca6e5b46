/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for hv/ parts that need no /dev/kvm: bus, ECAM config space, state
 * serializers, dirty-bitmap union. */
#include "godwit/bitmap.h"
#include "cpuid.h"
#include "godwit/hv.h"
#include "godwit/hv_state.h"
#include "pci_cfg.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- bus ---- */

struct fake_dev {
	uint64_t last_off, last_val;
	unsigned last_size, reads, writes;
	uint64_t read_value;
};

static void fake_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
		      unsigned size)
{
	(void)vcpu;
	struct fake_dev *d = opaque;
	d->reads++;
	d->last_off = off;
	d->last_size = size;
	*val = d->read_value;
}

static void fake_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
		       unsigned size)
{
	(void)vcpu;
	struct fake_dev *d = opaque;
	d->writes++;
	d->last_off = off;
	d->last_val = val;
	d->last_size = size;
}

static const struct hv_io_ops fake_ops = {.read = fake_read, .write = fake_write};

static void test_bus_dispatch(void)
{
	struct hv_bus *bus = hv_bus_create("t");
	struct fake_dev a = {.read_value = 0xAA}, b = {.read_value = 0xBB};
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x1000, 0x100, &fake_ops, &a, "a"), 0);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x3000, 0x10, &fake_ops, &b, "b"), 0);
	uint64_t v;
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x1010, &v, 4), 0);
	CU_ASSERT_EQUAL(v, 0xAA);
	CU_ASSERT_EQUAL(a.last_off, 0x10);
	CU_ASSERT_EQUAL(a.last_size, 4);
	CU_ASSERT_EQUAL(hv_bus_write(bus, NULL, 0x300F, 0x55, 1), 0);
	CU_ASSERT_EQUAL(b.last_off, 0xF);
	CU_ASSERT_EQUAL(b.last_val, 0x55);
	CU_ASSERT_EQUAL(b.writes, 1);
	CU_ASSERT_EQUAL(a.writes, 0);
	/* Unclaimed: reads float high, writes vanish. */
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x2000, &v, 2), -ENOENT);
	CU_ASSERT_EQUAL(v, 0xFFFF);
	CU_ASSERT_EQUAL(hv_bus_write(bus, NULL, 0x2000, 1, 4), -ENOENT);
	/* An access straddling the end of a range is not the device's. */
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x30FE + 0, &v, 4), -ENOENT);
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x300E, &v, 4), -ENOENT);
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x1000, &v, 0), -EINVAL);
	CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x1000, &v, 9), -EINVAL);
	hv_bus_destroy(bus);
}

static void test_bus_overlap(void)
{
	struct hv_bus *bus = hv_bus_create("t");
	struct fake_dev a = {0};
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x100, 0x100, &fake_ops, &a, "a"), 0);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x1FF, 1, &fake_ops, &a, "x"), -EEXIST);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x80, 0x81, &fake_ops, &a, "x"), -EEXIST);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x0, 0x1000, &fake_ops, &a, "x"), -EEXIST);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x80, 0x80, &fake_ops, &a, "ok"), 0);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x200, 0, &fake_ops, &a, "empty"), -EINVAL);
	CU_ASSERT_EQUAL(hv_bus_register(bus, ~0ull - 1, 4, &fake_ops, &a, "wrap"), -EINVAL);
	CU_ASSERT_EQUAL(hv_bus_unregister(bus, 0x100), 0);
	CU_ASSERT_EQUAL(hv_bus_unregister(bus, 0x100), -ENOENT);
	CU_ASSERT_EQUAL(hv_bus_register(bus, 0x1FF, 1, &fake_ops, &a, "now free"), 0);
	/* Many ranges registered out of order still dispatch by binary search. */
	struct fake_dev many[64];
	for (int i = 63; i >= 0; i--) {
		many[i] = (struct fake_dev){.read_value = (uint64_t)i};
		CU_ASSERT_EQUAL(hv_bus_register(bus, 0x10000 + (uint64_t)i * 0x10, 0x10, &fake_ops,
						&many[i], "m"),
				0);
	}
	for (int i = 0; i < 64; i++) {
		uint64_t v;
		CU_ASSERT_EQUAL(hv_bus_read(bus, NULL, 0x10000 + (uint64_t)i * 0x10 + 4, &v, 4), 0);
		CU_ASSERT_EQUAL(v, (uint64_t)i);
	}
	hv_bus_destroy(bus);
}

/* ---- ECAM ---- */

static void test_ecam_decode(void)
{
	struct hv_ecam_addr a;
	hv_ecam_decode((3ull << 20) | (17ull << 15) | (5ull << 12) | 0x104, &a);
	CU_ASSERT_EQUAL(a.bus, 3);
	CU_ASSERT_EQUAL(a.dev, 17);
	CU_ASSERT_EQUAL(a.fn, 5);
	CU_ASSERT_EQUAL(a.reg, 0x104);
	CU_ASSERT_EQUAL(a.index, 3 * 256 + 17 * 8 + 5);
}

static void test_ecam_config_space(void)
{
	struct hv_pci_func *f = malloc(sizeof(*f));
	hv_pci_host_bridge_init(f);
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 0, 4), 0x29C08086u);
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 0x0A, 2), 0x0600u);
	/* The vendor ID is read-only; the command register keeps only its writable bits. */
	hv_pci_cfg_write(f, 0, 0xFFFFFFFF, 4);
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 0, 4), 0x29C08086u);
	hv_pci_cfg_write(f, 0x04, 0xFFFF, 2);
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 0x04, 2), 0x0546u);
	hv_pci_cfg_write(f, 0x04, 0x0000, 2);
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 0x04, 2), 0);
	/* Accesses that cross the end of config space read all-ones and write nothing. */
	CU_ASSERT_EQUAL(hv_pci_cfg_read(f, 4094, 4), 0xFFFFFFFFu);
	hv_pci_cfg_write(f, 4094, 0, 4);
	CU_ASSERT_EQUAL(f->cfg[4095], 0);
	free(f);
}

struct runs {
	unsigned start[8], count[8], n;
};

static int record_run(unsigned start, unsigned count, void *opaque)
{
	struct runs *r = opaque;
	if (r->n == 8)
		return -ENOSPC;
	r->start[r->n] = start;
	r->count[r->n++] = count;
	return 0;
}

static void test_ecam_absent_runs(void)
{
	bool present[4096] = {false};
	present[0] = true; /* 00:00.0 host bridge */
	present[9] = true; /* 00:01.1 */
	present[4095] = true;
	struct runs r = {0};
	CU_ASSERT_EQUAL(hv_pci_absent_runs(present, 4096, record_run, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.n, 2);
	CU_ASSERT_EQUAL(r.start[0], 1);
	CU_ASSERT_EQUAL(r.count[0], 8);
	CU_ASSERT_EQUAL(r.start[1], 10);
	CU_ASSERT_EQUAL(r.count[1], 4095 - 10);
	/* Every absent function is covered exactly once. */
	unsigned covered = 0;
	for (unsigned i = 0; i < r.n; i++)
		covered += r.count[i];
	CU_ASSERT_EQUAL(covered, 4096 - 3);
	/* A failing mapper stops the walk with its error. */
	bool none[64] = {false};
	for (unsigned i = 0; i < 64; i += 2)
		none[i] = true;
	struct runs full = {0};
	CU_ASSERT_EQUAL(hv_pci_absent_runs(none, 64, record_run, &full), -ENOSPC);
}

/* ---- state serializers ---- */

static void fill_vcpu_state(struct hv_vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->id = 0;
	s->regs.rip = 0x100000;
	s->regs.rax = 0xDEADBEEF;
	s->sregs.cr3 = 0x3000;
	s->sregs.efer = 0x500;
	s->xsave_len = 4096;
	s->xsave = malloc(4096);
	for (unsigned i = 0; i < 4096; i++)
		s->xsave[i] = (uint8_t)(i * 7);
	s->xcrs.nr_xcrs = 1;
	s->xcrs.xcrs[0].value = 3;
	s->nmsrs = 3;
	s->msrs[0] = (struct hv_msr){.index = 0x10, .value = 123456789};
	s->msrs[1] = (struct hv_msr){.index = 0xC0000082, .value = 0xFFFF800000001000ull};
	s->msrs[2] = (struct hv_msr){.index = 0x6E0, .value = 42};
	s->lapic.regs[0x20] = 0x11;
	s->events.exception.injected = 1;
	s->debugregs.dr7 = 0x400;
	s->mp_state.mp_state = KVM_MP_STATE_HALTED;
}

static void test_vcpu_state_roundtrip(void)
{
	struct hv_vcpu_state a, b;
	fill_vcpu_state(&a);
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(hv_vcpu_state_serialize(&a, &buf), 0);
	struct gw_rd rd;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL_FATAL(hv_vcpu_state_deserialize(&rd, &b), 0);
	CU_ASSERT_EQUAL(rd.left, 0);
	CU_ASSERT_EQUAL(memcmp(&a.regs, &b.regs, sizeof(a.regs)), 0);
	CU_ASSERT_EQUAL(memcmp(&a.sregs, &b.sregs, sizeof(a.sregs)), 0);
	CU_ASSERT_EQUAL_FATAL(b.xsave_len, 4096);
	CU_ASSERT_EQUAL(memcmp(a.xsave, b.xsave, 4096), 0);
	CU_ASSERT_EQUAL(b.nmsrs, 3);
	CU_ASSERT_EQUAL(memcmp(a.msrs, b.msrs, 3 * sizeof(a.msrs[0])), 0);
	CU_ASSERT_EQUAL(memcmp(&a.lapic, &b.lapic, sizeof(a.lapic)), 0);
	CU_ASSERT_EQUAL(memcmp(&a.events, &b.events, sizeof(a.events)), 0);
	CU_ASSERT_EQUAL(b.debugregs.dr7, 0x400);
	CU_ASSERT_EQUAL(b.mp_state.mp_state, KVM_MP_STATE_HALTED);
	hv_vcpu_state_release(&a);
	hv_vcpu_state_release(&b);
	gw_buf_release(&buf);
}

static void test_vcpu_state_rejects(void)
{
	struct hv_vcpu_state a, b;
	fill_vcpu_state(&a);
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(hv_vcpu_state_serialize(&a, &buf), 0);
	struct gw_rd rd;
	/* Version 2 is not ours. */
	buf.data[4] = 2;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(hv_vcpu_state_deserialize(&rd, &b), -EPROTO);
	buf.data[4] = 1;
	/* A corrupted register. */
	buf.data[40] ^= 1;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(hv_vcpu_state_deserialize(&rd, &b), -EBADMSG);
	buf.data[40] ^= 1;
	/* Truncated. */
	gw_rd_init(&rd, buf.data, buf.len - 1);
	CU_ASSERT_EQUAL(hv_vcpu_state_deserialize(&rd, &b), -EBADMSG);
	/* Too many MSRs cannot be serialized. */
	a.nmsrs = HV_STATE_MAX_MSRS + 1;
	struct gw_buf big;
	gw_buf_init(&big);
	CU_ASSERT_EQUAL(hv_vcpu_state_serialize(&a, &big), -EINVAL);
	gw_buf_release(&big);
	hv_vcpu_state_release(&a);
	gw_buf_release(&buf);
}

static void test_vcpu_state_missing_field(void)
{
	/* A well-framed section that lacks the mandatory MSR field. */
	struct gw_buf buf;
	gw_buf_init(&buf);
	size_t off = gw_sect_begin(&buf, HV_STATE_VCPU_MAGIC, HV_STATE_VCPU_VERSION);
	uint32_t id = 0;
	gw_field_put(&buf, 1, &id, sizeof(id));
	gw_sect_end(&buf, off);
	struct gw_rd rd;
	struct hv_vcpu_state s;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(hv_vcpu_state_deserialize(&rd, &s), -EBADMSG);
	gw_buf_release(&buf);
}

static void test_vm_state_roundtrip(void)
{
	struct hv_vm_state a, b;
	memset(&a, 0, sizeof(a));
	a.clock.clock = 987654321;
	a.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	a.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	a.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	a.ioapic.chip.ioapic.base_address = 0xFEC00000;
	a.pit.channels[0].count = 0x1234;
	a.realtime_ns = 1796404761643136026ull;
	a.tsc_khz = 2445426;
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(hv_vm_state_serialize(&a, &buf), 0);
	struct gw_rd rd;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL_FATAL(hv_vm_state_deserialize(&rd, &b), 0);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	buf.data[4] = 9;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(hv_vm_state_deserialize(&rd, &b), -EPROTO);
	gw_buf_release(&buf);
}

/* ---- CPUID ---- */

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < c->nent; i++) {
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	}
	return NULL;
}

/* KVM's supported set as KVM reports it (leaf 0xB zeroed, host counts in leaf 1 and 4),
 * made the VM's: the hypervisor bit, the topology of 3 vCPUs, and each vCPU's APIC id. */
static void test_cpuid(void)
{
	const unsigned cap = 18;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(struct kvm_cpuid_entry2));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	struct kvm_cpuid_entry2 e[] = {
	    {.function = 1, .ebx = 0x00400800, .ecx = 0x7ED8320B, .edx = 0x178BFBFF},
	    {.function = 4, .index = 0, .eax = 0xFC004121},
	    {.function = 4, .index = 1, .eax = 0xFC01C163},
	    {.function = 4, .index = 2, .eax = 0},
	    {.function = 0xB, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0x1F, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	    {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4B4D564B},
	    {.function = 0xA, .eax = 0x07300805, .edx = 0x00000603},
	    {.function = 0x80000001, .ecx = 0x11C003F3},
	    {.function = 0x80000008, .ecx = 0x0000703F},
	    {.function = 0x8000001E, .eax = 7, .ebx = 0x0107, .ecx = 0x0101},
	};
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	CU_ASSERT_EQUAL_FATAL(hv_cpuid_setup(c, cap, 3), 0);
	CU_ASSERT_TRUE(leaf(c, 1, 0)->ecx & (1u << 31));       /* hypervisor */
	CU_ASSERT_EQUAL((leaf(c, 1, 0)->ebx >> 16) & 0xFF, 3); /* logical processors */
	CU_ASSERT_TRUE(leaf(c, 1, 0)->edx & (1u << 28));       /* HTT */
	CU_ASSERT_EQUAL(leaf(c, 4, 0)->eax >> 26, 3);	       /* 4 core ids, L1 per core */
	CU_ASSERT_EQUAL((leaf(c, 4, 0)->eax >> 14) & 0xFFF, 0);
	CU_ASSERT_EQUAL((leaf(c, 4, 1)->eax >> 14) & 0xFFF, 3); /* L3: every core */
	CU_ASSERT_EQUAL(leaf(c, 4, 2)->eax, 0);
	CU_ASSERT_PTR_NULL(leaf(c, 0x1F, 0));
	CU_ASSERT_EQUAL(leaf(c, 0xB, 0)->ebx, 1); /* SMT: 1 thread per core */
	CU_ASSERT_EQUAL(leaf(c, 0xB, 0)->ecx, 0x100);
	CU_ASSERT_EQUAL(leaf(c, 0xB, 1)->eax, 2); /* core level: 2 bits of APIC id */
	CU_ASSERT_EQUAL(leaf(c, 0xB, 1)->ebx, 3);
	CU_ASSERT_EQUAL(leaf(c, 0xB, 1)->ecx, 0x201);
	CU_ASSERT_EQUAL(leaf(c, 0xB, 2)->ecx, 2); /* invalid level ends the list */
	CU_ASSERT_EQUAL(leaf(c, 0x80000008, 0)->ecx & 0xF0FF, 0x2002);
	CU_ASSERT_EQUAL(leaf(c, 0x40000000, 0)->ebx, 0x4B4D564B); /* KVM's leaves kept */
	CU_ASSERT_EQUAL(leaf(c, 0xA, 0)->eax, 0);		  /* no PMU */
	CU_ASSERT_EQUAL(leaf(c, 0x80000001, 0)->ecx, 0x004003F3);
	hv_cpuid_vcpu(c, 2);
	CU_ASSERT_EQUAL(leaf(c, 1, 0)->ebx >> 24, 2);
	CU_ASSERT_EQUAL(leaf(c, 0xB, 0)->edx, 2);
	CU_ASSERT_EQUAL(leaf(c, 0xB, 1)->edx, 2);
	CU_ASSERT_EQUAL(leaf(c, 0x8000001E, 0)->eax, 2);
	CU_ASSERT_EQUAL(leaf(c, 0x8000001E, 0)->ebx, 0x0002); /* core 2, 1 thread per core */
	/* One vCPU: no HTT; and no room for the topology leaves is an error, not an overrun. */
	memcpy(c->entries, e, sizeof(e));
	c->nent = sizeof(e) / sizeof(e[0]);
	CU_ASSERT_EQUAL(hv_cpuid_setup(c, cap, 1), 0);
	CU_ASSERT_FALSE(leaf(c, 1, 0)->edx & (1u << 28));
	memcpy(c->entries, e, sizeof(e));
	c->nent = sizeof(e) / sizeof(e[0]);
	CU_ASSERT_EQUAL(hv_cpuid_setup(c, c->nent, 2), -ENOSPC);
	free(c);
}

/* ---- guest time ---- */

static void test_tsc_plan(void)
{
	char why[300] = "";
	/* The same rate, within KVM's 250 ppm, or one side unknown: nothing to do. */
	CU_ASSERT_EQUAL(hv_tsc_plan(2445426, 2445426, false, false, why, sizeof(why)), HV_TSC_SAME);
	CU_ASSERT_EQUAL(hv_tsc_plan(2445426, 2445900, false, false, why, sizeof(why)), HV_TSC_SAME);
	CU_ASSERT_EQUAL(hv_tsc_plan(0, 2445426, false, false, why, sizeof(why)), HV_TSC_SAME);
	/* Another rate: scaled where KVM can; refused where it cannot, unless allowed. */
	CU_ASSERT_EQUAL(hv_tsc_plan(2000000, 2445426, true, false, why, sizeof(why)), HV_TSC_SCALE);
	CU_ASSERT_EQUAL(hv_tsc_plan(2000000, 2445426, false, false, why, sizeof(why)),
			HV_TSC_REFUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "TSC 2000000 kHz, host 2445426 kHz"));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--allow-tsc-change"));
	CU_ASSERT_EQUAL(hv_tsc_plan(2446100, 2445426, false, false, why, sizeof(why)),
			HV_TSC_REFUSE); /* 276 ppm */
	CU_ASSERT_EQUAL(hv_tsc_plan(3000000, 2445426, false, true, why, sizeof(why)), HV_TSC_DRIFT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "going on as asked"));
}

/* ---- dirty union ---- */

static void test_dirty_merge(void)
{
	/* RAM of 200 pages: a low slot of 100 pages, then a high slot of 100 pages. */
	uint64_t *out = gw_bitmap_alloc(200);
	uint64_t *low = gw_bitmap_alloc(100);
	uint64_t *high = gw_bitmap_alloc(100);
	gw_bitmap_set(out, 150); /* left from an earlier collect: must survive */
	gw_bitmap_set(low, 0);
	gw_bitmap_set(low, 99);
	gw_bitmap_set(high, 0);
	gw_bitmap_set(high, 63);
	gw_bitmap_set(high, 99);
	hv_dirty_merge(out, low, 0, 100);
	hv_dirty_merge(out, high, 100, 100);
	CU_ASSERT_EQUAL(gw_bitmap_count(out, 200), 6);
	CU_ASSERT_TRUE(gw_bitmap_test(out, 0));
	CU_ASSERT_TRUE(gw_bitmap_test(out, 99));
	CU_ASSERT_TRUE(gw_bitmap_test(out, 100));
	CU_ASSERT_TRUE(gw_bitmap_test(out, 163));
	CU_ASSERT_TRUE(gw_bitmap_test(out, 199));
	CU_ASSERT_TRUE(gw_bitmap_test(out, 150));
	/* The VMM side joins with take-or, which empties it. */
	uint64_t *vmm = gw_bitmap_alloc(200);
	gw_bitmap_set_range_atomic(vmm, 10, 3);
	gw_bitmap_set_atomic(vmm, 99); /* also in KVM's: counted once */
	gw_bitmap_take_or(out, vmm, 200);
	CU_ASSERT_EQUAL(gw_bitmap_count(out, 200), 9);
	CU_ASSERT_EQUAL(gw_bitmap_count(vmm, 200), 0);
	gw_bitmap_free(out);
	gw_bitmap_free(low);
	gw_bitmap_free(high);
	gw_bitmap_free(vmm);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"bus dispatch", test_bus_dispatch},
	    {"bus overlap and ordering", test_bus_overlap},
	    {"ECAM decode", test_ecam_decode},
	    {"ECAM config space", test_ecam_config_space},
	    {"ECAM absent runs", test_ecam_absent_runs},
	    {"vCPU state round trip", test_vcpu_state_roundtrip},
	    {"vCPU state rejects", test_vcpu_state_rejects},
	    {"vCPU state missing field", test_vcpu_state_missing_field},
	    {"VM state round trip and version", test_vm_state_roundtrip},
	    {"dirty bitmap union", test_dirty_merge},
	    {"TSC rate plan", test_tsc_plan},
	    {"CPUID: hypervisor bit, topology, APIC ids", test_cpuid},
	};
	return gw_test_run("hv", cases, GW_TEST_COUNT(cases));
}
