/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for a Linux guest (ACPI 6.x): RSDP, XSDT, FADT (hardware-reduced: no PM
 * registers, no SCI), MADT (a local APIC per vCPU, the I/O APIC, IRQ0 on GSI 2), MCFG (godwit's
 * ECAM) and a DSDT with the PCI host bridge (bus range, BAR window, INTx routing), COM1, the CMOS
 * RTC and \_S5, its AML generated here. Pure: the tables are built into a buffer for a given guest
 * address.
 */
#ifndef GODWIT_HV_ACPI_H
#define GODWIT_HV_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define HV_ACPI_BASE	 0xF0000ull /* e820-reserved (linux_boot.c): the tables live here */
#define HV_ACPI_MAX_SIZE 0x10000u
#define HV_LAPIC_BASE	 0xFEE00000u
#define HV_IOAPIC_BASE	 0xFEC00000u

/* Power control of a hardware-reduced platform (FADT sleep control/status and reset registers,
 * the DSDT's \_S5): one I/O port each. Writing HV_ACPI_SLP_EN with sleep type
 * HV_ACPI_S5_TYPE (bits 2-4) to the control port powers off; HV_ACPI_RESET_VALUE to the reset
 * port resets. hv's acpi_pm.c answers them. */
#define HV_ACPI_SLEEP_CTL_PORT 0x600u
#define HV_ACPI_SLEEP_STS_PORT 0x601u
#define HV_ACPI_RESET_PORT     0x602u
#define HV_ACPI_RESET_VALUE    0x01u
#define HV_ACPI_S5_TYPE	       5u
#define HV_ACPI_SLP_EN	       0x20u

/* The CMOS RTC (hv's rtc.h): the DSDT's PNP0B00 at these two ports, without an IRQ, and the
 * FADT's CENTURY register. */
#define HV_ACPI_RTC_PORT    0x70u
#define HV_ACPI_RTC_CENTURY 0x32u

/* Builds every table into out (cap bytes), laid out as it will sit at guest address base.
 * Returns the bytes used, or -EINVAL (no vCPU, too many) / -ENOSPC. *rsdp: the RSDP's address
 * (base). */
int hv_acpi_build(unsigned ncpus, uint64_t base, uint8_t *out, size_t cap, uint64_t *rsdp);

#endif
