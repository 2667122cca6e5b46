/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the pre-copy decision: convergence, auto-converge throttle, the limits. */
#include "converge.h"
#include "stream.h"

#include "../../lib/gw_test.h"

#include <string.h>

static struct mig_params params(uint32_t downtime_ms, unsigned max_iterations, uint32_t max_time_s)
{
	struct mig_params p;
	memset(&p, 0, sizeof(p));
	p.downtime_limit_ms = downtime_ms;
	p.max_iterations = max_iterations;
	p.max_time_s = max_time_s;
	p.auto_converge = true; /* mig_params_default's; 0 percentages: the defaults */
	return p;
}

/* A one-second round that moved 4,096,000 bytes: 4,096,000 B/s, one page per ms. */
static struct mig_round round_of(uint32_t iteration, uint64_t dirty, uint64_t prev_dirty)
{
	return (struct mig_round){
	    .iteration = iteration,
	    .duration_us = 1000000,
	    .bytes = 4096000,
	    .dirty_pages = dirty,
	    .prev_dirty_pages = prev_dirty,
	    .elapsed_us = 5000000,
	    .bandwidth_bps = 0,
	    .throttle_pct = 0,
	};
}

static void test_estimates(void)
{
	struct mig_params p = params(50, 30, 0);
	struct mig_round r = round_of(1, 1000, UINT64_MAX);
	struct mig_decision d;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.bandwidth_bps, 4096000);
	CU_ASSERT_EQUAL(d.dirty_rate_pps, 1000);
	CU_ASSERT_EQUAL(d.bytes_remaining, 1000 * MIG_PAGE);
	/* 1000 pages at a page per ms, plus the fixed part. */
	CU_ASSERT_EQUAL(d.expected_downtime_us, 1000000 + MIG_DOWNTIME_BASE_US);

	/* A round too small to measure keeps the previous estimate... */
	r.bytes = MIG_BW_MIN_SAMPLE;
	r.bandwidth_bps = 123456789;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.bandwidth_bps, 123456789);
	/* ...or, with none yet, the first guess. */
	r.bandwidth_bps = 0;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.bandwidth_bps, MIG_BW_GUESS_BPS);
	/* A round of no measurable time has no dirty rate, and divides by nothing. */
	r.duration_us = 0;
	r.bytes = 100u << 20;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.dirty_rate_pps, 0);
	CU_ASSERT_EQUAL(d.bandwidth_bps, MIG_BW_GUESS_BPS);
}

static void test_converges_when_downtime_fits(void)
{
	struct mig_params p = params(50, 30, 0);
	struct mig_decision d;
	/* 49 pages: 49 ms + 1 ms = exactly the 50 ms limit. */
	struct mig_round r = round_of(3, 49, 5000);
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.expected_downtime_us, 50000);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_CONVERGED);
	/* One page more does not fit: another round. */
	r.dirty_pages = 50;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.expected_downtime_us, 51000);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
	/* A looser limit takes it. */
	p.downtime_limit_ms = 51;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_CONVERGED);
	/* Nothing dirty converges at once, even on the first round. */
	r = round_of(1, 0, UINT64_MAX);
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_CONVERGED);
	CU_ASSERT_EQUAL(d.expected_downtime_us, MIG_DOWNTIME_BASE_US);
}

static void test_throttle_steps(void)
{
	struct mig_params p = params(50, 100, 0);
	struct mig_decision d;
	/* The first round copies all of RAM: however much is dirty, no throttle yet. */
	struct mig_round r = round_of(1, 100000, UINT64_MAX);
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.throttle_pct, 0);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
	/* Not shrinking by a tenth: throttle, 20 % first, then 10 points a round up to 95. */
	static const uint32_t expect[] = {20, 30, 40, 50, 60, 70, 80, 90, 95, 95};
	uint32_t pct = 0;
	for (uint32_t i = 0; i < GW_TEST_COUNT(expect); i++) {
		r = round_of(2 + i, 100000, 100000);
		r.throttle_pct = pct;
		mig_converge_decide(&p, &r, &d);
		CU_ASSERT_EQUAL(d.throttle_pct, expect[i]);
		CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
		pct = d.throttle_pct;
	}
	/* Exactly 90 % of the previous round still counts as not shrinking... */
	r = round_of(5, 9000, 10000);
	r.throttle_pct = 40;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.throttle_pct, 50);
	/* ...below it the copy is catching up: the throttle stays where it is. */
	r.dirty_pages = 8999;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.throttle_pct, 40);
	/* A round that converged is not throttled further, growing or not. */
	r = round_of(5, 10, 5);
	r.throttle_pct = 40;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_CONVERGED);
	CU_ASSERT_EQUAL(d.throttle_pct, 40);
}

static void test_forced_after_max_iterations(void)
{
	struct mig_params p = params(50, 30, 0);
	struct mig_decision d;
	struct mig_round r = round_of(29, 100000, 100000);
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
	r.iteration = 30;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_FORCED);
	/* The throttle still follows the round, for the stats. */
	CU_ASSERT_EQUAL(d.throttle_pct, MIG_THROTTLE_FIRST);
	/* Converging on the last round is a convergence, not a forced stop. */
	r.dirty_pages = 1;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_CONVERGED);
}

/* --no-auto-converge: the same non-shrinking rounds never throttle, and a throttle carried
 * in drops to 0. */
static void test_auto_converge_off(void)
{
	struct mig_params p = params(50, 100, 0);
	p.auto_converge = false;
	struct mig_decision d;
	for (uint32_t it = 2; it < 10; it++) {
		struct mig_round r = round_of(it, 100000, 100000);
		mig_converge_decide(&p, &r, &d);
		CU_ASSERT_EQUAL(d.throttle_pct, 0);
		CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
	}
	struct mig_round r = round_of(3, 100000, 100000);
	r.throttle_pct = 40;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.throttle_pct, 0);
}

/* --auto-converge-initial 35 --auto-converge-increment 25: 35, 60, 85, then the cap. */
static void test_auto_converge_steps_tuned(void)
{
	struct mig_params p = params(50, 100, 0);
	p.throttle_initial_pct = 35;
	p.throttle_increment_pct = 25;
	const uint32_t expect[] = {35, 60, 85, MIG_THROTTLE_MAX, MIG_THROTTLE_MAX};
	uint32_t pct = 0;
	struct mig_decision d;
	for (unsigned i = 0; i < 5; i++) {
		struct mig_round r = round_of(2 + i, 100000, 100000);
		r.throttle_pct = pct;
		mig_converge_decide(&p, &r, &d);
		CU_ASSERT_EQUAL(d.throttle_pct, expect[i]);
		pct = d.throttle_pct;
	}
}

static void test_gives_up_after_max_time(void)
{
	struct mig_params p = params(50, 30, 10);
	struct mig_decision d;
	struct mig_round r = round_of(4, 100000, 100000);
	r.elapsed_us = 10000000; /* exactly the limit: not yet */
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
	r.elapsed_us = 10000001;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_GIVE_UP);
	/* The time limit wins over a convergence and over the iteration limit. */
	r.dirty_pages = 1;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_GIVE_UP);
	r.dirty_pages = 100000;
	r.iteration = 30;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_GIVE_UP);
	/* No limit: never. */
	p.max_time_s = 0;
	r.iteration = 4;
	r.elapsed_us = UINT64_MAX / 2;
	mig_converge_decide(&p, &r, &d);
	CU_ASSERT_EQUAL(d.verdict, MIG_VERDICT_NEXT_ROUND);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"bandwidth, dirty rate and downtime estimates", test_estimates},
	    {"converges when the expected downtime fits", test_converges_when_downtime_fits},
	    {"throttle in steps up to the cap", test_throttle_steps},
	    {"stop-and-copy forced after max iterations", test_forced_after_max_iterations},
	    {"gives up after the maximum time", test_gives_up_after_max_time},
	    {"auto-converge off: never a throttle", test_auto_converge_off},
	    {"auto-converge initial and increment", test_auto_converge_steps_tuned},
	};
	return gw_test_run("migrate-converge", cases, GW_TEST_COUNT(cases));
}
