/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPUID a VM's vCPUs see: KVM's supported set (KVM_GET_SUPPORTED_CPUID, which carries the
 * KVM paravirtual leaves 0x40000000/0x40000001) with the topology of the VM put in: N vCPUs
 * are N cores of one package, one thread each, APIC id = vCPU index. Pure: tables in, tables
 * out (the SDM vol. 2A "CPUID" for Intel's leaves 1, 4 and 0xB; AMD's APM vol. 3 for
 * 0x80000008 and 0x8000001E).
 */
#ifndef GODWIT_HV_CPUID_H
#define GODWIT_HV_CPUID_H

#include <linux/kvm.h>

/* Makes the shared table c (room for cap entries) the VM's: leaf 1's hypervisor bit (without
 * it Linux never looks at the KVM leaves, so no kvmclock), no performance counters (leaf 0xA,
 * AMD's PerfCtrExt bits and leaf 0x80000022: their state does not migrate), and the topology
 * of ncpus: leaf 1's
 * logical count and HTT, leaf 4's cores per package, leaf 0xB rebuilt (an SMT level and a core
 * level), leaf 0x1F dropped (0xB says it all), AMD's core count. 0, or -ENOSPC. */
int hv_cpuid_setup(struct kvm_cpuid2 *c, unsigned cap, unsigned ncpus);

/* Sets vCPU id's own APIC id wherever the table holds one (leaves 1, 0xB, 0x8000001E). */
void hv_cpuid_vcpu(struct kvm_cpuid2 *c, unsigned id);

#endif
