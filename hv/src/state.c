/* SPDX-License-Identifier: Apache-2.0 */
/* Serializers for vCPU and VM state: one section each, one typed field per KVM structure. */
#include "godwit/hv_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Field ids are part of the format: never renumber, only add. */
enum {
	F_VCPU_ID = 1,
	F_REGS = 2,
	F_SREGS = 3,
	F_XSAVE = 4,
	F_XCRS = 5,
	F_MSRS = 6,
	F_LAPIC = 7,
	F_EVENTS = 8,
	F_DEBUGREGS = 9,
	F_MP_STATE = 10,
};

enum {
	F_CLOCK = 1,
	F_PIC_MASTER = 2,
	F_PIC_SLAVE = 3,
	F_IOAPIC = 4,
	F_PIT = 5,
};

void hv_vcpu_state_release(struct hv_vcpu_state *s)
{
	free(s->xsave);
	s->xsave = NULL;
	s->xsave_len = 0;
}

int hv_vcpu_state_serialize(const struct hv_vcpu_state *s, struct gw_buf *out)
{
	if (s->nmsrs > HV_STATE_MAX_MSRS || !s->xsave || s->xsave_len == 0 ||
	    s->xsave_len > HV_STATE_MAX_XSAVE)
		return -EINVAL;
	size_t off = gw_sect_begin(out, HV_STATE_VCPU_MAGIC, HV_STATE_VCPU_VERSION);
	gw_field_put(out, F_VCPU_ID, &s->id, sizeof(s->id));
	gw_field_put(out, F_REGS, &s->regs, sizeof(s->regs));
	gw_field_put(out, F_SREGS, &s->sregs, sizeof(s->sregs));
	gw_field_put(out, F_XSAVE, s->xsave, s->xsave_len);
	gw_field_put(out, F_XCRS, &s->xcrs, sizeof(s->xcrs));
	gw_field_put(out, F_MSRS, s->msrs, (uint32_t)(s->nmsrs * sizeof(s->msrs[0])));
	gw_field_put(out, F_LAPIC, &s->lapic, sizeof(s->lapic));
	gw_field_put(out, F_EVENTS, &s->events, sizeof(s->events));
	gw_field_put(out, F_DEBUGREGS, &s->debugregs, sizeof(s->debugregs));
	gw_field_put(out, F_MP_STATE, &s->mp_state, sizeof(s->mp_state));
	gw_sect_end(out, off);
	return out->err;
}

static int copy_fixed(void *dst, size_t dst_len, const void *p, uint32_t len)
{
	if (len != dst_len)
		return -EBADMSG;
	memcpy(dst, p, len);
	return 0;
}

int hv_vcpu_state_deserialize(struct gw_rd *in, struct hv_vcpu_state *s)
{
	struct gw_rd body;
	int rc = gw_sect_read(in, HV_STATE_VCPU_MAGIC, HV_STATE_VCPU_VERSION, &body);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	uint32_t seen = 0;
	uint16_t id;
	const void *p;
	uint32_t len;
	while ((rc = gw_field_next(&body, &id, &p, &len)) == 0) {
		switch (id) {
		case F_VCPU_ID:
			rc = copy_fixed(&s->id, sizeof(s->id), p, len);
			break;
		case F_REGS:
			rc = copy_fixed(&s->regs, sizeof(s->regs), p, len);
			break;
		case F_SREGS:
			rc = copy_fixed(&s->sregs, sizeof(s->sregs), p, len);
			break;
		case F_XSAVE:
			if (len == 0 || len > HV_STATE_MAX_XSAVE || len % 4 || s->xsave) {
				rc = -EBADMSG;
				break;
			}
			s->xsave = malloc(len);
			if (!s->xsave) {
				rc = -ENOMEM;
				break;
			}
			memcpy(s->xsave, p, len);
			s->xsave_len = len;
			break;
		case F_XCRS:
			rc = copy_fixed(&s->xcrs, sizeof(s->xcrs), p, len);
			break;
		case F_MSRS:
			if (len % sizeof(s->msrs[0]) ||
			    len / sizeof(s->msrs[0]) > HV_STATE_MAX_MSRS) {
				rc = -EBADMSG;
				break;
			}
			memcpy(s->msrs, p, len);
			s->nmsrs = len / sizeof(s->msrs[0]);
			break;
		case F_LAPIC:
			rc = copy_fixed(&s->lapic, sizeof(s->lapic), p, len);
			break;
		case F_EVENTS:
			rc = copy_fixed(&s->events, sizeof(s->events), p, len);
			break;
		case F_DEBUGREGS:
			rc = copy_fixed(&s->debugregs, sizeof(s->debugregs), p, len);
			break;
		case F_MP_STATE:
			rc = copy_fixed(&s->mp_state, sizeof(s->mp_state), p, len);
			break;
		default:
			rc = -EBADMSG; /* same version, unknown field: the input is not ours */
			break;
		}
		if (rc)
			goto err_release;
		if (seen & (1u << id)) {
			rc = -EBADMSG;
			goto err_release;
		}
		seen |= 1u << id;
	}
	if (rc != -ENOENT)
		goto err_release;
	/* Every field is mandatory in version 1. */
	if (seen != 0x7FEu) {
		rc = -EBADMSG;
		goto err_release;
	}
	return 0;

err_release:
	hv_vcpu_state_release(s);
	return rc;
}

int hv_vm_state_serialize(const struct hv_vm_state *s, struct gw_buf *out)
{
	size_t off = gw_sect_begin(out, HV_STATE_VM_MAGIC, HV_STATE_VM_VERSION);
	gw_field_put(out, F_CLOCK, &s->clock, sizeof(s->clock));
	gw_field_put(out, F_PIC_MASTER, &s->pic_master, sizeof(s->pic_master));
	gw_field_put(out, F_PIC_SLAVE, &s->pic_slave, sizeof(s->pic_slave));
	gw_field_put(out, F_IOAPIC, &s->ioapic, sizeof(s->ioapic));
	gw_field_put(out, F_PIT, &s->pit, sizeof(s->pit));
	gw_sect_end(out, off);
	return out->err;
}

int hv_vm_state_deserialize(struct gw_rd *in, struct hv_vm_state *s)
{
	struct gw_rd body;
	int rc = gw_sect_read(in, HV_STATE_VM_MAGIC, HV_STATE_VM_VERSION, &body);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	uint32_t seen = 0;
	uint16_t id;
	const void *p;
	uint32_t len;
	while ((rc = gw_field_next(&body, &id, &p, &len)) == 0) {
		switch (id) {
		case F_CLOCK:
			rc = copy_fixed(&s->clock, sizeof(s->clock), p, len);
			break;
		case F_PIC_MASTER:
			rc = copy_fixed(&s->pic_master, sizeof(s->pic_master), p, len);
			break;
		case F_PIC_SLAVE:
			rc = copy_fixed(&s->pic_slave, sizeof(s->pic_slave), p, len);
			break;
		case F_IOAPIC:
			rc = copy_fixed(&s->ioapic, sizeof(s->ioapic), p, len);
			break;
		case F_PIT:
			rc = copy_fixed(&s->pit, sizeof(s->pit), p, len);
			break;
		default:
			rc = -EBADMSG;
			break;
		}
		if (rc)
			return rc;
		if (seen & (1u << id))
			return -EBADMSG;
		seen |= 1u << id;
	}
	if (rc != -ENOENT)
		return rc;
	return seen == 0x3Eu ? 0 : -EBADMSG;
}
