/* SPDX-License-Identifier: Apache-2.0 */
/* godwit vm create|start|stop|delete|info|list|console. */
#include "cli.h"
#include "libvirt_xml.h"

#include "godwit/parse.h"
#include "godwit/v1/vms.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void vm_usage(FILE *f)
{
	fprintf(f,
		"Usage: godwit vm SUBCOMMAND ...\n"
		"  create NAME --memory SIZE (--kernel BZIMAGE [--initrd FILE] | --guest PATH)\n"
		"              [--cmdline STR] [--cpus N]\n"
		"              [--nic vf[,gen=N][,backend=vfio|emul][,mac=MAC][,trust=on|off]]...\n"
		"                 define a VM (SIZE like 256M or 2G) that boots a Linux kernel\n"
		"                 (a bzImage, with an optional initramfs; its command line\n"
		"                 defaults to console=ttyS0) or godwit's test guest (PATH, an\n"
		"                 x86-64 ELF), with N vCPUs (default 1). The files are on the\n"
		"                 host running godwitd: create checks that it can read them,\n"
		"                 start boots them (and says why when the VMM cannot).\n"
		"                 Each --nic (at most 4) gives it a VF of the host's SR-IOV NICs:\n"
		"                 gen=N asks for generation N (default: any), backend=vfio a\n"
		"                 real VF (godwitd --pf), backend=emul an emulated one\n"
		"                 (--emul-nic; default: either, lowest PF first), mac=MAC sets\n"
		"                 its unicast MAC (default: 02:xx:xx:xx:xx:xx derived from NAME).\n"
		"                 The VM holds its VFs until it is deleted or migrates away.\n"
		"  create [NAME] --from-libvirt-xml FILE\n"
		"                 define a VM from a libvirt domain's XML (virsh dumpxml):\n"
		"                 its memory, vCPUs, kernel, initrd and cmdline, and each\n"
		"                 <interface type='hostdev'> as a NIC on exactly that VF (by PCI\n"
		"                 address) with its MAC and VLAN. Anything godwit cannot honour\n"
		"                 (a <disk>, <graphics>, another kind of interface, ...) is\n"
		"                 refused by name, never dropped. NAME defaults to the domain's\n"
		"                 <name>; no other option goes with it\n"
		"  start NAME     start it (spawns its godwit-vmm)\n"
		"  stop NAME [--force]\n"
		"                 stop it (--force kills the VMM instead of asking it)\n"
		"  delete NAME    forget a stopped VM and its files\n"
		"  info NAME      state, spec, process and console of one VM\n"
		"  list           all VMs\n"
		"  console NAME [--timeout SECS]\n"
		"                 print the serial console until the VM stops, SECS pass, or ^C\n");
}

static const char *state_name(Godwit__V1__VmState s)
{
	switch (s) {
	case GODWIT__V1__VM_STATE__VM_STATE_DEFINED:
		return "defined";
	case GODWIT__V1__VM_STATE__VM_STATE_STARTING:
		return "starting";
	case GODWIT__V1__VM_STATE__VM_STATE_RUNNING:
		return "running";
	case GODWIT__V1__VM_STATE__VM_STATE_PAUSED:
		return "paused";
	case GODWIT__V1__VM_STATE__VM_STATE_STOPPING:
		return "stopping";
	case GODWIT__V1__VM_STATE__VM_STATE_STOPPED:
		return "stopped";
	case GODWIT__V1__VM_STATE__VM_STATE_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

/* nic0      vf pf1 vf0 gen2 (8086:10ca rev 02 api 1.1 queues 2)  02:..  passthrough, uplink none
 * nic1      vf pf2 vf1 gen1 (...)  02:..  passthrough, vfio 0000:00:10.2 */
static void print_nic(size_t i, const Godwit__V1__NicInfo *n)
{
	char name[16];
	snprintf(name, sizeof(name), "nic%zu", i);
	if (strcmp(n->backing, "unbacked") == 0) {
		printf("%-9s %s %s  unbacked: %s\n", name, n->kind, n->mac, n->reason);
		return;
	}
	if (strcmp(n->backing, "emulated") == 0)
		printf("%-9s %s emulated gen%u (%s)  %s  emulated by the VMM (no VF here), uplink "
		       "%s\n",
		       name, n->kind, n->gen ? n->gen->gen : 0, n->gen ? n->gen->summary : "?",
		       n->mac, n->uplink);
	else if (n->backend && !strcmp(n->backend, "vfio"))
		printf("%-9s %s pf%u vf%u gen%u (%s)  %s  %s, vfio %s%s\n", name, n->kind, n->pf,
		       n->vf, n->gen ? n->gen->gen : 0, n->gen ? n->gen->summary : "?", n->mac,
		       n->backing, n->host_address,
		       n->trust && !strcmp(n->trust, "off") ? ", trust off" : "");
	else
		printf("%-9s %s pf%u vf%u gen%u (%s)  %s  %s, uplink %s%s\n", name, n->kind, n->pf,
		       n->vf, n->gen ? n->gen->gen : 0, n->gen ? n->gen->summary : "?", n->mac,
		       n->backing, n->uplink,
		       n->trust && !strcmp(n->trust, "off") ? ", trust off" : "");
	const Godwit__V1__NicRecord *r = n->recorded;
	if (!r)
		return;
	/* What the VMM recorded from the VF's mailbox: what a migration replays. */
	printf("%-9s recorded: mac %s, vlans [", "", r->mac);
	for (size_t k = 0; k < r->n_vlans; k++)
		printf("%s%u", k ? " " : "", r->vlans[k]);
	printf("], %u multicast, max frame %u, api %s; %llu exchanges (%llu denied), mailbox page "
	       "trapped %llu times, %llu exits (%llu outside exchanges)\n",
	       r->multicast, r->max_frame ? r->max_frame : 1518, r->api,
	       (unsigned long long)r->exchanges, (unsigned long long)r->denied,
	       (unsigned long long)r->trap_windows, (unsigned long long)r->mbx_page_exits,
	       (unsigned long long)r->mbx_idle_exits);
	/* Which BAR0 pages the guest reaches without exits, and a migration's DMA mode. */
	printf("%-9s BAR0 pages mapped: ", "");
	for (unsigned p = 0; p < 4; p++)
		printf("%s%u%s", p ? " " : "", p, (r->direct_pages >> p) & 1 ? "" : "(trap)");
	printf(", DMA mode %s\n", r->dma_mode && r->dma_mode[0] ? r->dma_mode : "off");
}

static void print_vm(const Godwit__V1__Vm *vm)
{
	char mem[32], age[32];
	fmt_bytes(vm->spec ? vm->spec->memory_bytes : 0, mem, sizeof(mem));
	fmt_age(vm->started_unix, age, sizeof(age));
	printf("name      %s\n", vm->name);
	printf("state     %s%s%s\n", state_name(vm->state), vm->reason[0] ? ": " : "", vm->reason);
	if (vm->spec) {
		printf("memory    %s\n", mem);
		printf("cpus      %u\n", vm->spec->cpus);
		if (vm->spec->kernel_path && vm->spec->kernel_path[0]) {
			printf("kernel    %s\n", vm->spec->kernel_path);
			printf("initrd    %s\n", vm->spec->initrd_path && vm->spec->initrd_path[0]
						     ? vm->spec->initrd_path
						     : "none");
		} else {
			printf("guest     %s\n", vm->spec->guest_path);
		}
		printf("cmdline   %s\n", vm->spec->cmdline);
	}
	for (size_t i = 0; i < vm->n_nics; i++)
		print_nic(i, vm->nics[i]);
	if (vm->pid)
		printf("pid       %d (up %s)\n", vm->pid, age);
	if (vm->console_path[0])
		printf("console   %s\n", vm->console_path);
	if (vm->exits_io || vm->exits_mmio)
		printf("exits     %llu I/O, %llu MMIO\n", (unsigned long long)vm->exits_io,
		       (unsigned long long)vm->exits_mmio);
}

static int finish_vm(struct cli *c, Godwit__V1__Vm *vm, const char *verb)
{
	if (c->json)
		out_json(&vm->base);
	else if (verb)
		printf("vm %s %s (%s)\n", vm->name, verb, state_name(vm->state));
	else
		print_vm(vm);
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	return CLI_OK;
}

static int one_name(const char *sub, int argc, char **argv, const char **name)
{
	if (optind >= argc)
		return cli_usage_error(sub, "a VM name is required");
	if (optind + 1 < argc)
		return cli_usage_error(sub, "unexpected argument '%s'", argv[optind + 1]);
	*name = argv[optind];
	return CLI_OK;
}

#define NIC_MAX 4

/* "vf[,gen=N][,backend=B][,mac=MAC][,trust=T]" into nic; its strings point into arg. */
static int parse_nic(char *arg, Godwit__V1__NicSpec *nic)
{
	char *save = NULL, *kind = strtok_r(arg, ",", &save);
	uint64_t v;
	if (!kind || strcmp(kind, "vf"))
		return cli_usage_error("vm create",
				       "--nic takes "
				       "vf[,gen=N][,backend=vfio|emul][,mac=MAC][,trust=on|off]");
	nic->kind = kind;
	for (char *kv = strtok_r(NULL, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		if (!strncmp(kv, "gen=", 4) && !gw_parse_u64(kv + 4, 0, 255, &v))
			nic->gen = (uint32_t)v;
		else if (!strncmp(kv, "mac=", 4) && kv[4])
			nic->mac = kv + 4;
		else if (!strcmp(kv, "trust=on") || !strcmp(kv, "trust=off"))
			nic->trust = kv + 6;
		else if (!strcmp(kv, "backend=vfio") || !strcmp(kv, "backend=emul"))
			nic->backend = kv + 8;
		else
			return cli_usage_error(
			    "vm create",
			    "--nic: bad '%s'; use "
			    "vf[,gen=N][,backend=vfio|emul][,mac=MAC][,trust=on|off]"
			    " with N a NIC generation (0 = any)",
			    kv);
	}
	return CLI_OK;
}

/* godwitd opens the files: send an absolute path it can resolve (one relative to this
 * directory, when it exists here; else as given, and godwitd says what is wrong with it). */
static char *abs_path(char *arg, char buf[PATH_MAX])
{
	return arg[0] != '/' && realpath(arg, buf) ? buf : arg;
}

/* godwit vm create [NAME] --from-libvirt-xml FILE: the whole spec from the domain's XML. */
static int vm_create_libvirt(struct cli *c, const char *name, const char *file)
{
	static struct cli_lvx_vm x; /* 12 KiB of paths: off the stack */
	char why[800];
	int rc = cli_lvx_parse_file(file, &x, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "godwit: vm create: %s\n", why);
		return rc == -ENOTSUP || rc == -EINVAL ? CLI_USAGE : CLI_FAILED;
	}
	Godwit__V1__NicSpec nics[CLI_LVX_NIC_MAX], *nicp[CLI_LVX_NIC_MAX];
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = x.memory_bytes;
	spec.cpus = x.cpus;
	spec.kernel_path = x.kernel;
	spec.initrd_path = x.initrd;
	spec.cmdline = x.cmdline;
	spec.nics = nicp;
	for (unsigned i = 0; i < x.nnics; i++) {
		godwit__v1__nic_spec__init(&nics[i]);
		nics[i].kind = (char *)"vf";
		nics[i].backend = (char *)"vfio";
		nics[i].host_address = x.nics[i].host;
		nics[i].mac = x.nics[i].mac;
		nics[i].vlan = x.nics[i].vlan;
		/* libvirt's default is not to trust the guest's filters (MAC changes). */
		nics[i].trust = (char *)(x.nics[i].trust ? "on" : "off");
		nicp[i] = &nics[i];
	}
	spec.n_nics = x.nnics;
	Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
	req.name = (char *)(name ? name : x.name);
	req.spec = &spec;
	Godwit__V1__Vm *vm;
	rc = cli_call(c, &godwit__v1__vms__descriptor, "Create", &req.base,
		      (ProtobufCMessage **)&vm);
	return rc ? rc : finish_vm(c, vm, "created");
}

static int vm_create(struct cli *c, int argc, char **argv)
{
	static const struct option o[] = {
	    {"memory", required_argument, NULL, 'm'},
	    {"guest", required_argument, NULL, 'g'},
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, 'i'},
	    {"cmdline", required_argument, NULL, 'c'},
	    {"cpus", required_argument, NULL, 'C'},
	    {"nic", required_argument, NULL, 'n'},
	    {"from-libvirt-xml", required_argument, NULL, 'X'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *libvirt_xml = NULL;
	int others = 0; /* options other than --from-libvirt-xml */
	Godwit__V1__NicSpec nics[NIC_MAX], *nicp[NIC_MAX];
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.nics = nicp;
	spec.cmdline = (char *)"";
	char guest[PATH_MAX], kernel[PATH_MAX], initrd[PATH_MAX];
	char *guest_path = NULL, *kernel_path = NULL, *initrd_path = NULL;
	bool have_mem = false;
	int ch;
	uint64_t v;
	while ((ch = getopt_long(argc, argv, "m:g:k:c:h", o, NULL)) != -1) {
		others += ch != 'X' && ch != 'h';
		switch (ch) {
		case 'X':
			libvirt_xml = optarg;
			break;
		case 'm':
			if (gw_parse_size(optarg, &spec.memory_bytes))
				return cli_usage_error("vm create",
						       "bad memory size '%s' (try 256M)", optarg);
			have_mem = true;
			break;
		case 'g':
			guest_path = abs_path(optarg, guest);
			break;
		case 'k':
			kernel_path = abs_path(optarg, kernel);
			break;
		case 'i':
			initrd_path = abs_path(optarg, initrd);
			break;
		case 'c':
			spec.cmdline = optarg;
			break;
		case 'C':
			if (gw_parse_u64(optarg, 1, 64, &v))
				return cli_usage_error("vm create", "--cpus takes 1..64");
			spec.cpus = (uint32_t)v;
			break;
		case 'n':
			if (spec.n_nics == NIC_MAX)
				return cli_usage_error("vm create", "at most %d --nic", NIC_MAX);
			godwit__v1__nic_spec__init(&nics[spec.n_nics]);
			if (parse_nic(optarg, &nics[spec.n_nics]))
				return CLI_USAGE;
			nicp[spec.n_nics] = &nics[spec.n_nics];
			spec.n_nics++;
			break;
		case 'h':
			vm_usage(stdout);
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	const char *name = NULL;
	if (libvirt_xml) {
		if (others)
			return cli_usage_error("vm create",
					       "--from-libvirt-xml gives the whole spec: no other "
					       "option goes with it");
		if (optind + 1 < argc)
			return cli_usage_error("vm create", "unexpected argument '%s'",
					       argv[optind + 1]);
		return vm_create_libvirt(c, optind < argc ? argv[optind] : NULL, libvirt_xml);
	}
	int rc = one_name("vm create", argc, argv, &name);
	if (rc)
		return rc;
	/* The spec's strings start as "", not NULL: the options are checked on their own. */
	if (guest_path && kernel_path)
		return cli_usage_error("vm create", "give one of --kernel and --guest, not both");
	if (initrd_path && !kernel_path)
		return cli_usage_error("vm create", "--initrd goes with --kernel");
	if (!have_mem || (!guest_path && !kernel_path))
		return cli_usage_error("vm create",
				       "--memory and --kernel (or --guest) are required");
	if (guest_path)
		spec.guest_path = guest_path;
	if (kernel_path)
		spec.kernel_path = kernel_path;
	if (initrd_path)
		spec.initrd_path = initrd_path;
	Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
	req.name = (char *)name;
	req.spec = &spec;
	Godwit__V1__Vm *vm;
	rc = cli_call(c, &godwit__v1__vms__descriptor, "Create", &req.base,
		      (ProtobufCMessage **)&vm);
	return rc ? rc : finish_vm(c, vm, "created");
}

static int vm_simple(struct cli *c, const char *sub, int argc, char **argv)
{
	static const struct option o[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool force = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "fh", o, NULL)) != -1) {
		if (ch == 'h') {
			vm_usage(stdout);
			return CLI_OK;
		}
		if (ch != 'f')
			return CLI_USAGE;
		if (strcmp(sub, "stop") != 0)
			return cli_usage_error(sub, "--force only applies to 'vm stop'");
		force = true;
	}
	const char *name;
	int rc = one_name(sub, argc, argv, &name);
	if (rc)
		return rc;
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)name;
	ProtobufCMessage *resp;
	if (!strcmp(sub, "start")) {
		char label[128];
		snprintf(label, sizeof(label), "starting %s", name);
		struct progress *p = progress_start(label);
		rc = cli_call(c, &godwit__v1__vms__descriptor, "Start", &ref.base, &resp);
		progress_stop(p);
		return rc ? rc : finish_vm(c, (Godwit__V1__Vm *)resp, "started");
	}
	if (!strcmp(sub, "stop")) {
		Godwit__V1__StopVmRequest req = GODWIT__V1__STOP_VM_REQUEST__INIT;
		req.name = (char *)name;
		req.force = force;
		char label[128];
		snprintf(label, sizeof(label), "stopping %s", name);
		struct progress *p = progress_start(label);
		rc = cli_call(c, &godwit__v1__vms__descriptor, "Stop", &req.base, &resp);
		progress_stop(p);
		return rc ? rc : finish_vm(c, (Godwit__V1__Vm *)resp, "stopped");
	}
	if (!strcmp(sub, "info")) {
		rc = cli_call(c, &godwit__v1__vms__descriptor, "Get", &ref.base, &resp);
		return rc ? rc : finish_vm(c, (Godwit__V1__Vm *)resp, NULL);
	}
	/* delete */
	rc = cli_call(c, &godwit__v1__vms__descriptor, "Delete", &ref.base, &resp);
	if (rc)
		return rc;
	if (c->json)
		printf("{\"deleted\":\"%s\"}\n", name);
	else
		printf("vm %s deleted\n", name);
	protobuf_c_message_free_unpacked(resp, NULL);
	return CLI_OK;
}

/* What a VM boots, for one table cell: "kernel vmlinuz-6.1.0-57-amd64 +initrd" or "guest
 * godwit-test-guest" (the file names; 'vm info' and --json give the paths). */
static void boot_summary(const Godwit__V1__VmSpec *spec, char *out, size_t n)
{
	const char *k = spec && spec->kernel_path ? spec->kernel_path : "";
	const char *g = spec && spec->guest_path ? spec->guest_path : "";
	const char *path = k[0] ? k : g, *slash = strrchr(path, '/');
	if (!path[0]) {
		snprintf(out, n, "-");
		return;
	}
	snprintf(out, n, "%s %s%s", k[0] ? "kernel" : "guest", slash ? slash + 1 : path,
		 k[0] && spec->initrd_path && spec->initrd_path[0] ? " +initrd" : "");
}

static int vm_list(struct cli *c, int argc, char **argv)
{
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			vm_usage(stdout);
			return CLI_OK;
		}
		return cli_usage_error("vm list", "unexpected argument '%s'", argv[1]);
	}
	Godwit__V1__ListVmsRequest req = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	Godwit__V1__ListVmsResponse *r;
	int rc =
	    cli_call(c, &godwit__v1__vms__descriptor, "List", &req.base, (ProtobufCMessage **)&r);
	if (rc)
		return rc;
	if (c->json) {
		out_json(&r->base);
	} else if (r->n_vms == 0) {
		printf("no VMs; create one with 'godwit vm create'\n");
	} else {
		const char *hdr[] = {"NAME",  "STATE", "MEMORY", "CPUS",
				     "BOOTS", "PID",   "UP",	 "REASON"};
		struct table *t = table_new(8, hdr);
		for (size_t i = 0; i < r->n_vms; i++) {
			Godwit__V1__Vm *vm = r->vms[i];
			char mem[32], cpus[16], pid[16], up[32], boots[96];
			boot_summary(vm->spec, boots, sizeof(boots));
			fmt_bytes(vm->spec ? vm->spec->memory_bytes : 0, mem, sizeof(mem));
			snprintf(cpus, sizeof(cpus), "%u", vm->spec ? vm->spec->cpus : 0);
			snprintf(pid, sizeof(pid), vm->pid ? "%d" : "-", vm->pid);
			if (vm->pid)
				fmt_age(vm->started_unix, up, sizeof(up));
			else
				snprintf(up, sizeof(up), "-");
			const char *row[] = {
			    vm->name, state_name(vm->state), mem, cpus, boots, pid, up, vm->reason};
			table_row(t, row);
		}
		table_print(t, stdout);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return CLI_OK;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int vm_console(struct cli *c, int argc, char **argv)
{
	static const struct option o[] = {
	    {"timeout", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t secs = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", o, NULL)) != -1) {
		if (ch == 'h') {
			vm_usage(stdout);
			return CLI_OK;
		}
		if (ch != 'T' || gw_parse_u64(optarg, 1, 86400 * 365, &secs))
			return cli_usage_error("vm console", "--timeout takes seconds");
	}
	const char *name;
	int rc = one_name("vm console", argc, argv, &name);
	if (rc || (rc = cli_connect(c)))
		return rc;
	Godwit__V1__ConsoleRequest req = GODWIT__V1__CONSOLE_REQUEST__INIT;
	req.name = (char *)name;
	struct gw_rpc_stream *s;
	struct gw_rpc_status st;
	if (gw_rpc_stream_open(c->rpc, &godwit__v1__vms__descriptor, "Console", &req.base, -1, &s,
			       &st) != GW_RPC_OK) {
		cli_print_rpc_error(c, &st);
		return CLI_FAILED;
	}
	struct sigaction sa = {.sa_handler = on_sigint};
	sigaction(SIGINT, &sa, NULL);
	time_t end = secs ? time(NULL) + (time_t)secs : 0;
	rc = CLI_OK;
	for (;;) {
		if (interrupted || (end && time(NULL) >= end))
			break;
		ProtobufCMessage *m;
		int r = gw_rpc_stream_next(s, &m, 200, &st);
		if (r == -ETIMEDOUT)
			continue;
		if (r == 0) {
			/* The stream ended: the VM stopped (OK) or the server refused (error). */
			if (st.code != GW_RPC_OK) {
				cli_print_rpc_error(c, &st);
				rc = CLI_FAILED;
			}
			break;
		}
		if (r < 0) {
			cli_print_rpc_error(c, &st);
			rc = CLI_FAILED;
			break;
		}
		Godwit__V1__ConsoleChunk *chunk = (Godwit__V1__ConsoleChunk *)m;
		if (c->json) {
			out_json(m);
		} else {
			fwrite(chunk->data.data, 1, chunk->data.len, stdout);
			fflush(stdout);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	gw_rpc_stream_close(s);
	return rc;
}

int cmd_vm(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		vm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	const char *sub = argv[1];
	argc--;
	argv++;
	optind = 0;
	if (!strcmp(sub, "create"))
		return vm_create(c, argc, argv);
	if (!strcmp(sub, "start") || !strcmp(sub, "stop") || !strcmp(sub, "delete") ||
	    !strcmp(sub, "info"))
		return vm_simple(c, sub, argc, argv);
	if (!strcmp(sub, "list"))
		return vm_list(c, argc, argv);
	if (!strcmp(sub, "console"))
		return vm_console(c, argc, argv);
	return cli_usage_error("vm", "unknown subcommand '%s'; see 'godwit vm --help'", sub);
}
