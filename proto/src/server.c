/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gRPC server on gRPC core: one completion-queue thread matches calls and completions; each
 * admitted call runs its handler on a worker thread, so a slow handler (a VM starting, a
 * console stream) never holds up the others. Everything is bounded: calls at once (workers),
 * public calls among them, streams per connection, and the request payload is read only once
 * the caller is authenticated. Call sequence per gRPC core's server API: request a registered
 * call without its payload, check its metadata, post RECV_CLOSE_ON_SERVER to learn of
 * cancellation, RECV_MESSAGE, then SEND_INITIAL_METADATA, SEND_MESSAGE and
 * SEND_STATUS_FROM_SERVER.
 */
#include "godwit/deadline.h"
#include "rpc_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	bool is_public;
	bool peer_verified;
	char peer_names[256];	  /* the client certificate's SANs, comma-separated */
	struct gw_rpc_call *next; /* in the server's queue of calls waiting for a worker */
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

	bool tls;
	/* Listening sockets passed in ("unix-fd:N") and the threads accepting on them; their
	 * connections reach gRPC as "fd:N" peers, local like unix:PATH ones. */
	int passed_fds[8];
	size_t npassed;
	struct gw_rpc_fd_listener *fd_listeners[8];
	gw_rpc_call_end_fn on_end;
	void *on_end_opaque;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t work;
	unsigned active, active_public; /* admitted calls not yet ended */
	unsigned max_calls, max_public;
	unsigned workers, idle;
	struct gw_rpc_call *queue_head, *queue_tail;
	bool shutting_down;
	bool shutdown_done;
	struct tag shutdown_tag;
};

static void slot_post(struct method_slot *s);
static void generic_post(struct gw_rpc_server *srv);

static void report_end(const struct gw_rpc_server *srv, const struct gw_rpc_method *m,
		       enum gw_rpc_code code)
{
	if (srv->on_end)
		srv->on_end(srv->on_end_opaque, m ? m->service->name : NULL, m ? m->name : NULL,
			    code);
}

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
	bool pub = call->is_public;
	free(call);
	pthread_mutex_lock(&srv->lock);
	srv->active--;
	if (pub)
		srv->active_public--;
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
	report_end(call->srv, call->slot->m, code);
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

/* The value of the caller's authorization metadata, or NULL. */
static const grpc_slice *auth_value(const struct gw_rpc_call *call)
{
	for (size_t i = 0; i < call->meta.count; i++) {
		const grpc_metadata *m = &call->meta.metadata[i];
		if (!grpc_slice_str_cmp(m->key, "authorization"))
			return &m->value;
	}
	return NULL;
}

const char *gw_rpc_call_credential(struct gw_rpc_call *call, const char *scheme)
{
	const grpc_slice *v = auth_value(call);
	size_t sl = strlen(scheme);
	if (!v)
		return NULL;
	const char *p = (const char *)GRPC_SLICE_START_PTR(*v);
	size_t n = GRPC_SLICE_LENGTH(*v);
	if (n <= sl + 1 || strncmp(p, scheme, sl) != 0 || p[sl] != ' ')
		return NULL;
	char *out = gw_rpc_call_alloc(call, n - sl);
	if (out) {
		memcpy(out, p + sl + 1, n - sl - 1);
		out[n - sl - 1] = '\0';
	}
	return out;
}

bool gw_rpc_call_peer_verified(const struct gw_rpc_call *call)
{
	return call->peer_verified;
}

bool gw_rpc_call_peer_has_name(const struct gw_rpc_call *call, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = call->peer_names; call->peer_verified && *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && strncmp(p, name, n) == 0)
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

const char *gw_rpc_call_peer_names(const struct gw_rpc_call *call)
{
	return call->peer_verified ? call->peer_names : "";
}

bool gw_rpc_call_is_local(const struct gw_rpc_call *call)
{
	return call->is_unix;
}

/* What TLS says of the caller: whether its certificate verified, and the names it carries. */
static void take_peer(struct gw_rpc_call *call)
{
	grpc_auth_context *ac = grpc_call_auth_context(call->call);
	if (!ac)
		return;
	call->peer_verified = grpc_auth_context_peer_is_authenticated(ac) != 0;
	grpc_auth_property_iterator it =
	    grpc_auth_context_find_properties_by_name(ac, GRPC_X509_SAN_PROPERTY_NAME);
	const grpc_auth_property *p;
	size_t used = 0;
	while ((p = grpc_auth_property_iterator_next(&it))) {
		size_t room = sizeof(call->peer_names) - used;
		if (p->value_length + 2 > room)
			break;
		if (used)
			call->peer_names[used++] = ',';
		memcpy(call->peer_names + used, p->value, p->value_length);
		used += p->value_length;
		call->peer_names[used] = '\0';
	}
	grpc_auth_context_release(ac);
}

/* Who may make this call, from its metadata alone (the payload is not read yet): 0, or
 * -EACCES with the reason set. */
static int authenticate(struct gw_rpc_call *call)
{
	struct gw_rpc_server *srv = call->srv;
	const struct gw_rpc_method *m = call->slot->m;
	if (call->is_unix || m->public)
		return 0;
	if (m->peer) {
		if (!srv->tls || call->peer_verified)
			return 0;
		gw_rpc_call_error(call,
				  "%s is for godwit hosts: connect with a host certificate "
				  "the CA of this godwitd signed (mutual TLS, --tls-cert)",
				  call->slot->path);
		return -EACCES;
	}
	if (!srv->token)
		return 0;
	const grpc_slice *v = auth_value(call);
	if (!v) {
		gw_rpc_call_error(call, "missing bearer token: pass --token-file (the token is in "
					"the godwitd state directory's 'token' file)");
		return -EACCES;
	}
	const char *p = (const char *)GRPC_SLICE_START_PTR(*v);
	size_t n = GRPC_SLICE_LENGTH(*v);
	if (n > 7 && strncmp(p, "Bearer ", 7) == 0 &&
	    ct_equal(p + 7, n - 7, srv->token, strlen(srv->token)))
		return 0;
	gw_rpc_call_error(call, "wrong bearer token: use the token in the state directory's "
				"'token' file of the godwitd you call");
	return -EACCES;
}

/* The request message, read only now that the caller is admitted: 0 with *req, or an error
 * with the reason set. */
static int read_request(struct gw_rpc_call *call, ProtobufCMessage **req)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &call->payload;
	if (!run_batch(call, &op, 1) || !call->payload) {
		gw_rpc_call_error(call, "request message missing");
		return -EINVAL;
	}
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, call->payload)) {
		gw_rpc_call_error(call, "unreadable request payload");
		return -EINVAL;
	}
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	*req = protobuf_c_message_unpack(call->slot->md->input, NULL, GRPC_SLICE_LENGTH(s),
					 GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	if (!*req) {
		gw_rpc_call_error(call, "malformed %s message", call->slot->md->input->name);
		return -EINVAL;
	}
	return 0;
}

static void run_call(struct gw_rpc_call *call)
{
	const struct gw_rpc_method *m = call->slot->m;
	ProtobufCMessage *req = NULL, *resp = NULL;
	int rc = read_request(call, &req);
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
	/* What the handler tagged its log lines with is not the next call's. */
	gw_log_thread_fields_clear();
}

/* ---- the worker pool ---- */

#define WORKER_IDLE_S	  30 /* an idle worker beyond the few kept ends after this */
#define WORKERS_KEPT	  4
#define DEFAULT_MAX_CALLS 64
#define DEFAULT_MAX_PUB	  16
/* How long a shutting-down server lets its calls finish before it cancels them. */
#define SHUTDOWN_GRACE_MS 1000
#define DEFAULT_STREAMS	  32

static void *worker(void *arg)
{
	struct gw_rpc_server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		while (!srv->queue_head && !srv->shutting_down) {
			struct timespec ts = gw_deadline_ms(WORKER_IDLE_S * 1000);
			srv->idle++;
			int w = pthread_cond_timedwait(&srv->work, &srv->lock, &ts);
			srv->idle--;
			if (w == ETIMEDOUT && !srv->queue_head && srv->workers > WORKERS_KEPT)
				goto out;
		}
		struct gw_rpc_call *call = srv->queue_head;
		if (!call)
			break; /* shutting down with nothing queued */
		srv->queue_head = call->next;
		if (!srv->queue_head)
			srv->queue_tail = NULL;
		pthread_mutex_unlock(&srv->lock);
		run_call(call);
		pthread_mutex_lock(&srv->lock);
	}
out:
	srv->workers--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* Takes the call into the queue if the bounds allow: 0, or -EBUSY (the caller answers). A
 * worker is started when none is idle, up to one per admitted call. */
static int admit(struct gw_rpc_server *srv, struct gw_rpc_call *call)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->active >= srv->max_calls ||
	    (call->is_public && srv->active_public >= srv->max_public)) {
		pthread_mutex_unlock(&srv->lock);
		return -EBUSY;
	}
	unsigned queued = 0;
	for (struct gw_rpc_call *c = srv->queue_head; c; c = c->next)
		queued++;
	if (queued >= srv->idle && srv->workers < srv->max_calls) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, worker, srv) == 0)
			srv->workers++;
		pthread_attr_destroy(&attr);
		if (!srv->workers) {
			pthread_mutex_unlock(&srv->lock);
			return -EBUSY;
		}
	}
	srv->active++;
	if (call->is_public)
		srv->active_public++;
	call->next = NULL;
	if (srv->queue_tail)
		srv->queue_tail->next = call;
	else
		srv->queue_head = call;
	srv->queue_tail = call;
	pthread_cond_signal(&srv->work);
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

/* Ends a call that was not admitted, without a thread: gRPC sends the status. */
static void refuse(struct gw_rpc_call *call, grpc_status_code code)
{
	GW_DEBUG(call->srv->prefix, "%s refused: %s", call->slot->path, call->errmsg);
	grpc_call_cancel_with_status(call->call, code, call->errmsg, NULL);
	report_end(call->srv, call->slot->m, (enum gw_rpc_code)code);
	grpc_call_unref(call->call);
	grpc_metadata_array_destroy(&call->meta);
	pthread_cond_destroy(&call->cond);
	pthread_mutex_destroy(&call->lock);
	free(call);
}

/* On the completion-queue thread: a new call. Authenticated and admitted here, from its
 * metadata alone, so that a caller without the token or beyond the bounds costs neither a
 * thread nor the reading of its payload. */
static void dispatch(struct method_slot *s)
{
	struct gw_rpc_server *srv = s->srv;
	struct gw_rpc_call *call = calloc(1, sizeof(*call));
	if (!call) {
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
					     "out of memory", NULL);
		report_end(srv, s->m, GW_RPC_RESOURCE_EXHAUSTED);
		grpc_call_unref(s->call);
		grpc_metadata_array_destroy(&s->meta);
		slot_post(s);
		return;
	}
	call->srv = srv;
	call->slot = s;
	call->call = s->call;
	call->deadline = s->deadline;
	call->meta = s->meta;
	call->is_public = s->m->public;
	call->batch_tag.kind = TAG_BATCH;
	call->close_tag.kind = TAG_CLOSE;
	call->refs = 2; /* the worker and the close notification */
	pthread_mutex_init(&call->lock, NULL);
	pthread_cond_init(&call->cond, NULL);
	char *peer = grpc_call_get_peer(call->call);
	call->is_unix = peer && (strncmp(peer, "unix:", 5) == 0 ||
				 (srv->npassed && strncmp(peer, "fd:", 3) == 0));
	gpr_free(peer);
	slot_post(s); /* be ready for the next call of this method at once */

	if (!call->is_unix && srv->tls)
		take_peer(call);
	if (authenticate(call)) {
		refuse(call, GRPC_STATUS_UNAUTHENTICATED);
		return;
	}
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &call->cancelled;
	if (admit(srv, call)) {
		gw_rpc_call_error(call, "server busy: %u calls in progress%s; retry later",
				  srv->max_calls,
				  call->is_public ? " or as many health checks" : "");
		GW_WARN(srv->prefix, "%s refused: %s", s->path, call->errmsg);
		refuse(call, GRPC_STATUS_RESOURCE_EXHAUSTED);
		return;
	}
	/* From here the worker may run the call: the close notification's reference is taken
	 * back if it cannot be posted. */
	if (grpc_call_start_batch(call->call, &op, 1, &call->close_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_lock(&call->lock);
		call->closed = true;
		pthread_mutex_unlock(&call->lock);
		call_put(call);
	}
}

static void slot_post(struct method_slot *s)
{
	if (s->srv->shutting_down)
		return;
	s->call = NULL;
	grpc_metadata_array_init(&s->meta);
	grpc_call_error e =
	    grpc_server_request_registered_call(s->srv->server, s->handle, &s->call, &s->deadline,
						&s->meta, NULL, s->srv->cq, s->srv->cq, &s->tag);
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
	report_end(srv, NULL, GW_RPC_UNIMPLEMENTED);
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
	pthread_cond_destroy(&srv->work);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	grpc_shutdown();
}

/* TLS for TCP listeners when configured: client certificates are asked for and verified when
 * sent, not required (the CLI may come with the bearer token alone; Peer methods require one,
 * in authenticate). */
static grpc_server_credentials *listen_creds(const struct gw_rpc_tls *tls, bool is_unix)
{
	if (!tls || is_unix)
		return grpc_insecure_server_credentials_create();
	grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem,
					   .cert_chain = tls->cert_pem};
	return grpc_ssl_server_credentials_create_ex(
	    tls->ca_pem, &pair, 1, GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}

/* "unix-fd:N": N must be a listening unix stream socket; kept for gw_rpc_fd_listener_start. */
static int passed_fd_check(struct gw_rpc_server *srv, const char *num)
{
	char *end;
	long fd = strtol(num, &end, 10);
	int type = 0, listening = 0;
	struct sockaddr_storage ss;
	socklen_t tl = sizeof(type), ll = sizeof(listening), sl = sizeof(ss);
	if (!*num || *end || fd < 0 || fd > INT32_MAX ||
	    getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 ||
	    getsockname((int)fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != AF_UNIX ||
	    type != SOCK_STREAM || !listening) {
		GW_ERR(srv->prefix, "unix-fd:%s is not a listening unix stream socket", num);
		return -EINVAL;
	}
	srv->passed_fds[srv->npassed++] = (int)fd;
	return 0;
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
	pthread_cond_init(&srv->work, NULL);
	srv->max_calls = cfg->max_calls ? cfg->max_calls : DEFAULT_MAX_CALLS;
	srv->max_public = cfg->max_public_calls ? cfg->max_public_calls : DEFAULT_MAX_PUB;
	srv->tls = cfg->tls != NULL;
	srv->ctx = ctx;
	srv->on_end = cfg->on_call_end;
	srv->on_end_opaque = cfg->on_call_end_opaque;
	srv->token = cfg->token ? strdup(cfg->token) : NULL;
	srv->shutdown_tag.kind = TAG_SHUTDOWN;
	srv->generic.tag.kind = TAG_GENERIC;
	srv->generic.done.kind = TAG_GENERIC_DONE;
	int rc = 0;
	if (cfg->tls && !cfg->tls->cert_pem) {
		GW_ERR(srv->prefix, "TLS needs a certificate and its key");
		rc = -EINVAL;
		free(srv);
		grpc_shutdown();
		return rc;
	}

	size_t max_msg = cfg->max_msg ? cfg->max_msg : GW_RPC_DEFAULT_MAX_MSG;
	unsigned streams = cfg->max_streams_per_conn ? cfg->max_streams_per_conn : DEFAULT_STREAMS;
	/* Connections that stop answering pings go after 30 + 10 s; one with no call for 5
	 * minutes is closed; a handshake that takes over 10 s fails; a client that pings more
	 * often than every 10 s without calls is cut off. */
#define INT_ARG(k, v) {.type = GRPC_ARG_INTEGER, .key = (char *)(k), .value.integer = (int)(v)}
	grpc_arg args[] = {
	    INT_ARG(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)max_msg),
	    INT_ARG(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (int)max_msg),
	    INT_ARG(GRPC_ARG_MAX_CONCURRENT_STREAMS, (int)streams),
	    INT_ARG(GRPC_ARG_KEEPALIVE_TIME_MS, 30000),
	    INT_ARG(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000),
	    INT_ARG(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300000),
	    INT_ARG(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10000),
	    INT_ARG(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000),
	    INT_ARG(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2),
	};
#undef INT_ARG
	grpc_channel_args cargs = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
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
		s->handle = grpc_server_register_method(srv->server, s->path, NULL,
							GRPC_SRM_PAYLOAD_NONE, 0);
		if (!s->handle) {
			rc = -EINVAL;
			goto err_destroy;
		}
	}
	srv->nslots = n;
	for (const char *const *l = cfg->listen; *l && srv->nlisten < 8; l++) {
		if (strncmp(*l, "unix-fd:", 8) == 0) {
			rc = passed_fd_check(srv, *l + 8);
			if (rc)
				goto err_destroy;
			srv->ports[srv->nlisten++] = 0;
			continue;
		}
		bool is_unix = strncmp(*l, "unix:", 5) == 0;
		if (is_unix)
			unlink(*l + 5); /* a stale socket from a previous run */
		grpc_server_credentials *creds = listen_creds(cfg->tls, is_unix);
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
	for (size_t i = 0; i < srv->npassed; i++) {
		rc = gw_rpc_fd_listener_start(srv->server, srv->passed_fds[i], srv->prefix,
					      &srv->fd_listeners[i]);
		if (rc) {
			GW_ERR(srv->prefix, "cannot accept on fd %d: %s", srv->passed_fds[i],
			       strerror(-rc));
			gw_rpc_server_shutdown(srv);
			return rc;
		}
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
	/* No new connection from a passed socket once gRPC is shutting down. */
	for (size_t i = 0; i < srv->npassed; i++)
		gw_rpc_fd_listener_stop(srv->fd_listeners[i]);
	pthread_mutex_lock(&srv->lock);
	srv->shutting_down = true;
	pthread_cond_broadcast(&srv->work);
	pthread_mutex_unlock(&srv->lock);
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
	/* Calls already answered, or about to be, finish first: a VMM whose guest exits right
	 * after Start must not cancel Start's answer on its way out. Whatever still runs after
	 * the grace (streams: consoles, watches) is cancelled; handlers see that and return. */
	struct timespec grace = gw_deadline_ms(SHUTDOWN_GRACE_MS);
	pthread_mutex_lock(&srv->lock);
	while (!srv->shutdown_done || srv->active) {
		if (pthread_cond_timedwait(&srv->cond, &srv->lock, &grace) == ETIMEDOUT)
			break;
	}
	bool drained = srv->shutdown_done && !srv->active;
	pthread_mutex_unlock(&srv->lock);
	if (!drained)
		grpc_server_cancel_all_calls(srv->server);
	pthread_mutex_lock(&srv->lock);
	while (!srv->shutdown_done || srv->active || srv->workers)
		pthread_cond_wait(&srv->cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	pthread_join(srv->cq_thread, NULL);
	grpc_completion_queue_destroy(srv->cq);
	server_free(srv);
}
