/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for godwitd's state files (daemon/state_files.c, registry.c) when the disk or the
 * kernel fails them, through the API served in-process. getrandom and fsync are stubbed at link
 * time (-Wl,--wrap) so that they fail when a test says so. */
#include "api.h"

#include "godwit/log.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/vms.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- link-time stubs: the kernel's answers a test asks for ---- */
ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
int __real_fsync(int fd);
int __wrap_fsync(int fd);

/* getrandom of this many bytes fails (0: of any size; -1: none fails). */
static long fail_getrandom = -1;
/* fsync of a directory fails with EIO. */
static bool fail_dir_fsync;
static unsigned dir_fsyncs;

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
	long f = __atomic_load_n(&fail_getrandom, __ATOMIC_SEQ_CST);
	if (f == 0 || (f > 0 && (size_t)f == len)) {
		errno = ENOSYS;
		return -1;
	}
	return __real_getrandom(buf, len, flags);
}

int __wrap_fsync(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		__atomic_fetch_add(&dir_fsyncs, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&fail_dir_fsync, __ATOMIC_SEQ_CST)) {
			errno = EIO;
			return -1;
		}
	}
	return __real_fsync(fd);
}

static struct gwd d;
static struct gw_rpc_server *srv;
static struct gw_rpc_client *cl;
static char tmpdir[64];

static enum gw_rpc_code call(const ProtobufCServiceDescriptor *svc, const char *method,
			     const ProtobufCMessage *req, struct gw_rpc_status *st)
{
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code c = gw_rpc_unary(cl, svc, method, req, &resp, 10000, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return c;
}

static enum gw_rpc_code create(const char *name, struct gw_rpc_status *st)
{
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = 32ull << 20;
	spec.guest_path = (char *)"/bin/true";
	Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
	req.name = (char *)name;
	req.spec = &spec;
	return call(&godwit__v1__vms__descriptor, "Create", &req.base, st);
}

static enum gw_rpc_code vm_op(const char *method, const char *name, struct gw_rpc_status *st)
{
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)name;
	return call(&godwit__v1__vms__descriptor, method, &ref.base, st);
}

static bool on_disk(const char *name)
{
	char p[600];
	gwd_vm_dir(&d, name, "vm.pb", p, sizeof(p));
	return access(p, F_OK) == 0;
}

/* A VM's record is durable before Create answers: its directory and vms/ are fsynced, and a
 * failure of either is the caller's error, with nothing left defined. */
static void test_create_fsync_fails(void)
{
	struct gw_rpc_status st;
	__atomic_store_n(&dir_fsyncs, 0, __ATOMIC_SEQ_CST);
	CU_ASSERT_EQUAL_FATAL(create("one", &st), GW_RPC_OK);
	CU_ASSERT_TRUE(__atomic_load_n(&dir_fsyncs, __ATOMIC_SEQ_CST) >= 2);

	__atomic_store_n(&fail_dir_fsync, true, __ATOMIC_SEQ_CST);
	enum gw_rpc_code c = create("two", &st);
	__atomic_store_n(&fail_dir_fsync, false, __ATOMIC_SEQ_CST);
	CU_ASSERT_NOT_EQUAL(c, GW_RPC_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "cannot save the VM definition"));
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "Input/output error"));
	CU_ASSERT_EQUAL(vm_op("Get", "two", &st), GW_RPC_NOT_FOUND);
}

/* A file size limit (as a full disk): the write fails, Create says why, and no half record
 * stays behind to be read at the next start. */
static void test_create_disk_full(void)
{
	struct rlimit old, small = {.rlim_cur = 8, .rlim_max = RLIM_INFINITY};
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &small), 0);
	enum gw_rpc_code c = create("three", &st);
	setrlimit(RLIMIT_FSIZE, &old);
	CU_ASSERT_NOT_EQUAL(c, GW_RPC_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "File too large"));
	CU_ASSERT_EQUAL(vm_op("Get", "three", &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_FALSE(on_disk("three"));
	char tmp[600];
	gwd_vm_dir(&d, "three", "vm.pb.tmp", tmp, sizeof(tmp));
	CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);
}

/* Delete forgets a VM only once its record is durably gone: else it would come back at the
 * next start, after Delete said it was gone. */
static void test_delete_fsync_fails(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(create("four", &st), GW_RPC_OK);
	__atomic_store_n(&fail_dir_fsync, true, __ATOMIC_SEQ_CST);
	enum gw_rpc_code c = vm_op("Delete", "four", &st);
	__atomic_store_n(&fail_dir_fsync, false, __ATOMIC_SEQ_CST);
	CU_ASSERT_NOT_EQUAL(c, GW_RPC_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "cannot delete VM 'four'"));
	CU_ASSERT_EQUAL(vm_op("Get", "four", &st), GW_RPC_OK); /* still known, not busy */
	CU_ASSERT_EQUAL(vm_op("Delete", "four", &st), GW_RPC_OK);
	CU_ASSERT_FALSE(on_disk("four"));
	CU_ASSERT_EQUAL(vm_op("Get", "four", &st), GW_RPC_NOT_FOUND);
}

/* The token: made from getrandom, written whole and durably, private; an unreadable kernel
 * source, a full disk or a file others can read is an error that says what to do. */
static void test_token(void)
{
	char dir[128], path[160], tok[65], why[600];
	snprintf(dir, sizeof(dir), "%s/tok", tmpdir);
	snprintf(path, sizeof(path), "%s/token", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);

	/* No entropy: no token, no file, and why names getrandom. */
	__atomic_store_n(&fail_getrandom, 0, __ATOMIC_SEQ_CST);
	int rc = gwd_secret_load(dir, "token", 32, tok, sizeof(tok), why, sizeof(why));
	__atomic_store_n(&fail_getrandom, -1, __ATOMIC_SEQ_CST);
	CU_ASSERT_EQUAL(rc, -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "getrandom"));
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);

	/* A full disk: an error, and no empty token file that would stop every later start. */
	struct rlimit old, small;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 8;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &small), 0);
	rc = gwd_secret_load(dir, "token", 32, tok, sizeof(tok), why, sizeof(why));
	setrlimit(RLIMIT_FSIZE, &old);
	CU_ASSERT_EQUAL(rc, -EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot create"));
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);

	/* Made, then read back the same; the directory entry fsynced. */
	__atomic_store_n(&dir_fsyncs, 0, __ATOMIC_SEQ_CST);
	CU_ASSERT_EQUAL_FATAL(gwd_secret_load(dir, "token", 32, tok, sizeof(tok), why, sizeof(why)),
			      0);
	CU_ASSERT_TRUE(__atomic_load_n(&dir_fsyncs, __ATOMIC_SEQ_CST) >= 1);
	CU_ASSERT_EQUAL(strlen(tok), 64);
	char again[65];
	CU_ASSERT_EQUAL(gwd_secret_load(dir, "token", 32, again, sizeof(again), why, sizeof(why)),
			0);
	CU_ASSERT_STRING_EQUAL(again, tok);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	/* Readable by others: refused, with the chmod to run. */
	CU_ASSERT_EQUAL(chmod(path, 0640), 0);
	CU_ASSERT_EQUAL(gwd_secret_load(dir, "token", 32, again, sizeof(again), why, sizeof(why)),
			-EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "chmod 600"));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, path));
	CU_ASSERT_EQUAL(chmod(path, 0600), 0);

	/* The state directory the same. */
	CU_ASSERT_EQUAL(gwd_state_check_private(dir, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(chmod(dir, 0755), 0);
	CU_ASSERT_EQUAL(gwd_state_check_private(dir, why, sizeof(why)), -EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "chmod 700"));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "mode 0755"));
	CU_ASSERT_EQUAL(chmod(dir, 0700), 0);

	/* An empty token (a crash of an older godwitd) is an error, not an empty password. */
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	CU_ASSERT_EQUAL(gwd_secret_load(dir, "token", 32, again, sizeof(again), why, sizeof(why)),
			-EINVAL);
}

/* Without getrandom a migration has no ID and no stream token: Migrate fails, or the
 * migration ends failed, saying why; neither goes on with a constant. */
static void test_migrate_without_random(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(create("mig", &st), GW_RPC_OK);
	Godwit__V1__MigrateRequest req = GODWIT__V1__MIGRATE_REQUEST__INIT;
	req.vm = (char *)"mig";
	req.destination = (char *)"127.0.0.1:1";
	req.destination_grant = (char *)"x";
	ProtobufCMessage *resp = NULL;

	__atomic_store_n(&fail_getrandom, 0, __ATOMIC_SEQ_CST);
	enum gw_rpc_code c = gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Migrate",
					  &req.base, &resp, 10000, &st);
	CU_ASSERT_NOT_EQUAL(c, GW_RPC_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "getrandom"));
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);

	/* The ID drawn, the 32-byte stream token not: the VM must be running to migrate. */
	pthread_mutex_lock(&d.lock);
	struct gwd_vm *vm = gwd_vm_find(&d, "mig");
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	vm->state = GWD_RUNNING;
	vm->monitor_running = true;
	pthread_mutex_unlock(&d.lock);
	__atomic_store_n(&fail_getrandom, 32, __ATOMIC_SEQ_CST);
	resp = NULL;
	c = gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Migrate", &req.base, &resp,
			 10000, &st);
	CU_ASSERT_EQUAL_FATAL(c, GW_RPC_OK);
	char id[40];
	snprintf(id, sizeof(id), "%s", ((Godwit__V1__Migration *)resp)->id);
	protobuf_c_message_free_unpacked(resp, NULL);
	Godwit__V1__MigrationRef ref = GODWIT__V1__MIGRATION_REF__INIT;
	ref.id = id;
	Godwit__V1__MigrationPhase ph = GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_SETUP;
	char err[300] = "";
	for (int i = 0; i < 100; i++) {
		resp = NULL;
		if (gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Get", &ref.base, &resp,
				 10000, &st) != GW_RPC_OK)
			break;
		Godwit__V1__Migration *m = (Godwit__V1__Migration *)resp;
		ph = m->phase;
		snprintf(err, sizeof(err), "%s", m->error ? m->error : "");
		protobuf_c_message_free_unpacked(resp, NULL);
		if (ph == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED)
			break;
		usleep(20000);
	}
	__atomic_store_n(&fail_getrandom, -1, __ATOMIC_SEQ_CST);
	CU_ASSERT_EQUAL(ph, GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "stream token"));
	pthread_mutex_lock(&d.lock);
	CU_ASSERT_FALSE(vm->busy);
	vm->state = GWD_DEFINED;
	vm->monitor_running = false;
	pthread_mutex_unlock(&d.lock);
}

/* A FIFO (or any file that is not regular) named as what a VM boots is refused by Create at
 * once: opening it to read would wait for a writer. SIGALRM ends a hang as a failure. */
static void test_create_fifo(void)
{
	char fifo[128];
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
	const char *as[] = {"guest", "kernel", "initrd"};
	for (size_t i = 0; i < GW_TEST_COUNT(as); i++) {
		Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
		spec.memory_bytes = 32ull << 20;
		if (i == 0)
			spec.guest_path = fifo;
		else
			spec.kernel_path = i == 1 ? fifo : (char *)"/bin/true";
		if (i == 2)
			spec.initrd_path = fifo;
		Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
		req.name = (char *)"fifo";
		req.spec = &spec;
		struct gw_rpc_status st;
		alarm(20);
		enum gw_rpc_code c = call(&godwit__v1__vms__descriptor, "Create", &req.base, &st);
		alarm(0);
		CU_ASSERT_EQUAL(c, GW_RPC_INVALID_ARGUMENT);
		CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "is not a regular file"));
		CU_ASSERT_PTR_NOT_NULL(strstr(st.message, as[i]));
	}
	unlink(fifo);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error here, as in godwitd */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gw-state-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(d.state_dir, sizeof(d.state_dir), "%s", tmpdir);
	snprintf(d.host_id, sizeof(d.host_id), "testhost");
	d.memory_limit = 1ull << 40;
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	gwd_pool_finish(&d.pool);
	if (gwd_registry_load(&d))
		return 1;
	char target[300];
	snprintf(target, sizeof(target), "unix:%s/api.sock", tmpdir);
	const char *listen[] = {target, NULL};
	struct gw_rpc_method methods[32];
	size_t n = gwd_api_methods(methods, 32);
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "t"};
	if (gw_rpc_server_start(&cfg, methods, n, &d, &srv) ||
	    gw_rpc_client_open(target, NULL, 0, &cl))
		return 1;
	static const struct gw_test_case cases[] = {
	    {"Create: the record's directory fsync fails", test_create_fsync_fails},
	    {"Create: the disk is full", test_create_disk_full},
	    {"Delete: the record's removal is not durable", test_delete_fsync_fails},
	    {"token: getrandom, full disk, permissions", test_token},
	    {"Migrate without getrandom", test_migrate_without_random},
	    {"Create: a FIFO to boot is refused at once", test_create_fifo},
	};
	int rc = gw_test_run("daemon_state", cases, GW_TEST_COUNT(cases));
	gw_rpc_client_close(cl);
	gw_rpc_server_shutdown(srv);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
