/* SPDX-License-Identifier: Apache-2.0 */
/* godwit: the command-line client of godwitd (a gRPC client and nothing else). */
#include "cli.h"

#include "godwit/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_HOST "unix:/var/lib/godwit/godwitd.sock"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: godwit [--host ADDR] [--token-file F] [--tls-ca F] [--json] [--timeout SECS]\n"
	    "              COMMAND ...\n"
	    "\n"
	    "Commands:\n"
	    "  host info                           this host: KVM, memory, SR-IOV NICs, VMs\n"
	    "  vm create NAME --memory SIZE (--kernel BZIMAGE [--initrd FILE] | --guest PATH)\n"
	    "            [--cmdline STR] [--cpus N]\n"
	    "            [--nic vf[,gen=N][,backend=vfio|emul][,mac=MAC]]...\n"
	    "                                      (a VF of the host's SR-IOV NICs)\n"
	    "  vm start|stop|delete|info NAME      lifecycle of one VM\n"
	    "  vm list                             every VM on the host\n"
	    "  vm console NAME [--timeout SECS]    follow the VM's serial console\n"
	    "  migrate NAME --to HOST:PORT (--to-token-file F | --grant-file F)\n"
	    "                                      live-migrate a VM to another host\n"
	    "  migration grant NAME [--source-name N]...\n"
	    "                                      (on the destination) let NAME come here\n"
	    "  migration status|watch|cancel ID, migration list\n"
	    "  migration resolve ID --keep-source|--keep-destination\n"
	    "                                      settle a migration in doubt\n"
	    "\n"
	    "Options:\n"
	    "  -H, --host ADDR        godwitd to talk to: HOST:PORT (needs a token) or unix:PATH\n"
	    "                         (default $GODWIT_HOST, else " DEFAULT_HOST ")\n"
	    "  -t, --token-file F     file holding the bearer token (default $GODWIT_TOKEN_FILE);\n"
	    "                         godwitd keeps it in STATE_DIR/token\n"
	    "      --tls-ca FILE      talk TLS to TCP hosts, checking them against this CA\n"
	    "                         (default $GODWIT_TLS_CA); required beyond loopback\n"
	    "      --tls-cert FILE, --tls-key FILE\n"
	    "                         a client certificate to present (optional; defaults\n"
	    "                         $GODWIT_TLS_CERT, $GODWIT_TLS_KEY)\n"
	    "      --insecure         plaintext to a host beyond loopback\n"
	    "      --json             machine-readable output (proto3 JSON) on every command\n"
	    "      --timeout SECS     deadline for each call (default 60)\n"
	    "  -h, --help             help; 'godwit COMMAND --help' for a command's own\n"
	    "\n"
	    "Exit codes: 0 success, 1 the operation failed, 2 usage error.\n");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "godwit%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return CLI_USAGE;
}

void cli_print_rpc_error(struct cli *c, const struct gw_rpc_status *st)
{
	const char *msg = st->message[0] ? st->message : "(no details)";
	if (c->json) {
		struct gw_buf b;
		gw_buf_init(&b);
		gw_buf_put(&b, "{\"error\":{\"code\":\"", 18);
		gw_buf_put(&b, gw_rpc_code_name(st->code), strlen(gw_rpc_code_name(st->code)));
		gw_buf_put(&b, "\",\"message\":\"", 13);
		for (const char *p = msg; *p; p++) {
			if (*p == '"' || *p == '\\')
				gw_buf_put(&b, "\\", 1);
			if ((unsigned char)*p >= 0x20)
				gw_buf_put(&b, p, 1);
		}
		gw_buf_put(&b, "\"}}\n", 4);
		fwrite(b.data, 1, b.len, stdout);
		gw_buf_release(&b);
	}
	if (st->code == GW_RPC_UNAVAILABLE)
		fprintf(stderr, "godwit: cannot reach godwitd at %s: %s (is godwitd running?)\n",
			c->host, msg);
	else
		fprintf(stderr, "godwit: %s: %s\n", gw_rpc_code_name(st->code), msg);
}

int cli_connect(struct cli *c)
{
	if (c->rpc)
		return CLI_OK;
	bool is_unix = strncmp(c->host, "unix:", 5) == 0;
	if (!is_unix && !strchr(c->host, ':'))
		return cli_usage_error(NULL, "--host '%s' is neither HOST:PORT nor unix:PATH",
				       c->host);
	const char *token = NULL;
	if (c->token_file) {
		int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, c->token, sizeof(c->token) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return cli_usage_error(NULL, "cannot read token file %s: %s", c->token_file,
					       n < 0 ? strerror(errno) : "empty");
		c->token[n] = '\0';
		c->token[strcspn(c->token, "\r\n")] = '\0';
		token = c->token;
	}
	return cli_open(c, c->host, token, &c->rpc);
}

int cli_open(struct cli *c, const char *target, const char *token, struct gw_rpc_client **out)
{
	bool tcp = strncmp(target, "unix:", 5) != 0;
	if (tcp && !c->tls_ca && !c->insecure) {
		/* Plaintext is for this host's loopback; anything else needs TLS. */
		char host[256];
		snprintf(host, sizeof(host), "%s", target);
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = '\0';
		if (strcmp(host, "localhost") && strncmp(host, "127.", 4) && strcmp(host, "[::1]"))
			return cli_usage_error(NULL,
					       "%s is another host: pass --tls-ca FILE (the CA of "
					       "its certificate), or --insecure for plaintext",
					       target);
	}
	if (tcp && c->tls_ca && !c->tls) {
		char why[400];
		if (gw_rpc_tls_load(c->tls_cert, c->tls_key, c->tls_ca, &c->tls, why, sizeof(why)))
			return cli_usage_error(NULL, "TLS: %s", why);
	}
	if (gw_rpc_client_open_tls(target, token, 0, tcp ? c->tls : NULL, NULL, out))
		return cli_usage_error(NULL, "cannot set up a channel to %s", target);
	return CLI_OK;
}

int cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc, const char *method,
	     const ProtobufCMessage *req, ProtobufCMessage **resp)
{
	int rc = cli_connect(c);
	if (rc)
		return rc;
	struct gw_rpc_status st;
	if (gw_rpc_unary(c->rpc, svc, method, req, resp, c->timeout_ms, &st) != GW_RPC_OK) {
		cli_print_rpc_error(c, &st);
		return CLI_FAILED;
	}
	return CLI_OK;
}

int main(int argc, char **argv)
{
	struct cli c = {.timeout_ms = 60000};
	c.host = getenv("GODWIT_HOST") ? getenv("GODWIT_HOST") : DEFAULT_HOST;
	c.token_file = getenv("GODWIT_TOKEN_FILE");
	c.tls_ca = getenv("GODWIT_TLS_CA");
	c.tls_cert = getenv("GODWIT_TLS_CERT");
	c.tls_key = getenv("GODWIT_TLS_KEY");
	static const struct option longopts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"token-file", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	/* '+': stop at the first command word; each command parses its own options. */
	while ((ch = getopt_long(argc, argv, "+H:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			c.host = optarg;
			break;
		case 't':
			c.token_file = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'T': {
			char *end;
			long s = strtol(optarg, &end, 10);
			if (*end || s <= 0 || s > 86400)
				return cli_usage_error(NULL, "--timeout takes 1..86400 seconds");
			c.timeout_ms = (int)(s * 1000);
			break;
		}
		case 'A':
			c.tls_ca = optarg;
			break;
		case 'C':
			c.tls_cert = optarg;
			break;
		case 'K':
			c.tls_key = optarg;
			break;
		case 'I':
			c.insecure = true;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		case 'v':
			printf("godwit %s\n", GODWIT_VERSION);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 0; /* 0 makes GNU getopt start afresh (and forget "+") on a command's argv */
	int rc;
	if (strcmp(cmd, "host") == 0)
		rc = cmd_host(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "vm") == 0)
		rc = cmd_vm(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "migration") == 0)
		rc = cmd_migration(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		rc = CLI_OK;
	} else
		rc = cli_usage_error(NULL, "unknown command '%s'; see 'godwit --help'", cmd);
	gw_rpc_client_close(c.rpc);
	gw_rpc_tls_free(c.tls);
	return rc;
}
