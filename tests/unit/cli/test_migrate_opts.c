/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for godwit migrate's and migration watch's options: what each sets in the
 * request, and the clear refusal of bad values and contradictions. */
#include "migrate_opts.h"

#include "../../lib/gw_test.h"

#include <string.h>

/* Parses a NULL-terminated list after "migrate" into *req: the parser's return value. */
static int parse(Godwit__V1__MigrateRequest *req, struct migrate_opts *o, char *err,
		 const char *const *args)
{
	char *argv[32] = {(char *)"migrate"};
	int argc = 1;
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	godwit__v1__migrate_request__init(req);
	err[0] = '\0';
	return migrate_opts_parse(argc, argv, req, o, err, 200);
}

static void test_defaults(void)
{
	Godwit__V1__MigrateRequest req;
	struct migrate_opts o;
	char err[200];
	const char *a[] = {"web", "--to", "h:1", NULL};
	CU_ASSERT_EQUAL(parse(&req, &o, err, a), 0);
	CU_ASSERT_EQUAL(req.channels, 0); /* auto */
	CU_ASSERT_EQUAL(req.timeout_s, 0);
	CU_ASSERT_STRING_EQUAL(req.timeout_action, "");
	CU_ASSERT_FALSE(req.no_auto_converge);
	CU_ASSERT_EQUAL(req.throttle_initial_pct, 0);
	CU_ASSERT_FALSE(o.verbose);
}

static void test_virsh_options(void)
{
	Godwit__V1__MigrateRequest req;
	struct migrate_opts o;
	char err[200];
	const char *a[] = {"web",
			   "--timeout",
			   "2",
			   "--timeout-action",
			   "cancel",
			   "--auto-converge",
			   "--auto-converge-initial",
			   "30",
			   "--auto-converge-increment",
			   "15",
			   "--verbose",
			   "--channels",
			   "auto",
			   NULL};
	CU_ASSERT_EQUAL(parse(&req, &o, err, a), 0);
	CU_ASSERT_EQUAL(req.timeout_s, 2);
	CU_ASSERT_STRING_EQUAL(req.timeout_action, "cancel");
	CU_ASSERT_FALSE(req.no_auto_converge);
	CU_ASSERT_EQUAL(req.throttle_initial_pct, 30);
	CU_ASSERT_EQUAL(req.throttle_increment_pct, 15);
	CU_ASSERT_TRUE(o.verbose);
	CU_ASSERT_EQUAL(req.channels, 0);
	const char *b[] = {"web", "--no-auto-converge", "--channels", "3", "--timeout", "5", NULL};
	CU_ASSERT_EQUAL(parse(&req, &o, err, b), 0);
	CU_ASSERT_TRUE(req.no_auto_converge);
	CU_ASSERT_EQUAL(req.channels, 3);
	CU_ASSERT_EQUAL(req.timeout_s, 5);
	CU_ASSERT_STRING_EQUAL(req.timeout_action, ""); /* the daemon's default: suspend */
}

/* Each bad value is refused with a reason that names the option. */
static void test_bad_values(void)
{
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
	    {{"--timeout", "0"}, "--timeout takes 1..86400"},
	    {{"--timeout", "x"}, "--timeout takes"},
	    {{"--timeout", "86401"}, "--timeout takes"},
	    {{"--timeout"}, "--timeout needs a value"},
	    {{"--timeout", "2", "--timeout-action", "pause"}, "suspend or cancel"},
	    {{"--timeout-action", "cancel"}, "needs --timeout"},
	    {{"--auto-converge-initial", "0"}, "--auto-converge-initial takes 1..95"},
	    {{"--auto-converge-initial", "96"}, "--auto-converge-initial takes 1..95"},
	    {{"--auto-converge-increment", "-1"}, "--auto-converge-increment takes 1..95"},
	    {{"--auto-converge", "--no-auto-converge"}, "contradict"},
	    {{"--no-auto-converge", "--auto-converge-increment", "5"}, "turns off"},
	    {{"--channels", "0"}, "1..8 or auto"},
	    {{"--channels", "9"}, "1..8 or auto"},
	    {{"--channels", "autox"}, "1..8 or auto"},
	    {{"--no-such-option"}, "unknown option"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *a[8] = {"web"};
		for (int k = 0; k < 6 && cases[i].args[k]; k++)
			a[k + 1] = cases[i].args[k];
		Godwit__V1__MigrateRequest req;
		struct migrate_opts o;
		char err[200];
		int rc = parse(&req, &o, err, a);
		CU_ASSERT_NOT_EQUAL(rc, 0);
		if (!strstr(err, cases[i].says))
			fprintf(stderr, "case %zu: '%s' does not say '%s'\n", i, err,
				cases[i].says);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].says));
	}
}

static void test_watch_options(void)
{
	struct watch_opts w;
	char err[200];
	char *a[] = {(char *)"watch", (char *)"abc", NULL};
	CU_ASSERT_EQUAL(watch_opts_parse(2, a, &w, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(w.interval_ms, 500);
	CU_ASSERT_FALSE(w.interval_given);
	CU_ASSERT_STRING_EQUAL(w.id, "abc");
	char *b[] = {(char *)"watch", (char *)"--interval", (char *)"250", (char *)"abc", NULL};
	CU_ASSERT_EQUAL(watch_opts_parse(4, b, &w, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(w.interval_ms, 250);
	CU_ASSERT_TRUE(w.interval_given);
	char *c[] = {(char *)"watch", (char *)"--interval", (char *)"10", (char *)"abc", NULL};
	CU_ASSERT_NOT_EQUAL(watch_opts_parse(4, c, &w, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "--interval takes 50..3600000"));
	char *d[] = {(char *)"watch", NULL};
	CU_ASSERT_NOT_EQUAL(watch_opts_parse(1, d, &w, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "one migration ID"));
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"defaults: channels auto, no timeout, auto-converge on", test_defaults},
	    {"virsh's options into the request", test_virsh_options},
	    {"bad values refused with the option named", test_bad_values},
	    {"watch --interval", test_watch_options},
	};
	return gw_test_run("cli-migrate-opts", cases, GW_TEST_COUNT(cases));
}
