/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the gRPC layer: unary and streaming calls, errors, auth, deadlines,
 * cancellation, malformed payloads, unknown methods, the server's bounds, status mapping and
 * JSON. */
#include "godwit/buf.h"
#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/v1/vms.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct test_ctx {
	int stream_cancelled;
	int handled;
};

/* Get: answers a Vm named after the request; "missing" -> NOT_FOUND; "slow" sleeps 2 s,
 * "brief" 300 ms. */
static int t_get(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		 ProtobufCMessage **resp)
{
	struct test_ctx *t = ctx;
	const Godwit__V1__VmRef *req = (const void *)rq;
	__atomic_add_fetch(&t->handled, 1, __ATOMIC_SEQ_CST);
	if (!strcmp(req->name, "missing")) {
		gw_rpc_call_error(call, "no VM named '%s'", req->name);
		return -ENOENT;
	}
	if (!strcmp(req->name, "slow"))
		sleep(2);
	if (!strcmp(req->name, "brief"))
		usleep(300 * 1000);
	Godwit__V1__Vm *vm = gw_rpc_call_alloc(call, sizeof(*vm));
	godwit__v1__vm__init(vm);
	vm->name = gw_rpc_call_printf(call, "vm-%s", req->name);
	vm->pid = 42;
	*resp = &vm->base;
	return 0;
}

/* Console: sends as many chunks as the name says ("5"), or until cancelled ("forever"). */
static int t_console(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq)
{
	struct test_ctx *t = ctx;
	const Godwit__V1__ConsoleRequest *req = (const void *)rq;
	bool forever = !strcmp(req->name, "forever");
	int n = forever ? 1000000 : atoi(req->name);
	for (int i = 0; i < n; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", i);
		Godwit__V1__ConsoleChunk c = GODWIT__V1__CONSOLE_CHUNK__INIT;
		c.data.data = (uint8_t *)buf;
		c.data.len = strlen(buf);
		if (gw_rpc_stream_send(call, &c.base)) {
			__atomic_store_n(&t->stream_cancelled, 1, __ATOMIC_SEQ_CST);
			return -ECANCELED;
		}
		if (forever)
			usleep(10000);
	}
	return 0;
}

static int t_health(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		    ProtobufCMessage **resp)
{
	(void)ctx;
	(void)rq;
	Grpc__Health__V1__HealthCheckResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	grpc__health__v1__health_check_response__init(r);
	r->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	*resp = &r->base;
	return 0;
}

/* Watch: a public stream that lasts until the client leaves (as grpc.health.v1 Watch does). */
static int t_watch(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq)
{
	(void)ctx;
	(void)rq;
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	if (gw_rpc_stream_send(call, &r.base))
		return -ECANCELED;
	gw_rpc_call_wait_cancel(call, 60000);
	return 0;
}

static const struct gw_rpc_method methods[] = {
    {.service = &godwit__v1__vms__descriptor, .name = "Get", .unary = t_get},
    {.service = &godwit__v1__vms__descriptor, .name = "Console", .stream = t_console},
    {.service = &grpc__health__v1__health__descriptor,
     .name = "Check",
     .unary = t_health,
     .public = true},
    {.service = &grpc__health__v1__health__descriptor,
     .name = "Watch",
     .stream = t_watch,
     .public = true},
};

static struct test_ctx ctx;
static struct gw_rpc_server *srv;
static char sock_path[64];
static char unix_target[80], tcp_target[64];

static int suite_init(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/gw-rpc-test-%d.sock", (int)getpid());
	snprintf(unix_target, sizeof(unix_target), "unix:%s", sock_path);
	const char *listen[] = {unix_target, "127.0.0.1:0", NULL};
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "s3cret"};
	if (gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), &ctx, &srv))
		return 1;
	snprintf(tcp_target, sizeof(tcp_target), "127.0.0.1:%d", gw_rpc_server_port(srv, 1));
	return 0;
}

static enum gw_rpc_code get(const char *target, const char *token, const char *name,
			    Godwit__V1__Vm **vm, struct gw_rpc_status *st, int timeout_ms)
{
	struct gw_rpc_client *c;
	if (gw_rpc_client_open(target, token, 0, &c))
		return GW_RPC_INTERNAL;
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)name;
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code code =
	    gw_rpc_unary(c, &godwit__v1__vms__descriptor, "Get", &ref.base, &resp, timeout_ms, st);
	*vm = (Godwit__V1__Vm *)resp;
	gw_rpc_client_close(c);
	return code;
}

static void test_unary_ok_and_error(void)
{
	Godwit__V1__Vm *vm;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(get(unix_target, NULL, "a", &vm, &st, 5000), GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(vm->name, "vm-a");
	CU_ASSERT_EQUAL(vm->pid, 42);
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	CU_ASSERT_EQUAL(get(unix_target, NULL, "missing", &vm, &st, 5000), GW_RPC_NOT_FOUND);
	CU_ASSERT_STRING_EQUAL(st.message, "no VM named 'missing'");
	CU_ASSERT_PTR_NULL(vm);
}

static void test_auth(void)
{
	Godwit__V1__Vm *vm;
	struct gw_rpc_status st;
	/* TCP needs the token; the unix socket (file permissions) does not. */
	CU_ASSERT_EQUAL(get(tcp_target, NULL, "a", &vm, &st, 5000), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "missing bearer token"));
	CU_ASSERT_EQUAL(get(tcp_target, "wrong", "a", &vm, &st, 5000), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "wrong bearer token"));
	CU_ASSERT_EQUAL(get(tcp_target, "s3cret-and-more", "a", &vm, &st, 5000),
			GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_EQUAL_FATAL(get(tcp_target, "s3cret", "a", &vm, &st, 5000), GW_RPC_OK);
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	/* Health checks are public. */
	struct gw_rpc_client *c;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(tcp_target, NULL, 0, &c), 0);
	Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp;
	CU_ASSERT_EQUAL(gw_rpc_unary(c, &grpc__health__v1__health__descriptor, "Check", &hreq.base,
				     &resp, 5000, &st),
			GW_RPC_OK);
	if (st.code == GW_RPC_OK)
		protobuf_c_message_free_unpacked(resp, NULL);
	gw_rpc_client_close(c);
}

static void test_deadline(void)
{
	Godwit__V1__Vm *vm;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(get(unix_target, NULL, "slow", &vm, &st, 300), GW_RPC_DEADLINE_EXCEEDED);
}

static void test_unknown_method_and_malformed(void)
{
	struct gw_rpc_client *c;
	struct gw_rpc_status st;
	ProtobufCMessage *resp;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(unix_target, NULL, 0, &c), 0);
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"x";
	/* Registered nowhere on this server. */
	CU_ASSERT_EQUAL(
	    gw_rpc_unary(c, &godwit__v1__vms__descriptor, "Delete", &ref.base, &resp, 5000, &st),
	    GW_RPC_UNIMPLEMENTED);
	/* A varint where Get's request has a string: the payload does not decode. */
	Grpc__Health__V1__HealthCheckResponse wrong = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	wrong.status = 1;
	CU_ASSERT_EQUAL(
	    gw_rpc_unary(c, &godwit__v1__vms__descriptor, "Get", &wrong.base, &resp, 5000, &st),
	    GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "malformed"));
	gw_rpc_client_close(c);
}

static void test_stream(void)
{
	struct gw_rpc_client *c;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(unix_target, NULL, 0, &c), 0);
	Godwit__V1__ConsoleRequest req = GODWIT__V1__CONSOLE_REQUEST__INIT;
	req.name = (char *)"5";
	struct gw_rpc_stream *s;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_stream_open(c, &godwit__v1__vms__descriptor, "Console",
						 &req.base, 5000, &s, &st),
			      GW_RPC_OK);
	int n = 0, r;
	ProtobufCMessage *m;
	while ((r = gw_rpc_stream_next(s, &m, 5000, &st)) == 1) {
		Godwit__V1__ConsoleChunk *ch = (Godwit__V1__ConsoleChunk *)m;
		char want[16];
		snprintf(want, sizeof(want), "%d", n);
		CU_ASSERT_EQUAL(ch->data.len, strlen(want));
		CU_ASSERT_EQUAL(memcmp(ch->data.data, want, ch->data.len), 0);
		protobuf_c_message_free_unpacked(m, NULL);
		n++;
	}
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_EQUAL(st.code, GW_RPC_OK);
	CU_ASSERT_EQUAL(n, 5);
	gw_rpc_stream_close(s);
	gw_rpc_client_close(c);
}

static void test_stream_cancel(void)
{
	struct gw_rpc_client *c;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(unix_target, NULL, 0, &c), 0);
	Godwit__V1__ConsoleRequest req = GODWIT__V1__CONSOLE_REQUEST__INIT;
	req.name = (char *)"forever";
	struct gw_rpc_stream *s;
	CU_ASSERT_EQUAL_FATAL(
	    gw_rpc_stream_open(c, &godwit__v1__vms__descriptor, "Console", &req.base, -1, &s, &st),
	    GW_RPC_OK);
	ProtobufCMessage *m;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(gw_rpc_stream_next(s, &m, 5000, &st), 1);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	gw_rpc_stream_close(s); /* the client walks away */
	gw_rpc_client_close(c);
	/* The server's handler learns of it and ends. */
	for (int i = 0; i < 200 && !__atomic_load_n(&ctx.stream_cancelled, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	CU_ASSERT_EQUAL(ctx.stream_cancelled, 1);
}

static unsigned threads(void)
{
	unsigned n = 0;
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %u", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* A stream open with its first message in: the call holds a worker from now on. */
static enum gw_rpc_code open_held(struct gw_rpc_client *c, const ProtobufCServiceDescriptor *svc,
				  const char *method, const ProtobufCMessage *req,
				  struct gw_rpc_stream **s)
{
	struct gw_rpc_status st;
	ProtobufCMessage *m;
	if (gw_rpc_stream_open(c, svc, method, req, -1, s, &st) != GW_RPC_OK)
		return st.code;
	int r = gw_rpc_stream_next(*s, &m, 10000, &st);
	if (r == 1) {
		protobuf_c_message_free_unpacked(m, NULL);
		return GW_RPC_OK;
	}
	gw_rpc_stream_close(*s);
	*s = NULL;
	return r == 0 ? st.code : GW_RPC_UNKNOWN;
}

/*
 * Bounds: calls held at once are capped (a flood of public Watch streams, which need no
 * token, takes at most its share and no thread beyond the cap), and a caller without the
 * token is refused before its payload is read or a handler runs.
 */
static void test_bounds(void)
{
	enum { MAX_CALLS = 6, MAX_PUB = 2, FLOOD = 120 };
	const char *listen[] = {"127.0.0.1:0", NULL};
	struct gw_rpc_server_config cfg = {.listen = listen,
					   .token = "s3cret",
					   .max_calls = MAX_CALLS,
					   .max_public_calls = MAX_PUB};
	struct gw_rpc_server *b;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), &ctx, &b),
			      0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", gw_rpc_server_port(b, 0));
	struct gw_rpc_client *anon, *admin;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(target, NULL, 0, &anon), 0);
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(target, "s3cret", 0, &admin), 0);
	unsigned before = threads();

	/* The flood: only MAX_PUB Watch streams get in; the rest are refused at once. */
	Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	static struct gw_rpc_stream *w[FLOOD];
	unsigned in = 0, busy = 0;
	for (int i = 0; i < FLOOD; i++) {
		enum gw_rpc_code c = open_held(anon, &grpc__health__v1__health__descriptor, "Watch",
					       &hreq.base, &w[i]);
		in += c == GW_RPC_OK;
		busy += c == GW_RPC_RESOURCE_EXHAUSTED;
	}
	CU_ASSERT_EQUAL(in, MAX_PUB);
	CU_ASSERT_EQUAL(busy, FLOOD - MAX_PUB);
	unsigned during = threads();
	CU_ASSERT(during <= before + MAX_CALLS);

	/* Callers with the token still get through, up to the overall cap. */
	Godwit__V1__Vm *vm;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(get(target, "s3cret", "a", &vm, &st, 5000), GW_RPC_OK);
	if (st.code == GW_RPC_OK)
		protobuf_c_message_free_unpacked(&vm->base, NULL);
	Godwit__V1__ConsoleRequest creq = GODWIT__V1__CONSOLE_REQUEST__INIT;
	creq.name = (char *)"forever";
	struct gw_rpc_stream *cs[MAX_CALLS - MAX_PUB];
	for (int i = 0; i < MAX_CALLS - MAX_PUB; i++)
		CU_ASSERT_EQUAL(
		    open_held(admin, &godwit__v1__vms__descriptor, "Console", &creq.base, &cs[i]),
		    GW_RPC_OK);
	CU_ASSERT_EQUAL(get(target, "s3cret", "a", &vm, &st, 5000), GW_RPC_RESOURCE_EXHAUSTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "server busy"));
	CU_ASSERT(threads() <= before + MAX_CALLS);

	/* A call without the token is refused from its metadata: a payload near the size limit
	 * is never read, and no handler runs. */
	int handled = __atomic_load_n(&ctx.handled, __ATOMIC_SEQ_CST);
	size_t big = 8u << 20;
	char *name = malloc(big + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	memset(name, 'x', big);
	name[big] = '\0';
	CU_ASSERT_EQUAL(get(target, NULL, name, &vm, &st, 10000), GW_RPC_UNAUTHENTICATED);
	free(name);
	CU_ASSERT_EQUAL(__atomic_load_n(&ctx.handled, __ATOMIC_SEQ_CST), handled);

	/* Once the streams end, their workers serve again. */
	for (int i = 0; i < MAX_CALLS - MAX_PUB; i++)
		if (cs[i])
			gw_rpc_stream_close(cs[i]);
	for (int i = 0; i < FLOOD; i++)
		if (w[i])
			gw_rpc_stream_close(w[i]);
	enum gw_rpc_code c = GW_RPC_RESOURCE_EXHAUSTED;
	for (int i = 0; i < 100 && c == GW_RPC_RESOURCE_EXHAUSTED; i++) {
		c = get(target, "s3cret", "a", &vm, &st, 5000);
		if (c == GW_RPC_OK)
			protobuf_c_message_free_unpacked(&vm->base, NULL);
		else
			usleep(50000);
	}
	CU_ASSERT_EQUAL(c, GW_RPC_OK);
	gw_rpc_client_close(anon);
	gw_rpc_client_close(admin);
	gw_rpc_server_shutdown(b);
}

struct brief_call {
	char target[64];
	enum gw_rpc_code code;
	char name[32];
};

static void *brief_get(void *arg)
{
	struct brief_call *b = arg;
	Godwit__V1__Vm *vm = NULL;
	struct gw_rpc_status st;
	b->code = get(b->target, "s3cret", "brief", &vm, &st, 10000);
	if (b->code == GW_RPC_OK) {
		snprintf(b->name, sizeof(b->name), "%s", vm->name);
		protobuf_c_message_free_unpacked(&vm->base, NULL);
	}
	return NULL;
}

/* A server that shuts down while a handler runs lets that call finish and answer (a VMM
 * whose guest exits right after Start still answers Start); only what outlasts the grace
 * is cancelled. */
static void test_shutdown_lets_calls_finish(void)
{
	const char *listen[] = {"127.0.0.1:0", NULL};
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "s3cret"};
	struct gw_rpc_server *b;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), &ctx, &b),
			      0);
	struct brief_call bc = {.code = GW_RPC_INTERNAL};
	snprintf(bc.target, sizeof(bc.target), "127.0.0.1:%d", gw_rpc_server_port(b, 0));
	int handled = __atomic_load_n(&ctx.handled, __ATOMIC_SEQ_CST);
	pthread_t t;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, brief_get, &bc), 0);
	for (int i = 0; i < 1000 && __atomic_load_n(&ctx.handled, __ATOMIC_SEQ_CST) == handled; i++)
		usleep(10 * 1000);
	CU_ASSERT_NOT_EQUAL(__atomic_load_n(&ctx.handled, __ATOMIC_SEQ_CST), handled);
	gw_rpc_server_shutdown(b); /* the handler is inside its 300 ms */
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(bc.code, GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(bc.name, "vm-brief");
}

static void test_status_mapping(void)
{
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(0), GW_RPC_OK);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-EINVAL), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-ENOENT), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-EEXIST), GW_RPC_ALREADY_EXISTS);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-EBUSY), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-ECONNREFUSED), GW_RPC_UNAVAILABLE);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-EACCES), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_EQUAL(gw_rpc_code_from_errno(-EIO), GW_RPC_INTERNAL);
	/* Round trips for the codes the API uses. */
	enum gw_rpc_code codes[] = {GW_RPC_INVALID_ARGUMENT, GW_RPC_NOT_FOUND,
				    GW_RPC_ALREADY_EXISTS,   GW_RPC_FAILED_PRECONDITION,
				    GW_RPC_UNAVAILABLE,	     GW_RPC_UNAUTHENTICATED};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		CU_ASSERT_EQUAL(gw_rpc_code_from_errno(gw_rpc_errno_from_code(codes[i])), codes[i]);
	CU_ASSERT_STRING_EQUAL(gw_rpc_code_name(GW_RPC_UNAUTHENTICATED), "UNAUTHENTICATED");
}

static void test_json(void)
{
	Godwit__V1__Vm vm = GODWIT__V1__VM__INIT;
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	vm.name = (char *)"a\"b";
	vm.state = GODWIT__V1__VM_STATE__VM_STATE_RUNNING;
	vm.spec = &spec;
	spec.memory_bytes = 1ull << 33;
	spec.guest_path = (char *)"/g";
	struct gw_buf b;
	gw_buf_init(&b);
	gw_pb_to_json(&vm.base, &b);
	gw_buf_put(&b, "", 1);
	const char *j = (const char *)b.data;
	CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"name\":\"a\\\"b\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"state\":\"VM_STATE_RUNNING\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"memoryBytes\":\"8589934592\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"guestPath\":\"/g\""));
	gw_buf_release(&b);
	Godwit__V1__ConsoleChunk ch = GODWIT__V1__CONSOLE_CHUNK__INIT;
	ch.data.data = (uint8_t *)"hi!";
	ch.data.len = 3;
	gw_buf_init(&b);
	gw_pb_to_json(&ch.base, &b);
	gw_buf_put(&b, "", 1);
	CU_ASSERT_STRING_EQUAL((const char *)b.data, "{\"data\":\"aGkh\"}");
	gw_buf_release(&b);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	if (suite_init()) {
		fprintf(stderr, "cannot start the test server\n");
		return 1;
	}
	static const struct gw_test_case cases[] = {
	    {"unary answer and error status", test_unary_ok_and_error},
	    {"bearer token on TCP, none on unix", test_auth},
	    {"deadline exceeded", test_deadline},
	    {"unknown method and malformed payload", test_unknown_method_and_malformed},
	    {"server streaming", test_stream},
	    {"client cancel reaches the handler", test_stream_cancel},
	    {"bounded calls, public streams and unauthenticated payloads", test_bounds},
	    {"shutdown lets a running call answer", test_shutdown_lets_calls_finish},
	    {"errno <-> status mapping", test_status_mapping},
	    {"protobuf to JSON", test_json},
	};
	int rc = gw_test_run("rpc", cases, GW_TEST_COUNT(cases));
	gw_rpc_server_shutdown(srv); /* must drain even with a handler mid-stream */
	return rc;
}
