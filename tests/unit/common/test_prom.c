/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/prom.c: the Prometheus text format, byte for byte. */
#include "godwit/prom.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* b's text, NUL-terminated, for comparisons. */
static const char *text(struct gw_buf *b)
{
	gw_buf_put(b, "", 1);
	b->len--;
	return (const char *)b->data;
}

static void test_names(void)
{
	CU_ASSERT_TRUE(gw_prom_metric_name_ok("godwit_vms"));
	CU_ASSERT_TRUE(gw_prom_metric_name_ok("a:b_c9"));
	CU_ASSERT_TRUE(gw_prom_metric_name_ok("_x"));
	CU_ASSERT_FALSE(gw_prom_metric_name_ok(""));
	CU_ASSERT_FALSE(gw_prom_metric_name_ok("9a"));
	CU_ASSERT_FALSE(gw_prom_metric_name_ok("a-b"));
	CU_ASSERT_FALSE(gw_prom_metric_name_ok("a b"));
	CU_ASSERT_TRUE(gw_prom_label_name_ok("vm"));
	CU_ASSERT_FALSE(gw_prom_label_name_ok("__name__"));
	CU_ASSERT_FALSE(gw_prom_label_name_ok("a:b"));
	CU_ASSERT_FALSE(gw_prom_label_name_ok("1a"));
}

static void test_family_and_escapes(void)
{
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(
	    gw_prom_family(&b, "godwit_vms", GW_PROM_GAUGE, "VMs by state \\ and\nmore"), 0);
	struct gw_prom_label l[] = {{"vm", "we\"b\\1\nx"}, {"state", "running"}};
	CU_ASSERT_EQUAL(gw_prom_sample(&b, "godwit_vms", l, 2, 3), 0);
	CU_ASSERT_EQUAL(gw_prom_sample(&b, "godwit_vms", NULL, 0, 0.25), 0);
	CU_ASSERT_EQUAL(gw_prom_sample_u64(&b, "godwit_vms", l + 1, 1, 18446744073709551615ull), 0);
	CU_ASSERT_STRING_EQUAL(text(&b), "# HELP godwit_vms VMs by state \\\\ and\\nmore\n"
					 "# TYPE godwit_vms gauge\n"
					 "godwit_vms{vm=\"we\\\"b\\\\1\\nx\",state=\"running\"} 3\n"
					 "godwit_vms 0.25\n"
					 "godwit_vms{state=\"running\"} 18446744073709551615\n");
	/* Bad names write nothing. */
	size_t len = b.len;
	struct gw_prom_label bad[] = {{"__x", "v"}};
	CU_ASSERT_EQUAL(gw_prom_family(&b, "bad-name", GW_PROM_COUNTER, ""), -EINVAL);
	CU_ASSERT_EQUAL(gw_prom_sample(&b, "ok", bad, 1, 1), -EINVAL);
	CU_ASSERT_EQUAL(gw_prom_sample_u64(&b, "0k", NULL, 0, 1), -EINVAL);
	CU_ASSERT_EQUAL(b.len, len);
	gw_buf_release(&b);

	gw_buf_init(&b);
	CU_ASSERT_EQUAL(gw_prom_family(&b, "x_total", GW_PROM_COUNTER, "c"), 0);
	CU_ASSERT_STRING_EQUAL(text(&b), "# HELP x_total c\n# TYPE x_total counter\n");
	gw_buf_release(&b);
}

static void test_doubles(void)
{
	char s[40];
	gw_prom_format_double(0.005, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "0.005");
	gw_prom_format_double(1048576, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "1048576");
	gw_prom_format_double(-2, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "-2");
	gw_prom_format_double(0.1 + 0.2, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "0.30000000000000004");
	gw_prom_format_double(1e300, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "1e+300");
	gw_prom_format_double(INFINITY, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "+Inf");
	gw_prom_format_double(-INFINITY, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "-Inf");
	gw_prom_format_double(NAN, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "NaN");
}

static void test_histogram(void)
{
	struct gw_prom_hist h;
	static const double bad[] = {1, 1};
	CU_ASSERT_EQUAL(gw_prom_hist_init(&h, bad, 2), -EINVAL);
	static const double inf[] = {1, INFINITY};
	CU_ASSERT_EQUAL(gw_prom_hist_init(&h, inf, 2), -EINVAL);
	static const double bounds[] = {0.01, 0.5, 2};
	CU_ASSERT_EQUAL_FATAL(gw_prom_hist_init(&h, bounds, 3), 0);
	gw_prom_hist_observe(&h, 0.01); /* on a bound: counted in that bucket (le) */
	gw_prom_hist_observe(&h, 0.3);
	gw_prom_hist_observe(&h, 0.4);
	gw_prom_hist_observe(&h, 7);
	struct gw_buf b;
	gw_buf_init(&b);
	struct gw_prom_label l[] = {{"outcome", "completed"}};
	CU_ASSERT_EQUAL(gw_prom_hist_write(&b, "m_seconds", l, 1, &h), 0);
	CU_ASSERT_STRING_EQUAL(text(&b), "m_seconds_bucket{outcome=\"completed\",le=\"0.01\"} 1\n"
					 "m_seconds_bucket{outcome=\"completed\",le=\"0.5\"} 3\n"
					 "m_seconds_bucket{outcome=\"completed\",le=\"2\"} 3\n"
					 "m_seconds_bucket{outcome=\"completed\",le=\"+Inf\"} 4\n"
					 "m_seconds_sum{outcome=\"completed\"} 7.71\n"
					 "m_seconds_count{outcome=\"completed\"} 4\n");
	gw_buf_release(&b);

	/* Empty, no labels; a label named le is refused. */
	struct gw_prom_hist e;
	CU_ASSERT_EQUAL_FATAL(gw_prom_hist_init(&e, bounds, 1), 0);
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(gw_prom_hist_write(&b, "e", NULL, 0, &e), 0);
	CU_ASSERT_STRING_EQUAL(text(&b), "e_bucket{le=\"0.01\"} 0\ne_bucket{le=\"+Inf\"} 0\n"
					 "e_sum 0\ne_count 0\n");
	struct gw_prom_label le[] = {{"le", "1"}};
	size_t len = b.len;
	CU_ASSERT_EQUAL(gw_prom_hist_write(&b, "e", le, 1, &e), -EINVAL);
	CU_ASSERT_EQUAL(b.len, len);
	gw_buf_release(&b);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"metric and label names", test_names},
	    {"family headers, samples and escapes", test_family_and_escapes},
	    {"doubles in shortest form", test_doubles},
	    {"histograms", test_histogram},
	};
	return gw_test_run("prom", cases, GW_TEST_COUNT(cases));
}
