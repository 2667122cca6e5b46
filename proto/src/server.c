/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC server on gRPC core: one completion-queue thread matches calls and completions; each
 * call runs its handler on a thread of its own, so a slow handler (a VM starting, a console
 * stream) never holds up the others. Call sequence per gRPC core's server API: request a
 * registered call with its payload, post RECV_CLOSE_ON_SERVER to learn of cancellation,
 * answer with SEND_INITIAL_METADATA, SEND_MESSAGE and SEND_STATUS_FROM_SERVER.
 */
#include "godwit/deadline.h"
#include "rpc_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum tag_kind {
	TAG_REQUEST,
	TAG_GENERIC,
	TAG_GENERIC_DONE,
	TAG_BATCH,
	TAG_CLOSE,
	TAG_SHUTDOWN,
};

struct tag {
	enum tag_kind kind;
};

struct method_slot {
	struct tag tag;
	struct gw_rpc_server *srv;
	const struct gw_rpc_method *m;
	const ProtobufCMethodDescriptor *md;
	char path[192];
	void *handle;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array meta;
	grpc_byte_buffer *payload;
};

/* The catch-all for methods nobody registered: answered UNIMPLEMENTED. */
struct generic_slot {
	struct tag tag;
	struct tag done;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array meta;
	grpc_slice status_msg;
	int cancelled;
	bool answering;
};

struct arena_chunk {
	struct arena_chunk *next;
	max_align_t data[];
};

struct gw_rpc_call {
	struct gw_rpc_server *srv;
	const struct method_slot *slot;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array meta;
	grpc_byte_buffer *payload;
	bool is_unix;
	struct arena_chunk *arena;
	char errmsg[512];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tag batch_tag;
	bool batch_done, batch_ok;
	struct tag close_tag;
	bool closed;
	int cancelled;
	bool sent_md;
	unsigned refs;
};

struct gw_rpc_server {
	char prefix[32];
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t cq_thread;
	char *token;
	struct method_slot *slots;
	size_t nslots;
	struct generic_slot generic;
	void *ctx;
	int ports[8];
	size_t nlisten;
	char *unix_paths[8];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned active;
	bool shutting_down;
	bool shutdown_done;
	struct tag shutdown_tag;
};

static void slot_post(struct method_slot *s);
static void generic_post(struct gw_rpc_server *srv);

/* ---- arena ---- */

void *gw_rpc_call_alloc(struct gw_rpc_call *call, size_t n)
{
	struct arena_chunk *c = calloc(1, sizeof(*c) + n);
	if (!c)
		return NULL;
	c->next = call->arena;
	call->arena = c;
	return c->data;
}

char *gw_rpc_call_strdup(struct gw_rpc_call *call, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = gw_rpc_call_alloc(call, n);
	if (d)
		memcpy(d, s, n);
	return d;
}

char *gw_rpc_call_printf(struct gw_rpc_call *call, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return gw_rpc_call_strdup(call, tmp);
}

void gw_rpc_call_error(struct gw_rpc_call *call, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->errmsg, sizeof(call->errmsg), fmt, ap);
	va_end(ap);
}

int64_t gw_rpc_call_deadline_ms(const struct gw_rpc_call *call)
{
	gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
	gpr_timespec d = gpr_convert_clock_type(call->deadline, GPR_CLOCK_MONOTONIC);
	if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
		return INT64_MAX;
	gpr_timespec left = gpr_time_sub(d, now);
	return left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

/* ---- call lifetime ---- */

static void call_put(struct gw_rpc_call *call)
{
	pthread_mutex_lock(&call->lock);
	unsigned left = --call->refs;
	pthread_mutex_unlock(&call->lock);
	if (left)
		return;
	struct gw_rpc_server *srv = call->srv;
	grpc_call_unref(call->call);
	if (call->payload)
		grpc_byte_buffer_destroy(call->payload);
	grpc_metadata_array_destroy(&call->meta);
	while (call->arena) {
		struct arena_chunk *n = call->arena->next;
		free(call->arena);
		call->arena = n;
	}
	pthread_cond_destroy(&call->cond);
	pthread_mutex_destroy(&call->lock);
	free(call);
	pthread_mutex_lock(&srv->lock);
	srv->active--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

bool gw_rpc_call_cancelled(struct gw_rpc_call *call)
{
	pthread_mutex_lock(&call->lock);
	bool c = call->closed && call->cancelled;
	pthread_mutex_unlock(&call->lock);
	return c;
}

bool gw_rpc_call_wait_cancel(struct gw_rpc_call *call, int timeout_ms)
{
	struct timespec ts = gw_deadline_ms(timeout_ms);
	pthread_mutex_lock(&call->lock);
	while (!call->closed) {
		if (pthread_cond_timedwait(&call->cond, &call->lock, &ts) == ETIMEDOUT)
			break;
	}
	bool c = call->closed;
	pthread_mutex_unlock(&call->lock);
	return c;
}

/* Runs one batch and waits for the completion queue thread to report it. */
static bool run_batch(struct gw_rpc_call *call, grpc_op *ops, size_t n)
{
	pthread_mutex_lock(&call->lock);
	call->batch_done = false;
	pthread_mutex_unlock(&call->lock);
	if (grpc_call_start_batch(call->call, ops, n, &call->batch_tag, NULL) != GRPC_CALL_OK)
		return false;
	pthread_mutex_lock(&call->lock);
	while (!call->batch_done)
		pthread_cond_wait(&call->cond, &call->lock);
	bool ok = call->batch_ok;
	pthread_mutex_unlock(&call->lock);
	return ok;
}

int gw_rpc_stream_send(struct gw_rpc_call *call, const ProtobufCMessage *msg)
{
	if (gw_rpc_call_cancelled(call))
		return -ECANCELED;
	grpc_byte_buffer *bb = gw_rpc_pack(msg);
	if (!bb)
		return -ENOMEM;
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!call->sent_md) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		call->sent_md = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = bb;
	bool ok = run_batch(call, ops, n);
	grpc_byte_buffer_destroy(bb);
	return ok ? 0 : -ECANCELED;
}

static void finish(struct gw_rpc_call *call, int rc, const ProtobufCMessage *resp)
{
	grpc_op ops[3];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!call->sent_md) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		call->sent_md = true;
	}
	grpc_byte_buffer *bb = NULL;
	if (rc == 0 && resp) {
		bb = gw_rpc_pack(resp);
		if (!bb) {
			rc = -ENOMEM;
			gw_rpc_call_error(call, "out of memory packing the response");
		} else {
			ops[n].op = GRPC_OP_SEND_MESSAGE;
			ops[n++].data.send_message.send_message = bb;
		}
	}
	enum gw_rpc_code code = gw_rpc_code_from_errno(rc);
	if (code != GW_RPC_OK && !call->errmsg[0])
		snprintf(call->errmsg, sizeof(call->errmsg), "%s", strerror(-rc));
	grpc_slice details = grpc_slice_from_copied_string(code == GW_RPC_OK ? "" : call->errmsg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n++].data.send_status_from_server.status_details = &details;
	run_batch(call, ops, n);
	grpc_slice_unref(details);
	if (bb)
		grpc_byte_buffer_destroy(bb);
	if (code != GW_RPC_OK)
		GW_DEBUG(call->srv->prefix, "%s -> %s: %s", call->slot->path,
			 gw_rpc_code_name(code), call->errmsg);
}

static bool ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* Constant time in the token's length: no early exit on the first mismatch. */
	unsigned diff = alen != blen;
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned)(a[i] ^ b[i]);
	return diff == 0;
}

static int authenticate(struct gw_rpc_call *call)
{
	struct gw_rpc_server *srv = call->srv;
	if (call->is_unix || !srv->token || call->slot->m->public)
		return 0;
	for (size_t i = 0; i < call->meta.count; i++) {
		grpc_metadata *m = &call->meta.metadata[i];
		if (!grpc_slice_str_cmp(m->key, "authorization")) {
			const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
			size_t vlen = GRPC_SLICE_LENGTH(m->value);
			if (vlen > 7 && strncmp(v, "Bearer ", 7) == 0 &&
			    ct_equal(v + 7, vlen - 7, srv->token, strlen(srv->token)))
				return 0;
			gw_rpc_call_error(call, "wrong bearer token: use the token in the state "
						"directory's 'token' file of the godwitd you call");
			return -EACCES;
		}
	}
	gw_rpc_call_error(call, "missing bearer token: pass --token-file (the token is in the "
				"godwitd state directory's 'token' file)");
	return -EACCES;
}

static void *call_thread(void *arg)
{
	struct gw_rpc_call *call = arg;
	const struct gw_rpc_method *m = call->slot->m;
	ProtobufCMessage *req = NULL, *resp = NULL;
	int rc = authenticate(call);
	if (rc == 0 && !call->payload) {
		gw_rpc_call_error(call, "request message missing");
		rc = -EINVAL;
	}
	if (rc == 0) {
		grpc_byte_buffer_reader rd;
		if (!grpc_byte_buffer_reader_init(&rd, call->payload)) {
			gw_rpc_call_error(call, "unreadable request payload");
			rc = -EINVAL;
		} else {
			grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
			req = protobuf_c_message_unpack(call->slot->md->input, NULL,
							GRPC_SLICE_LENGTH(s),
							GRPC_SLICE_START_PTR(s));
			grpc_slice_unref(s);
			if (!req) {
				gw_rpc_call_error(call, "malformed %s message",
						  call->slot->md->input->name);
				rc = -EINVAL;
			}
		}
	}
	if (rc == 0) {
		if (m->stream)
			rc = m->stream(call->srv->ctx, call, req);
		else
			rc = m->unary(call->srv->ctx, call, req, &resp);
		if (rc > 0)
			rc = 0;
	}
	finish(call, rc, m->stream ? NULL : resp);
	if (req)
		protobuf_c_message_free_unpacked(req, NULL);
	call_put(call);
	return NULL;
}

static void dispatch(struct method_slot *s)
{
	struct gw_rpc_server *srv = s->srv;
	struct gw_rpc_call *call = calloc(1, sizeof(*call));
	if (!call) {
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
					     "out of memory", NULL);
		grpc_call_unref(s->call);
		grpc_metadata_array_destroy(&s->meta);
		if (s->payload)
			grpc_byte_buffer_destroy(s->payload);
		slot_post(s);
		return;
	}
	call->srv = srv;
	call->slot = s;
	call->call = s->call;
	call->deadline = s->deadline;
	call->meta = s->meta;
	call->payload = s->payload;
	call->batch_tag.kind = TAG_BATCH;
	call->close_tag.kind = TAG_CLOSE;
	call->refs = 2; /* the handler thread and the close notification */
	pthread_mutex_init(&call->lock, NULL);
	pthread_cond_init(&call->cond, NULL);
	char *peer = grpc_call_get_peer(call->call);
	call->is_unix = peer && strncmp(peer, "unix:", 5) == 0;
	gpr_free(peer);
	slot_post(s); /* be ready for the next call of this method at once */

	pthread_mutex_lock(&srv->lock);
	srv->active++;
	pthread_mutex_unlock(&srv->lock);

	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &call->cancelled;
	if (grpc_call_start_batch(call->call, &op, 1, &call->close_tag, NULL) != GRPC_CALL_OK) {
		call->refs--;
		call->closed = true;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, call_thread, call) != 0) {
		GW_ERR(srv->prefix, "cannot start a handler thread for %s", s->path);
		gw_rpc_call_error(call, "server out of threads");
		finish(call, -EAGAIN, NULL);
		call_put(call);
	}
	pthread_attr_destroy(&attr);
}

static void slot_post(struct method_slot *s)
{
	if (s->srv->shutting_down)
		return;
	s->call = NULL;
	s->payload = NULL;
	grpc_metadata_array_init(&s->meta);
	grpc_call_error e = grpc_server_request_registered_call(
	    s->srv->server, s->handle, &s->call, &s->deadline, &s->meta,
	    s->md->input ? &s->payload : NULL, s->srv->cq, s->srv->cq, &s->tag);
	if (e != GRPC_CALL_OK)
		GW_ERR(s->srv->prefix, "cannot request calls for %s (error %d)", s->path, e);
}

static void generic_post(struct gw_rpc_server *srv)
{
	struct generic_slot *g = &srv->generic;
	if (srv->shutting_down)
		return;
	g->call = NULL;
	grpc_call_details_init(&g->details);
	grpc_metadata_array_init(&g->meta);
	grpc_server_request_call(srv->server, &g->call, &g->details, &g->meta, srv->cq, srv->cq,
				 &g->tag);
}

static void generic_answer(struct gw_rpc_server *srv)
{
	struct generic_slot *g = &srv->generic;
	char msg[256];
	snprintf(msg, sizeof(msg), "method %.*s is not implemented by this server",
		 (int)GRPC_SLICE_LENGTH(g->details.method),
		 (const char *)GRPC_SLICE_START_PTR(g->details.method));
	g->status_msg = grpc_slice_from_copied_string(msg);
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
	ops[1].data.send_status_from_server.status_details = &g->status_msg;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &g->cancelled;
	g->answering = true;
	if (grpc_call_start_batch(g->call, ops, 3, &g->done, NULL) != GRPC_CALL_OK) {
		g->answering = false;
		grpc_slice_unref(g->status_msg);
		grpc_call_unref(g->call);
		grpc_call_details_destroy(&g->details);
		grpc_metadata_array_destroy(&g->meta);
		generic_post(srv);
	}
}

static void *cq_thread(void *arg)
{
	struct gw_rpc_server *srv = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		switch (t->kind) {
		case TAG_REQUEST: {
			struct method_slot *s = (struct method_slot *)t;
			if (ev.success && s->call)
				dispatch(s);
			else
				grpc_metadata_array_destroy(&s->meta);
			break;
		}
		case TAG_GENERIC:
			if (ev.success && srv->generic.call) {
				generic_answer(srv);
			} else {
				grpc_call_details_destroy(&srv->generic.details);
				grpc_metadata_array_destroy(&srv->generic.meta);
			}
			break;
		case TAG_GENERIC_DONE: {
			struct generic_slot *g = &srv->generic;
			grpc_slice_unref(g->status_msg);
			grpc_call_unref(g->call);
			grpc_call_details_destroy(&g->details);
			grpc_metadata_array_destroy(&g->meta);
			g->answering = false;
			generic_post(srv);
			break;
		}
		case TAG_BATCH: {
			struct gw_rpc_call *c =
			    (struct gw_rpc_call *)((char *)t -
						   offsetof(struct gw_rpc_call, batch_tag));
			pthread_mutex_lock(&c->lock);
			c->batch_done = true;
			c->batch_ok = ev.success;
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			break;
		}
		case TAG_CLOSE: {
			struct gw_rpc_call *c =
			    (struct gw_rpc_call *)((char *)t -
						   offsetof(struct gw_rpc_call, close_tag));
			pthread_mutex_lock(&c->lock);
			c->closed = true;
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			call_put(c);
			break;
		}
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&srv->lock);
			srv->shutdown_done = true;
			pthread_cond_broadcast(&srv->cond);
			pthread_mutex_unlock(&srv->lock);
			break;
		}
	}
	return NULL;
}

static void server_free(struct gw_rpc_server *srv)
{
	for (size_t i = 0; i < srv->nlisten; i++) {
		if (srv->unix_paths[i]) {
			unlink(srv->unix_paths[i]);
			free(srv->unix_paths[i]);
		}
	}
	free(srv->slots);
	free(srv->token);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	grpc_shutdown();
}

int gw_rpc_server_start(const struct gw_rpc_server_config *cfg, const struct gw_rpc_method *methods,
			size_t n, void *ctx, struct gw_rpc_server **out)
{
	grpc_init();
	struct gw_rpc_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		grpc_shutdown();
		return -ENOMEM;
	}
	snprintf(srv->prefix, sizeof(srv->prefix), "%s", cfg->log_prefix ? cfg->log_prefix : "rpc");
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	srv->ctx = ctx;
	srv->token = cfg->token ? strdup(cfg->token) : NULL;
	srv->shutdown_tag.kind = TAG_SHUTDOWN;
	srv->generic.tag.kind = TAG_GENERIC;
	srv->generic.done.kind = TAG_GENERIC_DONE;
	int rc = 0;

	size_t max_msg = cfg->max_msg ? cfg->max_msg : GW_RPC_DEFAULT_MAX_MSG;
	grpc_arg args[2] = {
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     .value.integer = (int)max_msg},
	    {.type = GRPC_ARG_INTEGER,
	     .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
	     .value.integer = (int)max_msg},
	};
	grpc_channel_args cargs = {.num_args = 2, .args = args};
	srv->server = grpc_server_create(&cargs, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

	srv->slots = calloc(n, sizeof(*srv->slots));
	if (!srv->slots) {
		rc = -ENOMEM;
		goto err_destroy;
	}
	for (size_t i = 0; i < n; i++) {
		struct method_slot *s = &srv->slots[i];
		s->tag.kind = TAG_REQUEST;
		s->srv = srv;
		s->m = &methods[i];
		s->md = protobuf_c_service_descriptor_get_method_by_name(methods[i].service,
									 methods[i].name);
		if (!s->md || (!methods[i].unary == !methods[i].stream)) {
			GW_ERR(srv->prefix, "bad method table entry %s.%s",
			       methods[i].service->name, methods[i].name);
			rc = -EINVAL;
			goto err_destroy;
		}
		snprintf(s->path, sizeof(s->path), "/%s/%s", methods[i].service->name,
			 methods[i].name);
		s->handle = grpc_server_register_method(
		    srv->server, s->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!s->handle) {
			rc = -EINVAL;
			goto err_destroy;
		}
	}
	srv->nslots = n;
	for (const char *const *l = cfg->listen; *l && srv->nlisten < 8; l++) {
		bool is_unix = strncmp(*l, "unix:", 5) == 0;
		if (is_unix)
			unlink(*l + 5); /* a stale socket from a previous run */
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		/* Only the owner may use a unix socket: file permissions are its authentication.
		 * The socket is bound here, so it is born 0600 (the umask applies to bind(2)),
		 * never open to others for a moment. */
		mode_t old_mask = is_unix ? umask(0177) : 0;
		int port = grpc_server_add_http2_port(srv->server, *l, creds);
		if (is_unix)
			umask(old_mask);
		grpc_server_credentials_release(creds);
		if (port <= 0) {
			GW_ERR(srv->prefix, "cannot listen on %s: address in use or invalid", *l);
			rc = -EADDRINUSE;
			goto err_destroy;
		}
		if (is_unix && chmod(*l + 5, 0600) < 0) {
			rc = -errno;
			GW_ERR(srv->prefix, "cannot make %s private: %s", *l + 5, strerror(errno));
			goto err_destroy;
		}
		srv->ports[srv->nlisten] = is_unix ? 0 : port;
		srv->unix_paths[srv->nlisten] = is_unix ? strdup(*l + 5) : NULL;
		srv->nlisten++;
	}
	grpc_server_start(srv->server);
	for (size_t i = 0; i < n; i++)
		slot_post(&srv->slots[i]);
	generic_post(srv);
	if (pthread_create(&srv->cq_thread, NULL, cq_thread, srv) != 0) {
		rc = -EAGAIN;
		gw_rpc_server_shutdown(srv);
		return rc;
	}
	*out = srv;
	return 0;

err_destroy:
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(srv->cq);
	server_free(srv);
	return rc;
}

int gw_rpc_server_port(const struct gw_rpc_server *srv, size_t i)
{
	return i < srv->nlisten ? srv->ports[i] : -1;
}

void gw_rpc_server_shutdown(struct gw_rpc_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->shutting_down = true;
	pthread_mutex_unlock(&srv->lock);
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
	grpc_server_cancel_all_calls(srv->server);
	/* Handlers see their calls cancelled and return; wait for every one of them. */
	pthread_mutex_lock(&srv->lock);
	while (!srv->shutdown_done || srv->active)
		pthread_cond_wait(&srv->cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	pthread_join(srv->cq_thread, NULL);
	grpc_completion_queue_destroy(srv->cq);
	server_free(srv);
}
