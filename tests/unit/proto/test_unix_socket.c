/* SPDX-License-Identifier: Apache-2.0 */
/* Unit test for the gRPC server's unix socket (proto/src/server.c): owner-only from the moment
 * it exists. grpc_server_start is wrapped at link time (-Wl,--wrap) to look at the socket just
 * before the server starts to accept on it. Then a listening socket passed in ("unix-fd:N", as
 * systemd passes one), the call-end hook, and the log fields a handler sets. */
#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/v1/vms.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void __real_grpc_server_start(grpc_server *server);
void __wrap_grpc_server_start(grpc_server *server);

static char sock_path[80];
static int mode_at_start = -1; /* the socket's mode when the server started; -1: absent */

void __wrap_grpc_server_start(grpc_server *server)
{
	struct stat st;
	mode_at_start =
	    stat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode) ? (int)(st.st_mode & 07777) : -1;
	__real_grpc_server_start(server);
}

static int t_get(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		 ProtobufCMessage **resp)
{
	(void)ctx;
	(void)rq;
	Godwit__V1__Vm *vm = gw_rpc_call_alloc(call, sizeof(*vm));
	godwit__v1__vm__init(vm);
	vm->name = gw_rpc_call_printf(call, "ok");
	*resp = &vm->base;
	return 0;
}

/* With a umask that would leave the socket open to all (0), it is 0600 already when the
 * server starts, the umask is given back, and calls work. */
static void test_private_before_start(void)
{
	char dir[] = "/tmp/gw-rpc-unix-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);
	char target[100];
	snprintf(target, sizeof(target), "unix:%s", sock_path);
	const char *listen[] = {target, NULL};
	static const struct gw_rpc_method methods[] = {
	    {.service = &godwit__v1__vms__descriptor, .name = "Get", .unary = t_get},
	};
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "t"};
	mode_t old = umask(0);
	struct gw_rpc_server *srv = NULL;
	int rc = gw_rpc_server_start(&cfg, methods, 1, NULL, &srv);
	mode_t after = umask(old);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(after, 0); /* the server's umask was its own business */
	CU_ASSERT_EQUAL(mode_at_start, 0600);
	struct stat st;
	CU_ASSERT_EQUAL(stat(sock_path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	struct gw_rpc_client *cl = NULL;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(target, NULL, 0, &cl), 0);
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"x";
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status s;
	CU_ASSERT_EQUAL(
	    gw_rpc_unary(cl, &godwit__v1__vms__descriptor, "Get", &ref.base, &resp, 5000, &s),
	    GW_RPC_OK);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	gw_rpc_client_close(cl);
	gw_rpc_server_shutdown(srv);
	unlink(sock_path);
	rmdir(dir);
}

/* What the call-end hook and the log sink saw. */
static struct {
	pthread_mutex_t lock;
	char ends[16][96];
	unsigned nends;
	char last_fields[140];
} seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_end(void *opaque, const char *service, const char *method, enum gw_rpc_code code)
{
	(void)opaque;
	pthread_mutex_lock(&seen.lock);
	if (seen.nends < 16)
		snprintf(seen.ends[seen.nends++], sizeof(seen.ends[0]), "%s/%s %s",
			 service ? service : "-", method ? method : "-", gw_rpc_code_name(code));
	pthread_mutex_unlock(&seen.lock);
}

static void sink(void *opaque, enum gw_log_level level, const char *ident, const char *prefix,
		 const struct gw_log_fields *f, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)ident;
	(void)prefix;
	if (strcmp(msg, "handler") != 0)
		return;
	pthread_mutex_lock(&seen.lock);
	snprintf(seen.last_fields, sizeof(seen.last_fields), "vm=%s mig=%s", f->vm, f->migration);
	pthread_mutex_unlock(&seen.lock);
}

/* Answers whether the caller is local; the first call tags its thread's log lines. */
static int t_who(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		 ProtobufCMessage **resp)
{
	(void)ctx;
	const Godwit__V1__VmRef *ref = (const void *)rq;
	if (strcmp(ref->name, "tag") == 0)
		gw_log_thread_fields("web", "m1");
	GW_ERR("t", "handler");
	Godwit__V1__Vm *vm = gw_rpc_call_alloc(call, sizeof(*vm));
	godwit__v1__vm__init(vm);
	vm->name = gw_rpc_call_printf(call, gw_rpc_call_is_local(call) ? "local" : "remote");
	*resp = &vm->base;
	return 0;
}

static enum gw_rpc_code call_get(const char *target, const char *name, const char *method,
				 char *out, size_t n)
{
	struct gw_rpc_client *cl = NULL;
	if (gw_rpc_client_open(target, NULL, 0, &cl))
		return GW_RPC_UNAVAILABLE;
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)name;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status s;
	enum gw_rpc_code c =
	    gw_rpc_unary(cl, &godwit__v1__vms__descriptor, method, &ref.base, &resp, 5000, &s);
	if (resp) {
		snprintf(out, n, "%s", ((Godwit__V1__Vm *)resp)->name);
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	gw_rpc_client_close(cl);
	return c;
}

static bool ended(const char *what)
{
	pthread_mutex_lock(&seen.lock);
	bool found = false;
	for (unsigned i = 0; i < seen.nends; i++)
		found |= strcmp(seen.ends[i], what) == 0;
	pthread_mutex_unlock(&seen.lock);
	return found;
}

/* A socket bound and listening before the server exists, as systemd passes it: callers through
 * it are local (no token), the TCP listener beside it still wants the token, and the server
 * leaves the socket, and its file, to whoever passed it. */
static void test_passed_socket(void)
{
	char dir[] = "/tmp/gw-rpc-fd-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/passed.sock", dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&un, sizeof(un)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 16), 0);

	char fdspec[32], target[120];
	snprintf(fdspec, sizeof(fdspec), "unix-fd:%d", lfd);
	snprintf(target, sizeof(target), "unix:%s", un.sun_path);
	const char *listen_[] = {fdspec, "127.0.0.1:0", NULL};
	static const struct gw_rpc_method methods[] = {
	    {.service = &godwit__v1__vms__descriptor, .name = "Get", .unary = t_who},
	};
	struct gw_rpc_server_config cfg = {
	    .listen = listen_, .token = "t", .on_call_end = on_end, .on_call_end_opaque = NULL};
	struct gw_rpc_server *srv = NULL;
	gw_log_set_sink(sink, NULL);
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, 1, NULL, &srv), 0);
	CU_ASSERT_EQUAL(gw_rpc_server_port(srv, 0), 0);
	int port = gw_rpc_server_port(srv, 1);
	CU_ASSERT(port > 0);

	char who[32] = "";
	CU_ASSERT_EQUAL(call_get(target, "tag", "Get", who, sizeof(who)), GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(who, "local");
	CU_ASSERT_STRING_EQUAL(seen.last_fields, "vm=web mig=m1");
	/* The next call on that worker thread does not inherit the fields. */
	CU_ASSERT_EQUAL(call_get(target, "plain", "Get", who, sizeof(who)), GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(seen.last_fields, "vm= mig=");
	char tcp[64];
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", port);
	CU_ASSERT_EQUAL(call_get(tcp, "x", "Get", who, sizeof(who)), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_EQUAL(call_get(target, "x", "List", who, sizeof(who)), GW_RPC_UNIMPLEMENTED);
	gw_rpc_server_shutdown(srv);
	gw_log_set_sink(NULL, NULL);

	CU_ASSERT_TRUE(ended("godwit.v1.Vms/Get OK"));
	CU_ASSERT_TRUE(ended("godwit.v1.Vms/Get UNAUTHENTICATED"));
	CU_ASSERT_TRUE(ended("-/- UNIMPLEMENTED"));
	CU_ASSERT_EQUAL(seen.nends, 4);
	struct stat st;
	CU_ASSERT_EQUAL(stat(un.sun_path, &st), 0); /* not unlinked: not the server's */
	int type = 0;
	socklen_t tl = sizeof(type);
	CU_ASSERT_EQUAL(getsockopt(lfd, SOL_SOCKET, SO_TYPE, &type, &tl), 0); /* still open */
	close(lfd);
	unlink(un.sun_path);
	rmdir(dir);
}

/* Anything but a listening unix stream socket is refused. */
static void test_passed_socket_refused(void)
{
	static const struct gw_rpc_method methods[] = {
	    {.service = &godwit__v1__vms__descriptor, .name = "Get", .unary = t_who},
	};
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CU_ASSERT_EQUAL_FATAL(bind(tcp, (struct sockaddr *)&in, sizeof(in)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(tcp, 1), 0);
	int unbound = socket(AF_UNIX, SOCK_STREAM, 0); /* not listening */
	char specs[4][32];
	snprintf(specs[0], sizeof(specs[0]), "unix-fd:%d", tcp);
	snprintf(specs[1], sizeof(specs[1]), "unix-fd:%d", unbound);
	snprintf(specs[2], sizeof(specs[2]), "unix-fd:999");
	snprintf(specs[3], sizeof(specs[3]), "unix-fd:3x");
	for (int i = 0; i < 4; i++) {
		const char *listen_[] = {specs[i], NULL};
		struct gw_rpc_server_config cfg = {.listen = listen_};
		struct gw_rpc_server *srv = NULL;
		CU_ASSERT_EQUAL(gw_rpc_server_start(&cfg, methods, 1, NULL, &srv), -EINVAL);
	}
	close(tcp);
	close(unbound);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	static const struct gw_test_case cases[] = {
	    {"the unix socket is owner-only before the server starts", test_private_before_start},
	    {"a passed listening socket: local callers, the hook, log fields", test_passed_socket},
	    {"a passed fd that is no listening unix socket is refused", test_passed_socket_refused},
	};
	return gw_test_run("rpc_unix", cases, GW_TEST_COUNT(cases));
}
