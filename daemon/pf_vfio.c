/* SPDX-License-Identifier: Apache-2.0 */
/* The pool's PFs of real SR-IOV NICs (godwitd --pf): their declaration, and what godwitd does
 * to them at start-up: VFs created, free VFs bound to vfio-pci, each VF's availability. */
#include "sriov_pool.h"

#include "godwit/parse.h"

#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

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

/* Binds one VF to vfio-pci if it is free of host drivers and records whether a VM can have
 * it. */
static void vf_setup(const struct gwd_sysfs *s, struct gwd_host_vf *hv, struct gwd_vf_slot *slot)
{
	char why[GWD_REASON_SZ];
	int rc = gwd_host_vf_bind(s, hv, why, sizeof(why));
	if (rc == -ENODEV) {
		load_vfio_pci(s);
		rc = gwd_host_vf_bind(s, hv, why, sizeof(why));
	}
	gwd_host_vf_check(s, hv); /* its driver and group, for host info, bound or not */
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

static int pf_setup(struct gwd_pf *pf, const struct gwd_sysfs *s, char *why, size_t n)
{
	struct gwd_host_pf h;
	char sub[400];
	int rc = gwd_host_pf_read(s, pf->address, &h, sub, sizeof(sub));
	if (rc) {
		snprintf(why, n, "--pf %s: %s", pf->address, sub);
		return -EINVAL;
	}
	if ((rc = profile_check(&h, why, n)))
		return rc;
	if (pf->want_vfs) {
		rc = gwd_host_pf_set_numvfs(s, &h, pf->want_vfs, sub, sizeof(sub));
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
		vf_setup(s, &h.vfs[v], &pf->vfs[v]);
	return 0;
}

int gwd_pool_setup_vfio(struct gwd_pool *p, const struct gwd_sysfs *s, char *why, size_t n)
{
	for (unsigned i = 0; i < p->npfs; i++) {
		if (p->pfs[i].backend != GWD_BACKEND_VFIO)
			continue;
		int rc = pf_setup(&p->pfs[i], s, why, n);
		if (rc)
			return rc;
	}
	return 0;
}
