/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's CPUID topology (cpuid.h). */
#include "cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define LEAF_FEATURES 0x1u
#define LEAF_CACHE    0x4u
#define LEAF_TOPO     0xBu
#define LEAF_TOPO2    0x1Fu
#define LEAF_PERFMON  0xAu
#define LEAF_AMD_EXT  0x80000001u
#define LEAF_AMD_SIZE 0x80000008u
#define LEAF_AMD_PMU2 0x80000022u
/* AMD's core, northbridge and last-level-cache performance counter extensions. */
#define AMD_ECX_PERFCTR ((1u << 23) | (1u << 24) | (1u << 28))
#define LEAF_AMD_TOPO	0x8000001Eu
#define EDX_HTT		(1u << 28)
#define ECX_HYPERVISOR	(1u << 31)
#define TOPO_SMT	1u /* leaf 0xB level types */
#define TOPO_CORE	2u

/* Bits an id of n values takes. */
static unsigned id_bits(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static void drop(struct kvm_cpuid2 *c, uint32_t function)
{
	unsigned k = 0;
	for (unsigned i = 0; i < c->nent; i++) {
		if (c->entries[i].function != function)
			c->entries[k++] = c->entries[i];
	}
	c->nent = k;
}

static void topo_level(struct kvm_cpuid_entry2 *e, uint32_t function, unsigned index,
		       unsigned shift, unsigned count, unsigned type)
{
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = index;
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->eax = shift;
	e->ebx = count;
	e->ecx = type << 8 | index;
}

int hv_cpuid_setup(struct kvm_cpuid2 *c, unsigned cap, unsigned ncpus)
{
	unsigned bits = id_bits(ncpus);
	bool has_topo = false;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case LEAF_FEATURES:
			e->ebx = (e->ebx & ~0x00FF0000u) | (ncpus & 0xFFu) << 16;
			e->edx = ncpus > 1 ? e->edx | EDX_HTT : e->edx & ~EDX_HTT;
			e->ecx |= ECX_HYPERVISOR;
			break;
		case LEAF_CACHE:
			if ((e->eax & 0x1F) == 0) /* no more caches */
				break;
			/* Cores per package; a cache above level 2 is shared by all of them. */
			e->eax &= 0x00003FFFu;
			e->eax |= ((1u << bits) - 1) << 26;
			if (((e->eax >> 5) & 7) > 2)
				e->eax |= ((1u << bits) - 1) << 14;
			break;
		case LEAF_TOPO:
			has_topo = true;
			break;
		case LEAF_PERFMON: /* no architectural performance monitoring */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case LEAF_AMD_EXT:
			e->ecx &= ~AMD_ECX_PERFCTR;
			break;
		case LEAF_AMD_PMU2:
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case LEAF_AMD_SIZE:
			e->ecx = (e->ecx & ~0xF0FFu) | bits << 12 | ((ncpus - 1) & 0xFFu);
			break;
		case LEAF_AMD_TOPO:
			e->ebx &= ~0xFF00u; /* one thread per core */
			e->ecx = 0;	    /* node 0, one node per package */
			break;
		default:
			break;
		}
	}
	drop(c, LEAF_TOPO2);
	if (!has_topo)
		return 0; /* leaf 0xB is beyond the basic leaves KVM offers */
	drop(c, LEAF_TOPO);
	if (c->nent + 3 > cap)
		return -ENOSPC;
	topo_level(&c->entries[c->nent++], LEAF_TOPO, 0, 0, 1, TOPO_SMT);
	topo_level(&c->entries[c->nent++], LEAF_TOPO, 1, bits, ncpus, TOPO_CORE);
	topo_level(&c->entries[c->nent++], LEAF_TOPO, 2, 0, 0, 0);
	return 0;
}

void hv_cpuid_vcpu(struct kvm_cpuid2 *c, unsigned id)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == LEAF_FEATURES)
			e->ebx = (e->ebx & 0x00FFFFFFu) | (id << 24);
		else if (e->function == LEAF_TOPO)
			e->edx = id;
		else if (e->function == LEAF_AMD_TOPO) {
			e->eax = id;
			e->ebx = (e->ebx & ~0xFFu) | (id & 0xFFu); /* core id */
		}
	}
}
