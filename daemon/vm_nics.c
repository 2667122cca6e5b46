/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's NICs: VFs taken from the host's pool at create, kept in the VM record, claimed
 * again after a restart, released when the VM is deleted or migrates away. */
#include "daemon.h"

#include "godwit/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int gwd_nic_take(struct gwd *d, const char *vm, size_t i, struct gwd_nic *nic, char *why, size_t n)
{
	const struct gwd_pf *pf = &d->pool.pfs[nic->pf];
	nic->gen = pf->gen;
	nic->backend = pf->backend;
	snprintf(nic->host, sizeof(nic->host), "%s", pf->vfs[nic->vf].host);
	nic->backed = true;
	if (pf->backend != GWD_BACKEND_VFIO)
		return 0;
	if (!pf->netdev[0] && nic->vlan) {
		snprintf(why, n,
			 "nic%zu: PF %s has no network interface, so VF %s cannot get VLAN %u", i,
			 pf->address, nic->host, nic->vlan);
		gwd_pool_release(&d->pool, vm, nic->pf, nic->vf);
		nic->backed = false;
		return -ENODEV;
	}
	if (!pf->netdev[0]) {
		GW_WARN(vm,
			"nic%zu: PF %s has no network interface, so VF %s keeps the MAC its PF "
			"gives it, not %s",
			i, pf->address, nic->host, nic->mac);
		return 0;
	}
	char sub[300];
	/* The PF's trust is the NIC's: Linux's igb refuses a trusted guest's MAC change when the
	 * administrator set the VF's MAC and did not trust it (godwit-vmm answers an untrusted
	 * guest's MAC change itself, mailbox interception). */
	int rc =
	    gwd_host_vf_set_mac(pf->netdev, nic->vf, nic->mac, !nic->untrusted, sub, sizeof(sub));
	const char *what = "MAC";
	if (rc == 0 && nic->vlan) {
		what = "VLAN";
		rc = gwd_host_vf_set_vlan(pf->netdev, nic->vf, nic->vlan, sub, sizeof(sub));
	}
	if (rc) {
		snprintf(why, n, "nic%zu: cannot give VF %s its %s: %s", i, nic->host, what, sub);
		gwd_pool_release(&d->pool, vm, nic->pf, nic->vf);
		nic->backed = false;
	}
	return rc;
}

/* Marks the VFs libvirt's domains hold now: they may have changed since start-up. */
static int pool_refresh_users(struct gwd *d, char *why, size_t n)
{
	struct gwd_vf_user u[GWD_VF_USERS_MAX];
	unsigned nu = 0;
	char sub[300];
	if (!d->inv.ops)
		return 0;
	int rc = d->inv.ops->users(&d->inv, u, GWD_VF_USERS_MAX, &nu, sub, sizeof(sub));
	if (rc) {
		snprintf(why, n,
			 "cannot tell which VFs libvirt's domains hold, so none is taken: %s", sub);
		return -EIO;
	}
	gwd_pool_set_users(&d->pool, u, nu);
	return 0;
}

void gwd_pool_refresh(struct gwd *d)
{
	char why[400];
	if (pool_refresh_users(d, why, sizeof(why)))
		GW_WARN("sriov", "%s", why);
}

int gwd_nics_alloc(struct gwd *d, struct gwd_vm *vm, const Godwit__V1__VmSpec *spec, char *why,
		   size_t n)
{
	vm->nnics = 0;
	int rc = spec->n_nics ? pool_refresh_users(d, why, n) : 0;
	if (rc)
		return rc;
	for (size_t i = 0; i < spec->n_nics && i < GWD_NIC_MAX; i++) {
		const Godwit__V1__NicSpec *ns = spec->nics[i];
		struct gwd_nic *nic = &vm->nics[i];
		memset(nic, 0, sizeof(*nic));
		int backend = -1;
		nic->want_gen = ns->gen;
		nic->untrusted = ns->trust && !strcmp(ns->trust, "off");
		if (ns->backend && !gwd_backend_parse(ns->backend, &backend))
			snprintf(nic->want_backend, sizeof(nic->want_backend), "%s", ns->backend);
		if (ns->mac && ns->mac[0])
			for (size_t c = 0; c < sizeof(nic->mac) - 1 && ns->mac[c]; c++)
				nic->mac[c] = (char)tolower((unsigned char)ns->mac[c]);
		else
			gwd_mac_from_name(vm->name, (unsigned)i, nic->mac, sizeof(nic->mac));
		nic->vlan = ns->vlan;
		if (ns->host_address && ns->host_address[0]) {
			snprintf(nic->want_host, sizeof(nic->want_host), "%s", ns->host_address);
			rc = gwd_pool_claim_host(&d->pool, vm->name, nic->mac, nic->want_host,
						 &nic->pf, &nic->vf, why, n);
		} else {
			/* A VLAN is set on a real VF's PF: an emulated VF cannot have one. */
			rc = gwd_pool_alloc(&d->pool, vm->name, nic->mac, ns->gen,
					    nic->vlan ? GWD_BACKEND_VFIO : backend, &nic->pf,
					    &nic->vf, why, n);
		}
		if (rc == 0)
			rc = gwd_nic_take(d, vm->name, i, nic, why, n);
		if (rc) {
			gwd_nics_release(d, vm);
			return rc;
		}
		vm->nnics++;
	}
	return 0;
}

/* A real VF going back to the pool gives up the VM's MAC: its PF would otherwise go on
 * steering that MAC's frames to the idle VF (its own switch delivers them locally), though
 * the VM may live on another host now. */
static void nic_drop_mac(struct gwd *d, const char *vm, unsigned i, const struct gwd_nic *nic)
{
	const struct gwd_pf *pf = &d->pool.pfs[nic->pf];
	if (nic->emulated || pf->backend != GWD_BACKEND_VFIO || !pf->netdev[0])
		return;
	char sub[300];
	if (gwd_host_vf_set_mac(pf->netdev, nic->vf, "00:00:00:00:00:00", false, sub, sizeof(sub)))
		GW_WARN(vm, "nic%u: VF %s keeps MAC %s on %s: %s", i, nic->host, nic->mac,
			pf->netdev, sub);
	if (nic->vlan && gwd_host_vf_set_vlan(pf->netdev, nic->vf, 0, sub, sizeof(sub)))
		GW_WARN(vm, "nic%u: VF %s keeps VLAN %u on %s: %s", i, nic->host, nic->vlan,
			pf->netdev, sub);
}

void gwd_nics_steer_away(struct gwd *d, struct gwd_vm *vm)
{
	bool any = false;
	for (unsigned i = 0; i < vm->nnics; i++) {
		struct gwd_nic *nic = &vm->nics[i];
		const struct gwd_pf *pf = nic->backed ? &d->pool.pfs[nic->pf] : NULL;
		if (!pf || nic->emulated || pf->backend != GWD_BACKEND_VFIO || !pf->netdev[0])
			continue;
		char sub[300];
		/* What the guest set through the mailbox, if its PF took it: the MAC to give
		 * back. Unknown: the NIC's own. */
		if (gwd_host_vf_get_mac(pf->netdev, nic->vf, nic->held_mac, &nic->held_trust, sub,
					sizeof(sub))) {
			GW_DEBUG(vm->name, "nic%u: %s", i, sub);
			_Static_assert(sizeof(nic->held_mac) == sizeof(nic->mac), "MAC text");
			memcpy(nic->held_mac, nic->mac, sizeof(nic->held_mac));
			nic->held_trust = !nic->untrusted;
		}
		nic->steered_away = any = true;
	}
	/* What to give back is on disk before it is taken: a godwitd that restarts in the
	 * handover and resumes the VM here restores it (registry.c's held_macs). */
	if (any)
		gwd_vm_persist(d, vm);
	for (unsigned i = 0; i < vm->nnics; i++)
		if (vm->nics[i].steered_away)
			nic_drop_mac(d, vm->name, i, &vm->nics[i]);
}

void gwd_nics_steer_back(struct gwd *d, struct gwd_vm *vm)
{
	for (unsigned i = 0; i < vm->nnics; i++) {
		struct gwd_nic *nic = &vm->nics[i];
		if (!nic->steered_away)
			continue;
		nic->steered_away = false;
		/* After a restart the VF may no longer back the NIC (its PF not declared). */
		const struct gwd_pf *pf = nic->backed ? &d->pool.pfs[nic->pf] : NULL;
		if (!pf || pf->backend != GWD_BACKEND_VFIO || !pf->netdev[0]) {
			GW_WARN(vm->name,
				"nic%u: MAC %s was held for the handover, but its VF is not "
				"here to take it back",
				i, nic->held_mac);
			continue;
		}
		char sub[300];
		if (gwd_host_vf_set_mac(pf->netdev, nic->vf, nic->held_mac, nic->held_trust, sub,
					sizeof(sub)))
			GW_ERR(vm->name,
			       "nic%u: VF %s did not get MAC %s back on %s, so the VM receives "
			       "nothing there: %s (set it with 'ip link set %s vf %u mac %s')",
			       i, nic->host, nic->held_mac, pf->netdev, sub, pf->netdev, nic->vf,
			       nic->held_mac);
	}
}

void gwd_nics_release(struct gwd *d, struct gwd_vm *vm)
{
	for (unsigned i = 0; i < vm->nnics; i++) {
		struct gwd_nic *nic = &vm->nics[i];
		if (nic->backed) {
			nic_drop_mac(d, vm->name, i, nic);
			gwd_pool_release(&d->pool, vm->name, nic->pf, nic->vf);
		}
		nic->backed = false;
	}
}

void gwd_nics_rebuild(struct gwd *d)
{
	for (struct gwd_vm *vm = d->vms; vm; vm = vm->next) {
		for (unsigned i = 0; i < vm->nnics; i++) {
			struct gwd_nic *nic = &vm->nics[i];
			if (nic->emulated)
				continue; /* no VF to claim: the VMM serves it */
			/* A real VF is found by its address: the --pf order may have changed. */
			int rc =
			    nic->backend == GWD_BACKEND_VFIO
				? gwd_pool_claim_host(&d->pool, vm->name, nic->mac, nic->host,
						      &nic->pf, &nic->vf, nic->reason,
						      sizeof(nic->reason))
				: gwd_pool_claim(&d->pool, vm->name, nic->mac, nic->pf, nic->vf,
						 &nic->gen, nic->reason, sizeof(nic->reason));
			nic->backed = rc == 0;
			if (rc == 0)
				nic->reason[0] = '\0';
			else
				GW_WARN(vm->name,
					"nic%u (%s) is unbacked: %s; start godwitd with the "
					"--emul-nic or --pf it had to back it again",
					i, nic->mac, nic->reason);
		}
	}
}

int gwd_nics_unbacked(const struct gwd_vm *vm)
{
	for (unsigned i = 0; i < vm->nnics; i++) {
		if (!vm->nics[i].backed && !vm->nics[i].emulated)
			return (int)i;
	}
	return -1;
}

void gwd_gen_to_pb(const struct sriov_gen *g, Godwit__V1__GenDescriptor *out, char *summary,
		   size_t summary_n)
{
	godwit__v1__gen_descriptor__init(out);
	out->vendor = g->vendor;
	out->device = g->device;
	out->revision = g->revision;
	out->subsys_vendor = g->subsys_vendor;
	out->subsys_device = g->subsys_device;
	out->api_version = g->api_version;
	out->caps = g->caps;
	out->queues = g->queues;
	out->gen = g->gen;
	sriov_gen_describe(g, summary, summary_n);
	out->summary = summary;
}

void gwd_gen_from_pb(const Godwit__V1__GenDescriptor *in, struct sriov_gen *out)
{
	memset(out, 0, sizeof(*out));
	if (!in)
		return;
	out->vendor = (uint16_t)in->vendor;
	out->device = (uint16_t)in->device;
	out->revision = (uint8_t)in->revision;
	out->subsys_vendor = (uint16_t)in->subsys_vendor;
	out->subsys_device = (uint16_t)in->subsys_device;
	out->api_version = in->api_version;
	out->caps = in->caps;
	out->queues = (uint8_t)in->queues;
	out->gen = (uint8_t)in->gen;
}

static void nic_to_pb(const struct gwd *d, const struct gwd_nic *nic, struct gwd_nic_pb *p)
{
	godwit__v1__nic_spec__init(&p->spec);
	godwit__v1__nic_info__init(&p->info);
	snprintf(p->mac, sizeof(p->mac), "%s", nic->mac);
	snprintf(p->reason, sizeof(p->reason), "%s", nic->reason);
	snprintf(p->uplink, sizeof(p->uplink), "%s",
		 nic->emulated ? (d->emul_uplink[0] ? d->emul_uplink : "none")
		 : nic->backed ? d->pool.pfs[nic->pf].uplink
			       : "");
	snprintf(p->want_backend, sizeof(p->want_backend), "%s", nic->want_backend);
	snprintf(p->host, sizeof(p->host), "%s", nic->host);
	snprintf(p->want_host, sizeof(p->want_host), "%s", nic->want_host);
	p->spec.host_address = p->want_host;
	p->spec.vlan = nic->vlan;
	p->spec.kind = (char *)"vf";
	p->spec.gen = nic->want_gen;
	p->spec.backend = p->want_backend;
	p->info.backend = (char *)gwd_backend_name(nic->backend);
	p->info.host_address = p->host;
	p->spec.mac = p->mac;
	p->spec.trust = (char *)(nic->untrusted ? "off" : "on");
	p->info.trust = p->spec.trust;
	p->info.kind = (char *)"vf";
	p->info.pf = nic->pf;
	p->info.vf = nic->vf;
	gwd_gen_to_pb(&nic->gen, &p->gen, p->summary, sizeof(p->summary));
	p->info.gen = &p->gen;
	p->info.mac = p->mac;
	p->info.backing = (char *)(nic->emulated ? "emulated"
				   : nic->backed ? "passthrough"
						 : "unbacked");
	p->info.uplink = p->uplink;
	p->info.reason = p->reason;
}

void gwd_nics_to_pb(const struct gwd *d, const struct gwd_vm *vm, struct gwd_vm_pb *out)
{
	for (unsigned i = 0; i < vm->nnics; i++) {
		nic_to_pb(d, &vm->nics[i], &out->nics[i]);
		out->nic_specs[i] = &out->nics[i].spec;
		out->nic_infos[i] = &out->nics[i].info;
	}
	out->spec.n_nics = vm->nnics;
	out->spec.nics = vm->nnics ? out->nic_specs : NULL;
	out->vm.n_nics = vm->nnics;
	out->vm.nics = vm->nnics ? out->nic_infos : NULL;
}

void gwd_nics_from_pb(struct gwd_vm *vm, const Godwit__V1__Vm *pb)
{
	vm->nnics = 0;
	for (size_t i = 0; i < pb->n_nics && i < GWD_NIC_MAX; i++) {
		const Godwit__V1__NicInfo *ni = pb->nics[i];
		struct gwd_nic *nic = &vm->nics[vm->nnics++];
		memset(nic, 0, sizeof(*nic));
		if (pb->spec && i < pb->spec->n_nics) {
			const Godwit__V1__NicSpec *ns = pb->spec->nics[i];
			int backend;
			nic->want_gen = ns->gen;
			nic->untrusted = ns->trust && !strcmp(ns->trust, "off");
			if (ns->backend && !gwd_backend_parse(ns->backend, &backend))
				snprintf(nic->want_backend, sizeof(nic->want_backend), "%s",
					 ns->backend);
			if (ns->host_address && !gwd_pci_addr_check(ns->host_address))
				snprintf(nic->want_host, sizeof(nic->want_host), "%s",
					 ns->host_address);
			nic->vlan = ns->vlan <= 4094 ? ns->vlan : 0;
		}
		snprintf(nic->mac, sizeof(nic->mac), "%s", ni->mac ? ni->mac : "");
		nic->pf = ni->pf;
		nic->vf = ni->vf;
		gwd_gen_from_pb(ni->gen, &nic->gen);
		nic->emulated = ni->backing && !strcmp(ni->backing, "emulated");
		nic->backend = ni->backend && !strcmp(ni->backend, "vfio") ? GWD_BACKEND_VFIO
									   : GWD_BACKEND_EMUL;
		if (ni->host_address && !gwd_pci_addr_check(ni->host_address))
			snprintf(nic->host, sizeof(nic->host), "%s", ni->host_address);
		snprintf(nic->reason, sizeof(nic->reason), "not claimed yet");
	}
}
