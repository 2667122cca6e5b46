/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for splitting what the guest sees of its RAM from what a device reaches there
 * (hv_vm_ram_split, hv_vm_ram_join): RAM as godwit-vmm makes it (one memfd, mapped shared),
 * without /dev/kvm. The device's side is the memfd's pages, which an IOMMU pins.
 */
#include "godwit/hv.h"
#include "hv_priv.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG  4096u
#define RAM (64u * PG)

static struct hv_vm vm;

static void ram_setup(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.ram_fd = memfd_create("test-ram", MFD_CLOEXEC);
	CU_ASSERT_FATAL(vm.ram_fd >= 0);
	CU_ASSERT_FATAL(ftruncate(vm.ram_fd, RAM) == 0);
	vm.ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, vm.ram_fd, 0);
	CU_ASSERT_FATAL(vm.ram != MAP_FAILED);
	vm.ram_size = RAM;
	vm.ram_low = RAM;
	for (unsigned i = 0; i < RAM; i++)
		vm.ram[i] = (uint8_t)(i / PG);
}

static void ram_teardown(void)
{
	munmap(vm.ram, RAM);
	close(vm.ram_fd);
}

/* What the memfd holds at off: what a device reaches, whatever the guest's mapping shows. */
static uint8_t memfd_byte(uint64_t off)
{
	uint8_t b = 0;
	CU_ASSERT(pread(vm.ram_fd, &b, 1, (off_t)off) == 1);
	return b;
}

static void test_split_join(void)
{
	ram_setup();
	void *dv = NULL;
	CU_ASSERT_EQUAL_FATAL(hv_vm_ram_split(&vm, 3 * PG, 2 * PG, &dv), 0);
	uint8_t *dev = dv;
	/* Both sides start alike. */
	CU_ASSERT_EQUAL(dev[0], 3);
	CU_ASSERT_EQUAL(dev[PG], 4);
	CU_ASSERT_EQUAL(vm.ram[3 * PG], 3);
	/* The guest writes its copy; the device's pages do not change. */
	vm.ram[3 * PG + 10] = 0xAA;
	CU_ASSERT_EQUAL(dev[10], 3);
	CU_ASSERT_EQUAL(memfd_byte(3 * PG + 10), 3);
	/* The device writes its pages; the guest's copy does not change. */
	dev[PG + 20] = 0xBB;
	CU_ASSERT_EQUAL(memfd_byte(4 * PG + 20), 0xBB);
	CU_ASSERT_EQUAL(vm.ram[4 * PG + 20], 4);
	/* Pages outside the split are shared as before. */
	vm.ram[5 * PG] = 0xCC;
	CU_ASSERT_EQUAL(memfd_byte(5 * PG), 0xCC);
	vm.ram[2 * PG + PG - 1] = 0xCD;
	CU_ASSERT_EQUAL(memfd_byte(3 * PG - 1), 0xCD);
	/* Join: the guest sees the device's pages, as they are; its copy is gone. */
	CU_ASSERT_EQUAL(hv_vm_ram_join(&vm, 3 * PG, 2 * PG, dv), 0);
	CU_ASSERT_EQUAL(vm.ram[4 * PG + 20], 0xBB);
	CU_ASSERT_EQUAL(vm.ram[3 * PG + 10], 3);
	vm.ram[3 * PG + 11] = 0xDD;
	CU_ASSERT_EQUAL(memfd_byte(3 * PG + 11), 0xDD);
	ram_teardown();
}

static void test_split_rejects(void)
{
	ram_setup();
	void *dv = NULL;
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, 3 * PG + 8, PG, &dv), -EINVAL); /* not a page */
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, 3 * PG, 100, &dv), -EINVAL);
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, 3 * PG, 0, &dv), -EINVAL);
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, RAM - PG, 2 * PG, &dv), -EINVAL); /* past RAM */
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, RAM, PG, &dv), -EINVAL);
	CU_ASSERT_EQUAL(hv_vm_ram_join(&vm, RAM, PG, dv), -EINVAL);
	vm.cfg.hugepages = true; /* a 2 MiB page would hold more than what is split */
	CU_ASSERT_EQUAL(hv_vm_ram_split(&vm, 0, PG, &dv), -ENOTSUP);
	ram_teardown();
}

/* Bytes waiting in a pipe (non-blocking, as migration's are) into RAM at an offset. */
static int splice_in(uint64_t off, size_t len, uint8_t val, size_t have)
{
	int p[2];
	CU_ASSERT_FATAL(pipe2(p, O_NONBLOCK) == 0);
	uint8_t buf[2 * PG];
	memset(buf, val, sizeof(buf));
	CU_ASSERT_FATAL(write(p[1], buf, have) == (ssize_t)have);
	int rc = hv_vm_ram_splice_in(&vm, p[0], off, len);
	close(p[0]);
	close(p[1]);
	return rc;
}

static void test_splice_in(void)
{
	ram_setup();
	/* A hole (a page never written) and a page with data, in one call. */
	CU_ASSERT_EQUAL(
	    fallocate(vm.ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(7 * PG), PG),
	    0);
	CU_ASSERT_EQUAL(splice_in(7 * PG, 2 * PG, 0x5A, 2 * PG), 0);
	CU_ASSERT_EQUAL(vm.ram[7 * PG], 0x5A);
	CU_ASSERT_EQUAL(vm.ram[9 * PG - 1], 0x5A);
	CU_ASSERT_EQUAL(memfd_byte(8 * PG + 5), 0x5A);
	CU_ASSERT_EQUAL(vm.ram[9 * PG], 9); /* the page after is untouched */
	CU_ASSERT_EQUAL(vm.ram[7 * PG - 1], 6);
	/* Where the guest sees a copy (split), the copy gets the bytes, not the device. */
	void *dv = NULL;
	CU_ASSERT_EQUAL_FATAL(hv_vm_ram_split(&vm, 3 * PG, 2 * PG, &dv), 0);
	CU_ASSERT_EQUAL(splice_in(3 * PG, PG, 0x77, PG), 0);
	CU_ASSERT_EQUAL(vm.ram[3 * PG + 100], 0x77);
	CU_ASSERT_EQUAL(memfd_byte(3 * PG + 100), 3);
	CU_ASSERT_EQUAL(hv_vm_ram_join(&vm, 3 * PG, 2 * PG, dv), 0);
	/* Joined again: straight into the memfd. */
	CU_ASSERT_EQUAL(splice_in(3 * PG, PG, 0x78, PG), 0);
	CU_ASSERT_EQUAL(memfd_byte(3 * PG + 100), 0x78);
	CU_ASSERT_EQUAL(vm.ram[3 * PG + 100], 0x78);
	/* Outside RAM, and a pipe that holds less than promised. */
	CU_ASSERT_EQUAL(splice_in(RAM - PG, 2 * PG, 1, 2 * PG), -EFAULT);
	CU_ASSERT_EQUAL(splice_in(RAM + PG, PG, 1, PG), -EFAULT);
	CU_ASSERT_EQUAL(splice_in(20 * PG, 2 * PG, 0x33, PG), -EIO);
	ram_teardown();
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"split and join RAM pages", test_split_join},
	    {"split refuses what is not whole pages of RAM", test_split_rejects},
	    {"bytes from a pipe land where the guest sees them", test_splice_in},
	};
	return gw_test_run("hv_ram_split", cases, GW_TEST_COUNT(cases));
}
