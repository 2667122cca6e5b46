/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of names and VM specs arriving over the API: every refusal says why. */
#include "daemon.h"

#include "godwit/hv.h"

#include <errno.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

int gwd_validate_name(const char *name, char *why, size_t n)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0) {
		snprintf(why, n, "a VM name is required");
		return -EINVAL;
	}
	if (len > GWD_NAME_MAX) {
		snprintf(why, n, "VM name is %zu characters long; at most %d are allowed", len,
			 GWD_NAME_MAX);
		return -EINVAL;
	}
	/* DNS-label-like: lower-case letters, digits, '-', '_' and '.', starting alphanumeric,
	 * so that a name is always a safe directory and socket name. */
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum || (i > 0 && (c == '-' || c == '_' || c == '.')))
			continue;
		snprintf(why, n,
			 "VM name '%.*s' is malformed at character %zu: use a-z, 0-9, '-', '_' "
			 "and '.', starting with a letter or digit",
			 (int)(len > 64 ? 64 : len), name, i + 1);
		return -EINVAL;
	}
	return 0;
}

int gwd_validate_mac(const char *mac, char *why, size_t n)
{
	unsigned o[6], sum = 0;
	int end = 0;
	if (!mac ||
	    sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%n", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
		   &end) != 6 ||
	    end != 17 || mac[17] || strspn(mac, "0123456789abcdefABCDEF:") != 17) {
		snprintf(why, n, "MAC '%.40s' is malformed: use six hex octets, 02:12:34:56:78:9a",
			 mac ? mac : "");
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		sum |= o[i];
	/* Bit 0 of the first octet marks a group address (IEEE 802 clause 8.2). */
	if ((o[0] & 1u) || sum == 0) {
		snprintf(why, n, "MAC %s is %s: a NIC needs a unicast address (first octet even)",
			 mac, sum ? "a multicast address" : "all zero");
		return -EINVAL;
	}
	return 0;
}

/* "dddd:bb:dd.f" as sysfs writes it (the pool's own check, host_pci.c, is not linked into
 * the fuzzed validation). */
static bool pci_addr_ok(const char *s)
{
	unsigned dom, bus, dev, fn;
	char tail;
	if (strlen(s) != 12 || strspn(s, "0123456789abcdef:.") != 12 ||
	    sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4)
		return false;
	return s[4] == ':' && s[7] == ':' && s[10] == '.' && dev <= 0x1f && fn <= 7;
}

static int validate_nics(const Godwit__V1__VmSpec *spec, char *why, size_t n)
{
	if (spec->n_nics > GWD_NIC_MAX) {
		snprintf(why, n, "%zu NICs requested; at most %d are supported", spec->n_nics,
			 GWD_NIC_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->n_nics; i++) {
		const Godwit__V1__NicSpec *nic = spec->nics[i];
		char sub[160];
		if (!nic->kind || strcmp(nic->kind, "vf")) {
			snprintf(why, n, "nic%zu: kind '%.20s' is not supported; use 'vf'", i,
				 nic->kind ? nic->kind : "");
			return -EINVAL;
		}
		if (nic->trust && nic->trust[0] && strcmp(nic->trust, "on") &&
		    strcmp(nic->trust, "off")) {
			snprintf(why, n, "nic%zu: trust '%.20s': use on or off", i, nic->trust);
			return -EINVAL;
		}
		if (nic->backend && nic->backend[0] && strcmp(nic->backend, "vfio") &&
		    strcmp(nic->backend, "emul")) {
			snprintf(why, n,
				 "nic%zu: backend '%.20s': use vfio (a real VF), emul (godwit's "
				 "emulated NIC) or leave it empty for either",
				 i, nic->backend);
			return -EINVAL;
		}
		bool emul = nic->backend && !strcmp(nic->backend, "emul");
		if (nic->host_address && nic->host_address[0] &&
		    (!pci_addr_ok(nic->host_address) || emul)) {
			snprintf(why, n,
				 "nic%zu: host_address '%.20s': give a real VF's PCI address, "
				 "DDDD:BB:DD.F in lower case, with backend vfio or none",
				 i, nic->host_address);
			return -EINVAL;
		}
		if (nic->vlan > 4094 || (nic->vlan && emul)) {
			snprintf(why, n,
				 "nic%zu: vlan %u: a real VF's port VLAN is 1..4094 (0: none), and "
				 "an emulated VF has none",
				 i, nic->vlan);
			return -EINVAL;
		}
		if (nic->mac && nic->mac[0] && gwd_validate_mac(nic->mac, sub, sizeof(sub))) {
			snprintf(why, n, "nic%zu: %s", i, sub);
			return -EINVAL;
		}
		for (size_t j = 0; j < i && nic->mac && nic->mac[0]; j++) {
			if (spec->nics[j]->mac && !strcasecmp(spec->nics[j]->mac, nic->mac)) {
				snprintf(why, n, "nic%zu has the same MAC as nic%zu (%s)", i, j,
					 nic->mac);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int gwd_validate_spec(const Godwit__V1__VmSpec *spec, uint64_t host_mem, char *why, size_t n)
{
	if (!spec) {
		snprintf(why, n, "a VM spec (memory, and a guest or a kernel) is required");
		return -EINVAL;
	}
	uint64_t m = spec->memory_bytes;
	if (m == 0) {
		snprintf(why, n, "memory size is zero: give the VM at least 16 MiB");
		return -EINVAL;
	}
	if (!hv_mem_size_valid(m)) {
		snprintf(why, n, "memory size %llu bytes is out of range: use " HV_MEM_RULE,
			 (unsigned long long)m);
		return -EINVAL;
	}
	if (host_mem && m > host_mem) {
		snprintf(why, n, "memory size %llu MiB is larger than this host's %llu MiB",
			 (unsigned long long)(m >> 20), (unsigned long long)(host_mem >> 20));
		return -EINVAL;
	}
	if (spec->cpus > HV_MAX_VCPUS) {
		snprintf(why, n, "%u vCPUs requested; at most %u are supported", spec->cpus,
			 HV_MAX_VCPUS);
		return -EINVAL;
	}
	const char *guest = spec->guest_path ? spec->guest_path : "";
	const char *kernel = spec->kernel_path ? spec->kernel_path : "";
	const char *initrd = spec->initrd_path ? spec->initrd_path : "";
	if (guest[0] && kernel[0]) {
		snprintf(why, n, "give a guest image or a Linux kernel, not both");
		return -EINVAL;
	}
	if (!guest[0] && !kernel[0]) {
		snprintf(why, n, "a guest image path or a Linux kernel path is required");
		return -EINVAL;
	}
	if (initrd[0] && !kernel[0]) {
		snprintf(why, n, "an initrd goes with a Linux kernel: give a kernel path too");
		return -EINVAL;
	}
	const struct {
		const char *what, *path;
	} paths[] = {{"guest", guest}, {"kernel", kernel}, {"initrd", initrd}};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strlen(paths[i].path) > 4000) {
			snprintf(why, n, "%s path is too long (%zu bytes; at most 4000)",
				 paths[i].what, strlen(paths[i].path));
			return -EINVAL;
		}
		if (paths[i].path[0] && paths[i].path[0] != '/') {
			snprintf(why, n, "%s path '%s' must be absolute (it is opened by godwitd)",
				 paths[i].what, paths[i].path);
			return -EINVAL;
		}
	}
	if (spec->cmdline && strlen(spec->cmdline) > 3839) {
		snprintf(why, n, "command line too long (%zu bytes; at most 3839)",
			 strlen(spec->cmdline));
		return -EINVAL;
	}
	return validate_nics(spec, why, n);
}

/* The host part of "HOST:PORT" ("[V6]:PORT" too), with every address it resolves to loopback. */
bool gwd_addr_is_loopback(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	size_t l = colon ? (size_t)(colon - hostport) : strlen(hostport);
	if (l >= sizeof(host) || l == 0)
		return false;
	memcpy(host, hostport, l);
	host[l] = '\0';
	if (host[0] == '[' && host[l - 1] == ']') {
		memmove(host, host + 1, l - 2);
		host[l - 2] = '\0';
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	bool all = res != NULL;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)a->ai_addr;
			all &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const void *)a->ai_addr;
			all &= IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		} else {
			all = false;
		}
	}
	freeaddrinfo(res);
	return all;
}

int gwd_validate_migrate_tuning(const Godwit__V1__MigrateRequest *req, char *why, size_t n)
{
	const char *act = req->timeout_action ? req->timeout_action : "";
	if (req->channels > 8)
		snprintf(why, n, "channels: %u; at most 8 (0: auto)", req->channels);
	else if (act[0] && strcmp(act, "suspend") && strcmp(act, "cancel"))
		snprintf(why, n, "timeout_action \"%.40s\": use suspend (the default) or cancel",
			 act);
	else if (act[0] && !req->timeout_s)
		snprintf(why, n, "timeout_action \"%s\" needs timeout_s", act);
	else if (req->timeout_s > 86400)
		snprintf(why, n, "timeout_s: %u; at most 86400", req->timeout_s);
	else if (req->throttle_initial_pct > 95 || req->throttle_increment_pct > 95)
		snprintf(why, n,
			 "auto-converge percentages take 1..95 (0: the defaults 20 and 10)");
	else if (req->no_auto_converge &&
		 (req->throttle_initial_pct || req->throttle_increment_pct))
		snprintf(why, n, "auto-converge percentages given with auto-converge off");
	else
		return 0;
	return -EINVAL;
}

unsigned gwd_mig_channels_auto(unsigned src_cpus, unsigned dst_cpus, unsigned max, char *why,
			       size_t n)
{
	unsigned c = src_cpus < 1 ? 1 : src_cpus;
	if (dst_cpus && dst_cpus < c)
		c = dst_cpus;
	if (c > max)
		c = max;
	if (dst_cpus)
		snprintf(why, n, "auto: min(source cores %u, destination cores %u, max %u) = %u",
			 src_cpus, dst_cpus, max, c);
	else
		snprintf(why, n,
			 "auto: min(source cores %u, max %u) = %u (the destination did not say "
			 "its cores)",
			 src_cpus, max, c);
	return c;
}
