/* SPDX-License-Identifier: Apache-2.0 */
/* godwit vm create --from-libvirt-xml: domain XML as virsh dumpxml writes it
 * (tests/data/libvirt/domains/) into a VM spec, and what must be refused, by name. */
#include "libvirt_xml.h"
#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct cli_lvx_vm vm;
static char why[1000];

static int parse(const char *file)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/domains/%s", GW_LIBVIRT_DATA, file);
	why[0] = '\0';
	return cli_lvx_parse_file(path, &vm, why, sizeof(why));
}

static void test_two_vfs(void)
{
	CU_ASSERT_EQUAL_FATAL(parse("web-vf.xml"), 0);
	CU_ASSERT_STRING_EQUAL(vm.name, "web");
	CU_ASSERT_EQUAL(vm.memory_bytes, 512ull << 20);
	CU_ASSERT_EQUAL(vm.cpus, 2);
	CU_ASSERT_STRING_EQUAL(vm.kernel, "/var/lib/godwit/images/bzImage");
	CU_ASSERT_STRING_EQUAL(vm.initrd, "/var/lib/godwit/images/initrd.cpio.gz");
	CU_ASSERT_STRING_EQUAL(vm.cmdline, "console=ttyS0 quiet");
	CU_ASSERT_EQUAL_FATAL(vm.nnics, 2);
	CU_ASSERT_STRING_EQUAL(vm.nics[0].host, "0000:03:10.2");
	CU_ASSERT_STRING_EQUAL(vm.nics[0].mac, "52:54:00:6b:3c:01");
	CU_ASSERT_EQUAL(vm.nics[0].vlan, 42);
	CU_ASSERT_TRUE(vm.nics[0].trust);
	CU_ASSERT_STRING_EQUAL(vm.nics[1].host, "0000:03:10.4");
	CU_ASSERT_STRING_EQUAL(vm.nics[1].mac, "52:54:00:6b:3c:02");
	CU_ASSERT_EQUAL(vm.nics[1].vlan, 0);
	CU_ASSERT_FALSE(vm.nics[1].trust);
}

static void test_running_minimal(void)
{
	CU_ASSERT_EQUAL_FATAL(parse("running-minimal.xml"), 0);
	CU_ASSERT_STRING_EQUAL(vm.name, "tiny");
	CU_ASSERT_EQUAL(vm.memory_bytes, 256ull << 20);
	CU_ASSERT_EQUAL(vm.cpus, 1);
	CU_ASSERT_STRING_EQUAL(vm.initrd, "");
	CU_ASSERT_STRING_EQUAL(vm.cmdline, "");
	CU_ASSERT_EQUAL(vm.nnics, 0);
}

/* Each file asks for something godwit cannot honour: refused, naming the element. */
static void test_refused(void)
{
	static const struct {
		const char *file, *names;
	} cases[] = {
	    {"refuse-disk.xml", "<disk type='file'>"},
	    {"refuse-graphics.xml", "<graphics type='vnc'>"},
	    {"refuse-interface-network.xml", "<interface type='network'>"},
	    {"refuse-hostdev-pci.xml", "<hostdev type='pci'>"},
	    {"refuse-vlan-trunk.xml", "<vlan>"},
	    {"refuse-memballoon.xml", "<memballoon>"},
	    {"refuse-firmware-boot.xml", "no <kernel>"},
	    {"refuse-hugepages.xml", "<memoryBacking>"},
	    {"refuse-balloon-target.xml", "<currentMemory> differs"},
	    {"refuse-tcg.xml", "<domain type='qemu'>"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].file);
		if (rc != -ENOTSUP || !strstr(why, cases[i].names))
			fprintf(stderr, "%s: %d %s\n", cases[i].file, rc, why);
		CU_ASSERT_EQUAL(rc, -ENOTSUP);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].names));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "line "));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].file)); /* the file is named too */
	}
}

/* Malformed input: a clear error, never a partial spec. */
static void test_bad(void)
{
	CU_ASSERT_EQUAL(parse("bad-truncated.xml"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not well-formed XML: line"));
	CU_ASSERT_EQUAL(parse("bad-not-a-domain.xml"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a libvirt domain"));
	CU_ASSERT_EQUAL(parse("bad-vlan-id.xml"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "id='4095' is not a VLAN ID"));
	/* An external entity is never read. */
	CU_ASSERT_EQUAL(parse("bad-external-entity.xml"), -EINVAL);
	CU_ASSERT_PTR_NULL(strstr(why, "root:"));
	CU_ASSERT_EQUAL(parse("no-such-file.xml"), -ENOENT);

	static const char *const bad[] = {
	    "",
	    "<",
	    "<domain/>",
	    "<domain type='kvm'/>",
	    "\x01\x02\x03",
	    "<domain type='kvm'><name>a</name><memory unit='parsecs'>1</memory></domain>",
	    "<domain type='kvm'><name>a</name><memory>-1</memory></domain>",
	    "<domain type='kvm'><name>a</name><memory>99999999999999999999</memory></domain>",
	    "<domain type='kvm'><name>a</name><memory>1</memory><vcpu>0</vcpu></domain>",
	    "<domain type='kvm'><name>a</name><memory>1</memory><vcpu>1</vcpu></domain>", /* no os
											   */
	    "<domain type='kvm'><name>a</name><memory>1</memory><os><type>hvm</type>"
	    "<kernel>relative</kernel></os></domain>",
	    "<domain type='kvm'><name>a</name><memory>1</memory><os><type>hvm</type>"
	    "<kernel>/k</kernel></os><devices><interface type='hostdev'><source><address "
	    "type='pci' domain='0' bus='0' slot='0x20' function='0'/></source></interface>"
	    "</devices></domain>",
	    "<domain type='kvm'><name>a</name><memory>1</memory><os><type>hvm</type>"
	    "<kernel>/k</kernel></os><devices><interface type='hostdev'/></devices></domain>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		int rc = cli_lvx_parse(bad[i], strlen(bad[i]), &vm, why, sizeof(why));
		CU_ASSERT_TRUE(rc == -EINVAL || rc == -ENOTSUP);
		CU_ASSERT_TRUE(why[0] != '\0');
	}
}

/* More NICs than a godwit VM has; a refusal deep in a NIC. */
static void test_limits(void)
{
	char xml[4000];
	size_t l = (size_t)snprintf(xml, sizeof(xml),
				    "<domain type='kvm'><name>a</name><memory>1024</memory><os>"
				    "<type>hvm</type><kernel>/k</kernel></os><devices>");
	for (int i = 0; i < 5; i++)
		l += (size_t)snprintf(xml + l, sizeof(xml) - l,
				      "<interface type='hostdev'><source><address type='pci' "
				      "domain='0' bus='3' slot='16' function='%d'/></source>"
				      "</interface>",
				      i);
	l += (size_t)snprintf(xml + l, sizeof(xml) - l, "</devices></domain>");
	CU_ASSERT_EQUAL(cli_lvx_parse(xml, l, &vm, why, sizeof(why)), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "more than 4 NICs"));
	static const char model[] =
	    "<domain type='kvm'><name>a</name><memory>1024</memory><os><type>hvm</type>"
	    "<kernel>/k</kernel></os><devices><interface type='hostdev'><source><address "
	    "type='pci' domain='0' bus='3' slot='16' function='0'/></source>"
	    "<bandwidth><inbound average='1000'/></bandwidth></interface></devices></domain>";
	CU_ASSERT_EQUAL(cli_lvx_parse(model, strlen(model), &vm, why, sizeof(why)), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "<bandwidth>"));
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"a domain with two VFs (MAC, VLAN, trust)", test_two_vfs},
	    {"a running domain's XML, no NIC", test_running_minimal},
	    {"what godwit cannot honour is refused by name", test_refused},
	    {"malformed XML and values", test_bad},
	    {"limits", test_limits},
	};
	return gw_test_run("cli_libvirt_xml", cases, GW_TEST_COUNT(cases));
}
