/* SPDX-License-Identifier: Apache-2.0 */
/* One logger with levels and a per-object prefix; it never changes errno. */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum gw_log_level {
	GW_LOG_ERROR = 0,
	GW_LOG_WARN = 1,
	GW_LOG_INFO = 2,
	GW_LOG_DEBUG = 3,
};

/*
 * The level and sink are process-wide: the one piece of process state the design allows,
 * because a logger that had to be threaded through every call would not get used.
 */
void gw_log_set_level(enum gw_log_level level);
enum gw_log_level gw_log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 or -EINVAL. */
int gw_log_parse_level(const char *s, enum gw_log_level *out);
/* Sets the program name printed on every line (pointer must stay valid). */
void gw_log_set_ident(const char *ident);

/*
 * Structured fields a line carries besides its text, for sinks that keep them apart (journald:
 * GODWIT_VM=, GODWIT_MIGRATION=). NULL or "": none. The stderr line does not show them.
 */
struct gw_log_fields {
	const char *vm;
	const char *migration;
};
/* The calling thread's fields, copied (names are cut at 63 characters): every line the thread
 * logs carries them until they are set again; NULL or "" clears one. */
void gw_log_thread_fields(const char *vm, const char *migration);
/* Both cleared: what a thread reused for unrelated work (a server's worker) does after each. */
void gw_log_thread_fields_clear(void);

/* Where lines go instead of stderr: fn gets each line the level lets through, with errno
 * preserved around it, from any thread (it must be thread-safe). fn NULL: stderr again. Set it
 * before other threads log. */
typedef void (*gw_log_sink_fn)(void *opaque, enum gw_log_level level, const char *ident,
			       const char *prefix, const struct gw_log_fields *fields,
			       const char *msg);
void gw_log_set_sink(gw_log_sink_fn fn, void *opaque);

void gw_log(enum gw_log_level level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gw_vlog(enum gw_log_level level, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define GW_ERR(prefix, ...)   gw_log(GW_LOG_ERROR, prefix, __VA_ARGS__)
#define GW_WARN(prefix, ...)  gw_log(GW_LOG_WARN, prefix, __VA_ARGS__)
#define GW_INFO(prefix, ...)  gw_log(GW_LOG_INFO, prefix, __VA_ARGS__)
#define GW_DEBUG(prefix, ...) gw_log(GW_LOG_DEBUG, prefix, __VA_ARGS__)

/* A reason for people into a caller's buffer (why, n); nothing when why is NULL or n is 0. The
 * other half of "a function logs an error or returns it": this is how it returns it. */
__attribute__((format(printf, 3, 4))) void gw_say(char *why, size_t n, const char *fmt, ...);

#endif
