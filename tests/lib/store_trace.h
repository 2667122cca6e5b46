/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every store into one page, one at a time, in the order the CPU made them: the page is made
 * read-only, each store faults, the handler opens the page and single-steps the store
 * (EFLAGS.TF), and the trap after it notes where the store went, then closes the page again.
 * It shows what memcpy cannot promise: how many stores wrote a word, and in which order. For
 * the unit tests only; x86-64 Linux; one trace at a time, in one thread.
 */
#ifndef GODWIT_TEST_STORE_TRACE_H
#define GODWIT_TEST_STORE_TRACE_H

#include <stdint.h>

#define GW_STORE_TRACE_MAX 64u

struct gw_store_trace {
	unsigned n;			  /* stores seen; the first GW_STORE_TRACE_MAX are below */
	uintptr_t at[GW_STORE_TRACE_MAX]; /* the first byte each store wrote */
};

/* Starts tracing the stores into page (4 KiB aligned) into t (zeroed here); 0 or -errno. */
int gw_store_trace_start(void *page, struct gw_store_trace *t);
/* Ends it: the page is writable again and the previous signal handlers are back. */
void gw_store_trace_stop(void);

#endif
