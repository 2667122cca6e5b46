/* SPDX-License-Identifier: Apache-2.0 */
/* The power-control ports the FADT names (acpi.h): a Linux guest's poweroff and reboot. */
#include "acpi.h"
#include "hv_priv.h"

#include "godwit/log.h"

static void pm_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val, unsigned size)
{
	(void)opaque;
	(void)vcpu;
	(void)off;
	(void)size;
	*val = 0; /* sleep status: never woken, since the VM never sleeps */
}

static void pm_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val, unsigned size)
{
	struct hv_vm *vm = opaque;
	(void)size;
	if (!vcpu)
		return;
	unsigned port = HV_ACPI_SLEEP_CTL_PORT + (unsigned)off;
	if (port == HV_ACPI_SLEEP_CTL_PORT && (val & HV_ACPI_SLP_EN)) {
		unsigned type = (unsigned)(val >> 2) & 7;
		if (type != HV_ACPI_S5_TYPE) {
			GW_WARN(vcpu->name,
				"guest asked for sleep type %u: only soft-off (%u) is "
				"offered; ignored",
				type, HV_ACPI_S5_TYPE);
			return;
		}
		GW_INFO(vcpu->name, "guest powered off");
		hv_vm_request_stop(vm, HV_STOP_GUEST_EXIT, 0);
	} else if (port == HV_ACPI_RESET_PORT && (val & 0xFF) == HV_ACPI_RESET_VALUE) {
		GW_INFO(vcpu->name, "guest reset the machine; the VM stops (godwit does not reboot "
				    "a guest in place)");
		hv_vm_request_stop(vm, HV_STOP_SHUTDOWN, 0);
	}
}

static const struct hv_io_ops pm_io = {
    .read = pm_read,
    .write = pm_write,
};

int hv_acpi_pm_init(struct hv_vm *vm)
{
	return hv_bus_register(vm->pio, HV_ACPI_SLEEP_CTL_PORT,
			       HV_ACPI_RESET_PORT - HV_ACPI_SLEEP_CTL_PORT + 1, &pm_io, vm,
			       "acpi-pm");
}
