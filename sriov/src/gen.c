/* SPDX-License-Identifier: Apache-2.0 */
/* Generation descriptors: what makes two SR-IOV functions interchangeable for a migration. */
#include "godwit/sriov_gen.h"

#include "godwit/igb_vf.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum sriov_gen_cmp sriov_gen_compare(const struct sriov_gen *src, const struct sriov_gen *dst,
				     char *reason, size_t n)
{
	if (!dst) {
		gw_say(reason, n, "the destination has no free function of this kind");
		return SRIOV_GEN_ABSENT;
	}
	if (src->vendor != dst->vendor || src->device != dst->device) {
		/* A different device ID is a different programming model: the guest's driver may
		 * not even bind. Only emulation can keep the interface the guest knows. */
		gw_say(reason, n, "different device (%04x vs %04x): emulation must back it",
		       src->device, dst->device);
		return SRIOV_GEN_ABSENT;
	}
	if (src->revision != dst->revision) {
		gw_say(reason, n, "revision %02x on the source, %02x on the destination",
		       src->revision, dst->revision);
		return SRIOV_GEN_MISMATCH;
	}
	if (src->api_version != dst->api_version) {
		gw_say(reason, n, "mailbox API %u on the source, %u on the destination",
		       src->api_version, dst->api_version);
		return SRIOV_GEN_MISMATCH;
	}
	if (src->queues != dst->queues || src->caps != dst->caps) {
		gw_say(reason, n, "%u queue pairs on the source, %u on the destination",
		       src->queues, dst->queues);
		return SRIOV_GEN_MISMATCH;
	}
	if (src->subsys_vendor != dst->subsys_vendor || src->subsys_device != dst->subsys_device) {
		gw_say(reason, n, "subsystem %04x on the source, %04x on the destination",
		       src->subsys_device, dst->subsys_device);
		return SRIOV_GEN_MISMATCH;
	}
	gw_say(reason, n, "same generation (revision %02x, %u queue pairs)", src->revision,
	       src->queues);
	return SRIOV_GEN_MATCH;
}

const char *sriov_gen_cmp_name(enum sriov_gen_cmp c)
{
	switch (c) {
	case SRIOV_GEN_MATCH:
		return "match";
	case SRIOV_GEN_MISMATCH:
		return "mismatch";
	case SRIOV_GEN_ABSENT:
		return "absent";
	}
	return "unknown";
}

int sriov_emul_gen(unsigned gen, struct sriov_gen *out)
{
	memset(out, 0, sizeof(*out));
	out->vendor = IGB_VF_VENDOR;
	out->device = IGB_VF_DEVICE;
	out->subsys_vendor = IGB_VF_VENDOR;
	out->subsys_device = IGB_VF_SUBSYS;
	out->caps = SRIOV_CAP_VLAN | SRIOV_CAP_LPE;
	out->gen = (uint8_t)gen;
	switch (gen) {
	case 1:
		out->revision = 0x01;
		out->api_version = IGB_API_10;
		out->queues = 1;
		return 0;
	case 2:
		out->revision = 0x02;
		out->api_version = IGB_API_11;
		out->queues = 2;
		out->caps |= SRIOV_CAP_MBX_API_NEG | SRIOV_CAP_MULTIQUEUE;
		return 0;
	}
	return -EINVAL;
}

const char *sriov_api_name(uint32_t api)
{
	switch (api) {
	case IGB_API_10:
		return "1.0";
	case IGB_API_11:
		return "1.1";
	}
	return "unknown";
}

void sriov_gen_describe(const struct sriov_gen *g, char *out, size_t n)
{
	snprintf(out, n, "%04x:%04x rev %02x api %s queues %u", g->vendor, g->device, g->revision,
		 sriov_api_name(g->api_version), g->queues);
}
