/* SPDX-License-Identifier: Apache-2.0 */
/* godwit-vmm: runs one VM; standalone from the command line (docs/godwit-vmm.md). */
#include "godwit/hv.h"
#include "godwit/hv_abi.h"
#include "godwit/log.h"
#include "godwit/parse.h"

#include "control.h"
#include "godwit/mig.h"
#include "godwit/sriov.h"

#define VMM_MAX_VFS 4u

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Exit codes (docs/godwit-vmm.md). */
enum {
	EXIT_GUEST_OK = 0,
	EXIT_GUEST_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_SETUP = 3,
	EXIT_GUEST_CRASHED = 4,
	EXIT_TIMEOUT = 5,
	EXIT_INCOMING_FAILED = 6,
};

/* What a Linux guest gets without --cmdline: its console on the 16550 godwit emulates. */
#define VMM_LINUX_CMDLINE "console=ttyS0"

struct vmm_opts {
	uint64_t mem;
	unsigned cpus;
	const char *guest;
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *serial;
	bool hugepages;
	bool json;
	bool start_paused;
	const char *control;
	const char *status_file;
	const char *incoming;
	const char *incoming_token_file;
	bool incoming_plaintext;
	unsigned incoming_channels;
	uint64_t timeout_s;
	unsigned nvfs;
	struct sriov_vf_config_spec vf_spec[VMM_MAX_VFS];
};

struct vmm_ctx {
	struct vmm_opts o;
	struct hv_vm *vm;
	uint64_t reports;
	uint64_t last_verify_pass, verify_bad_total;
	bool have_checksum;
	uint64_t checksum;
	const char *outcome; /* "migrated", "incoming-failed" or NULL */
	struct sriov_vf *vfs[VMM_MAX_VFS];
	uint64_t nic_echoed, nic_bad;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: godwit-vmm --memory SIZE (--kernel BZIMAGE | --guest PATH) [options]\n"
	    "Runs one VM on KVM: a Linux kernel booted at its 64-bit entry (no firmware), or\n"
	    "godwit's test guest (an x86-64 ELF) booted directly in long mode.\n"
	    "\n"
	    "  -m, --memory SIZE     guest RAM, e.g. 256M or 2G (multiple of 2 MiB, 16M..32G)\n"
	    "  -k, --kernel BZIMAGE  Linux kernel to boot (e.g. /boot/vmlinuz-6.1.0-57-amd64)\n"
	    "      --initrd FILE     initramfs for --kernel\n"
	    "  -g, --guest PATH      ELF64 image to boot (e.g. "
	    "build/tests/guest/godwit-test-guest)\n"
	    "  -c, --cmdline STR     guest command line (Linux: default \"" VMM_LINUX_CMDLINE
	    "\";\n"
	    "                        test guest: hello, dirty:MiB:rate, ...)\n"
	    "  -s, --serial SINK     console: stdio (default), none, file:PATH, unix:PATH\n"
	    "      --cpus N          vCPUs (1..%u, default 1)\n"
	    "      --hugepages       back RAM with 2 MiB hugepages\n"
	    "      --timeout SECS    stop the VM after SECS seconds (exit code 5)\n"
	    "      --json            print the final result as one JSON object on stdout\n"
	    "      --control PATH    serve the control API (godwit.vmm.v1.Vmm) on unix socket "
	    "PATH\n"
	    "      --start-paused    do not run the guest until the control API's Start\n"
	    "      --status-file F   write the final JSON result to F as the process ends\n"
	    "      --incoming HOST   receive a migrating VM on HOST instead of booting a guest\n"
	    "                        (needs --control; ports show in the control API's Status)\n"
	    "      --incoming-channels N  parallel channels to accept (default 1)\n"
	    "      --incoming-token-file F  file holding the one-time stream token\n"
	    "      --incoming-plaintext  take the stream in clear, not over TLS 1.3 keyed by\n"
	    "                        the token (loopback tests; the source must agree)\n"
	    "      --vf SPEC         attach an emulated SR-IOV VF (repeatable, up to %u):\n"
	    "                        pf=P,vf=V,gen=1|2,mac=MAC[,pages=trap|direct]\n"
	    "                        [,mbx=intercept|trap][,trust=on|off]\n"
	    "                        [,backing=passthrough|emulated],uplink=PORT\n"
	    "                        PORT: none, udp:HOST:PORT, unix:PATH or tap:NAME (last)\n"
	    "      --log-level LVL   error, warn, info (default) or debug\n"
	    "  -h, --help            this text\n"
	    "      --version         print the version\n"
	    "\n"
	    "Exit codes: 0 guest exited 0; 1 guest exited non-zero; 2 usage error;\n"
	    "3 setup error (KVM, a guest, kernel or initrd that cannot be booted);\n"
	    "4 guest crashed or reset (triple fault, KVM error, reboot);\n"
	    "5 --timeout reached.\n",
	    HV_MAX_VCPUS, VMM_MAX_VFS);
}

static const char *report_name(uint32_t kind)
{
	switch (kind) {
	case GW_REPORT_HELLO:
		return "hello";
	case GW_REPORT_VERIFY:
		return "verify";
	case GW_REPORT_CHECKSUM:
		return "checksum";
	case GW_REPORT_SCAN_BEGIN:
		return "scan-begin";
	case GW_REPORT_SCAN_END:
		return "scan-end";
	case GW_REPORT_FAULT_OK:
		return "fault-ok";
	case GW_REPORT_ERROR:
		return "error";
	case GW_REPORT_NIC_READY:
		return "nic-ready";
	case GW_REPORT_NIC_PROGRESS:
		return "nic-progress";
	case GW_REPORT_NIC_END:
		return "nic-end";
	case GW_REPORT_NIC_STALE:
		return "nic-stale";
	case GW_REPORT_NIC_RESET:
		return "nic-reset";
	default:
		return "unknown";
	}
}

static void on_report(void *opaque, struct hv_vm *vm, uint32_t kind, uint64_t a, uint64_t b)
{
	struct vmm_ctx *c = opaque;
	c->reports++;
	if (kind == GW_REPORT_VERIFY) {
		c->last_verify_pass = a;
		c->verify_bad_total += b;
	} else if (kind == GW_REPORT_NIC_PROGRESS || kind == GW_REPORT_NIC_END) {
		c->nic_echoed = a;
		c->nic_bad = b;
		if (kind == GW_REPORT_NIC_PROGRESS)
			return; /* frequent: not worth a log line each */
	} else if (kind == GW_REPORT_CHECKSUM) {
		c->have_checksum = true;
		c->checksum = b;
	}
	GW_INFO(hv_vm_name(vm), "guest report %s a=%" PRIu64 " b=%" PRIu64, report_name(kind), a,
		b);
}

/* Long options without a short form. */
enum {
	OPT_CPUS = 256,
	OPT_HUGE,
	OPT_VF,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_LOG,
	OPT_VERSION,
	OPT_CONTROL,
	OPT_PAUSED,
	OPT_STATUS_FILE,
	OPT_INCOMING,
	OPT_INCOMING_CH,
	OPT_INCOMING_TOKEN,
	OPT_INCOMING_PLAIN,
	OPT_INITRD,
};

/* One option into o: 0 or EXIT_USAGE (--help and --version exit here). */
static int parse_opt(int ch, char *arg, struct vmm_opts *o)
{
	uint64_t v;
	enum gw_log_level lvl;
	switch (ch) {
	case 'm':
		if (gw_parse_size(arg, &o->mem)) {
			fprintf(stderr, "godwit-vmm: bad memory size '%s' (try 256M or 2G)\n", arg);
			return EXIT_USAGE;
		}
		break;
	case 'g':
		o->guest = arg;
		break;
	case 'k':
		o->kernel = arg;
		break;
	case OPT_INITRD:
		o->initrd = arg;
		break;
	case 'c':
		o->cmdline = arg;
		break;
	case 's':
		o->serial = arg;
		break;
	case OPT_CPUS:
		if (gw_parse_u64(arg, 1, HV_MAX_VCPUS, &v)) {
			fprintf(stderr, "godwit-vmm: --cpus takes 1..%u, not '%s'\n", HV_MAX_VCPUS,
				arg);
			return EXIT_USAGE;
		}
		o->cpus = (unsigned)v;
		break;
	case OPT_HUGE:
		o->hugepages = true;
		break;
	case OPT_TIMEOUT:
		if (gw_parse_u64(arg, 1, 86400 * 365, &o->timeout_s)) {
			fprintf(stderr, "godwit-vmm: --timeout takes seconds, not '%s'\n", arg);
			return EXIT_USAGE;
		}
		break;
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_CONTROL:
		o->control = arg;
		break;
	case OPT_PAUSED:
		o->start_paused = true;
		break;
	case OPT_STATUS_FILE:
		o->status_file = arg;
		break;
	case OPT_INCOMING:
		o->incoming = arg;
		break;
	case OPT_INCOMING_CH:
		if (gw_parse_u64(arg, 1, MIG_MAX_CHANNELS, &v)) {
			fprintf(stderr, "godwit-vmm: --incoming-channels takes 1..%d\n",
				MIG_MAX_CHANNELS);
			return EXIT_USAGE;
		}
		o->incoming_channels = (unsigned)v;
		break;
	case OPT_INCOMING_TOKEN:
		o->incoming_token_file = arg;
		break;
	case OPT_INCOMING_PLAIN:
		o->incoming_plaintext = true;
		break;
	case OPT_VF: {
		char err[160];
		if (o->nvfs == VMM_MAX_VFS) {
			fprintf(stderr, "godwit-vmm: at most %u --vf\n", VMM_MAX_VFS);
			return EXIT_USAGE;
		}
		if (sriov_vf_spec_parse(arg, &o->vf_spec[o->nvfs], err, sizeof(err))) {
			fprintf(stderr, "godwit-vmm: --vf %s: %s\n", arg, err);
			return EXIT_USAGE;
		}
		o->vf_spec[o->nvfs].index = o->nvfs;
		o->nvfs++;
		break;
	}
	case OPT_LOG:
		if (gw_log_parse_level(arg, &lvl)) {
			fprintf(stderr, "godwit-vmm: --log-level is error, warn, info or debug\n");
			return EXIT_USAGE;
		}
		gw_log_set_level(lvl);
		break;
	case 'h':
		usage(stdout);
		exit(0);
	case OPT_VERSION:
		printf("godwit-vmm %s\n", GODWIT_VERSION);
		exit(0);
	default:
		usage(stderr);
		return EXIT_USAGE;
	}
	return 0;
}

/* The options together: what one needs of another, and the memory size rule. */
static int check_opts(struct vmm_opts *o)
{
	if (o->incoming) {
		if (!o->control || !o->incoming_token_file) {
			fprintf(stderr, "godwit-vmm: --incoming needs --control and "
					"--incoming-token-file\n");
			return EXIT_USAGE;
		}
		o->start_paused = true;
		if (!o->incoming_channels)
			o->incoming_channels = 1;
	}
	if (!o->mem || (!o->guest && !o->kernel && !o->incoming)) {
		fprintf(stderr, "godwit-vmm: --memory and --kernel (or --guest) are required; see "
				"--help\n");
		return EXIT_USAGE;
	}
	if ((o->guest && o->kernel) || (o->incoming && (o->guest || o->kernel))) {
		fprintf(stderr, "godwit-vmm: give one of --kernel, --guest and --incoming\n");
		return EXIT_USAGE;
	}
	if (o->initrd && !o->kernel) {
		fprintf(stderr, "godwit-vmm: --initrd goes with --kernel\n");
		return EXIT_USAGE;
	}
	if (!o->cmdline)
		o->cmdline = o->kernel ? VMM_LINUX_CMDLINE : "";
	if (o->start_paused && !o->control) {
		fprintf(stderr, "godwit-vmm: --start-paused needs --control (nothing could start "
				"the VM)\n");
		return EXIT_USAGE;
	}
	if (!hv_mem_size_valid(o->mem)) {
		fprintf(stderr, "godwit-vmm: memory size must be " HV_MEM_RULE "\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct vmm_opts *o)
{
	static const struct option longopts[] = {
	    {"memory", required_argument, NULL, 'm'},
	    {"guest", required_argument, NULL, 'g'},
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"cmdline", required_argument, NULL, 'c'},
	    {"serial", required_argument, NULL, 's'},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"hugepages", no_argument, NULL, OPT_HUGE},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"control", required_argument, NULL, OPT_CONTROL},
	    {"start-paused", no_argument, NULL, OPT_PAUSED},
	    {"status-file", required_argument, NULL, OPT_STATUS_FILE},
	    {"incoming", required_argument, NULL, OPT_INCOMING},
	    {"incoming-channels", required_argument, NULL, OPT_INCOMING_CH},
	    {"incoming-token-file", required_argument, NULL, OPT_INCOMING_TOKEN},
	    {"incoming-plaintext", no_argument, NULL, OPT_INCOMING_PLAIN},
	    {"log-level", required_argument, NULL, OPT_LOG},
	    {"vf", required_argument, NULL, OPT_VF},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	*o = (struct vmm_opts){.cpus = 1, .serial = "stdio"};
	int ch;
	while ((ch = getopt_long(argc, argv, "m:g:k:c:s:h", longopts, NULL)) != -1) {
		int rc = parse_opt(ch, optarg, o);
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "godwit-vmm: unexpected argument '%s'; see --help\n", argv[optind]);
		return EXIT_USAGE;
	}
	return check_opts(o);
}

static void json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* A VF configuration as JSON: what the PF agent holds, or what the VMM recorded. */
static void print_vf_config(FILE *f, const struct sriov_vf_config *c)
{
	char mac[18];
	sriov_mac_format(c->mac, mac);
	fprintf(f, "{\"mac\":\"%s\",\"vlans\":[", mac);
	for (unsigned i = 0; i < c->nvlans; i++)
		fprintf(f, "%s%u", i ? "," : "", c->vlans[i]);
	fprintf(f, "],\"mc_hashes\":[");
	for (unsigned i = 0; i < c->nmc; i++)
		fprintf(f, "%s%u", i ? "," : "", c->mc_hashes[i]);
	fprintf(f, "],\"max_frame\":%u,\"promisc\":%s,\"api\":\"%s\"}", c->max_frame,
		c->promisc ? "true" : "false", c->api == IGB_API_11 ? "1.1" : "1.0");
}

static void print_json(FILE *f, struct vmm_ctx *c, enum hv_stop_reason why, int code, int exit_code)
{
	struct hv_exit_stats st;
	hv_vm_exit_stats(c->vm, &st);
	fprintf(f, "{\"result\":");
	json_escape(f, c->outcome ? c->outcome : hv_stop_reason_name(why));
	fprintf(f,
		",\"guest_exit_code\":%d,\"exit_code\":%d,\"reports\":%" PRIu64
		",\"verify_passes\":%" PRIu64 ",\"verify_bad\":%" PRIu64,
		code, exit_code, c->reports, c->last_verify_pass, c->verify_bad_total);
	if (c->have_checksum)
		fprintf(f, ",\"checksum\":\"%016" PRIx64 "\"", c->checksum);
	fprintf(f,
		",\"exits\":{\"io\":%" PRIu64 ",\"mmio\":%" PRIu64 ",\"mmio_unhandled\":%" PRIu64
		",\"hlt\":%" PRIu64 "}",
		st.io, st.mmio, st.mmio_unhandled, st.hlt);
	/* What the guest can find on its PCI bus: tests compare it with what the guest lists. */
	uint16_t bdfs[256];
	unsigned nfn = hv_pci_functions(c->vm, bdfs, 256);
	fprintf(f, ",\"pci\":[");
	for (unsigned i = 0; i < nfn; i++)
		fprintf(f,
			"%s{\"bdf\":\"00:%02x.%u\",\"vendor\":\"0x%04x\",\"device\":\"0x%04x\","
			"\"class\":\"0x%06x\"}",
			i ? "," : "", bdfs[i] >> 3, bdfs[i] & 7,
			(unsigned)hv_pci_cfg_get(c->vm, bdfs[i], 0x00, 2),
			(unsigned)hv_pci_cfg_get(c->vm, bdfs[i], 0x02, 2),
			(unsigned)hv_pci_cfg_get(c->vm, bdfs[i], 0x08, 4) >> 8);
	fprintf(f, "]");
	if (c->o.nvfs)
		fprintf(f, ",\"nic_echoed\":%" PRIu64 ",\"nic_bad\":%" PRIu64 ",\"vfs\":[",
			c->nic_echoed, c->nic_bad);
	for (unsigned i = 0; i < c->o.nvfs; i++) {
		struct sriov_vf_status vs;
		char mac[18];
		sriov_vf_status(c->vfs[i], &vs);
		sriov_mac_format(vs.config.mac, mac);
		fprintf(f,
			"%s{\"name\":\"%s\",\"gen\":%u,\"mac\":\"%s\",\"tx_frames\":%" PRIu64
			",\"rx_frames\":%" PRIu64 ",\"rx_dropped\":%" PRIu64
			",\"rx_no_desc\":%" PRIu64 ",\"rx_filtered\":%" PRIu64
			",\"rx_too_long\":%" PRIu64 ",\"tx_dropped\":%" PRIu64 ",\"irqs\":%" PRIu64
			",\"trapped_accesses\":%" PRIu64 ",\"mbx_requests\":%" PRIu64
			",\"direct_pages\":%u,\"dma_mode\":\"%s\",\"backing\":\"%s\""
			",\"mbx_exchanges\":%" PRIu64 ",\"mbx_exits\":%" PRIu64
			",\"mbx_idle_exits\":%" PRIu64 ",\"mbx_wait_polls\":%" PRIu64,
			i ? "," : "", vs.name, vs.gen.gen, mac, vs.tx_frames, vs.rx_frames,
			vs.rx_dropped, vs.rx_no_desc, vs.rx_filtered, vs.rx_too_long, vs.tx_dropped,
			vs.irqs, vs.trapped_accesses, vs.mbx_requests, vs.direct_pages, vs.dma_mode,
			vs.emulated ? "emulated" : "passthrough", vs.mbx_exchanges, vs.mbx_exits,
			vs.mbx_idle_exits, vs.mbx_wait_polls);
		fprintf(f, ",\"port\":");
		json_escape(f, vs.port);
		fprintf(f, ",\"pf_config\":");
		print_vf_config(f, &vs.config);
		fprintf(f, ",\"recorded\":");
		print_vf_config(f, &vs.record.cfg);
		fprintf(f,
			",\"exchanges\":%" PRIu64 ",\"nacked\":%" PRIu64 ",\"denied\":%" PRIu64 "}",
			vs.record.exchanges, vs.record.nacked, vs.record.denied);
	}
	fprintf(f, "%s}\n", c->o.nvfs ? "]" : "");
}

static int start_incoming(struct vmm_ctx *c, struct vmm_control *ctl)
{
	char token[MIG_TOKEN_LEN + 2] = "";
	FILE *f = fopen(c->o.incoming_token_file, "r");
	if (!f || !fgets(token, sizeof(token), f)) {
		GW_ERR("vm", "cannot read the stream token from %s", c->o.incoming_token_file);
		if (f)
			fclose(f);
		return -EINVAL;
	}
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	struct mig_params p;
	mig_params_default(&p);
	snprintf(p.token, sizeof(p.token), "%s", token);
	p.channels = c->o.incoming_channels;
	p.tls = !c->o.incoming_plaintext;
	struct mig_dest *d;
	int rc = mig_dest_listen(c->vm, c->o.incoming, &p, &d);
	if (rc) {
		GW_ERR("vm", "cannot listen for the incoming migration on %s: %s", c->o.incoming,
		       strerror(-rc));
		return rc;
	}
	vmm_control_set_incoming(ctl, d);
	GW_INFO("vm", "waiting for an incoming migration on %s (%u channel(s), %s)", c->o.incoming,
		p.channels, p.tls ? "TLS 1.3" : "in clear");
	return 0;
}

/* Turns SIGTERM/SIGINT into a clean stop of the VM. */
static void *signal_thread(void *arg)
{
	struct hv_vm *vm = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sig;
	while (sigwait(&set, &sig) == 0) {
		GW_INFO("vm", "signal %d: stopping the VM", sig);
		hv_vm_stop(vm);
	}
	return NULL;
}

/* A file to boot is a regular file this process can read, checked before /dev/kvm is opened.
 * Opened non-blocking: opening a FIFO for reading would wait for a writer, forever. */
static int boot_file_check(const char *opt, const char *path)
{
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "godwit-vmm: cannot read %s '%s': %s\n", opt, path,
			strerror(errno));
		return -EINVAL;
	}
	struct stat st;
	int rc = fstat(fd, &st);
	close(fd);
	if (rc < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "godwit-vmm: %s '%s' is not a regular file (%s)\n", opt, path,
			rc < 0		       ? "cannot stat it"
			: S_ISFIFO(st.st_mode) ? "a FIFO"
			: S_ISDIR(st.st_mode)  ? "a directory"
			: S_ISCHR(st.st_mode)  ? "a character device"
			: S_ISSOCK(st.st_mode) ? "a socket"
					       : "a device");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	gw_log_set_ident("godwit-vmm");
	struct vmm_ctx c = {0};
	int rc = parse_args(argc, argv, &c.o);
	if (rc)
		return rc;
	if (boot_file_check("--guest", c.o.guest) || boot_file_check("--kernel", c.o.kernel) ||
	    boot_file_check("--initrd", c.o.initrd))
		return EXIT_SETUP;
	struct hv_vm_config cfg = {
	    .name = "vm",
	    .mem_size = c.o.mem,
	    .ncpus = c.o.cpus,
	    .hugepages = c.o.hugepages,
	};
	if (hv_console_parse(c.o.serial, &cfg.console)) {
		fprintf(stderr, "godwit-vmm: --serial is stdio, none, file:PATH or unix:PATH\n");
		return EXIT_USAGE;
	}
	/* The kick signal must only reach vCPU threads; block it here so they inherit it
	 * blocked and unblock it themselves. SIGTERM and SIGINT go to one thread that stops
	 * the VM cleanly. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A peer that went away (a migration's other end, a console reader, a control
	 * client) is an error on that one descriptor, never the end of the VM. godwitd ignores
	 * SIGPIPE and its VMMs inherit that; a godwit-vmm started any other way must too. */
	signal(SIGPIPE, SIG_IGN);

	if (hv_vm_create(&cfg, &c.vm))
		return EXIT_SETUP;
	struct hv_vm_events ev = {.report = on_report, .opaque = &c};
	hv_vm_set_events(c.vm, &ev);
	int exit_code;
	struct vmm_control *ctl = NULL;
	for (unsigned i = 0; i < c.o.nvfs; i++) {
		if (sriov_vf_attach(c.vm, &c.o.vf_spec[i], &c.vfs[i])) {
			exit_code = EXIT_SETUP;
			goto out_destroy;
		}
	}
	struct hv_linux_boot_config linux_boot = {
	    .kernel = c.o.kernel, .initrd = c.o.initrd, .cmdline = c.o.cmdline};
	if (c.o.kernel ? hv_vm_boot_linux(c.vm, &linux_boot)
		       : !c.o.incoming && hv_vm_boot_elf(c.vm, c.o.guest, c.o.cmdline)) {
		exit_code = EXIT_SETUP;
		goto out_destroy;
	}
	if (c.o.control) {
		int crc = vmm_control_start(c.vm, c.o.control, &ctl);
		if (crc) {
			GW_ERR("vm", "cannot serve the control socket %s: %s", c.o.control,
			       strerror(-crc));
			exit_code = EXIT_SETUP;
			goto out_destroy;
		}
		vmm_control_set_vfs(ctl, c.vfs, c.o.nvfs);
	}
	if (c.o.incoming && start_incoming(&c, ctl)) {
		exit_code = EXIT_SETUP;
		goto out_control;
	}
	pthread_t sig_thread;
	pthread_create(&sig_thread, NULL, signal_thread, c.vm);
	pthread_detach(sig_thread);
	if (!c.o.start_paused && hv_vm_start(c.vm)) {
		exit_code = EXIT_SETUP;
		goto out_control;
	}
	int wrc = hv_vm_wait(c.vm, c.o.timeout_s ? (int)(c.o.timeout_s * 1000) : -1);
	bool timed_out = wrc == -ETIMEDOUT;
	if (timed_out) {
		GW_WARN("vm", "stopping the VM: --timeout of %" PRIu64 " s reached", c.o.timeout_s);
		hv_vm_stop(c.vm);
		hv_vm_wait(c.vm, -1);
	}
	int code = 0;
	enum hv_stop_reason why = hv_vm_stop_reason(c.vm, &code);
	const char *outcome = vmm_control_outcome(ctl);
	c.outcome = outcome;
	switch (why) {
	case HV_STOP_GUEST_EXIT:
		exit_code = code == 0 ? EXIT_GUEST_OK : EXIT_GUEST_FAILED;
		break;
	case HV_STOP_REQUESTED:
		exit_code = timed_out					     ? EXIT_TIMEOUT
			    : outcome && !strcmp(outcome, "incoming-failed") ? EXIT_INCOMING_FAILED
									     : EXIT_GUEST_OK;
		break;
	default:
		exit_code = EXIT_GUEST_CRASHED;
		break;
	}
	if (c.o.json)
		print_json(stdout, &c, why, code, exit_code);
	if (c.o.status_file) {
		/* Written whole, then renamed: a reader never sees half a result. */
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s.tmp", c.o.status_file);
		FILE *f = fopen(tmp, "w");
		if (f) {
			print_json(f, &c, why, code, exit_code);
			if (fclose(f) == 0)
				rename(tmp, c.o.status_file);
		}
	}
out_control:
	vmm_control_stop(ctl);
out_destroy:
	for (unsigned i = 0; i < c.o.nvfs; i++)
		sriov_vf_detach(c.vfs[i]);
	hv_vm_destroy(c.vm);
	return exit_code;
}
