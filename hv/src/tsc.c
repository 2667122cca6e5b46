/* SPDX-License-Identifier: Apache-2.0 */
/* What a destination does about a VM whose TSC runs at another rate than its host's. */
#include "godwit/hv.h"

#include <stdio.h>

/* KVM treats rates this close as the same (its tsc_tolerance_ppm default). */
#define TSC_TOLERANCE_PPM 250ull

enum hv_tsc_plan hv_tsc_plan(uint32_t vm_khz, uint32_t host_khz, bool scaling, bool allow,
			     char *why, size_t n)
{
	uint64_t diff = vm_khz > host_khz ? vm_khz - host_khz : host_khz - vm_khz;
	if (!vm_khz || !host_khz || diff * 1000000ull <= (uint64_t)host_khz * TSC_TOLERANCE_PPM)
		return HV_TSC_SAME;
	if (scaling)
		return HV_TSC_SCALE;
	if (allow) {
		double pct = 100.0 * (double)diff / (double)vm_khz;
		snprintf(
		    why, n,
		    "the VM's TSC runs at %u kHz and this host's at %u kHz without TSC scaling: "
		    "going on as asked; the guest's TSC-based time is off by %.2f%% until it "
		    "recalibrates",
		    vm_khz, host_khz, pct);
		return HV_TSC_DRIFT;
	}
	/* Short: it travels in the migration handshake's 120-byte reply. */
	snprintf(why, n,
		 "TSC %u kHz, host %u kHz, no TSC scaling here: use --allow-tsc-change to go on",
		 vm_khz, host_khz);
	return HV_TSC_REFUSE;
}
