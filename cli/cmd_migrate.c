/* SPDX-License-Identifier: Apache-2.0 */
/* godwit migrate and godwit migration status|watch|cancel|resolve|list. */
#include "cli.h"
#include "migrate_opts.h"

#include "godwit/parse.h"
#include "godwit/v1/host.pb-c.h"
#include "godwit/v1/migrations.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *phase_name(Godwit__V1__MigrationPhase p)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&godwit__v1__migration_phase__descriptor, (int)p);
	/* "MIGRATION_PHASE_PRECOPY" -> "precopy" for people. */
	static __thread char buf[32];
	const char *n = v ? v->name + strlen("MIGRATION_PHASE_") : "unknown";
	size_t i = 0;
	for (; n[i] && i + 1 < sizeof(buf); i++)
		buf[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i] == '_' ? '-' : n[i]);
	buf[i] = '\0';
	return buf;
}

static void print_migration(const Godwit__V1__Migration *m)
{
	char sent[32], left[32];
	fmt_bytes(m->bytes_sent, sent, sizeof(sent));
	fmt_bytes(m->bytes_remaining, left, sizeof(left));
	printf("id          %s\n", m->id);
	printf("vm          %s -> %s\n", m->vm, m->destination);
	printf("phase       %s%s%s\n", phase_name(m->phase), m->error[0] ? ": " : "", m->error);
	printf("sent        %s (%s remaining, iteration %u)\n", sent, left, m->iteration);
	if (m->total_time_us)
		printf("time        %.3f s total, %.3f ms downtime\n", m->total_time_us / 1e6,
		       m->downtime_us / 1e3);
	if (m->dma_mode && m->dma_mode[0]) {
		char copied[32];
		fmt_bytes(m->dma_bytes_copied, copied, sizeof(copied));
		printf("device DMA  %s: %llu pages made dirty, %s copied\n", m->dma_mode,
		       (unsigned long long)m->dma_pages_dirtied, copied);
	}
	if (m->stream_channels && m->stream_tls)
		printf("stream      TLS 1.3 on %u channel(s); kernel TLS sends on %u, receives on "
		       "%u\n",
		       m->stream_channels, m->ktls_send_channels, m->ktls_recv_channels);
	else if (m->stream_channels)
		printf("stream      in clear on %u channel(s) (--insecure hosts)\n",
		       m->stream_channels);
	if (m->channels_reason && m->channels_reason[0])
		printf("channels    %s\n", m->channels_reason);
	if (m->channels_measured && m->channels_measured[0])
		printf("measured    %s (channels carrying pages, by the first round's rate)\n",
		       m->channels_measured);
	if (m->throttle_pct)
		printf("throttle    %u %% (auto-converge)\n", m->throttle_pct);
	if (m->pages_resent)
		printf("resent      %llu pages the destination asked for again (a batch sent in "
		       "clear failed its hash)\n",
		       (unsigned long long)m->pages_resent);
	if (m->timed_out)
		printf("timeout     acted (see the phase: suspended into stop-and-copy, or "
		       "cancelled)\n");
	for (size_t i = 0; i < m->n_decisions; i++) {
		const Godwit__V1__DeviceDecision *dd = m->decisions[i];
		printf("%-11s %s %s: %s -> %s: %s\n", i ? "" : "devices", dd->device, dd->decision,
		       dd->source, dd->destination, dd->reason);
	}
}

/* One Migrations call whose answer is a Migration, printed (or its JSON). */
static int call_print(struct cli *c, const char *method, const ProtobufCMessage *req)
{
	Godwit__V1__Migration *m;
	int rc =
	    cli_call(c, &godwit__v1__migrations__descriptor, method, req, (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (c->json)
		out_json(&m->base);
	else
		print_migration(m);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return CLI_OK;
}

static int watch(struct cli *c, const char *id, bool verbose);

static int read_token(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, out, n - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		return -1;
	out[r] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static void migrate_help(void)
{
	printf("Usage: godwit migrate NAME --to HOST:PORT (--to-token-file F | --grant-file F)\n"
	       "         [--channels N|auto] [--downtime-ms MS] [--max-time SECS]\n"
	       "         [--max-bandwidth BYTES/S] [--dma-mode MODE] "
	       "[--require-passthrough]\n"
	       "         [--allow-tsc-change] [--stall-timeout SECS] [--detach] [--verbose]\n"
	       "         [--timeout SECS [--timeout-action suspend|cancel]]\n"
	       "         [--auto-converge | --no-auto-converge] [--auto-converge-initial PCT]\n"
	       "         [--auto-converge-increment PCT]\n"
	       "Live-migrates VM NAME to the godwitd at HOST:PORT and follows it to the end.\n"
	       "With that daemon's token (its STATE_DIR/token) godwit asks it for a grant: leave\n"
	       "for this VM to come from the source host (named by its certificate when the\n"
	       "daemons run TLS). The source gets the grant, never the token. TLS to the\n"
	       "destination follows the global --tls-ca/--tls-cert/--tls-key/--insecure.\n"
	       "--grant-file takes a grant the destination's operator made instead ('godwit\n"
	       "--host DEST migration grant NAME'): then this side needs no token of DEST.\n"
	       "--dma-mode says how the DMA of its passthrough NICs reaches dirty "
	       "tracking:\n"
	       "  shadow (default)  the NIC works on shadow rings and buffers; "
	       "completions\n"
	       "                    are copied into guest memory and marked dirty\n"
	       "  track             completed buffers are marked dirty, nothing "
	       "copied\n"
	       "  off               nothing: memory the NIC wrote may arrive stale "
	       "(testing)\n"
	       "A NIC the destination has no free VF for is served there by the VMM's "
	       "own\n"
	       "model of the same generation (decision 'absent'); "
	       "--require-passthrough "
	       "refuses\n"
	       "that up front instead.\n"
	       "The guest's TSC keeps its rate: a destination whose host TSC differs scales it\n"
	       "(KVM's TSC scaling) or, without scaling, refuses before anything moves;\n"
	       "--allow-tsc-change lets it take the VM at its own rate instead.\n"
	       "--stall-timeout fails the migration when nothing moves for SECS (default 30):\n"
	       "a destination that stopped answering never keeps the VM paused or waiting.\n"
	       "The stream is TLS 1.3, keyed by the migration's one-time token; in clear only\n"
	       "between godwitd that both run --insecure.\n"
	       "--channels auto (the default) opens one channel per core both hosts have, at\n"
	       "most 8: min(this host's online CPUs, the destination's, 8); then the first\n"
	       "round sends on 1, 2, ... of them and keeps the fewest past which the rate\n"
	       "grows by less than a tenth. status shows the choice and what was measured.\n"
	       "--timeout SECS: pre-copy not finished after SECS takes --timeout-action:\n"
	       "  suspend (default)  pause the VM; the rest goes as stop-and-copy and the\n"
	       "                     migration completes (longer downtime)\n"
	       "  cancel             cancel the migration; the VM keeps running here\n"
	       "--max-time SECS fails a migration still in pre-copy at the end of a round.\n"
	       "Auto-converge is on by default: while the dirty set does not shrink, the vCPUs\n"
	       "pause for --auto-converge-initial PCT (default 20) of every 100 ms, then\n"
	       "--auto-converge-increment PCT (default 10) more a round, up to 95;\n"
	       "--no-auto-converge never throttles the guest.\n"
	       "--verbose shows 'Migration: [ 42 %%]' progress on stderr (a bar on a TTY) and a\n"
	       "summary at the end.\n");
}

/* The arguments together: one VM, a destination, and its token or a grant it gave (read into
 * token; *is_grant says which). */
static int migrate_check(int argc, char **argv, Godwit__V1__MigrateRequest *req,
			 const struct migrate_opts *o, char *token, size_t n, bool *is_grant)
{
	if (optind >= argc || optind + 1 < argc)
		return cli_usage_error("migrate", "exactly one VM name is required");
	if (!req->destination || !strchr(req->destination, ':'))
		return cli_usage_error("migrate", "--to HOST:PORT is required");
	if (!o->token_file == !o->grant_file)
		return cli_usage_error("migrate",
				       "one of --to-token-file (the destination "
				       "godwitd's token) or --grant-file (a grant it gave: "
				       "'godwit migration grant') is required");
	const char *f = o->token_file ? o->token_file : o->grant_file;
	if (read_token(f, token, n))
		return cli_usage_error("migrate", "cannot read %s", f);
	*is_grant = o->grant_file != NULL;
	req->vm = argv[optind];
	return CLI_OK;
}

/* The grant: the source's certificate names (from the source), then a grant for them and this
 * VM from the destination, with its token. CLI_OK with grant filled, or the exit code. */
static int get_grant(struct cli *c, const char *vm, const char *dest, const char *token,
		     char *grant, size_t n)
{
	Godwit__V1__GetInfoRequest ireq = GODWIT__V1__GET_INFO_REQUEST__INIT;
	Godwit__V1__HostInfo *info;
	int rc = cli_call(c, &godwit__v1__host__descriptor, "GetInfo", &ireq.base,
			  (ProtobufCMessage **)&info);
	if (rc)
		return rc;
	struct gw_rpc_client *dc;
	if ((rc = cli_open(c, dest, token, &dc))) {
		protobuf_c_message_free_unpacked(&info->base, NULL);
		return rc;
	}
	Godwit__V1__GrantIncomingRequest greq = GODWIT__V1__GRANT_INCOMING_REQUEST__INIT;
	greq.vm = (char *)vm;
	greq.source_names = info->tls_names;
	greq.n_source_names = info->n_tls_names;
	Godwit__V1__Grant *g = NULL;
	struct gw_rpc_status st;
	enum gw_rpc_code code =
	    gw_rpc_unary(dc, &godwit__v1__migrations__descriptor, "GrantIncoming", &greq.base,
			 (ProtobufCMessage **)&g, c->timeout_ms, &st);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	gw_rpc_client_close(dc);
	if (code != GW_RPC_OK) {
		snprintf(st.message + strlen(st.message), sizeof(st.message) - strlen(st.message),
			 " (asking the destination %s for a grant)", dest);
		const char *host = c->host;
		c->host = dest;
		cli_print_rpc_error(c, &st);
		c->host = host;
		return CLI_FAILED;
	}
	snprintf(grant, n, "%s", g->grant);
	protobuf_c_message_free_unpacked(&g->base, NULL);
	return CLI_OK;
}

int cmd_migrate(struct cli *c, int argc, char **argv)
{
	Godwit__V1__MigrateRequest req = GODWIT__V1__MIGRATE_REQUEST__INIT;
	struct migrate_opts o;
	char token[256], err[200];
	if (migrate_opts_parse(argc, argv, &req, &o, err, sizeof(err)))
		return cli_usage_error("migrate", "%s", err);
	int rc = CLI_OK;
	if (o.help) {
		migrate_help();
		return CLI_OK;
	}
	char grant[128];
	bool is_grant = false;
	if ((rc = migrate_check(argc, argv, &req, &o, token, sizeof(token), &is_grant)))
		return rc;
	if (is_grant)
		snprintf(grant, sizeof(grant), "%s", token);
	else if ((rc = get_grant(c, req.vm, req.destination, token, grant, sizeof(grant))))
		return rc;
	req.destination_grant = grant;
	Godwit__V1__Migration *m;
	rc = cli_call(c, &godwit__v1__migrations__descriptor, "Migrate", &req.base,
		      (ProtobufCMessage **)&m);
	if (rc)
		return rc;
	if (o.detach) {
		if (c->json)
			out_json(&m->base);
		else
			printf("migration %s of %s to %s started; follow it with 'godwit migration "
			       "watch %s'\n",
			       m->id, m->vm, m->destination, m->id);
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return CLI_OK;
	}
	char id[64];
	snprintf(id, sizeof(id), "%s", m->id);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return watch(c, id, o.verbose);
}

/* Of what the stream has to move: sent / (sent + still dirty), as virsh shows it. */
static unsigned progress_pct(const Godwit__V1__Migration *m)
{
	if (m->phase == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_DONE)
		return 100;
	uint64_t total = m->bytes_sent + m->bytes_remaining;
	return total ? (unsigned)(m->bytes_sent * 100 / total) : 0;
}

static void draw_bar(const Godwit__V1__Migration *m)
{
	unsigned pct = progress_pct(m);
	char bar[31];
	unsigned fill = pct * 30 / 100;
	for (unsigned i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	char sent[32];
	fmt_bytes(m->bytes_sent, sent, sizeof(sent));
	fprintf(stderr, "\r%-14s [%s] %3u%% %s iter %u ", phase_name(m->phase), bar, pct, sent,
		m->iteration);
	fflush(stderr);
}

/* --verbose without a TTY: a line each time the percentage moves, as virsh's. */
static void verbose_line(const Godwit__V1__Migration *m, int *last_pct)
{
	int pct = (int)progress_pct(m);
	if (pct == *last_pct)
		return;
	*last_pct = pct;
	fprintf(stderr, "Migration: [%3d %%]\n", pct);
}

/* --verbose's last words on stderr: how it went, in one block. */
static void verbose_summary(const Godwit__V1__Migration *m)
{
	char sent[32];
	fmt_bytes(m->bytes_sent, sent, sizeof(sent));
	double secs = m->total_time_us / 1e6;
	fprintf(stderr,
		"Migration: %s after %.2f s: %s sent in %u round(s) (%.1f MB/s on average), "
		"downtime %.1f ms, channels %u (%s%s%s)%s\n",
		phase_name(m->phase), secs, sent, m->iteration,
		secs > 0 ? m->bytes_sent / secs / 1e6 : 0.0, m->downtime_us / 1e3,
		m->stream_channels,
		m->channels_reason && m->channels_reason[0] ? m->channels_reason : "?",
		m->channels_measured && m->channels_measured[0] ? "; measured " : "",
		m->channels_measured ? m->channels_measured : "",
		m->timed_out ? "; the --timeout acted" : "");
}

/* On stderr: why the migration watched did not end done. */
static void report_unfinished(const Godwit__V1__Migration *m)
{
	bool ended = m->phase == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED ||
		     m->phase == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_CANCELLED;
	const char *why = m->error && m->error[0] ? m->error : NULL;
	if (ended)
		fprintf(stderr, "godwit: migration %s of %s %s: %s\n", m->id, m->vm,
			phase_name(m->phase), why ? why : "godwitd gave no reason");
	else
		fprintf(stderr,
			"godwit: migration %s of %s: the watch ended while it was in %s%s%s; see "
			"'godwit migration status %s'\n",
			m->id, m->vm, phase_name(m->phase), why ? ": " : "", why ? why : "", m->id);
}

/* The watch's end: the final state printed (unless JSON), and a failure said on stderr. */
static int watch_end(struct cli *c, const char *id, const Godwit__V1__Migration *last, bool verbose)
{
	if (!last) {
		fprintf(stderr,
			"godwit: migration %s: the watch ended before godwitd reported any state\n",
			id);
		return CLI_FAILED;
	}
	if (!c->json)
		print_migration(last);
	if (verbose)
		verbose_summary(last);
	/* Whatever the output format, a migration that did not succeed says why on stderr,
	 * and never with an empty message. */
	if (last->phase != GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_DONE) {
		report_unfinished(last);
		return CLI_FAILED;
	}
	return CLI_OK;
}

/* Follows the Watch stream: a message each time the migration changes. */
static int watch(struct cli *c, const char *id, bool verbose)
{
	int rc = cli_connect(c);
	if (rc)
		return rc;
	Godwit__V1__MigrationRef ref = GODWIT__V1__MIGRATION_REF__INIT;
	ref.id = (char *)id;
	struct gw_rpc_stream *s;
	struct gw_rpc_status st;
	if (gw_rpc_stream_open(c->rpc, &godwit__v1__migrations__descriptor, "Watch", &ref.base, -1,
			       &s, &st) != GW_RPC_OK) {
		cli_print_rpc_error(c, &st);
		return CLI_FAILED;
	}
	bool tty = isatty(STDERR_FILENO) && !c->json;
	int last_pct = -1;
	Godwit__V1__Migration *last = NULL;
	for (;;) {
		ProtobufCMessage *msg;
		int r = gw_rpc_stream_next(s, &msg, -1, &st);
		if (r <= 0)
			break;
		if (c->json)
			out_json(msg);
		else if (tty)
			draw_bar((Godwit__V1__Migration *)msg);
		else if (verbose)
			verbose_line((Godwit__V1__Migration *)msg, &last_pct);
		if (last)
			protobuf_c_message_free_unpacked(&last->base, NULL);
		last = (Godwit__V1__Migration *)msg;
	}
	if (tty)
		fprintf(stderr, "\n");
	gw_rpc_stream_close(s);
	if (st.code != GW_RPC_OK) {
		cli_print_rpc_error(c, &st);
		rc = CLI_FAILED;
	} else {
		rc = watch_end(c, id, last, verbose);
	}
	if (last)
		protobuf_c_message_free_unpacked(&last->base, NULL);
	return rc;
}

static bool phase_final(Godwit__V1__MigrationPhase p)
{
	return p == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_DONE ||
	       p == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED ||
	       p == GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_CANCELLED;
}

/*
 * watch --json: one object per interval, whether or not anything changed, on a fixed
 * schedule (absolute deadlines: a slow answer does not shift the next). throughput_bps is
 * over the interval, from the source's own clock (total_time_us comes with bytes_sent);
 * until two samples differ in time, godwitd's figure stays.
 */
static int watch_every(struct cli *c, const struct watch_opts *w)
{
	Godwit__V1__MigrationRef ref = GODWIT__V1__MIGRATION_REF__INIT;
	ref.id = (char *)w->id;
	Godwit__V1__Migration *last = NULL;
	uint64_t prev_bytes = 0, prev_us = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	int rc = CLI_OK;
	for (;;) {
		Godwit__V1__Migration *m;
		rc = cli_call(c, &godwit__v1__migrations__descriptor, "Get", &ref.base,
			      (ProtobufCMessage **)&m);
		if (rc)
			break;
		if (last && m->total_time_us > prev_us && m->bytes_sent >= prev_bytes)
			m->throughput_bps =
			    (m->bytes_sent - prev_bytes) * 1000000u / (m->total_time_us - prev_us);
		else if (last && m->total_time_us == prev_us && !phase_final(m->phase))
			m->throughput_bps = last->throughput_bps; /* no new report yet */
		prev_bytes = m->bytes_sent;
		prev_us = m->total_time_us;
		out_json(&m->base);
		fflush(stdout);
		if (last)
			protobuf_c_message_free_unpacked(&last->base, NULL);
		last = m;
		if (phase_final(m->phase))
			break;
		next.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
		next.tv_sec += w->interval_ms / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	if (rc == CLI_OK)
		rc = watch_end(c, w->id, last, false);
	if (last)
		protobuf_c_message_free_unpacked(&last->base, NULL);
	return rc;
}

static void resolve_help(FILE *f)
{
	fprintf(f,
		"Usage: godwit migration resolve ID (--keep-source [--destination-down] |\n"
		"                                    --keep-destination)\n"
		"Settles a migration in doubt (phase in-doubt): its handover's outcome is unknown\n"
		"because the destination could not be asked, and the VM stays paused on this, the\n"
		"source host. godwitd keeps asking by itself; this decides instead:\n"
		"  --keep-source       the destination must confirm that it aborted (or never\n"
		"                      had) the VM; then the VM resumes here\n"
		"  --keep-destination  the destination must confirm (or make) the commit; then\n"
		"                      the VM is let go here\n"
		"  --destination-down  with --keep-source: resume here although the destination\n"
		"                      cannot be reached. You assert that its host is down and\n"
		"                      that the VM will not run there (else it runs twice)\n"
		"Whatever would run the VM on both hosts is refused.\n");
}

/* godwit migration resolve ID --keep-source|--keep-destination [--destination-down] */
static int resolve(struct cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"keep-source", no_argument, NULL, 's'},
	    {"keep-destination", no_argument, NULL, 'd'},
	    {"destination-down", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Godwit__V1__ResolveMigrationRequest req = GODWIT__V1__RESOLVE_MIGRATION_REQUEST__INIT;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'd': {
			int keep =
			    ch == 's'
				? GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_SOURCE
				: GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_DESTINATION;
			if (req.keep && (int)req.keep != keep)
				return cli_usage_error(
				    "migration resolve",
				    "--keep-source or --keep-destination, not both");
			req.keep = keep;
			break;
		}
		case 'D':
			req.destination_down = true;
			break;
		case 'h':
			resolve_help(stdout);
			return CLI_OK;
		default:
			resolve_help(stderr);
			return CLI_USAGE;
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("migration resolve", "takes one migration ID");
	if (!req.keep)
		return cli_usage_error(
		    "migration resolve",
		    "say which copy to keep: --keep-source or --keep-destination");
	if (req.destination_down &&
	    req.keep != GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_SOURCE)
		return cli_usage_error("migration resolve",
				       "--destination-down goes with --keep-source");
	req.id = argv[optind];
	return call_print(c, "Resolve", &req.base);
}

int cmd_migration(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(
		    argc < 2 ? stderr : stdout,
		    "Usage: godwit migration status ID | watch ID [--interval MS] | cancel ID |\n"
		    "       list |\n"
		    "       resolve ID --keep-source|--keep-destination (see its --help) |\n"
		    "       grant NAME [--source-name N]... [--ttl SECS] (asked of the "
		    "destination)\n"
		    "'list' shows the migrations started from this host; one in phase in-doubt\n"
		    "keeps its VM paused here until it is settled (see 'resolve --help').\n"
		    "'watch' follows a migration to its end; with --json, one object every\n"
		    "--interval MS (default 500) with bytesSent, bytesRemaining (dirty pages\n"
		    "not yet sent), throughputBps over that interval, phase, iteration (the\n"
		    "round) and throttlePct.\n");
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "list")) {
		if (argc != 2)
			return cli_usage_error("migration list", "takes no arguments");
		Godwit__V1__ListMigrationsRequest req = GODWIT__V1__LIST_MIGRATIONS_REQUEST__INIT;
		Godwit__V1__ListMigrationsResponse *r;
		int rc = cli_call(c, &godwit__v1__migrations__descriptor, "List", &req.base,
				  (ProtobufCMessage **)&r);
		if (rc)
			return rc;
		if (c->json) {
			out_json(&r->base);
		} else if (r->n_migrations == 0) {
			printf("no migrations started from this host\n");
		} else {
			const char *hdr[] = {"ID", "VM", "DESTINATION", "PHASE"};
			struct table *t = table_new(4, hdr);
			for (size_t i = 0; i < r->n_migrations; i++) {
				Godwit__V1__Migration *m = r->migrations[i];
				const char *row[] = {m->id, m->vm, m->destination,
						     phase_name(m->phase)};
				table_row(t, row);
			}
			table_print(t, stdout);
			for (size_t i = 0; i < r->n_migrations; i++)
				if (r->migrations[i]->phase ==
				    GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_IN_DOUBT)
					printf("migration %s is in doubt: VM %s stays paused here "
					       "until it is settled (godwit migration resolve "
					       "--help)\n",
					       r->migrations[i]->id, r->migrations[i]->vm);
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return CLI_OK;
	}
	if (!strcmp(sub, "resolve"))
		return resolve(c, argc - 1, argv + 1);
	if (!strcmp(sub, "grant"))
		return cmd_migration_grant(c, argc - 1, argv + 1);
	if (!strcmp(sub, "watch")) {
		struct watch_opts w;
		char err[160];
		if (watch_opts_parse(argc - 1, argv + 1, &w, err, sizeof(err)))
			return cli_usage_error("migration watch", "%s", err);
		if (w.interval_given && !c->json)
			return cli_usage_error(
			    "migration watch",
			    "--interval sets the rate of --json objects; without "
			    "--json the watch shows each change");
		if (c->json) {
			int rc = cli_connect(c);
			return rc ? rc : watch_every(c, &w);
		}
		return watch(c, w.id, false);
	}
	if (argc != 3)
		return cli_usage_error("migration", "'%s' takes one migration ID", sub);
	const char *method = !strcmp(sub, "status")   ? "Get"
			     : !strcmp(sub, "cancel") ? "Cancel"
						      : NULL;
	if (!method)
		return cli_usage_error("migration", "unknown subcommand '%s'", sub);
	Godwit__V1__MigrationRef ref = GODWIT__V1__MIGRATION_REF__INIT;
	ref.id = argv[2];
	return call_print(c, method, &ref.base);
}
