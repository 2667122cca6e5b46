/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for godwitd's validation and API handlers, served in-process on a unix socket
 * (no VM is started here: that needs /dev/kvm and lives in the integration tests). */
#include "api.h"

#include "godwit/log.h"
#include "godwit/v1/host.pb-c.h"
#include "godwit/v1/vms.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct gwd d;
static struct gw_rpc_server *srv;
static struct gw_rpc_client *cl;

static void test_validate_name(void)
{
	char why[200];
	const char *good[] = {"a", "web-1", "db_2.prod", "0abc",
			      "x23456789012345678901234567890"
			      "1234567890123456789012345678901"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(gwd_validate_name(good[i], why, sizeof(why)), 0);
	const char *bad[] = {
	    "",	    "-a",
	    ".a",   "A",
	    "a b",  "a/b",
	    "../x", "a\n",
	    "é",    "x234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CU_ASSERT_EQUAL(gwd_validate_name(bad[i], why, sizeof(why)), -EINVAL);
		CU_ASSERT_TRUE(strlen(why) > 10); /* every refusal explains itself */
	}
	CU_ASSERT_EQUAL(gwd_validate_name(NULL, why, sizeof(why)), -EINVAL);
}

static void test_validate_spec(void)
{
	char why[300];
	Godwit__V1__VmSpec s = GODWIT__V1__VM_SPEC__INIT;
	s.guest_path = (char *)"/g";
	s.memory_bytes = 256ull << 20;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), 0);
	s.memory_bytes = 0;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "zero"));
	s.memory_bytes = (256ull << 20) + 4096;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), -EINVAL);
	s.memory_bytes = 16ull << 30;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 8ull << 30, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "larger than this host"));
	s.memory_bytes = 64ull << 30;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.memory_bytes = 256ull << 20;
	s.cpus = 99;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.cpus = 1;
	s.guest_path = (char *)"relative/path";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.guest_path = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(gwd_validate_spec(NULL, 0, why, sizeof(why)), -EINVAL);
}

static enum gw_rpc_code call(const char *method, const ProtobufCMessage *req,
			     ProtobufCMessage **resp, struct gw_rpc_status *st)
{
	return gw_rpc_unary(cl, &godwit__v1__vms__descriptor, method, req, resp, 10000, st);
}

static enum gw_rpc_code create(const char *name, uint64_t mem, const char *guest,
			       struct gw_rpc_status *st)
{
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = mem;
	spec.guest_path = (char *)guest;
	spec.cmdline = (char *)"hello";
	Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
	req.name = (char *)name;
	req.spec = &spec;
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code c = call("Create", &req.base, &resp, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return c;
}

static void test_create_get_list(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(create("alpha", 64ull << 20, "/bin/true", &st), GW_RPC_OK);
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"alpha";
	ProtobufCMessage *resp;
	CU_ASSERT_EQUAL_FATAL(call("Get", &ref.base, &resp, &st), GW_RPC_OK);
	Godwit__V1__Vm *vm = (Godwit__V1__Vm *)resp;
	CU_ASSERT_STRING_EQUAL(vm->name, "alpha");
	CU_ASSERT_EQUAL(vm->state, GODWIT__V1__VM_STATE__VM_STATE_DEFINED);
	CU_ASSERT_EQUAL(vm->spec->memory_bytes, 64ull << 20);
	CU_ASSERT_EQUAL(vm->spec->cpus, 1);
	CU_ASSERT_STRING_EQUAL(vm->spec->cmdline, "hello");
	CU_ASSERT_TRUE(vm->created_unix > 0);
	protobuf_c_message_free_unpacked(resp, NULL);

	CU_ASSERT_EQUAL_FATAL(create("beta", 32ull << 20, "/bin/true", &st), GW_RPC_OK);
	Godwit__V1__ListVmsRequest lreq = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	CU_ASSERT_EQUAL_FATAL(call("List", &lreq.base, &resp, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(((Godwit__V1__ListVmsResponse *)resp)->n_vms, 2);
	protobuf_c_message_free_unpacked(resp, NULL);

	/* Persisted: the record file exists and a fresh registry reads it back. */
	char path[600];
	gwd_vm_dir(&d, "alpha", "vm.pb", path, sizeof(path));
	CU_ASSERT_EQUAL(access(path, R_OK), 0);
	struct gwd fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	struct gwd_vm *a = gwd_vm_find(&fresh, "alpha");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->memory_bytes, 64ull << 20);
	CU_ASSERT_STRING_EQUAL(a->guest_path, "/bin/true");
	CU_ASSERT_PTR_NOT_NULL(gwd_vm_find(&fresh, "beta"));
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}
}

static void test_bad_requests(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(create("alpha", 64ull << 20, "/bin/true", &st), GW_RPC_ALREADY_EXISTS);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "already exists"));
	CU_ASSERT_EQUAL(create("Bad Name", 64ull << 20, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("zero", 0, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("huge", 1ull << 40, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("noguest", 64ull << 20, "/no/such/guest", &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "/no/such/guest"));
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ProtobufCMessage *resp;
	ref.name = (char *)"ghost";
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(call("Start", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(call("Delete", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	ref.name = (char *)"a/../../etc";
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_INVALID_ARGUMENT);
	Godwit__V1__StopVmRequest stop = GODWIT__V1__STOP_VM_REQUEST__INIT;
	stop.name = (char *)"alpha";
	CU_ASSERT_EQUAL(call("Stop", &stop.base, &resp, &st), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "not running"));
	/* None of that left a trace. */
	Godwit__V1__ListVmsRequest lreq = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	CU_ASSERT_EQUAL_FATAL(call("List", &lreq.base, &resp, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(((Godwit__V1__ListVmsResponse *)resp)->n_vms, 2);
	protobuf_c_message_free_unpacked(resp, NULL);
}

static void test_console_not_running(void)
{
	Godwit__V1__ConsoleRequest req = GODWIT__V1__CONSOLE_REQUEST__INIT;
	req.name = (char *)"alpha";
	struct gw_rpc_stream *s;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_stream_open(cl, &godwit__v1__vms__descriptor, "Console",
						 &req.base, 5000, &s, &st),
			      GW_RPC_OK);
	ProtobufCMessage *m;
	CU_ASSERT_EQUAL(gw_rpc_stream_next(s, &m, 5000, &st), 0);
	CU_ASSERT_EQUAL(st.code, GW_RPC_FAILED_PRECONDITION);
	gw_rpc_stream_close(s);
}

static void test_host_info(void)
{
	Godwit__V1__GetInfoRequest req = GODWIT__V1__GET_INFO_REQUEST__INIT;
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(
	    gw_rpc_unary(cl, &godwit__v1__host__descriptor, "GetInfo", &req.base, &resp, 5000, &st),
	    GW_RPC_OK);
	Godwit__V1__HostInfo *h = (Godwit__V1__HostInfo *)resp;
	CU_ASSERT_STRING_EQUAL(h->host_id, "testhost");
	CU_ASSERT_EQUAL(h->vms, 2);
	CU_ASSERT_EQUAL(h->vms_running, 0);
	CU_ASSERT_TRUE(h->memory_total_bytes > 0);
	CU_ASSERT_PTR_NOT_NULL(h->kvm);
	protobuf_c_message_free_unpacked(resp, NULL);
}

static void test_delete(void)
{
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"beta";
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(call("Delete", &ref.base, &resp, &st), GW_RPC_OK);
	protobuf_c_message_free_unpacked(resp, NULL);
	char dir[600];
	gwd_vm_dir(&d, "beta", NULL, dir, sizeof(dir));
	CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	char tmpl[] = "/tmp/gw-daemon-test-XXXXXX";
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(d.state_dir, sizeof(d.state_dir), "%s", tmpl);
	snprintf(d.host_id, sizeof(d.host_id), "testhost");
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	if (gwd_registry_load(&d))
		return 1;
	char target[300];
	snprintf(target, sizeof(target), "unix:%s/api.sock", tmpl);
	const char *listen[] = {target, NULL};
	struct gw_rpc_method methods[32];
	size_t n = gwd_api_methods(methods, 32);
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "t"};
	if (gw_rpc_server_start(&cfg, methods, n, &d, &srv) ||
	    gw_rpc_client_open(target, NULL, 0, &cl))
		return 1;
	static const struct gw_test_case cases[] = {
	    {"validate names", test_validate_name},
	    {"validate specs", test_validate_spec},
	    {"create, get, list, persist", test_create_get_list},
	    {"bad requests get the right status", test_bad_requests},
	    {"console of a stopped VM", test_console_not_running},
	    {"host info", test_host_info},
	    {"delete removes the VM and its files", test_delete},
	};
	int rc = gw_test_run("daemon", cases, GW_TEST_COUNT(cases));
	gw_rpc_client_close(cl);
	gw_rpc_server_shutdown(srv);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpl);
	return rc;
}
