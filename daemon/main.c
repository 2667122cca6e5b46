/* SPDX-License-Identifier: Apache-2.0 */
/* godwitd: the host daemon. Serves the gRPC API and supervises godwit-vmm processes. */
#include "api.h"
#include "ops.h"

#include "godwit/log.h"
#include "godwit/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN	  "127.0.0.1:7700"
#define DEFAULT_STATE_DIR "/var/lib/godwit"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: godwitd [--listen HOST:PORT] [--state-dir DIR] [options]\n"
	    "The godwit host daemon: serves the gRPC API (godwit.v1.Host, Vms, and\n"
	    "grpc.health.v1.Health) and runs one godwit-vmm process per VM.\n"
	    "\n"
	    "  -l, --listen ADDR     TCP address to serve, token-protected (default " DEFAULT_LISTEN
	    ";\n"
	    "                        port 0 picks a free port; 'none' serves the unix socket "
	    "only)\n"
	    "      --tls-cert FILE   this host's certificate (PEM): TLS on the TCP API, and\n"
	    "                        what this host presents to other godwitd (mutual TLS)\n"
	    "      --tls-key FILE    its private key (PEM, mode 0600)\n"
	    "      --tls-ca FILE     the CA that signs godwit hosts' certificates: other\n"
	    "                        godwitd are checked against it\n"
	    "      --insecure        serve and migrate in plaintext beyond loopback (TLS is\n"
	    "                        required for a non-loopback --listen otherwise)\n"
	    "  -d, --state-dir DIR   VM definitions, token, sockets, logs "
	    "(default " DEFAULT_STATE_DIR ")\n"
	    "      --vmm PATH        the godwit-vmm binary (default: next to godwitd)\n"
	    "      --memory-limit SIZE  RAM all running VMs may use together (default: the\n"
	    "                        host's memory); incoming migrations beyond it are refused\n"
	    "      --emul-nic gen=N,vfs=M[,uplink=SPEC]\n"
	    "                        declare an emulated SR-IOV NIC (a PF) whose M VFs (1..7)\n"
	    "                        VMs can hold; N is its generation (1 or 2); SPEC its\n"
	    "                        packet port: none (default), udp:HOST:PORT, unix:PATH or\n"
	    "                        tap:NAME. Repeat for more PFs (pf0, pf1, ... in order).\n"
	    "                        Default (neither --emul-nic nor --pf): one gen=1,vfs=7 PF;\n"
	    "                        '--emul-nic none' declares none\n"
	    "      --pf DDDD:BB:DD.F[,vfs=N]\n"
	    "                        manage a real SR-IOV PF (an Intel 82576, igb): create N\n"
	    "                        VFs (default: keep the VFs it has), bind the VFs no host\n"
	    "                        driver uses to vfio-pci and give them to VMs. Repeatable;\n"
	    "                        PFs are numbered with the --emul-nic ones, in order\n"
	    "      --libvirt URI     where real PFs are read and VFs bound: a libvirt URI\n"
	    "                        (qemu:///system: its node devices, and no VF a libvirt\n"
	    "                        domain holds), none (sysfs), or auto (default: libvirt\n"
	    "                        if its daemon's socket answers, else sysfs)\n"
	    "      --emul-uplink SPEC  the packet port of NICs this host must emulate because no\n"
	    "                        VF can back them (a migration's 'absent' decision);\n"
	    "                        default none\n"
	    "      --incoming-timeout SECONDS\n"
	    "                        an incoming migration whose VM arrived whole but was\n"
	    "                        not committed by its source within this time is aborted\n"
	    "                        (default 180)\n"
	    "      --max-calls N     API calls served at once, 4..4096 (default 64), a quarter\n"
	    "                        of them (at most 16) for health checks; beyond, a call is\n"
	    "                        refused at once with RESOURCE_EXHAUSTED\n"
	    "      --metrics ADDR    serve Prometheus metrics at http://ADDR/metrics (default\n"
	    "                        " GWD_METRICS_DEFAULT
	    ", loopback; port 0 picks one; 'off': none)\n"
	    "      --log-level LVL   error, warn, info (default) or debug\n"
	    "  -h, --help            this text\n"
	    "      --version         print the version\n"
	    "\n"
	    "Certificates: docs/operator-guide.md (scripts/make-test-ca.sh makes test ones).\n"
	    "Files in DIR: token (the bearer token TCP clients need), godwitd.sock (the unix\n"
	    "socket, owner only), listen-address (the TCP address actually bound), vms/NAME/,\n"
	    "migrations/ID.pb (where each migration stands), grants/ (incoming grants, hashed).\n"
	    "DIR and the token must be open to nobody but their owner (chmod 700 DIR; chmod\n"
	    "600 DIR/token): godwitd refuses to start otherwise.\n"
	    "Stopping godwitd leaves VMs running; a restarted godwitd re-adopts them and\n"
	    "finishes the migrations it was part of with the other host.\n"
	    "Under systemd (godwitd.service, godwitd.socket): readiness and watchdog through\n"
	    "sd_notify, the unix socket from socket activation, logs to the journal.\n");
}

static int find_vmm(char *out, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return -ENOENT;
	self[len] = '\0';
	char *dir = dirname(self);
	const char *cands[] = {"godwit-vmm", "../vmm/godwit-vmm"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(out, n, "%s/%s", dir, cands[i]);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int mkdirs(const char *path)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void log_pool(const struct gwd_pool *p)
{
	if (p->npfs == 0)
		GW_INFO("sriov", "no SR-IOV NIC declared (--emul-nic none)");
	for (unsigned i = 0; i < p->npfs; i++) {
		const struct gwd_pf *pf = &p->pfs[i];
		char g[80];
		sriov_gen_describe(&pf->gen, g, sizeof(g));
		if (pf->backend == GWD_BACKEND_EMUL) {
			GW_INFO("sriov", "pf%u: emul gen%u (%s), %u VFs, uplink %s", i, pf->gen.gen,
				g, pf->nvfs, pf->uplink);
			continue;
		}
		GW_INFO("sriov", "pf%u: vfio %s (interface %s) gen%u (%s), %u VFs, %u available", i,
			pf->address, pf->netdev[0] ? pf->netdev : "none", pf->gen.gen, g, pf->nvfs,
			gwd_pool_free_vfs(p, i));
		for (unsigned v = 0; v < pf->nvfs; v++) {
			const struct gwd_vf_slot *s = &pf->vfs[v];
			if (s->unavailable)
				GW_WARN("sriov", "pf%u vf%u (%s) is unavailable: %s", i, v, s->host,
					s->reason);
		}
	}
}

/* What the command line says beyond what goes straight into struct gwd. */
struct gwd_opts {
	const char *listen_tcp, *state_dir, *vmm;
	const char *tls_cert, *tls_key, *tls_ca;
	struct gwd_ops ops;  /* systemd, /metrics (ops.h) */
	const char *libvirt; /* --libvirt: auto, none or a URI */
};

#define GWD_GO_ON (-1) /* parse_opts: no exit, the daemon starts */

/* The TLS options together: loaded and checked, or plaintext where that is allowed (loopback,
 * or --insecure). GWD_GO_ON or the exit code. */
static int tls_setup(struct gwd *d, const struct gwd_opts *o)
{
	char why[400];
	if (o->tls_cert || o->tls_key || o->tls_ca) {
		if (!o->tls_cert || !o->tls_key || !o->tls_ca) {
			fprintf(stderr, "godwitd: TLS needs --tls-cert, --tls-key and --tls-ca "
					"together\n");
			return 2;
		}
		if (d->insecure) {
			fprintf(stderr, "godwitd: --insecure and TLS options contradict each "
					"other\n");
			return 2;
		}
		int rc =
		    gw_rpc_tls_load(o->tls_cert, o->tls_key, o->tls_ca, &d->tls, why, sizeof(why));
		if (rc) {
			fprintf(stderr, "godwitd: TLS: %s\n", why);
			return 2;
		}
		gw_rpc_tls_names(d->tls, d->tls_names, sizeof(d->tls_names));
		return GWD_GO_ON;
	}
	if (strcmp(o->listen_tcp, "none") != 0 && !gwd_addr_is_loopback(o->listen_tcp) &&
	    !d->insecure) {
		fprintf(stderr,
			"godwitd: --listen %s is reachable from other hosts: give it TLS with "
			"--tls-cert, --tls-key and --tls-ca (docs/operator-guide.md; "
			"scripts/make-test-ca.sh makes test certificates), or accept plaintext "
			"with --insecure\n",
			o->listen_tcp);
		return 2;
	}
	return GWD_GO_ON;
}

/* The command line into d and o: GWD_GO_ON, or the exit code (--help, --version, errors). */
static int parse_opts(int argc, char **argv, struct gwd *d, struct gwd_opts *o)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"state-dir", required_argument, NULL, 'd'},
	    {"vmm", required_argument, NULL, 'V'},
	    {"memory-limit", required_argument, NULL, 'M'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"emul-nic", required_argument, NULL, 'E'},
	    {"emul-uplink", required_argument, NULL, 'U'},
	    {"pf", required_argument, NULL, 'P'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"incoming-timeout", required_argument, NULL, 'T'},
	    {"max-calls", required_argument, NULL, 'X'},
	    {"metrics", required_argument, NULL, 'm'},
	    {"libvirt", required_argument, NULL, 'B'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct gwd_opts){
	    .listen_tcp = DEFAULT_LISTEN, .state_dir = DEFAULT_STATE_DIR, .libvirt = "auto"};
	d->incoming_timeout_s = 180;
	enum gw_log_level lvl;
	char why[400];
	int ch;
	while ((ch = getopt_long(argc, argv, "l:d:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			o->listen_tcp = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'V':
			o->vmm = optarg;
			break;
		case 'M':
			if (gw_parse_size(optarg, &d->memory_limit) || d->memory_limit == 0) {
				fprintf(stderr, "godwitd: bad --memory-limit '%s' (try 8G)\n",
					optarg);
				return 2;
			}
			break;
		case 'L':
			if (gw_log_parse_level(optarg, &lvl)) {
				fprintf(stderr,
					"godwitd: --log-level is error, warn, info or debug\n");
				return 2;
			}
			gw_log_set_level(lvl);
			break;
		case 'E':
			if (gwd_pool_add_emul(&d->pool, optarg, why, sizeof(why))) {
				fprintf(stderr, "godwitd: %s\n", why);
				return 2;
			}
			break;
		case 'P':
			if (gwd_pool_add_pf(&d->pool, optarg, why, sizeof(why))) {
				fprintf(stderr, "godwitd: %s\n", why);
				return 2;
			}
			break;
		case 'U':
			if (strlen(optarg) >= sizeof(d->emul_uplink)) {
				fprintf(stderr, "godwitd: --emul-uplink: too long\n");
				return 2;
			}
			snprintf(d->emul_uplink, sizeof(d->emul_uplink), "%s", optarg);
			break;
		case 'C':
			o->tls_cert = optarg;
			break;
		case 'K':
			o->tls_key = optarg;
			break;
		case 'A':
			o->tls_ca = optarg;
			break;
		case 'I':
			d->insecure = true;
			break;
		case 'T': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!optarg[0] || *end || v == 0 || v > 86400) {
				fprintf(stderr,
					"godwitd: --incoming-timeout is 1..86400 seconds\n");
				return 2;
			}
			d->incoming_timeout_s = (unsigned)v;
			break;
		}
		case 'X': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!optarg[0] || *end || v < 4 || v > 4096) {
				fprintf(stderr, "godwitd: --max-calls is 4..4096\n");
				return 2;
			}
			d->max_calls = (unsigned)v;
			break;
		}
		case 'm':
			o->ops.metrics = optarg;
			o->ops.metrics_given = true;
			break;
		case 'B':
			o->libvirt = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			printf("godwitd %s\n", GODWIT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "godwitd: unexpected argument '%s'; see --help\n", argv[optind]);
		return 2;
	}
	return tls_setup(d, o);
}

/* The state directory, made if need be, and the settings that follow from the options: 0 or
 * the exit code. */
static int setup(struct gwd *d, const struct gwd_opts *o)
{
	gwd_pool_finish(&d->pool);
	if (strlen(o->state_dir) > 180) {
		fprintf(stderr, "godwitd: --state-dir is too long (unix socket paths inside it "
				"must stay under 108 bytes)\n");
		return 2;
	}
	char abs_dir[PATH_MAX];
	if (mkdirs(o->state_dir) || !realpath(o->state_dir, abs_dir)) {
		fprintf(stderr, "godwitd: cannot use state directory %s: %s\n", o->state_dir,
			strerror(errno));
		return 1;
	}
	snprintf(d->state_dir, sizeof(d->state_dir), "%s", abs_dir);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (!d->memory_limit) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		d->memory_limit = (uint64_t)pages * (uint64_t)psz;
	}
	/* Incoming migration streams listen on the API's host (loopback by default). */
	snprintf(d->stream_host, sizeof(d->stream_host), "127.0.0.1");
	if (strcmp(o->listen_tcp, "none") != 0) {
		snprintf(d->stream_host, sizeof(d->stream_host), "%s", o->listen_tcp);
		char *colon = strrchr(d->stream_host, ':');
		if (colon)
			*colon = '\0';
	}
	return 0;
}

/* One daemon per state directory: its lock (held until the process ends), its token and
 * host id, and the godwit-vmm it runs. 0 or the exit code. */
static int claim(struct gwd *d, const struct gwd_opts *o)
{
	/* The token is the API's password and the unix socket needs none: refuse to serve from
	 * a directory, or with a token, that others may read. */
	char why[700];
	if (gwd_state_check_private(d->state_dir, why, sizeof(why))) {
		fprintf(stderr, "godwitd: %s\n", why);
		return 1;
	}
	char lockp[600];
	snprintf(lockp, sizeof(lockp), "%s/godwitd.lock", d->state_dir);
	int lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "godwitd: another godwitd already uses %s\n", d->state_dir);
		return 1;
	}
	if (gwd_secret_load(d->state_dir, "token", 32, d->token, sizeof(d->token), why,
			    sizeof(why)) ||
	    gwd_secret_load(d->state_dir, "host-id", 16, d->host_id, sizeof(d->host_id), why,
			    sizeof(why))) {
		fprintf(stderr, "godwitd: %s\n", why);
		return 1;
	}
	if (o->vmm)
		snprintf(d->vmm_path, sizeof(d->vmm_path), "%s", o->vmm);
	else if (find_vmm(d->vmm_path, sizeof(d->vmm_path))) {
		fprintf(stderr, "godwitd: godwit-vmm not found next to godwitd; pass --vmm PATH\n");
		return 1;
	}
	if (access(d->vmm_path, X_OK) != 0) {
		fprintf(stderr, "godwitd: %s is not executable: %s\n", d->vmm_path,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* The --pf PFs, once this daemon owns its state directory: VFs created and bound to vfio-pci
 * through the --libvirt source (docs/operator-guide.md). 0 or the exit code: 2 when a
 * declaration cannot work. */
static int setup_pfs(struct gwd *d, const struct gwd_opts *o)
{
	char why[600];
	int rc = gwd_inventory_open(&d->inv, o->libvirt, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "godwitd: %s\n", why);
		return rc == -EINVAL ? 2 : 1;
	}
	GW_INFO("sriov", "inventory: %s", d->inv.desc);
	rc = gwd_pool_setup_vfio(&d->pool, &d->inv, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "godwitd: %s\n", why);
		return rc == -EINVAL ? 2 : 1;
	}
	return 0;
}

/* Serves the API on the unix socket and, unless 'none', on TCP; the TCP address actually
 * bound goes to DIR/listen-address. The server keeps pointers into methods, which must live
 * as long as it. 0 or the exit code. */
static int serve(struct gwd *d, const char *listen_tcp, const struct gwd_ops *ops,
		 struct gw_rpc_method *methods, size_t max_methods, struct gw_rpc_server **srv)
{
	const char *unix_addr = ops->unix_target;
	const char *listen[3] = {ops->unix_listen, NULL, NULL};
	if (strcmp(listen_tcp, "none") != 0)
		listen[1] = listen_tcp;
	size_t nm = gwd_api_methods(methods, max_methods);
	struct gw_rpc_server_config cfg = {.listen = listen,
					   .token = d->token,
					   .log_prefix = "api",
					   .tls = d->tls,
					   .on_call_end = gwd_metrics_rpc_end,
					   .on_call_end_opaque = d->metrics,
					   /* A quarter of them for health checks, which need
					    * no token, at most the server's default 16. */
					   .max_calls = d->max_calls,
					   .max_public_calls =
					       d->max_calls / 4 < 16 ? d->max_calls / 4 : 16};
	int rc = gw_rpc_server_start(&cfg, methods, nm, d, srv);
	if (rc) {
		fprintf(stderr, "godwitd: cannot serve on %s: %s\n", listen_tcp, strerror(-rc));
		return 1;
	}
	char addrp[600], bound[300] = "";
	snprintf(addrp, sizeof(addrp), "%s/listen-address", d->state_dir);
	if (listen[1]) {
		char host[256];
		snprintf(host, sizeof(host), "%s", listen_tcp);
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = '\0';
		snprintf(bound, sizeof(bound), "%s:%d", host, gw_rpc_server_port(*srv, 1));
		char line[310];
		int len = snprintf(line, sizeof(line), "%s\n", bound);
		rc = gwd_file_replace(d->state_dir, "listen-address", line, (size_t)len);
		if (rc) {
			fprintf(stderr, "godwitd: cannot write %s: %s\n", addrp, strerror(-rc));
			gw_rpc_server_shutdown(*srv);
			return 1;
		}
	} else {
		unlink(addrp);
	}
	GW_INFO("godwitd", "serving %s%s%s%s%s (state in %s, vmm %s)", bound,
		bound[0] ? (d->tls ? " over TLS as " : " in plaintext") : "",
		bound[0] && d->tls ? d->tls_names : "", bound[0] ? " and " : "", unix_addr,
		d->state_dir, d->vmm_path);
	return 0;
}

int main(int argc, char **argv)
{
	gw_log_set_ident("godwitd");
	static struct gwd d;
	struct gwd_opts o;
	int rc = parse_opts(argc, argv, &d, &o);
	if (rc != GWD_GO_ON)
		return rc;
	if ((rc = setup(&d, &o)) || (rc = claim(&d, &o)) || (rc = setup_pfs(&d, &o)) ||
	    (rc = gwd_ops_early(&d, &o.ops)))
		return rc;

	/* Signals end the daemon through sigwait below; SIGPIPE is an error on one socket. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The VMs of the previous run, adopted while their VMMs still run. */
	log_pool(&d.pool);
	if (gwd_registry_load(&d))
		return 1;
	for (struct gwd_vm *v = d.vms; v; v = v->next)
		gwd_vm_adopt(&d, v);
	/* Then the migrations they were part of: each side's record says where it stood. */
	gwd_incoming_reconcile(&d);
	gwd_migrations_reconcile(&d);

	struct gw_rpc_method methods[32];
	struct gw_rpc_server *srv;
	if ((rc = serve(&d, o.listen_tcp, &o.ops, methods, 32, &srv)))
		return rc;
	if ((rc = gwd_ops_serving(&d, &o.ops, "serving"))) {
		gw_rpc_server_shutdown(srv);
		return rc;
	}
	int sig = 0;
	sigwait(&set, &sig);
	GW_INFO("godwitd", "signal %d: shutting down; running VMs keep running", sig);
	gwd_ops_stop(&o.ops);
	pthread_mutex_lock(&d.lock);
	d.shutting_down = true;
	pthread_mutex_unlock(&d.lock);
	gw_rpc_server_shutdown(srv);
	gwd_pool_return_vfs(&d.pool, &d.inv);
	gwd_inventory_close(&d.inv);
	GW_INFO("godwitd", "stopped");
	return 0;
}
