/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing and checking of godwit migrate's and migration watch's options (virsh's names where
 * virsh has the option: --timeout, --timeout-action, --auto-converge, --verbose). */
#include "migrate_opts.h"

#include "godwit/parse.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum {
	OPT_TIMEOUT = 256,
	OPT_TIMEOUT_ACTION,
	OPT_AUTO_CONVERGE,
	OPT_NO_AUTO_CONVERGE,
	OPT_AC_INITIAL,
	OPT_AC_INCREMENT,
};

static int bad(char *err, size_t n, const char *msg)
{
	snprintf(err, n, "%s", msg);
	return -EINVAL;
}

/* The options taken together, once all are read. */
static int migrate_opts_check(const Godwit__V1__MigrateRequest *req, bool ac_on, char *err,
			      size_t n)
{
	if (req->timeout_action && req->timeout_action[0] && !req->timeout_s)
		return bad(err, n, "--timeout-action needs --timeout SECS");
	if (req->no_auto_converge && ac_on)
		return bad(err, n, "--auto-converge and --no-auto-converge contradict each other");
	if (req->no_auto_converge && (req->throttle_initial_pct || req->throttle_increment_pct))
		return bad(err, n,
			   "--auto-converge-initial/-increment tune auto-converge, which "
			   "--no-auto-converge turns off");
	return 0;
}

int migrate_opts_parse(int argc, char **argv, Godwit__V1__MigrateRequest *req,
		       struct migrate_opts *o, char *err, size_t n)
{
	static const struct option lo[] = {
	    {"to", required_argument, NULL, 't'},
	    {"to-token-file", required_argument, NULL, 'k'},
	    {"grant-file", required_argument, NULL, 'G'},
	    {"channels", required_argument, NULL, 'n'},
	    {"downtime-ms", required_argument, NULL, 'd'},
	    {"max-time", required_argument, NULL, 'x'},
	    {"stall-timeout", required_argument, NULL, 's'},
	    {"max-bandwidth", required_argument, NULL, 'b'},
	    {"detach", no_argument, NULL, 'D'},
	    {"dma-mode", required_argument, NULL, 'M'},
	    {"require-passthrough", no_argument, NULL, 'P'},
	    {"allow-tsc-change", no_argument, NULL, 'T'},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"timeout-action", required_argument, NULL, OPT_TIMEOUT_ACTION},
	    {"auto-converge", no_argument, NULL, OPT_AUTO_CONVERGE},
	    {"no-auto-converge", no_argument, NULL, OPT_NO_AUTO_CONVERGE},
	    {"auto-converge-initial", required_argument, NULL, OPT_AC_INITIAL},
	    {"auto-converge-increment", required_argument, NULL, OPT_AC_INCREMENT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct migrate_opts){0};
	bool ac_on = false;
	uint64_t v;
	int ch;
	optind = 0;
	opterr = 0; /* the reason goes to err, with the option's name */
	while ((ch = getopt_long(argc, argv, ":hv", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			req->destination = optarg;
			break;
		case 'k':
			o->token_file = optarg;
			break;
		case 'G':
			o->grant_file = optarg;
			break;
		case 'n':
			if (!strcmp(optarg, "auto"))
				req->channels = 0; /* the daemon chooses (docs/operator-guide.md) */
			else if (gw_parse_u64(optarg, 1, 8, &v))
				return bad(err, n, "--channels takes 1..8 or auto");
			else
				req->channels = (uint32_t)v;
			break;
		case 'd':
			if (gw_parse_u64(optarg, 1, 60000, &v))
				return bad(err, n, "--downtime-ms takes 1..60000");
			req->downtime_limit_ms = (uint32_t)v;
			break;
		case 's':
			if (gw_parse_u64(optarg, 1, 3600, &v))
				return bad(err, n, "--stall-timeout takes 1..3600 seconds");
			req->stall_timeout_s = (uint32_t)v;
			break;
		case 'x':
			if (gw_parse_u64(optarg, 1, 86400, &v))
				return bad(err, n, "--max-time takes 1..86400 seconds");
			req->max_time_s = (uint32_t)v;
			break;
		case 'b':
			if (gw_parse_size(optarg, &v) || v == 0)
				return bad(err, n, "--max-bandwidth takes bytes/s (e.g. 100M)");
			req->max_bandwidth = v;
			break;
		case 'D':
			o->detach = true;
			break;
		case 'T':
			req->allow_tsc_change = true;
			break;
		case 'P':
			req->require_passthrough = true;
			break;
		case 'M':
			if (strcmp(optarg, "shadow") && strcmp(optarg, "track") &&
			    strcmp(optarg, "off"))
				return bad(err, n, "--dma-mode takes shadow, track or off");
			req->dma_mode = optarg;
			break;
		case OPT_TIMEOUT:
			if (gw_parse_u64(optarg, 1, 86400, &v))
				return bad(err, n, "--timeout takes 1..86400 seconds");
			req->timeout_s = (uint32_t)v;
			break;
		case OPT_TIMEOUT_ACTION:
			if (strcmp(optarg, "suspend") && strcmp(optarg, "cancel"))
				return bad(err, n, "--timeout-action takes suspend or cancel");
			req->timeout_action = optarg;
			break;
		case OPT_AUTO_CONVERGE:
			ac_on = true;
			break;
		case OPT_NO_AUTO_CONVERGE:
			req->no_auto_converge = true;
			break;
		case OPT_AC_INITIAL:
		case OPT_AC_INCREMENT:
			if (gw_parse_u64(optarg, 1, 95, &v))
				return bad(err, n,
					   ch == OPT_AC_INITIAL
					       ? "--auto-converge-initial takes 1..95 (percent)"
					       : "--auto-converge-increment takes 1..95 (percent)");
			if (ch == OPT_AC_INITIAL)
				req->throttle_initial_pct = (uint32_t)v;
			else
				req->throttle_increment_pct = (uint32_t)v;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			snprintf(err, n, "%s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, n, "unknown option %s", argv[optind - 1]);
			return -EINVAL;
		}
	}
	return migrate_opts_check(req, ac_on, err, n);
}

int watch_opts_parse(int argc, char **argv, struct watch_opts *o, char *err, size_t n)
{
	static const struct option lo[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct watch_opts){.interval_ms = WATCH_INTERVAL_MS_DEFAULT};
	uint64_t v;
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (ch) {
		case 'i':
			if (gw_parse_u64(optarg, 50, 3600000, &v))
				return bad(err, n, "--interval takes 50..3600000 milliseconds");
			o->interval_ms = (unsigned)v;
			o->interval_given = true;
			break;
		case ':':
			snprintf(err, n, "%s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, n, "unknown option %s", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind + 1 != argc)
		return bad(err, n, "'watch' takes one migration ID");
	o->id = argv[optind];
	return 0;
}
