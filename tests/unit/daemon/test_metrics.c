/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for daemon/metrics.c: what the /metrics page says of a daemon's state and of the
 * events it was told, and a VMM that does not answer within the scrape's budget. */
#include "migrations.h"
#include "ops.h"

#include "godwit/deadline.h"
#include "godwit/log.h"

#include "../../lib/gw_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *render(struct gwd *d, int budget_ms)
{
	struct gw_buf b;
	gw_buf_init(&b);
	gwd_metrics_render(d, &b, budget_ms);
	gw_buf_put(&b, "", 1);
	CU_ASSERT_EQUAL(b.err, 0);
	return (char *)b.data;
}

static bool has(const char *page, const char *line)
{
	char want[400];
	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(page, want) != NULL;
}

static void fresh(struct gwd *d, char *dir, size_t n)
{
	memset(d, 0, sizeof(*d));
	snprintf(dir, n, "/tmp/gw-metrics-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(d->state_dir, sizeof(d->state_dir), "%s", dir);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	char why[200];
	CU_ASSERT_EQUAL_FATAL(gwd_pool_add_emul(&d->pool, "gen=2,vfs=3", why, sizeof(why)), 0);
	gwd_pool_finish(&d->pool);
	d->metrics = gwd_metrics_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(d->metrics);
}

static void test_events(void)
{
	struct gwd d;
	char dir[64];
	fresh(&d, dir, sizeof(dir));
	/* Two completed migrations, one failed, one cancelled; incoming: one of each end. */
	gwd_metrics_mig_ended(d.metrics, PH(DONE), 1500000, 20000, 3u << 20, 10, 40960);
	gwd_metrics_mig_ended(d.metrics, PH(DONE), 400000, 3000, 200u << 20, 5, 20480);
	gwd_metrics_mig_ended(d.metrics, PH(FAILED), 100000, 0, 1000, 0, 0);
	gwd_metrics_mig_ended(d.metrics, PH(CANCELLED), 9000000, 0, 1u << 30, 1, 4096);
	gwd_metrics_incoming_ended(d.metrics, true);
	gwd_metrics_incoming_ended(d.metrics, false);
	gwd_metrics_rpc_end(d.metrics, "godwit.v1.Vms", "List", GW_RPC_OK);
	gwd_metrics_rpc_end(d.metrics, "godwit.v1.Vms", "List", GW_RPC_OK);
	gwd_metrics_rpc_end(d.metrics, "godwit.v1.Vms", "List", GW_RPC_UNAUTHENTICATED);
	gwd_metrics_rpc_end(d.metrics, NULL, NULL, GW_RPC_UNIMPLEMENTED);
	char *p = render(&d, 100);
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"outgoing\",outcome=\"completed\"} 2"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"outgoing\",outcome=\"failed\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"outgoing\",outcome=\"cancelled\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"incoming\",outcome=\"completed\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"incoming\",outcome=\"aborted\"} 1"));
	/* 0.4 s and 1.5 s: one at or below 0.5, both at or below 2.5. */
	CU_ASSERT_TRUE(
	    has(p, "godwit_migration_duration_seconds_bucket{outcome=\"completed\",le=\"0.5\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migration_duration_seconds_bucket{outcome=\"completed\",le=\"2.5\"} 2"));
	CU_ASSERT_TRUE(has(p, "godwit_migration_duration_seconds_sum{outcome=\"completed\"} 1.9"));
	CU_ASSERT_TRUE(has(p, "godwit_migration_duration_seconds_count{outcome=\"cancelled\"} 1"));
	/* Downtime: completed ones only (3 ms and 20 ms). */
	CU_ASSERT_TRUE(has(p, "godwit_migration_downtime_seconds_bucket{le=\"0.005\"} 1"));
	CU_ASSERT_TRUE(has(p, "godwit_migration_downtime_seconds_bucket{le=\"0.025\"} 2"));
	CU_ASSERT_TRUE(has(p, "godwit_migration_downtime_seconds_count 2"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migration_bytes_bucket{outcome=\"completed\",le=\"4194304\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migration_bytes_bucket{outcome=\"completed\",le=\"+Inf\"} 2"));
	CU_ASSERT_TRUE(has(p, "godwit_migration_bytes_sum{outcome=\"failed\"} 1000"));
	CU_ASSERT_TRUE(has(p, "godwit_dma_shadow_pages_total 16"));
	CU_ASSERT_TRUE(has(p, "godwit_dma_shadow_bytes_total 65536"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_rpcs_total{service=\"godwit.v1.Vms\",method=\"List\",code=\"OK\"} 2"));
	CU_ASSERT_TRUE(has(p, "godwit_rpcs_total{service=\"godwit.v1.Vms\",method=\"List\",code="
			      "\"UNAUTHENTICATED\"} 1"));
	CU_ASSERT_TRUE(has(
	    p,
	    "godwit_rpcs_total{service=\"unknown\",method=\"unknown\",code=\"UNIMPLEMENTED\"} 1"));
	CU_ASSERT_TRUE(has(
	    p,
	    "godwit_vf_pool_vfs{pf=\"pf0\",backend=\"emul\",generation=\"2\",state=\"free\"} 3"));
	free(p);
	gwd_metrics_free(d.metrics);
	rmdir(dir);
}

/* The daemon's state at scrape time: VMs by state, a held VF, migrations under way (whose DMA
 * counts add to those of ended ones), and a VMM that does not answer: down, within budget. */
static void test_state(void)
{
	struct gwd d;
	char dir[64];
	fresh(&d, dir, sizeof(dir));
	struct gwd_vm vms[3];
	memset(vms, 0, sizeof(vms));
	snprintf(vms[0].name, sizeof(vms[0].name), "a");
	vms[0].state = GWD_RUNNING;
	vms[0].pid = getpid(); /* a process, but no control socket in dir/vms/a */
	snprintf(vms[1].name, sizeof(vms[1].name), "b");
	vms[1].state = GWD_DEFINED;
	snprintf(vms[2].name, sizeof(vms[2].name), "c");
	vms[2].state = GWD_PAUSED;
	snprintf(vms[2].incoming_id, sizeof(vms[2].incoming_id), "m2");
	vms[2].in_step = STEP(COMMITTING);
	vms[0].next = &vms[1];
	vms[1].next = &vms[2];
	d.vms = &vms[0];
	char why[200];
	unsigned pf, vf;
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&d.pool, "a", "02:00:00:00:00:01", 0, -1, &pf, &vf, why, sizeof(why)),
	    0);
	struct gwd_mig m1, m2;
	memset(&m1, 0, sizeof(m1));
	memset(&m2, 0, sizeof(m2));
	m1.phase = PH(PRECOPY);
	m1.dma_pages = 7;
	m1.dma_bytes = 100;
	m2.phase = PH(DONE); /* ended: counted when it ended, not here */
	m2.dma_pages = 1000;
	m1.next = &m2;
	d.migs = &m1;
	gwd_metrics_mig_ended(d.metrics, PH(DONE), 1, 1, 1, 3, 5);

	uint64_t t0 = gw_now_ms();
	char *p = render(&d, 300);
	CU_ASSERT(gw_now_ms() - t0 < 2000);
	CU_ASSERT_TRUE(has(p, "godwit_vms{state=\"running\"} 1"));
	CU_ASSERT_TRUE(has(p, "godwit_vms{state=\"defined\"} 1"));
	CU_ASSERT_TRUE(has(p, "godwit_vms{state=\"paused\"} 1"));
	CU_ASSERT_TRUE(has(p, "godwit_vms{state=\"failed\"} 0"));
	CU_ASSERT_TRUE(has(
	    p,
	    "godwit_vf_pool_vfs{pf=\"pf0\",backend=\"emul\",generation=\"2\",state=\"held\"} 1"));
	CU_ASSERT_TRUE(has(
	    p,
	    "godwit_vf_pool_vfs{pf=\"pf0\",backend=\"emul\",generation=\"2\",state=\"free\"} 2"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_in_progress{direction=\"outgoing\",phase=\"precopy\"} 1"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_in_progress{direction=\"outgoing\",phase=\"setup\"} 0"));
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_in_progress{direction=\"incoming\",phase=\"committing\"} 1"));
	CU_ASSERT_TRUE(has(p, "godwit_dma_shadow_pages_total 10"));
	CU_ASSERT_TRUE(has(p, "godwit_dma_shadow_bytes_total 105"));
	CU_ASSERT_TRUE(has(p, "godwit_vmm_up{vm=\"a\"} 0"));
	CU_ASSERT_PTR_NULL(strstr(p, "godwit_vmm_up{vm=\"b\"}")); /* no VMM: not listed */
	free(p);

	/* No counters at all (metrics NULL): the page still has every family. */
	gwd_metrics_free(d.metrics);
	d.metrics = NULL;
	p = render(&d, 0);
	CU_ASSERT_TRUE(
	    has(p, "godwit_migrations_total{direction=\"outgoing\",outcome=\"completed\"} 0"));
	CU_ASSERT_TRUE(has(p, "godwit_vmm_up{vm=\"a\"} 0")); /* no budget: not asked */
	free(p);
	rmdir(dir);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	static const struct gw_test_case cases[] = {
	    {"events: migrations, histograms, DMA, RPCs", test_events},
	    {"state at scrape time and a silent VMM", test_state},
	};
	return gw_test_run("metrics", cases, GW_TEST_COUNT(cases));
}
