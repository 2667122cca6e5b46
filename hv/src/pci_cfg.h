/* SPDX-License-Identifier: Apache-2.0 */
/* Pure PCI configuration-space logic (no KVM): ECAM decode, masked writes, absent runs. */
#ifndef GODWIT_HV_PCI_CFG_H
#define GODWIT_HV_PCI_CFG_H

#include <stdbool.h>
#include <stdint.h>

struct hv_pci_func {
	uint8_t cfg[4096];
	uint8_t wmask[4096]; /* 1 bits are guest-writable */
};

struct hv_ecam_addr {
	unsigned bus, dev, fn, reg;
	unsigned index; /* bus * 256 + dev * 8 + fn */
};

/* ECAM: bus in bits 27:20, device 19:15, function 14:12, register 11:0 of the offset. */
void hv_ecam_decode(uint64_t off, struct hv_ecam_addr *a);
/* Reads size bytes at reg; accesses that cross the 4 KiB space read all-ones. */
uint64_t hv_pci_cfg_read(const struct hv_pci_func *f, unsigned reg, unsigned size);
/* Writes only the bits wmask allows; crossing accesses are dropped. */
void hv_pci_cfg_write(struct hv_pci_func *f, unsigned reg, uint64_t val, unsigned size);
/* Calls fn(start, count, opaque) for every maximal run of absent functions in
 * [0, nfuncs); stops and returns fn's first non-zero result. */
int hv_pci_absent_runs(const bool *present, unsigned nfuncs,
		       int (*fn)(unsigned start, unsigned count, void *opaque), void *opaque);
/* Fills a plain host bridge (class 06/00/00, type 0 header, no BARs). */
void hv_pci_host_bridge_init(struct hv_pci_func *f);

#endif
