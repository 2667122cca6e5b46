/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for sriov/src/vf_spec.c: godwit-vmm's --vf spec (backend=emul|vfio, host=) and
 * PCI addresses in text. */
#include "godwit/sriov.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAC "02:00:00:00:00:01"

static struct sriov_vf_config_spec spec;
static char err[256];

static int parse(const char *s)
{
	err[0] = 0;
	return sriov_vf_spec_parse(s, &spec, err, sizeof(err));
}

/* The spec fails with err holding every one of the given fragments. */
static void refused(const char *s, const char *want1, const char *want2)
{
	CU_ASSERT_EQUAL(parse(s), -EINVAL);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fprintf(stderr, "\n  '%s': err '%s', wanted '%s'%s%s\n", s, err, want1,
			want2 ? " and " : "", want2 ? want2 : "");
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want1));
	if (want2)
		CU_ASSERT_PTR_NOT_NULL(strstr(err, want2));
}

static void test_vfio_host(void)
{
	CU_ASSERT_EQUAL_FATAL(parse("pf=0,vf=1,mac=" MAC ",backend=vfio,host=0000:00:04.1"), 0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "vfio");
	CU_ASSERT_STRING_EQUAL(spec.host, "0000:00:04.1");
	CU_ASSERT_EQUAL(spec.pf, 0);
	CU_ASSERT_EQUAL(spec.vf, 1);
	CU_ASSERT_EQUAL(spec.gen, 1);
	CU_ASSERT_STRING_EQUAL(spec.uplink, "none");
	/* The device's own registers: the queue pages go straight to the guest by default. */
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_DIRECT);
	CU_ASSERT_FALSE(spec.mbx_trap);
	CU_ASSERT_FALSE(spec.emulated);

	/* host= before backend=: the order of keys does not matter. */
	CU_ASSERT_EQUAL_FATAL(parse("host=0000:03:10.6,backend=vfio,mac=" MAC), 0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "vfio");
	CU_ASSERT_STRING_EQUAL(spec.host, "0000:03:10.6");
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_DIRECT);

	/* Upper-case hex is a PCI address too; the spec keeps it as written. */
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=vfio,host=00AB:0C:1F.7"), 0);
	CU_ASSERT_STRING_EQUAL(spec.host, "00AB:0C:1F.7");

	/* uplink=none is no uplink: allowed. */
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=vfio,host=0000:00:04.1,uplink=none"), 0);
	CU_ASSERT_STRING_EQUAL(spec.uplink, "none");
}

static void test_vfio_pages(void)
{
	/* An explicit pages= wins over the vfio default, before or after backend=. */
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=vfio,host=0000:00:04.1,pages=trap"), 0);
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_TRAP);
	CU_ASSERT_EQUAL_FATAL(parse("pages=trap,mac=" MAC ",backend=vfio,host=0000:00:04.1"), 0);
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_TRAP);
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",pages=direct,backend=vfio,host=0000:00:04.1"), 0);
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_DIRECT);
	/* mbx=trap still parses for vfio (vf.c then traps the mailbox page's reads too). */
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=vfio,host=0000:00:04.1,mbx=trap"), 0);
	CU_ASSERT_TRUE(spec.mbx_trap);
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_DIRECT);
}

static void test_vfio_refused(void)
{
	refused("pf=0,vf=1,mac=" MAC ",backend=vfio", "backend=vfio needs host=", "DDDD:BB:DD.F");
	refused("mac=" MAC ",backend=emul,host=0000:00:04.1", "host=", "backend=vfio");
	refused("mac=" MAC ",host=0000:00:04.1", "host=", "backend=vfio"); /* emul by default */
	refused("mac=" MAC ",backend=vfio,host=0000:00:04.1,uplink=udp:127.0.0.1:9000",
		"uplink=", "backend=emul");
	refused("mac=" MAC ",backend=vfio,host=0000:00:04.1,uplink=packet:eth1", "uplink=", NULL);
	/* host= does not stand in for the MAC. */
	refused("backend=vfio,host=0000:00:04.1", "mac=", NULL);
	refused("mac=" MAC ",backend=kvm", "'kvm' for 'backend'", "emul or vfio");
	refused("mac=" MAC ",backend=VFIO", "for 'backend'", "emul or vfio");
	refused("mac=" MAC ",hots=0000:00:04.1", "unknown key 'hots'", "host");
}

static void test_bad_hosts(void)
{
	static const char *const bad[] = {
	    "0000:00:04.10", /* too long */
	    "000:00:04.1",   /* too short */
	    "0000:00:4.1",   /* device in one digit */
	    "0:0:4.1",	     /* the short form lspci prints without -D */
	    "00:04.1",	     /* no domain */
	    "0000:00:04.8",  /* function 8 */
	    " 000:00:04.1",  /* what sscanf alone would take: a space, */
	    "+000:00:04.1",  /* a sign, */
	    "0x00:00:04.1",  /* a 0x prefix, */
	    "0000:-1:04.1",  /* a negative bus */
	    "0000:00: 4.1",
	    "0000:00:04.9",
	    "0000:00:20.0", /* device 32 */
	    "0000:00:ff.0",
	    "0000:00:04:1",  /* ':' for the dot */
	    "0000.00:04.1",  /* '.' for the first colon */
	    "0000:00.04.1",  /* '.' for the second colon */
	    "0000-00-04-1",  /* no separators at all */
	    "000g:00:04.1",  /* non-hex in the domain */
	    "0000:0z:04.1",  /* in the bus */
	    "0000:00:04.a",  /* the function is one decimal digit */
	    "0000:00:04.1x", /* trailing junk */
	    "",
	};
	char s[128];
	for (size_t i = 0; i < GW_TEST_COUNT(bad); i++) {
		unsigned out = 0xdeadbeef;
		CU_ASSERT_EQUAL(sriov_pci_addr_parse(bad[i], &out), -EINVAL);
		CU_ASSERT_EQUAL(out, 0xdeadbeef); /* untouched on failure */
		snprintf(s, sizeof(s), "mac=" MAC ",backend=vfio,host=%s", bad[i]);
		refused(s, "for 'host'", "DDDD:BB:DD.F");
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i]));
	}
	CU_ASSERT_EQUAL(sriov_pci_addr_parse(NULL, NULL), -EINVAL);
}

static void test_addr_pack(void)
{
	static const struct {
		const char *s;
		unsigned want;
	} ok[] = {
	    {"0000:00:14.2", 0x000000a2}, {"0000:00:04.0", 0x00000020},
	    {"0000:00:00.0", 0x00000000}, {"0001:02:03.4", 0x0001021c},
	    {"0000:00:1f.7", 0x000000ff}, {"0000:00:1F.7", 0x000000ff},
	    {"abcd:ef:1f.7", 0xabcdefff}, {"ABCD:EF:1F.7", 0xabcdefff},
	    {"AbCd:eF:10.3", 0xabcdef83}, {"ffff:ff:1f.7", 0xffffffff},
	};
	for (size_t i = 0; i < GW_TEST_COUNT(ok); i++) {
		unsigned out = 0xdeadbeef;
		CU_ASSERT_EQUAL(sriov_pci_addr_parse(ok[i].s, &out), 0);
		CU_ASSERT_EQUAL(out, ok[i].want);
		if (out != ok[i].want)
			fprintf(stderr, "\n  '%s': %#x, wanted %#x\n", ok[i].s, out, ok[i].want);
		CU_ASSERT_EQUAL(sriov_pci_addr_parse(ok[i].s, NULL), 0);
	}
	/* The formula itself: domain << 16 | bus << 8 | device << 3 | function. */
	char s[16];
	for (unsigned dev = 0; dev < 32; dev++)
		for (unsigned fn = 0; fn < 8; fn++) {
			unsigned out = 0;
			snprintf(s, sizeof(s), "%04x:%02x:%02x.%u", 0x1234u, 0x56u, dev, fn);
			CU_ASSERT_EQUAL(sriov_pci_addr_parse(s, &out), 0);
			CU_ASSERT_EQUAL(out, 0x1234u << 16 | 0x56u << 8 | dev << 3 | fn);
		}
}

/* The emul backend's specs parse as before the vfio backend came. */
static void test_emul_unchanged(void)
{
	CU_ASSERT_EQUAL_FATAL(parse("pf=2,vf=3,gen=2,mac=" MAC ",uplink=udp:127.0.0.1:9000,x=1"),
			      0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "emul");
	CU_ASSERT_STRING_EQUAL(spec.host, "");
	CU_ASSERT_EQUAL(spec.pf, 2);
	CU_ASSERT_EQUAL(spec.vf, 3);
	CU_ASSERT_EQUAL(spec.gen, 2);
	CU_ASSERT_STRING_EQUAL(spec.uplink,
			       "udp:127.0.0.1:9000,x=1");   /* the rest, commas and all */
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_TRAP); /* emul: trapped unless asked */
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
	CU_ASSERT_EQUAL(memcmp(spec.mac, mac, 6), 0);

	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=emul"), 0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "emul");
	CU_ASSERT_STRING_EQUAL(spec.uplink, "none");
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_TRAP);
	CU_ASSERT_EQUAL(spec.gen, 1);

	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",pages=direct,mbx=trap,trust=off,"
				    "backing=emulated,uplink=none"),
			      0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "emul");
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_DIRECT);
	CU_ASSERT_TRUE(spec.mbx_trap);
	CU_ASSERT_TRUE(spec.untrusted);
	CU_ASSERT_TRUE(spec.emulated);

	/* A previous parse leaves nothing behind. */
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC ",backend=vfio,host=0000:00:04.1"), 0);
	CU_ASSERT_EQUAL_FATAL(parse("mac=" MAC), 0);
	CU_ASSERT_STRING_EQUAL(spec.backend, "emul");
	CU_ASSERT_STRING_EQUAL(spec.host, "");
	CU_ASSERT_EQUAL(spec.queue_pages, SRIOV_PAGE_TRAP);

	refused("pf=0,vf=0", "mac=", NULL);
	refused("mac=" MAC ",vf=7", "for 'vf'", "0..6");
	refused("mac=" MAC ",gen=3", "for 'gen'", NULL);
	refused("mac=" MAC ",pages=maybe", "for 'pages'", "trap or direct");
	refused("mac=" MAC ",nokey", "expected key=value", NULL);
	refused("mac=01:00:00:00:00:01", "for 'mac'", "unicast");
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"vfio with host=", test_vfio_host},
	    {"vfio queue pages", test_vfio_pages},
	    {"vfio specs refused", test_vfio_refused},
	    {"bad host addresses", test_bad_hosts},
	    {"PCI address packing", test_addr_pack},
	    {"emul specs unchanged", test_emul_unchanged},
	};
	return gw_test_run("sriov_vf_spec", cases, GW_TEST_COUNT(cases));
}
