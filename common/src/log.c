/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled logging to stderr with timestamps, program name and object prefix. */
#include "godwit/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum gw_log_level g_level = GW_LOG_INFO;
static const char *g_ident = "godwit";

static const char *const level_names[] = {
    [GW_LOG_ERROR] = "error",
    [GW_LOG_WARN] = "warn",
    [GW_LOG_INFO] = "info",
    [GW_LOG_DEBUG] = "debug",
};

void gw_log_set_level(enum gw_log_level level)
{
	g_level = level;
}

enum gw_log_level gw_log_get_level(void)
{
	return g_level;
}

void gw_log_set_ident(const char *ident)
{
	g_ident = ident;
}

int gw_log_parse_level(const char *s, enum gw_log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum gw_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void gw_vlog(enum gw_log_level level, const char *prefix, const char *fmt, va_list ap)
{
	int saved = errno;
	if (level > g_level) {
		errno = saved;
		return;
	}
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line so that lines from several threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s[%d] %s %s%s%s\n", when, ts.tv_nsec / 1000000L, g_ident,
		(int)getpid(), level_names[level], prefix ? prefix : "", prefix ? ": " : "", msg);
	errno = saved;
}

void gw_log(enum gw_log_level level, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gw_vlog(level, prefix, fmt, ap);
	va_end(ap);
}
