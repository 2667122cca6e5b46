/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for daemon/sd.c: the watchdog is fed only while the daemon is alive (its lock free,
 * its API answering a health check), on a NOTIFY_SOCKET of the test's; whether stderr is the
 * journal. */
#include "ops.h"

#include "godwit/deadline.h"
#include "godwit/log.h"
#include "grpc/health/v1/health.pb-c.h"

#include "../../lib/gw_test.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int health(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
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

/* WATCHDOG=1 datagrams that arrive within ms (others are dropped). */
static int pings(int s, int ms)
{
	int n = 0;
	uint64_t end = gw_now_ms() + (uint64_t)ms;
	for (uint64_t now; (now = gw_now_ms()) < end;) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			break;
		char buf[256];
		ssize_t len = recv(s, buf, sizeof(buf) - 1, 0);
		if (len <= 0)
			break;
		buf[len] = '\0';
		n += strstr(buf, "WATCHDOG=1") != NULL;
	}
	return n;
}

static void test_watchdog(void)
{
	char dir[] = "/tmp/gw-sd-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/notify", dir);
	int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_EQUAL_FATAL(bind(ns, (struct sockaddr *)&un, sizeof(un)), 0);
	setenv("NOTIFY_SOCKET", un.sun_path, 1);
	unsetenv("WATCHDOG_PID");

	char api[120], target[130];
	snprintf(api, sizeof(api), "%s/api.sock", dir);
	snprintf(target, sizeof(target), "unix:%s", api);
	const char *listen[] = {target, NULL};
	static const struct gw_rpc_method methods[] = {
	    {.service = &grpc__health__v1__health__descriptor,
	     .name = "Check",
	     .unary = health,
	     .public = true},
	};
	struct gw_rpc_server_config cfg = {.listen = listen};
	struct gw_rpc_server *srv = NULL;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, 1, NULL, &srv), 0);

	static struct gwd d;
	pthread_mutex_init(&d.lock, NULL);
	struct gwd_watchdog *w = NULL;
	/* No WATCHDOG_USEC: no watchdog. */
	unsetenv("WATCHDOG_USEC");
	CU_ASSERT_EQUAL(gwd_sd_watchdog_start(&d, target, &w), 0);
	CU_ASSERT_PTR_NULL(w);

	setenv("WATCHDOG_USEC", "400000", 1); /* a ping every 200 ms */
	CU_ASSERT_EQUAL_FATAL(gwd_sd_watchdog_start(&d, target, &w), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	int n = pings(ns, 1100);
	CU_ASSERT(n <= 7); /* never faster than every 200 ms or so */
	/* Each ping waits for a health check's answer: on a loaded machine (ASan, test hosts
	 * beside it) the first three took longer than 1.1 s. They must come, not come fast. */
	if (n < 3)
		n += pings(ns, 4000);
	CU_ASSERT(n >= 3);

	/* The daemon's lock held: no pings; free again: pings again. */
	pthread_mutex_lock(&d.lock);
	pings(ns, 300); /* what was under way */
	CU_ASSERT_EQUAL(pings(ns, 800), 0);
	pthread_mutex_unlock(&d.lock);
	CU_ASSERT(pings(ns, 800) >= 2);

	/* The API gone: no pings. */
	gw_rpc_server_shutdown(srv);
	pings(ns, 300);
	CU_ASSERT_EQUAL(pings(ns, 800), 0);

	gwd_sd_watchdog_stop(w);
	unsetenv("WATCHDOG_USEC");
	unsetenv("NOTIFY_SOCKET");
	close(ns);
	unlink(un.sun_path);
	rmdir(dir);
}

static void test_journal_stream(void)
{
	struct stat st;
	CU_ASSERT_EQUAL_FATAL(fstat(STDERR_FILENO, &st), 0);
	char js[64];
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	unsetenv("JOURNAL_STREAM");
	CU_ASSERT_FALSE(gwd_sd_stderr_is_journal());
	setenv("JOURNAL_STREAM", js, 1);
	CU_ASSERT_TRUE(gwd_sd_stderr_is_journal());
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1); /* stderr redirected elsewhere */
	CU_ASSERT_FALSE(gwd_sd_stderr_is_journal());
	setenv("JOURNAL_STREAM", "junk", 1);
	CU_ASSERT_FALSE(gwd_sd_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	static const struct gw_test_case cases[] = {
	    {"the watchdog is fed only while the daemon answers", test_watchdog},
	    {"stderr is the journal only when JOURNAL_STREAM names it", test_journal_stream},
	};
	return gw_test_run("sd", cases, GW_TEST_COUNT(cases));
}
