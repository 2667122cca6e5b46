/* SPDX-License-Identifier: Apache-2.0 */
/* Guest RAM backed by one memfd, KVM memslots, and direct mappings of host pages. */
#include "hv_priv.h"

#include "godwit/bitmap.h"
#include "godwit/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int hv_slot_set(struct hv_vm *vm, unsigned slot, uint64_t gpa, uint64_t len, void *hva,
		uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = flags,
	    .guest_phys_addr = gpa,
	    .memory_size = len,
	    .userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	struct hv_slot *s = &vm->slots[slot];
	if (len == 0) {
		memset(s, 0, sizeof(*s));
	} else {
		*s = (struct hv_slot){
		    .used = true, .gpa = gpa, .len = len, .hva = hva, .flags = flags};
	}
	return 0;
}

int hv_slot_alloc(struct hv_vm *vm)
{
	for (unsigned i = HV_SLOT_FIRST_DYN; i < HV_MAX_SLOTS; i++) {
		if (!vm->slots[i].used)
			return (int)i;
	}
	return -ENOSPC;
}

int hv_mem_init(struct hv_vm *vm)
{
	unsigned flags = MFD_CLOEXEC;
	if (vm->cfg.hugepages)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	vm->ram_fd = memfd_create("godwit-ram", flags);
	if (vm->ram_fd < 0) {
		int rc = -errno;
		GW_ERR(vm->name, "cannot create RAM memfd%s: %s",
		       vm->cfg.hugepages ? " with 2 MiB hugepages (reserve some in "
					   "/proc/sys/vm/nr_hugepages)"
					 : "",
		       strerror(errno));
		return rc;
	}
	int rc;
	if (ftruncate(vm->ram_fd, (off_t)vm->ram_size) < 0) {
		rc = -errno;
		GW_ERR(vm->name, "cannot size RAM to %llu bytes: %s",
		       (unsigned long long)vm->ram_size, strerror(errno));
		goto err_close;
	}
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       vm->ram_fd, 0);
	if (vm->ram == MAP_FAILED) {
		rc = -errno;
		vm->ram = NULL;
		GW_ERR(vm->name, "cannot map %llu bytes of RAM: %s",
		       (unsigned long long)vm->ram_size, strerror(errno));
		goto err_close;
	}
	vm->ram_low = vm->ram_size < HV_RAM_LOW_MAX ? vm->ram_size : HV_RAM_LOW_MAX;
	rc = hv_slot_set(vm, HV_SLOT_RAM_LOW, 0, vm->ram_low, vm->ram, 0);
	if (rc) {
		GW_ERR(vm->name, "KVM refused the RAM memslot: %s", strerror(-rc));
		goto err_unmap;
	}
	if (vm->ram_size > vm->ram_low) {
		rc = hv_slot_set(vm, HV_SLOT_RAM_HIGH, HV_RAM_HIGH_BASE, vm->ram_size - vm->ram_low,
				 vm->ram + vm->ram_low, 0);
		if (rc) {
			GW_ERR(vm->name, "KVM refused the high RAM memslot: %s", strerror(-rc));
			goto err_unmap;
		}
	}
	return 0;

err_unmap:
	munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
err_close:
	close(vm->ram_fd);
	vm->ram_fd = -1;
	return rc;
}

void hv_mem_fini(struct hv_vm *vm)
{
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram = NULL;
	vm->ram_fd = -1;
}

uint64_t hv_vm_ram_size(const struct hv_vm *vm)
{
	return vm->ram_size;
}

unsigned hv_vm_ncpus(const struct hv_vm *vm)
{
	return vm->ncpus;
}

uint8_t *hv_vm_ram_base(struct hv_vm *vm)
{
	return vm->ram;
}

unsigned hv_vm_ram_ranges(struct hv_vm *vm, struct hv_ram_range out[2])
{
	out[0] = (struct hv_ram_range){.gpa = 0, .len = vm->ram_low, .hva = vm->ram};
	if (vm->ram_size == vm->ram_low)
		return 1;
	out[1] = (struct hv_ram_range){.gpa = HV_RAM_HIGH_BASE,
				       .len = vm->ram_size - vm->ram_low,
				       .hva = vm->ram + vm->ram_low};
	return 2;
}

int hv_vm_gpa_to_ram_offset(const struct hv_vm *vm, uint64_t gpa, uint64_t *off)
{
	if (gpa < vm->ram_low) {
		*off = gpa;
		return 0;
	}
	if (gpa >= HV_RAM_HIGH_BASE && gpa - HV_RAM_HIGH_BASE < vm->ram_size - vm->ram_low) {
		*off = vm->ram_low + (gpa - HV_RAM_HIGH_BASE);
		return 0;
	}
	return -EFAULT;
}

uint64_t hv_vm_ram_offset_to_gpa(const struct hv_vm *vm, uint64_t off)
{
	return off < vm->ram_low ? off : HV_RAM_HIGH_BASE + (off - vm->ram_low);
}

int hv_vm_ram_present(struct hv_vm *vm, uint64_t *bitmap)
{
	off_t pos = 0, end = (off_t)vm->ram_size;
	while (pos < end) {
		off_t data = lseek(vm->ram_fd, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after pos */
		off_t hole = lseek(vm->ram_fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = end;
		gw_bitmap_set_range(
		    bitmap, (size_t)(data >> HV_PAGE_SHIFT),
		    (size_t)((hole - data + (off_t)HV_PAGE_SIZE - 1) >> HV_PAGE_SHIFT));
		pos = hole;
	}
	return 0;
}

void *hv_vm_gpa_to_hva(struct hv_vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t off, last;
	if (len == 0 || gpa + len < gpa)
		return NULL;
	if (hv_vm_gpa_to_ram_offset(vm, gpa, &off) ||
	    hv_vm_gpa_to_ram_offset(vm, gpa + len - 1, &last) || last - off != len - 1)
		return NULL;
	return vm->ram + off;
}

int hv_vm_map(struct hv_vm *vm, uint64_t gpa, uint64_t len, void *hva, bool readonly)
{
	if (len == 0 || (gpa | len | (uintptr_t)hva) & (HV_PAGE_SIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&vm->slot_lock);
	int slot = hv_slot_alloc(vm);
	if (slot >= 0) {
		int rc =
		    hv_slot_set(vm, (unsigned)slot, gpa, len, hva, readonly ? KVM_MEM_READONLY : 0);
		if (rc)
			slot = rc;
	}
	pthread_mutex_unlock(&vm->slot_lock);
	return slot;
}

int hv_vm_unmap(struct hv_vm *vm, int handle)
{
	if (handle < HV_SLOT_FIRST_DYN || handle >= HV_MAX_SLOTS)
		return -EINVAL;
	pthread_mutex_lock(&vm->slot_lock);
	int rc = -ENOENT;
	struct hv_slot *s = &vm->slots[handle];
	if (s->used)
		rc = hv_slot_set(vm, (unsigned)handle, s->gpa, 0, s->hva, s->flags);
	pthread_mutex_unlock(&vm->slot_lock);
	return rc;
}

/* The RAM offset of [gpa, gpa + len): page-aligned and in one RAM range, else -EINVAL. */
static int split_range(const struct hv_vm *vm, uint64_t gpa, uint64_t len, uint64_t *off)
{
	uint64_t last;
	if (!len || (gpa | len) & (HV_PAGE_SIZE - 1) || hv_vm_gpa_to_ram_offset(vm, gpa, off) ||
	    hv_vm_gpa_to_ram_offset(vm, gpa + len - 1, &last) || last - *off != len - 1)
		return -EINVAL;
	return 0;
}

int hv_vm_ram_split(struct hv_vm *vm, uint64_t gpa, uint64_t len, void **dev_view)
{
	uint64_t off;
	int rc = split_range(vm, gpa, len, &off);
	if (rc)
		return rc;
	if (vm->cfg.hugepages)
		return -ENOTSUP; /* a 2 MiB page holds more than what is split */
	/* What a device reaches: the memfd's pages, pinned by the IOMMU when RAM was mapped. */
	void *dv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vm->ram_fd, (off_t)off);
	if (dv == MAP_FAILED)
		return -errno;
	void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED) {
		rc = -errno;
		munmap(dv, len);
		return rc;
	}
	memcpy(copy, dv, len);
	/* One step for the guest: the copy replaces the RAM pages at their address (KVM follows
	 * the host mapping); a vCPU touching them meanwhile waits for the mapping. */
	if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, vm->ram + off) == MAP_FAILED) {
		rc = -errno;
		munmap(copy, len);
		munmap(dv, len);
		return rc;
	}
	*dev_view = dv;
	__atomic_add_fetch(&vm->ram_splits, 1, __ATOMIC_RELEASE);
	return 0;
}

int hv_vm_ram_join(struct hv_vm *vm, uint64_t gpa, uint64_t len, void *dev_view)
{
	uint64_t off;
	int rc = split_range(vm, gpa, len, &off);
	if (rc)
		return rc;
	if (mmap(vm->ram + off, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
		 vm->ram_fd, (off_t)off) == MAP_FAILED)
		return -errno;
	munmap(dev_view, len);
	__atomic_sub_fetch(&vm->ram_splits, 1, __ATOMIC_RELEASE);
	return 0;
}

int hv_vm_ram_splice_in(struct hv_vm *vm, int pipe_fd, uint64_t off, size_t len)
{
	if (off > vm->ram_size || len > vm->ram_size - off)
		return -EFAULT;
	/* hugetlbfs takes no write(), hence no splice either */
	bool direct = !vm->cfg.hugepages && !__atomic_load_n(&vm->ram_splits, __ATOMIC_ACQUIRE);
	while (len) {
		off64_t pos = (off64_t)off;
		ssize_t k = direct ? splice(pipe_fd, NULL, vm->ram_fd, &pos, len, SPLICE_F_MOVE)
				   : read(pipe_fd, vm->ram + off, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && direct && errno == EINVAL) {
			direct = false; /* a kernel whose memfd takes no splice */
			continue;
		}
		if (k == 0 || (k < 0 && errno == EAGAIN))
			return -EIO; /* the pipe held less than len */
		if (k < 0)
			return -errno;
		off += (uint64_t)k;
		len -= (size_t)k;
	}
	return 0;
}
