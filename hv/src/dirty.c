/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dirty-page tracking: KVM's dirty log with manual protect (KVM_GET_DIRTY_LOG then
 * KVM_CLEAR_DIRTY_LOG) for vCPU writes, and a VMM-side bitmap for writes made by the VMM and
 * device threads, which KVM cannot see. Collect returns the union.
 */
#include "hv_priv.h"

#include "godwit/bitmap.h"
#include "godwit/log.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

static size_t ram_pages(const struct hv_vm *vm)
{
	return (size_t)(vm->ram_size >> HV_PAGE_SHIFT);
}

static int set_logging(struct hv_vm *vm, bool on)
{
	uint32_t flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	int rc = hv_slot_set(vm, HV_SLOT_RAM_LOW, 0, vm->ram_low, vm->ram, flags);
	if (rc == 0 && vm->ram_size > vm->ram_low)
		rc = hv_slot_set(vm, HV_SLOT_RAM_HIGH, HV_RAM_HIGH_BASE, vm->ram_size - vm->ram_low,
				 vm->ram + vm->ram_low, flags);
	return rc;
}

int hv_dirty_start(struct hv_vm *vm)
{
	if (vm->dirty_on)
		return -EALREADY;
	size_t n = ram_pages(vm);
	vm->vmm_dirty = gw_bitmap_alloc(n);
	vm->kvm_dirty_scratch = gw_bitmap_alloc(n);
	if (!vm->vmm_dirty || !vm->kvm_dirty_scratch) {
		hv_dirty_fini(vm);
		return -ENOMEM;
	}
	/* Publish the VMM bitmap before device threads can see dirty_on. */
	__atomic_store_n(&vm->dirty_on, true, __ATOMIC_RELEASE);
	int rc = set_logging(vm, true);
	if (rc) {
		GW_ERR(vm->name, "KVM refused to start dirty logging: %s", strerror(-rc));
		__atomic_store_n(&vm->dirty_on, false, __ATOMIC_RELEASE);
		hv_dirty_fini(vm);
		return rc;
	}
	for (unsigned i = 0; i < vm->ndevices; i++) {
		if (vm->devices[i].ops->dirty_log_start)
			vm->devices[i].ops->dirty_log_start(vm->devices[i].opaque);
	}
	return 0;
}

void hv_dirty_stop(struct hv_vm *vm)
{
	if (!vm->dirty_on)
		return;
	for (unsigned i = 0; i < vm->ndevices; i++) {
		if (vm->devices[i].ops->dirty_log_stop)
			vm->devices[i].ops->dirty_log_stop(vm->devices[i].opaque);
	}
	__atomic_store_n(&vm->dirty_on, false, __ATOMIC_RELEASE);
	set_logging(vm, false);
	hv_dirty_fini(vm);
}

void hv_dirty_set_dma_mode(struct hv_vm *vm, unsigned mode)
{
	__atomic_store_n(&vm->dma_mode, mode, __ATOMIC_RELEASE);
}

unsigned hv_dirty_dma_mode(struct hv_vm *vm)
{
	return __atomic_load_n(&vm->dma_mode, __ATOMIC_ACQUIRE);
}

void hv_dirty_dma_account(struct hv_vm *vm, uint64_t pages, uint64_t bytes)
{
	__atomic_add_fetch(&vm->dma_pages, pages, __ATOMIC_RELAXED);
	__atomic_add_fetch(&vm->dma_bytes, bytes, __ATOMIC_RELAXED);
}

void hv_dirty_dma_stats(struct hv_vm *vm, uint64_t *pages, uint64_t *bytes)
{
	*pages = __atomic_load_n(&vm->dma_pages, __ATOMIC_RELAXED);
	*bytes = __atomic_load_n(&vm->dma_bytes, __ATOMIC_RELAXED);
}

void hv_dirty_fini(struct hv_vm *vm)
{
	gw_bitmap_free(vm->vmm_dirty);
	gw_bitmap_free(vm->kvm_dirty_scratch);
	vm->vmm_dirty = NULL;
	vm->kvm_dirty_scratch = NULL;
}

bool hv_dirty_active(struct hv_vm *vm)
{
	return __atomic_load_n(&vm->dirty_on, __ATOMIC_ACQUIRE);
}

void hv_dirty_mark(struct hv_vm *vm, uint64_t gpa, uint64_t len)
{
	if (!hv_dirty_active(vm) || len == 0)
		return;
	uint64_t first, last;
	if (hv_vm_gpa_to_ram_offset(vm, gpa, &first) ||
	    hv_vm_gpa_to_ram_offset(vm, gpa + len - 1, &last) || last < first)
		return;
	gw_bitmap_set_range_atomic(vm->vmm_dirty, first >> HV_PAGE_SHIFT,
				   (last >> HV_PAGE_SHIFT) - (first >> HV_PAGE_SHIFT) + 1);
}

/* Reads and re-protects one memslot's dirty log, then merges it at first_page. */
static int collect_slot(struct hv_vm *vm, unsigned slot, size_t first_page, size_t npages,
			uint64_t *out)
{
	uint64_t *bm = vm->kvm_dirty_scratch;
	gw_bitmap_zero(bm, npages);
	struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bm};
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	if (!vm->manual_protect || gw_bitmap_count(bm, npages) == 0)
		goto merge; /* without manual protect, GET_DIRTY_LOG already re-protected */
	/* Manual protect: pages are write-protected again only now, after we have the bits. */
	struct kvm_clear_dirty_log clr = {
	    .slot = slot,
	    .num_pages = (uint32_t)((npages + 63) & ~63ull),
	    .first_page = 0,
	    .dirty_bitmap = bm,
	};
	/* num_pages must be a multiple of 64 unless it reaches the slot's end. */
	if (clr.num_pages > npages)
		clr.num_pages = (uint32_t)npages;
	if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
		return -errno;
merge:
	hv_dirty_merge(out, bm, first_page, npages);
	return 0;
}

int hv_dirty_collect(struct hv_vm *vm, uint64_t *out)
{
	if (!vm->dirty_on)
		return -EINVAL;
	size_t low_pages = (size_t)(vm->ram_low >> HV_PAGE_SHIFT);
	int rc = collect_slot(vm, HV_SLOT_RAM_LOW, 0, low_pages, out);
	if (rc == 0 && vm->ram_size > vm->ram_low)
		rc = collect_slot(vm, HV_SLOT_RAM_HIGH, low_pages, ram_pages(vm) - low_pages, out);
	if (rc)
		return rc;
	gw_bitmap_take_or(out, vm->vmm_dirty, ram_pages(vm));
	return 0;
}
