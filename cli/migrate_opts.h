/* SPDX-License-Identifier: Apache-2.0 */
/* The options of 'godwit migrate' and 'godwit migration watch', parsed and checked without a
 * daemon (unit-tested on their own). */
#ifndef GODWIT_CLI_MIGRATE_OPTS_H
#define GODWIT_CLI_MIGRATE_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "godwit/v1/migrations.pb-c.h"

#define WATCH_INTERVAL_MS_DEFAULT 500

/* What godwit migrate's options say beyond the request itself. */
struct migrate_opts {
	const char *token_file;
	const char *grant_file;
	bool detach;
	bool verbose; /* progress on stderr like virsh migrate --verbose, and a summary */
	bool help;
};

/* argv from the command word on (getopt restarts: optind is reset). 0 with req and o filled
 * (o->help: only the help was asked for), or -EINVAL with the reason in err; optind then
 * indexes the first operand. */
int migrate_opts_parse(int argc, char **argv, Godwit__V1__MigrateRequest *req,
		       struct migrate_opts *o, char *err, size_t n);

struct watch_opts {
	unsigned interval_ms; /* --interval: one JSON object per interval (--json) */
	bool interval_given;
	const char *id;
};

/* 'migration watch ID [--interval MS]', argv[0] being "watch": 0, or -EINVAL with err. */
int watch_opts_parse(int argc, char **argv, struct watch_opts *o, char *err, size_t n);

#endif
