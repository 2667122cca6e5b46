/* SPDX-License-Identifier: Apache-2.0 */
/* Unit test for the gRPC server's unix socket (proto/src/server.c): owner-only from the moment
 * it exists. grpc_server_start is wrapped at link time (-Wl,--wrap) to look at the socket just
 * before the server starts to accept on it. */
#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/v1/vms.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	static const struct gw_test_case cases[] = {
	    {"the unix socket is owner-only before the server starts", test_private_before_start},
	};
	return gw_test_run("rpc_unix", cases, GW_TEST_COUNT(cases));
}
