/* SPDX-License-Identifier: Apache-2.0 */
/* The control socket godwitd uses to drive one godwit-vmm process, migration included. */
#ifndef GODWIT_VMM_CONTROL_H
#define GODWIT_VMM_CONTROL_H

#include "godwit/hv.h"
#include "godwit/mig.h"

struct vmm_control;

struct sriov_vf;

/* Serves godwit.vmm.v1.Vmm on unix:PATH (mode 0600) until vmm_control_stop. */
int vmm_control_start(struct hv_vm *vm, const char *path, struct vmm_control **out);
/* The VM's VFs, for Status (they outlive the control socket). */
void vmm_control_set_vfs(struct vmm_control *c, struct sriov_vf *const *vfs, unsigned n);
void vmm_control_stop(struct vmm_control *c);
/* Hands an incoming migration to the control socket, which reports and gates it. */
void vmm_control_set_incoming(struct vmm_control *c, struct mig_dest *d);
/* "migrated" once an outgoing migration committed, else NULL. */
const char *vmm_control_outcome(struct vmm_control *c);

#endif
