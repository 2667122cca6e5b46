/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for godwitd's real PFs (--pf): the sysfs layer against a fake sysfs tree built
 * here, and the pool's vfio PFs: allocation by backend, claim by address, release. */
#include "host_pci.h"
#include "sriov_pool.h"

#include "godwit/log.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF "0000:00:04.0"

static char root[PATH_MAX];
static struct gwd_sysfs fs;

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

/* ROOT/sys/REL (or ROOT/dev/REL when rel starts with "dev/") */
static void at(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s%s", root, strncmp(rel, "dev/", 4) ? "sys/" : "", rel);
}

static void put(const char *rel, const char *content)
{
	char path[PATH_MAX];
	at(path, sizeof(path), rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdirs(path);
	*slash = '/';
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(content, f);
	fclose(f);
}

static void get(const char *rel, char *out, size_t n)
{
	char path[PATH_MAX];
	at(path, sizeof(path), rel);
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t r = fread(out, 1, n - 1, f);
	out[r] = '\0';
	fclose(f);
}

/* sys/REL -> sys/TARGET (absolute: only the last component counts) */
static void ln(const char *target, const char *rel)
{
	char t[PATH_MAX], l[PATH_MAX];
	at(t, sizeof(t), target);
	at(l, sizeof(l), rel);
	unlink(l);
	CU_ASSERT_EQUAL(symlink(t, l), 0);
}

static void dev(const char *addr, const char *leaf, const char *content)
{
	char rel[200];
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/%s", addr, leaf);
	put(rel, content);
}

/* A VF with the given driver ("" none) in IOMMU group (its own /dev/vfio node). */
static void make_vf(unsigned i, const char *addr, const char *driver, const char *group)
{
	char rel[200], target[200];
	dev(addr, "vendor", "0x8086\n");
	dev(addr, "device", "0x10ca\n");
	dev(addr, "driver_override", "(null)\n");
	snprintf(rel, sizeof(rel), "bus/pci/devices/" PF "/virtfn%u", i);
	snprintf(target, sizeof(target), "bus/pci/devices/%s", addr);
	ln(target, rel);
	if (driver[0]) {
		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", addr);
		snprintf(target, sizeof(target), "bus/pci/drivers/%s", driver);
		ln(target, rel);
	}
	snprintf(rel, sizeof(rel), "kernel/iommu_groups/%s/devices/%s", group, addr);
	put(rel, "");
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/iommu_group", addr);
	snprintf(target, sizeof(target), "kernel/iommu_groups/%s", group);
	ln(target, rel);
	snprintf(rel, sizeof(rel), "dev/vfio/%s", group);
	put(rel, "");
}

/* A fresh tree: the 82576 PF with 3 VFs: vf0 on vfio-pci (group 11), vf1 unbound
 * (group 12), vf2 on the host's igbvf (group 13). */
static void fake_tree(void)
{
	char cmd[PATH_MAX + 20];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys' '%s/dev'", root, root);
	CU_ASSERT_EQUAL(system(cmd), 0);
	dev(PF, "vendor", "0x8086\n");
	dev(PF, "device", "0x10c9\n");
	dev(PF, "sriov_totalvfs", "7\n");
	dev(PF, "sriov_numvfs", "3\n");
	dev(PF, "sriov_vf_device", "10ca\n");
	dev(PF, "sriov_drivers_autoprobe", "1\n");
	dev(PF, "net/enp0s4/ifindex", "2\n");
	put("bus/pci/drivers/vfio-pci/bind", "");
	put("bus/pci/drivers/igbvf/bind", "");
	put("bus/pci/drivers_probe", "");
	make_vf(0, "0000:00:10.0", "vfio-pci", "11");
	make_vf(1, "0000:00:10.2", "", "12");
	make_vf(2, "0000:00:10.4", "igbvf", "13");
}

static void test_addr_check(void)
{
	const char *good[] = {"0000:00:04.0", "0000:3b:1f.7", "ffff:ff:00.1"};
	const char *bad[] = {"",
			     "0000:00:04",
			     "0000:00:20.0",
			     "0000:00:04.8",
			     "0000:00:04.0 ",
			     "0000-00:04.0",
			     "0000:00:0G.0",
			     "0000:00:04.0,"};
	for (size_t i = 0; i < GW_TEST_COUNT(good); i++)
		CU_ASSERT_EQUAL(gwd_pci_addr_check(good[i]), 0);
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++)
		CU_ASSERT_EQUAL(gwd_pci_addr_check(bad[i]), -EINVAL);
	CU_ASSERT_EQUAL(gwd_pci_addr_check(NULL), -EINVAL);
}

static void test_discovery(void)
{
	struct gwd_host_pf h;
	char why[300];
	fake_tree();
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(h.vendor, 0x8086);
	CU_ASSERT_EQUAL(h.device, 0x10c9);
	CU_ASSERT_EQUAL(h.vf_device, 0x10ca);
	CU_ASSERT_EQUAL(h.totalvfs, 7);
	CU_ASSERT_EQUAL(h.numvfs, 3);
	CU_ASSERT_STRING_EQUAL(h.netdev, "enp0s4");
	CU_ASSERT_EQUAL_FATAL(h.nvfs, 3);
	CU_ASSERT_STRING_EQUAL(h.vfs[0].addr, "0000:00:10.0");
	CU_ASSERT_STRING_EQUAL(h.vfs[0].driver, "vfio-pci");
	CU_ASSERT_STRING_EQUAL(h.vfs[0].group, "11");
	CU_ASSERT_EQUAL(h.vfs[0].device, 0x10ca);
	CU_ASSERT_STRING_EQUAL(h.vfs[1].driver, "");
	CU_ASSERT_STRING_EQUAL(h.vfs[2].driver, "igbvf");
	CU_ASSERT_STRING_EQUAL(h.vfs[2].group, "13");

	CU_ASSERT_EQUAL(gwd_host_pf_read(&fs, "0000:00:05.0", &h, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no PCI device 0000:00:05.0"));
	dev("0000:00:05.0", "vendor", "0x8086\n");
	CU_ASSERT_EQUAL(gwd_host_pf_read(&fs, "0000:00:05.0", &h, why, sizeof(why)), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not an SR-IOV PF"));
}

static void test_foreign_driver(void)
{
	struct gwd_host_pf h;
	char why[300], buf[64];
	fake_tree();
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	/* A VF a host driver uses is never taken: nothing is written for it. */
	CU_ASSERT_EQUAL(gwd_host_vf_bind(&fs, &h.vfs[2], why, sizeof(why)), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "igbvf"));
	get("bus/pci/devices/0000:00:10.4/driver_override", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "(null)\n");
	get("bus/pci/drivers_probe", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "");
	gwd_host_vf_check(&fs, &h.vfs[2]);
	CU_ASSERT_FALSE(h.vfs[2].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[2].reason, "host driver igbvf"));
	/* One already on vfio-pci needs nothing. */
	CU_ASSERT_EQUAL(gwd_host_vf_bind(&fs, &h.vfs[0], why, sizeof(why)), 0);
	gwd_host_vf_check(&fs, &h.vfs[0]);
	CU_ASSERT_TRUE(h.vfs[0].available);
	CU_ASSERT_STRING_EQUAL(h.vfs[0].reason, "");
}

static void test_bind(void)
{
	struct gwd_host_pf h;
	char why[300], buf[64];
	fake_tree();
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_host_vf_bind(&fs, &h.vfs[1], why, sizeof(why)), 0);
	get("bus/pci/devices/0000:00:10.2/driver_override", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "vfio-pci");
	get("bus/pci/drivers_probe", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0000:00:10.2");
	/* A fake tree has no kernel to bind it: no driver, so not available. */
	gwd_host_vf_check(&fs, &h.vfs[1]);
	CU_ASSERT_FALSE(h.vfs[1].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[1].reason, "not bound to vfio-pci"));
	/* What the kernel does on drivers_probe; then the group's node must exist. */
	ln("bus/pci/drivers/vfio-pci", "bus/pci/devices/0000:00:10.2/driver");
	char path[PATH_MAX];
	at(path, sizeof(path), "dev/vfio/12");
	unlink(path);
	gwd_host_vf_check(&fs, &h.vfs[1]);
	CU_ASSERT_FALSE(h.vfs[1].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[1].reason, "vfio/12 is missing"));
	put("dev/vfio/12", "");
	gwd_host_vf_check(&fs, &h.vfs[1]);
	CU_ASSERT_TRUE(h.vfs[1].available);
	/* vfio-pci not loaded: said so, nothing written. */
	fake_tree();
	char cmd[PATH_MAX + 40];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/bus/pci/drivers/vfio-pci'", root);
	CU_ASSERT_EQUAL(system(cmd), 0);
	CU_ASSERT_EQUAL(gwd_host_vf_bind(&fs, &h.vfs[1], why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "modprobe vfio-pci"));
	get("bus/pci/drivers_probe", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "");
}

static void test_group(void)
{
	struct gwd_host_pf h;
	char why[300];
	fake_tree();
	/* Another device shares vf0's group: vfio would need the whole group. */
	put("kernel/iommu_groups/11/devices/0000:00:03.0", "");
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	gwd_host_vf_check(&fs, &h.vfs[0]);
	CU_ASSERT_FALSE(h.vfs[0].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[0].reason, "IOMMU group 11 is not viable"));
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[0].reason, "0000:00:03.0"));
	/* No IOMMU at all. */
	char path[PATH_MAX];
	at(path, sizeof(path), "bus/pci/devices/0000:00:10.0/iommu_group");
	unlink(path);
	gwd_host_vf_check(&fs, &h.vfs[0]);
	CU_ASSERT_FALSE(h.vfs[0].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[0].reason, "no IOMMU group"));
}

static void test_numvfs(void)
{
	struct gwd_host_pf h;
	char why[400], buf[32];
	fake_tree();
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	/* More than the PF offers. */
	CU_ASSERT_EQUAL(gwd_host_pf_set_numvfs(&fs, &h, 8, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "sriov_totalvfs"));
	/* As many as it has: nothing is written. */
	CU_ASSERT_EQUAL(gwd_host_pf_set_numvfs(&fs, &h, 3, why, sizeof(why)), 0);
	get("bus/pci/devices/" PF "/sriov_drivers_autoprobe", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1\n");
	/* Another count while VFs have drivers: refused, nothing written. */
	CU_ASSERT_EQUAL(gwd_host_pf_set_numvfs(&fs, &h, 2, why, sizeof(why)), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not remove VFs in use"));
	get("bus/pci/devices/" PF "/sriov_numvfs", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "3\n");

	/* A PF without VFs: autoprobe off, then 0 and N; the VFs are read again. */
	char cmd[PATH_MAX + 60];
	snprintf(cmd, sizeof(cmd), "rm -f '%s/sys/bus/pci/devices/" PF "'/virtfn*", root);
	CU_ASSERT_EQUAL(system(cmd), 0);
	dev(PF, "sriov_numvfs", "0\n");
	CU_ASSERT_EQUAL_FATAL(gwd_host_pf_read(&fs, PF, &h, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(h.nvfs, 0);
	/* The kernel would make the VFs on the write; the fake tree has them ready. */
	make_vf(0, "0000:00:10.0", "", "11");
	make_vf(1, "0000:00:10.2", "", "12");
	struct gwd_host_pf h0 = h;
	CU_ASSERT_EQUAL(gwd_host_pf_set_numvfs(&fs, &h0, 2, why, sizeof(why)), 0);
	get("bus/pci/devices/" PF "/sriov_drivers_autoprobe", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0");
	get("bus/pci/devices/" PF "/sriov_numvfs", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2");
	CU_ASSERT_EQUAL(h0.nvfs, 2);
	CU_ASSERT_EQUAL(h0.numvfs, 2);
	CU_ASSERT_STRING_EQUAL(h0.vfs[1].addr, "0000:00:10.2");
	/* The write "succeeds" but no VF appears. */
	dev(PF, "sriov_numvfs", "0\n");
	h.numvfs = 0;
	h.nvfs = 0;
	CU_ASSERT_EQUAL(gwd_host_pf_set_numvfs(&fs, &h, 3, why, sizeof(why)), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "it has 2 VFs"));
}

static void test_pf_option(void)
{
	struct gwd_pool p;
	char why[400];
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, "0000:00:04.0,vfs=2", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, "0000:3B:00.1", why, sizeof(why)), 0);
	gwd_pool_finish(&p); /* --pf alone: no default emulated PF */
	CU_ASSERT_EQUAL_FATAL(p.npfs, 2);
	CU_ASSERT_EQUAL(p.pfs[0].backend, GWD_BACKEND_VFIO);
	CU_ASSERT_STRING_EQUAL(p.pfs[0].address, "0000:00:04.0");
	CU_ASSERT_EQUAL(p.pfs[0].want_vfs, 2);
	CU_ASSERT_STRING_EQUAL(p.pfs[1].address, "0000:3b:00.1");
	CU_ASSERT_EQUAL(p.pfs[1].want_vfs, 0);
	const char *bad[] = {"",
			     "00:04.0",
			     "0000:00:04.0,vfs=0",
			     "0000:00:04.0,vfs=x",
			     "0000:00:04.0,vf=2",
			     "0000:00:04.0,vfs=2,uplink=none",
			     "0000:00:04.0"};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		why[0] = '\0';
		CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, bad[i], why, sizeof(why)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "DDDD:BB:DD.F[,vfs=N]"));
	}
	CU_ASSERT_EQUAL(p.npfs, 2);
	/* --emul-nic none still combines with --pf. */
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "none", why, sizeof(why)), 0);
}

/* The sysfs inventory source over the fake tree. */
static struct gwd_inventory *fake_inv(void)
{
	static struct gwd_inventory inv;
	gwd_inventory_sysfs(&inv);
	inv.sysfs = fs;
	return &inv;
}

static void test_setup(void)
{
	struct gwd_pool p;
	char why[400];
	fake_tree();
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=2,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, PF, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL_FATAL(gwd_pool_setup_vfio(&p, fake_inv(), why, sizeof(why)), 0);
	const struct gwd_pf *pf = &p.pfs[1];
	CU_ASSERT_EQUAL(pf->gen.gen, 1);
	CU_ASSERT_EQUAL(pf->gen.device, 0x10ca);
	CU_ASSERT_STRING_EQUAL(pf->netdev, "enp0s4");
	CU_ASSERT_EQUAL_FATAL(pf->nvfs, 3);
	CU_ASSERT_FALSE(pf->vfs[0].unavailable);
	CU_ASSERT_STRING_EQUAL(pf->vfs[0].host, "0000:00:10.0");
	CU_ASSERT_STRING_EQUAL(pf->vfs[0].group, "11");
	/* vf1 was bound (the fake kernel does not follow), vf2 belongs to igbvf. */
	CU_ASSERT_TRUE(pf->vfs[1].unavailable);
	CU_ASSERT_PTR_NOT_NULL(strstr(pf->vfs[1].reason, "not bound to vfio-pci"));
	CU_ASSERT_TRUE(pf->vfs[2].unavailable);
	CU_ASSERT_STRING_EQUAL(pf->vfs[2].driver, "igbvf");
	CU_ASSERT_PTR_NOT_NULL(strstr(pf->vfs[2].reason, "igbvf"));
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 1), 1);
	gwd_pool_summary(&p, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(why, "pf0 emul gen2 1 free, pf1 vfio " PF " gen1 1 free");

	/* vfs beyond sriov_totalvfs: the declaration cannot work. */
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, PF ",vfs=9", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_setup_vfio(&p, fake_inv(), why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "offers 7 VFs (sriov_totalvfs)"));
	/* Another device than the igb profile's. */
	dev(PF, "sriov_vf_device", "1515\n");
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, PF, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_setup_vfio(&p, fake_inv(), why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "one device profile, igb"));
	/* No such PF. */
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, "0000:00:09.0", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_setup_vfio(&p, fake_inv(), why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no PCI device"));
}

/* godwitd's exit: the VFs it bound and no VM holds go back (unbound from vfio-pci,
 * driver_override cleared); those a VM holds, or it did not bind, stay. */
static void test_return_vfs(void)
{
	struct gwd_pool p;
	char why[400], buf[64];
	unsigned pf, vf;
	fake_tree();
	put("bus/pci/drivers/vfio-pci/unbind", "");
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, PF, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL_FATAL(gwd_pool_setup_vfio(&p, fake_inv(), why, sizeof(why)), 0);
	/* vf0 was on vfio-pci already, vf1 was bound here, vf2 belongs to igbvf. */
	CU_ASSERT_FALSE(p.pfs[0].vfs[0].bound_here);
	CU_ASSERT_TRUE(p.pfs[0].vfs[1].bound_here);
	CU_ASSERT_FALSE(p.pfs[0].vfs[2].bound_here);
	/* What the kernel did on drivers_probe; then a VM takes vf1. */
	ln("bus/pci/drivers/vfio-pci", "bus/pci/devices/0000:00:10.2/driver");
	CU_ASSERT_EQUAL(gwd_pool_claim_host(&p, "vm1", "02:00:00:00:00:01", "0000:00:10.2", &pf,
					    &vf, why, sizeof(why)),
			-EBUSY); /* unavailable at start-up: the fake kernel had not bound it */
	p.pfs[0].vfs[1].unavailable = false;
	CU_ASSERT_EQUAL(gwd_pool_claim_host(&p, "vm1", "02:00:00:00:00:01", "0000:00:10.2", &pf,
					    &vf, why, sizeof(why)),
			0);
	gwd_pool_return_vfs(&p, fake_inv());
	get("bus/pci/drivers/vfio-pci/unbind", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, ""); /* held by vm1: stays */
	gwd_pool_release_vm(&p, "vm1");
	gwd_pool_return_vfs(&p, fake_inv());
	get("bus/pci/drivers/vfio-pci/unbind", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0000:00:10.2");
	get("bus/pci/devices/0000:00:10.2/driver_override", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "\n"); /* what clears it */
	CU_ASSERT_FALSE(p.pfs[0].vfs[1].bound_here);
}

/* A pool of one emulated PF (pf0, 1 VF) and one real PF (pf1, 3 VFs: vf1 unavailable). */
static void mixed_pool(struct gwd_pool *p)
{
	char why[300];
	memset(p, 0, sizeof(*p));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(p, "gen=1,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_pf(p, PF, why, sizeof(why)), 0);
	struct gwd_pf *pf = &p->pfs[1];
	sriov_emul_gen(1, &pf->gen);
	pf->nvfs = 3;
	for (unsigned v = 0; v < 3; v++) {
		snprintf(pf->vfs[v].host, sizeof(pf->vfs[v].host), "0000:00:10.%u", v * 2);
		snprintf(pf->vfs[v].driver, sizeof(pf->vfs[v].driver), "vfio-pci");
	}
	pf->vfs[1].unavailable = true;
	snprintf(pf->vfs[1].reason, sizeof(pf->vfs[1].reason), "IOMMU group 12 is not viable");
}

static void test_alloc_backend(void)
{
	struct gwd_pool p;
	char why[400];
	unsigned pf, vf;
	mixed_pool(&p);
	/* Any backend: the lowest PF first, so declaration order decides. */
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "a", "m1", 0, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 0 && vf == 0);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "b", "m2", 0, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 0);
	/* vfio: the unavailable vf1 is skipped. */
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&p, "c", "m3", 0, GWD_BACKEND_VFIO, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 2);
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&p, "d", "m4", 0, GWD_BACKEND_VFIO, &pf, &vf, why, sizeof(why)),
	    -ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(why, "no free vfio VF on this host (2 of 3 in use, 1 unavailable"));
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&p, "d", "m4", 0, GWD_BACKEND_EMUL, &pf, &vf, why, sizeof(why)),
	    -ENOSPC);
	/* Generation and backend together. */
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&p, "d", "m4", 2, GWD_BACKEND_VFIO, &pf, &vf, why, sizeof(why)),
	    -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no vfio VF of generation 2"));
	/* Release: the real VF keeps its address and goes back to the pool. */
	gwd_pool_release(&p, "c", 1, 2);
	CU_ASSERT_STRING_EQUAL(p.pfs[1].vfs[2].vm, "");
	CU_ASSERT_STRING_EQUAL(p.pfs[1].vfs[2].host, "0000:00:10.4");
	CU_ASSERT_STRING_EQUAL(p.pfs[1].vfs[2].driver, "vfio-pci");
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 1), 1);
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc(&p, "d", "m4", 0, GWD_BACKEND_VFIO, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 2);
	gwd_pool_release_vm(&p, "d");
	/* A migration's destination takes only emulated VFs (api_peer.c). */
	struct sriov_gen g1;
	sriov_emul_gen(1, &g1);
	gwd_pool_release_vm(&p, "a");
	CU_ASSERT_EQUAL(
	    gwd_pool_alloc_match(&p, "e", "m5", &g1, GWD_BACKEND_EMUL, &pf, &vf, why, sizeof(why)),
	    0);
	CU_ASSERT(pf == 0 && vf == 0);
}

static void test_claim_host(void)
{
	struct gwd_pool p;
	char why[400];
	unsigned pf = 9, vf = 9;
	mixed_pool(&p);
	/* After a restart a real VF is found by its address. */
	CU_ASSERT_EQUAL(
	    gwd_pool_claim_host(&p, "a", "m1", "0000:00:10.4", &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 2);
	CU_ASSERT_STRING_EQUAL(p.pfs[1].vfs[2].vm, "a");
	CU_ASSERT_EQUAL(
	    gwd_pool_claim_host(&p, "a", "m1", "0000:00:10.4", &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(
	    gwd_pool_claim_host(&p, "b", "m2", "0000:00:10.4", &pf, &vf, why, sizeof(why)),
	    -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "held by VM 'a'"));
	CU_ASSERT_EQUAL(
	    gwd_pool_claim_host(&p, "b", "m2", "0000:00:10.2", &pf, &vf, why, sizeof(why)), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not viable"));
	CU_ASSERT_EQUAL(
	    gwd_pool_claim_host(&p, "b", "m2", "0000:00:11.0", &pf, &vf, why, sizeof(why)),
	    -ENOENT);
	/* An emulated NIC's index that is now a real PF is not claimed. */
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "b", "m2", 1, 0, NULL, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "real PF"));
}

static void test_set_mac(void)
{
	char why[300];
	CU_ASSERT_EQUAL(
	    gwd_host_vf_set_mac("gw-none0", 0, "02:00:00:00:00:01", true, why, sizeof(why)),
	    -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "gw-none0"));
	CU_ASSERT_EQUAL(gwd_host_vf_set_mac("lo", 0, "not-a-mac", false, why, sizeof(why)),
			-EINVAL);
}

static void test_roots(void)
{
	struct gwd_sysfs s;
	unsetenv("GODWIT_SYSFS_ROOT");
	unsetenv("GODWIT_DEV_ROOT");
	gwd_sysfs_init(&s);
	CU_ASSERT_STRING_EQUAL(s.sys, "/sys");
	CU_ASSERT_STRING_EQUAL(s.dev, "/dev");
	setenv("GODWIT_SYSFS_ROOT", "/tmp/x/sys", 1);
	setenv("GODWIT_DEV_ROOT", "/tmp/x/dev", 1);
	gwd_sysfs_init(&s);
	CU_ASSERT_STRING_EQUAL(s.sys, "/tmp/x/sys");
	CU_ASSERT_STRING_EQUAL(s.dev, "/tmp/x/dev");
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	char tmpl[] = "/tmp/gw-hostpci-test-XXXXXX";
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(root, sizeof(root), "%s", tmpl);
	snprintf(fs.sys, sizeof(fs.sys), "%s/sys", root);
	snprintf(fs.dev, sizeof(fs.dev), "%s/dev", root);
	static const struct gw_test_case cases[] = {
	    {"PCI addresses", test_addr_check},
	    {"sysfs and /dev roots", test_roots},
	    {"discovery of a PF and its VFs", test_discovery},
	    {"a VF a host driver uses is never taken", test_foreign_driver},
	    {"binding writes driver_override and drivers_probe", test_bind},
	    {"a non-viable IOMMU group", test_group},
	    {"creating VFs: sriov_numvfs", test_numvfs},
	    {"--pf values", test_pf_option},
	    {"start-up of --pf PFs", test_setup},
	    {"VFs godwitd bound go back at its exit", test_return_vfs},
	    {"allocation by backend, release", test_alloc_backend},
	    {"claim of a real VF by address", test_claim_host},
	    {"a VF's MAC over rtnetlink: errors", test_set_mac},
	};
	int rc = gw_test_run("daemon_pci", cases, GW_TEST_COUNT(cases));
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpl);
	return rc;
}
