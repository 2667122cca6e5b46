/* SPDX-License-Identifier: Apache-2.0 */
/* The host's SR-IOV PFs (godwitd --emul-nic, --pf) and which VM holds each of their VFs. */
#ifndef GODWIT_DAEMON_SRIOV_POOL_H
#define GODWIT_DAEMON_SRIOV_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/sriov_gen.h"
#include "host_pci.h"
#include "inventory.h"

#define GWD_PF_MAX     8
#define GWD_VM_NAME_SZ 64 /* GWD_NAME_MAX + 1 */
#define GWD_MAC_SZ     18 /* "02:00:00:00:00:01" */
#define GWD_UPLINK_SZ  128

/* What serves a PF's VFs: godwit-vmm's emulated NIC, or real VFs bound to vfio-pci. */
enum gwd_backend {
	GWD_BACKEND_EMUL = 0,
	GWD_BACKEND_VFIO = 1,
};
/* "emul", "vfio" */
const char *gwd_backend_name(enum gwd_backend b);
/* "emul" or "vfio" into out; "" or NULL is any (-1). -EINVAL for anything else. */
int gwd_backend_parse(const char *s, int *out);

struct gwd_vf_slot {
	char vm[GWD_VM_NAME_SZ]; /* empty: free */
	char mac[GWD_MAC_SZ];
	/* vfio: the real VF */
	char host[GWD_PCI_ADDR_SZ];
	char driver[GWD_DRIVER_SZ];
	char group[GWD_GROUP_SZ];
	bool unavailable; /* never handed out (an emulated VF always is available) */
	char reason[GWD_REASON_SZ];
	char domain[GWD_DOMAIN_SZ]; /* vfio: the libvirt domain holding it; never handed out */
	bool bound_here;	    /* vfio: godwitd bound it to vfio-pci, and gives it back */
};

struct gwd_pf {
	enum gwd_backend backend;
	char address[GWD_PCI_ADDR_SZ]; /* vfio: the PF's PCI address */
	char netdev[GWD_NETDEV_SZ];    /* vfio: its network interface; "": none */
	unsigned want_vfs;	       /* vfio: --pf vfs=N; 0: as the PF has them */
	struct sriov_gen gen;
	char uplink[GWD_UPLINK_SZ];
	unsigned nvfs;
	struct gwd_vf_slot vfs[SRIOV_EMUL_MAX_VFS];
};

/* Zero-initialised: no PF declared. */
struct gwd_pool {
	unsigned npfs;
	struct gwd_pf pfs[GWD_PF_MAX];
	bool none;     /* --emul-nic none was given */
	bool declared; /* any --emul-nic or --pf was given */
};

/* Adds the PF one --emul-nic value declares ("gen=N,vfs=M[,uplink=SPEC]" or "none").
 * 0, or -EINVAL with what is allowed in why. */
int gwd_pool_add_emul(struct gwd_pool *p, const char *arg, char *why, size_t n);
/* After the options: one gen1 PF with 7 VFs when neither --emul-nic nor --pf was given. */
void gwd_pool_finish(struct gwd_pool *p);
/* Checks a packet-port spec's syntax (sriov_port.h): none, udp:HOST:PORT, unix:PATH,
 * tap:NAME, packet:IFNAME. 0 or -EINVAL with the reason in why. */
int gwd_uplink_check(const char *spec, char *why, size_t n);

/* Takes the first available free VF of the lowest-index PF of generation gen (0: any) and
 * backend (-1: any) for vm. 0; -ENODEV when the host has no PF at all (why says so) or none of
 * that generation and backend; -ENOSPC when all of them are held or unavailable. */
int gwd_pool_alloc(struct gwd_pool *p, const char *vm, const char *mac, unsigned gen, int backend,
		   unsigned *pf, unsigned *vf, char *why, size_t n);
/* The same for a VF of backend (-1: any) whose generation must match src
 * (sriov_gen_compare); the compare's reason goes to reason. */
int gwd_pool_alloc_match(struct gwd_pool *p, const char *vm, const char *mac,
			 const struct sriov_gen *src, int backend, unsigned *pf, unsigned *vf,
			 char *reason, size_t n);
/* Takes exactly emulated (pf, vf) for vm (a restart rebuilding the held set): -ENOENT when
 * this host does not declare it, declares another generation there (gen, NULL: any) or a
 * vfio PF, -EEXIST when another VM holds it; why says which. */
int gwd_pool_claim(struct gwd_pool *p, const char *vm, const char *mac, unsigned pf, unsigned vf,
		   const struct sriov_gen *gen, char *why, size_t n);
/* The same for the real VF at PCI address host, wherever the pool has it now: its place in
 * pf and vf. -ENOENT when no --pf PF has it, -EBUSY when it is unavailable or a libvirt
 * domain holds it (why names the domain), -EEXIST when another VM holds it. */
int gwd_pool_claim_host(struct gwd_pool *p, const char *vm, const char *mac, const char *host,
			unsigned *pf, unsigned *vf, char *why, size_t n);
/* Marks the VFs libvirt's domains hold (u, from the inventory's users()) busy with the
 * domain's name, and the others not. */
void gwd_pool_set_users(struct gwd_pool *p, const struct gwd_vf_user *u, unsigned nu);
/* Frees (pf, vf) if vm holds it. */
void gwd_pool_release(struct gwd_pool *p, const char *vm, unsigned pf, unsigned vf);
/* Frees every VF vm holds. */
void gwd_pool_release_vm(struct gwd_pool *p, const char *vm);
/* VFs of pf that are free and available. */
unsigned gwd_pool_free_vfs(const struct gwd_pool *p, unsigned pf);
/* "pf0 emul gen1 7 free, pf1 vfio 0000:00:04.0 gen1 0 free", or "no SR-IOV NIC". */
void gwd_pool_summary(const struct gwd_pool *p, char *out, size_t n);

/* A stable locally administered unicast MAC from a VM name and NIC index:
 * "02:xx:xx:xx:xx:xx". */
void gwd_mac_from_name(const char *name, unsigned index, char *out, size_t n);

/* pf_vfio.c: PFs of real SR-IOV NICs. */
/* Adds the PF one --pf value declares ("DDDD:BB:DD.F[,vfs=N]"); nothing is read yet. 0, or
 * -EINVAL with what is allowed in why. */
int gwd_pool_add_pf(struct gwd_pool *p, const char *arg, char *why, size_t n);
/* At start-up, for each --pf PF: reads it from sysfs, refuses a device godwit has no profile
 * for, gives it the VFs asked for, binds its free VFs to vfio-pci and records each VF with
 * whether a VM can have it. -EINVAL (the declaration cannot work: exit code 2) or another
 * -errno (the host refused a change), with the reason in why. */
/* The VFs are read and bound through inv (sysfs or libvirt); VFs a libvirt domain holds
 * are left alone and marked busy. */
int gwd_pool_setup_vfio(struct gwd_pool *p, struct gwd_inventory *inv, char *why, size_t n);
/* At exit: gives the VFs godwitd bound and no VM holds back to the host through inv (what
 * they were before it started). Logs what fails. */
void gwd_pool_return_vfs(struct gwd_pool *p, struct gwd_inventory *inv);

#endif
