/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the CMOS RTC's register file (hv/src/rtc_regs.c), over a "now" the test picks. */
#include "rtc.h"

#include "godwit/buf.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS 1000000000ll

/* 2026-03-07 21:45:09 UTC, a Saturday. */
#define T0 1772919909ll

static const struct timespec host0 = {.tv_sec = 1700000000, .tv_nsec = 123456789};

static struct timespec later(struct timespec t, int64_t ns)
{
	int64_t total = (int64_t)t.tv_nsec + ns;
	t.tv_sec += (time_t)(total / NS);
	t.tv_nsec = (long)(total % NS);
	if (t.tv_nsec < 0) {
		t.tv_nsec += NS;
		t.tv_sec--;
	}
	return t;
}

/* Makes the clock read sec + nsec at host time now. */
static void set_clock(struct hv_rtc_regs *r, struct timespec now, int64_t sec, int64_t nsec)
{
	r->offset_ns = (sec - now.tv_sec) * NS + (nsec - now.tv_nsec);
}

static uint8_t rd(struct hv_rtc_regs *r, uint8_t reg, struct timespec now)
{
	CU_ASSERT_EQUAL(hv_rtc_regs_write(r, 0, reg, now), 0);
	return hv_rtc_regs_read(r, 1, now);
}

static int wr(struct hv_rtc_regs *r, uint8_t reg, uint8_t val, struct timespec now)
{
	CU_ASSERT_EQUAL(hv_rtc_regs_write(r, 0, reg, now), 0);
	return hv_rtc_regs_write(r, 1, val, now);
}

static int64_t clock_sec(const struct hv_rtc_regs *r, struct timespec now, int64_t *nsec)
{
	int64_t s, ns;
	hv_rtc_regs_time(r, now, &s, &ns);
	if (nsec)
		*nsec = ns;
	return s;
}

static void test_defaults(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	CU_ASSERT_EQUAL(r.offset_ns, 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, host0), 0x26);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_B, host0), 0x02); /* 24-hour, BCD */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_C, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_D, host0), 0x80);
	/* The index port is write-only; bit 7 (NMI mask) does not take part in the index. */
	CU_ASSERT_EQUAL(hv_rtc_regs_read(&r, 0, host0), 0xFF);
	CU_ASSERT_EQUAL(hv_rtc_regs_write(&r, 0, 0x80 | HV_RTC_REG_D, host0), 0);
	CU_ASSERT_EQUAL(r.index, HV_RTC_REG_D);
	CU_ASSERT_EQUAL(hv_rtc_regs_read(&r, 1, host0), 0x80);
	/* C and D are read-only; C never holds a flag (no interrupts). */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_C, 0xF0, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_D, 0x00, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_C, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_D, host0), 0x80);
	/* RAM and alarm registers keep what is written. */
	for (unsigned reg = 0x0E; reg < HV_RTC_NREGS; reg++) {
		if (reg != HV_RTC_CENTURY)
			CU_ASSERT_EQUAL(wr(&r, (uint8_t)reg, (uint8_t)(reg ^ 0xA5), host0), 0);
	}
	for (unsigned reg = 0x0E; reg < HV_RTC_NREGS; reg++) {
		if (reg != HV_RTC_CENTURY)
			CU_ASSERT_EQUAL(rd(&r, (uint8_t)reg, host0), (uint8_t)(reg ^ 0xA5));
	}
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_SECONDS_ALARM, 0x30, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MINUTES_ALARM, 0xC0, host0), 0); /* "don't care" */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS_ALARM, 0x23, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS_ALARM, host0), 0x30);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES_ALARM, host0), 0xC0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS_ALARM, host0), 0x23);
	/* Interrupt enables are stored, and the clock was not moved by any of this. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, 0x02 | HV_RTC_B_PIE | HV_RTC_B_AIE, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_B, host0), 0x62);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_C, host0), 0);
	CU_ASSERT_EQUAL(r.offset_ns, 0);
	/* With offset 0 the clock is the host's. */
	int64_t ns;
	CU_ASSERT_EQUAL(clock_sec(&r, host0, &ns), host0.tv_sec);
	CU_ASSERT_EQUAL(ns, host0.tv_nsec);
}

static void test_encode(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	set_clock(&r, host0, T0, 0);
	/* BCD, 24-hour. */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, host0), 0x09);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, host0), 0x45);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x21);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_WEEKDAY, host0), 7); /* Saturday */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_DAY, host0), 0x07);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MONTH, host0), 0x03);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, host0), 0x26);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_CENTURY, host0), 0x20);
	/* Binary, 24-hour. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_DM_BINARY, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, host0), 9);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, host0), 45);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 21);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_DAY, host0), 7);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MONTH, host0), 3);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, host0), 26);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_CENTURY, host0), 20);
	/* 12-hour: 9 PM; binary 11 PM; BCD midnight is 12 AM, noon 12 PM. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_DM_BINARY, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x89);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, later(host0, 2 * 3600 * NS)), 0x8B);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, 0, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x89);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, later(host0, 2 * 3600 * NS)), 0x91);
	set_clock(&r, host0, T0 - 21 * 3600 - 45 * 60 - 9 + 5 * 60, 0); /* 00:05 */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x12);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, host0), 0x05);
	set_clock(&r, host0, T0 - 21 * 3600 - 45 * 60 - 9 + 12 * 3600, 0); /* 12:00 */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x92);
	set_clock(&r, host0, T0 - 21 * 3600 - 45 * 60 - 9 + 3600, 0); /* 01:00 */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, host0), 0x01);
	/* The clock runs with the host: 1999-12-31 23:59:59 plus a second is 2000-01-01. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, host0), 0);
	set_clock(&r, host0, 946684799, 999999999);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, host0), 0x99);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_CENTURY, host0), 0x19);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_WEEKDAY, host0), 6); /* Friday */
	struct timespec t1 = later(host0, 1);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, t1), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, t1), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, t1), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_DAY, t1), 0x01);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MONTH, t1), 0x01);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, t1), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_CENTURY, t1), 0x20);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_WEEKDAY, t1), 7);
}

static void test_uip(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	/* The clock's fraction of a second, not the host's, decides. */
	set_clock(&r, host0, T0, NS - 300000);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, host0), 0x26); /* 300 us before the update */
	struct timespec in = later(host0, 100000);	    /* 200 us before */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, in), 0x26 | HV_RTC_A_UIP);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, in), 0x09); /* not yet updated */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, later(host0, 300000 - HV_RTC_UIP_NS)),
			0x26 | HV_RTC_A_UIP);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, later(host0, 300000 - HV_RTC_UIP_NS - 1)), 0x26);
	struct timespec after = later(host0, 300000); /* the update happened */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, after), 0x26);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, after), 0x10);
	/* UIP is read-only; the divider and rate bits are the guest's. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_A, 0xA3, after), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, after), 0x23);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_A, 0x26, after), 0);
	/* While SET holds the time there is no update, so no UIP. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_SET, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_A, in), 0x26);
}

static void test_set_hold(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	set_clock(&r, host0, T0, 250000000);
	/* SET clears UIE as it freezes the time registers. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_UIE, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_UIE | HV_RTC_B_SET, host0), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_REG_B, host0), HV_RTC_B_24H | HV_RTC_B_SET);
	CU_ASSERT_TRUE(hv_rtc_regs_held(&r));
	int64_t offset = r.offset_ns;
	struct timespec t5 = later(host0, 5 * NS);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, t5), 0x09); /* frozen */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, t5), 0x45);
	/* Writes are held, and read back, until SET is released: 2027-12-31 23:59:58. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_SECONDS, 0x58, t5), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MINUTES, 0x59, t5), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS, 0x23, t5), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_DAY, 0x31, t5), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MONTH, 0x12, t5), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_YEAR, 0x27, t5), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, later(t5, NS)), 0x58);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, later(t5, NS)), 0x27);
	CU_ASSERT_EQUAL(r.offset_ns, offset);
	/* Released: the time runs from what was written, the fraction of a second going on. */
	struct timespec t6 = later(host0, 6 * NS);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, t6), 0);
	CU_ASSERT_FALSE(hv_rtc_regs_held(&r));
	int64_t ns;
	CU_ASSERT_EQUAL(clock_sec(&r, t6, &ns), 1830297598); /* 2027-12-31 23:59:58 */
	CU_ASSERT_EQUAL(ns, 250000000);
	struct timespec t8 = later(t6, 2 * NS);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, t8), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, t8), 0x28);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MONTH, t8), 0x01);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_DAY, t8), 0x01);
	/* SET held without writes: the time lost while held stays lost, as on the chip. */
	int64_t before = clock_sec(&r, t8, NULL);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_SET, t8), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, later(t8, 3 * NS)), 0);
	CU_ASSERT_EQUAL(clock_sec(&r, later(t8, 3 * NS), NULL), before);
}

/* Linux's mc146818_set_time: SET, divider reset, every field (century too, from the FADT),
 * SET released, then the divider: the first update comes half a second later. */
static void test_divider_reset(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	set_clock(&r, host0, T0, 800000000);
	uint8_t b = rd(&r, HV_RTC_REG_B, host0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, b | HV_RTC_B_SET, host0), 0);
	uint8_t a = rd(&r, HV_RTC_REG_A, host0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_A, a | 0x70, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_CENTURY, 0x20, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_YEAR, 0x30, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MONTH, 0x06, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_DAY, 0x15, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS, 0x08, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MINUTES, 0x30, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_SECONDS, 0x00, host0), 0);
	struct timespec t = later(host0, 2 * NS);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, b, t), 0);
	CU_ASSERT_TRUE(hv_rtc_regs_held(&r)); /* the divider still holds it */
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, later(t, NS)), 0x00);
	t = later(t, NS);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_A, a, t), 0);
	CU_ASSERT_FALSE(hv_rtc_regs_held(&r));
	int64_t ns;
	CU_ASSERT_EQUAL(clock_sec(&r, t, &ns), 1907742600); /* 2030-06-15 08:30:00 */
	CU_ASSERT_EQUAL(ns, NS / 2);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, later(t, NS / 2 - 1)), 0x00);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, later(t, NS / 2)), 0x01);
}

static void test_write_running(void)
{
	struct hv_rtc_regs r;
	hv_rtc_regs_init(&r);
	set_clock(&r, host0, T0, 400000000);
	int64_t offset = r.offset_ns;
	/* Minutes 45 -> 15: the clock moves 30 minutes back and runs on from there. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MINUTES, 0x15, host0), 0);
	CU_ASSERT_EQUAL(r.offset_ns, offset - 30 * 60 * NS);
	struct timespec t = later(host0, 10 * NS);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MINUTES, t), 0x15);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_SECONDS, t), 0x19);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, t), 0x21);
	/* Binary 12-hour mode: 3 AM written. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_DM_BINARY, t), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS, 3, t), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, t), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_HOURS, t), 0x03);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_DAY, t), 0x07);
	int64_t ns;
	CU_ASSERT_EQUAL(clock_sec(&r, t, &ns), T0 - 18 * 3600 - 30 * 60 + 10);
	CU_ASSERT_EQUAL(ns, 400000000);
	/* Century: 2026 -> 2126. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_CENTURY, 0x21, t), 0);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_YEAR, t), 0x26);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_CENTURY, t), 0x21);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_WEEKDAY, t), 5); /* 2126-03-07 is a Thursday */
	CU_ASSERT_EQUAL(clock_sec(&r, t, NULL), 4928593509 - 18 * 3600 - 30 * 60 + 10);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_CENTURY, 0x20, t), 0);
	/* The weekday follows from the date. */
	offset = r.offset_ns;
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_WEEKDAY, 0x02, t), 0);
	CU_ASSERT_EQUAL(r.offset_ns, offset);
	/* What the clock cannot hold is refused, and the clock keeps its time. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_SECONDS, 0x5A, t), -EINVAL); /* BCD digit A */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_SECONDS, 0x60, t), -EINVAL);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS, 0x24, t), -EINVAL);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MONTH, 0x13, t), -EINVAL);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_DAY, 0x00, t), -EINVAL);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_CENTURY, 0x99, t), -EINVAL); /* 7000 years ahead */
	CU_ASSERT_EQUAL(r.offset_ns, offset);
	/* Held, then released with an invalid field: refused on release. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_SET, t), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_MONTH, 0x00, t), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, t), -EINVAL);
	CU_ASSERT_EQUAL(r.offset_ns, offset);
	CU_ASSERT_EQUAL(rd(&r, HV_RTC_MONTH, t), 0x03);
}

static void test_state(void)
{
	struct hv_rtc_regs r, back;
	hv_rtc_regs_init(&r);
	set_clock(&r, host0, T0, 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_DM_BINARY | HV_RTC_B_AIE, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_HOURS_ALARM, 0x07, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, 0x40, 0x5A, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, 0x7F, 0xA5, host0), 0);
	CU_ASSERT_EQUAL(hv_rtc_regs_write(&r, 0, HV_RTC_MINUTES, host0), 0);
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(hv_rtc_regs_save(&r, &b), 0);
	CU_ASSERT_EQUAL(b.err, 0);
	hv_rtc_regs_init(&back);
	CU_ASSERT_EQUAL(hv_rtc_regs_load(&back, b.data, b.len), 0);
	CU_ASSERT_EQUAL(memcmp(&r, &back, sizeof(r)), 0);
	/* The destination's own clock moves the time on: 90 s later there, 90 s later here. */
	struct timespec dst = later(host0, 90 * NS);
	CU_ASSERT_EQUAL(hv_rtc_regs_read(&back, 1, dst), 46); /* the index travelled too */
	CU_ASSERT_EQUAL(rd(&back, HV_RTC_SECONDS, dst), 39);
	CU_ASSERT_EQUAL(rd(&back, HV_RTC_HOURS_ALARM, dst), 0x07);
	CU_ASSERT_EQUAL(rd(&back, 0x7F, dst), 0xA5);
	CU_ASSERT_EQUAL(rd(&back, HV_RTC_REG_B, dst), HV_RTC_B_DM_BINARY | HV_RTC_B_AIE);

	/* Held time travels in the register file. */
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_REG_B, HV_RTC_B_24H | HV_RTC_B_SET, host0), 0);
	CU_ASSERT_EQUAL(wr(&r, HV_RTC_YEAR, 0x31, host0), 0);
	gw_buf_release(&b);
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(hv_rtc_regs_save(&r, &b), 0);
	hv_rtc_regs_init(&back);
	CU_ASSERT_EQUAL(hv_rtc_regs_load(&back, b.data, b.len), 0);
	CU_ASSERT_EQUAL(rd(&back, HV_RTC_YEAR, dst), 0x31);
	CU_ASSERT_EQUAL(wr(&back, HV_RTC_REG_B, HV_RTC_B_24H, dst), 0);
	CU_ASSERT_EQUAL(rd(&back, HV_RTC_YEAR, dst), 0x31);

	/* Bad state is refused and leaves the clock as it was. */
	struct hv_rtc_regs keep = back;
	for (size_t n = 0; n < b.len; n++)
		CU_ASSERT_NOT_EQUAL(hv_rtc_regs_load(&back, b.data, n), 0); /* truncated */
	uint8_t *bad = malloc(b.len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	memcpy(bad, b.data, b.len);
	bad[b.len] = 0;
	CU_ASSERT_EQUAL(hv_rtc_regs_load(&back, bad, b.len + 1), -EBADMSG); /* trailing byte */
	bad[b.len - 1] ^= 1;
	CU_ASSERT_EQUAL(hv_rtc_regs_load(&back, bad, b.len), -EBADMSG); /* CRC */
	free(bad);
	struct hv_rtc_regs odd = r;
	odd.index = 0x80;
	gw_buf_release(&b);
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(hv_rtc_regs_save(&odd, &b), 0);
	CU_ASSERT_EQUAL(hv_rtc_regs_load(&back, b.data, b.len), -EBADMSG); /* index > 127 */
	CU_ASSERT_EQUAL(memcmp(&keep, &back, sizeof(keep)), 0);
	gw_buf_release(&b);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"defaults, C, D, index, RAM and alarms", test_defaults},
	    {"BCD and binary, 24 and 12 hours, century", test_encode},
	    {"UIP in the last 244 us before an update", test_uip},
	    {"SET freezes the time; writes take effect on release", test_set_hold},
	    {"divider reset: the first update 500 ms after release", test_divider_reset},
	    {"a guest write moves the offset", test_write_running},
	    {"state round trip; bad state refused", test_state},
	};
	return gw_test_run("rtc", cases, GW_TEST_COUNT(cases));
}
