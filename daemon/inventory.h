/* SPDX-License-Identifier: Apache-2.0 */
/* Where godwitd learns about real SR-IOV PFs and binds their VFs: sysfs, or libvirt's node
 * devices (godwitd --libvirt). One interface, so the pool does not care which. */
#ifndef GODWIT_DAEMON_INVENTORY_H
#define GODWIT_DAEMON_INVENTORY_H

#include "host_pci.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define GWD_DOMAIN_SZ	 64 /* a libvirt domain's name as shown (longer ones are cut) */
#define GWD_INV_DESC_SZ	 300
#define GWD_VF_USERS_MAX 64

/* A PCI function a libvirt domain names in a <hostdev>: never given to a VM. */
struct gwd_vf_user {
	char addr[GWD_PCI_ADDR_SZ];
	char domain[GWD_DOMAIN_SZ];
};

struct gwd_inventory;

struct gwd_inventory_ops {
	const char *kind; /* "sysfs", "libvirt" */
	/* A PF and its VFs, as gwd_host_pf_read: -ENOENT, -ENOTSUP, or -EIO (the source
	 * failed), with the reason in why. */
	int (*pf_read)(struct gwd_inventory *inv, const char *addr, struct gwd_host_pf *pf,
		       char *why, size_t n);
	/* Binds a VF to vfio-pci, as gwd_host_vf_bind: 0 when it is bound already, -EBUSY when
	 * a host driver holds it, -ENODEV when vfio-pci is missing, -EIO. */
	int (*vf_bind)(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why,
		       size_t n);
	/* Gives a VF godwitd bound back to the host (off vfio-pci). */
	int (*vf_unbind)(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why,
			 size_t n);
	/* Reads vf's driver and IOMMU group again and decides whether a VM can have it. */
	void (*vf_check)(struct gwd_inventory *inv, struct gwd_host_vf *vf);
	/* The PCI functions the source's domains hold (sysfs: none). 0 or -errno with why. */
	int (*users)(struct gwd_inventory *inv, struct gwd_vf_user *out, unsigned max,
		     unsigned *count, char *why, size_t n);
	void (*close)(struct gwd_inventory *inv);
};

struct gwd_inventory {
	const struct gwd_inventory_ops *ops;
	struct gwd_sysfs sysfs; /* both: VFs are created through sriov_numvfs, /dev/vfio nodes */
	char uri[200];		/* libvirt: the connection's URI */
	void *conn;		/* libvirt: its virConnectPtr */
	pthread_mutex_t lock;	/* libvirt: reconnects */
	/* For host info: "sysfs", "libvirt qemu:///system", or why auto chose sysfs. */
	char desc[GWD_INV_DESC_SZ];
};

/* The sysfs source, on gwd_sysfs_init's roots. */
void gwd_inventory_sysfs(struct gwd_inventory *inv);
/* godwitd --libvirt SPEC: "none" (sysfs), "auto" (libvirt at qemu:///system when the local
 * libvirt daemon's socket answers, else sysfs) or a libvirt URI. -EINVAL for an empty SPEC,
 * -EHOSTUNREACH when the URI given cannot be opened; why says which. */
int gwd_inventory_open(struct gwd_inventory *inv, const char *spec, char *why, size_t n);
void gwd_inventory_close(struct gwd_inventory *inv);

/* host_libvirt.c */
/* Opens libvirt at uri as inv's source. -EHOSTUNREACH with libvirt's message in why. */
int gwd_inventory_libvirt(struct gwd_inventory *inv, const char *uri, char *why, size_t n);
/* Whether a libvirt daemon's socket answers on this host (what --libvirt auto asks). */
bool gwd_libvirt_socket_answers(void);
/* The PCI addresses of <hostdev type='pci'> in one domain's XML, each paired with name: what
 * users() gathers from every domain. Appends to out (at most max in all; an address out has
 * already is not added again). -EINVAL when xml is
 * not XML. */
int gwd_libvirt_domain_hostdevs(const char *xml, size_t len, const char *name,
				struct gwd_vf_user *out, unsigned max, unsigned *count);

#endif
