/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the migration source and destination. */
#ifndef GODWIT_MIG_PRIV_H
#define GODWIT_MIG_PRIV_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "godwit/mig.h"
#include "chan.h"
#include "net.h"
#include "stream.h"

#define MIG_CHUNK_PAGES 256u /* pages of one 1 MiB chunk always travel on the same channel */
#define MIG_BATCH_PAGES 256u /* pages per RAM batch the source sends */
_Static_assert(MIG_BATCH_PAGES <= MIG_BATCH_MAX, "a batch the source fills fits the wire's bound");

static inline uint64_t mig_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline unsigned mig_channel_of(uint64_t page, unsigned n)
{
	return (unsigned)((page / MIG_CHUNK_PAGES) % n);
}

/* dest.c: a destination of one channel served on fd, in the caller's thread, instead of an
 * accepted connection (a socketpair's end: the fuzzer's way into the per-channel loop). The
 * handshake, then records until END and the state loaded: 0 when the VM is ready to run,
 * -EPROTO when the stream failed (why in err), -EINVAL unless p has one channel. */
int mig_dest_serve_fd(struct hv_vm *vm, const struct mig_params *p, int fd, char *err, size_t n);

#endif
