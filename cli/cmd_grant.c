/* SPDX-License-Identifier: Apache-2.0 */
/* godwit migration grant: asked of a destination, leave for one VM to come from one host. */
#include "cli.h"

#include "godwit/parse.h"
#include "godwit/v1/migrations.pb-c.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

#define GRANT_NAMES_MAX 8

static void grant_help(void)
{
	printf("Usage: godwit --host DEST migration grant NAME [--source-name N]... [--ttl SECS]\n"
	       "Asks the godwitd at --host (the destination, with its token) to let VM NAME\n"
	       "migrate to it, and prints the grant on stdout. Whoever starts the migration on\n"
	       "the source passes it with 'godwit migrate NAME --to DEST --grant-file F' and\n"
	       "never needs the destination's token.\n"
	       "  --source-name N  a name (DNS or IP) in the source host's certificate: with TLS\n"
	       "                   only that host may use the grant (repeat for several; none:\n"
	       "                   any host the destination's CA signed)\n"
	       "  --ttl SECS       how long the grant may start a migration (default 600)\n"
	       "A grant starts one migration; that migration's commit and abort need it too.\n");
}

int cmd_migration_grant(struct cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"source-name", required_argument, NULL, 's'},
	    {"ttl", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Godwit__V1__GrantIncomingRequest req = GODWIT__V1__GRANT_INCOMING_REQUEST__INIT;
	char *names[GRANT_NAMES_MAX];
	uint64_t v;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (req.n_source_names == GRANT_NAMES_MAX)
				return cli_usage_error("migration grant",
						       "at most %d --source-name", GRANT_NAMES_MAX);
			names[req.n_source_names++] = optarg;
			break;
		case 't':
			if (gw_parse_u64(optarg, 1, 86400, &v))
				return cli_usage_error("migration grant", "--ttl takes 1..86400");
			req.ttl_s = (uint32_t)v;
			break;
		case 'h':
			grant_help();
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("migration grant", "exactly one VM name is required");
	req.vm = argv[optind];
	req.source_names = names;
	Godwit__V1__Grant *g;
	int rc = cli_call(c, &godwit__v1__migrations__descriptor, "GrantIncoming", &req.base,
			  (ProtobufCMessage **)&g);
	if (rc)
		return rc;
	if (c->json) {
		out_json(&g->base);
	} else {
		char until[64];
		time_t t = (time_t)g->expires_unix;
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
		printf("%s\n", g->grant);
		fprintf(stderr, "grant for VM %s from %s, to start a migration before %s\n", g->vm,
			g->n_source_names ? g->source_names[0] : "any host of the CA", until);
	}
	protobuf_c_message_free_unpacked(&g->base, NULL);
	return CLI_OK;
}
