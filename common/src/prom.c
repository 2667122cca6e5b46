/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text exposition format: family headers, samples with escaped labels, and
 * histograms as cumulative _bucket lines ending with le="+Inf", then _sum and _count. */
#include "godwit/prom.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (colon && c == ':');
		if (!alpha && !(p != s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

bool gw_prom_metric_name_ok(const char *name)
{
	return name_ok(name, true);
}

bool gw_prom_label_name_ok(const char *name)
{
	return name_ok(name, false) && strncmp(name, "__", 2) != 0;
}

static void put_str(struct gw_buf *b, const char *s)
{
	gw_buf_put(b, s, strlen(s));
}

/* Escapes for HELP text (backslash, line feed) and, with quote, label values (also the double
 * quote). */
static void put_escaped(struct gw_buf *b, const char *s, bool quote)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\\')
			put_str(b, "\\\\");
		else if (*p == '\n')
			put_str(b, "\\n");
		else if (quote && *p == '"')
			put_str(b, "\\\"");
		else
			gw_buf_put(b, p, 1);
	}
}

static const char *const type_names[] = {
    [GW_PROM_COUNTER] = "counter",
    [GW_PROM_GAUGE] = "gauge",
    [GW_PROM_HISTOGRAM] = "histogram",
};

int gw_prom_family(struct gw_buf *b, const char *name, enum gw_prom_type type, const char *help)
{
	if (!gw_prom_metric_name_ok(name) || (unsigned)type > GW_PROM_HISTOGRAM)
		return -EINVAL;
	put_str(b, "# HELP ");
	put_str(b, name);
	gw_buf_put(b, " ", 1);
	put_escaped(b, help ? help : "", false);
	put_str(b, "\n# TYPE ");
	put_str(b, name);
	gw_buf_put(b, " ", 1);
	put_str(b, type_names[type]);
	gw_buf_put(b, "\n", 1);
	return 0;
}

void gw_prom_format_double(double v, char *out, size_t n)
{
	if (isnan(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Integers below 2^53 are exact in a double: print them without exponent. */
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(out, n, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static bool labels_ok(const struct gw_prom_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!gw_prom_label_name_ok(l[i].name) || !l[i].value)
			return false;
	}
	return true;
}

/* name{labels[,extra]} and a space; extra is one more label (le) or NULL. */
static void put_series(struct gw_buf *b, const char *name, const char *suffix,
		       const struct gw_prom_label *l, size_t n, const struct gw_prom_label *extra)
{
	put_str(b, name);
	put_str(b, suffix);
	if (n || extra) {
		gw_buf_put(b, "{", 1);
		for (size_t i = 0; i < n + (extra != NULL); i++) {
			const struct gw_prom_label *x = i < n ? &l[i] : extra;
			if (i)
				gw_buf_put(b, ",", 1);
			put_str(b, x->name);
			put_str(b, "=\"");
			put_escaped(b, x->value, true);
			gw_buf_put(b, "\"", 1);
		}
		gw_buf_put(b, "}", 1);
	}
	gw_buf_put(b, " ", 1);
}

int gw_prom_sample(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		   size_t nlabels, double value)
{
	if (!gw_prom_metric_name_ok(name) || !labels_ok(labels, nlabels))
		return -EINVAL;
	char v[40];
	gw_prom_format_double(value, v, sizeof(v));
	put_series(b, name, "", labels, nlabels, NULL);
	put_str(b, v);
	gw_buf_put(b, "\n", 1);
	return 0;
}

int gw_prom_sample_u64(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		       size_t nlabels, uint64_t value)
{
	if (!gw_prom_metric_name_ok(name) || !labels_ok(labels, nlabels))
		return -EINVAL;
	char v[24];
	snprintf(v, sizeof(v), "%" PRIu64, value);
	put_series(b, name, "", labels, nlabels, NULL);
	put_str(b, v);
	gw_buf_put(b, "\n", 1);
	return 0;
}

int gw_prom_hist_init(struct gw_prom_hist *h, const double *bounds, size_t nbounds)
{
	memset(h, 0, sizeof(*h));
	if (nbounds > GW_PROM_HIST_MAX)
		return -EINVAL;
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
		h->bounds[i] = bounds[i];
	}
	h->nbounds = nbounds;
	return 0;
}

void gw_prom_hist_observe(struct gw_prom_hist *h, double v)
{
	size_t i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

int gw_prom_hist_write(struct gw_buf *b, const char *name, const struct gw_prom_label *labels,
		       size_t nlabels, const struct gw_prom_hist *h)
{
	if (!gw_prom_metric_name_ok(name) || !labels_ok(labels, nlabels))
		return -EINVAL;
	for (size_t i = 0; i < nlabels; i++) {
		if (strcmp(labels[i].name, "le") == 0)
			return -EINVAL;
	}
	uint64_t cum = 0;
	char le[40], v[40];
	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += h->counts[i];
		if (i < h->nbounds)
			gw_prom_format_double(h->bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		struct gw_prom_label x = {"le", le};
		put_series(b, name, "_bucket", labels, nlabels, &x);
		snprintf(v, sizeof(v), "%" PRIu64 "\n", cum);
		put_str(b, v);
	}
	gw_prom_format_double(h->sum, v, sizeof(v));
	put_series(b, name, "_sum", labels, nlabels, NULL);
	put_str(b, v);
	gw_buf_put(b, "\n", 1);
	snprintf(v, sizeof(v), "%" PRIu64 "\n", h->count);
	put_series(b, name, "_count", labels, nlabels, NULL);
	put_str(b, v);
	return 0;
}
