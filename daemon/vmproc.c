/* SPDX-License-Identifier: Apache-2.0 */
/* Supervision of godwit-vmm processes: spawn in their own session (they outlive godwitd),
 * watch through a pidfd, stop over the control socket, re-adopt after a daemon restart. */
#include "daemon.h"

#include "godwit/deadline.h"
#include "godwit/log.h"
#include "godwit/vmm/v1/vmm.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

uint64_t gwd_proc_start_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Field 22 (starttime), counted after the parenthesised command name (proc(5)). */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

int gwd_vmm_call(struct gwd *d, const char *name, const char *method, const ProtobufCMessage *req,
		 ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st)
{
	char target[600], sock[560];
	gwd_vm_dir(d, name, "control.sock", sock, sizeof(sock));
	snprintf(target, sizeof(target), "unix:%s", sock);
	struct gw_rpc_client *c;
	*resp = NULL;
	st->code = GW_RPC_UNAVAILABLE;
	snprintf(st->message, sizeof(st->message), "cannot open the control socket");
	int rc = gw_rpc_client_open(target, NULL, 0, &c);
	if (rc)
		return rc;
	enum gw_rpc_code code =
	    gw_rpc_unary(c, &godwit__vmm__v1__vmm__descriptor, method, req, resp, timeout_ms, st);
	gw_rpc_client_close(c);
	return code == GW_RPC_OK ? 0 : gw_rpc_errno_from_code(code);
}

int gwd_vmm_call_kept(struct gwd *d, struct gwd_vm *vm, const char *method,
		      const ProtobufCMessage *req, ProtobufCMessage **resp, int timeout_ms,
		      struct gw_rpc_status *st)
{
	*resp = NULL;
	if (!vm->ctl) {
		char target[600], sock[560];
		gwd_vm_dir(d, vm->name, "control.sock", sock, sizeof(sock));
		snprintf(target, sizeof(target), "unix:%s", sock);
		if (gw_rpc_client_open(target, NULL, 0, &vm->ctl)) {
			vm->ctl = NULL;
			st->code = GW_RPC_UNAVAILABLE;
			snprintf(st->message, sizeof(st->message),
				 "cannot open the control socket");
			return -ECONNREFUSED;
		}
	}
	enum gw_rpc_code code = gw_rpc_unary(vm->ctl, &godwit__vmm__v1__vmm__descriptor, method,
					     req, resp, timeout_ms, st);
	return code == GW_RPC_OK ? 0 : gw_rpc_errno_from_code(code);
}

static int control_call(struct gwd *d, const char *name, const char *method, int timeout_ms,
			Godwit__Vmm__V1__VmmStatus **out, struct gw_rpc_status *st)
{
	Godwit__Vmm__V1__ControlRequest req = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rc = gwd_vmm_call(d, name, method, &req.base, &resp, timeout_ms, st);
	enum gw_rpc_code code = rc ? gw_rpc_code_from_errno(rc) : GW_RPC_OK;
	if (code != GW_RPC_OK)
		return rc;
	if (out)
		*out = (Godwit__Vmm__V1__VmmStatus *)resp;
	else
		protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/* What godwit-vmm left in its status file as it ended (docs/godwit-vmm.md). */
struct vmm_result {
	bool present;
	int exit_code;
	int guest_exit_code;
	char result[32];
};

static void read_result(struct gwd *d, const char *name, struct vmm_result *r)
{
	memset(r, 0, sizeof(*r));
	char path[600], buf[2048];
	gwd_vm_dir(d, name, "exit.json", path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strstr(buf, "\"exit_code\":");
	char *g = strstr(buf, "\"guest_exit_code\":");
	char *s = strstr(buf, "\"result\":\"");
	if (!p || !g || !s)
		return;
	r->present = true;
	r->exit_code = atoi(p + 12);
	r->guest_exit_code = atoi(g + 18);
	sscanf(s + 10, "%31[^\"]", r->result);
}

/* Sets state and reason from how the VMM ended; caller holds d->lock. */
static void apply_outcome(struct gwd *d, struct gwd_vm *vm, bool exited, int code, int sig,
			  const struct vmm_result *r)
{
	char log[560];
	gwd_vm_dir(d, vm->name, "vmm.log", log, sizeof(log));
	bool operator_stop = vm->state == GWD_STOPPING;
	if (!exited) {
		vm->state = operator_stop ? GWD_STOPPED : GWD_FAILED;
		if (sig)
			snprintf(vm->reason, sizeof(vm->reason), "%s (signal %d)",
				 operator_stop ? "killed on operator request"
					       : "godwit-vmm was killed",
				 sig);
		else
			snprintf(
			    vm->reason, sizeof(vm->reason),
			    "%s: godwit-vmm ended without reporting a result (crashed or killed)",
			    operator_stop ? "stopped" : "failed");
		return;
	}
	vm->guest_exit_code = r && r->present ? r->guest_exit_code : 0;
	switch (code) {
	case 0:
	case 1:
		vm->state = GWD_STOPPED;
		if (r && r->present && strcmp(r->result, "migrated") == 0)
			snprintf(vm->reason, sizeof(vm->reason), "migrated to %s",
				 vm->migrated_to[0] ? vm->migrated_to : "another host");
		else if (r && r->present && strcmp(r->result, "stopped") == 0)
			snprintf(vm->reason, sizeof(vm->reason), "stopped on request");
		else
			snprintf(vm->reason, sizeof(vm->reason), "guest exited with code %d",
				 vm->guest_exit_code);
		break;
	case 6:
		vm->state = GWD_FAILED;
		snprintf(vm->reason, sizeof(vm->reason), "incoming migration failed; see %s", log);
		break;
	case 4:
		vm->state = GWD_FAILED;
		snprintf(vm->reason, sizeof(vm->reason), "guest crashed (%s); see %s",
			 r && r->present ? r->result : "unknown", log);
		break;
	default:
		vm->state = GWD_FAILED;
		snprintf(vm->reason, sizeof(vm->reason),
			 "godwit-vmm ended with exit code %d; see %s", code, log);
		break;
	}
}

struct monitor_arg {
	struct gwd *d;
	struct gwd_vm *vm;
};

static void *monitor_main(void *arg)
{
	struct monitor_arg a = *(struct monitor_arg *)arg;
	free(arg);
	struct gwd *d = a.d;
	struct gwd_vm *vm = a.vm;
	gw_log_thread_fields(vm->name, NULL);
	struct pollfd p = {.fd = vm->pidfd, .events = POLLIN};
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	int status = 0;
	bool reaped = vm->is_child && waitpid(vm->pid, &status, 0) == vm->pid;
	struct vmm_result r;
	read_result(d, vm->name, &r);
	pthread_mutex_lock(&d->lock);
	if (reaped)
		apply_outcome(d, vm, WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : 0,
			      WIFSIGNALED(status) ? WTERMSIG(status) : 0, &r);
	else if (r.present)
		apply_outcome(d, vm, true, r.exit_code, 0, &r);
	else
		apply_outcome(d, vm, false, 0, 0, NULL);
	GW_INFO(vm->name, "godwit-vmm (pid %d) ended: %s", (int)vm->pid, vm->reason);
	close(vm->pidfd);
	vm->pidfd = -1;
	vm->pid = 0;
	vm->pid_start_ticks = 0;
	vm->monitor_running = false;
	gwd_vm_persist(d, vm);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Caller holds d->lock. */
static int start_monitor(struct gwd *d, struct gwd_vm *vm)
{
	struct monitor_arg *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->d = d;
	a->vm = vm;
	vm->monitor_running = true;
	if (pthread_create(&vm->monitor, NULL, monitor_main, a) != 0) {
		free(a);
		vm->monitor_running = false;
		return -EAGAIN;
	}
	pthread_detach(vm->monitor);
	return 0;
}

static void log_tail(const char *path, char *out, size_t n)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512], last[512] = "";
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, " error "))
			snprintf(last, sizeof(last), "%s", line);
	}
	fclose(f);
	char *nl = strchr(last, '\n');
	if (nl)
		*nl = '\0';
	char *msg = strstr(last, " error ");
	snprintf(out, n, "%s", msg ? msg + 7 : last);
}

/* godwit-vmm's --vf value for a NIC backed by a VF of this host; uplink goes last, as
 * godwit-vmm reads the rest of the value as its spec. The PF table is fixed at start-up,
 * so reading it needs no lock. */
static void vf_arg(const struct gwd *d, const struct gwd_nic *nic, char *out, size_t n)
{
	const char *uplink = nic->emulated ? (d->emul_uplink[0] ? d->emul_uplink : "none")
			     : nic->pf < d->pool.npfs ? d->pool.pfs[nic->pf].uplink
						      : "none";
	/* Queue pages straight into the guest: no exits in steady state. A migration's DMA
	 * mode traps them while it runs. */
	if (!nic->emulated && nic->backend == GWD_BACKEND_VFIO) {
		/* A real VF: godwit-vmm reads its generation from the device, and its wire is
		 * the PF's own port, so no gen= and no uplink. */
		snprintf(out, n, "pf=%u,vf=%u,mac=%s,backend=vfio,host=%s,pages=direct,trust=%s",
			 nic->pf, nic->vf, nic->mac, nic->host, nic->untrusted ? "off" : "on");
		return;
	}
	snprintf(out, n, "pf=%u,vf=%u,gen=%u,mac=%s,pages=direct,trust=%s,backing=%s,uplink=%s",
		 nic->pf, nic->vf, nic->gen.gen, nic->mac, nic->untrusted ? "off" : "on",
		 nic->emulated ? "emulated" : "passthrough", uplink);
}

static int boot_file_check(const char *what, const char *path, char *why, size_t n)
{
	if (!path || !path[0])
		return 0;
	/* Opened, not access()ed: what counts is what godwitd (and the godwit-vmm it spawns,
	 * with its credentials) can read. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, n, "%s %s cannot be read by godwitd: %s", what, path,
			 strerror(errno));
		return -EINVAL;
	}
	struct stat st;
	int rc = fstat(fd, &st);
	close(fd);
	if (rc < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, n, "%s %s is not a regular file", what, path);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		snprintf(why, n, "%s %s is empty", what, path);
		return -EINVAL;
	}
	return 0;
}

int gwd_boot_files_check(const char *guest, const char *kernel, const char *initrd, char *why,
			 size_t n)
{
	int rc = boot_file_check("guest image", guest, why, n);
	if (!rc)
		rc = boot_file_check("kernel", kernel, why, n);
	if (!rc)
		rc = boot_file_check("initrd", initrd, why, n);
	return rc;
}

/* The files of a VM's godwit-vmm in its state directory. */
struct vmm_files {
	char console[560], control[560], log[560], exit[560];
};

/* The paths, checked, and the previous run's sockets and result removed. */
static int vmm_files(const struct gwd *d, const struct gwd_vm *vm, bool incoming,
		     struct vmm_files *f, char *why, size_t n)
{
	gwd_vm_dir(d, vm->name, "console.sock", f->console, sizeof(f->console));
	gwd_vm_dir(d, vm->name, "control.sock", f->control, sizeof(f->control));
	gwd_vm_dir(d, vm->name, "vmm.log", f->log, sizeof(f->log));
	gwd_vm_dir(d, vm->name, "exit.json", f->exit, sizeof(f->exit));
	if (strlen(f->console) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(why, n, "state directory path is too long for unix sockets (%zu bytes)",
			 strlen(f->console));
		return -ENAMETOOLONG;
	}
	if (!incoming) {
		int rc =
		    gwd_boot_files_check(vm->guest_path, vm->kernel_path, vm->initrd_path, why, n);
		if (rc)
			return rc;
	}
	unlink(f->console);
	unlink(f->control);
	unlink(f->exit);
	return 0;
}

/* godwit-vmm's command line; argv points into the other members. */
struct vmm_cmdline {
	char mem[32], cpus[16], serial[600], chans[16], vfs[GWD_NIC_MAX][256];
	char *argv[24 + 2 * GWD_NIC_MAX];
};

static void vmm_cmdline(struct gwd *d, struct gwd_vm *vm, const struct vmm_files *f,
			const char *token_file, unsigned channels, struct vmm_cmdline *c)
{
	snprintf(c->mem, sizeof(c->mem), "%llu", (unsigned long long)vm->memory_bytes);
	snprintf(c->cpus, sizeof(c->cpus), "%u", vm->cpus ? vm->cpus : 1);
	snprintf(c->serial, sizeof(c->serial), "unix:%s", f->console);
	snprintf(c->chans, sizeof(c->chans), "%u", channels);
	char **argv = c->argv;
	int a = 0;
	argv[a++] = d->vmm_path;
	argv[a++] = (char *)"--memory";
	argv[a++] = c->mem;
	argv[a++] = (char *)"--cpus";
	argv[a++] = c->cpus;
	argv[a++] = (char *)"--serial";
	argv[a++] = c->serial;
	argv[a++] = (char *)"--control";
	argv[a++] = (char *)f->control;
	argv[a++] = (char *)"--start-paused";
	argv[a++] = (char *)"--status-file";
	argv[a++] = (char *)f->exit;
	if (token_file) {
		argv[a++] = (char *)"--incoming";
		argv[a++] = d->stream_host;
		argv[a++] = (char *)"--incoming-channels";
		argv[a++] = c->chans;
		argv[a++] = (char *)"--incoming-token-file";
		argv[a++] = (char *)token_file;
		if (vm->incoming_plaintext)
			argv[a++] = (char *)"--incoming-plaintext";
	} else if (vm->kernel_path[0]) {
		argv[a++] = (char *)"--kernel";
		argv[a++] = vm->kernel_path;
		if (vm->initrd_path[0]) {
			argv[a++] = (char *)"--initrd";
			argv[a++] = vm->initrd_path;
		}
		argv[a++] = (char *)"--cmdline";
		argv[a++] = vm->cmdline;
	} else {
		argv[a++] = (char *)"--guest";
		argv[a++] = vm->guest_path;
		argv[a++] = (char *)"--cmdline";
		argv[a++] = vm->cmdline;
	}
	for (unsigned i = 0; i < vm->nnics; i++) {
		vf_arg(d, &vm->nics[i], c->vfs[i], sizeof(c->vfs[i]));
		argv[a++] = (char *)"--vf";
		argv[a++] = c->vfs[i];
	}
	argv[a] = NULL;
}

/* In the forked child: its own session (the VM survives godwitd stopping or restarting), the
 * log as stdout and stderr, no inherited descriptor or blocked signal, then godwit-vmm. */
static void __attribute__((noreturn)) exec_vmm(const char *path, const char *logp, char **argv)
{
	setsid();
	int lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int nfd = open("/dev/null", O_RDONLY);
	if (nfd >= 0)
		dup2(nfd, 0);
	if (lfd >= 0) {
		dup2(lfd, 1);
		dup2(lfd, 2);
	}
	syscall(SYS_close_range, 3, ~0u, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(path, argv);
	dprintf(2, "godwitd: cannot run %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* The forked VMM becomes vm's: its pid, a pidfd, and a monitor that sees it end. */
static int adopt_child(struct gwd *d, struct gwd_vm *vm, pid_t pid, char *why, size_t n)
{
	int pidfd = pidfd_open_(pid);
	pthread_mutex_lock(&d->lock);
	vm->pid = pid;
	vm->pidfd = pidfd;
	vm->is_child = true;
	vm->pid_start_ticks = gwd_proc_start_ticks(pid);
	if (pidfd >= 0)
		start_monitor(d, vm);
	/* On disk right after the fork, pid and start time together: a godwitd that dies from
	 * here on finds this VMM again after its restart (and never takes a reused pid for it),
	 * instead of leaving it orphaned for a later start to duplicate. */
	if (pidfd >= 0)
		gwd_vm_persist(d, vm);
	pthread_mutex_unlock(&d->lock);
	if (pidfd < 0) {
		snprintf(why, n, "pidfd_open failed: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ENOSYS;
	}
	return 0;
}

/* How long a VMM may take to set up before it answers on its control socket: opening VFIO
 * devices, pinning guest RAM in the IOMMU and unpacking a kernel (cold cache) took 18 s for a
 * 256 MiB Linux guest with a VFIO VF in a test host under TCG; on hardware it is well under a
 * second. Only a VMM that hangs in set-up meets it. */
#define VMM_SETUP_MS 60000

/* Waits up to VMM_SETUP_MS for the VMM's control socket to answer; a VMM that ended or never
 * answered is an error (the latter is killed). */
static int await_control(struct gwd *d, struct gwd_vm *vm, const struct vmm_files *f, char *why,
			 size_t n)
{
	struct gw_rpc_status st;
	uint64_t end = gw_now_ms() + VMM_SETUP_MS;
	while (gw_now_ms() < end) {
		pthread_mutex_lock(&d->lock);
		bool gone = vm->pid == 0;
		pthread_mutex_unlock(&d->lock);
		if (gone) {
			char tail[300];
			log_tail(f->log, tail, sizeof(tail));
			snprintf(why, n, "godwit-vmm exited during start-up: %s",
				 tail[0] ? tail : "see vmm.log");
			return -EIO;
		}
		if (access(f->control, F_OK) == 0 &&
		    control_call(d, vm->name, "Status", 2000, NULL, &st) == 0)
			return 0;
		usleep(50 * 1000);
	}
	char tail[300];
	log_tail(f->log, tail, sizeof(tail));
	snprintf(why, n,
		 "godwit-vmm did not open its control socket within %d s (its log ends: %s)",
		 VMM_SETUP_MS / 1000, tail[0] ? tail : "nothing");
	pthread_mutex_lock(&d->lock);
	if (vm->pidfd >= 0)
		pidfd_kill(vm->pidfd, SIGKILL);
	pthread_mutex_unlock(&d->lock);
	return -ETIMEDOUT;
}

/* Forks godwit-vmm for vm: paused, with its console and control sockets; incoming: a
 * stream token file and channel count for a VMM that receives a migration instead of
 * booting. Returns once the control socket answers. */
static int spawn_vmm(struct gwd *d, struct gwd_vm *vm, const char *token_file, unsigned channels,
		     char *why, size_t n)
{
	struct vmm_files f;
	int rc = vmm_files(d, vm, token_file != NULL, &f, why, n);
	if (rc)
		return rc;
	struct vmm_cmdline c;
	vmm_cmdline(d, vm, &f, token_file, channels, &c);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, n, "cannot fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0)
		exec_vmm(d->vmm_path, f.log, c.argv);
	rc = adopt_child(d, vm, pid, why, n);
	if (rc)
		return rc;
	return await_control(d, vm, &f, why, n);
}

int gwd_vm_spawn(struct gwd *d, struct gwd_vm *vm, char *why, size_t n)
{
	int rc = spawn_vmm(d, vm, NULL, 0, why, n);
	if (rc)
		return rc;
	struct gw_rpc_status st;
	rc = control_call(d, vm->name, "Start", 5000, NULL, &st);
	if (rc) {
		snprintf(why, n, "godwit-vmm did not start the VM: %s", st.message);
		pthread_mutex_lock(&d->lock);
		if (vm->pidfd >= 0)
			pidfd_kill(vm->pidfd, SIGKILL);
		pthread_mutex_unlock(&d->lock);
	}
	return rc;
}

int gwd_vm_spawn_incoming(struct gwd *d, struct gwd_vm *vm, unsigned channels, const char *token,
			  uint32_t *ports, size_t *nports, char *why, size_t n)
{
	char tokp[560];
	gwd_vm_dir(d, vm->name, "stream.token", tokp, sizeof(tokp));
	int fd = open(tokp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s\n", token) < 0) {
		snprintf(why, n, "cannot write %s: %s", tokp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	int rc = spawn_vmm(d, vm, tokp, channels, why, n);
	if (rc)
		return rc;
	/* The VMM serves its control socket before it listens for the stream (the listeners
	 * register with the control server), so a first Status may come before the ports exist:
	 * ask until they do, the VMM says it failed, or 15 s pass (a loaded host). */
	Godwit__Vmm__V1__VmmStatus *st = NULL;
	struct gw_rpc_status rs;
	int64_t deadline = gwd_now() + 15;
	for (;;) {
		rc = control_call(d, vm->name, "Status", 5000, &st, &rs);
		if (rc) {
			snprintf(why, n, "the incoming VMM does not answer: %s", rs.message);
			break;
		}
		if (st->n_incoming_ports == channels)
			break;
		bool failed =
		    st->incoming_state == GODWIT__VMM__V1__INCOMING_STATE__INCOMING_STATE_FAILED;
		if (failed || gwd_now() >= deadline) {
			snprintf(why, n,
				 "the incoming VMM did not report its %u stream port(s)%s%s",
				 channels, failed ? ": " : " within 15 s",
				 failed && st->incoming_error ? st->incoming_error : "");
			rc = -EIO;
			break;
		}
		protobuf_c_message_free_unpacked(&st->base, NULL);
		st = NULL;
		usleep(50 * 1000);
	}
	if (rc) {
		if (st)
			protobuf_c_message_free_unpacked(&st->base, NULL);
		return rc;
	}
	for (size_t i = 0; i < st->n_incoming_ports; i++)
		ports[i] = st->incoming_ports[i];
	*nports = st->n_incoming_ports;
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return 0;
}

uint64_t gwd_memory_in_use(struct gwd *d)
{
	uint64_t sum = 0;
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		if (v->monitor_running || v->state == GWD_STARTING)
			sum += v->memory_bytes;
	}
	return sum;
}

void gwd_vm_forget(struct gwd *d, struct gwd_vm *vm)
{
	gwd_nics_release(d, vm);
	for (struct gwd_vm **pp = &d->vms; *pp; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	gwd_vm_remove_files(d, vm->name);
	gwd_vm_free(vm);
}

int gwd_vm_stop(struct gwd *d, struct gwd_vm *vm, bool force, char *why, size_t n)
{
	struct gw_rpc_status st;
	if (!force) {
		int rc = control_call(d, vm->name, "Stop", 5000, NULL, &st);
		if (rc)
			GW_WARN(vm->name,
				"control socket did not take Stop (%s); killing godwit-vmm",
				st.message);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += force ? 0 : 15;
	pthread_mutex_lock(&d->lock);
	while (vm->monitor_running && !force) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	}
	if (vm->monitor_running && vm->pidfd >= 0)
		pidfd_kill(vm->pidfd, SIGKILL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (vm->monitor_running) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	}
	int rc = vm->monitor_running ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&d->lock);
	if (rc)
		snprintf(why, n, "godwit-vmm (pid %d) did not exit", (int)vm->pid);
	return rc;
}

void gwd_vm_adopt(struct gwd *d, struct gwd_vm *vm)
{
	Godwit__V1__VmState s = vm->state;
	if (s != GWD_RUNNING && s != GWD_PAUSED && s != GWD_STARTING && s != GWD_STOPPING)
		return;
	bool same = vm->pid > 0 && vm->pid_start_ticks &&
		    gwd_proc_start_ticks(vm->pid) == vm->pid_start_ticks;
	if (same) {
		Godwit__Vmm__V1__VmmStatus *st = NULL;
		struct gw_rpc_status rs;
		int rc = control_call(d, vm->name, "Status", 3000, &st, &rs);
		int pidfd = pidfd_open_(vm->pid);
		if (pidfd >= 0) {
			vm->pidfd = pidfd;
			vm->is_child = false;
			/* CREATED: never started (--start-paused, or an incoming VMM). */
			bool paused =
			    rc == 0 && (st->state == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_PAUSED ||
					st->state == GODWIT__VMM__V1__RUN_STATE__RUN_STATE_CREATED);
			/* An incoming VM whose VMM does not answer is taken as not started: it
			 * only runs once a commit is recorded (api_peer.c reconciles it). */
			if (rc && vm->incoming_id[0])
				paused = true;
			vm->state = paused ? GWD_PAUSED : GWD_RUNNING;
			pthread_mutex_lock(&d->lock);
			start_monitor(d, vm);
			if (s == GWD_STARTING && paused && !vm->incoming_id[0]) {
				/* godwitd died while it started this VM: its VMM never got the
				 * Start. It is ended rather than left for a second start to
				 * duplicate; the operator starts the VM again. */
				vm->state = GWD_STOPPING;
				snprintf(vm->reason, sizeof(vm->reason),
					 "its start was interrupted by a restart of godwitd");
				pidfd_kill(vm->pidfd, SIGKILL);
				GW_WARN(vm->name,
					"godwit-vmm (pid %d) was still being started when godwitd "
					"stopped: killed; start the VM again",
					(int)vm->pid);
			}
			pthread_mutex_unlock(&d->lock);
			if (vm->state != GWD_STOPPING)
				GW_INFO(vm->name, "re-adopted running godwit-vmm (pid %d)%s",
					(int)vm->pid,
					rc ? "; its control socket does not answer" : "");
			if (st)
				protobuf_c_message_free_unpacked(&st->base, NULL);
			return;
		}
		if (st)
			protobuf_c_message_free_unpacked(&st->base, NULL);
	}
	struct vmm_result r;
	read_result(d, vm->name, &r);
	if (r.present) {
		apply_outcome(d, vm, true, r.exit_code, 0, &r);
	} else {
		vm->state = GWD_FAILED;
		snprintf(vm->reason, sizeof(vm->reason),
			 "godwit-vmm (pid %d) vanished while godwitd was not running",
			 (int)vm->pid);
	}
	GW_INFO(vm->name, "was running before the restart; now %s", vm->reason);
	vm->pid = 0;
	vm->pid_start_ticks = 0;
	gwd_vm_persist(d, vm);
}
