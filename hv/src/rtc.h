/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PC's CMOS real-time clock, an MC146818-compatible register file (Motorola MC146818A data
 * sheet; the Intel PCH's RTC chapter): index port 0x70, data port 0x71, 128 bytes. Pure: the
 * time is computed from a "now" the caller passes (host CLOCK_REALTIME), so it is testable
 * without KVM. rtc.c makes it a device of the VM.
 *
 * The clock reads host time + offset_ns. Guest writes of the time registers move the offset
 * (while SET is held, or the divider chain is held in reset, they are held in the register file
 * and take effect on release), so the time keeps running on a migration's destination from
 * that host's clock. No interrupt is ever delivered: periodic, alarm and update-ended
 * interrupt enables are stored, register C never reports a flag, and the ACPI tables offer
 * the device without an IRQ.
 */
#ifndef GODWIT_HV_RTC_H
#define GODWIT_HV_RTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "godwit/buf.h"

#define HV_RTC_PORT  0x70u /* index; 0x71: data */
#define HV_RTC_NREGS 128u

/* Register numbers. */
#define HV_RTC_SECONDS	     0x00u
#define HV_RTC_SECONDS_ALARM 0x01u
#define HV_RTC_MINUTES	     0x02u
#define HV_RTC_MINUTES_ALARM 0x03u
#define HV_RTC_HOURS	     0x04u
#define HV_RTC_HOURS_ALARM   0x05u
#define HV_RTC_WEEKDAY	     0x06u /* 1 = Sunday */
#define HV_RTC_DAY	     0x07u
#define HV_RTC_MONTH	     0x08u
#define HV_RTC_YEAR	     0x09u
#define HV_RTC_REG_A	     0x0Au
#define HV_RTC_REG_B	     0x0Bu
#define HV_RTC_REG_C	     0x0Cu
#define HV_RTC_REG_D	     0x0Du
#define HV_RTC_CENTURY	     0x32u /* the FADT's CENTURY field names it */

/* Register A: update in progress (read-only), divider select (bits 6-4; 11x holds the divider
 * chain in reset), rate select (bits 3-0). */
#define HV_RTC_A_UIP	  0x80u
#define HV_RTC_A_DV_MASK  0x70u
#define HV_RTC_A_DV_RESET 0x60u /* both 110 and 111 */
#define HV_RTC_A_DEFAULT  0x26u /* 32.768 kHz time base, 1024 Hz periodic rate */
/* Register B. */
#define HV_RTC_B_SET	   0x80u
#define HV_RTC_B_PIE	   0x40u
#define HV_RTC_B_AIE	   0x20u
#define HV_RTC_B_UIE	   0x10u
#define HV_RTC_B_DM_BINARY 0x04u
#define HV_RTC_B_24H	   0x02u
#define HV_RTC_B_DEFAULT   HV_RTC_B_24H /* 24-hour, BCD: as a PC BIOS leaves it */
#define HV_RTC_D_VRT	   0x80u
/* UIP is set for this long before each second boundary (the MC146818's t_BUC). */
#define HV_RTC_UIP_NS 244000

struct hv_rtc_regs {
	int64_t offset_ns; /* the clock = host CLOCK_REALTIME + offset_ns */
	uint8_t index;	   /* 0..127, the last one written to port 0x70 */
	/* The register file: A, B, alarms and RAM. The time registers (0x00, 0x02, 0x04, 0x06-0x09,
	 * 0x32) hold the time only while it is held (SET, or the divider in reset); otherwise
	 * they are computed on each read. C and D are computed. */
	uint8_t cmos[HV_RTC_NREGS];
};

/* Power-on state: time = host time, 24-hour BCD, no interrupts enabled, RAM zero. */
void hv_rtc_regs_init(struct hv_rtc_regs *r);

/* One byte read from port HV_RTC_PORT + port (0 or 1) at host time now. Port 0x70 is
 * write-only and reads 0xFF. Reading register C clears it (it never holds a flag). */
uint8_t hv_rtc_regs_read(struct hv_rtc_regs *r, unsigned port, struct timespec now);

/* One byte written to port HV_RTC_PORT + port (0 or 1) at host time now. 0; or, when the time
 * written is not one the clock can hold (a BCD digit above 9, a field out of range, more than
 * ~292 years from the host's time), -EINVAL and the clock keeps its previous offset. */
int hv_rtc_regs_write(struct hv_rtc_regs *r, unsigned port, uint8_t val, struct timespec now);

/* Whether the time is held (SET, or the divider chain in reset): it does not advance. */
bool hv_rtc_regs_held(const struct hv_rtc_regs *r);

/* The clock's time at host time now, as it runs (ignoring a hold): seconds and nanoseconds
 * since the epoch, UTC as the guest keeps it. */
void hv_rtc_regs_time(const struct hv_rtc_regs *r, struct timespec now, int64_t *sec,
		      int64_t *nsec);

/* Migration state (docs/state-format.md, `rtc`): one `GRTC` section. Load: 0; the codec's
 * errors (-EPROTO, -EBADMSG...); -EBADMSG for an index above 127 or bytes after the section.
 * On failure *r is unchanged. */
int hv_rtc_regs_save(const struct hv_rtc_regs *r, struct gw_buf *out);
int hv_rtc_regs_load(struct hv_rtc_regs *r, const void *data, size_t len);

#endif
