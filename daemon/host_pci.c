/* SPDX-License-Identifier: Apache-2.0 */
/* Real SR-IOV PFs through sysfs (Documentation/ABI/testing/sysfs-bus-pci): reading a PF and its
 * VFs, creating VFs, binding them to vfio-pci, and whether a VM can have one. */
#include "host_pci.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VFIO_DRIVER "vfio-pci"

void gwd_sysfs_init(struct gwd_sysfs *s)
{
	const char *sys = getenv("GODWIT_SYSFS_ROOT"), *dev = getenv("GODWIT_DEV_ROOT");
	snprintf(s->sys, sizeof(s->sys), "%s", sys && sys[0] ? sys : "/sys");
	snprintf(s->dev, sizeof(s->dev), "%s", dev && dev[0] ? dev : "/dev");
}

int gwd_pci_addr_check(const char *s)
{
	static const char form[] = "xxxx:xx:xx.x";
	if (!s || strlen(s) != sizeof(form) - 1)
		return -EINVAL;
	for (size_t i = 0; form[i]; i++) {
		bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
		if (form[i] == 'x' ? !hex : s[i] != form[i])
			return -EINVAL;
	}
	/* Device 0..31 (five bits), function 0..7 (PCI Local Bus 3.0, 3.2.2.3.1). */
	unsigned dev = (unsigned)strtoul(s + 8, NULL, 16);
	return dev > 0x1f || s[11] > '7' ? -EINVAL : 0;
}

/* SYS/bus/pci/devices/ADDR/LEAF */
static void dev_path(const struct gwd_sysfs *s, const char *addr, const char *leaf, char *out,
		     size_t n)
{
	snprintf(out, n, "%s/bus/pci/devices/%s/%s", s->sys, addr, leaf);
}

/* A sysfs attribute's first line. */
static int read_attr(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, out, n - 1);
	int err = errno;
	close(fd);
	if (r < 0)
		return -err;
	out[r] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int read_num(const char *path, int base, unsigned long max, unsigned long *out)
{
	char buf[32], *end;
	int rc = read_attr(path, buf, sizeof(buf));
	if (rc)
		return rc;
	errno = 0;
	*out = strtoul(buf, &end, base);
	return errno || end == buf || *end || *out > max ? -EINVAL : 0;
}

static uint16_t read_id(const struct gwd_sysfs *s, const char *addr, const char *leaf)
{
	char path[512];
	unsigned long v = 0;
	dev_path(s, addr, leaf, path, sizeof(path));
	return read_num(path, 16, 0xffff, &v) ? 0 : (uint16_t)v;
}

/* The last component of where a symlink points ("" when it is absent). */
static void link_base(const char *path, char *out, size_t n)
{
	char target[512];
	ssize_t r = readlink(path, target, sizeof(target) - 1);
	out[0] = '\0';
	if (r <= 0)
		return;
	target[r] = '\0';
	const char *slash = strrchr(target, '/');
	snprintf(out, n, "%s", slash ? slash + 1 : target);
}

static int write_attr(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(val);
	ssize_t w = write(fd, val, len);
	int err = errno;
	close(fd);
	if (w < 0)
		return -err;
	return (size_t)w == len ? 0 : -EIO;
}

static void vf_read(const struct gwd_sysfs *s, struct gwd_host_vf *vf)
{
	char path[512];
	vf->vendor = read_id(s, vf->addr, "vendor");
	vf->device = read_id(s, vf->addr, "device");
	dev_path(s, vf->addr, "driver", path, sizeof(path));
	link_base(path, vf->driver, sizeof(vf->driver));
	dev_path(s, vf->addr, "iommu_group", path, sizeof(path));
	link_base(path, vf->group, sizeof(vf->group));
}

static void first_netdev(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	out[0] = '\0';
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] != '.' && strlen(e->d_name) < n) {
			snprintf(out, n, "%s", e->d_name);
			break;
		}
	}
	closedir(d);
}

int gwd_host_pf_read(const struct gwd_sysfs *s, const char *addr, struct gwd_host_pf *pf, char *why,
		     size_t n)
{
	char path[512];
	struct stat st;
	unsigned long v;
	memset(pf, 0, sizeof(*pf));
	snprintf(pf->addr, sizeof(pf->addr), "%s", addr);
	dev_path(s, addr, "", path, sizeof(path));
	if (gwd_pci_addr_check(addr) || stat(path, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(why, n,
			 "no PCI device %s in %s/bus/pci/devices: check the address (lspci -D)",
			 addr, s->sys);
		return -ENOENT;
	}
	pf->vendor = read_id(s, addr, "vendor");
	pf->device = read_id(s, addr, "device");
	pf->vf_device = read_id(s, addr, "sriov_vf_device");
	dev_path(s, addr, "sriov_totalvfs", path, sizeof(path));
	if (read_num(path, 10, 0xffff, &v) || v == 0) {
		snprintf(why, n,
			 "%s (%04x:%04x) is not an SR-IOV PF: it has no sriov_totalvfs (or 0); "
			 "give the address of a PF, function 0 of an SR-IOV NIC",
			 addr, pf->vendor, pf->device);
		return -ENOTSUP;
	}
	pf->totalvfs = (unsigned)v;
	dev_path(s, addr, "sriov_numvfs", path, sizeof(path));
	pf->numvfs = read_num(path, 10, 0xffff, &v) ? 0 : (unsigned)v;
	dev_path(s, addr, "net", path, sizeof(path));
	first_netdev(path, pf->netdev, sizeof(pf->netdev));
	for (unsigned i = 0; i < GWD_HOST_MAX_VFS; i++) {
		char leaf[32];
		struct gwd_host_vf *vf = &pf->vfs[pf->nvfs];
		snprintf(leaf, sizeof(leaf), "virtfn%u", i);
		dev_path(s, addr, leaf, path, sizeof(path));
		link_base(path, vf->addr, sizeof(vf->addr));
		if (!vf->addr[0])
			break;
		vf_read(s, vf);
		pf->nvfs++;
	}
	return 0;
}

int gwd_host_pf_set_numvfs(const struct gwd_sysfs *s, struct gwd_host_pf *pf, unsigned want,
			   char *why, size_t n)
{
	char path[512], val[16];
	unsigned max = pf->totalvfs < GWD_HOST_MAX_VFS ? pf->totalvfs : GWD_HOST_MAX_VFS;
	if (want == 0 || want > max) {
		snprintf(why, n,
			 "PF %s: vfs=%u is out of range: it offers %u VFs (sriov_totalvfs) and "
			 "godwit manages at most %u per PF; use vfs=1..%u",
			 pf->addr, want, pf->totalvfs, GWD_HOST_MAX_VFS, max);
		return -EINVAL;
	}
	if (pf->numvfs == want)
		return 0;
	for (unsigned i = 0; i < pf->nvfs; i++) {
		if (pf->vfs[i].driver[0]) {
			snprintf(
			    why, n,
			    "PF %s has %u VFs, not %u, and its VF %s is bound to %s: godwitd "
			    "does not remove VFs in use; unbind them, or start godwitd without "
			    "vfs= to keep the %u VFs",
			    pf->addr, pf->numvfs, want, pf->vfs[i].addr, pf->vfs[i].driver,
			    pf->numvfs);
			return -EBUSY;
		}
	}
	/* Autoprobe off first: no host driver (igbvf) may grab the VFs about to appear. */
	const struct {
		const char *leaf, *val;
	} steps[] = {
	    {"sriov_drivers_autoprobe", "0"}, {"sriov_numvfs", "0"}, {"sriov_numvfs", val}};
	snprintf(val, sizeof(val), "%u", want);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		dev_path(s, pf->addr, steps[i].leaf, path, sizeof(path));
		int rc = write_attr(path, steps[i].val);
		if (rc) {
			snprintf(why, n,
				 "PF %s: writing %s to %s failed: %s (godwitd runs as root?)",
				 pf->addr, steps[i].val, path, strerror(-rc));
			return -EIO;
		}
	}
	char addr[GWD_PCI_ADDR_SZ];
	snprintf(addr, sizeof(addr), "%s", pf->addr);
	int rc = gwd_host_pf_read(s, addr, pf, why, n);
	if (rc)
		return rc;
	if (pf->nvfs < want) {
		snprintf(why, n,
			 "PF %s: after writing %u to sriov_numvfs it has %u VFs (virtfn links)",
			 pf->addr, want, pf->nvfs);
		return -EIO;
	}
	return 0;
}

int gwd_host_vf_bind(const struct gwd_sysfs *s, const struct gwd_host_vf *vf, char *why, size_t n)
{
	char path[512], driver[GWD_DRIVER_SZ];
	dev_path(s, vf->addr, "driver", path, sizeof(path));
	link_base(path, driver, sizeof(driver));
	if (!strcmp(driver, VFIO_DRIVER))
		return 0;
	if (driver[0]) {
		snprintf(why, n,
			 "bound to host driver %s: godwit never takes a VF a host driver uses "
			 "(unbind it to give it to VMs, then restart godwitd)",
			 driver);
		return -EBUSY;
	}
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/" VFIO_DRIVER, s->sys);
	if (access(path, F_OK)) {
		snprintf(why, n, "vfio-pci is not loaded (no %s): run modprobe vfio-pci", path);
		return -ENODEV;
	}
	/* driver_override makes vfio-pci, and only it, match this device on the next probe. */
	dev_path(s, vf->addr, "driver_override", path, sizeof(path));
	int rc = write_attr(path, VFIO_DRIVER);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", s->sys);
		rc = write_attr(path, vf->addr);
	}
	if (rc) {
		snprintf(why, n, "binding to vfio-pci failed: writing %s: %s", path, strerror(-rc));
		return -EIO;
	}
	return 0;
}

int gwd_host_vf_unbind(const struct gwd_sysfs *s, const struct gwd_host_vf *vf, char *why, size_t n)
{
	char path[512], driver[GWD_DRIVER_SZ];
	dev_path(s, vf->addr, "driver", path, sizeof(path));
	link_base(path, driver, sizeof(driver));
	if (strcmp(driver, VFIO_DRIVER))
		return 0;
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/" VFIO_DRIVER "/unbind", s->sys);
	int rc = write_attr(path, vf->addr);
	if (rc == 0) {
		/* A newline clears driver_override: the next probe matches by IDs again. */
		dev_path(s, vf->addr, "driver_override", path, sizeof(path));
		rc = write_attr(path, "\n");
	}
	if (rc) {
		snprintf(why, n, "unbinding from vfio-pci failed: writing %s: %s", path,
			 strerror(-rc));
		return -EIO;
	}
	return 0;
}

/* "" when the group holds only addr; else one other member, or why it cannot be listed. */
static void group_other(const struct gwd_sysfs *s, const char *group, const char *addr, char *other,
			size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/devices", s->sys, group);
	DIR *d = opendir(path);
	other[0] = '\0';
	if (!d) {
		snprintf(other, n, "(cannot list %s)", path);
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] != '.' && strcmp(e->d_name, addr)) {
			snprintf(other, n, "%s", e->d_name);
			break;
		}
	}
	closedir(d);
}

void gwd_host_vf_judge(const char *dev_root, const char *other, struct gwd_host_vf *vf)
{
	char path[512];
	vf->available = false;
	if (strcmp(vf->driver, VFIO_DRIVER)) {
		if (vf->driver[0])
			snprintf(vf->reason, sizeof(vf->reason),
				 "bound to host driver %s: godwit never takes a VF a host driver "
				 "uses",
				 vf->driver);
		else
			snprintf(vf->reason, sizeof(vf->reason),
				 "not bound to vfio-pci: no driver took it after drivers_probe");
		return;
	}
	if (!vf->group[0]) {
		snprintf(vf->reason, sizeof(vf->reason),
			 "no IOMMU group: the host runs without an IOMMU (boot it with "
			 "intel_iommu=on or amd_iommu=on)");
		return;
	}
	if (other[0]) {
		snprintf(vf->reason, sizeof(vf->reason),
			 "IOMMU group %s is not viable: it also holds %.40s, and a VM gets a VF "
			 "only alone in its group",
			 vf->group, other);
		return;
	}
	snprintf(path, sizeof(path), "%s/vfio/%s", dev_root, vf->group);
	if (access(path, F_OK)) {
		snprintf(vf->reason, sizeof(vf->reason),
			 "%.120s is missing: vfio-pci made no node for IOMMU group %s", path,
			 vf->group);
		return;
	}
	vf->available = true;
	vf->reason[0] = '\0';
}

void gwd_host_vf_check(const struct gwd_sysfs *s, struct gwd_host_vf *vf)
{
	char other[300] = "";
	vf_read(s, vf);
	if (vf->group[0])
		group_other(s, vf->group, vf->addr, other, sizeof(other));
	gwd_host_vf_judge(s->dev, other, vf);
}
