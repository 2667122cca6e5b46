/* SPDX-License-Identifier: Apache-2.0 */
/* The backdoor hypercall port: commands in registers, answers in registers (hv_abi.h). */
#include "hv_priv.h"

#include "godwit/hv_abi.h"
#include "godwit/log.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

static void backdoor_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
			   unsigned size)
{
	struct hv_vm *vm = opaque;
	(void)off;
	if (!vcpu)
		return;
	/* Only a 32-bit OUT carrying the magic is a call; anything else is noise. */
	if (size != 4 || (uint32_t)val != GW_BD_MAGIC) {
		GW_DEBUG(vcpu->name, "backdoor port write without magic ignored");
		return;
	}
	/* The OUT must retire before registers are rewritten, or KVM would replay it. */
	if (hv_vcpu_complete_io(vcpu))
		return;
	struct kvm_regs regs;
	if (hv_vcpu_get_regs(vcpu, &regs))
		return;
	int64_t status = 0;
	switch (regs.rbx) {
	case GW_BD_EXIT:
		GW_INFO(vcpu->name, "guest exited with code %llu", (unsigned long long)regs.rcx);
		hv_vm_request_stop(vm, HV_STOP_GUEST_EXIT, (int)(regs.rcx & 0xFF));
		break;
	case GW_BD_REPORT:
		if (vm->events.report)
			vm->events.report(vm->events.opaque, vm, (uint32_t)regs.rcx, regs.rsi,
					  regs.rdi);
		break;
	case GW_BD_TSC_KHZ: {
		int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
		if (khz <= 0)
			status = -EIO;
		else
			regs.rbx = (uint64_t)khz;
		break;
	}
	case GW_BD_ECHO:
		regs.rbx = regs.rcx + 1;
		regs.rcx = ~regs.rsi;
		break;
	default:
		GW_WARN(vcpu->name, "guest made unknown backdoor call %llu: answered ENOSYS",
			(unsigned long long)regs.rbx);
		status = -ENOSYS;
		break;
	}
	regs.rax = (uint64_t)status;
	hv_vcpu_set_regs(vcpu, &regs);
}

static const struct hv_io_ops backdoor_io = {
    .write = backdoor_write,
};

int hv_backdoor_init(struct hv_vm *vm)
{
	return hv_bus_register(vm->pio, GW_BD_PORT, 4, &backdoor_io, vm, "backdoor");
}
