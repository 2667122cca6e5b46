/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC client on gRPC core with a pluck completion queue: each call waits for its own tag. */
#include "rpc_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_rpc_client {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	char *auth; /* "Bearer TOKEN" or NULL */
};

struct gw_rpc_stream {
	struct gw_rpc_client *c;
	grpc_call *call;
	grpc_metadata_array init_md, trailing_md;
	grpc_byte_buffer *recv;
	bool recv_pending;
	bool ended;
	int tag_recv;
	const ProtobufCMessageDescriptor *out_desc;
};

int gw_rpc_client_set_auth(struct gw_rpc_client *c, const char *scheme, const char *value)
{
	size_t n = strlen(scheme) + strlen(value) + 2;
	char *a = malloc(n);
	if (!a)
		return -ENOMEM;
	snprintf(a, n, "%s %s", scheme, value);
	free(c->auth);
	c->auth = a;
	return 0;
}

int gw_rpc_client_open_tls(const char *target, const char *token, size_t max_msg,
			   const struct gw_rpc_tls *tls, const char *server_name,
			   struct gw_rpc_client **out)
{
	grpc_init();
	struct gw_rpc_client *c = calloc(1, sizeof(*c));
	if (!c) {
		grpc_shutdown();
		return -ENOMEM;
	}
	if (token && gw_rpc_client_set_auth(c, "Bearer", token)) {
		free(c);
		grpc_shutdown();
		return -ENOMEM;
	}
	bool is_unix = strncmp(target, "unix:", 5) == 0;
	int mm = (int)(max_msg ? max_msg : GW_RPC_DEFAULT_MAX_MSG);
	grpc_arg args[3] = {
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     .value.integer = mm},
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
	     .value.integer = mm},
	    {.type = GRPC_ARG_STRING,
	     .key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
	     .value.string = (char *)server_name},
	};
	grpc_channel_args cargs = {.num_args = server_name && tls ? 3 : 2, .args = args};
	grpc_channel_credentials *creds;
	if (tls && !is_unix) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem,
						   .cert_chain = tls->cert_pem};
		creds = grpc_ssl_credentials_create(tls->ca_pem, tls->cert_pem ? &pair : NULL, NULL,
						    NULL);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	c->ch = grpc_channel_create(target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	*out = c;
	return 0;
}

int gw_rpc_client_open(const char *target, const char *token, size_t max_msg,
		       struct gw_rpc_client **out)
{
	return gw_rpc_client_open_tls(target, token, max_msg, NULL, NULL, out);
}

void gw_rpc_client_close(struct gw_rpc_client *c)
{
	if (!c)
		return;
	grpc_channel_destroy(c->ch);
	grpc_completion_queue_shutdown(c->cq);
	grpc_completion_queue_destroy(c->cq);
	free(c->auth);
	free(c);
	grpc_shutdown();
}

static gpr_timespec deadline_of(int timeout_ms)
{
	if (timeout_ms < 0)
		return gpr_inf_future(GPR_CLOCK_REALTIME);
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
			    gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

static grpc_call *new_call(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
			   const char *method, int timeout_ms)
{
	char path[192];
	snprintf(path, sizeof(path), "/%s/%s", svc->name, method);
	grpc_slice m = grpc_slice_from_copied_string(path);
	grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m,
						   NULL, deadline_of(timeout_ms), NULL);
	grpc_slice_unref(m);
	return call;
}

static bool pluck(struct gw_rpc_client *c, void *tag, gpr_timespec until)
{
	grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, until, NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return NULL;
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

static void set_status(struct gw_rpc_status *st, grpc_status_code code, grpc_slice details)
{
	st->code = (enum gw_rpc_code)code;
	size_t n = GRPC_SLICE_LENGTH(details);
	if (n >= sizeof(st->message))
		n = sizeof(st->message) - 1;
	memcpy(st->message, GRPC_SLICE_START_PTR(details), n);
	st->message[n] = '\0';
	if (n || st->code == GW_RPC_OK)
		return;
	/* A status without details (the transport's own, a server that said nothing): never an
	 * empty message for whoever shows it. */
	switch (st->code) {
	case GW_RPC_DEADLINE_EXCEEDED:
		snprintf(st->message, sizeof(st->message), "no answer before the call's deadline");
		break;
	case GW_RPC_UNAVAILABLE:
		snprintf(st->message, sizeof(st->message),
			 "the server cannot be reached or the connection was lost");
		break;
	case GW_RPC_CANCELLED:
		snprintf(st->message, sizeof(st->message), "the call was cancelled");
		break;
	default:
		snprintf(st->message, sizeof(st->message), "%s, with no details",
			 gw_rpc_code_name(st->code));
	}
}

static void fail(struct gw_rpc_status *st, enum gw_rpc_code code, const char *msg)
{
	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s", msg);
}

static size_t send_md(struct gw_rpc_client *c, grpc_metadata *md)
{
	if (!c->auth)
		return 0;
	memset(md, 0, sizeof(*md));
	md->key = grpc_slice_from_static_string("authorization");
	md->value = grpc_slice_from_static_string(c->auth);
	return 1;
}

enum gw_rpc_code gw_rpc_unary(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
			      const char *method, const ProtobufCMessage *req,
			      ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st)
{
	*resp = NULL;
	const ProtobufCMethodDescriptor *md =
	    protobuf_c_service_descriptor_get_method_by_name(svc, method);
	if (!md) {
		fail(st, GW_RPC_INTERNAL, "no such method in the service descriptor");
		return st->code;
	}
	grpc_call *call = new_call(c, svc, method, timeout_ms);
	grpc_byte_buffer *out = gw_rpc_pack(req);
	grpc_byte_buffer *in = NULL;
	grpc_metadata auth;
	grpc_metadata_array init_md, trailing_md;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trailing_md);
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = send_md(c, &auth);
	ops[0].data.send_initial_metadata.metadata = &auth;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = out;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &in;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &code;
	ops[5].data.recv_status_on_client.status_details = &details;
	int tag;
	if (!out || grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
		fail(st, GW_RPC_INTERNAL, "cannot start the call");
	} else {
		pluck(c, &tag, gpr_inf_future(GPR_CLOCK_REALTIME));
		set_status(st, code, details);
		if (code == GRPC_STATUS_OK) {
			*resp = in ? unpack(md->output, in) : NULL;
			if (!*resp)
				fail(st, GW_RPC_DATA_LOSS,
				     "the server's answer could not be decoded");
		}
	}
	if (in)
		grpc_byte_buffer_destroy(in);
	if (out)
		grpc_byte_buffer_destroy(out);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_call_unref(call);
	return st->code;
}

enum gw_rpc_code gw_rpc_stream_open(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
				    const char *method, const ProtobufCMessage *req, int timeout_ms,
				    struct gw_rpc_stream **out, struct gw_rpc_status *st)
{
	*out = NULL;
	struct gw_rpc_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		fail(st, GW_RPC_RESOURCE_EXHAUSTED, "out of memory");
		return st->code;
	}
	const ProtobufCMethodDescriptor *md =
	    protobuf_c_service_descriptor_get_method_by_name(svc, method);
	if (!md) {
		free(s);
		fail(st, GW_RPC_INTERNAL, "no such method in the service descriptor");
		return st->code;
	}
	s->out_desc = md->output;
	s->c = c;
	s->call = new_call(c, svc, method, timeout_ms);
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trailing_md);
	grpc_byte_buffer *bb = gw_rpc_pack(req);
	grpc_metadata auth;
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = send_md(c, &auth);
	ops[0].data.send_initial_metadata.metadata = &auth;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	int tag;
	bool ok = bb && grpc_call_start_batch(s->call, ops, 3, &tag, NULL) == GRPC_CALL_OK &&
		  pluck(c, &tag, gpr_inf_future(GPR_CLOCK_REALTIME));
	if (bb)
		grpc_byte_buffer_destroy(bb);
	if (!ok) {
		fail(st, GW_RPC_UNAVAILABLE, "cannot send the request");
		gw_rpc_stream_close(s);
		return st->code;
	}
	st->code = GW_RPC_OK;
	st->message[0] = '\0';
	*out = s;
	return GW_RPC_OK;
}

static void final_status(struct gw_rpc_stream *s, struct gw_rpc_status *st)
{
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	op.data.recv_status_on_client.status = &code;
	op.data.recv_status_on_client.status_details = &details;
	int tag;
	if (grpc_call_start_batch(s->call, &op, 1, &tag, NULL) == GRPC_CALL_OK)
		pluck(s->c, &tag, gpr_inf_future(GPR_CLOCK_REALTIME));
	set_status(st, code, details);
	grpc_slice_unref(details);
	s->ended = true;
}

int gw_rpc_stream_next(struct gw_rpc_stream *s, ProtobufCMessage **msg, int timeout_ms,
		       struct gw_rpc_status *st)
{
	*msg = NULL;
	if (s->ended)
		return 0;
	if (!s->recv_pending) {
		grpc_op ops[2];
		size_t n = 0;
		memset(ops, 0, sizeof(ops));
		if (s->init_md.count == 0 && s->tag_recv == 0) {
			ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
			s->tag_recv = 1;
		}
		ops[n].op = GRPC_OP_RECV_MESSAGE;
		ops[n++].data.recv_message.recv_message = &s->recv;
		if (grpc_call_start_batch(s->call, ops, n, &s->recv_pending, NULL) !=
		    GRPC_CALL_OK) {
			fail(st, GW_RPC_INTERNAL, "cannot read from the stream");
			return -EIO;
		}
		s->recv_pending = true;
	}
	grpc_event ev =
	    grpc_completion_queue_pluck(s->c->cq, &s->recv_pending, deadline_of(timeout_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT)
		return -ETIMEDOUT; /* the read stays posted; call next again or close */
	s->recv_pending = false;
	if (!s->recv) {
		final_status(s, st);
		return 0;
	}
	*msg = unpack(s->out_desc, s->recv);
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	if (!*msg) {
		fail(st, GW_RPC_DATA_LOSS, "a stream message could not be decoded");
		return -EBADMSG;
	}
	return 1;
}

void gw_rpc_stream_close(struct gw_rpc_stream *s)
{
	if (!s)
		return;
	if (!s->ended)
		grpc_call_cancel(s->call, NULL);
	if (s->recv_pending)
		grpc_completion_queue_pluck(s->c->cq, &s->recv_pending,
					    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_call_unref(s->call);
	free(s);
}
