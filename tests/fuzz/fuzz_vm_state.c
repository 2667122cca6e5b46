/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the vCPU and VM state deserializers, which will read the migration
 * stream, and the field-table codec under them with every kind of field, on arbitrary bytes:
 * as they come, and as the payload of a well-framed section (a fuzzer does not find CRCs). */
#include "godwit/fields.h"
#include "godwit/hv_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One member of each kind the codec knows: fixed, bool, array with a count, allocated buffer,
 * optional. */
struct kinds {
	uint32_t a;
	bool on[2];
	uint16_t n;
	uint16_t list[5];
	uint32_t blob_len;
	uint8_t *blob;
	uint64_t opt;
};

static const struct gw_field kinds_fields[] = {
    GW_FIELD(1, struct kinds, a, 0),
    GW_FIELD(2, struct kinds, on, GW_FIELD_BOOL),
    GW_FIELD_ARRAY(3, struct kinds, list, n, 0),
    GW_FIELD_BUFFER(4, struct kinds, blob, blob_len, 256, 4, GW_FIELD_NONEMPTY),
    GW_FIELD(5, struct kinds, opt, GW_FIELD_OPTIONAL),
};

static const struct gw_fields kinds_table =
    GW_FIELDS_TABLE("kinds", HV_STATE_VM_MAGIC, HV_STATE_VM_VERSION, struct kinds, kinds_fields);

/* data as the payload of a section of the given magic and version, with a correct CRC. */
static void frame(struct gw_buf *b, uint32_t magic, uint16_t version, const uint8_t *data,
		  size_t size)
{
	gw_buf_init(b);
	size_t off = gw_sect_begin(b, magic, version);
	gw_buf_put(b, data, size);
	gw_sect_end(b, off);
}

static void load_framed(const uint8_t *data, size_t size)
{
	struct gw_buf b;
	struct gw_rd rd;
	frame(&b, HV_STATE_VCPU_MAGIC, HV_STATE_VCPU_VERSION, data, size);
	if (b.err)
		return;
	struct hv_vcpu_state vs;
	gw_rd_init(&rd, b.data, b.len);
	if (hv_vcpu_state_deserialize(&rd, &vs) == 0)
		hv_vcpu_state_release(&vs);
	/* GVMS and the test table share magic and version: one frame serves both. */
	b.data[0] = (uint8_t)HV_STATE_VM_MAGIC;
	b.data[1] = (uint8_t)(HV_STATE_VM_MAGIC >> 8);
	b.data[2] = (uint8_t)(HV_STATE_VM_MAGIC >> 16);
	b.data[3] = (uint8_t)(HV_STATE_VM_MAGIC >> 24);
	b.data[4] = HV_STATE_VM_VERSION;
	b.data[5] = 0;
	struct hv_vm_state ms;
	gw_rd_init(&rd, b.data, b.len);
	hv_vm_state_deserialize(&rd, &ms);
	struct kinds k = {0};
	gw_rd_init(&rd, b.data, b.len);
	if (gw_fields_load(&kinds_table, &rd, &k) == 0)
		gw_fields_release(&kinds_table, &k);
	gw_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	load_framed(data, size);
	struct gw_rd rd;
	struct hv_vcpu_state vs;
	gw_rd_init(&rd, data, size);
	if (hv_vcpu_state_deserialize(&rd, &vs) == 0) {
		struct gw_buf b;
		gw_buf_init(&b);
		hv_vcpu_state_serialize(&vs, &b);
		gw_buf_release(&b);
		hv_vcpu_state_release(&vs);
	}
	struct hv_vm_state ms;
	gw_rd_init(&rd, data, size);
	hv_vm_state_deserialize(&rd, &ms);
	/* The same bytes as a section of the test table (same magic and version as GVMS). */
	struct kinds k = {0};
	gw_rd_init(&rd, data, size);
	if (gw_fields_load(&kinds_table, &rd, &k) == 0) {
		struct gw_buf b;
		gw_buf_init(&b);
		gw_fields_save(&kinds_table, &k, &b);
		gw_buf_release(&b);
		gw_fields_release(&kinds_table, &k);
	}
	return 0;
}
