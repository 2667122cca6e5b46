/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of names and VM specs arriving over the API: every refusal says why. */
#include "daemon.h"

#include "godwit/hv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int gwd_validate_spec(const Godwit__V1__VmSpec *spec, uint64_t host_mem, char *why, size_t n)
{
	if (!spec) {
		snprintf(why, n, "a VM spec (memory, guest) is required");
		return -EINVAL;
	}
	uint64_t m = spec->memory_bytes;
	if (m == 0) {
		snprintf(why, n, "memory size is zero: give the VM at least 16 MiB");
		return -EINVAL;
	}
	if (m < HV_MEM_MIN || m > HV_MEM_MAX || m % (2ull << 20)) {
		snprintf(why, n,
			 "memory size %llu bytes is out of range: use a multiple of 2 MiB from "
			 "16 MiB to 32 GiB",
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
	if (!spec->guest_path || !spec->guest_path[0]) {
		snprintf(why, n, "a guest image path is required");
		return -EINVAL;
	}
	if (spec->guest_path[0] != '/') {
		snprintf(why, n, "guest path '%s' must be absolute (it is opened by godwitd)",
			 spec->guest_path);
		return -EINVAL;
	}
	if (strlen(spec->guest_path) > 4000 || (spec->cmdline && strlen(spec->cmdline) > 3839)) {
		snprintf(why, n, "guest path or command line too long");
		return -EINVAL;
	}
	return 0;
}
