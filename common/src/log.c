/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled logging to stderr with timestamps, program name and object prefix, or to a sink that
 * also takes each thread's structured fields (the daemon's journald writer). */
#include "godwit/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum gw_log_level g_level = GW_LOG_INFO;
static const char *g_ident = "godwit";
static gw_log_sink_fn g_sink;
static void *g_sink_opaque;

/* Per thread, so that a migration's thread tags its own lines without passing anything down. */
static __thread struct {
	char vm[64];
	char migration[64];
} t_fields;

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

void gw_log_set_sink(gw_log_sink_fn fn, void *opaque)
{
	g_sink_opaque = opaque;
	g_sink = fn;
}

void gw_log_thread_fields(const char *vm, const char *migration)
{
	snprintf(t_fields.vm, sizeof(t_fields.vm), "%s", vm ? vm : "");
	snprintf(t_fields.migration, sizeof(t_fields.migration), "%s", migration ? migration : "");
}

void gw_log_thread_fields_clear(void)
{
	t_fields.vm[0] = '\0';
	t_fields.migration[0] = '\0';
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
	gw_log_sink_fn sink = g_sink;
	if (sink) {
		struct gw_log_fields f = {.vm = t_fields.vm, .migration = t_fields.migration};
		sink(g_sink_opaque, level, g_ident, prefix, &f, msg);
		errno = saved;
		return;
	}

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

void gw_say(char *why, size_t n, const char *fmt, ...)
{
	if (!why || !n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}
