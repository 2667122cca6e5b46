/* SPDX-License-Identifier: Apache-2.0 */
/* The host's SR-IOV PFs (godwitd --emul-nic) and which VM holds each of their VFs. */
#ifndef GODWIT_DAEMON_SRIOV_POOL_H
#define GODWIT_DAEMON_SRIOV_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/sriov_gen.h"

#define GWD_PF_MAX     8
#define GWD_VM_NAME_SZ 64 /* GWD_NAME_MAX + 1 */
#define GWD_MAC_SZ     18 /* "02:00:00:00:00:01" */
#define GWD_UPLINK_SZ  128

struct gwd_vf_slot {
	char vm[GWD_VM_NAME_SZ]; /* empty: free */
	char mac[GWD_MAC_SZ];
};

struct gwd_pf {
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
	bool declared; /* any --emul-nic was given */
};

/* Adds the PF one --emul-nic value declares ("gen=N,vfs=M[,uplink=SPEC]" or "none").
 * 0, or -EINVAL with what is allowed in why. */
int gwd_pool_add_emul(struct gwd_pool *p, const char *arg, char *why, size_t n);
/* After the options: one gen1 PF with 7 VFs when no --emul-nic was given. */
void gwd_pool_finish(struct gwd_pool *p);
/* Checks a packet-port spec's syntax (sriov_port.h): none, udp:HOST:PORT, unix:PATH,
 * tap:NAME. 0 or -EINVAL with the reason in why. */
int gwd_uplink_check(const char *spec, char *why, size_t n);

/* Takes the first free VF of the lowest-index PF of generation gen (0: any) for vm.
 * 0; -ENODEV when the host has no PF at all (why says so) or none of that generation;
 * -ENOSPC when all of them are held. */
int gwd_pool_alloc(struct gwd_pool *p, const char *vm, const char *mac, unsigned gen, unsigned *pf,
		   unsigned *vf, char *why, size_t n);
/* The same for a VF whose generation must match src (sriov_gen_compare); the compare's
 * reason goes to reason. */
int gwd_pool_alloc_match(struct gwd_pool *p, const char *vm, const char *mac,
			 const struct sriov_gen *src, unsigned *pf, unsigned *vf, char *reason,
			 size_t n);
/* Takes exactly (pf, vf) for vm (a restart rebuilding the held set): -ENOENT when this host
 * does not declare it or declares another generation there (gen, NULL: any), -EEXIST when
 * another VM holds it; why says which. */
int gwd_pool_claim(struct gwd_pool *p, const char *vm, const char *mac, unsigned pf, unsigned vf,
		   const struct sriov_gen *gen, char *why, size_t n);
/* Frees (pf, vf) if vm holds it. */
void gwd_pool_release(struct gwd_pool *p, const char *vm, unsigned pf, unsigned vf);
/* Frees every VF vm holds. */
void gwd_pool_release_vm(struct gwd_pool *p, const char *vm);
unsigned gwd_pool_free_vfs(const struct gwd_pool *p, unsigned pf);
/* "pf0 gen1 7 free, pf1 gen2 0 free", or "no SR-IOV NIC". */
void gwd_pool_summary(const struct gwd_pool *p, char *out, size_t n);

/* A stable locally administered unicast MAC from a VM name and NIC index:
 * "02:xx:xx:xx:xx:xx". */
void gwd_mac_from_name(const char *name, unsigned index, char *out, size_t n);

#endif
