/* SPDX-License-Identifier: Apache-2.0 */
/* The MC146818 register file's semantics over host time plus an offset (rtc.h). */
#include "rtc.h"

#include "godwit/fields.h"

#include <errno.h>
#include <string.h>

#define NS	    1000000000ll
#define DAY_SECS    86400ll
#define RTC_MAGIC   GW_FOURCC('G', 'R', 'T', 'C')
#define RTC_VERSION 1

/* A broken-down UTC time, as the time registers hold it. */
struct rtc_tm {
	int64_t year;
	unsigned mon, day, hour, min, sec;
	unsigned wday; /* 0 = Sunday */
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
	return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, struct rtc_tm *t)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	t->day = doy - (153 * mp + 2) / 5 + 1;
	t->mon = mp < 10 ? mp + 3 : mp - 9;
	t->year = (int64_t)yoe + era * 400 + (t->mon <= 2);
}

static void breakdown(int64_t secs, struct rtc_tm *t)
{
	int64_t days = floor_div(secs, DAY_SECS), rem = secs - days * DAY_SECS;
	civil_from_days(days, t);
	t->hour = (unsigned)(rem / 3600);
	t->min = (unsigned)(rem / 60 % 60);
	t->sec = (unsigned)(rem % 60);
	t->wday = (unsigned)floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

static int64_t compose(const struct rtc_tm *t)
{
	return days_from_civil(t->year, t->mon, t->day) * DAY_SECS + t->hour * 3600 + t->min * 60 +
	       t->sec;
}

/* ---- register encodings (status B's DM and 24/12 bits) ---- */

static uint8_t enc(unsigned v, uint8_t b)
{
	return (uint8_t)(b & HV_RTC_B_DM_BINARY ? v : (v / 10) << 4 | v % 10);
}

/* The value of a byte, or -1 for a BCD digit above 9. */
static int dec(uint8_t x, uint8_t b)
{
	if (b & HV_RTC_B_DM_BINARY)
		return x;
	if ((x & 0xF) > 9 || x >> 4 > 9)
		return -1;
	return (x >> 4) * 10 + (x & 0xF);
}

/* 12-hour mode: 1-12, bit 7 = PM (midnight is 12 AM, noon 12 PM). */
static uint8_t enc_hour(unsigned h, uint8_t b)
{
	if (b & HV_RTC_B_24H)
		return enc(h, b);
	return (uint8_t)(enc(h % 12 ? h % 12 : 12, b) | (h >= 12 ? 0x80 : 0));
}

static int dec_hour(uint8_t x, uint8_t b)
{
	if (b & HV_RTC_B_24H) {
		int h = dec(x, b);
		return h < 24 ? h : -1;
	}
	int h = dec(x & 0x7F, b);
	if (h < 1 || h > 12)
		return -1;
	return h % 12 + (x & 0x80 ? 12 : 0);
}

static bool is_time_reg(unsigned reg)
{
	return reg == HV_RTC_SECONDS || reg == HV_RTC_MINUTES || reg == HV_RTC_HOURS ||
	       (reg >= HV_RTC_WEEKDAY && reg <= HV_RTC_YEAR) || reg == HV_RTC_CENTURY;
}

static uint8_t time_reg(const struct rtc_tm *t, unsigned reg, uint8_t b)
{
	switch (reg) {
	case HV_RTC_SECONDS:
		return enc(t->sec, b);
	case HV_RTC_MINUTES:
		return enc(t->min, b);
	case HV_RTC_HOURS:
		return enc_hour(t->hour, b);
	case HV_RTC_WEEKDAY:
		return enc(t->wday + 1, b);
	case HV_RTC_DAY:
		return enc(t->day, b);
	case HV_RTC_MONTH:
		return enc(t->mon, b);
	case HV_RTC_YEAR:
		return enc((unsigned)floor_mod(t->year, 100), b);
	default: /* HV_RTC_CENTURY */
		return enc((unsigned)floor_mod(floor_div(t->year, 100), 100), b);
	}
}

/* Puts the byte x of time register reg into t: 0, or -EINVAL when it is out of range. The
 * weekday is checked and dropped: it follows from the date (as in QEMU's RTC). */
static int set_field(struct rtc_tm *t, unsigned reg, uint8_t x, uint8_t b)
{
	int v = reg == HV_RTC_HOURS ? dec_hour(x, b) : dec(x, b);
	if (v < 0)
		return -EINVAL;
	unsigned u = (unsigned)v;
	switch (reg) {
	case HV_RTC_SECONDS:
	case HV_RTC_MINUTES:
		if (u > 59)
			return -EINVAL;
		*(reg == HV_RTC_SECONDS ? &t->sec : &t->min) = u;
		return 0;
	case HV_RTC_HOURS:
		t->hour = u;
		return 0;
	case HV_RTC_WEEKDAY:
		return u >= 1 && u <= 7 ? 0 : -EINVAL;
	case HV_RTC_DAY:
		if (u < 1 || u > 31)
			return -EINVAL;
		t->day = u; /* past the month's end: normalized into the next month */
		return 0;
	case HV_RTC_MONTH:
		if (u < 1 || u > 12)
			return -EINVAL;
		t->mon = u;
		return 0;
	case HV_RTC_YEAR:
		if (u > 99)
			return -EINVAL;
		t->year = floor_div(t->year, 100) * 100 + u;
		return 0;
	default: /* HV_RTC_CENTURY */
		if (u > 99)
			return -EINVAL;
		t->year = (int64_t)u * 100 + floor_mod(t->year, 100);
		return 0;
	}
}

/* ---- the clock ---- */

void hv_rtc_regs_time(const struct hv_rtc_regs *r, struct timespec now, int64_t *sec, int64_t *nsec)
{
	/* Without forming host + offset in nanoseconds, which may overflow. */
	int64_t s = (int64_t)now.tv_sec + r->offset_ns / NS;
	int64_t ns = (int64_t)now.tv_nsec + r->offset_ns % NS;
	if (ns < 0) {
		ns += NS;
		s--;
	} else if (ns >= NS) {
		ns -= NS;
		s++;
	}
	*sec = s;
	*nsec = ns;
}

/* The offset that makes the clock read sec + nsec at host time now: 0 or -EINVAL. */
static int offset_for(struct timespec now, int64_t sec, int64_t nsec, int64_t *offset)
{
	int64_t d;
	if (__builtin_mul_overflow(sec - (int64_t)now.tv_sec, NS, &d) ||
	    __builtin_add_overflow(d, nsec - (int64_t)now.tv_nsec, &d))
		return -EINVAL;
	*offset = d;
	return 0;
}

static bool divider_reset(const struct hv_rtc_regs *r)
{
	return (r->cmos[HV_RTC_REG_A] & HV_RTC_A_DV_RESET) == HV_RTC_A_DV_RESET;
}

bool hv_rtc_regs_held(const struct hv_rtc_regs *r)
{
	return (r->cmos[HV_RTC_REG_B] & HV_RTC_B_SET) || divider_reset(r);
}

static void now_tm(const struct hv_rtc_regs *r, struct timespec now, struct rtc_tm *t,
		   int64_t *nsec)
{
	int64_t s;
	hv_rtc_regs_time(r, now, &s, nsec);
	breakdown(s, t);
}

/* The time stops: the time registers keep what they read now. */
static void hold(struct hv_rtc_regs *r, struct timespec now)
{
	static const uint8_t regs[] = {HV_RTC_SECONDS, HV_RTC_MINUTES, HV_RTC_HOURS,
				       HV_RTC_WEEKDAY, HV_RTC_DAY,     HV_RTC_MONTH,
				       HV_RTC_YEAR,    HV_RTC_CENTURY};
	struct rtc_tm t;
	int64_t ns;
	now_tm(r, now, &t, &ns);
	for (size_t i = 0; i < sizeof(regs); i++)
		r->cmos[regs[i]] = time_reg(&t, regs[i], r->cmos[HV_RTC_REG_B]);
}

/*
 * The time runs again from what the time registers hold. When the divider chain left reset,
 * the first update comes 500 ms later (MC146818A data sheet, "Divider chain reset"; Linux's
 * rtc-cmos sets the time half a second early for it, set_offset_nsec); otherwise the divider
 * ran all along, and the fraction of the second goes on from where it is.
 */
static int release(struct hv_rtc_regs *r, struct timespec now, bool divider_restarted)
{
	static const uint8_t regs[] = {HV_RTC_SECONDS, HV_RTC_MINUTES, HV_RTC_HOURS,  HV_RTC_DAY,
				       HV_RTC_MONTH,   HV_RTC_YEAR,    HV_RTC_CENTURY};
	struct rtc_tm t = {.year = 0, .mon = 1, .day = 1};
	for (size_t i = 0; i < sizeof(regs); i++) {
		if (set_field(&t, regs[i], r->cmos[regs[i]], r->cmos[HV_RTC_REG_B]))
			return -EINVAL;
	}
	int64_t s, ns;
	hv_rtc_regs_time(r, now, &s, &ns);
	return offset_for(now, compose(&t), divider_restarted ? NS / 2 : ns, &r->offset_ns);
}

/* A time register written while the clock runs: the clock moves by what changed. */
static int write_running(struct hv_rtc_regs *r, unsigned reg, uint8_t val, struct timespec now)
{
	struct rtc_tm t;
	int64_t s, ns;
	hv_rtc_regs_time(r, now, &s, &ns);
	breakdown(s, &t);
	int rc = set_field(&t, reg, val, r->cmos[HV_RTC_REG_B]);
	if (rc)
		return rc;
	return offset_for(now, compose(&t), ns, &r->offset_ns);
}

void hv_rtc_regs_init(struct hv_rtc_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->cmos[HV_RTC_REG_A] = HV_RTC_A_DEFAULT;
	r->cmos[HV_RTC_REG_B] = HV_RTC_B_DEFAULT;
	r->cmos[HV_RTC_REG_D] = HV_RTC_D_VRT;
}

uint8_t hv_rtc_regs_read(struct hv_rtc_regs *r, unsigned port, struct timespec now)
{
	if (port != 1)
		return 0xFF; /* the index port is write-only */
	unsigned reg = r->index;
	if (reg == HV_RTC_REG_A) {
		struct rtc_tm t;
		int64_t ns;
		now_tm(r, now, &t, &ns);
		bool uip = !hv_rtc_regs_held(r) && ns >= NS - HV_RTC_UIP_NS;
		return (uint8_t)(r->cmos[HV_RTC_REG_A] | (uip ? HV_RTC_A_UIP : 0));
	}
	if (reg == HV_RTC_REG_C)
		return 0; /* IRQF, PF, AF, UF: no interrupt is ever raised */
	if (reg == HV_RTC_REG_D)
		return HV_RTC_D_VRT; /* the battery is good */
	if (is_time_reg(reg) && !hv_rtc_regs_held(r)) {
		struct rtc_tm t;
		int64_t ns;
		now_tm(r, now, &t, &ns);
		return time_reg(&t, reg, r->cmos[HV_RTC_REG_B]);
	}
	return r->cmos[reg];
}

int hv_rtc_regs_write(struct hv_rtc_regs *r, unsigned port, uint8_t val, struct timespec now)
{
	if (port == 0) {
		r->index = val & 0x7F; /* bit 7 masks NMIs on a PC: nothing to mask here */
		return 0;
	}
	if (port != 1)
		return 0;
	unsigned reg = r->index;
	if (reg == HV_RTC_REG_A || reg == HV_RTC_REG_B) {
		bool was_held = hv_rtc_regs_held(r), was_reset = divider_reset(r);
		if (!was_held)
			hold(r, now); /* unused unless this write holds the time */
		if (reg == HV_RTC_REG_A)
			r->cmos[reg] = val & (uint8_t)~HV_RTC_A_UIP;
		else /* setting SET clears UIE (data sheet, register B) */
			r->cmos[reg] = val & HV_RTC_B_SET ? val & (uint8_t)~HV_RTC_B_UIE : val;
		if (was_held && !hv_rtc_regs_held(r))
			return release(r, now, was_reset);
		return 0;
	}
	if (reg == HV_RTC_REG_C || reg == HV_RTC_REG_D)
		return 0; /* read-only */
	if (is_time_reg(reg) && !hv_rtc_regs_held(r))
		return write_running(r, reg, val, now);
	r->cmos[reg] = val;
	return 0;
}

/* ---- migration state ---- */

/* Field ids are part of the format (docs/state-format.md): never renumber, only add. */
static const struct gw_field rtc_fields[] = {
    GW_FIELD(1, struct hv_rtc_regs, offset_ns, 0),
    GW_FIELD(2, struct hv_rtc_regs, index, 0),
    GW_FIELD(3, struct hv_rtc_regs, cmos, 0),
};

static const struct gw_fields rtc_table =
    GW_FIELDS_TABLE("mc146818", RTC_MAGIC, RTC_VERSION, struct hv_rtc_regs, rtc_fields);

int hv_rtc_regs_save(const struct hv_rtc_regs *r, struct gw_buf *out)
{
	return gw_fields_save(&rtc_table, r, out);
}

int hv_rtc_regs_load(struct hv_rtc_regs *r, const void *data, size_t len)
{
	struct hv_rtc_regs tmp;
	struct gw_rd rd;
	hv_rtc_regs_init(&tmp);
	gw_rd_init(&rd, data, len);
	int rc = gw_fields_load(&rtc_table, &rd, &tmp);
	if (rc)
		return rc;
	if (rd.left || tmp.index >= HV_RTC_NREGS)
		return -EBADMSG;
	tmp.cmos[HV_RTC_REG_A] &= (uint8_t)~HV_RTC_A_UIP;
	tmp.cmos[HV_RTC_REG_C] = 0;
	tmp.cmos[HV_RTC_REG_D] = HV_RTC_D_VRT;
	*r = tmp;
	return 0;
}
