/* SPDX-License-Identifier: Apache-2.0 */
/* Workloads hello, pci-scan and fault: boot marker, ECAM enumeration, guest-made faults. */
#include "guest.h"

#define HELLO_MARKER "GODWIT-GUEST-HELLO"
#define ENOSYS_VAL   38

int wl_hello(struct guest_env *env)
{
	con_printf("%s ram=%luMiB cpus=%u\n", HELLO_MARKER, env->bi->ram_size >> 20,
		   env->bi->ncpus);
	/* The backdoor answers in registers: check two of them come back as specified. */
	struct bd_ret r = bd_call(GW_BD_ECHO, 41, 0x1234, 0);
	if (r.status != 0 || r.r0 != 42 || r.r1 != ~0x1234ull) {
		con_puts("hello: backdoor echo answered wrongly\n");
		return 1;
	}
	con_printf("hello: tsc %lu kHz\n", tsc_khz());
	bd_report(GW_REPORT_HELLO, 0, 0);
	return 0;
}

static uint64_t ecam_addr(const struct gw_boot_info *bi, unsigned bus, unsigned dev, unsigned fn)
{
	return bi->ecam_base + ((uint64_t)bus << 20) + ((uint64_t)dev << 15) + ((uint64_t)fn << 12);
}

int wl_pci_scan(struct guest_env *env)
{
	const struct gw_boot_info *bi = env->bi;
	uint32_t id = mmio_read32(ecam_addr(bi, 0, 0, 0));
	con_printf("pci-scan: 00:00.0 is %04x:%04x\n", id & 0xFFFF, id >> 16);
	if (bi->ecam_buses < 2) {
		con_puts("pci-scan: need at least two ECAM buses\n");
		return 1;
	}
	/* Bus 1 is empty: 32 devices x 8 functions, every one absent. */
	unsigned n = 0, bad = 0;
	bd_report(GW_REPORT_SCAN_BEGIN, 0, 0);
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			if (mmio_read32(ecam_addr(bi, 1, dev, fn)) != 0xFFFFFFFFu)
				bad++;
			n++;
		}
	}
	bd_report(GW_REPORT_SCAN_END, n, bad);
	con_printf("pci-scan: %u absent functions read, %u not all-ones\n", n, bad);
	return bad ? 1 : 0;
}

int wl_fault(struct guest_env *env)
{
	const char *a = env->args;
	if (strncmp(a, "unmapped", 9) == 0) {
		/* Inside the identity map, but no RAM, device or memslot is there. */
		uint64_t hole = 0xD0000000ull;
		uint32_t v = mmio_read32(hole);
		mmio_write32(hole, 0xDEADBEEF);
		con_printf("fault: unmapped read gave %x\n", v);
		bd_report(GW_REPORT_FAULT_OK, v, 0);
		return v == 0xFFFFFFFFu ? 0 : 1;
	}
	if (strncmp(a, "backdoor", 9) == 0) {
		struct bd_ret r = bd_call(0xDEAD, 0, 0, 0);
		con_printf("fault: unknown backdoor call answered %d\n", (int)r.status);
		bd_report(GW_REPORT_FAULT_OK, (uint64_t)r.status, 0);
		return r.status == -ENOSYS_VAL ? 0 : 1;
	}
	if (strncmp(a, "triple", 7) == 0) {
		con_puts("fault: triple fault now\n");
		struct {
			uint16_t limit;
			uint64_t base;
		} __attribute__((packed)) empty = {0, 0};
		__asm__ volatile("lidt %0; int3" : : "m"(empty));
		return 1; /* not reached: the VMM stops the VM */
	}
	con_printf("fault: unknown kind '%s' (unmapped|backdoor|triple)\n", a);
	return 2;
}

int wl_irq(struct guest_env *env)
{
	const char *p = env->args;
	uint64_t rounds;
	if (!parse_u64(&p, &rounds) || *p || rounds == 0) {
		con_puts("irq: usage irq:rounds\n");
		return 2;
	}
	uint64_t khz = tsc_khz();
	bd_report(GW_REPORT_IRQ_BEGIN, rounds, 0);
	for (uint64_t i = 0; i < rounds; i++) {
		mmio_write32(GW_TEST_DOORBELL_GPA, (uint32_t)(i + 1));
		/* Wait up to 5 s for the interrupt. */
		if (!wait_counter(&test_irqs, i + 1, rdtsc() + khz * 5000))
			break;
	}
	uint64_t got = test_irqs;
	bd_report(GW_REPORT_IRQ_END, rounds, got);
	con_printf("irq: %lu doorbells, %lu interrupts\n", rounds, got);
	return got == rounds ? 0 : 1;
}
