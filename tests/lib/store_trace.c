/* SPDX-License-Identifier: Apache-2.0 */
/* The store tracer of store_trace.h. */
#include "store_trace.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define PAGE   4096u
#define EFL_TF 0x100u

static struct {
	uint8_t *page;
	struct gw_store_trace *t;
	struct sigaction old_segv, old_trap;
} tr;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t a = (uintptr_t)si->si_addr, p = (uintptr_t)tr.page;
	if (!tr.page || a < p || a >= p + PAGE) {
		/* Not ours: the previous handler (or the default) sees it when the access runs
		 * again. */
		sigaction(sig, &tr.old_segv, NULL);
		return;
	}
	if (tr.t->n < GW_STORE_TRACE_MAX)
		tr.t->at[tr.t->n] = a;
	tr.t->n++;
	mprotect(tr.page, PAGE, PROT_READ | PROT_WRITE);
	((ucontext_t *)ctx)->uc_mcontext.gregs[REG_EFL] |= EFL_TF; /* trap once it ran */
}

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	((ucontext_t *)ctx)->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)EFL_TF;
	if (tr.page)
		mprotect(tr.page, PAGE, PROT_READ);
}

int gw_store_trace_start(void *page, struct gw_store_trace *t)
{
	if ((uintptr_t)page % PAGE)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	tr.page = page;
	tr.t = t;
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &tr.old_segv);
	sa.sa_sigaction = on_trap;
	sigaction(SIGTRAP, &sa, &tr.old_trap);
	if (mprotect(page, PAGE, PROT_READ) < 0) {
		int rc = -errno;
		gw_store_trace_stop();
		return rc;
	}
	return 0;
}

void gw_store_trace_stop(void)
{
	if (tr.page)
		mprotect(tr.page, PAGE, PROT_READ | PROT_WRITE);
	tr.page = NULL;
	sigaction(SIGSEGV, &tr.old_segv, NULL);
	sigaction(SIGTRAP, &tr.old_trap, NULL);
}
