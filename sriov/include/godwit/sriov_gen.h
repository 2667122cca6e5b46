/* SPDX-License-Identifier: Apache-2.0 */
/* Generation descriptors of SR-IOV functions and the one compare that decides migrations. */
#ifndef GODWIT_SRIOV_GEN_H
#define GODWIT_SRIOV_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capability bits a generation offers. */
#define SRIOV_CAP_MBX_API_NEG (1u << 0) /* mailbox API negotiation */
#define SRIOV_CAP_MULTIQUEUE  (1u << 1) /* more than one queue pair (GET_QUEUES) */
#define SRIOV_CAP_VLAN	      (1u << 2)
#define SRIOV_CAP_LPE	      (1u << 3) /* long packets */

struct sriov_gen {
	uint16_t vendor, device;
	uint8_t revision;
	uint16_t subsys_vendor, subsys_device;
	uint32_t api_version; /* highest mailbox API the PF speaks (IGB_API_*) */
	uint32_t caps;	      /* SRIOV_CAP_* */
	uint8_t queues;	      /* queue pairs per VF */
	uint8_t gen;	      /* godwit's generation number (1, 2, ...); 0 when unknown */
};

enum sriov_gen_cmp {
	SRIOV_GEN_MATCH = 0,	/* state migrates as it is */
	SRIOV_GEN_MISMATCH = 1, /* quiesce, delete, re-create, renegotiate */
	SRIOV_GEN_ABSENT = 2,	/* no device on the destination: fall back to emulation */
};

/* dst == NULL means the destination has no device that could back this one. reason (may be
 * NULL) receives one line that says why. */
enum sriov_gen_cmp sriov_gen_compare(const struct sriov_gen *src, const struct sriov_gen *dst,
				     char *reason, size_t n);
const char *sriov_gen_cmp_name(enum sriov_gen_cmp c);

/* The generations of godwit's emulated NIC: 1 (one queue pair, API 1.0) and 2 (two queue
 * pairs, another revision, API 1.1). -EINVAL for any other number. */
int sriov_emul_gen(unsigned gen, struct sriov_gen *out);
#define SRIOV_EMUL_GEN_MAX 2u
#define SRIOV_EMUL_MAX_VFS 7u

/* "8086:10ca rev 01 api 1.1 queues 2" */
void sriov_gen_describe(const struct sriov_gen *g, char *out, size_t n);
const char *sriov_api_name(uint32_t api);

#endif
