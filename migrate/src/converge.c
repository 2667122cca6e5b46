/* SPDX-License-Identifier: Apache-2.0 */
/* When pre-copy has converged, and the auto-converge throttle (the rules of converge.h). */
#include "converge.h"

#include "stream.h"

const char *mig_verdict_name(enum mig_verdict v)
{
	switch (v) {
	case MIG_VERDICT_NEXT_ROUND:
		return "next round";
	case MIG_VERDICT_CONVERGED:
		return "converged";
	case MIG_VERDICT_FORCED:
		return "stop forced by the round limit";
	case MIG_VERDICT_GIVE_UP:
		return "gave up";
	}
	return "?";
}

static uint32_t next_throttle(const struct mig_params *p, uint32_t pct)
{
	uint32_t first = p->throttle_initial_pct ? p->throttle_initial_pct : MIG_THROTTLE_FIRST;
	uint32_t step = p->throttle_increment_pct ? p->throttle_increment_pct : MIG_THROTTLE_STEP;
	uint32_t next = pct ? pct + step : first;
	return next > MIG_THROTTLE_MAX ? MIG_THROTTLE_MAX : next;
}

void mig_converge_decide(const struct mig_params *p, const struct mig_round *r,
			 struct mig_decision *d)
{
	*d = (struct mig_decision){.bandwidth_bps = r->bandwidth_bps,
				   .throttle_pct = r->throttle_pct};
	/* A round too small to measure keeps the previous figure. */
	if (r->duration_us && r->bytes > MIG_BW_MIN_SAMPLE)
		d->bandwidth_bps = r->bytes * 1000000u / r->duration_us;
	else if (!d->bandwidth_bps)
		d->bandwidth_bps = MIG_BW_GUESS_BPS;
	if (!d->bandwidth_bps)
		d->bandwidth_bps = 1; /* under 1 byte/s measured: never divide by zero */
	d->dirty_rate_pps = r->duration_us ? r->dirty_pages * 1000000u / r->duration_us : 0;
	d->bytes_remaining = r->dirty_pages * MIG_PAGE;
	d->expected_downtime_us =
	    d->bytes_remaining * 1000000u / d->bandwidth_bps + MIG_DOWNTIME_BASE_US;

	bool converged = d->expected_downtime_us <= (uint64_t)p->downtime_limit_ms * 1000u;
	/* Not shrinking by a tenth a round: slow the guest down so that the copy catches up. */
	if (!p->auto_converge)
		d->throttle_pct = 0;
	else if (!converged && r->iteration >= 2 && r->dirty_pages * 10 >= r->prev_dirty_pages * 9)
		d->throttle_pct = next_throttle(p, r->throttle_pct);

	if (p->max_time_s && r->elapsed_us > (uint64_t)p->max_time_s * 1000000u)
		d->verdict = MIG_VERDICT_GIVE_UP;
	else if (converged)
		d->verdict = MIG_VERDICT_CONVERGED;
	else if (r->iteration >= p->max_iterations)
		d->verdict = MIG_VERDICT_FORCED;
	else
		d->verdict = MIG_VERDICT_NEXT_ROUND;
}
