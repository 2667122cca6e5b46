/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC core includes shared by the server and client halves of the rpc layer. */
#ifndef GODWIT_RPC_PRIV_H
#define GODWIT_RPC_PRIV_H

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stddef.h>

#include "godwit/rpc.h"

struct gw_rpc_tls {
	char *ca_pem;
	char *cert_pem; /* NULL with key_pem: no certificate to present */
	char *key_pem;
};

/* fdlisten.c: accepts on a listening socket someone else bound (fd stays the caller's) and
 * hands each connection to server, which must be started; stop before shutting it down. 0 or
 * a negative errno. */
struct gw_rpc_fd_listener;
int gw_rpc_fd_listener_start(grpc_server *server, int fd, const char *prefix,
			     struct gw_rpc_fd_listener **out);
void gw_rpc_fd_listener_stop(struct gw_rpc_fd_listener *l);

/* A protobuf message as a gRPC byte buffer (NULL when out of memory). */
grpc_byte_buffer *gw_rpc_pack(const ProtobufCMessage *msg);

#endif
