/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for a Linux guest (ACPI 6.x): RSDP, XSDT, FADT (hardware-reduced: no PM
 * registers, no SCI), MADT (a local APIC per vCPU, the I/O APIC, IRQ0 on GSI 2), MCFG (godwit's
 * ECAM) and a DSDT with the PCI host bridge (bus range, BAR window, INTx routing) and COM1, its
 * AML generated here. Pure: the tables are built into a buffer for a given guest address.
 */
#ifndef GODWIT_HV_ACPI_H
#define GODWIT_HV_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define HV_ACPI_BASE	 0xF0000ull /* e820-reserved (linux_boot.c): the tables live here */
#define HV_ACPI_MAX_SIZE 0x10000u
#define HV_LAPIC_BASE	 0xFEE00000u
#define HV_IOAPIC_BASE	 0xFEC00000u

/* Builds every table into out (cap bytes), laid out as it will sit at guest address base.
 * Returns the bytes used, or -EINVAL (no vCPU, too many) / -ENOSPC. *rsdp: the RSDP's address
 * (base). */
int hv_acpi_build(unsigned ncpus, uint64_t base, uint8_t *out, size_t cap, uint64_t *rsdp);

#endif
