/* SPDX-License-Identifier: Apache-2.0 */
/* CLI output: JSON, human tables, sizes and ages, and a progress spinner for TTYs. */
#include "cli.h"

#include "godwit/buf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void out_json(const ProtobufCMessage *msg)
{
	struct gw_buf b;
	gw_buf_init(&b);
	gw_pb_to_json(msg, &b);
	fwrite(b.data, 1, b.len, stdout);
	fputc('\n', stdout);
	gw_buf_release(&b);
}

void fmt_bytes(uint64_t b, char *out, size_t n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;
	double v = (double)b;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(out, n, "%" PRIu64 " %s", (uint64_t)v, units[u]);
	else
		snprintf(out, n, "%.1f %s", v, units[u]);
}

void fmt_age(int64_t since, char *out, size_t n)
{
	if (since <= 0) {
		snprintf(out, n, "-");
		return;
	}
	int64_t s = (int64_t)time(NULL) - since;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, n, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(out, n, "%" PRId64 "m", s / 60);
	else if (s < 172800)
		snprintf(out, n, "%" PRId64 "h", s / 3600);
	else
		snprintf(out, n, "%" PRId64 "d", s / 86400);
}

struct table {
	unsigned ncols;
	size_t nrows;
	char **cells; /* (nrows + 1) * ncols, row 0 the headers */
};

struct table *table_new(unsigned ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));
	t->ncols = ncols;
	table_row(t, headers);
	return t;
}

void table_row(struct table *t, const char *const *cells)
{
	t->cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
	for (unsigned i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
	t->nrows++;
}

void table_print(struct table *t, FILE *f)
{
	size_t w[16] = {0};
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols && c < 16; c++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);
			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c + 1 < t->ncols)
				fprintf(f, "%-*s  ", (int)w[c], s);
			else
				fprintf(f, "%s\n", s);
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool drawn;
	char label[128];
};

static void *spin(void *arg)
{
	struct progress *p = arg;
	static const char frames[] = "|/-\\";
	struct timespec start;
	clock_gettime(CLOCK_REALTIME, &start);
	unsigned i = 0;
	pthread_mutex_lock(&p->lock);
	while (!p->done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double el = (double)(ts.tv_sec - start.tv_sec) + (ts.tv_nsec - start.tv_nsec) / 1e9;
		if (el >= 1.0) {
			fprintf(stderr, "\r%s %c %.1fs ", p->label, frames[i++ % 4], el);
			fflush(stderr);
			p->drawn = true;
		}
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	if (p->drawn)
		fprintf(stderr, "\r\033[K");
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct progress *progress_start(const char *label)
{
	/* Only for people: no spinner when output goes to a file or a pipe. */
	if (!isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO))
		return NULL;
	struct progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->label, sizeof(p->label), "%s", label);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, spin, p)) {
		free(p);
		return NULL;
	}
	return p;
}

void progress_stop(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->done = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	free(p);
}
