/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt inventory source (godwitd --libvirt): PFs and VFs from libvirt's node devices
 * (virt_functions, phys_function, iommuGroup), VFs bound with virNodeDeviceDetachFlags and
 * given back with virNodeDeviceReAttach, and the PCI functions libvirt's domains hold. */
#include "inventory.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define VFIO_DRIVER "vfio-pci"

/* libvirt reports errors through its last-error slot, read where a call fails; its default
 * handler would also print each to stderr. */
static void quiet(void *opaque, virErrorPtr err)
{
	(void)opaque, (void)err;
}

static const char *lv_error(void)
{
	const char *m = virGetLastErrorMessage();
	return m && m[0] ? m : "unknown libvirt error";
}

bool gwd_libvirt_socket_answers(void)
{
	/* libvirtd (monolithic) and virtqemud (modular) in their system mode. */
	static const char *const socks[] = {"/run/libvirt/libvirt-sock",
					    "/run/libvirt/virtqemud-sock"};
	for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", socks[i]);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return false;
		int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (rc == 0)
			return true;
	}
	return false;
}

/* The open connection, opened again when libvirt's daemon went away since. NULL with why. */
static virConnectPtr conn_get(struct gwd_inventory *inv, char *why, size_t n)
{
	pthread_mutex_lock(&inv->lock);
	virConnectPtr c = inv->conn;
	if (c && virConnectIsAlive(c) != 1) {
		virConnectClose(c);
		c = inv->conn = NULL;
	}
	if (!c) {
		c = virConnectOpen(inv->uri);
		if (c)
			virConnSetErrorFunc(c, NULL, quiet);
		else
			snprintf(why, n, "libvirt %s: %s", inv->uri, lv_error());
		inv->conn = c;
	}
	if (c)
		virConnectRef(c);
	pthread_mutex_unlock(&inv->lock);
	return c;
}

/* "0000:00:10.2" -> "pci_0000_00_10_2", libvirt's name of a PCI node device. */
static void nodedev_name(const char *addr, char *out, size_t n)
{
	snprintf(out, n, "pci_%s", addr);
	for (char *c = out; *c; c++)
		if (*c == ':' || *c == '.')
			*c = '_';
}

static xmlDocPtr xml_parse(const char *xml, size_t len)
{
	if (len > 0x7fffffff)
		return NULL;
	return xmlReadMemory(xml, (int)len, "libvirt.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* The nodes expr selects under ctx's node (NULL when none). */
static xmlXPathObjectPtr xp(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (o && (!o->nodesetval || o->nodesetval->nodeNr == 0)) {
		xmlXPathFreeObject(o);
		return NULL;
	}
	return o;
}

/* The text of expr's first node, or of that attribute, into out ("" when none). */
static void xp_text(xmlXPathContextPtr ctx, const char *expr, char *out, size_t n)
{
	out[0] = '\0';
	xmlXPathObjectPtr o = xp(ctx, expr);
	if (!o)
		return;
	xmlChar *t = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
	if (t)
		snprintf(out, n, "%s", (const char *)t);
	xmlFree(t);
	xmlXPathFreeObject(o);
}

static unsigned long xp_num(xmlXPathContextPtr ctx, const char *expr)
{
	char buf[32];
	xp_text(ctx, expr, buf, sizeof(buf));
	return strtoul(buf, NULL, 0);
}

/* An <address domain= bus= slot= function=/> element as "dddd:bb:ss.f"; "" when malformed. */
static void addr_attrs(xmlNodePtr a, char *out, size_t n)
{
	static const char *const names[] = {"domain", "bus", "slot", "function"};
	unsigned long v[4];
	out[0] = '\0';
	for (int i = 0; i < 4; i++) {
		xmlChar *t = xmlGetProp(a, (const xmlChar *)names[i]);
		char *end = NULL;
		v[i] = t ? strtoul((const char *)t, &end, 0) : 0;
		bool bad = !t || end == (char *)t || *end;
		xmlFree(t);
		if (bad)
			return;
	}
	char buf[32];
	snprintf(buf, sizeof(buf), "%04lx:%02lx:%02lx.%lx", v[0], v[1], v[2], v[3]);
	if (gwd_pci_addr_check(buf) == 0)
		snprintf(out, n, "%s", buf);
}

/* A node device's XML, through libvirt (which reads its driver and IOMMU group afresh). NULL
 * with -ENOENT (no such device) or -EIO in *err and why. */
static char *nodedev_xml(struct gwd_inventory *inv, const char *addr, int *err, char *why, size_t n)
{
	char name[40];
	virConnectPtr c = conn_get(inv, why, n);
	*err = -EIO;
	if (!c)
		return NULL;
	nodedev_name(addr, name, sizeof(name));
	char *xml = NULL;
	virNodeDevicePtr dev = virNodeDeviceLookupByName(c, name);
	if (!dev) {
		*err = virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE ? -ENOENT : -EIO;
		snprintf(why, n, "libvirt has no node device %s for %s: %s", name, addr,
			 lv_error());
	} else if (!(xml = virNodeDeviceGetXMLDesc(dev, 0))) {
		snprintf(why, n, "libvirt: node device %s: %s", name, lv_error());
	}
	if (dev)
		virNodeDeviceFree(dev);
	virConnectClose(c);
	return xml;
}

/* A VF's vendor, device, driver and IOMMU group from its node device XML; the group's other
 * members into other ("" when alone). */
static void vf_from_xml(const char *xml, struct gwd_host_vf *vf, char *other, size_t on)
{
	other[0] = '\0';
	xmlDocPtr doc = xml_parse(xml, strlen(xml));
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	if (!ctx) {
		xmlFreeDoc(doc);
		return;
	}
	vf->vendor = (uint16_t)xp_num(ctx, "/device/capability[@type='pci']/vendor/@id");
	vf->device = (uint16_t)xp_num(ctx, "/device/capability[@type='pci']/product/@id");
	xp_text(ctx, "/device/driver/name", vf->driver, sizeof(vf->driver));
	xp_text(ctx, "/device/capability[@type='pci']/iommuGroup/@number", vf->group,
		sizeof(vf->group));
	xmlXPathObjectPtr o = xp(ctx, "/device/capability[@type='pci']/iommuGroup/address");
	for (int i = 0; o && i < o->nodesetval->nodeNr && !other[0]; i++) {
		char a[GWD_PCI_ADDR_SZ];
		addr_attrs(o->nodesetval->nodeTab[i], a, sizeof(a));
		if (a[0] && strcmp(a, vf->addr))
			snprintf(other, on, "%s", a);
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
}

/* The interface of the net node device whose parent is the PF's ("" when none). */
static void pf_netdev(virConnectPtr c, const char *pf_name, char *out, size_t n)
{
	virNodeDevicePtr *devs = NULL;
	out[0] = '\0';
	int nd = virConnectListAllNodeDevices(c, &devs, VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET);
	if (nd < 0) /* drivers without the filter (libvirt's test driver): all of them */
		nd = virConnectListAllNodeDevices(c, &devs, 0);
	for (int i = 0; i < nd; i++) {
		const char *parent = virNodeDeviceGetParent(devs[i]);
		const char *name = virNodeDeviceGetName(devs[i]);
		if (!out[0] && parent && name && !strncmp(name, "net_", 4) &&
		    !strcmp(parent, pf_name)) {
			char *xml = virNodeDeviceGetXMLDesc(devs[i], 0);
			xmlDocPtr doc = xml ? xml_parse(xml, strlen(xml)) : NULL;
			xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
			if (ctx)
				xp_text(ctx, "/device/capability[@type='net']/interface", out, n);
			xmlXPathFreeContext(ctx);
			xmlFreeDoc(doc);
			free(xml);
		}
		virNodeDeviceFree(devs[i]);
	}
	free(devs);
}

static int lv_pf_read(struct gwd_inventory *inv, const char *addr, struct gwd_host_pf *pf,
		      char *why, size_t n)
{
	int err;
	memset(pf, 0, sizeof(*pf));
	snprintf(pf->addr, sizeof(pf->addr), "%s", addr);
	if (gwd_pci_addr_check(addr)) {
		snprintf(why, n, "'%s' is not a PCI address: check it (lspci -D)", addr);
		return -ENOENT;
	}
	char *xml = nodedev_xml(inv, addr, &err, why, n);
	if (!xml)
		return err;
	xmlDocPtr doc = xml_parse(xml, strlen(xml));
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr vfs = NULL;
	int rc = 0;
	if (!ctx) {
		snprintf(why, n, "libvirt's XML of node device %s does not parse", addr);
		rc = -EIO;
		goto out_xml;
	}
	pf->vendor = (uint16_t)xp_num(ctx, "/device/capability[@type='pci']/vendor/@id");
	pf->device = (uint16_t)xp_num(ctx, "/device/capability[@type='pci']/product/@id");
	pf->totalvfs = (unsigned)xp_num(
	    ctx, "/device/capability[@type='pci']/capability[@type='virt_functions']/@maxCount");
	if (pf->totalvfs == 0) {
		snprintf(why, n,
			 "%s (%04x:%04x) is not an SR-IOV PF: libvirt shows no virt_functions "
			 "capability with a maxCount; give the address of a PF, function 0 of an "
			 "SR-IOV NIC",
			 addr, pf->vendor, pf->device);
		rc = -ENOTSUP;
		goto out_xml;
	}
	vfs = xp(ctx, "/device/capability[@type='pci']/capability[@type='virt_functions']/address");
	pf->numvfs = vfs ? (unsigned)vfs->nodesetval->nodeNr : 0;
	for (unsigned i = 0; i < pf->numvfs && pf->nvfs < GWD_HOST_MAX_VFS; i++) {
		struct gwd_host_vf *vf = &pf->vfs[pf->nvfs];
		addr_attrs(vfs->nodesetval->nodeTab[i], vf->addr, sizeof(vf->addr));
		if (!vf->addr[0])
			continue;
		char other[GWD_PCI_ADDR_SZ], sub[200];
		char *vxml = nodedev_xml(inv, vf->addr, &err, sub, sizeof(sub));
		if (vxml)
			vf_from_xml(vxml, vf, other, sizeof(other));
		free(vxml);
		pf->nvfs++;
	}
	/* libvirt does not show sriov_vf_device; the VFs' own IDs decide the profile. */
	char name[40];
	nodedev_name(addr, name, sizeof(name));
	virConnectPtr c = conn_get(inv, why, n);
	if (c) {
		pf_netdev(c, name, pf->netdev, sizeof(pf->netdev));
		virConnectClose(c);
	}
out_xml:
	xmlXPathFreeObject(vfs);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	free(xml);
	return rc;
}

static void lv_vf_check(struct gwd_inventory *inv, struct gwd_host_vf *vf)
{
	char other[GWD_PCI_ADDR_SZ] = "", sub[200];
	int err;
	char *xml = nodedev_xml(inv, vf->addr, &err, sub, sizeof(sub));
	vf->available = false;
	vf->driver[0] = vf->group[0] = '\0';
	if (!xml) {
		snprintf(vf->reason, sizeof(vf->reason), "%s", sub);
		return;
	}
	vf_from_xml(xml, vf, other, sizeof(other));
	free(xml);
	/* The same rules, and words, as the sysfs source. */
	gwd_host_vf_judge(inv->sysfs.dev, other, vf);
}

/* Detach (bind to vfio-pci) or re-attach (give back) one VF through libvirt. */
static int vf_move(struct gwd_inventory *inv, const struct gwd_host_vf *vf, bool detach, char *why,
		   size_t n)
{
	char name[40];
	virConnectPtr c = conn_get(inv, why, n);
	if (!c)
		return -EIO;
	nodedev_name(vf->addr, name, sizeof(name));
	int rc = 0;
	virNodeDevicePtr dev = virNodeDeviceLookupByName(c, name);
	if (!dev) {
		snprintf(why, n, "libvirt has no node device %s: %s", name, lv_error());
		rc = -EIO;
	} else if (detach ? virNodeDeviceDetachFlags(dev, "vfio", 0) : virNodeDeviceReAttach(dev)) {
		snprintf(why, n, "libvirt %s %s: %s",
			 detach ? "virNodeDeviceDetachFlags(vfio) of" : "virNodeDeviceReAttach of",
			 name, lv_error());
		rc = -EIO;
	}
	if (dev)
		virNodeDeviceFree(dev);
	virConnectClose(c);
	return rc;
}

static int lv_vf_bind(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why, size_t n)
{
	struct gwd_host_vf now = *vf;
	char other[GWD_PCI_ADDR_SZ];
	int err;
	char *xml = nodedev_xml(inv, vf->addr, &err, why, n);
	if (!xml)
		return err == -ENOENT ? -EIO : err;
	vf_from_xml(xml, &now, other, sizeof(other));
	free(xml);
	if (!strcmp(now.driver, VFIO_DRIVER))
		return 0;
	/* libvirt would detach it from any driver; godwit keeps sysfs's rule. */
	if (now.driver[0]) {
		snprintf(why, n,
			 "bound to host driver %s: godwit never takes a VF a host driver uses "
			 "(unbind it to give it to VMs, then restart godwitd)",
			 now.driver);
		return -EBUSY;
	}
	return vf_move(inv, vf, true, why, n);
}

static int lv_vf_unbind(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why,
			size_t n)
{
	return vf_move(inv, vf, false, why, n);
}

int gwd_libvirt_domain_hostdevs(const char *xml, size_t len, const char *name,
				struct gwd_vf_user *out, unsigned max, unsigned *count)
{
	xmlDocPtr doc = xml_parse(xml, len);
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	if (!ctx) {
		xmlFreeDoc(doc);
		return -EINVAL;
	}
	/* <hostdev type='pci'> and <interface type='hostdev'> both hold a PCI function. */
	xmlXPathObjectPtr o = xp(ctx, "/domain/devices/hostdev[@type='pci']/source/address | "
				      "/domain/devices/interface[@type='hostdev']/source/"
				      "address[@type='pci']");
	for (int i = 0; o && i < o->nodesetval->nodeNr && *count < max; i++) {
		struct gwd_vf_user *u = &out[*count];
		addr_attrs(o->nodesetval->nodeTab[i], u->addr, sizeof(u->addr));
		bool seen = false;
		for (unsigned k = 0; u->addr[0] && k < *count; k++)
			seen |= !strcmp(out[k].addr, u->addr);
		if (!u->addr[0] || seen) /* a running domain's live and next XML name it twice */
			continue;
		snprintf(u->domain, sizeof(u->domain), "%s", name);
		(*count)++;
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return 0;
}

/* Every domain libvirt knows counts, running or only defined: a defined domain takes its
 * devices when it starts (managed='yes' detaches them then), so a VF godwit took from it would
 * make its next start fail, or take the VF from under a godwit VM. */
static int lv_users(struct gwd_inventory *inv, struct gwd_vf_user *out, unsigned max,
		    unsigned *count, char *why, size_t n)
{
	virDomainPtr *doms = NULL;
	*count = 0;
	virConnectPtr c = conn_get(inv, why, n);
	if (!c)
		return -EIO;
	int nd = virConnectListAllDomains(c, &doms, 0);
	if (nd < 0) {
		snprintf(why, n, "libvirt %s: listing domains: %s", inv->uri, lv_error());
		virConnectClose(c);
		return -EIO;
	}
	for (int i = 0; i < nd; i++) {
		const char *name = virDomainGetName(doms[i]);
		/* A running domain's live devices, and those its definition gives it next. */
		unsigned flags[2] = {0, VIR_DOMAIN_XML_INACTIVE};
		int nf = virDomainIsActive(doms[i]) == 1 && virDomainIsPersistent(doms[i]) == 1;
		for (int f = 0; f <= nf; f++) {
			char *xml = virDomainGetXMLDesc(doms[i], flags[f]);
			if (xml)
				gwd_libvirt_domain_hostdevs(xml, strlen(xml), name ? name : "?",
							    out, max, count);
			free(xml);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(c);
	return 0;
}

static void lv_close(struct gwd_inventory *inv)
{
	pthread_mutex_lock(&inv->lock);
	if (inv->conn)
		virConnectClose(inv->conn);
	inv->conn = NULL;
	pthread_mutex_unlock(&inv->lock);
}

static const struct gwd_inventory_ops libvirt_ops = {
    .kind = "libvirt",
    .pf_read = lv_pf_read,
    .vf_bind = lv_vf_bind,
    .vf_unbind = lv_vf_unbind,
    .vf_check = lv_vf_check,
    .users = lv_users,
    .close = lv_close,
};

int gwd_inventory_libvirt(struct gwd_inventory *inv, const char *uri, char *why, size_t n)
{
	virSetErrorFunc(NULL, quiet);
	snprintf(inv->uri, sizeof(inv->uri), "%s", uri);
	char sub[GWD_INV_DESC_SZ];
	virConnectPtr c = conn_get(inv, sub, sizeof(sub));
	if (!c) {
		snprintf(why, n,
			 "--libvirt %s: cannot connect: %s (start libvirtd, or use --libvirt none "
			 "for sysfs)",
			 uri, sub);
		return -EHOSTUNREACH;
	}
	virConnectClose(c); /* the reference conn_get took; inv keeps its own */
	inv->ops = &libvirt_ops;
	snprintf(inv->desc, sizeof(inv->desc), "libvirt %s", uri);
	return 0;
}
