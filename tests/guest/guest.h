/* SPDX-License-Identifier: Apache-2.0 */
/* The test guest's freestanding runtime: port I/O, backdoor, console, timer, helpers. */
#ifndef GODWIT_GUEST_H
#define GODWIT_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/hv_abi.h"

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

struct bd_ret {
	int64_t status;
	uint64_t r0;
	uint64_t r1;
};

struct bd_ret bd_call(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2);
void bd_report(uint32_t kind, uint64_t a, uint64_t b);
void guest_exit(int code) __attribute__((noreturn));

void con_putc(char c);
void con_puts(const char *s);
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int strncmp(const char *a, const char *b, size_t n);
/* Parses a decimal number at *p and advances it; returns false when there is none. */
bool parse_u64(const char **p, uint64_t *out);

/* Time, from the TSC whose frequency the VMM reports. */
uint64_t tsc_khz(void);
void sleep_until(uint64_t tsc);
void timer_init(void);
/* Halts until *ctr >= target (bumped by an interrupt) or the TSC passes tsc_limit. */
bool wait_counter(volatile uint64_t *ctr, uint64_t target, uint64_t tsc_limit);

uint64_t mix64(uint64_t x);

struct guest_env {
	const struct gw_boot_info *bi;
	const char *args; /* the workload's arguments, after "name:" */
	uint64_t free_base;
	uint64_t free_end;
};

int wl_hello(struct guest_env *env);
int wl_dirty(struct guest_env *env);
int wl_fill_random(struct guest_env *env);
int wl_pci_scan(struct guest_env *env);
int wl_fault(struct guest_env *env);
int wl_irq(struct guest_env *env);
int wl_nic_echo(struct guest_env *env);

extern volatile uint64_t test_irqs;

/* nic-echo's interrupts: MSI-X vector i of the VF arrives on NIC_VECTOR_BASE + i, INTx (through
 * the I/O APIC) on NIC_INTX_VECTOR. Each one counts in nic_irqs and ORs a cause mask into
 * nic_irq_cause: bit i for MSI-X vector i, for INTx the EICR the handler read. */
#define NIC_VECTOR_BASE 0x50u
#define NIC_VECTORS	3u
#define NIC_INTX_VECTOR 0x53u
extern volatile uint64_t nic_irqs;
extern volatile uint32_t nic_irq_cause;
/* EICR's address for the INTx handler (0 = none): reading EICR clears it, which drops the
 * level-triggered line, and must happen before the EOI or the interrupt fires again. */
extern volatile uint64_t nic_intx_eicr;

#endif
