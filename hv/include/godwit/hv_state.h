/* SPDX-License-Identifier: Apache-2.0 */
/* Versioned, serializable vCPU and VM state, as KVM reports it (docs/state-format.md). */
#ifndef GODWIT_HV_STATE_H
#define GODWIT_HV_STATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/buf.h"

#define HV_STATE_VCPU_MAGIC   GW_FOURCC('G', 'V', 'C', 'P')
#define HV_STATE_VCPU_VERSION 1
#define HV_STATE_VM_MAGIC     GW_FOURCC('G', 'V', 'M', 'S')
#define HV_STATE_VM_VERSION   1
#define HV_STATE_MAX_MSRS     64
#define HV_STATE_MAX_XSAVE    (64 * 1024)

struct hv_msr {
	uint32_t index;
	uint32_t pad;
	uint64_t value;
};

struct hv_vcpu_state {
	uint32_t id;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave_len; /* bytes of xsave in use: 4096, or KVM_CAP_XSAVE2's size */
	uint8_t *xsave;	    /* owned; hv_vcpu_state_release frees it */
	struct kvm_xcrs xcrs;
	uint32_t nmsrs;
	struct hv_msr msrs[HV_STATE_MAX_MSRS];
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
};

struct hv_vm_state {
	struct kvm_clock_data clock;
	/* The host's CLOCK_REALTIME when clock was read, in ns: the destination advances the
	 * guest's clock by the real time that passed meanwhile (KVM_CLOCK_REALTIME's job, done
	 * here because KVM offers it only on hosts whose clocksource is the TSC). */
	uint64_t realtime_ns;
	uint32_t tsc_khz; /* the vCPUs' TSC frequency; 0: not known */
	struct kvm_irqchip pic_master;
	struct kvm_irqchip pic_slave;
	struct kvm_irqchip ioapic;
	struct kvm_pit_state2 pit;
};

void hv_vcpu_state_release(struct hv_vcpu_state *s);
int hv_vcpu_state_serialize(const struct hv_vcpu_state *s, struct gw_buf *out);
/* 0; -EPROTO for another version; -EBADMSG for truncated, corrupt or inconsistent input.
 * On success s owns a fresh xsave buffer. */
int hv_vcpu_state_deserialize(struct gw_rd *in, struct hv_vcpu_state *s);

int hv_vm_state_serialize(const struct hv_vm_state *s, struct gw_buf *out);
int hv_vm_state_deserialize(struct gw_rd *in, struct hv_vm_state *s);

#endif
