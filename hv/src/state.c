/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU and VM state as field tables: one section each, one field per KVM structure. */
#include "godwit/hv_state.h"

#include "godwit/fields.h"

#include <errno.h>
#include <string.h>

/* The KVM structures travel as they are (x86-64 KVM ABI): a header that changed one would
 * change the wire, so their sizes are pinned here (docs/state-format.md). */
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "kvm_debugregs");
_Static_assert(sizeof(struct kvm_mp_state) == 4, "kvm_mp_state");
_Static_assert(sizeof(struct hv_msr) == 16, "hv_msr: u32 index, u32 pad, u64 value");
_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data");
_Static_assert(sizeof(struct kvm_irqchip) == 520, "kvm_irqchip");
_Static_assert(sizeof(struct kvm_pit_state2) == 112, "kvm_pit_state2");

/* Field ids are part of the format: never renumber, only add. */
static const struct gw_field vcpu_fields[] = {
    GW_FIELD(1, struct hv_vcpu_state, id, 0),
    GW_FIELD(2, struct hv_vcpu_state, regs, 0),
    GW_FIELD(3, struct hv_vcpu_state, sregs, 0),
    GW_FIELD_BUFFER(4, struct hv_vcpu_state, xsave, xsave_len, HV_STATE_MAX_XSAVE, 4,
		    GW_FIELD_NONEMPTY),
    GW_FIELD(5, struct hv_vcpu_state, xcrs, 0),
    GW_FIELD_ARRAY(6, struct hv_vcpu_state, msrs, nmsrs, 0),
    GW_FIELD(7, struct hv_vcpu_state, lapic, 0),
    GW_FIELD(8, struct hv_vcpu_state, events, 0),
    GW_FIELD(9, struct hv_vcpu_state, debugregs, 0),
    GW_FIELD(10, struct hv_vcpu_state, mp_state, 0),
};

static const struct gw_fields vcpu_table = GW_FIELDS_TABLE(
    "vcpu", HV_STATE_VCPU_MAGIC, HV_STATE_VCPU_VERSION, struct hv_vcpu_state, vcpu_fields);

static const struct gw_field vm_fields[] = {
    GW_FIELD(1, struct hv_vm_state, clock, 0),
    GW_FIELD(2, struct hv_vm_state, pic_master, 0),
    GW_FIELD(3, struct hv_vm_state, pic_slave, 0),
    GW_FIELD(4, struct hv_vm_state, ioapic, 0),
    GW_FIELD(5, struct hv_vm_state, pit, 0),
    GW_FIELD(6, struct hv_vm_state, realtime_ns, GW_FIELD_OPTIONAL),
    GW_FIELD(7, struct hv_vm_state, tsc_khz, GW_FIELD_OPTIONAL),
};

static const struct gw_fields vm_table =
    GW_FIELDS_TABLE("vm", HV_STATE_VM_MAGIC, HV_STATE_VM_VERSION, struct hv_vm_state, vm_fields);

void hv_vcpu_state_release(struct hv_vcpu_state *s)
{
	gw_fields_release(&vcpu_table, s);
}

int hv_vcpu_state_serialize(const struct hv_vcpu_state *s, struct gw_buf *out)
{
	return gw_fields_save(&vcpu_table, s, out);
}

int hv_vcpu_state_deserialize(struct gw_rd *in, struct hv_vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	return gw_fields_load(&vcpu_table, in, s);
}

int hv_vm_state_serialize(const struct hv_vm_state *s, struct gw_buf *out)
{
	return gw_fields_save(&vm_table, s, out);
}

int hv_vm_state_deserialize(struct gw_rd *in, struct hv_vm_state *s)
{
	memset(s, 0, sizeof(*s));
	return gw_fields_load(&vm_table, in, s);
}
