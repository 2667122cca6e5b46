/* SPDX-License-Identifier: Apache-2.0 */
/* The contract between godwit's VMM and a guest it boots directly: boot info and backdoor. */
#ifndef GODWIT_HV_ABI_H
#define GODWIT_HV_ABI_H

/* Freestanding: used by tests/guest as well as by hv/. */
#include <stdint.h>

/*
 * Backdoor hypercall: the guest loads RAX = GW_BD_MAGIC, RBX = command, RCX/RSI/RDI =
 * arguments, DX = GW_BD_PORT and executes "out %eax, %dx". The VMM answers in registers:
 * RAX = status (0 or a negative errno), RBX/RCX = results. Unknown commands answer -ENOSYS.
 */
#define GW_BD_PORT  0x5647u
#define GW_BD_MAGIC 0x57444f47u /* "GODW" */

enum gw_bd_cmd {
	GW_BD_EXIT = 1,	   /* arg0 = exit code; the VM stops */
	GW_BD_REPORT = 2,  /* arg0 = gw_report kind, arg1/arg2 = values */
	GW_BD_TSC_KHZ = 3, /* -> rbx = guest TSC frequency in kHz */
	GW_BD_ECHO = 4,	   /* -> rbx = arg0 + 1, rcx = ~arg1 (register answer check) */
};

enum gw_report {
	GW_REPORT_HELLO = 1,	  /* the hello marker was printed */
	GW_REPORT_VERIFY = 2,	  /* a = pass number, b = pages that failed verification */
	GW_REPORT_CHECKSUM = 3,	  /* a = MiB filled, b = checksum */
	GW_REPORT_SCAN_BEGIN = 4, /* about to enumerate absent PCI functions */
	GW_REPORT_SCAN_END = 5,	  /* a = functions read, b = reads that were not all-ones */
	GW_REPORT_FAULT_OK = 6,	  /* a fault workload observed the expected VMM answer */
	GW_REPORT_ERROR = 7,	  /* a = workload-specific error code */
	GW_REPORT_IRQ_BEGIN = 8,  /* about to ring the test doorbell */
	GW_REPORT_IRQ_END = 9,	  /* a = doorbells rung, b = interrupts received */
	GW_REPORT_NIC_READY = 10, /* nic-echo: a = queue pairs in use, b = mailbox API */
	GW_REPORT_NIC_PROGRESS =
	    11,			  /* nic-echo: a = frames echoed, b = frames that failed checks */
	GW_REPORT_NIC_END = 12,	  /* nic-echo finished: a = frames echoed, b = failed checks */
	GW_REPORT_NIC_STALE = 13, /* nic-echo hold: a = pool buffer, b = the frame it received,
				   * found changed (the first few only) */
	GW_REPORT_NIC_RESET = 14, /* nic-echo's VF reset handshake: a = the MAC the PF's
				   * VF_RESET reply gave (byte 0 lowest) */
};

/*
 * The irq workload rings a doorbell at this otherwise unclaimed MMIO address and waits for
 * an interrupt on GW_TEST_IRQ_VECTOR after each ring; a test wires the two together with
 * an ioeventfd and an irqfd.
 */
#define GW_TEST_DOORBELL_GPA 0xD0001000ull
#define GW_TEST_IRQ_VECTOR   0x41u

#define GW_BOOT_INFO_MAGIC   0x544f4f42574447ull /* "GDWBOOT" */
#define GW_BOOT_INFO_VERSION 1u

/* Placed by the VMM in guest RAM; its address arrives in RDI at the ELF entry point. */
struct gw_boot_info {
	uint64_t magic;
	uint32_t version;
	uint32_t ncpus;
	uint64_t ram_size;    /* bytes of RAM in total */
	uint64_t ram_low_top; /* RAM is [0, ram_low_top) and [4 GiB, 4 GiB + rest) */
	uint64_t cmdline_gpa; /* NUL-terminated */
	uint64_t ecam_base;
	uint32_t ecam_buses;
	uint32_t serial_port;
	uint64_t free_gpa; /* first byte of RAM the guest may use freely (above its image) */
};
_Static_assert(sizeof(struct gw_boot_info) == 64, "boot info layout is fixed");

#endif
