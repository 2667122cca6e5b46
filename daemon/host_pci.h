/* SPDX-License-Identifier: Apache-2.0 */
/* Real SR-IOV PFs through sysfs: their VFs, drivers and IOMMU groups; creating VFs and binding
 * them to vfio-pci. No gRPC; unit-tested against a fake sysfs tree. */
#ifndef GODWIT_DAEMON_HOST_PCI_H
#define GODWIT_DAEMON_HOST_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GWD_PCI_ADDR_SZ	 13 /* "0000:00:04.0" */
#define GWD_DRIVER_SZ	 32
#define GWD_GROUP_SZ	 12
#define GWD_NETDEV_SZ	 16 /* IFNAMSIZ */
#define GWD_REASON_SZ	 200
#define GWD_HOST_MAX_VFS 7 /* godwit-vmm's vf= range, and what Linux's igb enables */

/* Where sysfs and /dev are: "/sys" and "/dev", or $GODWIT_SYSFS_ROOT and $GODWIT_DEV_ROOT
 * (tests build fake trees there). */
struct gwd_sysfs {
	char sys[200];
	char dev[200];
};
void gwd_sysfs_init(struct gwd_sysfs *s);

/* 0 when s is a PCI address in sysfs's form, "dddd:bb:dd.f" (lower-case hex, device 0..1f,
 * function 0..7); else -EINVAL. */
int gwd_pci_addr_check(const char *s);

struct gwd_host_vf {
	char addr[GWD_PCI_ADDR_SZ];
	uint16_t vendor, device;
	char driver[GWD_DRIVER_SZ]; /* "": no driver bound */
	char group[GWD_GROUP_SZ];   /* IOMMU group number; "": none */
	bool available;		    /* bound to vfio-pci in a viable group (gwd_host_vf_check) */
	char reason[GWD_REASON_SZ]; /* why it is not */
};

struct gwd_host_pf {
	char addr[GWD_PCI_ADDR_SZ];
	uint16_t vendor, device;
	uint16_t vf_device; /* sriov_vf_device; 0 when the kernel does not say */
	unsigned totalvfs, numvfs;
	char netdev[GWD_NETDEV_SZ]; /* its network interface; "": none */
	unsigned nvfs;		    /* virtfn links read, at most GWD_HOST_MAX_VFS */
	struct gwd_host_vf vfs[GWD_HOST_MAX_VFS];
};

/* Reads the PF at addr and its VFs (virtfn0..). -ENOENT (no such device) or -ENOTSUP (no
 * SR-IOV capability), with the reason in why. Availability is not decided here. */
int gwd_host_pf_read(const struct gwd_sysfs *s, const char *addr, struct gwd_host_pf *pf, char *why,
		     size_t n);
/* Gives the PF want VFs unless it has them: host drivers' autoprobe off first, so none takes
 * the new VFs, then sriov_numvfs 0 and want; reads the PF again. -EINVAL when want exceeds
 * sriov_totalvfs or GWD_HOST_MAX_VFS, -EBUSY when a VF that would go has a driver, -EIO when
 * a write fails; why says which. */
int gwd_host_pf_set_numvfs(const struct gwd_sysfs *s, struct gwd_host_pf *pf, unsigned want,
			   char *why, size_t n);
/* Binds an unbound VF to vfio-pci (driver_override, then drivers_probe). 0 when it is bound
 * to vfio-pci already; -EBUSY when a host driver holds it (never taken); -ENODEV when vfio-pci
 * is not loaded; -EIO when a write fails. why says which. */
int gwd_host_vf_bind(const struct gwd_sysfs *s, const struct gwd_host_vf *vf, char *why, size_t n);
/* Gives a VF bound to vfio-pci back: unbound, driver_override cleared (the state VFs godwitd
 * creates start in). 0 when vfio-pci does not hold it; -EIO with why. */
int gwd_host_vf_unbind(const struct gwd_sysfs *s, const struct gwd_host_vf *vf, char *why,
		       size_t n);
/* Reads vf's driver and IOMMU group again and decides whether a VM can have it: bound to
 * vfio-pci, alone in its IOMMU group, with that group's /dev/vfio node. */
/* Whether a VF whose driver and group are read is available: bound to vfio-pci, alone in
 * its IOMMU group (other: the first other function in it, "" if none), its /dev/vfio node
 * present under dev_root. Sets available and reason; both inventory sources use it. */
void gwd_host_vf_judge(const char *dev_root, const char *other, struct gwd_host_vf *vf);
void gwd_host_vf_check(const struct gwd_sysfs *s, struct gwd_host_vf *vf);

/* Sets the administrator's MAC and trust of VF vf on the PF's network interface (what "ip link
 * set NETDEV vf N mac MAC trust on|off" does) over rtnetlink. -errno with the reason in why. */
int gwd_host_vf_set_mac(const char *netdev, unsigned vf, const char *mac, bool trust, char *why,
			size_t n);
/* Sets VF vf's port VLAN on the PF's interface (what "ip link set NETDEV vf N vlan VLAN" does;
 * 0 removes it) over rtnetlink. -errno with the reason in why. */
int gwd_host_vf_set_vlan(const char *netdev, unsigned vf, unsigned vlan, char *why, size_t n);
/* The MAC and trust its PF holds for VF vf now ("ip link show NETDEV"): what a guest set, if
 * its PF took it. -errno with the reason in why. */
int gwd_host_vf_get_mac(const char *netdev, unsigned vf, char mac[18], bool *trust, char *why,
			size_t n);

#endif
