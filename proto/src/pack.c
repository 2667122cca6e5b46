/* SPDX-License-Identifier: Apache-2.0 */
/* Packing protobuf-c messages into gRPC byte buffers, for both ends of a call. */
#include "rpc_priv.h"

#include <stdlib.h>

grpc_byte_buffer *gw_rpc_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	grpc_slice s = grpc_slice_new(buf, len, free);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}
