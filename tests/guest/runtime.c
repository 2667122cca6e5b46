/* SPDX-License-Identifier: Apache-2.0 */
/* Runtime of the test guest: backdoor calls, serial console, printf, IDT and LAPIC timer. */
#include "guest.h"

#include <stdarg.h>

#define COM1		 0x3F8
#define LAPIC_BASE	 0xFEE00000ull
#define LAPIC_EOI	 0xB0
#define LAPIC_SVR	 0xF0
#define LAPIC_LVT_TIMER	 0x320
#define MSR_TSC_DEADLINE 0x6E0
#define TIMER_VECTOR	 0x40
#define SPURIOUS_VECTOR	 0xFF

struct bd_ret bd_call(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint64_t rax = GW_BD_MAGIC, rbx = cmd, rcx = a0, rsi = a1, rdi = a2;
	__asm__ volatile("outl %%eax, %%dx"
			 : "+a"(rax), "+b"(rbx), "+c"(rcx), "+S"(rsi), "+D"(rdi)
			 : "d"((uint16_t)GW_BD_PORT)
			 : "memory");
	return (struct bd_ret){.status = (int64_t)rax, .r0 = rbx, .r1 = rcx};
}

void bd_report(uint32_t kind, uint64_t a, uint64_t b)
{
	bd_call(GW_BD_REPORT, kind, a, b);
}

void guest_exit(int code)
{
	for (;;) {
		bd_call(GW_BD_EXIT, (uint64_t)code, 0, 0);
		__asm__ volatile("cli; hlt");
	}
}

void con_putc(char c)
{
	if (c == '\n')
		con_putc('\r');
	/* Wait for THR empty (LSR bit 5), as on a real 16550. */
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (uint8_t)c);
}

void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, int width, char pad)
{
	char buf[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (n < width--)
		con_putc(pad);
	while (n)
		con_putc(buf[--n]);
}

void con_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			con_putc(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		int longs = 0;
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (v < 0) {
				con_putc('-');
				v = -v;
			}
			put_num((uint64_t)v, 10, width, pad);
			break;
		}
		case 'u':
			put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width,
				pad);
			break;
		case 'x':
			put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width,
				pad);
			break;
		case 's':
			con_puts(va_arg(ap, const char *));
			break;
		case 'c':
			con_putc((char)va_arg(ap, int));
			break;
		case '%':
			con_putc('%');
			break;
		default:
			con_putc('?');
			break;
		}
	}
	va_end(ap);
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

bool parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	*p = s;
	*out = v;
	return true;
}

uint64_t mix64(uint64_t x)
{
	/* splitmix64 finalizer: a cheap, well-distributed bijection. */
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x;
}

/* ---- interrupts ---- */

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, rsvd;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static bool have_deadline;
static uint64_t khz_cache;

extern char isr_timer[], isr_test[], isr_spurious[];
extern char isr_nic0[], isr_nic1[], isr_nic2[], isr_nic_intx[];
volatile uint64_t test_irqs;
volatile uint64_t nic_irqs;
volatile uint32_t nic_irq_cause;
volatile uint64_t nic_intx_eicr;
extern char exc_0[], exc_1[], exc_2[], exc_3[], exc_4[], exc_5[], exc_6[], exc_7[], exc_8[],
    exc_10[], exc_11[], exc_12[], exc_13[], exc_14[], exc_16[], exc_17[], exc_18[], exc_19[];

static void set_gate(unsigned vec, void *fn)
{
	uint64_t a = (uint64_t)(uintptr_t)fn;
	idt[vec] = (struct idt_gate){
	    .off_lo = (uint16_t)a,
	    .sel = 0x08,
	    .type = 0x8E, /* present, DPL 0, 64-bit interrupt gate */
	    .off_mid = (uint16_t)(a >> 16),
	    .off_hi = (uint32_t)(a >> 32),
	};
}

void timer_isr(void);
void timer_isr(void)
{
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

void test_isr(void);
void test_isr(void)
{
	test_irqs++;
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

/* Interrupt gates run with IF clear, so these read-modify-writes cannot be torn. */
static void nic_irq(uint32_t cause)
{
	nic_irq_cause |= cause;
	nic_irqs++;
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

void nic_isr0(void);
void nic_isr0(void)
{
	nic_irq(1u << 0);
}

void nic_isr1(void);
void nic_isr1(void)
{
	nic_irq(1u << 1);
}

void nic_isr2(void);
void nic_isr2(void)
{
	nic_irq(1u << 2);
}

void nic_isr_intx(void);
void nic_isr_intx(void)
{
	uint64_t eicr = nic_intx_eicr;
	nic_irq(eicr ? mmio_read32(eicr) : 0);
}

void exception(unsigned vec, uint64_t *frame);
void exception(unsigned vec, uint64_t *frame)
{
	/* Vectors 8, 10-14 and 17 push an error code before RIP. */
	bool err = vec == 8 || (vec >= 10 && vec <= 14) || vec == 17;
	con_printf("guest: exception %u at rip %lx\n", vec, frame[err ? 1 : 0]);
	bd_report(GW_REPORT_ERROR, 1000 + vec, frame[err ? 1 : 0]);
	guest_exit(3);
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

void timer_init(void)
{
	void *exc[] = {exc_0,  exc_1, exc_2,  exc_3,  exc_4,  exc_5,  exc_6,
		       exc_7,  exc_8, 0,      exc_10, exc_11, exc_12, exc_13,
		       exc_14, 0,     exc_16, exc_17, exc_18, exc_19};
	for (unsigned v = 0; v < 20; v++) {
		if (exc[v])
			set_gate(v, exc[v]);
	}
	set_gate(TIMER_VECTOR, isr_timer);
	set_gate(GW_TEST_IRQ_VECTOR, isr_test);
	void *nic[NIC_VECTORS] = {isr_nic0, isr_nic1, isr_nic2};
	for (unsigned v = 0; v < NIC_VECTORS; v++)
		set_gate(NIC_VECTOR_BASE + v, nic[v]);
	set_gate(NIC_INTX_VECTOR, isr_nic_intx);
	set_gate(SPURIOUS_VECTOR, isr_spurious);
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));

	uint32_t a, b, c, d;
	cpuid(1, &a, &b, &c, &d);
	have_deadline = (c >> 24) & 1;
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
	if (have_deadline)
		mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, TIMER_VECTOR | (2u << 17));
}

uint64_t tsc_khz(void)
{
	if (!khz_cache) {
		struct bd_ret r = bd_call(GW_BD_TSC_KHZ, 0, 0, 0);
		khz_cache = (r.status == 0 && r.r0) ? r.r0 : 1000000; /* assume 1 GHz */
	}
	return khz_cache;
}

void sleep_until(uint64_t tsc)
{
	if (!have_deadline) {
		while (rdtsc() < tsc)
			__asm__ volatile("pause");
		return;
	}
	/* TSC-deadline timer (SDM vol. 3A, 11.5.4.1), then HLT with the STI shadow closing the
	 * race between the check and the halt. */
	__asm__ volatile("cli");
	while (rdtsc() < tsc) {
		wrmsr(MSR_TSC_DEADLINE, tsc);
		__asm__ volatile("sti; hlt; cli");
	}
	__asm__ volatile("sti");
}

bool wait_counter(volatile uint64_t *ctr, uint64_t target, uint64_t tsc_limit)
{
	__asm__ volatile("cli");
	while (*ctr < target && rdtsc() < tsc_limit) {
		if (have_deadline)
			wrmsr(MSR_TSC_DEADLINE, tsc_limit); /* wakes the HLT if nothing else does */
		__asm__ volatile("sti; hlt; cli");
	}
	__asm__ volatile("sti");
	return *ctr >= target;
}
