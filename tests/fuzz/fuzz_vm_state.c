/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the vCPU and VM state deserializers, which will read the migration
 * stream, on arbitrary bytes. */
#include "godwit/hv_state.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	return 0;
}
