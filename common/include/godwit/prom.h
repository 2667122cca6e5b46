/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text exposition format (version 0.0.4), written by hand, and histograms. */
#ifndef GODWIT_PROM_H
#define GODWIT_PROM_H

#include "godwit/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a page carries in its Content-Type. */
#define GW_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum gw_prom_type {
	GW_PROM_COUNTER,
	GW_PROM_GAUGE,
	GW_PROM_HISTOGRAM,
};

struct gw_prom_label {
	const char *name;
	const char *value; /* any UTF-8; escaped as the format asks */
};

/* Whether name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", which Prometheus reserves). */
bool gw_prom_metric_name_ok(const char *name);
bool gw_prom_label_name_ok(const char *name);

/* "# HELP name help" (help's backslashes and line feeds escaped) and "# TYPE name type". A
 * counter's name ends in _total: the TYPE line names it as its samples do. 0 or -EINVAL (a
 * name the format does not allow: a programming error, nothing is written). */
int gw_prom_family(struct gw_buf *b, const char *name, enum gw_prom_type type, const char *help);

/* One sample line: name{labels} value. Label values are escaped (\\, \", \n). A double is
 * written in the shortest form that reads back as the same value, +Inf, -Inf or NaN; a
 * uint64_t exactly. 0 or -EINVAL (bad metric or label name; nothing is written). */
int gw_prom_sample(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		   size_t nlabels, double value);
int gw_prom_sample_u64(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		       size_t nlabels, uint64_t value);

/* The shortest decimal that strtod(3) reads back as v, or +Inf, -Inf, NaN. */
void gw_prom_format_double(double v, char *out, size_t n);

#define GW_PROM_HIST_MAX 24 /* upper bounds of a histogram, +Inf not counted */

/* A histogram: observations counted in buckets of ascending upper bounds (inclusive, as the
 * format's "le" says), their sum and their count. Not locked: its owner serialises. */
struct gw_prom_hist {
	size_t nbounds;
	double bounds[GW_PROM_HIST_MAX];
	uint64_t counts[GW_PROM_HIST_MAX + 1]; /* per bucket (not cumulative); last: above all */
	double sum;
	uint64_t count;
};

/* 0, or -EINVAL when bounds are not strictly ascending and finite, or more than
 * GW_PROM_HIST_MAX. */
int gw_prom_hist_init(struct gw_prom_hist *h, const double *bounds, size_t nbounds);
void gw_prom_hist_observe(struct gw_prom_hist *h, double v);
/* name_bucket{labels,le="..."} (cumulative, ending with le="+Inf" equal to the count),
 * name_sum and name_count. 0 or -EINVAL (bad names, or labels already holding "le"). */
int gw_prom_hist_write(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		       size_t nlabels, const struct gw_prom_hist *h);

#endif
