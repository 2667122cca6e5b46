/* SPDX-License-Identifier: Apache-2.0 */
/* The pre-copy decision after each round: go on, stop and copy, or give up; and how hard to
 * throttle the guest. Pure: no clock, no lock, no VM; the source feeds it its measurements. */
#ifndef GODWIT_MIG_CONVERGE_H
#define GODWIT_MIG_CONVERGE_H

#include <stdint.h>

#include "godwit/mig.h"

#define MIG_BW_GUESS_BPS     1000000000u /* before a round measured anything: 1 GB/s */
#define MIG_BW_MIN_SAMPLE    (1u << 20)	 /* a round moving less says little about bandwidth */
#define MIG_DOWNTIME_BASE_US 1000u	 /* pause, state and READY beyond the last pages */
#define MIG_THROTTLE_FIRST   20u	 /* default: percent of every 100 ms the vCPUs are paused */
#define MIG_THROTTLE_STEP    10u	 /* default: points added each round that does not shrink */
#define MIG_THROTTLE_MAX     95u

enum mig_verdict {
	MIG_VERDICT_NEXT_ROUND = 0, /* copy what was dirtied meanwhile */
	MIG_VERDICT_CONVERGED,	    /* the rest fits the downtime limit: stop and copy */
	MIG_VERDICT_FORCED,	    /* max_iterations rounds ran: stop and copy anyway */
	MIG_VERDICT_GIVE_UP,	    /* max_time_s passed: the migration fails, the VM stays */
};

/* What one pre-copy round measured, and the estimates it started with. */
struct mig_round {
	uint32_t iteration;	   /* 1 for the first round (all of RAM) */
	uint64_t duration_us;	   /* of the round */
	uint64_t bytes;		   /* sent during the round */
	uint64_t dirty_pages;	   /* dirtied during the round: the next round's work */
	uint64_t prev_dirty_pages; /* the previous round's dirty_pages (iteration >= 2) */
	uint64_t elapsed_us;	   /* since the migration started */
	uint64_t bandwidth_bps;	   /* the estimate so far; 0: none yet */
	uint32_t throttle_pct;	   /* the throttle so far */
};

struct mig_decision {
	enum mig_verdict verdict;
	uint64_t bandwidth_bps;
	uint64_t dirty_rate_pps;
	uint64_t bytes_remaining;
	uint64_t expected_downtime_us;
	uint32_t throttle_pct; /* for the next round */
};

const char *mig_verdict_name(enum mig_verdict v);

/* Uses p's downtime_limit_ms, max_iterations, max_time_s (0: no limit) and auto-converge
 * settings (auto_converge false: the throttle stays 0). */
void mig_converge_decide(const struct mig_params *p, const struct mig_round *r,
			 struct mig_decision *d);

#endif
