/* SPDX-License-Identifier: Apache-2.0 */
/* The godwit CLI: global options, output helpers and the command groups. */
#ifndef GODWIT_CLI_H
#define GODWIT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "godwit/rpc.h"

enum {
	CLI_OK = 0,
	CLI_FAILED = 1,
	CLI_USAGE = 2,
};

struct cli {
	const char *host;
	const char *token_file;
	const char *tls_ca, *tls_cert, *tls_key; /* TLS to TCP hosts (--tls-*) */
	bool insecure;				 /* plaintext beyond loopback allowed */
	struct gw_rpc_tls *tls;
	char token[256];
	bool json;
	int timeout_ms;
	struct gw_rpc_client *rpc;
};

/* Connects on first use; returns CLI_OK or CLI_USAGE (bad host or token file). */
int cli_connect(struct cli *c);
/* A channel to another godwitd (HOST:PORT) with token, TLS as the global options say: CLI_OK
 * with *out, or CLI_USAGE with the reason printed. */
int cli_open(struct cli *c, const char *target, const char *token, struct gw_rpc_client **out);
/* One unary call with the CLI's deadline; prints the error and returns CLI_FAILED on failure. */
int cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc, const char *method,
	     const ProtobufCMessage *req, ProtobufCMessage **resp);
void cli_print_rpc_error(struct cli *c, const struct gw_rpc_status *st);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Output. */
void out_json(const ProtobufCMessage *msg);
void fmt_bytes(uint64_t b, char *out, size_t n);
void fmt_age(int64_t since_unix, char *out, size_t n);
struct table;
struct table *table_new(unsigned ncols, const char *const *headers);
void table_row(struct table *t, const char *const *cells);
void table_print(struct table *t, FILE *f);

/* A spinner on a TTY for waits longer than a second. */
struct progress;
struct progress *progress_start(const char *label);
void progress_stop(struct progress *p);

int cmd_host(struct cli *c, int argc, char **argv);
int cmd_vm(struct cli *c, int argc, char **argv);
int cmd_migrate(struct cli *c, int argc, char **argv);
int cmd_migration(struct cli *c, int argc, char **argv);
/* godwit migration grant (cmd_grant.c); argv[0] is "grant". */
int cmd_migration_grant(struct cli *c, int argc, char **argv);

#endif
