/* SPDX-License-Identifier: Apache-2.0 */
/* The pool's PFs of real SR-IOV NICs (godwitd --pf): their declaration, and what godwitd does
 * to them at start-up: VFs created, free VFs bound to vfio-pci, each VF's availability. */
#include "sriov_pool.h"

#include "godwit/log.h"
#include "godwit/parse.h"

#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define PF_SYNTAX                                                                                  \
	"use DDDD:BB:DD.F[,vfs=N]: the PF's PCI address as lspci -D shows it, and the VFs "        \
	"godwitd should create (default: the VFs it has)"

/* The one device profile godwit has: Intel 82576 (igb), whose VFs are 8086:10ca. */
#define IGB_VENDOR 0x8086u
#define IGB_VF_DEV 0x10cau

extern char **environ;

int gwd_pool_add_pf(struct gwd_pool *p, const char *arg, char *why, size_t n)
{
	char buf[64], sub[120] = "";
	const char *comma = strchr(arg, ',');
	size_t alen = comma ? (size_t)(comma - arg) : strlen(arg);
	uint64_t vfs = 0;
	snprintf(buf, sizeof(buf), "%.*s", (int)(alen < sizeof(buf) ? alen : sizeof(buf) - 1), arg);
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (gwd_pci_addr_check(buf))
		snprintf(sub, sizeof(sub), "'%.20s' is not a PCI address", buf);
	else if (comma &&
		 (strncmp(comma + 1, "vfs=", 4) || gw_parse_u64(comma + 5, 1, 65535, &vfs)))
		snprintf(sub, sizeof(sub), "'%.40s' is not vfs=N with N 1 or more", comma + 1);
	else if (p->npfs == GWD_PF_MAX)
		snprintf(sub, sizeof(sub), "at most %d PFs (--emul-nic and --pf together)",
			 GWD_PF_MAX);
	for (unsigned i = 0; !sub[0] && i < p->npfs; i++) {
		if (!strcmp(p->pfs[i].address, buf))
			snprintf(sub, sizeof(sub), "PF %s is declared twice", buf);
	}
	p->declared = true;
	if (sub[0]) {
		snprintf(why, n, "bad --pf '%s': %s; " PF_SYNTAX, arg, sub);
		return -EINVAL;
	}
	struct gwd_pf *pf = &p->pfs[p->npfs++];
	memset(pf, 0, sizeof(*pf));
	pf->backend = GWD_BACKEND_VFIO;
	snprintf(pf->address, sizeof(pf->address), "%s", buf);
	pf->want_vfs = (unsigned)vfs;
	return 0;
}

/* modprobe vfio-pci, on the real host only (a fake sysfs tree has no module to load). */
static void load_vfio_pci(const struct gwd_sysfs *s)
{
	char *argv[] = {(char *)"modprobe", (char *)"vfio-pci", NULL};
	pid_t pid;
	int status;
	if (strcmp(s->sys, "/sys") || posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ))
		return;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* -EINVAL when the PF's VFs are not the igb profile's; 0 when they are or nothing says yet. */
static int profile_check(const struct gwd_host_pf *h, char *why, size_t n)
{
	uint16_t vendor = h->vendor, dev = h->vf_device;
	if (!dev && h->nvfs) {
		vendor = h->vfs[0].vendor;
		dev = h->vfs[0].device;
	}
	if (!dev || (vendor == IGB_VENDOR && dev == IGB_VF_DEV))
		return 0;
	snprintf(why, n,
		 "--pf %s: its VFs are %04x:%04x, and godwit has one device profile, igb (Intel "
		 "82576, VFs 8086:10ca); give the PF of an 82576 NIC",
		 h->addr, vendor, dev);
	return -EINVAL;
}

/* The libvirt domain of users holding addr; NULL when none does. */
static const char *user_of(const struct gwd_vf_user *u, unsigned nu, const char *addr)
{
	for (unsigned k = 0; k < nu; k++) {
		if (!strcmp(u[k].addr, addr))
			return u[k].domain;
	}
	return NULL;
}

/* Binds one VF to vfio-pci if it is free of host drivers and of libvirt's domains, and
 * records whether a VM can have it. */
static void vf_setup(struct gwd_inventory *inv, const struct gwd_vf_user *u, unsigned nu,
		     struct gwd_host_vf *hv, struct gwd_vf_slot *slot)
{
	char why[GWD_REASON_SZ];
	const char *domain = user_of(u, nu, hv->addr);
	int rc = 0;
	memset(slot, 0, sizeof(*slot));
	if (domain) {
		snprintf(slot->domain, sizeof(slot->domain), "%s", domain);
	} else {
		bool was_vfio = !strcmp(hv->driver, "vfio-pci");
		rc = inv->ops->vf_bind(inv, hv, why, sizeof(why));
		if (rc == -ENODEV) {
			load_vfio_pci(&inv->sysfs);
			rc = inv->ops->vf_bind(inv, hv, why, sizeof(why));
		}
		slot->bound_here = rc == 0 && !was_vfio;
	}
	inv->ops->vf_check(inv, hv); /* its driver and group, for host info, bound or not */
	if (rc) {
		hv->available = false;
		snprintf(hv->reason, sizeof(hv->reason), "%s", why);
	}
	if (hv->available && (hv->vendor != IGB_VENDOR || hv->device != IGB_VF_DEV)) {
		hv->available = false;
		snprintf(hv->reason, sizeof(hv->reason),
			 "it is %04x:%04x, not an igb VF (8086:10ca)", hv->vendor, hv->device);
	}
	snprintf(slot->host, sizeof(slot->host), "%s", hv->addr);
	snprintf(slot->driver, sizeof(slot->driver), "%s", hv->driver);
	snprintf(slot->group, sizeof(slot->group), "%s", hv->group);
	slot->unavailable = !hv->available;
	snprintf(slot->reason, sizeof(slot->reason), "%s", hv->reason);
}

/* After sriov_numvfs changed: libvirt learns of new VFs from udev a little later than sysfs
 * shows them, so the PF is read again until it has want VFs (about 5 s at most). */
static int pf_reread(struct gwd_inventory *inv, struct gwd_host_pf *h, unsigned want, char *why,
		     size_t n)
{
	char addr[GWD_PCI_ADDR_SZ];
	snprintf(addr, sizeof(addr), "%s", h->addr);
	int rc = inv->ops->pf_read(inv, addr, h, why, n);
	for (int i = 0; rc == 0 && h->nvfs < want && i < 50; i++) {
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
		rc = inv->ops->pf_read(inv, addr, h, why, n);
	}
	if (rc == 0 && h->nvfs < want) {
		snprintf(why, n, "PF %s: %s shows %u VFs, not the %u sriov_numvfs made", addr,
			 inv->ops->kind, h->nvfs, want);
		return -EIO;
	}
	return rc;
}

static int pf_setup(struct gwd_pf *pf, struct gwd_inventory *inv, const struct gwd_vf_user *u,
		    unsigned nu, char *why, size_t n)
{
	struct gwd_host_pf h;
	char sub[400];
	int rc = inv->ops->pf_read(inv, pf->address, &h, sub, sizeof(sub));
	if (rc) {
		snprintf(why, n, "--pf %s: %s", pf->address, sub);
		return rc == -EIO ? -EIO : -EINVAL;
	}
	if ((rc = profile_check(&h, why, n)))
		return rc;
	if (pf->want_vfs) {
		/* libvirt creates no VFs: sriov_numvfs is the one way, for both sources. */
		struct gwd_host_pf sh;
		rc = gwd_host_pf_read(&inv->sysfs, pf->address, &sh, sub, sizeof(sub));
		if (rc == 0)
			rc = gwd_host_pf_set_numvfs(&inv->sysfs, &sh, pf->want_vfs, sub,
						    sizeof(sub));
		if (rc == 0)
			rc = pf_reread(inv, &h, pf->want_vfs, sub, sizeof(sub));
		if (rc) {
			snprintf(why, n, "--pf %s,vfs=%u: %s", pf->address, pf->want_vfs, sub);
			return rc;
		}
	} else if (h.nvfs == 0) {
		snprintf(why, n,
			 "--pf %s: the PF has no VFs (sriov_numvfs %u): add vfs=N (1..%u) for "
			 "godwitd to create them",
			 pf->address, h.numvfs,
			 h.totalvfs < GWD_HOST_MAX_VFS ? h.totalvfs : GWD_HOST_MAX_VFS);
		return -EINVAL;
	}
	if ((rc = profile_check(&h, why, n)))
		return rc;
	sriov_emul_gen(1, &pf->gen); /* an 82576 VF is what godwit's gen1 emulates */
	snprintf(pf->netdev, sizeof(pf->netdev), "%s", h.netdev);
	pf->nvfs = h.nvfs;
	for (unsigned v = 0; v < h.nvfs; v++)
		vf_setup(inv, u, nu, &h.vfs[v], &pf->vfs[v]);
	return 0;
}

int gwd_pool_setup_vfio(struct gwd_pool *p, struct gwd_inventory *inv, char *why, size_t n)
{
	struct gwd_vf_user u[GWD_VF_USERS_MAX];
	unsigned nu = 0;
	bool any = false;
	for (unsigned i = 0; i < p->npfs; i++)
		any |= p->pfs[i].backend == GWD_BACKEND_VFIO;
	if (!any)
		return 0;
	char sub[300];
	int rc = inv->ops->users(inv, u, GWD_VF_USERS_MAX, &nu, sub, sizeof(sub));
	if (rc) {
		snprintf(why, n, "cannot tell which VFs libvirt's domains hold: %s", sub);
		return rc;
	}
	for (unsigned i = 0; i < p->npfs; i++) {
		if (p->pfs[i].backend != GWD_BACKEND_VFIO)
			continue;
		rc = pf_setup(&p->pfs[i], inv, u, nu, why, n);
		if (rc)
			return rc;
	}
	return 0;
}

void gwd_pool_return_vfs(struct gwd_pool *p, struct gwd_inventory *inv)
{
	for (unsigned i = 0; i < p->npfs; i++) {
		for (unsigned v = 0; v < p->pfs[i].nvfs; v++) {
			struct gwd_vf_slot *s = &p->pfs[i].vfs[v];
			if (!s->bound_here || s->vm[0])
				continue;
			struct gwd_host_vf hv = {.vendor = 0};
			char why[300];
			snprintf(hv.addr, sizeof(hv.addr), "%s", s->host);
			if (inv->ops->vf_unbind(inv, &hv, why, sizeof(why)))
				GW_WARN("sriov", "pf%u vf%u (%s) stays on vfio-pci: %s", i, v,
					s->host, why);
			else
				s->bound_here = false;
		}
	}
}
