/* SPDX-License-Identifier: Apache-2.0 */
/* A thin layer over gRPC core with protobuf-c payloads: servers, clients, status mapping. */
#ifndef GODWIT_RPC_H
#define GODWIT_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/status.h), restated so users need not include gRPC headers. */
enum gw_rpc_code {
	GW_RPC_OK = 0,
	GW_RPC_CANCELLED = 1,
	GW_RPC_UNKNOWN = 2,
	GW_RPC_INVALID_ARGUMENT = 3,
	GW_RPC_DEADLINE_EXCEEDED = 4,
	GW_RPC_NOT_FOUND = 5,
	GW_RPC_ALREADY_EXISTS = 6,
	GW_RPC_PERMISSION_DENIED = 7,
	GW_RPC_RESOURCE_EXHAUSTED = 8,
	GW_RPC_FAILED_PRECONDITION = 9,
	GW_RPC_ABORTED = 10,
	GW_RPC_OUT_OF_RANGE = 11,
	GW_RPC_UNIMPLEMENTED = 12,
	GW_RPC_INTERNAL = 13,
	GW_RPC_UNAVAILABLE = 14,
	GW_RPC_DATA_LOSS = 15,
	GW_RPC_UNAUTHENTICATED = 16,
};

/* Negative errno to gRPC status code, and back (for exit codes and messages). */
enum gw_rpc_code gw_rpc_code_from_errno(int neg_errno);
int gw_rpc_errno_from_code(enum gw_rpc_code code);
const char *gw_rpc_code_name(enum gw_rpc_code code);

#define GW_RPC_DEFAULT_MAX_MSG (16 * 1024 * 1024)

/* ---- server ---- */

struct gw_rpc_server;
struct gw_rpc_call;

/*
 * A unary handler fills *resp (allocate it and everything it points to with
 * gw_rpc_call_alloc/strdup: freed when the call ends) and returns 0, or returns a negative
 * errno after gw_rpc_call_error() set the message a person will read.
 */
typedef int (*gw_rpc_unary_fn)(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req,
			       ProtobufCMessage **resp);
/* A streaming handler sends with gw_rpc_stream_send until done; same return convention. */
typedef int (*gw_rpc_stream_fn)(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *req);

struct gw_rpc_method {
	const ProtobufCServiceDescriptor *service;
	const char *name; /* method name within the service */
	gw_rpc_unary_fn unary;
	gw_rpc_stream_fn stream;
	bool public; /* no token needed (health checks) */
};

struct gw_rpc_server_config {
	const char *const *listen; /* "HOST:PORT" (token-protected) or "unix:PATH"; NULL-ended */
	const char *token;	   /* bearer token TCP callers must present; NULL: none */
	size_t max_msg;		   /* 0: GW_RPC_DEFAULT_MAX_MSG */
	const char *log_prefix;
};

/* Binds, starts serving on its own threads. -EADDRINUSE, -EINVAL (bad method), ... */
int gw_rpc_server_start(const struct gw_rpc_server_config *cfg, const struct gw_rpc_method *methods,
			size_t n, void *ctx, struct gw_rpc_server **out);
/* The port actually bound for listen[i] (useful with port 0), or 0 for unix sockets. */
int gw_rpc_server_port(const struct gw_rpc_server *srv, size_t i);
/* Stops accepting, cancels calls in flight, waits for handlers, drains the queue, frees. */
void gw_rpc_server_shutdown(struct gw_rpc_server *srv);

void *gw_rpc_call_alloc(struct gw_rpc_call *call, size_t n);
char *gw_rpc_call_strdup(struct gw_rpc_call *call, const char *s);
char *gw_rpc_call_printf(struct gw_rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gw_rpc_call_error(struct gw_rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Milliseconds until the caller's deadline (INT64_MAX without one). */
int64_t gw_rpc_call_deadline_ms(const struct gw_rpc_call *call);
bool gw_rpc_call_cancelled(struct gw_rpc_call *call);
/* Sleeps until the client cancels or timeout_ms passes; returns true when cancelled. */
bool gw_rpc_call_wait_cancel(struct gw_rpc_call *call, int timeout_ms);
/* Sends one stream message; -ECANCELED once the client is gone. */
int gw_rpc_stream_send(struct gw_rpc_call *call, const ProtobufCMessage *msg);

/* ---- client ---- */

struct gw_rpc_client;

struct gw_rpc_status {
	enum gw_rpc_code code;
	char message[512];
};

/* target: "HOST:PORT" or "unix:PATH"; token: bearer token or NULL. */
int gw_rpc_client_open(const char *target, const char *token, size_t max_msg,
		       struct gw_rpc_client **out);
void gw_rpc_client_close(struct gw_rpc_client *c);

/* Calls a unary method. On GW_RPC_OK *resp holds the answer (free with
 * protobuf_c_message_free_unpacked(*resp, NULL)). Returns st->code. */
enum gw_rpc_code gw_rpc_unary(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
			      const char *method, const ProtobufCMessage *req,
			      ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st);

struct gw_rpc_stream;
enum gw_rpc_code gw_rpc_stream_open(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
				    const char *method, const ProtobufCMessage *req, int timeout_ms,
				    struct gw_rpc_stream **out, struct gw_rpc_status *st);
/* 1 with *msg set, 0 at the end of the stream (st holds the final status), <0 on error. */
int gw_rpc_stream_next(struct gw_rpc_stream *s, ProtobufCMessage **msg, int timeout_ms,
		       struct gw_rpc_status *st);
void gw_rpc_stream_close(struct gw_rpc_stream *s);

/* ---- JSON ---- */

/* Writes msg as JSON (proto3 JSON mapping: lowerCamel names, 64-bit integers as strings,
 * enums by name, bytes as base64). */
struct gw_buf;
void gw_pb_to_json(const ProtobufCMessage *msg, struct gw_buf *out);

#endif
