/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for godwitd's validation and API handlers, served in-process on a unix socket
 * (no VM is started here: that needs /dev/kvm and lives in the integration tests). */
#include "api.h"

#include "godwit/hv.h"
#include "godwit/log.h"
#include "godwit/v1/host.pb-c.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/peer.pb-c.h"
#include "godwit/v1/vms.pb-c.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct gwd d;
static struct gw_rpc_server *srv;
static struct gw_rpc_client *cl;

static void test_validate_name(void)
{
	char why[200];
	const char *good[] = {"a", "web-1", "db_2.prod", "0abc",
			      "x23456789012345678901234567890"
			      "1234567890123456789012345678901"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(gwd_validate_name(good[i], why, sizeof(why)), 0);
	const char *bad[] = {
	    "",	    "-a",
	    ".a",   "A",
	    "a b",  "a/b",
	    "../x", "a\n",
	    "é",    "x234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CU_ASSERT_EQUAL(gwd_validate_name(bad[i], why, sizeof(why)), -EINVAL);
		CU_ASSERT_TRUE(strlen(why) > 10); /* every refusal explains itself */
	}
	CU_ASSERT_EQUAL(gwd_validate_name(NULL, why, sizeof(why)), -EINVAL);
}

static void test_validate_spec(void)
{
	char why[300];
	Godwit__V1__VmSpec s = GODWIT__V1__VM_SPEC__INIT;
	s.guest_path = (char *)"/g";
	s.memory_bytes = 256ull << 20;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), 0);
	s.memory_bytes = 0;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "zero"));
	s.memory_bytes = (256ull << 20) + 4096;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 1ull << 34, why, sizeof(why)), -EINVAL);
	s.memory_bytes = 16ull << 30;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 8ull << 30, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "larger than this host"));
	s.memory_bytes = 64ull << 30;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.memory_bytes = 256ull << 20;
	s.cpus = 99;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.cpus = 1;
	s.guest_path = (char *)"relative/path";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.guest_path = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(gwd_validate_spec(NULL, 0, why, sizeof(why)), -EINVAL);
}

/* What the VM boots: exactly one of guest and kernel, an initrd only with a kernel, absolute
 * paths, and the VMM's vCPU limit. */
static void test_validate_spec_boot(void)
{
	char why[300];
	Godwit__V1__VmSpec s = GODWIT__V1__VM_SPEC__INIT;
	s.memory_bytes = 256ull << 20;
	s.kernel_path = (char *)"/boot/vmlinuz";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
	s.initrd_path = (char *)"/boot/initrd.img";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
	s.guest_path = (char *)"/g";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not both"));
	s.kernel_path = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "initrd goes with a Linux kernel"));
	s.initrd_path = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
	s.guest_path = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "guest image path or a Linux kernel path"));
	s.guest_path = NULL; /* as a hand-built message may have it */
	s.kernel_path = NULL;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	s.kernel_path = (char *)"vmlinuz";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "kernel path 'vmlinuz' must be absolute"));
	s.kernel_path = (char *)"/boot/vmlinuz";
	s.initrd_path = (char *)"initrd.img";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "initrd path 'initrd.img' must be absolute"));
	s.initrd_path = NULL;
	s.cpus = HV_MAX_VCPUS;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
	s.cpus = HV_MAX_VCPUS + 1;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "vCPUs requested"));
}

/* A MigrateRequest's tuning as the daemon checks it (the CLI is not the only client). */
static void test_validate_migrate_tuning(void)
{
	char why[200];
	Godwit__V1__MigrateRequest r = GODWIT__V1__MIGRATE_REQUEST__INIT;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), 0);
	r.timeout_s = 2;
	r.timeout_action = (char *)"cancel";
	r.throttle_initial_pct = 95;
	r.throttle_increment_pct = 1;
	r.channels = 8;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), 0);
	r.timeout_action = (char *)"pause";
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "suspend (the default) or cancel"));
	r.timeout_action = (char *)"suspend";
	r.timeout_s = 0;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "needs timeout_s"));
	r.timeout_s = 2;
	r.channels = 9;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most 8"));
	r.channels = 0;
	r.throttle_initial_pct = 96;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), -EINVAL);
	r.throttle_initial_pct = 20;
	r.no_auto_converge = true;
	CU_ASSERT_EQUAL(gwd_validate_migrate_tuning(&r, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "auto-converge off"));
}

/* --channels auto: the smaller host's cores, at most 8, and the reason says so. */
static void test_channels_auto(void)
{
	char why[120];
	CU_ASSERT_EQUAL(gwd_mig_channels_auto(4, 2, 8, why, sizeof(why)), 2);
	CU_ASSERT_STRING_EQUAL(why, "auto: min(source cores 4, destination cores 2, max 8) = 2");
	CU_ASSERT_EQUAL(gwd_mig_channels_auto(2, 16, 8, why, sizeof(why)), 2);
	CU_ASSERT_EQUAL(gwd_mig_channels_auto(64, 32, 8, why, sizeof(why)), 8);
	CU_ASSERT_EQUAL(gwd_mig_channels_auto(0, 0, 8, why, sizeof(why)), 1);
	CU_ASSERT_EQUAL(gwd_mig_channels_auto(6, 0, 8, why, sizeof(why)), 6);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "did not say"));
}

static void test_validate_mac(void)
{
	char why[200];
	const char *good[] = {"02:12:34:56:78:9a", "02:AB:cd:EF:00:01", "00:00:00:00:00:01",
			      "fe:ff:ff:ff:ff:ff"};
	for (size_t i = 0; i < GW_TEST_COUNT(good); i++)
		CU_ASSERT_EQUAL(gwd_validate_mac(good[i], why, sizeof(why)), 0);
	const char *bad[] = {"",
			     "02:12:34:56:78",
			     "02:12:34:56:78:9a:bc",
			     "02-12-34-56-78-9a",
			     "2:12:34:56:78:9a0",
			     "02:12:34:56:78:9g",
			     " 02:12:34:56:78:9",
			     "02:12:34:56:78:+9",
			     "00:00:00:00:00:00",
			     "01:00:5e:00:00:01",
			     "ff:ff:ff:ff:ff:ff"};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		why[0] = '\0';
		CU_ASSERT_EQUAL(gwd_validate_mac(bad[i], why, sizeof(why)), -EINVAL);
		CU_ASSERT_TRUE(strlen(why) > 10);
	}
	CU_ASSERT_EQUAL(gwd_validate_mac(NULL, why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(gwd_validate_mac("00:00:00:00:00:00", why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "all zero"));
	CU_ASSERT_EQUAL(gwd_validate_mac("03:00:00:00:00:01", why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "multicast"));
}

static void test_validate_spec_nics(void)
{
	char why[300];
	Godwit__V1__NicSpec n[5], *np[5];
	Godwit__V1__VmSpec s = GODWIT__V1__VM_SPEC__INIT;
	s.guest_path = (char *)"/g";
	s.memory_bytes = 256ull << 20;
	for (int i = 0; i < 5; i++) {
		godwit__v1__nic_spec__init(&n[i]);
		n[i].kind = (char *)"vf";
		np[i] = &n[i];
	}
	s.nics = np;
	s.n_nics = 4;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
	s.n_nics = 5;
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most 4"));
	s.n_nics = 2;
	n[1].kind = (char *)"virtio";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "nic1: kind 'virtio'"));
	n[1].kind = (char *)"";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	n[1].kind = (char *)"vf";
	n[1].mac = (char *)"01:00:00:00:00:01";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "nic1: MAC"));
	n[0].mac = (char *)"02:00:00:00:00:0A";
	n[1].mac = (char *)"02:00:00:00:00:0a";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "same MAC"));
	n[1].mac = (char *)"02:00:00:00:00:0b";
	CU_ASSERT_EQUAL(gwd_validate_spec(&s, 0, why, sizeof(why)), 0);
}

static void test_emul_nic_option(void)
{
	char why[400];
	struct gwd_pool p;
	memset(&p, 0, sizeof(p));
	gwd_pool_finish(&p); /* no --emul-nic: one gen1 PF with 7 VFs */
	CU_ASSERT_EQUAL(p.npfs, 1);
	CU_ASSERT_EQUAL(p.pfs[0].gen.gen, 1);
	CU_ASSERT_EQUAL(p.pfs[0].nvfs, 7);
	CU_ASSERT_STRING_EQUAL(p.pfs[0].uplink, "none");

	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=2,vfs=3", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(
	    gwd_pool_add_emul(&p, "vfs=1,uplink=udp:127.0.0.1:9000,gen=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(
	    gwd_pool_add_emul(&p, "gen=1,vfs=7,uplink=unix:/run/sw.sock", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=1,vfs=2,uplink=tap:gw0", why, sizeof(why)), 0);
	/* A DPDK device's arguments hold commas and '=': the uplink takes the rest. */
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=2,vfs=1,uplink=dpdk:net_af_packet0,iface=eth1",
					  why, sizeof(why)),
			0);
	gwd_pool_finish(&p);
	CU_ASSERT_EQUAL_FATAL(p.npfs, 5);
	CU_ASSERT_STRING_EQUAL(p.pfs[4].uplink, "dpdk:net_af_packet0,iface=eth1");
	CU_ASSERT_EQUAL(p.pfs[4].nvfs, 1);
	CU_ASSERT_EQUAL(p.pfs[0].gen.gen, 2);
	CU_ASSERT_EQUAL(p.pfs[0].gen.queues, 2);
	CU_ASSERT_EQUAL(p.pfs[0].nvfs, 3);
	CU_ASSERT_STRING_EQUAL(p.pfs[1].uplink, "udp:127.0.0.1:9000");
	CU_ASSERT_STRING_EQUAL(p.pfs[3].uplink, "tap:gw0");
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "none", why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot be combined"));

	const char *bad[] = {"",
			     "gen=3,vfs=1",
			     "gen=0,vfs=1",
			     "gen=1,vfs=0",
			     "gen=1,vfs=8",
			     "gen=1",
			     "vfs=2",
			     "gen=1,vfs=2,gen=2",
			     "gen=1,vfs=2,speed=10",
			     "gen=1,vfs=2,uplink=",
			     "gen=1,vfs=2,uplink=udp:host",
			     "gen=1,vfs=2,uplink=udp::9000",
			     "gen=1,vfs=2,uplink=udp:h:70000",
			     "gen=1,vfs=2,uplink=tap:",
			     "gen=1,vfs=2,uplink=tap:a-very-long-interface-name",
			     "gen=1,vfs=2,uplink=unix:",
			     "gen=1,vfs=2,uplink=eth0",
			     "gen=1,vfs=2,uplink=dpdk:",
			     "gen=1,vfs=2,uplink=dpdk:,iface=eth1",
			     "gen=1,uplink=dpdk:net_tap0,vfs=2", /* vfs= is the device's now */
			     "gen=x,vfs=2",
			     "gen1,vfs=2"};
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		memset(&p, 0, sizeof(p));
		why[0] = '\0';
		CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, bad[i], why, sizeof(why)), -EINVAL);
		CU_ASSERT_EQUAL(p.npfs, 0);
		/* Every refusal names what is allowed. */
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "gen=N,vfs=M"));
	}
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "none", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=1,vfs=1", why, sizeof(why)), -EINVAL);
	gwd_pool_finish(&p);
	CU_ASSERT_EQUAL(p.npfs, 0); /* none stays none */
	memset(&p, 0, sizeof(p));
	for (int i = 0; i < GWD_PF_MAX; i++)
		CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=1,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=1,vfs=1", why, sizeof(why)), -EINVAL);
}

static void test_pool(void)
{
	char why[300];
	struct gwd_pool p;
	unsigned pf, vf;
	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "a", "", 0, -1, &pf, &vf, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "declares no SR-IOV NIC"));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=1,vfs=2", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=2,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&p, "gen=2,vfs=1", why, sizeof(why)), 0);

	/* The first free VF of the lowest-index PF of the generation asked for. */
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "a", "m1", 2, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 0);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "b", "m2", 2, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 2 && vf == 0);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "c", "m3", 2, -1, &pf, &vf, why, sizeof(why)), -ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(why, "no free VF of generation 2 on this host (2 of 2 in use)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--emul-nic"));
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "c", "m3", 3, -1, &pf, &vf, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no VF of generation 3"));
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "c", "m3", 0, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 0 && vf == 0);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "c", "m4", 0, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 0 && vf == 1);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "d", "m5", 0, -1, &pf, &vf, why, sizeof(why)), -ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no free VF on this host (4 of 4 in use)"));
	CU_ASSERT_STRING_EQUAL(p.pfs[0].vfs[1].vm, "c");
	CU_ASSERT_STRING_EQUAL(p.pfs[0].vfs[1].mac, "m4");
	gwd_pool_summary(&p, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(why,
			       "pf0 emul gen1 0 free, pf1 emul gen2 0 free, pf2 emul gen2 0 free");

	/* Release: only by the holder; a VM's release frees all it holds. */
	gwd_pool_release(&p, "someone-else", 1, 0);
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 1), 0);
	gwd_pool_release(&p, "a", 1, 0);
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 1), 1);
	gwd_pool_release_vm(&p, "c");
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&p, 0), 2);
	CU_ASSERT_EQUAL(gwd_pool_alloc(&p, "e", "m6", 2, -1, &pf, &vf, why, sizeof(why)), 0);
	CU_ASSERT(pf == 1 && vf == 0);

	/* Migration: only a VF of the same generation descriptor. */
	struct sriov_gen g1, g2;
	sriov_emul_gen(1, &g1);
	sriov_emul_gen(2, &g2);
	CU_ASSERT_EQUAL(gwd_pool_alloc_match(&p, "f", "m7", &g2, -1, &pf, &vf, why, sizeof(why)),
			-ENOSPC);
	CU_ASSERT_STRING_EQUAL(
	    why, "destination has no free gen2 VF (has: pf0 emul gen1 2 free, pf1 emul "
		 "gen2 0 free, pf2 emul gen2 0 free)");
	CU_ASSERT_EQUAL(gwd_pool_alloc_match(&p, "f", "m7", &g1, -1, &pf, &vf, why, sizeof(why)),
			0);
	CU_ASSERT(pf == 0 && vf == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "same generation"));

	/* Restart: claim exactly what a record says, or say why not. */
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "f", "m7", 0, 0, &g1, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "g", "m8", 0, 0, &g1, why, sizeof(why)), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "held by VM 'f'"));
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "g", "m8", 0, 1, &g2, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "pf0 is now generation 1"));
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "g", "m8", 5, 0, &g1, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "pf5 vf0 is not declared on this host"));
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "g", "m8", 1, 3, &g2, why, sizeof(why)), -ENOENT);
	CU_ASSERT_EQUAL(gwd_pool_claim(&p, "g", "m8", 0, 1, NULL, why, sizeof(why)), 0);
}

static void test_mac_from_name(void)
{
	char a[GWD_MAC_SZ], b[GWD_MAC_SZ], c[GWD_MAC_SZ], why[200];
	gwd_mac_from_name("web1", 0, a, sizeof(a));
	gwd_mac_from_name("web1", 0, b, sizeof(b));
	gwd_mac_from_name("web1", 1, c, sizeof(c));
	CU_ASSERT_STRING_EQUAL(a, b); /* stable */
	CU_ASSERT_STRING_NOT_EQUAL(a, c);
	CU_ASSERT_EQUAL(strncmp(a, "02:", 3), 0);
	CU_ASSERT_EQUAL(gwd_validate_mac(a, why, sizeof(why)), 0);
	gwd_mac_from_name("web2", 0, b, sizeof(b));
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

static enum gw_rpc_code call(const char *method, const ProtobufCMessage *req,
			     ProtobufCMessage **resp, struct gw_rpc_status *st)
{
	return gw_rpc_unary(cl, &godwit__v1__vms__descriptor, method, req, resp, 10000, st);
}

/* Vms.Create of name with spec; the created Vm in out (the caller frees it), if out. */
static enum gw_rpc_code create_spec(const char *name, Godwit__V1__VmSpec *spec,
				    Godwit__V1__Vm **out, struct gw_rpc_status *st)
{
	Godwit__V1__CreateVmRequest req = GODWIT__V1__CREATE_VM_REQUEST__INIT;
	req.name = (char *)name;
	req.spec = spec;
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code c = call("Create", &req.base, &resp, st);
	if (out)
		*out = (Godwit__V1__Vm *)resp;
	else if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return c;
}

static enum gw_rpc_code create(const char *name, uint64_t mem, const char *guest,
			       struct gw_rpc_status *st)
{
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = mem;
	spec.guest_path = (char *)guest;
	spec.cmdline = (char *)"hello";
	return create_spec(name, &spec, NULL, st);
}

static void test_create_get_list(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(create("alpha", 64ull << 20, "/bin/true", &st), GW_RPC_OK);
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"alpha";
	ProtobufCMessage *resp;
	CU_ASSERT_EQUAL_FATAL(call("Get", &ref.base, &resp, &st), GW_RPC_OK);
	Godwit__V1__Vm *vm = (Godwit__V1__Vm *)resp;
	CU_ASSERT_STRING_EQUAL(vm->name, "alpha");
	CU_ASSERT_EQUAL(vm->state, GODWIT__V1__VM_STATE__VM_STATE_DEFINED);
	CU_ASSERT_EQUAL(vm->spec->memory_bytes, 64ull << 20);
	CU_ASSERT_EQUAL(vm->spec->cpus, 1);
	CU_ASSERT_STRING_EQUAL(vm->spec->cmdline, "hello");
	CU_ASSERT_TRUE(vm->created_unix > 0);
	protobuf_c_message_free_unpacked(resp, NULL);

	CU_ASSERT_EQUAL_FATAL(create("beta", 32ull << 20, "/bin/true", &st), GW_RPC_OK);
	Godwit__V1__ListVmsRequest lreq = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	CU_ASSERT_EQUAL_FATAL(call("List", &lreq.base, &resp, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(((Godwit__V1__ListVmsResponse *)resp)->n_vms, 2);
	protobuf_c_message_free_unpacked(resp, NULL);

	/* Persisted: the record file exists and a fresh registry reads it back. */
	char path[600];
	gwd_vm_dir(&d, "alpha", "vm.pb", path, sizeof(path));
	CU_ASSERT_EQUAL(access(path, R_OK), 0);
	struct gwd fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	struct gwd_vm *a = gwd_vm_find(&fresh, "alpha");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->memory_bytes, 64ull << 20);
	CU_ASSERT_STRING_EQUAL(a->guest_path, "/bin/true");
	CU_ASSERT_PTR_NOT_NULL(gwd_vm_find(&fresh, "beta"));
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}
}

static void test_bad_requests(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(create("alpha", 64ull << 20, "/bin/true", &st), GW_RPC_ALREADY_EXISTS);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "already exists"));
	CU_ASSERT_EQUAL(create("Bad Name", 64ull << 20, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("zero", 0, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("huge", 1ull << 40, "/bin/true", &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(create("noguest", 64ull << 20, "/no/such/guest", &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "/no/such/guest"));
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ProtobufCMessage *resp;
	ref.name = (char *)"ghost";
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(call("Start", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(call("Delete", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
	ref.name = (char *)"a/../../etc";
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_INVALID_ARGUMENT);
	Godwit__V1__StopVmRequest stop = GODWIT__V1__STOP_VM_REQUEST__INIT;
	stop.name = (char *)"alpha";
	CU_ASSERT_EQUAL(call("Stop", &stop.base, &resp, &st), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "not running"));
	/* None of that left a trace. */
	Godwit__V1__ListVmsRequest lreq = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	CU_ASSERT_EQUAL_FATAL(call("List", &lreq.base, &resp, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(((Godwit__V1__ListVmsResponse *)resp)->n_vms, 2);
	protobuf_c_message_free_unpacked(resp, NULL);
}

/* A file of n bytes (0: empty) in the state directory; its path in out. */
static void make_file(const char *leaf, size_t n, char *out, size_t outn)
{
	snprintf(out, outn, "%s/%s", d.state_dir, leaf);
	FILE *f = fopen(out, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (size_t i = 0; i < n; i++)
		fputc('k', f);
	fclose(f);
}

static enum gw_rpc_code create_linux(const char *name, const char *kernel, const char *initrd,
				     const char *cmdline, uint32_t cpus, Godwit__V1__Vm **out,
				     struct gw_rpc_status *st)
{
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = 256ull << 20;
	spec.cpus = cpus;
	spec.kernel_path = (char *)kernel;
	if (initrd)
		spec.initrd_path = (char *)initrd;
	if (cmdline)
		spec.cmdline = (char *)cmdline;
	return create_spec(name, &spec, out, st);
}

static size_t vm_count(void)
{
	Godwit__V1__ListVmsRequest lreq = GODWIT__V1__LIST_VMS_REQUEST__INIT;
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	if (call("List", &lreq.base, &resp, &st) != GW_RPC_OK)
		return (size_t)-1;
	size_t n = ((Godwit__V1__ListVmsResponse *)resp)->n_vms;
	protobuf_c_message_free_unpacked(resp, NULL);
	return n;
}

static void delete_vm(const char *name)
{
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)name;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(call("Delete", &ref.base, &resp, &st), GW_RPC_OK);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
}

/* Linux VMs: kernel, initrd and command line kept, shown and persisted; the files checked for
 * godwitd at create (the VMM's own checks come at start: integration tests). */
static void test_create_linux(void)
{
	char kernel[600], initrd[600], empty[600];
	make_file("vmlinuz", 4096, kernel, sizeof(kernel));
	make_file("initrd.img", 100, initrd, sizeof(initrd));
	make_file("empty", 0, empty, sizeof(empty));
	size_t before = vm_count();
	struct gw_rpc_status st;
	Godwit__V1__Vm *vm = NULL;

	CU_ASSERT_EQUAL_FATAL(create_linux("lin1", kernel, initrd, NULL, 2, &vm, &st), GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(vm->spec->kernel_path, kernel);
	CU_ASSERT_STRING_EQUAL(vm->spec->initrd_path, initrd);
	CU_ASSERT_STRING_EQUAL(vm->spec->guest_path, "");
	CU_ASSERT_STRING_EQUAL(vm->spec->cmdline, GWD_LINUX_CMDLINE); /* the VMM's default */
	CU_ASSERT_EQUAL(vm->spec->cpus, 2);
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	CU_ASSERT_EQUAL(create_linux("lin2", kernel, NULL, "console=ttyS0 quiet", 0, &vm, &st),
			GW_RPC_OK);
	if (vm) {
		CU_ASSERT_STRING_EQUAL(vm->spec->cmdline, "console=ttyS0 quiet");
		CU_ASSERT_STRING_EQUAL(vm->spec->initrd_path, "");
		CU_ASSERT_EQUAL(vm->spec->cpus, 1);
		protobuf_c_message_free_unpacked(&vm->base, NULL);
	}

	/* Get answers the same, and a fresh registry reads it all back. */
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"lin1";
	ProtobufCMessage *resp;
	CU_ASSERT_EQUAL_FATAL(call("Get", &ref.base, &resp, &st), GW_RPC_OK);
	vm = (Godwit__V1__Vm *)resp;
	CU_ASSERT_STRING_EQUAL(vm->spec->kernel_path, kernel);
	CU_ASSERT_STRING_EQUAL(vm->spec->initrd_path, initrd);
	protobuf_c_message_free_unpacked(resp, NULL);
	struct gwd fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	struct gwd_vm *a = gwd_vm_find(&fresh, "lin1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_STRING_EQUAL(a->kernel_path, kernel);
	CU_ASSERT_STRING_EQUAL(a->initrd_path, initrd);
	CU_ASSERT_STRING_EQUAL(a->guest_path, "");
	CU_ASSERT_STRING_EQUAL(a->cmdline, GWD_LINUX_CMDLINE);
	CU_ASSERT_EQUAL(a->cpus, 2);
	a = gwd_vm_find(&fresh, "alpha"); /* a record of a test-guest VM reads back as one */
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_STRING_EQUAL(a->kernel_path, "");
	CU_ASSERT_STRING_EQUAL(a->initrd_path, "");
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}

	/* Files godwitd cannot use: INVALID_ARGUMENT naming the file and the problem. */
	CU_ASSERT_EQUAL(create_linux("bad", "/no/such/vmlinuz", NULL, NULL, 1, NULL, &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(st.message, "kernel /no/such/vmlinuz cannot be read by godwitd: No such file"));
	CU_ASSERT_EQUAL(create_linux("bad", kernel, "/no/such/initrd", NULL, 1, NULL, &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "initrd /no/such/initrd cannot be read"));
	CU_ASSERT_EQUAL(create_linux("bad", d.state_dir, NULL, NULL, 1, NULL, &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "is not a regular file"));
	CU_ASSERT_EQUAL(create_linux("bad", kernel, empty, NULL, 1, NULL, &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "initrd"));
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "is empty"));
	CU_ASSERT_EQUAL(create_linux("bad", kernel, NULL, NULL, HV_MAX_VCPUS + 1, NULL, &st),
			GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(vm_count(), before + 2); /* no refused VM left behind */

	delete_vm("lin1");
	delete_vm("lin2");
	CU_ASSERT_EQUAL(vm_count(), before);
	unlink(kernel);
	unlink(initrd);
	unlink(empty);
}

static void test_console_not_running(void)
{
	Godwit__V1__ConsoleRequest req = GODWIT__V1__CONSOLE_REQUEST__INIT;
	req.name = (char *)"alpha";
	struct gw_rpc_stream *s;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_stream_open(cl, &godwit__v1__vms__descriptor, "Console",
						 &req.base, 5000, &s, &st),
			      GW_RPC_OK);
	ProtobufCMessage *m;
	CU_ASSERT_EQUAL(gw_rpc_stream_next(s, &m, 5000, &st), 0);
	CU_ASSERT_EQUAL(st.code, GW_RPC_FAILED_PRECONDITION);
	gw_rpc_stream_close(s);
}

static void test_host_info(void)
{
	Godwit__V1__GetInfoRequest req = GODWIT__V1__GET_INFO_REQUEST__INIT;
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(
	    gw_rpc_unary(cl, &godwit__v1__host__descriptor, "GetInfo", &req.base, &resp, 5000, &st),
	    GW_RPC_OK);
	Godwit__V1__HostInfo *h = (Godwit__V1__HostInfo *)resp;
	CU_ASSERT_STRING_EQUAL(h->host_id, "testhost");
	CU_ASSERT_EQUAL(h->vms, 2);
	CU_ASSERT_EQUAL(h->vms_running, 0);
	CU_ASSERT_TRUE(h->memory_total_bytes > 0);
	CU_ASSERT_PTR_NOT_NULL(h->kvm);
	protobuf_c_message_free_unpacked(resp, NULL);
}

static void test_delete(void)
{
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"beta";
	ProtobufCMessage *resp;
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL_FATAL(call("Delete", &ref.base, &resp, &st), GW_RPC_OK);
	protobuf_c_message_free_unpacked(resp, NULL);
	char dir[600];
	gwd_vm_dir(&d, "beta", NULL, dir, sizeof(dir));
	CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
	CU_ASSERT_EQUAL(call("Get", &ref.base, &resp, &st), GW_RPC_NOT_FOUND);
}

/* Creates a VM with one NIC per entry of gens (-1 ends it). */
static enum gw_rpc_code create_nics(const char *name, const int *gens, const char *mac,
				    Godwit__V1__Vm **out, struct gw_rpc_status *st)
{
	Godwit__V1__NicSpec n[GWD_NIC_MAX + 1], *np[GWD_NIC_MAX + 1];
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = 32ull << 20;
	spec.guest_path = (char *)"/bin/true";
	spec.nics = np;
	for (; gens[spec.n_nics] >= 0; spec.n_nics++) {
		godwit__v1__nic_spec__init(&n[spec.n_nics]);
		n[spec.n_nics].kind = (char *)"vf";
		n[spec.n_nics].gen = (uint32_t)gens[spec.n_nics];
		n[spec.n_nics].mac = (char *)(spec.n_nics == 0 && mac ? mac : "");
		np[spec.n_nics] = &n[spec.n_nics];
	}
	return create_spec(name, &spec, out, st);
}

static Godwit__V1__HostInfo *host_info(void)
{
	Godwit__V1__GetInfoRequest req = GODWIT__V1__GET_INFO_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct gw_rpc_status st;
	gw_rpc_unary(cl, &godwit__v1__host__descriptor, "GetInfo", &req.base, &resp, 5000, &st);
	return (Godwit__V1__HostInfo *)resp;
}

/* The daemon's pool here: pf0 gen1 with 1 VF, pf1 gen2 with 1 VF (see main). */
static void test_create_with_nics(void)
{
	struct gw_rpc_status st;
	Godwit__V1__Vm *vm = NULL;
	const int gen2[] = {2, -1}, any[] = {0, -1}, two[] = {1, 2, -1};
	CU_ASSERT_EQUAL_FATAL(create_nics("n2", gen2, NULL, &vm, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL_FATAL(vm->n_nics, 1);
	CU_ASSERT_EQUAL(vm->nics[0]->pf, 1);
	CU_ASSERT_EQUAL(vm->nics[0]->vf, 0);
	CU_ASSERT_EQUAL(vm->nics[0]->gen->gen, 2);
	CU_ASSERT_EQUAL(vm->nics[0]->gen->device, 0x10ca);
	CU_ASSERT_EQUAL(vm->nics[0]->gen->queues, 2);
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->backing, "passthrough");
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->uplink, "none");
	CU_ASSERT_EQUAL(strncmp(vm->nics[0]->mac, "02:", 3), 0);
	CU_ASSERT_EQUAL_FATAL(vm->spec->n_nics, 1);
	CU_ASSERT_EQUAL(vm->spec->nics[0]->gen, 2);
	protobuf_c_message_free_unpacked(&vm->base, NULL);

	CU_ASSERT_EQUAL(create_nics("n2b", gen2, NULL, NULL, &st), GW_RPC_RESOURCE_EXHAUSTED);
	CU_ASSERT_STRING_EQUAL(
	    st.message, "no free VF of generation 2 on this host (1 of 1 in use); delete a "
			"VM that holds one or start godwitd with another --emul-nic or --pf");
	/* A failed create leaves no VM and releases what it took (nic0 took pf0's VF). */
	CU_ASSERT_EQUAL(create_nics("n12", two, NULL, NULL, &st), GW_RPC_RESOURCE_EXHAUSTED);
	CU_ASSERT_EQUAL(create_nics("n12", two, "02:aa:bb:cc:dd:0e", NULL, &st),
			GW_RPC_RESOURCE_EXHAUSTED);
	Godwit__V1__HostInfo *h = host_info();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL_FATAL(h->n_sriov_pfs, 2);
	CU_ASSERT_EQUAL(h->sriov_pfs[0]->free_vfs, 1);
	CU_ASSERT_EQUAL(h->sriov_pfs[1]->free_vfs, 0);
	CU_ASSERT_STRING_EQUAL(h->sriov_pfs[1]->backend, "emul");
	CU_ASSERT_EQUAL(h->sriov_pfs[1]->gen->gen, 2);
	CU_ASSERT_EQUAL_FATAL(h->sriov_pfs[1]->n_vfs, 1);
	CU_ASSERT_STRING_EQUAL(h->sriov_pfs[1]->vfs[0]->vm, "n2");
	CU_ASSERT_FALSE(h->sriov_pfs[1]->vfs[0]->free);
	CU_ASSERT_TRUE(h->sriov_pfs[0]->vfs[0]->free);
	protobuf_c_message_free_unpacked(&h->base, NULL);

	/* gen 0: any generation; an explicit MAC is kept (lower-cased). */
	CU_ASSERT_EQUAL_FATAL(create_nics("nany", any, "02:AA:BB:CC:DD:0E", &vm, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(vm->nics[0]->pf, 0);
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->mac, "02:aa:bb:cc:dd:0e");
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	CU_ASSERT_EQUAL(create_nics("bad", any, "01:00:00:00:00:01", NULL, &st),
			GW_RPC_INVALID_ARGUMENT);

	/* Delete frees the VF for the next VM. */
	delete_vm("n2");
	CU_ASSERT_EQUAL(create_nics("n2b", gen2, NULL, NULL, &st), GW_RPC_OK);
}

static void test_nics_rebuilt_on_restart(void)
{
	/* Same declaration: every VM claims its VF again. */
	struct gwd fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	fresh.pool = d.pool;
	for (unsigned i = 0; i < fresh.pool.npfs; i++)
		memset(fresh.pool.pfs[i].vfs, 0, sizeof(fresh.pool.pfs[i].vfs));
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	struct gwd_vm *v = gwd_vm_find(&fresh, "n2b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL_FATAL(v->nnics, 1);
	CU_ASSERT_TRUE(v->nics[0].backed);
	CU_ASSERT_EQUAL(v->nics[0].pf, 1);
	CU_ASSERT_STRING_EQUAL(fresh.pool.pfs[1].vfs[0].vm, "n2b");
	CU_ASSERT_STRING_EQUAL(fresh.pool.pfs[0].vfs[0].vm, "nany");
	CU_ASSERT_STRING_EQUAL(fresh.pool.pfs[0].vfs[0].mac, "02:aa:bb:cc:dd:0e");
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}

	/* The host now declares only one gen1 PF: n2b's pf1 is gone, so its NIC is unbacked
	 * (a warning, no crash), and it cannot start. */
	char why[300];
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&fresh.pool, "gen=1,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	v = gwd_vm_find(&fresh, "n2b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_FALSE(v->nics[0].backed);
	CU_ASSERT_PTR_NOT_NULL(strstr(v->nics[0].reason, "pf1 vf0 is not declared"));
	CU_ASSERT_EQUAL(gwd_nics_unbacked(v), 0);
	struct gwd_vm_pb pb;
	gwd_vm_to_pb(&fresh, v, &pb);
	CU_ASSERT_STRING_EQUAL(pb.vm.nics[0]->backing, "unbacked");
	CU_ASSERT_EQUAL(gwd_nics_unbacked(gwd_vm_find(&fresh, "nany")), -1);
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}
}

static void test_no_nic_declared(void)
{
	struct gw_rpc_status st;
	const int any[] = {0, -1};
	pthread_mutex_lock(&d.lock);
	struct gwd_pool saved = d.pool;
	memset(&d.pool, 0, sizeof(d.pool));
	pthread_mutex_unlock(&d.lock);
	CU_ASSERT_EQUAL(create_nics("nonic", any, NULL, NULL, &st), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "declares no SR-IOV NIC"));
	Godwit__V1__HostInfo *h = host_info();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(h->n_sriov_pfs, 0);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	pthread_mutex_lock(&d.lock);
	d.pool = saved;
	pthread_mutex_unlock(&d.lock);
}

static enum gw_rpc_code create_backend(const char *name, const char *backend, Godwit__V1__Vm **out,
				       struct gw_rpc_status *st)
{
	Godwit__V1__NicSpec nic = GODWIT__V1__NIC_SPEC__INIT, *np = &nic;
	Godwit__V1__VmSpec spec = GODWIT__V1__VM_SPEC__INIT;
	spec.memory_bytes = 32ull << 20;
	spec.guest_path = (char *)"/bin/true";
	spec.nics = &np;
	spec.n_nics = 1;
	nic.kind = (char *)"vf";
	nic.backend = (char *)backend;
	return create_spec(name, &spec, out, st);
}

/* A host with pf0 emulated (1 VF) and pf1 a real PF (--pf) of two VFs, vf1 unavailable; the
 * PF has no network interface, so no MAC is set (a warning). */
static void test_real_vfs(void)
{
	struct gw_rpc_status st;
	char why[300];
	pthread_mutex_lock(&d.lock);
	struct gwd_pool saved = d.pool;
	memset(&d.pool, 0, sizeof(d.pool));
	CU_ASSERT_EQUAL(gwd_pool_add_emul(&d.pool, "gen=1,vfs=1", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(gwd_pool_add_pf(&d.pool, "0000:00:04.0", why, sizeof(why)), 0);
	struct gwd_pf *pf = &d.pool.pfs[1];
	sriov_emul_gen(1, &pf->gen);
	pf->nvfs = 2;
	snprintf(pf->vfs[0].host, sizeof(pf->vfs[0].host), "0000:00:10.0");
	snprintf(pf->vfs[0].driver, sizeof(pf->vfs[0].driver), "vfio-pci");
	snprintf(pf->vfs[0].group, sizeof(pf->vfs[0].group), "11");
	snprintf(pf->vfs[1].host, sizeof(pf->vfs[1].host), "0000:00:10.2");
	snprintf(pf->vfs[1].driver, sizeof(pf->vfs[1].driver), "igbvf");
	pf->vfs[1].unavailable = true;
	snprintf(pf->vfs[1].reason, sizeof(pf->vfs[1].reason), "bound to host driver igbvf");
	pthread_mutex_unlock(&d.lock);

	Godwit__V1__Vm *vm = NULL;
	CU_ASSERT_EQUAL(create_backend("rbad", "sriov", NULL, &st), GW_RPC_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "use vfio"));
	CU_ASSERT_EQUAL_FATAL(create_backend("real", "vfio", &vm, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL_FATAL(vm->n_nics, 1);
	CU_ASSERT_EQUAL(vm->nics[0]->pf, 1);
	CU_ASSERT_EQUAL(vm->nics[0]->vf, 0);
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->backend, "vfio");
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->host_address, "0000:00:10.0");
	CU_ASSERT_STRING_EQUAL(vm->spec->nics[0]->backend, "vfio");
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	CU_ASSERT_EQUAL(create_backend("real2", "vfio", NULL, &st), GW_RPC_RESOURCE_EXHAUSTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "1 unavailable"));
	CU_ASSERT_EQUAL_FATAL(create_backend("emu", "", &vm, &st), GW_RPC_OK);
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->backend, "emul");
	CU_ASSERT_STRING_EQUAL(vm->nics[0]->host_address, "");
	protobuf_c_message_free_unpacked(&vm->base, NULL);

	Godwit__V1__HostInfo *h = host_info();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL_FATAL(h->n_sriov_pfs, 2);
	const Godwit__V1__SriovPf *rp = h->sriov_pfs[1];
	CU_ASSERT_STRING_EQUAL(rp->backend, "vfio");
	CU_ASSERT_STRING_EQUAL(rp->address, "0000:00:04.0");
	CU_ASSERT_EQUAL(rp->free_vfs, 0);
	CU_ASSERT_EQUAL_FATAL(rp->n_vfs, 2);
	CU_ASSERT_STRING_EQUAL(rp->vfs[0]->vm, "real");
	CU_ASSERT_STRING_EQUAL(rp->vfs[0]->iommu_group, "11");
	CU_ASSERT_TRUE(rp->vfs[0]->available);
	CU_ASSERT_FALSE(rp->vfs[1]->available);
	CU_ASSERT_STRING_EQUAL(rp->vfs[1]->driver, "igbvf");
	CU_ASSERT_STRING_EQUAL(rp->vfs[1]->reason, "bound to host driver igbvf");
	CU_ASSERT_STRING_EQUAL(h->sriov_pfs[0]->address, "");
	CU_ASSERT_TRUE(h->sriov_pfs[0]->vfs[0]->available);
	protobuf_c_message_free_unpacked(&h->base, NULL);

	/* A handover had taken the real VF's MAC off its PF: what to give back is in the
	 * record, and a restarted godwitd knows it. */
	pthread_mutex_lock(&d.lock);
	struct gwd_vm *rv = gwd_vm_find(&d, "real");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rv);
	rv->nics[0].steered_away = true;
	rv->nics[0].held_trust = true;
	snprintf(rv->nics[0].held_mac, sizeof(rv->nics[0].held_mac), "02:aa:bb:cc:dd:01");
	CU_ASSERT_EQUAL(gwd_vm_persist(&d, rv), 0);
	pthread_mutex_unlock(&d.lock);

	/* A restart where the real PF is declared first: its VF is claimed by address. */
	struct gwd fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.state_dir, sizeof(fresh.state_dir), "%s", d.state_dir);
	fresh.pool.npfs = 2;
	fresh.pool.pfs[0] = d.pool.pfs[1];
	fresh.pool.pfs[1] = d.pool.pfs[0];
	for (unsigned i = 0; i < 2; i++)
		for (unsigned v = 0; v < fresh.pool.pfs[i].nvfs; v++)
			fresh.pool.pfs[i].vfs[v].vm[0] = '\0';
	CU_ASSERT_EQUAL_FATAL(gwd_registry_load(&fresh), 0);
	struct gwd_vm *v = gwd_vm_find(&fresh, "real");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_TRUE(v->nics[0].backed);
	CU_ASSERT_EQUAL(v->nics[0].pf, 0);
	CU_ASSERT_EQUAL(v->nics[0].backend, GWD_BACKEND_VFIO);
	CU_ASSERT_STRING_EQUAL(fresh.pool.pfs[0].vfs[0].vm, "real");
	CU_ASSERT_TRUE(v->nics[0].steered_away);
	CU_ASSERT_TRUE(v->nics[0].held_trust);
	CU_ASSERT_STRING_EQUAL(v->nics[0].held_mac, "02:aa:bb:cc:dd:01");
	/* The emulated NIC's pf0 is now the real PF: unbacked, with the reason. */
	v = gwd_vm_find(&fresh, "emu");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_FALSE(v->nics[0].backed);
	CU_ASSERT_PTR_NOT_NULL(strstr(v->nics[0].reason, "real PF 0000:00:04.0"));
	while (fresh.vms) {
		struct gwd_vm *n = fresh.vms->next;
		gwd_vm_free(fresh.vms);
		fresh.vms = n;
	}

	/* Delete returns the real VF to the pool, address and all. */
	delete_vm("real");
	delete_vm("emu");
	pthread_mutex_lock(&d.lock);
	CU_ASSERT_STRING_EQUAL(d.pool.pfs[1].vfs[0].vm, "");
	CU_ASSERT_STRING_EQUAL(d.pool.pfs[1].vfs[0].host, "0000:00:10.0");
	CU_ASSERT_EQUAL(gwd_pool_free_vfs(&d.pool, 1), 1);
	d.pool = saved;
	pthread_mutex_unlock(&d.lock);
}

static enum gw_rpc_code peer(const char *method, const char *id, ProtobufCMessage **resp,
			     struct gw_rpc_status *st)
{
	Godwit__V1__CommitRequest c = GODWIT__V1__COMMIT_REQUEST__INIT;
	Godwit__V1__AbortRequest a = GODWIT__V1__ABORT_REQUEST__INIT;
	Godwit__V1__QueryIncomingRequest q = GODWIT__V1__QUERY_INCOMING_REQUEST__INIT;
	c.migration_id = a.migration_id = q.migration_id = (char *)id;
	const ProtobufCMessage *req = !strcmp(method, "Commit")	 ? &c.base
				      : !strcmp(method, "Abort") ? &a.base
								 : &q.base;
	ProtobufCMessage *r = NULL;
	enum gw_rpc_code code =
	    gw_rpc_unary(cl, &godwit__v1__peer__descriptor, method, req, &r, 10000, st);
	if (resp)
		*resp = r;
	else if (r)
		protobuf_c_message_free_unpacked(r, NULL);
	return code;
}

static int query_state(const char *id)
{
	struct gw_rpc_status st;
	ProtobufCMessage *r = NULL;
	if (peer("QueryIncoming", id, &r, &st) != GW_RPC_OK)
		return -1;
	int state = ((Godwit__V1__QueryIncomingResponse *)r)->state;
	protobuf_c_message_free_unpacked(r, NULL);
	return state;
}

static void save_step(const char *id, bool source, int step, Godwit__V1__Migration *status)
{
	Godwit__Internal__V1__MigrationRecord rec = GODWIT__INTERNAL__V1__MIGRATION_RECORD__INIT;
	rec.id = (char *)id;
	rec.vm = (char *)"moved";
	rec.source = source;
	rec.step = step;
	rec.status = status;
	rec.peer = (char *)"127.0.0.1:1";
	CU_ASSERT_EQUAL_FATAL(gwd_migrec_save(&d, &rec), 0);
}

#define MSTEP(x) GODWIT__INTERNAL__V1__MIGRATION_STEP__MIGRATION_STEP_##x
#define QST(x)	 GODWIT__V1__QUERY_INCOMING_RESPONSE__STATE__STATE_##x

/* The destination answers from its migration records once the incoming VM is gone: a commit
 * that was made stays made (a retried Commit succeeds, an Abort is refused), an abort stays
 * an abort; records survive a restart (they are files). */
static void test_peer_records(void)
{
	struct gw_rpc_status st;
	const char *unknown = "0123456789abcdef";
	CU_ASSERT_EQUAL(peer("Commit", unknown, NULL, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(peer("Abort", unknown, NULL, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(query_state(unknown), QST(UNKNOWN));

	const char *committed = "aaaa0000bbbb1111";
	save_step(committed, false, MSTEP(COMMITTED), NULL);
	CU_ASSERT_EQUAL(gwd_migrec_step(&d, committed), MSTEP(COMMITTED));
	CU_ASSERT_EQUAL(peer("Commit", committed, NULL, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(peer("Abort", committed, NULL, &st), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "already committed"));
	CU_ASSERT_EQUAL(query_state(committed), QST(COMMITTED));

	const char *aborted = "cccc2222dddd3333";
	save_step(aborted, false, MSTEP(ABORTED), NULL);
	CU_ASSERT_EQUAL(peer("Commit", aborted, NULL, &st), GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "aborted"));
	CU_ASSERT_EQUAL(peer("Abort", aborted, NULL, &st), GW_RPC_OK);
	CU_ASSERT_EQUAL(query_state(aborted), QST(ABORTED));

	/* An id that is not godwitd's hex never names a file. */
	CU_ASSERT_EQUAL(peer("Commit", "../../token", NULL, &st), GW_RPC_NOT_FOUND);
	CU_ASSERT_EQUAL(query_state("../vms/x"), QST(UNKNOWN));
	Godwit__Internal__V1__MigrationRecord bad = GODWIT__INTERNAL__V1__MIGRATION_RECORD__INIT;
	bad.id = (char *)"../escape";
	CU_ASSERT_EQUAL(gwd_migrec_save(&d, &bad), -EINVAL);
	CU_ASSERT_PTR_NULL(gwd_migrec_load(&d, "../escape"));

	/* Replaced atomically: no temporary file is left behind. */
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s/migrations/%s.pb.tmp", d.state_dir, committed);
	CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);
}

/* A source's ended migration is listed again after a restart; Resolve checks what it is
 * asked and refuses a migration that is not in doubt. */
static void test_migration_records(void)
{
	const char *id = "eeee4444ffff5555";
	Godwit__V1__Migration stm = GODWIT__V1__MIGRATION__INIT;
	stm.id = (char *)id;
	stm.vm = (char *)"moved";
	stm.destination = (char *)"127.0.0.1:1";
	stm.phase = GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED;
	stm.error = (char *)"the destination did not take the VM (test)";
	save_step(id, true, MSTEP(ABORTED), &stm);
	gwd_migrations_reconcile(&d);

	struct gw_rpc_status st;
	ProtobufCMessage *resp = NULL;
	Godwit__V1__ListMigrationsRequest lreq = GODWIT__V1__LIST_MIGRATIONS_REQUEST__INIT;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "List",
					   &lreq.base, &resp, 10000, &st),
			      GW_RPC_OK);
	Godwit__V1__ListMigrationsResponse *l = (Godwit__V1__ListMigrationsResponse *)resp;
	bool found = false;
	for (size_t i = 0; i < l->n_migrations; i++)
		if (!strcmp(l->migrations[i]->id, id)) {
			found = true;
			CU_ASSERT_EQUAL(l->migrations[i]->phase,
					GODWIT__V1__MIGRATION_PHASE__MIGRATION_PHASE_FAILED);
			CU_ASSERT_STRING_EQUAL(l->migrations[i]->error, stm.error);
		}
	CU_ASSERT_TRUE(found);
	protobuf_c_message_free_unpacked(resp, NULL);

	Godwit__V1__ResolveMigrationRequest r = GODWIT__V1__RESOLVE_MIGRATION_REQUEST__INIT;
	r.id = (char *)id;
	CU_ASSERT_EQUAL(gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Resolve", &r.base,
				     &resp, 10000, &st),
			GW_RPC_INVALID_ARGUMENT);
	r.keep = GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_DESTINATION;
	r.destination_down = true;
	CU_ASSERT_EQUAL(gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Resolve", &r.base,
				     &resp, 10000, &st),
			GW_RPC_INVALID_ARGUMENT);
	r.keep = GODWIT__V1__RESOLVE_MIGRATION_REQUEST__KEEP__KEEP_SOURCE;
	CU_ASSERT_EQUAL(gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Resolve", &r.base,
				     &resp, 10000, &st),
			GW_RPC_FAILED_PRECONDITION);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "not in doubt"));
	r.id = (char *)"0000111122223333";
	CU_ASSERT_EQUAL(gw_rpc_unary(cl, &godwit__v1__migrations__descriptor, "Resolve", &r.base,
				     &resp, 10000, &st),
			GW_RPC_NOT_FOUND);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	char tmpl[] = "/tmp/gw-daemon-test-XXXXXX";
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(d.state_dir, sizeof(d.state_dir), "%s", tmpl);
	snprintf(d.host_id, sizeof(d.host_id), "testhost");
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	char why[300];
	if (gwd_pool_add_emul(&d.pool, "gen=1,vfs=1", why, sizeof(why)) ||
	    gwd_pool_add_emul(&d.pool, "gen=2,vfs=1", why, sizeof(why)))
		return 1;
	gwd_pool_finish(&d.pool);
	if (gwd_registry_load(&d))
		return 1;
	char target[300];
	snprintf(target, sizeof(target), "unix:%s/api.sock", tmpl);
	const char *listen[] = {target, NULL};
	struct gw_rpc_method methods[32];
	size_t n = gwd_api_methods(methods, 32);
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "t"};
	if (gw_rpc_server_start(&cfg, methods, n, &d, &srv) ||
	    gw_rpc_client_open(target, NULL, 0, &cl))
		return 1;
	static const struct gw_test_case cases[] = {
	    {"validate names", test_validate_name},
	    {"validate specs", test_validate_spec},
	    {"validate what a spec boots", test_validate_spec_boot},
	    {"validate MACs", test_validate_mac},
	    {"validate a migration's tuning", test_validate_migrate_tuning},
	    {"channels auto: cores of both hosts", test_channels_auto},
	    {"validate NICs of a spec", test_validate_spec_nics},
	    {"--emul-nic values", test_emul_nic_option},
	    {"VF pool: order, exhaustion, release, claim", test_pool},
	    {"MACs derived from VM names", test_mac_from_name},
	    {"create, get, list, persist", test_create_get_list},
	    {"bad requests get the right status", test_bad_requests},
	    {"create Linux VMs: kernel, initrd, cmdline", test_create_linux},
	    {"console of a stopped VM", test_console_not_running},
	    {"host info", test_host_info},
	    {"delete removes the VM and its files", test_delete},
	    {"create with NICs takes and frees VFs", test_create_with_nics},
	    {"held VFs are rebuilt on restart", test_nics_rebuilt_on_restart},
	    {"no SR-IOV NIC declared", test_no_nic_declared},
	    {"real VFs (--pf): create, host info, restart, delete", test_real_vfs},
	    {"Peer answers from migration records", test_peer_records},
	    {"migration records listed after a restart; Resolve's checks", test_migration_records},
	};
	int rc = gw_test_run("daemon", cases, GW_TEST_COUNT(cases));
	gw_rpc_client_close(cl);
	gw_rpc_server_shutdown(srv);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpl);
	return rc;
}
