/* SPDX-License-Identifier: Apache-2.0 */
/* What makes godwitd a citizen of its host: systemd (readiness, watchdog, socket activation,
 * journald) and Prometheus metrics. main.c calls these; the API code records events. */
#ifndef GODWIT_DAEMON_OPS_H
#define GODWIT_DAEMON_OPS_H

#include "daemon.h"

#include "godwit/buf.h"

/* ---- ops.c: what main.c calls ---- */

struct gwd_watchdog;
struct gwd_metrics_http;

struct gwd_ops {
	const char *metrics;   /* --metrics: HOST:PORT or "off" */
	bool metrics_given;    /* given on the command line (else the default) */
	char unix_listen[600]; /* for the RPC server: "unix:DIR/godwitd.sock" or "unix-fd:N" */
	char unix_target[600]; /* where a client reaches it: "unix:PATH" */
	struct gwd_watchdog *watchdog;
	struct gwd_metrics_http *http;
};

/* Before the VMs of the previous run are loaded: log lines to journald when stderr is the
 * journal, the counters, and the unix socket systemd may have passed. 0 or the exit code. */
int gwd_ops_early(struct gwd *d, struct gwd_ops *ops);
/* Once the API serves: /metrics, the watchdog, and READY=1 for systemd. 0 or the exit code. */
int gwd_ops_serving(struct gwd *d, struct gwd_ops *ops, const char *status);
/* As godwitd ends: STOPPING=1, and the watchdog and /metrics stopped. */
void gwd_ops_stop(struct gwd_ops *ops);

/* ---- sd.c: systemd ---- */

/* Whether stderr is the journal: JOURNAL_STREAM (set by systemd for a service whose output
 * goes there) names stderr's device and inode. */
bool gwd_sd_stderr_is_journal(void);
/* When stderr is the journal, log lines go to journald as structured entries (PRIORITY,
 * SYSLOG_IDENTIFIER, GODWIT_OBJECT, GODWIT_VM, GODWIT_MIGRATION) instead; true when so. */
bool gwd_sd_log_to_journal(void);
/* The unix socket systemd passed (socket activation: LISTEN_FDS, LISTEN_PID): 0 with *fd -1
 * when none was passed, or with *fd the listening socket and its path in path. -EINVAL with
 * why when what was passed cannot serve: more than one fd, not a listening unix stream
 * socket, or a socket file others may use (its callers need no token). */
int gwd_sd_listen_fd(int *fd, char *path, size_t pathn, char *why, size_t n);
/* READY=1 with a STATUS line; STOPPING=1, the watchdog w (if any) silenced first, so that no
 * WATCHDOG=1 follows it. Nothing without NOTIFY_SOCKET. */
void gwd_sd_ready(const char *status);
void gwd_sd_stopping(struct gwd_watchdog *w);
/* With a watchdog asked for (WATCHDOG_USEC for this process), a thread that pings it every
 * half period while the daemon is alive: its lock can be taken and the API answers a health
 * check on unix_target ("unix:PATH"). 0 (also with no watchdog: *out NULL) or -errno. */
int gwd_sd_watchdog_start(struct gwd *d, const char *unix_target, struct gwd_watchdog **out);
void gwd_sd_watchdog_stop(struct gwd_watchdog *w);

/* ---- metrics.c: what /metrics shows ---- */

struct gwd_metrics;
struct gwd_metrics *gwd_metrics_new(void);
void gwd_metrics_free(struct gwd_metrics *m);
/* The RPC server's call-end hook (gw_rpc_call_end_fn); opaque is the gwd_metrics. */
void gwd_metrics_rpc_end(void *opaque, const char *service, const char *method,
			 enum gw_rpc_code code);
/* An outgoing migration ended in phase ph (DONE, FAILED, CANCELLED) with these totals. */
void gwd_metrics_mig_ended(struct gwd_metrics *m, Godwit__V1__MigrationPhase ph, uint64_t total_us,
			   uint64_t downtime_us, uint64_t bytes, uint64_t dma_pages,
			   uint64_t dma_bytes);
/* An incoming migration ended: committed here, or aborted. */
void gwd_metrics_incoming_ended(struct gwd_metrics *m, bool committed);
/* The page: every family, from d (taking d->lock briefly) and from the VMMs' control sockets,
 * which get budget_ms together (a VMM that does not answer in time shows godwit_vmm_up 0). */
void gwd_metrics_render(struct gwd *d, struct gw_buf *out, int budget_ms);

/* ---- metrics_http.c: the endpoint ---- */

#define GWD_METRICS_DEFAULT "127.0.0.1:9477"
/* Serves GET /metrics on addr (HOST:PORT, port 0 picks one) on its own thread and writes the
 * address bound to DIR/metrics-address. 0, or -errno with why. */
int gwd_metrics_http_start(struct gwd *d, const char *addr, struct gwd_metrics_http **out,
			   char *why, size_t n);
void gwd_metrics_http_stop(struct gwd_metrics_http *h);

#endif
