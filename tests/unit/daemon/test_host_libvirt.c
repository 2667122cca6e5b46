/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt inventory source (daemon/host_libvirt.c) against libvirt's test driver: a host
 * described by tests/data/libvirt/testnode.xml (an 82576 PF with 3 VFs; one VF held by a
 * running domain's <interface type='hostdev'>, one by a shut-off domain's <hostdev>). */
#include "inventory.h"
#include "sriov_pool.h"
#include "godwit/log.h"
#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PF "0000:00:04.0"

static char uri[600];

static void open_test(struct gwd_inventory *inv)
{
	char why[400] = "";
	int rc = gwd_inventory_open(inv, uri, why, sizeof(why));
	if (rc)
		fprintf(stderr, "%s\n", why);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(inv->ops->kind, "libvirt");
	CU_ASSERT_PTR_NOT_NULL(strstr(inv->desc, "libvirt test:///"));
}

static void test_enumeration(void)
{
	struct gwd_inventory inv;
	struct gwd_host_pf h;
	char why[400];
	open_test(&inv);
	CU_ASSERT_EQUAL_FATAL(inv.ops->pf_read(&inv, PF, &h, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(h.vendor, 0x8086);
	CU_ASSERT_EQUAL(h.device, 0x10c9);
	CU_ASSERT_EQUAL(h.totalvfs, 7);
	CU_ASSERT_EQUAL(h.numvfs, 3);
	CU_ASSERT_STRING_EQUAL(h.netdev, "enp0s4");
	CU_ASSERT_EQUAL_FATAL(h.nvfs, 3);
	CU_ASSERT_STRING_EQUAL(h.vfs[0].addr, "0000:00:10.0");
	CU_ASSERT_STRING_EQUAL(h.vfs[1].addr, "0000:00:10.2");
	CU_ASSERT_STRING_EQUAL(h.vfs[2].addr, "0000:00:10.4");
	CU_ASSERT_EQUAL(h.vfs[0].vendor, 0x8086);
	CU_ASSERT_EQUAL(h.vfs[0].device, 0x10ca);
	CU_ASSERT_STRING_EQUAL(h.vfs[0].group, "11");
	CU_ASSERT_STRING_EQUAL(h.vfs[2].group, "13");

	/* The test driver shows no <driver> for the VFs: none is bound to vfio-pci. */
	inv.ops->vf_check(&inv, &h.vfs[0]);
	CU_ASSERT_FALSE(h.vfs[0].available);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.vfs[0].reason, "not bound to vfio-pci"));

	/* A VF is not a PF; an unknown address is no device. */
	CU_ASSERT_EQUAL(inv.ops->pf_read(&inv, "0000:00:10.0", &h, why, sizeof(why)), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not an SR-IOV PF"));
	CU_ASSERT_EQUAL(inv.ops->pf_read(&inv, "0000:00:09.0", &h, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "pci_0000_00_09_0"));
	gwd_inventory_close(&inv);
}

static void test_users(void)
{
	struct gwd_inventory inv;
	struct gwd_vf_user u[8];
	unsigned nu = 0;
	char why[400];
	open_test(&inv);
	CU_ASSERT_EQUAL_FATAL(inv.ops->users(&inv, u, 8, &nu, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL_FATAL(nu, 2);
	/* Both the running domain's and the defined (shut off) domain's devices count. */
	bool web = false, db = false;
	for (unsigned i = 0; i < nu; i++) {
		web |= !strcmp(u[i].addr, "0000:00:10.2") && !strcmp(u[i].domain, "running-web");
		db |= !strcmp(u[i].addr, "0000:00:10.4") && !strcmp(u[i].domain, "parked-db");
	}
	CU_ASSERT_TRUE(web);
	CU_ASSERT_TRUE(db);
	gwd_inventory_close(&inv);
}

/* Start-up of a --pf PF through libvirt: the busy VFs are not touched and carry their domain;
 * the free one is detached through virNodeDeviceDetachFlags, which the test driver refuses. */
static void test_setup_busy(void)
{
	struct gwd_inventory inv;
	struct gwd_pool p;
	char why[600];
	unsigned pf, vf;
	open_test(&inv);
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&p, PF, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL_FATAL(gwd_pool_setup_vfio(&p, &inv, why, sizeof(why)), 0);
	const struct gwd_pf *f = &p.pfs[0];
	CU_ASSERT_EQUAL_FATAL(f->nvfs, 3);
	CU_ASSERT_STRING_EQUAL(f->netdev, "enp0s4");
	CU_ASSERT_STRING_EQUAL(f->vfs[0].domain, "");
	CU_ASSERT_TRUE(f->vfs[0].unavailable);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->vfs[0].reason, "virNodeDeviceDetachFlags"));
	CU_ASSERT_FALSE(f->vfs[0].bound_here);
	CU_ASSERT_STRING_EQUAL(f->vfs[1].domain, "running-web");
	CU_ASSERT_STRING_EQUAL(f->vfs[2].domain, "parked-db");
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 0), 0);

	/* A VM asking for a busy VF by address is refused with the domain's name. */
	CU_ASSERT_EQUAL(gwd_pool_claim_host(&p, "vm1", "02:00:00:00:00:01", "0000:00:10.4", &pf,
					    &vf, why, sizeof(why)),
			-EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "libvirt domain 'parked-db'"));

	/* Even one available to godwit otherwise (the test driver cannot bind): the domain is
	 * what refuses it. */
	p.pfs[0].vfs[1].unavailable = false;
	CU_ASSERT_EQUAL(gwd_pool_claim_host(&p, "vm1", "02:00:00:00:00:01", "0000:00:10.2", &pf,
					    &vf, why, sizeof(why)),
			-EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "libvirt domain 'running-web'"));
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "vm1", "02:00:00:00:00:01", 0, GWD_BACKEND_VFIO, &pf,
				       &vf, why, sizeof(why)),
			-ENOSPC);
	/* Once the domain lets it go (users refreshed), it is free. */
	gwd_pool_set_users(&p, NULL, 0);
	CU_ASSERT_EQUAL(gwd_pool_claim_host(&p, "vm1", "02:00:00:00:00:01", "0000:00:10.2", &pf,
					    &vf, why, sizeof(why)),
			0);
	CU_ASSERT_EQUAL(vf, 1);
	gwd_inventory_close(&inv);
}

static void test_domain_xml(void)
{
	struct gwd_vf_user u[4];
	unsigned nu = 0;
	static const char xml[] =
	    "<domain type='kvm'><name>a</name><devices>"
	    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
	    "<address domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></hostdev>"
	    "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/>"
	    "<product id='0xbeef'/></source></hostdev>"
	    "<interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x03' "
	    "slot='0x10' function='0x3'/></source></interface>"
	    "<interface type='network'><source network='default'/></interface>"
	    "</devices></domain>";
	CU_ASSERT_EQUAL(gwd_libvirt_domain_hostdevs(xml, strlen(xml), "a", u, 4, &nu), 0);
	CU_ASSERT_EQUAL_FATAL(nu, 2);
	CU_ASSERT_STRING_EQUAL(u[0].addr, "0000:03:10.1");
	CU_ASSERT_STRING_EQUAL(u[1].addr, "0000:03:10.3");
	CU_ASSERT_STRING_EQUAL(u[1].domain, "a");
	/* At most max. */
	nu = 0;
	CU_ASSERT_EQUAL(gwd_libvirt_domain_hostdevs(xml, strlen(xml), "a", u, 1, &nu), 0);
	CU_ASSERT_EQUAL(nu, 1);
	nu = 0;
	CU_ASSERT_EQUAL(gwd_libvirt_domain_hostdevs("<domain", 7, "b", u, 4, &nu), -EINVAL);
	CU_ASSERT_EQUAL(nu, 0);
}

static void test_open_specs(void)
{
	struct gwd_inventory inv;
	char why[400] = "";
	CU_ASSERT_EQUAL(gwd_inventory_open(&inv, "none", why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(inv.ops->kind, "sysfs");
	CU_ASSERT_STRING_EQUAL(inv.desc, "sysfs");
	gwd_inventory_close(&inv);
	CU_ASSERT_EQUAL(gwd_inventory_open(&inv, "", why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "auto, none"));
	CU_ASSERT_EQUAL(
	    gwd_inventory_open(&inv, "test:///nonexistent/godwit.xml", why, sizeof(why)),
	    -EHOSTUNREACH);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--libvirt test:///nonexistent/godwit.xml"));
	/* auto: libvirt or sysfs, whichever this machine has; never an error. */
	CU_ASSERT_EQUAL(gwd_inventory_open(&inv, "auto", why, sizeof(why)), 0);
	CU_ASSERT_TRUE(!strcmp(inv.ops->kind, "sysfs") || !strcmp(inv.ops->kind, "libvirt"));
	if (!gwd_libvirt_socket_answers())
		CU_ASSERT_PTR_NOT_NULL(strstr(inv.desc, "no libvirt daemon answers"));
	gwd_inventory_close(&inv);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	snprintf(uri, sizeof(uri), "test://%s/testnode.xml", GW_LIBVIRT_DATA);
	static const struct gw_test_case cases[] = {
	    {"a PF and its VFs from libvirt's node devices", test_enumeration},
	    {"the PCI functions libvirt's domains hold", test_users},
	    {"start-up through libvirt: busy VFs keep their domain", test_setup_busy},
	    {"hostdevs of a domain's XML", test_domain_xml},
	    {"--libvirt values", test_open_specs},
	};
	return gw_test_run("daemon_libvirt", cases, GW_TEST_COUNT(cases));
}
