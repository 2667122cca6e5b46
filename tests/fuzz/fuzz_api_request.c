/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: decoding of every request godwitd accepts, then the checks and the JSON
 * rendering that follow decoding, on arbitrary bytes from the network. */
#include "daemon.h"

#include "godwit/buf.h"
#include "godwit/v1/host.pb-c.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/peer.pb-c.h"
#include "godwit/v1/vms.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const requests[] = {
    &godwit__v1__get_info_request__descriptor,
    &godwit__v1__create_vm_request__descriptor,
    &godwit__v1__vm_ref__descriptor,
    &godwit__v1__stop_vm_request__descriptor,
    &godwit__v1__list_vms_request__descriptor,
    &godwit__v1__console_request__descriptor,
    &godwit__v1__migrate_request__descriptor,
    &godwit__v1__migration_ref__descriptor,
    &godwit__v1__prepare_incoming_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[400];
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		ProtobufCMessage *m = protobuf_c_message_unpack(requests[i], NULL, size, data);
		if (!m)
			continue;
		if (requests[i] == &godwit__v1__create_vm_request__descriptor) {
			Godwit__V1__CreateVmRequest *r = (Godwit__V1__CreateVmRequest *)m;
			gwd_validate_name(r->name, why, sizeof(why));
			gwd_validate_spec(r->spec, 1ull << 34, why, sizeof(why));
		} else if (requests[i] == &godwit__v1__vm_ref__descriptor) {
			gwd_validate_name(((Godwit__V1__VmRef *)m)->name, why, sizeof(why));
		} else if (requests[i] == &godwit__v1__stop_vm_request__descriptor) {
			gwd_validate_name(((Godwit__V1__StopVmRequest *)m)->name, why, sizeof(why));
		}
		struct gw_buf b;
		gw_buf_init(&b);
		gw_pb_to_json(m, &b);
		gw_buf_release(&b);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
