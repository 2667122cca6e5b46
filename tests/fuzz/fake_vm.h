/* SPDX-License-Identifier: Apache-2.0 */
/* A VM for fuzz targets without /dev/kvm: hv's real devices (com1, rtc, pci, an emulated igb VF)
 * on a struct hv_vm built by hand, with KVM's ioctls answered by a link-time stub. */
#ifndef GODWIT_FUZZ_FAKE_VM_H
#define GODWIT_FUZZ_FAKE_VM_H

#include "godwit/buf.h"
#include "godwit/hv.h"

/* The VM, made once per process (NULL if it cannot be made: the reason is on stderr). */
struct hv_vm *fake_vm(void);
/* Its whole saved state, as a source's hv_vm_save_state makes it (the seed of the corpora). */
int fake_vm_state(struct gw_buf *out);
/* Recomputes the CRC of every section of godwit's state formats found in data (magics GWST,
 * GDEV, GVMS, GVCP, GRTC, GURT, GPCF, GPCH, GVFS, GIGB, GVFC), innermost first: a fuzzer does
 * not find CRCs, and without this every mutation inside a section would stop at its CRC. */
void fake_fix_crcs(uint8_t *data, size_t size);
/* Writes each seed in seeds (n of them) as a file of dir, when dir is set (a corpus to start
 * from, made by the test that runs the fuzzer). */
void fake_vm_write_seeds(const char *dir, const char *prefix, const struct gw_buf *seeds, size_t n);

#endif
