/* SPDX-License-Identifier: Apache-2.0 */
/* Absolute CLOCK_REALTIME deadlines for pthread_cond_timedwait, and a monotonic clock. */
#ifndef GODWIT_DEADLINE_H
#define GODWIT_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* now + ms (ms >= 0), normalized. */
static inline struct timespec gw_deadline_ms(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Milliseconds of CLOCK_MONOTONIC, for rates and intervals. */
static inline uint64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
