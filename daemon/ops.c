/* SPDX-License-Identifier: Apache-2.0 */
/* The host's services around godwitd's main loop: journald, socket activation, /metrics, the
 * watchdog and readiness, in the order main.c needs them. */
#include "ops.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int gwd_ops_early(struct gwd *d, struct gwd_ops *ops)
{
	gwd_sd_log_to_journal();
	d->metrics = gwd_metrics_new();
	if (!d->metrics) {
		fprintf(stderr, "godwitd: out of memory\n");
		return 1;
	}
	int fd;
	char path[108], why[400];
	if (gwd_sd_listen_fd(&fd, path, sizeof(path), why, sizeof(why))) {
		fprintf(stderr, "godwitd: %s\n", why);
		return 2;
	}
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/godwitd.sock", d->state_dir);
		snprintf(ops->unix_listen, sizeof(ops->unix_listen), "unix:%s", path);
	} else {
		snprintf(ops->unix_listen, sizeof(ops->unix_listen), "unix-fd:%d", fd);
		char own[300];
		snprintf(own, sizeof(own), "%s/godwitd.sock", d->state_dir);
		GW_INFO("godwitd", "socket activation: serving the unix socket %s systemd passed%s",
			path,
			strcmp(path, own) == 0 ? ""
					       : " (not DIR/godwitd.sock: give clients --host)");
	}
	snprintf(ops->unix_target, sizeof(ops->unix_target), "unix:%s", path);
	return 0;
}

int gwd_ops_serving(struct gwd *d, struct gwd_ops *ops, const char *status)
{
	char why[600];
	const char *addr = ops->metrics ? ops->metrics : GWD_METRICS_DEFAULT;
	if (strcmp(addr, "off") == 0) {
		char p[600];
		snprintf(p, sizeof(p), "%s/metrics-address", d->state_dir);
		unlink(p);
	} else {
		int rc = gwd_metrics_http_start(d, addr, &ops->http, why, sizeof(why));
		if (rc && ops->metrics_given) {
			fprintf(stderr, "godwitd: %s\n", why);
			return 1;
		}
		/* The default port may be another godwitd's (several on one host): go on. */
		if (rc)
			GW_WARN("metrics", "%s; no /metrics (choose one with --metrics ADDR)", why);
	}
	int rc = gwd_sd_watchdog_start(d, ops->unix_target, &ops->watchdog);
	if (rc) {
		fprintf(stderr, "godwitd: cannot start the watchdog thread: %s\n", strerror(-rc));
		return 1;
	}
	gwd_sd_ready(status);
	return 0;
}

void gwd_ops_stop(struct gwd_ops *ops)
{
	gwd_sd_stopping(ops->watchdog);
	gwd_sd_watchdog_stop(ops->watchdog);
	ops->watchdog = NULL;
	gwd_metrics_http_stop(ops->http);
	ops->http = NULL;
}
