/* SPDX-License-Identifier: Apache-2.0 */
/*
 * godwitd under systemd (libsystemd): READY=1 once it serves, STOPPING=1 as it ends, a watchdog
 * fed only while the daemon really answers, the unix socket taken from socket activation, and
 * log lines as structured journal entries when stderr is the journal (systemd.exec(5),
 * JOURNAL_STREAM; sd_notify(3), sd_listen_fds(3), sd_watchdog_enabled(3), sd_journal_sendv(3)).
 */
#include "ops.h"

#include "godwit/deadline.h"
#include "godwit/log.h"
#include "grpc/health/v1/health.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

bool gwd_sd_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* syslog(3) priorities of the logger's levels. */
static const int journal_prio[] = {
    [GW_LOG_ERROR] = 3,
    [GW_LOG_WARN] = 4,
    [GW_LOG_INFO] = 6,
    [GW_LOG_DEBUG] = 7,
};

static void journal_sink(void *opaque, enum gw_log_level level, const char *ident,
			 const char *prefix, const struct gw_log_fields *f, const char *msg)
{
	(void)opaque;
	char m[1200], prio[16], id[80], obj[120], vm[96], mig[96];
	struct iovec iov[6];
	int n = 0;
#define FIELD(buf, ...)                                                                            \
	do {                                                                                       \
		int len_ = snprintf(buf, sizeof(buf), __VA_ARGS__);                                \
		iov[n].iov_base = buf;                                                             \
		iov[n++].iov_len = len_ < (int)sizeof(buf) ? (size_t)len_ : sizeof(buf) - 1;       \
	} while (0)
	FIELD(m, "MESSAGE=%s%s%s", prefix ? prefix : "", prefix ? ": " : "", msg);
	FIELD(prio, "PRIORITY=%d", journal_prio[level]);
	FIELD(id, "SYSLOG_IDENTIFIER=%s", ident);
	if (prefix)
		FIELD(obj, "GODWIT_OBJECT=%s", prefix);
	if (f->vm && f->vm[0])
		FIELD(vm, "GODWIT_VM=%s", f->vm);
	if (f->migration && f->migration[0])
		FIELD(mig, "GODWIT_MIGRATION=%s", f->migration);
#undef FIELD
	if (sd_journal_sendv(iov, n) < 0)
		fprintf(stderr, "<%d>%s\n", journal_prio[level], m + 8); /* journal gone */
}

bool gwd_sd_log_to_journal(void)
{
	if (!gwd_sd_stderr_is_journal())
		return false;
	gw_log_set_sink(journal_sink, NULL);
	return true;
}

int gwd_sd_listen_fd(int *fd, char *path, size_t pathn, char *why, size_t n)
{
	*fd = -1;
	int nfds = sd_listen_fds(1);
	if (nfds < 0) {
		snprintf(why, n, "socket activation: %s", strerror(-nfds));
		return -EINVAL;
	}
	if (nfds == 0)
		return 0;
	if (nfds > 1) {
		snprintf(why, n,
			 "socket activation passed %d sockets; godwitd takes one, its unix socket "
			 "(one ListenStream= in godwitd.socket)",
			 nfds);
		return -EINVAL;
	}
	int s = SD_LISTEN_FDS_START;
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	if (sd_is_socket_unix(s, SOCK_STREAM, 1, NULL, 0) <= 0 ||
	    getsockname(s, (struct sockaddr *)&un, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) || un.sun_path[0] == '\0') {
		snprintf(why, n,
			 "socket activation: the passed socket is not a listening unix stream "
			 "socket with a path (ListenStream=/path in godwitd.socket)");
		return -EINVAL;
	}
	size_t plen = len - offsetof(struct sockaddr_un, sun_path);
	if (plen >= pathn)
		plen = pathn - 1;
	memcpy(path, un.sun_path, plen);
	path[plen] = '\0';
	path[strnlen(path, plen)] = '\0';
	/* Its callers get the whole API without a token, as on godwitd's own socket: only the
	 * owner may connect. */
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		snprintf(why, n,
			 "socket activation: %s must be a socket only its owner (this user) may "
			 "use: SocketMode=0600 and SocketUser= in godwitd.socket",
			 path);
		return -EINVAL;
	}
	*fd = s;
	return 0;
}

void gwd_sd_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

struct gwd_watchdog {
	struct gwd *d;
	char target[600];
	uint64_t period_ms; /* between pings: half of WatchdogSec */
	pthread_t thread;
	pthread_mutex_t lock; /* held for each ping: none is sent once stop is set */
	pthread_cond_t cond;
	bool stop;
};

void gwd_sd_stopping(struct gwd_watchdog *w)
{
	/* The watchdog stops first, under its lock: no WATCHDOG=1 follows STOPPING=1, even one
	 * whose check was under way. */
	if (w) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
	}
	sd_notify(0, "STOPPING=1\nSTATUS=stopping; running VMs keep running");
	if (w)
		pthread_mutex_unlock(&w->lock);
}

/* Alive: the daemon's lock can be taken, and a health check through the API's unix socket
 * gets an answer (the completion-queue thread and a worker run), each within a quarter of the
 * period. 0 or -errno with why. */
static int alive(struct gwd_watchdog *w, struct gw_rpc_client **cl, char *why, size_t n)
{
	long wait_ms = (long)(w->period_ms / 4) + 1;
	struct timespec ts = gw_deadline_ms(wait_ms);
	int rc = pthread_mutex_timedlock(&w->d->lock, &ts);
	if (rc) {
		snprintf(why, n, "the daemon's lock is held for over %ld ms", wait_ms);
		return -rc;
	}
	pthread_mutex_unlock(&w->d->lock);
	if (!*cl && gw_rpc_client_open(w->target, NULL, 0, cl)) {
		*cl = NULL;
		snprintf(why, n, "cannot open %s", w->target);
		return -ECONNREFUSED;
	}
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status st;
	enum gw_rpc_code code = gw_rpc_unary(*cl, &grpc__health__v1__health__descriptor, "Check",
					     &req.base, &resp, (int)wait_ms, &st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	/* A server at its bound of calls still answers: it is busy, not hung. */
	if (code == GW_RPC_OK || code == GW_RPC_RESOURCE_EXHAUSTED)
		return 0;
	snprintf(why, n, "the API's health check got %s: %s", gw_rpc_code_name(code), st.message);
	return -EIO;
}

static void *watchdog_thread(void *arg)
{
	struct gwd_watchdog *w = arg;
	struct gw_rpc_client *cl = NULL;
	bool failing = false;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		pthread_mutex_unlock(&w->lock);
		/* The next check a period after this one began, however long it takes: pings stay
		 * within 3/4 of WatchdogSec of each other while the daemon answers. */
		struct timespec next = gw_deadline_ms((long)w->period_ms);
		char why[700];
		if (alive(w, &cl, why, sizeof(why)) == 0) {
			pthread_mutex_lock(&w->lock);
			if (!w->stop)
				sd_notify(0, "WATCHDOG=1");
			pthread_mutex_unlock(&w->lock);
			if (failing)
				GW_INFO("watchdog", "the daemon answers again");
			failing = false;
		} else if (!failing) {
			GW_WARN("watchdog", "not feeding systemd's watchdog: %s", why);
			failing = true;
		}
		pthread_mutex_lock(&w->lock);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &next) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&w->lock);
	gw_rpc_client_close(cl);
	return NULL;
}

int gwd_sd_watchdog_start(struct gwd *d, const char *unix_target, struct gwd_watchdog **out)
{
	uint64_t usec = 0;
	*out = NULL;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	struct gwd_watchdog *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->d = d;
	snprintf(w->target, sizeof(w->target), "%s", unix_target);
	w->period_ms = usec / 2000 ? usec / 2000 : 1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, watchdog_thread, w) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -EAGAIN;
	}
	GW_INFO("watchdog", "feeding systemd's watchdog every %" PRIu64 " ms", w->period_ms);
	*out = w;
	return 0;
}

void gwd_sd_watchdog_stop(struct gwd_watchdog *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
