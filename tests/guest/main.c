/* SPDX-License-Identifier: Apache-2.0 */
/* Test guest entry: checks boot info, picks the workload named on the command line. */
#include "guest.h"

struct workload {
	const char *name;
	int (*run)(struct guest_env *env);
	const char *usage;
};

static const struct workload workloads[] = {
    {"hello", wl_hello, "hello"},
    {"dirty", wl_dirty, "dirty:MiB:pages-per-second[:passes]"},
    {"fill-random", wl_fill_random, "fill-random:MiB[:seed]"},
    {"pci-scan", wl_pci_scan, "pci-scan"},
    {"fault", wl_fault, "fault:unmapped|backdoor|triple"},
    {"irq", wl_irq, "irq:rounds"},
    {"nic-echo", wl_nic_echo, "nic-echo[:count[:opts]]"},
};

int guest_main(const struct gw_boot_info *bi);
int guest_main(const struct gw_boot_info *bi)
{
	if (bi->magic != GW_BOOT_INFO_MAGIC || bi->version != GW_BOOT_INFO_VERSION) {
		con_puts("guest: bad boot info\n");
		return 2;
	}
	timer_init();
	const char *cl = (const char *)(uintptr_t)bi->cmdline_gpa;
	while (*cl == ' ')
		cl++;
	struct guest_env env = {
	    .bi = bi,
	    .free_base = (bi->free_gpa + 0x1FFFFF) & ~0x1FFFFFull,
	    .free_end = bi->ram_low_top,
	};
	for (unsigned i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		const char *n = workloads[i].name;
		size_t len = 0;
		while (n[len])
			len++;
		if (strncmp(cl, n, len) == 0 &&
		    (cl[len] == '\0' || cl[len] == ':' || cl[len] == ' ')) {
			env.args = cl[len] == ':' ? cl + len + 1 : "";
			return workloads[i].run(&env);
		}
	}
	con_printf("guest: unknown workload '%s'; one of:\n", cl);
	for (unsigned i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		con_printf("  %s\n", workloads[i].usage);
	bd_report(GW_REPORT_ERROR, 1, 0);
	return 2;
}
