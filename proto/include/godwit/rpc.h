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

/* ---- TLS ---- */

/* A CA bundle, and optionally a certificate and its key, in PEM (proto/src/tls.c). */
struct gw_rpc_tls;
/* Reads and checks them: the key is the certificate's and not readable by others, the
 * certificate is valid now and chains to the CA. cert and key may both be NULL (a client that
 * only checks the server). 0, or a negative errno with why set for a person. */
int gw_rpc_tls_load(const char *cert, const char *key, const char *ca, struct gw_rpc_tls **out,
		    char *why, size_t n);
void gw_rpc_tls_free(struct gw_rpc_tls *t);
/* The subject alternative names (DNS and IP) of t's certificate, comma-separated, into out:
 * 0, or -ENOENT without a certificate. */
int gw_rpc_tls_names(const struct gw_rpc_tls *t, char *out, size_t n);

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
	/* Called by other hosts (godwit.v1.Peer): no bearer token; the handler authorises the
	 * call (gw_rpc_call_credential). With TLS, only a client that presented a certificate
	 * the CA signed gets through (gw_rpc_call_peer_has_name says which host it is). */
	bool peer;
};

/* Told as each call ends, on the thread that ended it (keep it short, make it thread-safe):
 * the service and method called (both NULL for a method the server does not have) and the
 * status sent, including calls refused before their handler ran. */
typedef void (*gw_rpc_call_end_fn)(void *opaque, const char *service, const char *method,
				   enum gw_rpc_code code);

struct gw_rpc_server_config {
	/* "HOST:PORT" (token-protected), "unix:PATH", or "unix-fd:N": a listening unix stream
	 * socket already bound (systemd socket activation), which stays the caller's and whose
	 * callers count as local like those of unix:PATH. NULL-ended. */
	const char *const *listen;
	const char *token; /* bearer token TCP callers must present; NULL: none */
	size_t max_msg;	   /* 0: GW_RPC_DEFAULT_MAX_MSG */
	const char *log_prefix;
	/* TLS on every TCP listener (unix sockets stay plaintext: file permissions guard
	 * them). A client certificate is verified against the CA when one is presented. NULL:
	 * plaintext. Needs a certificate and key. */
	const struct gw_rpc_tls *tls;
	/* Bounds: calls handled at once (each holds a worker thread; beyond it a call is
	 * refused RESOURCE_EXHAUSTED at once), of which public ones (health checks, which need
	 * no token), and streams per connection. 0: 64, 16 and 32. */
	unsigned max_calls, max_public_calls, max_streams_per_conn;
	gw_rpc_call_end_fn on_call_end; /* NULL: none */
	void *on_call_end_opaque;
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
/* The caller's "authorization: SCHEME VALUE" metadata: VALUE (in the call's arena), or NULL. */
const char *gw_rpc_call_credential(struct gw_rpc_call *call, const char *scheme);
/* Whether the caller came over TLS with a certificate the CA signed. */
bool gw_rpc_call_peer_verified(const struct gw_rpc_call *call);
/* Whether that certificate names `name` among its subject alternative names (DNS or IP). */
bool gw_rpc_call_peer_has_name(const struct gw_rpc_call *call, const char *name);
/* The names, comma-separated, for messages ("" without a verified certificate). */
const char *gw_rpc_call_peer_names(const struct gw_rpc_call *call);
/* Whether the call came through the unix socket (the host's owner). */
bool gw_rpc_call_is_local(const struct gw_rpc_call *call);

/* ---- client ---- */

struct gw_rpc_client;

struct gw_rpc_status {
	enum gw_rpc_code code;
	char message[512];
};

/* target: "HOST:PORT" or "unix:PATH"; token: bearer token or NULL. */
int gw_rpc_client_open(const char *target, const char *token, size_t max_msg,
		       struct gw_rpc_client **out);
/* The same over TLS (tls NULL: plaintext): the server's certificate must chain to tls's CA and
 * name the target's host, or server_name when given; tls's certificate, if any, is presented
 * to the server (mutual TLS). */
int gw_rpc_client_open_tls(const char *target, const char *token, size_t max_msg,
			   const struct gw_rpc_tls *tls, const char *server_name,
			   struct gw_rpc_client **out);
/* Replaces the authorization sent with each call by "SCHEME VALUE" (a grant, for instance). */
int gw_rpc_client_set_auth(struct gw_rpc_client *c, const char *scheme, const char *value);
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
