/* SPDX-License-Identifier: Apache-2.0 */
/* gw-reaper: runs a test and, whatever way it ends, leaves none of its processes behind. */
/*
 * CTest kills only the process it started when a test times out (with SIGKILL), so daemons,
 * VMMs and traffic peers that a test script started would live on. gw-reaper splits in two:
 * the process CTest sees waits; a keeper child is a child subreaper (PR_SET_CHILD_SUBREAPER,
 * so every orphan of the test is re-parented to it, even after setsid or a double fork) and
 * gets SIGTERM when its parent dies (PR_SET_PDEATHSIG). When the test command exits, or the
 * parent is killed, or SIGTERM/SIGINT/SIGHUP arrives, the keeper terminates every descendant:
 * SIGTERM first, SIGKILL after a grace period, until it has no children left.
 *
 * With --init it is PID 1 of a test host: no split, the same cleanup, then power-off.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 65536

static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig)
{
	g_stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gw-reaper [--grace SECS] [--quiet] [--init] -- COMMAND [ARGS...]\n"
		"Runs COMMAND; when it exits or gw-reaper is signalled or killed, terminates\n"
		"every process COMMAND left behind (SIGTERM, then SIGKILL after SECS, default 3).\n"
		"--quiet: do not say so when a signal ends COMMAND.\n"
		"--init: act as PID 1 of a test host and power off at the end.\n"
		"Exit status: COMMAND's, 128+N if it died of signal N, 125 if gw-reaper failed.\n");
}

/* Reads the parent pid of PID from /proc/PID/stat; the comm field may hold spaces and ')'. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	int ppid;
	char state;
	if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
		return -1;
	return (pid_t)ppid;
}

/* Sends SIG to every descendant of ROOT; returns how many were signalled. */
static int signal_descendants(pid_t root, int sig)
{
	static pid_t pids[MAX_PROCS], ppids[MAX_PROCS];
	int n = 0, count = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_PROCS) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		pid_t pp = parent_of((pid_t)pid);
		if (pp < 0)
			continue;
		pids[n] = (pid_t)pid;
		ppids[n] = pp;
		n++;
	}
	closedir(d);
	/* Mark descendants by repeated passes: a process is one if its parent is ROOT or marked. */
	static bool mark[MAX_PROCS];
	memset(mark, 0, sizeof(bool) * (size_t)n);
	bool changed = true;
	while (changed) {
		changed = false;
		for (int i = 0; i < n; i++) {
			if (mark[i])
				continue;
			bool desc = ppids[i] == root;
			for (int j = 0; !desc && j < n; j++)
				desc = mark[j] && pids[j] == ppids[i];
			if (desc) {
				mark[i] = true;
				changed = true;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		if (mark[i] && pids[i] != getpid() && kill(pids[i], sig) == 0)
			count++;
	}
	return count;
}

/* Reaps every child that has exited; records the status of WATCH. Returns true if any remain. */
static bool reap(pid_t watch, int *watch_status, bool *watch_done)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p > 0) {
			if (p == watch) {
				*watch_status = st;
				*watch_done = true;
			}
			continue;
		}
		return !(p < 0 && errno == ECHILD);
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Terminates every descendant: SIGTERM, a grace period, then SIGKILL until no child is left. */
static void terminate_all(pid_t self, pid_t watch, int *st, bool *done, int grace_s)
{
	if (signal_descendants(self, SIGTERM) > 0) {
		for (long waited = 0; waited < grace_s * 1000L; waited += 50) {
			if (!reap(watch, st, done))
				return;
			sleep_ms(50);
		}
	}
	for (int round = 0; reap(watch, st, done); round++) {
		signal_descendants(self, SIGKILL);
		sleep_ms(round < 20 ? 10 : 100);
	}
}

static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 125;
}

/* The keeper: runs the command, then cleans up after it. Returns the exit code to use. */
static int keeper(char **argv, int grace_s, pid_t parent, bool quiet)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (parent > 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* the parent died before PDEATHSIG was armed */
			return 125;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("gw-reaper: fork");
		return 125;
	}
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "gw-reaper: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st = 0;
	bool done = false;
	while (!done && !g_stop_signal) {
		int s;
		pid_t p = waitpid(-1, &s, 0);
		if (p == child) {
			st = s;
			done = true;
		} else if (p < 0 && errno != EINTR) {
			break;
		}
	}
	if (g_stop_signal && !done && !quiet)
		fprintf(stderr, "gw-reaper: signal %d: terminating %s and its processes\n",
			(int)g_stop_signal, argv[0]);
	terminate_all(getpid(), child, &st, &done, grace_s);
	if (!done)
		return 128 + (g_stop_signal ? (int)g_stop_signal : SIGKILL);
	return exit_code(st);
}

int main(int argc, char **argv)
{
	int grace_s = 3;
	bool init = false, quiet = false;
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--init")) {
			init = true;
		} else if (!strcmp(argv[i], "--quiet")) {
			quiet = true;
		} else if (!strcmp(argv[i], "--grace") && i + 1 < argc) {
			grace_s = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 125;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 125;
	}
	if (init) {
		int rc = keeper(argv + i, grace_s, 0, quiet);
		sync();
		reboot(RB_POWER_OFF);
		return rc;
	}
	pid_t self = getpid();
	pid_t k = fork();
	if (k < 0) {
		perror("gw-reaper: fork");
		return 125;
	}
	if (k == 0)
		return keeper(argv + i, grace_s, self, quiet);
	/* The waiting half: signals are passed to the keeper, which cleans up and exits. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int st;
	for (;;) {
		pid_t p = waitpid(k, &st, 0);
		if (p == k)
			break;
		if (p < 0 && errno == EINTR && g_stop_signal) {
			kill(k, (int)g_stop_signal);
			g_stop_signal = 0;
		} else if (p < 0 && errno != EINTR) {
			return 125;
		}
	}
	return exit_code(st);
}
