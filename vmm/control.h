/* SPDX-License-Identifier: Apache-2.0 */
/* The control socket godwitd uses to drive one godwit-vmm process. */
#ifndef GODWIT_VMM_CONTROL_H
#define GODWIT_VMM_CONTROL_H

#include "godwit/hv.h"

struct vmm_control;

/* Serves godwit.vmm.v1.Vmm on unix:PATH (mode 0600) until vmm_control_stop. */
int vmm_control_start(struct hv_vm *vm, const char *path, struct vmm_control **out);
void vmm_control_stop(struct vmm_control *c);

#endif
