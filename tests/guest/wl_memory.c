/* SPDX-License-Identifier: Apache-2.0 */
/* Workloads dirty (self-verifying page writer) and fill-random (seeded fill plus checksum). */
#include "guest.h"

#define LINES_PER_PAGE 64 /* one qword per 64-byte line is written and verified */
#define PAGE	       4096ull

/* The value at line k of page i in generation g; never 0, so RAM left zero fails. */
static uint64_t pattern(uint64_t i, uint64_t g, uint64_t k)
{
	return mix64((i << 24) ^ (g << 8) ^ k ^ 0x5DEECE66Dull) | 1;
}

static void write_page(volatile uint64_t *page, uint64_t i, uint64_t g)
{
	for (uint64_t k = 0; k < LINES_PER_PAGE; k++)
		page[k * 8] = pattern(i, g, k);
}

static bool page_ok(volatile const uint64_t *page, uint64_t i, uint64_t g)
{
	for (uint64_t k = 0; k < LINES_PER_PAGE; k++) {
		if (page[k * 8] != pattern(i, g, k))
			return false;
	}
	return true;
}

int wl_dirty(struct guest_env *env)
{
	const char *p = env->args;
	uint64_t mib, rate, passes = 0;
	if (!parse_u64(&p, &mib) || *p++ != ':' || !parse_u64(&p, &rate) ||
	    (*p == ':' && (p++, !parse_u64(&p, &passes))) || *p) {
		con_puts("dirty: usage dirty:MiB:pages-per-second[:passes]\n");
		return 2;
	}
	uint64_t npages = mib * 256;
	/* Generation numbers live in guest RAM too, so they migrate with the pages. */
	uint64_t gens_bytes = (npages * 4 + PAGE - 1) & ~(PAGE - 1);
	if (mib == 0 || env->free_base + gens_bytes + npages * PAGE > env->free_end) {
		con_printf("dirty: %lu MiB does not fit in the %lu MiB of free RAM\n", mib,
			   (env->free_end - env->free_base) >> 20);
		bd_report(GW_REPORT_ERROR, 2, mib);
		return 2;
	}
	volatile uint32_t *gen = (volatile uint32_t *)(uintptr_t)env->free_base;
	uint8_t *base = (uint8_t *)(uintptr_t)(env->free_base + gens_bytes);
	for (uint64_t i = 0; i < npages; i++) {
		gen[i] = 1;
		write_page((volatile uint64_t *)(base + i * PAGE), i, 1);
	}
	con_printf("dirty: %lu MiB written, now %lu pages/s\n", mib, rate);

	uint64_t khz = tsc_khz();
	uint64_t tick = khz * 10; /* 10 ms */
	uint64_t next_verify = rdtsc() + khz * 1000;
	uint64_t now = rdtsc();
	uint64_t credit = 0, cursor = 0, pass = 0, bad_total = 0;
	/* A pass verifies a tenth of the pages a tick, between the ticks' writes: a slow vCPU
	 * (nested or paravirtual KVM, a loaded host) that took seconds for a whole pass at once
	 * would write nothing meanwhile, and a migration would see the guest stop dirtying. */
	uint64_t vcursor = 0, vchunk = npages / 10 + 1, bad = 0, first_bad = ~0ull;
	bool verifying = false;
	for (;;) {
		/* rate pages per second, spread over 100 ticks a second. */
		credit += rate;
		while (credit >= 100) {
			credit -= 100;
			uint64_t i = cursor;
			cursor = (cursor + 1) % npages;
			uint32_t g = gen[i] + 1;
			write_page((volatile uint64_t *)(base + i * PAGE), i, g);
			gen[i] = g;
		}
		if (!verifying && rdtsc() >= next_verify) {
			verifying = true; /* a pass begins */
			vcursor = 0;
			bad = 0;
			first_bad = ~0ull;
		}
		for (uint64_t n = 0; verifying && n < vchunk && vcursor < npages; n++, vcursor++) {
			if (!page_ok((volatile uint64_t *)(base + vcursor * PAGE), vcursor,
				     gen[vcursor])) {
				if (!bad)
					first_bad = vcursor;
				bad++;
			}
		}
		if (verifying && vcursor == npages) {
			verifying = false;
			pass++;
			bad_total += bad;
			if (bad)
				con_printf("dirty: pass %lu: %lu of %lu pages BAD (first %lu)\n",
					   pass, bad, npages, first_bad);
			else
				con_printf("dirty: pass %lu: all %lu pages ok\n", pass, npages);
			bd_report(GW_REPORT_VERIFY, pass, bad);
			if (passes && pass >= passes)
				return bad_total ? 1 : 0;
			next_verify = rdtsc() + khz * 1000;
		}
		now += tick;
		if (rdtsc() > now + 100 * tick)
			now = rdtsc(); /* far behind (VM was paused): do not burst to catch up */
		sleep_until(now);
	}
}

int wl_fill_random(struct guest_env *env)
{
	const char *p = env->args;
	uint64_t mib, seed = 1;
	if (!parse_u64(&p, &mib) || (*p == ':' && (p++, !parse_u64(&p, &seed))) || *p) {
		con_puts("fill-random: usage fill-random:MiB[:seed]\n");
		return 2;
	}
	if (mib == 0 || env->free_base + mib * (1ull << 20) > env->free_end) {
		con_printf("fill-random: %lu MiB does not fit in the %lu MiB of free RAM\n", mib,
			   (env->free_end - env->free_base) >> 20);
		bd_report(GW_REPORT_ERROR, 2, mib);
		return 2;
	}
	/*
	 * 16 pages of xorshift64* output (Vigna), then every page a copy of one of them with
	 * two words made unique to the page: no page is zero or equal to another, and the copy
	 * is one REP MOVSQ per page, which matters where guest instructions are emulated.
	 */
	uint64_t *pool = (uint64_t *)(uintptr_t)env->free_base;
	uint64_t pool_pages = 16, n = mib * 256;
	uint64_t x = seed ? seed : 1, sum = 0xCBF29CE484222325ull;
	if (n < pool_pages)
		pool_pages = n;
	for (uint64_t i = 0; i < pool_pages * 512; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		pool[i] = x * 0x2545F4914F6CDD1Dull;
		sum = (sum ^ pool[i]) * 0x100000001B3ull;
	}
	for (uint64_t i = pool_pages; i < n; i++) {
		uint64_t *dst = pool + i * 512;
		const uint64_t *src = pool + (i % pool_pages) * 512;
		uint64_t cnt = 512;
		__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(cnt) : : "memory");
		uint64_t *pg = pool + i * 512;
		pg[0] ^= mix64(i + seed);
		pg[511] ^= mix64(~i);
		sum = (sum ^ pg[0] ^ pg[511]) * 0x100000001B3ull;
	}
	con_printf("fill-random: %lu MiB at %lx, checksum %lx\n", mib, env->free_base, sum);
	bd_report(GW_REPORT_CHECKSUM, mib, sum);
	/* Idle for good: no exits, no writes. */
	for (;;)
		__asm__ volatile("cli; hlt");
}
