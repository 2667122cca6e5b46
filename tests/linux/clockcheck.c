/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw-clockcheck: watches a Linux guest's clocks across a live migration. It samples
 * CLOCK_MONOTONIC and CLOCK_REALTIME every interval, keeps the largest forward step of each
 * between two samples and counts backward steps, and prints one line per report period (format
 * in tests/linux/README.md) for the host to compare with its own clocks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Steps of CLOCK_MONOTONIC this long or longer are remembered with when they ended, so that a
 * host can find the one that spans a migration even in lines printed after it. */
#define JUMP_MIN_NS (50 * 1000000LL)
#define JUMPS_KEPT  4

struct jump {
	int64_t ms;
	int64_t end_real_ns;
};

struct clock_track {
	int64_t last;	  /* ns */
	int64_t max_step; /* ns, the largest forward step since start */
	int64_t win_step; /* ns, the largest forward step since the last report */
	uint64_t backwards;
	struct jump jumps[JUMPS_KEPT]; /* the latest long steps, oldest first */
	unsigned njumps;
};

/* Remembers a long step of c that ended at real_ns (CLOCK_REALTIME). */
static void note_jump(struct clock_track *c, int64_t step, int64_t real_ns)
{
	if (step < JUMP_MIN_NS)
		return;
	if (c->njumps == JUMPS_KEPT) {
		memmove(c->jumps, c->jumps + 1, (JUMPS_KEPT - 1) * sizeof(c->jumps[0]));
		c->njumps--;
	}
	c->jumps[c->njumps++] = (struct jump){.ms = step / 1000000, .end_real_ns = real_ns};
}

static int64_t read_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void track(struct clock_track *c, int64_t now)
{
	int64_t step = now - c->last;
	if (step < 0)
		c->backwards++;
	if (step > c->max_step)
		c->max_step = step;
	if (step > c->win_step)
		c->win_step = step;
	c->last = now;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: gw-clockcheck [--interval-ms MS] [--report-ms MS] [--duration-ms MS] "
	    "[--help]\n"
	    "Samples CLOCK_MONOTONIC and CLOCK_REALTIME every MS (default 10) and prints every\n"
	    "report period (default 1000 ms) one line:\n"
	    "  clock: mono_ns=N real_ns=N max_jump_ms=N win_jump_ms=N backwards=N "
	    "real_max_jump_ms=N real_backwards=N samples=N jumps=MS@REAL_NS,...|-\n"
	    "max_jump_ms: the largest step of CLOCK_MONOTONIC between two samples since start\n"
	    "(about the interval when nothing stalls the guest); win_jump_ms: the same since the\n"
	    "previous line; backwards: steps back of CLOCK_MONOTONIC (must stay 0). The real_\n"
	    "fields are the same for CLOCK_REALTIME. --duration-ms: exit after that long\n"
	    "(default 0: never).\n");
}

static bool parse_ms(const char *s, long long min, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > 86400000LL)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"report-ms", required_argument, NULL, 'r'},
	    {"duration-ms", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long long interval = 10, report = 1000, duration = 0;
	int c;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (!parse_ms(optarg, 1, &interval))
				goto err_usage;
			break;
		case 'r':
			if (!parse_ms(optarg, 1, &report))
				goto err_usage;
			break;
		case 'd':
			if (!parse_ms(optarg, 0, &duration))
				goto err_usage;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto err_usage;
		}
	}
	if (optind != argc)
		goto err_usage;

	struct clock_track mono = {.last = read_ns(CLOCK_MONOTONIC)};
	struct clock_track real = {.last = read_ns(CLOCK_REALTIME)};
	const int64_t start = mono.last;
	int64_t next_report = start + report * 1000000;
	uint64_t samples = 0;
	printf("clock: start interval_ms=%lld report_ms=%lld mono_ns=%" PRId64 " real_ns=%" PRId64
	       "\n",
	       interval, report, mono.last, real.last);
	/* A relative sleep: after a stall (a paused VM) sampling goes on at the same pace rather
	 * than catching up with a burst. */
	const struct timespec pause = {.tv_sec = (time_t)(interval / 1000),
				       .tv_nsec = (long)(interval % 1000) * 1000000L};
	for (;;) {
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, NULL) == EINTR)
			;
		int64_t before = mono.last;
		track(&mono, read_ns(CLOCK_MONOTONIC));
		track(&real, read_ns(CLOCK_REALTIME));
		note_jump(&mono, mono.last - before, real.last);
		samples++;
		if (mono.last < next_report)
			continue;
		printf("clock: mono_ns=%" PRId64 " real_ns=%" PRId64 " max_jump_ms=%" PRId64
		       " win_jump_ms=%" PRId64 " backwards=%" PRIu64 " real_max_jump_ms=%" PRId64
		       " real_backwards=%" PRIu64 " samples=%" PRIu64 " jumps=",
		       mono.last, real.last, mono.max_step / 1000000, mono.win_step / 1000000,
		       mono.backwards, real.max_step / 1000000, real.backwards, samples);
		for (unsigned j = 0; j < mono.njumps; j++)
			printf("%s%" PRId64 "@%" PRId64, j ? "," : "", mono.jumps[j].ms,
			       mono.jumps[j].end_real_ns);
		printf("%s\n", mono.njumps ? "" : "-");
		mono.win_step = 0;
		real.win_step = 0;
		next_report += report * 1000000;
		if (next_report <= mono.last) /* after a stall: the next line a period from now */
			next_report = mono.last + report * 1000000;
		if (duration && mono.last - start >= duration * 1000000)
			return 0;
	}

err_usage:
	usage(stderr);
	return 2;
}
