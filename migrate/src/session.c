/* SPDX-License-Identifier: Apache-2.0 */
/* The migration session's state machine, as data: one row per (state, event). */
#include "godwit/mig.h"

#include <errno.h>

#define T(n, r)                                                                                    \
	{                                                                                          \
		.next = (n), .resume_source = (r), .valid = true                                   \
	}

/*
 * Failure or cancel before the handover resumes the source: it never stopped being the
 * owner. At HANDOVER the destination holds a complete, paused copy; only the caller's
 * decision (COMMIT or ABORT) ends it, so the VM never runs on both hosts or on neither.
 */
static const struct mig_transition table[MIG_NSTATES][MIG_NEVENTS] = {
    [MIG_SETUP] =
	{
	    [MIG_EV_CONNECTED] = T(MIG_PRECOPY, false),
	    [MIG_EV_ERROR] = T(MIG_FAILED, true),
	    [MIG_EV_CANCEL] = T(MIG_CANCELLED, true),
	},
    [MIG_PRECOPY] =
	{
	    [MIG_EV_CONVERGED] = T(MIG_STOP_AND_COPY, false),
	    [MIG_EV_ERROR] = T(MIG_FAILED, true),
	    [MIG_EV_CANCEL] = T(MIG_CANCELLED, true),
	},
    [MIG_STOP_AND_COPY] =
	{
	    [MIG_EV_DEST_READY] = T(MIG_HANDOVER, false),
	    [MIG_EV_ERROR] = T(MIG_FAILED, true),
	    [MIG_EV_CANCEL] = T(MIG_CANCELLED, true),
	},
    [MIG_HANDOVER] =
	{
	    [MIG_EV_COMMIT] = T(MIG_DONE, false),
	    [MIG_EV_ABORT] = T(MIG_FAILED, true),
	    [MIG_EV_CANCEL] = T(MIG_CANCELLED, true),
	},
};

int mig_transition(enum mig_state s, enum mig_event e, struct mig_transition *t)
{
	if ((unsigned)s >= MIG_NSTATES || (unsigned)e >= MIG_NEVENTS || !table[s][e].valid)
		return -EINVAL;
	*t = table[s][e];
	return 0;
}

const char *mig_state_name(enum mig_state s)
{
	static const char *const names[] = {
	    [MIG_SETUP] = "setup",
	    [MIG_PRECOPY] = "precopy",
	    [MIG_STOP_AND_COPY] = "stop-and-copy",
	    [MIG_HANDOVER] = "handover",
	    [MIG_DONE] = "done",
	    [MIG_FAILED] = "failed",
	    [MIG_CANCELLED] = "cancelled",
	};
	return (unsigned)s < MIG_NSTATES ? names[s] : "unknown";
}

const char *mig_event_name(enum mig_event e)
{
	static const char *const names[] = {
	    [MIG_EV_CONNECTED] = "connected",
	    [MIG_EV_CONVERGED] = "converged",
	    [MIG_EV_DEST_READY] = "destination ready",
	    [MIG_EV_COMMIT] = "commit",
	    [MIG_EV_ABORT] = "abort",
	    [MIG_EV_ERROR] = "error",
	    [MIG_EV_CANCEL] = "cancel",
	};
	return (unsigned)e < MIG_NEVENTS ? names[e] : "unknown";
}

bool mig_state_final(enum mig_state s)
{
	return s == MIG_DONE || s == MIG_FAILED || s == MIG_CANCELLED;
}
