/* SPDX-License-Identifier: Apache-2.0 */
/* The --vf spec of godwit-vmm and MAC addresses in text: parsing with reasons (no KVM). */
#include "godwit/sriov.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sriov_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (!s ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	static const uint8_t zero[6];
	if ((mac[0] & 1) || memcmp(mac, zero, 6) == 0)
		return -EINVAL; /* a VF's own address is unicast and not all-zero */
	return 0;
}

void sriov_mac_format(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

static int spec_num(const char *v, unsigned max, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (!*v || *end || n > max)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int spec_field(struct sriov_vf_config_spec *o, const char *k, const char *v, bool *mac)
{
	if (strcmp(k, "pf") == 0)
		return spec_num(v, 63, &o->pf);
	if (strcmp(k, "vf") == 0)
		return spec_num(v, SRIOV_EMUL_MAX_VFS - 1, &o->vf);
	if (strcmp(k, "gen") == 0)
		return spec_num(v, SRIOV_EMUL_GEN_MAX, &o->gen) || o->gen == 0 ? -EINVAL : 0;
	if (strcmp(k, "mac") == 0) {
		*mac = true;
		return sriov_mac_parse(v, o->mac);
	}
	if (strcmp(k, "backend") == 0) {
		if (strcmp(v, "emul") == 0)
			o->backend = "emul";
		else if (strcmp(v, "vfio") == 0)
			o->backend = "vfio";
		else
			return -EINVAL;
		return 0;
	}
	if (strcmp(k, "host") == 0) {
		if (sriov_pci_addr_parse(v, NULL))
			return -EINVAL;
		snprintf(o->host, sizeof(o->host), "%s", v);
		return 0;
	}
	if (strcmp(k, "mbx") == 0) {
		if (strcmp(v, "intercept") && strcmp(v, "trap"))
			return -EINVAL;
		o->mbx_trap = v[0] == 't';
		return 0;
	}
	if (strcmp(k, "backing") == 0) {
		if (strcmp(v, "passthrough") && strcmp(v, "emulated"))
			return -EINVAL;
		o->emulated = v[0] == 'e';
		return 0;
	}
	if (strcmp(k, "trust") == 0) {
		if (strcmp(v, "on") && strcmp(v, "off"))
			return -EINVAL;
		o->untrusted = strcmp(v, "off") == 0;
		return 0;
	}
	if (strcmp(k, "pages") == 0) {
		if (strcmp(v, "trap") && strcmp(v, "direct"))
			return -EINVAL;
		o->queue_pages = v[0] == 'd' ? SRIOV_PAGE_DIRECT : SRIOV_PAGE_TRAP;
		return 0;
	}
	return -ENOENT;
}

static const char *spec_wants(const char *key)
{
	static const struct {
		const char *key, *wants;
	} w[] = {
	    {"pf", "0..63"},
	    {"vf", "0..6"},
	    {"gen", "1 or 2"},
	    {"mac", "a unicast, non-zero XX:XX:XX:XX:XX:XX"},
	    {"backend", "emul or vfio"},
	    {"host", "the VF's PCI address, DDDD:BB:DD.F"},
	    {"pages", "trap or direct"},
	    {"mbx", "intercept or trap"},
	    {"trust", "on or off"},
	    {"backing", "passthrough or emulated"},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (strcmp(w[i].key, key) == 0)
			return w[i].wants;
	return "another value";
}

int sriov_vf_spec_parse(const char *s, struct sriov_vf_config_spec *out, char *err, size_t n)
{
	memset(out, 0, sizeof(*out));
	out->backend = "emul";
	out->gen = 1;
	out->uplink = "none";
	bool mac = false, pages = false;
	const char *p = s;
	while (p && *p) {
		const char *eq = strchr(p, '=');
		const char *comma = strchr(p, ',');
		if (!eq || (comma && comma < eq)) {
			snprintf(err, n, "'%s': expected key=value", p);
			return -EINVAL;
		}
		char key[16], val[64];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
		if (strcmp(key, "uplink") == 0) { /* the rest of the spec, commas and all */
			out->uplink = eq + 1;
			break;
		}
		size_t vl = comma ? (size_t)(comma - eq - 1) : strlen(eq + 1);
		snprintf(val, sizeof(val), "%.*s", (int)vl, eq + 1);
		pages |= strcmp(key, "pages") == 0;
		int rc = spec_field(out, key, val, &mac);
		if (rc == -ENOENT) {
			snprintf(err, n,
				 "unknown key '%s' (pf, vf, gen, mac, pages, mbx, trust, backing, "
				 "backend, host, uplink)",
				 key);
			return -EINVAL;
		}
		if (rc) {
			snprintf(err, n, "bad value '%s' for '%s': %s wanted", val, key,
				 spec_wants(key));
			return -EINVAL;
		}
		p = comma ? comma + 1 : NULL;
	}
	if (!mac) {
		snprintf(err, n, "mac=XX:XX:XX:XX:XX:XX is required");
		return -EINVAL;
	}
	bool vfio = strcmp(out->backend, "vfio") == 0;
	if (vfio && !out->host[0]) {
		snprintf(err, n, "backend=vfio needs host=DDDD:BB:DD.F, the VF bound to vfio-pci");
		return -EINVAL;
	}
	if (!vfio && out->host[0]) {
		snprintf(err, n, "host= names a real VF: it needs backend=vfio");
		return -EINVAL;
	}
	if (vfio && !pages)
		out->queue_pages =
		    SRIOV_PAGE_DIRECT; /* the hardware's registers: no reason to trap */
	if (vfio && strcmp(out->uplink, "none") != 0) {
		snprintf(err, n, "a vfio VF's wire is its PF's port: uplink= is for backend=emul");
		return -EINVAL;
	}
	return 0;
}

int sriov_pci_addr_parse(const char *s, unsigned *out)
{
	unsigned dom, bus, dev, fn;
	char tail;
	if (!s || strlen(s) != 12)
		return -EINVAL;
	for (unsigned i = 0; i < 12; i++) /* sscanf would take spaces, signs and 0x */
		if (i != 4 && i != 7 && i != 10 && !isxdigit((unsigned char)s[i]))
			return -EINVAL;
	if (sscanf(s, "%4x:%2x:%2x.%1u%c", &dom, &bus, &dev, &fn, &tail) != 4 || dev > 31 ||
	    fn > 7 || s[4] != ':' || s[7] != ':' || s[10] != '.')
		return -EINVAL;
	if (out)
		*out = dom << 16 | bus << 8 | dev << 3 | fn;
	return 0;
}
