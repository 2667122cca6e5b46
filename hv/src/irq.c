/* SPDX-License-Identifier: Apache-2.0 */
/* Interrupt plumbing on KVM's in-kernel irqchip: lines, MSI routes, irqfd and ioeventfd. */
#include "hv_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define HV_IOAPIC_PINS 24u
#define HV_PIC_PINS    16u

static int routing_commit(struct hv_vm *vm)
{
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routing) < 0)
		return -errno;
	return 0;
}

static void route_add_irqchip(struct kvm_irq_routing *r, unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_routing_entry *e = &r->entries[r->nr++];
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* The platform's table: PIC pins for GSI 0-15 and I/O APIC pins for GSI 0-23, with the PIT's
 * IRQ 0 on I/O APIC pin 2 and pin 2 nothing else, as the MADT's interrupt source override
 * says (acpi.c); MSI routes are added next to it, since KVM_SET_GSI_ROUTING replaces the whole
 * table. */
int hv_irq_init(struct hv_vm *vm)
{
	vm->routing = calloc(1, sizeof(*vm->routing) +
				    HV_MAX_GSI_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!vm->routing)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < HV_IOAPIC_PINS; gsi++) {
		if (gsi < HV_PIC_PINS)
			route_add_irqchip(vm->routing, gsi,
					  gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					  gsi % 8);
		if (gsi != 2)
			route_add_irqchip(vm->routing, gsi, KVM_IRQCHIP_IOAPIC, gsi ? gsi : 2);
	}
	vm->next_gsi = HV_IOAPIC_PINS;
	int rc = routing_commit(vm);
	if (rc)
		GW_ERR(vm->name, "KVM refused the default GSI routing: %s", strerror(-rc));
	return rc;
}

void hv_irq_fini(struct hv_vm *vm)
{
	free(vm->routing);
	vm->routing = NULL;
}

int hv_vm_irq_line(struct hv_vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = level ? 1 : 0};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	return 0;
}

static struct kvm_irq_routing_entry *find_msi(struct hv_vm *vm, unsigned gsi)
{
	for (unsigned i = 0; i < vm->routing->nr; i++) {
		struct kvm_irq_routing_entry *e = &vm->routing->entries[i];
		if (e->gsi == gsi && e->type == KVM_IRQ_ROUTING_MSI)
			return e;
	}
	return NULL;
}

static void msi_fill(struct kvm_irq_routing_entry *e, unsigned gsi, uint64_t addr, uint32_t data)
{
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
}

int hv_vm_msi_route_add(struct hv_vm *vm, uint64_t addr, uint32_t data)
{
	pthread_mutex_lock(&vm->irq_lock);
	int rc;
	if (vm->routing->nr >= HV_MAX_GSI_ROUTES) {
		rc = -ENOSPC;
		goto out_unlock;
	}
	/* GSIs are never reused while the VM lives; 1024 routes are plenty for one VM. */
	unsigned gsi = vm->next_gsi;
	msi_fill(&vm->routing->entries[vm->routing->nr++], gsi, addr, data);
	rc = routing_commit(vm);
	if (rc) {
		vm->routing->nr--;
		goto out_unlock;
	}
	vm->next_gsi++;
	rc = (int)gsi;
out_unlock:
	pthread_mutex_unlock(&vm->irq_lock);
	return rc;
}

int hv_vm_msi_route_update(struct hv_vm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	pthread_mutex_lock(&vm->irq_lock);
	int rc = -ENOENT;
	struct kvm_irq_routing_entry *e = find_msi(vm, gsi);
	if (e) {
		struct kvm_irq_routing_entry old = *e;
		msi_fill(e, gsi, addr, data);
		rc = routing_commit(vm);
		if (rc)
			*e = old;
	}
	pthread_mutex_unlock(&vm->irq_lock);
	return rc;
}

int hv_vm_msi_route_remove(struct hv_vm *vm, unsigned gsi)
{
	pthread_mutex_lock(&vm->irq_lock);
	int rc = -ENOENT;
	struct kvm_irq_routing_entry *e = find_msi(vm, gsi);
	if (e) {
		struct kvm_irq_routing_entry *last = &vm->routing->entries[vm->routing->nr - 1];
		struct kvm_irq_routing_entry old = *e;
		*e = *last;
		vm->routing->nr--;
		rc = routing_commit(vm);
		if (rc) {
			vm->routing->nr++;
			*last = *e;
			*e = old;
		}
	}
	pthread_mutex_unlock(&vm->irq_lock);
	return rc;
}

int hv_vm_signal_msi(struct hv_vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr,
	    .address_hi = (uint32_t)(addr >> 32),
	    .data = data,
	};
	int r = ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
	if (r < 0)
		return -errno;
	return r > 0 ? 0 : -EAGAIN; /* 0: the guest blocked the MSI */
}

int hv_vm_irqfd(struct hv_vm *vm, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = {
	    .fd = (uint32_t)fd,
	    .gsi = gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};
	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return -errno;
	return 0;
}

int hv_vm_ioeventfd(struct hv_vm *vm, int fd, uint64_t addr, unsigned len, bool pio, bool assign)
{
	struct kvm_ioeventfd e = {
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags =
		(pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &e) < 0)
		return -errno;
	return 0;
}
