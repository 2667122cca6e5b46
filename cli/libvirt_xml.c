/* SPDX-License-Identifier: Apache-2.0 */
/* A libvirt domain's XML as a godwit VM spec (libvirt's domain format: libvirt.org/formatdomain).
 * Every element is looked at: those godwit honours are taken, a short list of bookkeeping
 * ones is ignored (docs/operator-guide.md names them), and anything else is refused by name. */
#include "libvirt_xml.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a refusal or an error says about where: "line 12: <disk type='file'>". */
static void where(xmlNodePtr e, char *out, size_t n)
{
	xmlChar *type = xmlGetProp(e, (const xmlChar *)"type");
	if (type)
		snprintf(out, n, "line %ld: <%s type='%.40s'>", xmlGetLineNo(e),
			 (const char *)e->name, (const char *)type);
	else
		snprintf(out, n, "line %ld: <%s>", xmlGetLineNo(e), (const char *)e->name);
	xmlFree(type);
}

__attribute__((format(printf, 5, 6))) static int fail(int err, xmlNodePtr e, char *why, size_t n,
						      const char *fmt, ...)
{
	char at[160], msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where(e, at, sizeof(at));
	snprintf(why, n, "%s: %s", at, msg);
	return err;
}

#define REFUSE(e, ...) fail(-ENOTSUP, e, why, n, __VA_ARGS__)
#define BAD(e, ...)    fail(-EINVAL, e, why, n, __VA_ARGS__)

static bool is(xmlNodePtr e, const char *name)
{
	return !strcmp((const char *)e->name, name);
}

/* An attribute's value, or "" when absent (the returned text is e's or static). */
static const char *attr(xmlNodePtr e, const char *name, char *buf, size_t n)
{
	xmlChar *v = xmlGetProp(e, (const xmlChar *)name);
	buf[0] = '\0';
	if (v)
		snprintf(buf, n, "%s", (const char *)v);
	xmlFree(v);
	return buf;
}

static bool attr_is(xmlNodePtr e, const char *name, const char *want)
{
	char b[64];
	return !strcmp(attr(e, name, b, sizeof(b)), want);
}

/* The element's text, trimmed. -EINVAL when it does not fit. */
static int text(xmlNodePtr e, char *out, size_t n)
{
	xmlChar *t = xmlNodeGetContent(e);
	const char *s = t ? (const char *)t : "";
	s += strspn(s, " \t\r\n");
	size_t l = strlen(s);
	while (l && strchr(" \t\r\n", s[l - 1]))
		l--;
	int rc = l < n ? 0 : -EINVAL;
	if (rc == 0) {
		memcpy(out, s, l);
		out[l] = '\0';
	}
	xmlFree(t);
	return rc;
}

/* An unsigned number in decimal or 0x hex, all of the string. */
static int number(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	if (!s[0] || s[0] == '-')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end || *out > max ? -EINVAL : 0;
}

/* libvirt's memory units (formatdomain "Memory Allocation"): KiB when none is given. */
static int memory_bytes(xmlNodePtr e, uint64_t *out, char *why, size_t n)
{
	static const struct {
		const char *unit;
		uint64_t scale;
	} units[] = {
	    {"b", 1},
	    {"bytes", 1},
	    {"KB", 1000},
	    {"k", 1024},
	    {"KiB", 1024},
	    {"MB", 1000000},
	    {"M", 1024 * 1024},
	    {"MiB", 1024 * 1024},
	    {"GB", 1000000000},
	    {"G", 1024 * 1024 * 1024},
	    {"GiB", 1024 * 1024 * 1024},
	    {"TB", 1000000000000ull},
	    {"T", 1024ull * 1024 * 1024 * 1024},
	    {"TiB", 1024ull * 1024 * 1024 * 1024},
	};
	char unit[16], t[32];
	unsigned long long v;
	attr(e, "unit", unit, sizeof(unit));
	if (!unit[0])
		snprintf(unit, sizeof(unit), "KiB");
	if (text(e, t, sizeof(t)) || number(t, UINT64_MAX, &v))
		return BAD(e, "'%s' is not a size", t);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(unit, units[i].unit)) {
			if (v > UINT64_MAX / units[i].scale)
				return BAD(e, "%llu %s is too large", v, unit);
			*out = v * units[i].scale;
			return 0;
		}
	}
	return BAD(e, "unit '%s' is not one of libvirt's (b, KiB, MiB, GiB, KB, MB, ...)", unit);
}

/* The element children of e, in order; text and comments are skipped. */
#define FOR_CHILDREN(c, e)                                                                         \
	for (xmlNodePtr c = (e)->children; c; c = c->next)                                         \
		if (c->type == XML_ELEMENT_NODE)

/* An element with no element children (its attributes are the caller's concern). */
static int leaf(xmlNodePtr e, char *why, size_t n)
{
	FOR_CHILDREN(c, e)
	return REFUSE(c, "godwit does not know this part of <%s>; remove it",
		      (const char *)e->name);
	return 0;
}

/* <address domain= bus= slot= function=/> as "dddd:bb:ss.f". */
static int pci_address(xmlNodePtr e, char out[13], char *why, size_t n)
{
	static const char *const names[] = {"domain", "bus", "slot", "function"};
	static const unsigned long long max[] = {0xffff, 0xff, 0x1f, 7};
	unsigned long long v[4];
	char b[32];
	if (!attr_is(e, "type", "pci") && attr(e, "type", b, sizeof(b))[0])
		return REFUSE(e, "a VF is named by a PCI address (type='pci')");
	for (int i = 0; i < 4; i++) {
		if (number(attr(e, names[i], b, sizeof(b)), max[i], &v[i]))
			return BAD(e, "%s='%s' is not a PCI %s (0..0x%llx)", names[i], b, names[i],
				   max[i]);
	}
	snprintf(out, 13, "%04llx:%02llx:%02llx.%llx", v[0], v[1], v[2], v[3]);
	return leaf(e, why, n);
}

/* <vlan><tag id='N'/></vlan>: one untagged-to-the-guest port VLAN. */
static int nic_vlan(xmlNodePtr e, struct cli_lvx_nic *nic, char *why, size_t n)
{
	char b[32];
	unsigned long long id;
	if (attr(e, "trunk", b, sizeof(b))[0] && strcmp(b, "no"))
		return REFUSE(e, "a VLAN trunk: godwit sets one port VLAN per VF");
	FOR_CHILDREN(c, e)
	{
		if (!is(c, "tag"))
			return REFUSE(c, "godwit does not know this part of <vlan>; remove it");
		if (nic->vlan)
			return REFUSE(c, "a second VLAN tag: godwit sets one port VLAN per VF");
		if (attr(c, "nativeMode", b, sizeof(b))[0])
			return REFUSE(c, "nativeMode='%s': godwit sets a plain port VLAN", b);
		if (number(attr(c, "id", b, sizeof(b)), 4094, &id) || id == 0)
			return BAD(c, "id='%s' is not a VLAN ID (1..4094)", b);
		nic->vlan = (unsigned)id;
	}
	if (!nic->vlan)
		return BAD(e, "a <vlan> without a <tag id=.../>");
	return 0;
}

static int interface(xmlNodePtr e, struct cli_lvx_vm *vm, char *why, size_t n)
{
	char b[64];
	if (!attr_is(e, "type", "hostdev"))
		return REFUSE(e,
			      "godwit gives a VM SR-IOV VFs only: use <interface type='hostdev'> "
			      "with a VF's PCI address");
	if (vm->nnics == CLI_LVX_NIC_MAX)
		return REFUSE(e, "more than %d NICs: godwit gives a VM at most %d", CLI_LVX_NIC_MAX,
			      CLI_LVX_NIC_MAX);
	struct cli_lvx_nic *nic = &vm->nics[vm->nnics];
	memset(nic, 0, sizeof(*nic));
	attr(e, "trustGuestRxFilters", b, sizeof(b));
	nic->trust = !strcmp(b, "yes");
	FOR_CHILDREN(c, e)
	{
		int rc = 0;
		if (is(c, "mac")) {
			if (text(c, b, 1) || !attr(c, "address", nic->mac, sizeof(nic->mac))[0])
				return BAD(c, "<mac> needs address='..:..:..:..:..:..'");
			rc = leaf(c, why, n);
		} else if (is(c, "source")) {
			bool have = false;
			FOR_CHILDREN(a, c)
			{
				if (!is(a, "address") || have)
					return REFUSE(a, "a hostdev interface's source is one "
							 "<address type='pci'>");
				if ((rc = pci_address(a, nic->host, why, n)))
					return rc;
				have = true;
			}
			if (!have)
				return BAD(c, "no <address type='pci' .../> of the VF");
		} else if (is(c, "vlan")) {
			rc = nic_vlan(c, nic, why, n);
		} else if (is(c, "driver")) {
			/* The host side: godwit always uses vfio-pci. */
			if (attr(c, "name", b, sizeof(b))[0] && strcmp(b, "vfio"))
				return REFUSE(c, "driver name='%s': godwit assigns VFs with vfio",
					      b);
			rc = leaf(c, why, n);
		} else if (is(c, "alias") || is(c, "address")) {
			/* Bookkeeping of a running domain, and the guest-side PCI slot, which
			 * godwit chooses itself. */
		} else {
			return REFUSE(c, "godwit cannot honour this part of a NIC; remove it");
		}
		if (rc)
			return rc;
	}
	if (!nic->host[0])
		return BAD(e, "no <source><address type='pci' .../></source>: which VF?");
	vm->nnics++;
	return 0;
}

/* A pty serial port or console: godwit's VM has one serial console (godwit vm console). */
static int console(xmlNodePtr e, char *why, size_t n)
{
	if (!attr_is(e, "type", "pty"))
		return REFUSE(e, "godwit gives a VM one serial console on a pty; use type='pty'");
	FOR_CHILDREN(c, e)
	{
		char b[32];
		if (is(c, "target")) {
			attr(c, "type", b, sizeof(b));
			if (b[0] && strcmp(b, "isa-serial") && strcmp(b, "serial"))
				return REFUSE(c, "a %s console: godwit's is a serial port", b);
		} else if (!is(c, "source") && !is(c, "alias") && !is(c, "log")) {
			return REFUSE(c, "godwit cannot honour this part of a console; remove it");
		}
	}
	return 0;
}

static int devices(xmlNodePtr e, struct cli_lvx_vm *vm, char *why, size_t n)
{
	char model[64], type[64];
	FOR_CHILDREN(c, e)
	{
		int rc = 0;
		attr(c, "model", model, sizeof(model));
		attr(c, "type", type, sizeof(type));
		if (is(c, "interface"))
			rc = interface(c, vm, why, n);
		else if (is(c, "serial") || is(c, "console"))
			rc = console(c, why, n);
		else if (is(c, "emulator"))
			; /* the device model's binary: godwit-vmm is godwit's */
		else if (is(c, "controller") && !strcmp(type, "pci") &&
			 (!strcmp(model, "pci-root") || !strcmp(model, "pcie-root")))
			; /* the root bus every VM has */
		else if (is(c, "controller") && !strcmp(type, "usb") && !strcmp(model, "none"))
			; /* "no USB", which godwit has none of */
		else if (is(c, "memballoon") && !strcmp(model, "none"))
			; /* "no balloon" */
		else if (is(c, "input") && (!strcmp(type, "mouse") || !strcmp(type, "keyboard")) &&
			 attr_is(c, "bus", "ps2"))
			; /* the PS/2 controller's ports libvirt lists for every x86 VM */
		else if (is(c, "disk") || is(c, "filesystem"))
			return REFUSE(c, "godwit VMs have no disks: they boot a kernel and initrd "
					 "(<os><kernel>, <initrd>); remove it");
		else if (is(c, "hostdev"))
			return REFUSE(c, "godwit assigns VFs as NICs only: write it as <interface "
					 "type='hostdev'> with the VF's address, MAC and VLAN");
		else
			return REFUSE(c, "godwit has no such device; remove it");
		if (rc)
			return rc;
	}
	return 0;
}

static int os(xmlNodePtr e, struct cli_lvx_vm *vm, char *why, size_t n)
{
	char b[64];
	bool hvm = false;
	FOR_CHILDREN(c, e)
	{
		int rc = 0;
		if (is(c, "type")) {
			if (text(c, b, sizeof(b)) || strcmp(b, "hvm"))
				return REFUSE(c, "'%s': godwit runs full virtual machines (hvm)",
					      b);
			if (attr(c, "arch", b, sizeof(b))[0] && strcmp(b, "x86_64"))
				return REFUSE(c, "arch='%s': godwit runs x86_64 guests", b);
			hvm = true; /* machine='...' names a QEMU board: godwit has its own */
		} else if (is(c, "kernel")) {
			if (text(c, vm->kernel, sizeof(vm->kernel)) || vm->kernel[0] != '/')
				return BAD(c, "the kernel is an absolute path on the host");
		} else if (is(c, "initrd")) {
			if (text(c, vm->initrd, sizeof(vm->initrd)) || vm->initrd[0] != '/')
				return BAD(c, "the initrd is an absolute path on the host");
		} else if (is(c, "cmdline")) {
			if (text(c, vm->cmdline, sizeof(vm->cmdline)))
				return BAD(c, "the command line is longer than %d bytes",
					   CLI_LVX_CMDLINE_SZ - 1);
		} else if (is(c, "boot")) {
			/* A boot order for firmware; godwit starts the kernel itself. */
		} else {
			return REFUSE(c, "godwit boots a kernel directly, without firmware or "
					 "boot menus; remove it");
		}
		if (rc)
			return rc;
	}
	if (!hvm)
		return BAD(e, "no <type>hvm</type>");
	if (!vm->kernel[0])
		return REFUSE(e, "no <kernel>: godwit boots a Linux kernel (and initrd) given by "
				 "path, not a disk");
	return 0;
}

static int features(xmlNodePtr e, char *why, size_t n)
{
	FOR_CHILDREN(c, e)
	{
		/* What every x86-64 guest of godwit's has anyway. */
		if (!is(c, "acpi") && !is(c, "apic") && !is(c, "pae"))
			return REFUSE(c, "godwit cannot honour this feature; remove it");
	}
	return 0;
}

static int vcpu(xmlNodePtr e, struct cli_lvx_vm *vm, char *why, size_t n)
{
	char t[32], cur[32];
	unsigned long long v, c;
	if (text(e, t, sizeof(t)) || number(t, 4096, &v) || v == 0)
		return BAD(e, "'%s' is not a vCPU count", t);
	if (attr(e, "cpuset", cur, sizeof(cur))[0])
		return REFUSE(e, "cpuset='%s': godwit does not pin vCPUs", cur);
	if (attr(e, "current", cur, sizeof(cur))[0] && (number(cur, v, &c) || c != v))
		return REFUSE(e, "current='%s' of %llu: godwit has no vCPU hotplug", cur, v);
	vm->cpus = (unsigned)v;
	return leaf(e, why, n);
}

/* Elements of a domain godwit does not need and that change nothing about the VM it runs. */
static bool bookkeeping(xmlNodePtr e)
{
	static const char *const names[] = {"uuid",	"title",    "description",
					    "metadata", "resource", "genid"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (is(e, names[i]))
			return true;
	}
	return false;
}

/* Lifecycle actions holding libvirt's defaults: what godwit does anyway (the VM stops). */
static int lifecycle(xmlNodePtr e, char *why, size_t n)
{
	char t[32];
	const char *dflt = is(e, "on_reboot") ? "restart" : "destroy";
	if (text(e, t, sizeof(t)) || strcmp(t, dflt))
		return REFUSE(e,
			      "'%s': godwit stops a VM that powers off or crashes and lets "
			      "the guest reboot itself; only libvirt's default, %s, is honoured",
			      t, dflt);
	return 0;
}

static int domain(xmlNodePtr root, struct cli_lvx_vm *vm, char *why, size_t n)
{
	char b[64];
	uint64_t cur = 0;
	bool have_mem = false, have_cur = false, have_name = false;
	if (!is(root, "domain"))
		return BAD(root, "not a libvirt domain (its root element is <domain>)");
	if (!attr_is(root, "type", "kvm"))
		return REFUSE(root, "godwit runs VMs under KVM: type='kvm'");
	FOR_CHILDREN(c, root)
	{
		int rc = 0;
		if (is(c, "name")) {
			if (text(c, vm->name, sizeof(vm->name)) || !vm->name[0])
				return BAD(c, "an empty or too long name");
			have_name = true;
		} else if (is(c, "memory")) {
			rc = memory_bytes(c, &vm->memory_bytes, why, n);
			have_mem = true;
		} else if (is(c, "currentMemory")) {
			rc = memory_bytes(c, &cur, why, n);
			have_cur = true;
		} else if (is(c, "vcpu")) {
			rc = vcpu(c, vm, why, n);
		} else if (is(c, "os")) {
			rc = os(c, vm, why, n);
		} else if (is(c, "devices")) {
			rc = devices(c, vm, why, n);
		} else if (is(c, "features")) {
			rc = features(c, why, n);
		} else if (is(c, "on_poweroff") || is(c, "on_reboot") || is(c, "on_crash")) {
			rc = lifecycle(c, why, n);
		} else if (is(c, "clock")) {
			/* The guest's clock is UTC on godwit; timers are godwit's own. */
			if (attr(c, "offset", b, sizeof(b))[0] && strcmp(b, "utc"))
				return REFUSE(c, "offset='%s': godwit's guests keep UTC", b);
			FOR_CHILDREN(t, c)
			return REFUSE(t, "godwit chooses the guest's timers; remove it");
		} else if (is(c, "cpu")) {
			/* The host's CPU as it is: godwit's guests see the host's CPUID. */
			attr(c, "mode", b, sizeof(b));
			if (strcmp(b, "host-passthrough") && strcmp(b, "host-model"))
				return REFUSE(c,
					      "mode='%s': godwit's guests see the host CPU "
					      "(host-passthrough)",
					      b);
			FOR_CHILDREN(t, c)
			return REFUSE(t, "godwit does not shape the guest CPU; remove it");
		} else if (bookkeeping(c)) {
			/* libvirt's own records of the domain */
		} else {
			return REFUSE(c, "godwit cannot honour this; remove it");
		}
		if (rc)
			return rc;
	}
	if (!have_name)
		return BAD(root, "no <name>");
	if (!have_mem)
		return BAD(root, "no <memory>");
	if (!vm->kernel[0]) /* no <os> at all: <os> itself refuses a kernel-less one */
		return REFUSE(root, "no <os> with a <kernel>: godwit boots a Linux kernel (and "
				    "initrd) given by path");
	if (have_cur && cur != vm->memory_bytes)
		return REFUSE(root, "<currentMemory> differs from <memory>: godwit has no balloon, "
				    "the guest gets all of <memory>");
	if (!vm->cpus)
		vm->cpus = 1; /* libvirt's default */
	return 0;
}

int cli_lvx_parse(const char *xml, size_t len, struct cli_lvx_vm *vm, char *why, size_t n)
{
	memset(vm, 0, sizeof(*vm));
	if (len == 0 || len > CLI_LVX_FILE_MAX) {
		snprintf(why, n, "a domain's XML is 1 byte to %d KiB, not %zu bytes",
			 CLI_LVX_FILE_MAX >> 10, len);
		return -EINVAL;
	}
	/* No network, no DTD, no entity expansion: the file is data. */
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		snprintf(why, n, "not well-formed XML: line %d: %s", e ? e->line : 0,
			 e && e->message ? e->message : "parse error");
		why[strcspn(why, "\n")] = '\0';
		return -EINVAL;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int rc = root ? domain(root, vm, why, n) : -EINVAL;
	if (!root)
		snprintf(why, n, "an XML document without an element");
	xmlFreeDoc(doc);
	return rc;
}

int cli_lvx_parse_file(const char *path, struct cli_lvx_vm *vm, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		int err = errno;
		snprintf(why, n, "%s: %s", path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CLI_LVX_FILE_MAX) {
		snprintf(why, n, "%s: not a regular file of at most %d KiB", path,
			 CLI_LVX_FILE_MAX >> 10);
		close(fd);
		return -EINVAL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	int err = errno;
	close(fd);
	int rc;
	if (got != st.st_size) {
		snprintf(why, n, "%s: %s", path, got < 0 ? strerror(err) : "short read");
		rc = -EIO;
	} else {
		char sub[600];
		rc = cli_lvx_parse(buf, (size_t)got, vm, sub, sizeof(sub));
		if (rc)
			snprintf(why, n, "%s: %s", path, sub);
	}
	free(buf);
	return rc;
}
