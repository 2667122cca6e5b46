/* SPDX-License-Identifier: Apache-2.0 */
/* The VM registry and its persistence: DIR/vms/NAME/vm.pb, a VmRecord, replaced atomically. */
#include "daemon.h"

#include "godwit/internal/v1/record.pb-c.h"
#include "godwit/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t gwd_now(void)
{
	return (int64_t)time(NULL);
}

void gwd_vm_dir(const struct gwd *d, const char *name, const char *leaf, char *out, size_t n)
{
	snprintf(out, n, "%s/vms/%s%s%s", d->state_dir, name, leaf ? "/" : "", leaf ? leaf : "");
}

struct gwd_vm *gwd_vm_find(struct gwd *d, const char *name)
{
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		if (strcmp(v->name, name) == 0)
			return v;
	}
	return NULL;
}

int gwd_vm_set_boot(struct gwd_vm *vm, const Godwit__V1__VmSpec *spec)
{
	const char *kernel = spec->kernel_path ? spec->kernel_path : "";
	const char *cmdline = spec->cmdline ? spec->cmdline : "";
	vm->guest_path = strdup(spec->guest_path ? spec->guest_path : "");
	vm->kernel_path = strdup(kernel);
	vm->initrd_path = strdup(spec->initrd_path ? spec->initrd_path : "");
	vm->cmdline = strdup(kernel[0] && !cmdline[0] ? GWD_LINUX_CMDLINE : cmdline);
	return vm->guest_path && vm->kernel_path && vm->initrd_path && vm->cmdline ? 0 : -ENOMEM;
}

void gwd_vm_free(struct gwd_vm *vm)
{
	if (!vm)
		return;
	gw_rpc_client_close(vm->ctl);
	free(vm->guest_path);
	free(vm->kernel_path);
	free(vm->initrd_path);
	free(vm->cmdline);
	free(vm);
}

void gwd_vm_to_pb(const struct gwd *d, const struct gwd_vm *vm, struct gwd_vm_pb *out)
{
	godwit__v1__vm__init(&out->vm);
	godwit__v1__vm_spec__init(&out->spec);
	out->spec.memory_bytes = vm->memory_bytes;
	out->spec.cpus = vm->cpus;
	out->spec.guest_path = vm->guest_path;
	out->spec.kernel_path = vm->kernel_path;
	out->spec.initrd_path = vm->initrd_path;
	out->spec.cmdline = vm->cmdline;
	out->vm.name = (char *)vm->name;
	out->vm.spec = &out->spec;
	out->vm.state = vm->state;
	out->vm.pid = vm->pid;
	out->vm.reason = (char *)vm->reason;
	out->vm.created_unix = vm->created_unix;
	out->vm.started_unix = vm->started_unix;
	out->vm.guest_exit_code = vm->guest_exit_code;
	out->console[0] = '\0';
	if (vm->state == GWD_RUNNING || vm->state == GWD_PAUSED)
		gwd_vm_dir(d, vm->name, "console.sock", out->console, sizeof(out->console));
	out->vm.console_path = out->console;
	gwd_nics_to_pb(d, vm, out);
}

int gwd_vm_persist(struct gwd *d, const struct gwd_vm *vm)
{
	Godwit__Internal__V1__VmRecord rec = GODWIT__INTERNAL__V1__VM_RECORD__INIT;
	struct gwd_vm_pb pb;
	gwd_vm_to_pb(d, vm, &pb);
	rec.vm = &pb.vm;
	rec.pid_start_ticks = vm->pid_start_ticks;
	rec.incoming_id = (char *)vm->incoming_id;
	Godwit__Internal__V1__HeldMac held[GWD_NIC_MAX], *heldp[GWD_NIC_MAX];
	for (unsigned i = 0; i < vm->nnics; i++) {
		if (!vm->nics[i].steered_away)
			continue;
		Godwit__Internal__V1__HeldMac *h = &held[rec.n_held_macs];
		godwit__internal__v1__held_mac__init(h);
		h->nic = i;
		h->mac = (char *)vm->nics[i].held_mac;
		h->trust = vm->nics[i].held_trust;
		heldp[rec.n_held_macs++] = h;
	}
	rec.held_macs = heldp;
	size_t len = godwit__internal__v1__vm_record__get_packed_size(&rec);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	godwit__internal__v1__vm_record__pack(&rec, buf);
	char dir[512], vms[520];
	gwd_vm_dir(d, vm->name, NULL, dir, sizeof(dir));
	snprintf(vms, sizeof(vms), "%s/vms", d->state_dir);
	int rc = 0;
	if (mkdir(dir, 0700) == 0) {
		/* A new VM's directory: durable before its record is. */
		rc = gwd_dir_sync(vms);
	} else if (errno != EEXIST) {
		rc = -errno;
	}
	if (rc == 0)
		rc = gwd_file_replace(dir, "vm.pb", buf, len);
	free(buf);
	if (rc)
		GW_ERR("registry", "cannot save VM %s in %s: %s", vm->name, dir, strerror(-rc));
	return rc;
}

static struct gwd_vm *load_one(struct gwd *d, const char *name)
{
	char path[600];
	gwd_vm_dir(d, name, "vm.pb", path, sizeof(path));
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t buf[65536];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	Godwit__Internal__V1__VmRecord *rec =
	    godwit__internal__v1__vm_record__unpack(NULL, len, buf);
	if (!rec || !rec->vm || !rec->vm->spec || !rec->vm->name || strcmp(rec->vm->name, name)) {
		GW_WARN("registry", "%s is unreadable or not a VM record; ignoring it", path);
		if (rec)
			godwit__internal__v1__vm_record__free_unpacked(rec, NULL);
		return NULL;
	}
	struct gwd_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		goto out;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->memory_bytes = rec->vm->spec->memory_bytes;
	vm->cpus = rec->vm->spec->cpus;
	/* Records written before kernel_path and initrd_path existed read back as "". */
	const Godwit__V1__VmSpec *sp = rec->vm->spec;
	vm->guest_path = strdup(sp->guest_path ? sp->guest_path : "");
	vm->kernel_path = strdup(sp->kernel_path ? sp->kernel_path : "");
	vm->initrd_path = strdup(sp->initrd_path ? sp->initrd_path : "");
	vm->cmdline = strdup(sp->cmdline ? sp->cmdline : "");
	if (!vm->guest_path || !vm->kernel_path || !vm->initrd_path || !vm->cmdline) {
		gwd_vm_free(vm);
		vm = NULL;
		goto out;
	}
	vm->state = rec->vm->state;
	snprintf(vm->reason, sizeof(vm->reason), "%s", rec->vm->reason ? rec->vm->reason : "");
	vm->pid = rec->vm->pid;
	vm->pid_start_ticks = rec->pid_start_ticks;
	vm->created_unix = rec->vm->created_unix;
	vm->started_unix = rec->vm->started_unix;
	vm->guest_exit_code = rec->vm->guest_exit_code;
	vm->pidfd = -1;
	if (rec->incoming_id && strlen(rec->incoming_id) < sizeof(vm->incoming_id))
		snprintf(vm->incoming_id, sizeof(vm->incoming_id), "%s", rec->incoming_id);
	gwd_nics_from_pb(vm, rec->vm);
	for (size_t i = 0; i < rec->n_held_macs; i++) {
		const Godwit__Internal__V1__HeldMac *h = rec->held_macs[i];
		struct gwd_nic *nic = h->nic < vm->nnics ? &vm->nics[h->nic] : NULL;
		if (!nic || !h->mac || gwd_validate_mac(h->mac, NULL, 0)) {
			GW_WARN(name, "%s: a held MAC for NIC %u is not valid; ignoring it", path,
				h->nic);
			continue;
		}
		nic->steered_away = true;
		nic->held_trust = h->trust;
		snprintf(nic->held_mac, sizeof(nic->held_mac), "%s", h->mac);
	}
out:
	godwit__internal__v1__vm_record__free_unpacked(rec, NULL);
	return vm;
}

int gwd_registry_load(struct gwd *d)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/vms", d->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int rc = -errno;
		GW_ERR("registry", "cannot create %s: %s", dir, strerror(errno));
		return rc;
	}
	DIR *dh = opendir(dir);
	if (!dh)
		return -errno;
	struct dirent *e;
	unsigned n = 0;
	while ((e = readdir(dh))) {
		char why[160];
		if (e->d_name[0] == '.' || gwd_validate_name(e->d_name, why, sizeof(why)))
			continue;
		struct gwd_vm *vm = load_one(d, e->d_name);
		if (!vm)
			continue;
		vm->next = d->vms;
		d->vms = vm;
		n++;
	}
	closedir(dh);
	gwd_nics_rebuild(d);
	GW_INFO("registry", "%u VM definition(s) loaded from %s", n, dir);
	return 0;
}

static int rm_tree(const char *path)
{
	DIR *dh = opendir(path);
	if (!dh)
		return errno == ENOENT ? 0 : -errno;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[1024];
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		int r = e->d_type == DT_DIR ? rm_tree(p) : (unlink(p) < 0 ? -errno : 0);
		if (r && r != -ENOENT && rc == 0)
			rc = r;
	}
	closedir(dh);
	if (rmdir(path) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int gwd_vm_remove_files(struct gwd *d, const char *name)
{
	char dir[512], vms[520];
	gwd_vm_dir(d, name, NULL, dir, sizeof(dir));
	snprintf(vms, sizeof(vms), "%s/vms", d->state_dir);
	/* The record first: without it the directory is no VM, whatever else stays in it. */
	int rc = gwd_file_remove(dir, "vm.pb");
	if (rc == -ENOTDIR)
		rc = 0;
	if (rc)
		return rc;
	int left = rm_tree(dir);
	if (left == 0)
		left = gwd_dir_sync(vms);
	if (left)
		GW_WARN(name, "VM removed, but files of it stay in %s: %s", dir, strerror(-left));
	return 0;
}
