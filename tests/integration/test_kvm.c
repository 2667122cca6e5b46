/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests on /dev/kvm: the test guest under hv/, in-process. Skips (77) with a
 * printed reason where /dev/kvm is missing or unusable. */
#include "godwit/bitmap.h"
#include "godwit/hv.h"
#include "godwit/hv_abi.h"
#include "godwit/log.h"

#include "../lib/gw_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifndef GW_TEST_GUEST
#error "GW_TEST_GUEST must name the test guest ELF"
#endif

#define MAX_PASSES 256

struct harness {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hv_vm *vm;
	unsigned nverify;
	uint64_t pass[MAX_PASSES], bad[MAX_PASSES];
	bool hello;
	bool scan_begin, scan_end;
	uint64_t scan_n, scan_bad;
	struct hv_exit_stats at_begin, at_end;
	bool fault_ok;
	uint64_t fault_val;
	bool irq_end;
	uint64_t irq_rounds, irq_got;
};

static void on_report(void *opaque, struct hv_vm *vm, uint32_t kind, uint64_t a, uint64_t b)
{
	struct harness *h = opaque;
	pthread_mutex_lock(&h->lock);
	switch (kind) {
	case GW_REPORT_HELLO:
		h->hello = true;
		break;
	case GW_REPORT_VERIFY:
		if (h->nverify < MAX_PASSES) {
			h->pass[h->nverify] = a;
			h->bad[h->nverify] = b;
			h->nverify++;
		}
		break;
	case GW_REPORT_SCAN_BEGIN:
	case GW_REPORT_IRQ_BEGIN:
		hv_vm_exit_stats(vm, &h->at_begin);
		h->scan_begin = true;
		break;
	case GW_REPORT_SCAN_END:
		hv_vm_exit_stats(vm, &h->at_end);
		h->scan_end = true;
		h->scan_n = a;
		h->scan_bad = b;
		break;
	case GW_REPORT_IRQ_END:
		hv_vm_exit_stats(vm, &h->at_end);
		h->irq_end = true;
		h->irq_rounds = a;
		h->irq_got = b;
		break;
	case GW_REPORT_FAULT_OK:
		h->fault_ok = true;
		h->fault_val = a;
		break;
	default:
		break;
	}
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
}

static struct hv_vm *boot(struct harness *h, const char *cmdline, uint64_t mem)
{
	struct hv_vm_config cfg = {.name = "itest", .mem_size = mem, .ncpus = 1};
	cfg.console.kind = HV_CONSOLE_NONE;
	struct hv_vm *vm = NULL;
	if (hv_vm_create(&cfg, &vm))
		return NULL;
	struct hv_vm_events ev = {.report = on_report, .opaque = h};
	hv_vm_set_events(vm, &ev);
	if (hv_vm_boot_elf(vm, GW_TEST_GUEST, cmdline)) {
		hv_vm_destroy(vm);
		return NULL;
	}
	h->vm = vm;
	return vm;
}

/* Waits until the harness has at least n verify reports; false after timeout_s. */
static bool wait_verifies(struct harness *h, unsigned n, int timeout_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s;
	pthread_mutex_lock(&h->lock);
	while (h->nverify < n) {
		if (pthread_cond_timedwait(&h->cond, &h->lock, &ts) == ETIMEDOUT)
			break;
	}
	bool ok = h->nverify >= n;
	pthread_mutex_unlock(&h->lock);
	return ok;
}

static void test_hello(void)
{
	struct harness h;
	harness_init(&h);
	struct hv_vm *vm = boot(&h, "hello", 32ull << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_EQUAL(hv_vm_wait(vm, 60000), 0);
	int code = -1;
	CU_ASSERT_EQUAL(hv_vm_stop_reason(vm, &code), HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 0); /* the guest checked the backdoor's register answers */
	CU_ASSERT_TRUE(h.hello);
	hv_vm_destroy(vm);
}

static void test_pci_scan_no_exits(void)
{
	struct harness h;
	harness_init(&h);
	struct hv_vm *vm = boot(&h, "pci-scan", 32ull << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_EQUAL(hv_vm_wait(vm, 60000), 0);
	int code = -1;
	CU_ASSERT_EQUAL(hv_vm_stop_reason(vm, &code), HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 0);
	CU_ASSERT_TRUE_FATAL(h.scan_begin && h.scan_end);
	CU_ASSERT_EQUAL(h.scan_n, 256);
	CU_ASSERT_EQUAL(h.scan_bad, 0); /* every absent function read all-ones */
	/* Between the two reports only the closing backdoor call itself exits. */
	uint64_t mmio = h.at_end.mmio - h.at_begin.mmio;
	uint64_t io = h.at_end.io - h.at_begin.io;
	uint64_t other = (h.at_end.hlt - h.at_begin.hlt) + (h.at_end.other - h.at_begin.other);
	printf("\n    256 absent functions: %llu MMIO exits, %llu I/O exits (1 is the report)\n",
	       (unsigned long long)mmio, (unsigned long long)io);
	CU_ASSERT_EQUAL(mmio, 0);
	CU_ASSERT_EQUAL(io, 1);
	CU_ASSERT_EQUAL(other, 0);
	/* The host bridge itself is present and trapped: the guest's read of it exited. */
	CU_ASSERT_TRUE(h.at_begin.mmio >= 1);
	hv_vm_destroy(vm);
}

static void test_snapshot_restore(void)
{
	const uint64_t mem = 32ull << 20;
	struct harness h1, h2;
	harness_init(&h1);
	harness_init(&h2);
	struct hv_vm *vm1 = boot(&h1, "dirty:1:200", mem);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm1);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm1), 0);
	CU_ASSERT_TRUE_FATAL(wait_verifies(&h1, 2, 120));

	CU_ASSERT_EQUAL_FATAL(hv_vm_pause(vm1), 0);
	struct gw_buf state;
	gw_buf_init(&state);
	CU_ASSERT_EQUAL_FATAL(hv_vm_save_state(vm1, &state), 0);
	pthread_mutex_lock(&h1.lock);
	uint64_t last_pass = h1.pass[h1.nverify - 1];
	pthread_mutex_unlock(&h1.lock);

	/* A new VM from the saved state and a copy of RAM; the old one is gone for good. */
	struct hv_vm_config cfg = {.name = "restored", .mem_size = mem, .ncpus = 1};
	cfg.console.kind = HV_CONSOLE_NONE;
	struct hv_vm *vm2 = NULL;
	CU_ASSERT_EQUAL_FATAL(hv_vm_create(&cfg, &vm2), 0);
	struct hv_vm_events ev = {.report = on_report, .opaque = &h2};
	hv_vm_set_events(vm2, &ev);
	memcpy(hv_vm_ram_base(vm2), hv_vm_ram_base(vm1), mem);
	hv_vm_destroy(vm1);
	CU_ASSERT_EQUAL_FATAL(hv_vm_load_state(vm2, state.data, state.len), 0);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm2), 0);

	CU_ASSERT_TRUE(wait_verifies(&h2, 2, 120));
	pthread_mutex_lock(&h2.lock);
	printf("\n    source stopped after pass %llu; restored VM reported pass %llu (bad %llu), "
	       "%llu (bad %llu)\n",
	       (unsigned long long)last_pass, (unsigned long long)h2.pass[0],
	       (unsigned long long)h2.bad[0], (unsigned long long)h2.pass[1],
	       (unsigned long long)h2.bad[1]);
	/* It continued (pass numbers carry on) rather than rebooting, and verified clean. */
	CU_ASSERT_EQUAL(h2.pass[0], last_pass + 1);
	CU_ASSERT_EQUAL(h2.bad[0], 0);
	CU_ASSERT_EQUAL(h2.bad[1], 0);
	pthread_mutex_unlock(&h2.lock);
	CU_ASSERT_FALSE(hv_vm_is_stopped(vm2));
	hv_vm_destroy(vm2);
	gw_buf_release(&state);
}

static void test_state_rejected(void)
{
	struct harness h;
	harness_init(&h);
	struct hv_vm *vm = boot(&h, "hello", 32ull << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	struct gw_buf state;
	gw_buf_init(&state);
	CU_ASSERT_EQUAL_FATAL(hv_vm_save_state(vm, &state), 0);
	state.data[4]++; /* the whole-VM section's version */
	CU_ASSERT_EQUAL(hv_vm_load_state(vm, state.data, state.len), -EPROTO);
	state.data[4]--;
	state.data[state.len / 2] ^= 0x40;
	CU_ASSERT_EQUAL(hv_vm_load_state(vm, state.data, state.len), -EBADMSG);
	CU_ASSERT_EQUAL(hv_vm_load_state(vm, state.data, 10), -EBADMSG);
	state.data[state.len / 2] ^= 0x40;
	CU_ASSERT_EQUAL(hv_vm_load_state(vm, state.data, state.len), 0);
	/* The VM still boots and runs after the refused loads. */
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_EQUAL(hv_vm_wait(vm, 60000), 0);
	CU_ASSERT_TRUE(h.hello);
	hv_vm_destroy(vm);
	gw_buf_release(&state);
}

static void test_dirty_union(void)
{
	const uint64_t mem = 32ull << 20;
	size_t pages = mem / HV_PAGE_SIZE;
	struct harness h;
	harness_init(&h);
	struct hv_vm *vm = boot(&h, "dirty:1:400", mem);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_TRUE_FATAL(wait_verifies(&h, 1, 120));
	CU_ASSERT_EQUAL_FATAL(hv_dirty_start(vm), 0);
	uint64_t *bm = gw_bitmap_alloc(pages);
	usleep(500 * 1000);
	CU_ASSERT_EQUAL(hv_dirty_collect(vm, bm), 0);
	size_t guest_dirty = gw_bitmap_count(bm, pages);
	printf("\n    guest dirtied %zu pages in 0.5 s\n", guest_dirty);
	CU_ASSERT_TRUE(guest_dirty > 0);

	/* Quiet guest: drain, then nothing new unless the VMM writes. */
	CU_ASSERT_EQUAL_FATAL(hv_vm_pause(vm), 0);
	gw_bitmap_zero(bm, pages);
	CU_ASSERT_EQUAL(hv_dirty_collect(vm, bm), 0);
	gw_bitmap_zero(bm, pages);
	CU_ASSERT_EQUAL(hv_dirty_collect(vm, bm), 0);
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, pages), 0);

	/* A VMM-side write (as a device thread makes) appears only through the VMM bitmap. */
	uint64_t gpa = 30ull << 20;
	memset(hv_vm_gpa_to_hva(vm, gpa, 8192), 0x5A, 8192);
	hv_dirty_mark(vm, gpa, 8192);
	CU_ASSERT_EQUAL(hv_dirty_collect(vm, bm), 0);
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, pages), 2);
	CU_ASSERT_TRUE(gw_bitmap_test(bm, gpa / HV_PAGE_SIZE));
	CU_ASSERT_TRUE(gw_bitmap_test(bm, gpa / HV_PAGE_SIZE + 1));

	/* Guest writes and VMM writes together: the union holds both. */
	CU_ASSERT_EQUAL(hv_vm_resume(vm), 0);
	hv_dirty_mark(vm, gpa, 1);
	usleep(300 * 1000);
	gw_bitmap_zero(bm, pages);
	CU_ASSERT_EQUAL(hv_dirty_collect(vm, bm), 0);
	CU_ASSERT_TRUE(gw_bitmap_test(bm, gpa / HV_PAGE_SIZE));
	CU_ASSERT_TRUE(gw_bitmap_count(bm, pages) > 1);
	hv_dirty_stop(vm);
	CU_ASSERT_FALSE(hv_dirty_active(vm));
	gw_bitmap_free(bm);
	hv_vm_destroy(vm);
}

struct relay {
	int doorbell, irq;
	volatile bool stop;
	unsigned relayed;
};

/* Plays a device: each doorbell ring becomes one interrupt, without a vCPU exit. */
static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	while (!r->stop) {
		uint64_t n;
		if (read(r->doorbell, &n, sizeof(n)) != sizeof(n))
			continue;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t one = 1;
			if (write(r->irq, &one, sizeof(one)) == sizeof(one))
				r->relayed++;
			/* one interrupt per ring: let the guest EOI before the next */
			if (i + 1 < n)
				usleep(1000);
		}
	}
	return NULL;
}

static void test_irqfd_ioeventfd(void)
{
	struct harness h;
	harness_init(&h);
	struct hv_vm *vm = boot(&h, "irq:50", 32ull << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	struct relay r = {0};
	r.doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.irq = eventfd(0, EFD_CLOEXEC);
	CU_ASSERT_EQUAL_FATAL(hv_vm_ioeventfd(vm, r.doorbell, GW_TEST_DOORBELL_GPA, 4, false, true),
			      0);
	/* Fixed delivery to APIC 0 (Intel SDM vol. 3A, 11.11.1: MSI address 0xFEE00000). */
	int gsi = hv_vm_msi_route_add(vm, 0xFEE00000ull, GW_TEST_IRQ_VECTOR);
	CU_ASSERT_TRUE_FATAL(gsi >= 24);
	CU_ASSERT_EQUAL_FATAL(hv_vm_irqfd(vm, r.irq, (unsigned)gsi, true), 0);
	int fl = fcntl(r.doorbell, F_GETFL);
	fcntl(r.doorbell, F_SETFL, fl & ~O_NONBLOCK);
	pthread_t t;
	pthread_create(&t, NULL, relay_thread, &r);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_EQUAL(hv_vm_wait(vm, 120000), 0);
	int code = -1;
	CU_ASSERT_EQUAL(hv_vm_stop_reason(vm, &code), HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 0);
	CU_ASSERT_TRUE(h.irq_end);
	CU_ASSERT_EQUAL(h.irq_rounds, 50);
	CU_ASSERT_EQUAL(h.irq_got, 50);
	uint64_t mmio = h.at_end.mmio - h.at_begin.mmio;
	printf("\n    50 doorbells -> %llu interrupts, %llu MMIO exits to userspace\n",
	       (unsigned long long)h.irq_got, (unsigned long long)mmio);
	CU_ASSERT_EQUAL(mmio, 0); /* the doorbell never reached userspace as an exit */
	/* Moving the route elsewhere and back keeps working; removal frees it. */
	CU_ASSERT_EQUAL(hv_vm_msi_route_update(vm, (unsigned)gsi, 0xFEE00000ull, 0x42), 0);
	CU_ASSERT_EQUAL(hv_vm_irqfd(vm, r.irq, (unsigned)gsi, false), 0);
	CU_ASSERT_EQUAL(hv_vm_msi_route_remove(vm, (unsigned)gsi), 0);
	CU_ASSERT_EQUAL(hv_vm_msi_route_remove(vm, (unsigned)gsi), -ENOENT);
	r.stop = true;
	uint64_t one = 1;
	(void)!write(r.doorbell, &one, sizeof(one));
	pthread_join(t, NULL);
	hv_vm_destroy(vm);
	close(r.doorbell);
	close(r.irq);
}

static void run_fault(const char *cmdline, enum hv_stop_reason *why, int *code, struct harness *h,
		      struct hv_exit_stats *st)
{
	harness_init(h);
	struct hv_vm *vm = boot(h, cmdline, 32ull << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	CU_ASSERT_EQUAL_FATAL(hv_vm_start(vm), 0);
	CU_ASSERT_EQUAL(hv_vm_wait(vm, 60000), 0);
	*why = hv_vm_stop_reason(vm, code);
	hv_vm_exit_stats(vm, st);
	hv_vm_destroy(vm);
}

static void test_guest_faults(void)
{
	struct harness h;
	struct hv_exit_stats st;
	enum hv_stop_reason why;
	int code;
	run_fault("fault:unmapped", &why, &code, &h, &st);
	CU_ASSERT_EQUAL(why, HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 0);
	CU_ASSERT_TRUE(h.fault_ok);
	CU_ASSERT_EQUAL(h.fault_val, 0xFFFFFFFFu);
	CU_ASSERT_EQUAL(st.mmio_unhandled, 2);

	run_fault("fault:backdoor", &why, &code, &h, &st);
	CU_ASSERT_EQUAL(why, HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 0);
	CU_ASSERT_EQUAL((int64_t)h.fault_val, -ENOSYS);

	/* KVM reports a triple fault as SHUTDOWN; an emulating KVM may report an internal
	 * error instead. Either way the VM stops cleanly and this process lives on. */
	run_fault("fault:triple", &why, &code, &h, &st);
	CU_ASSERT_TRUE(why == HV_STOP_SHUTDOWN || why == HV_STOP_ERROR);

	/* A workload name the guest does not know: it says so and exits 2. */
	run_fault("no-such-workload", &why, &code, &h, &st);
	CU_ASSERT_EQUAL(why, HV_STOP_GUEST_EXIT);
	CU_ASSERT_EQUAL(code, 2);
}

static int kvm_usable(char *why, size_t n)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "/dev/kvm: %s", strerror(errno));
		return 0;
	}
	close(fd);
	return 1;
}

int main(void)
{
	char why[256];
	if (!kvm_usable(why, sizeof(why))) {
		printf("SKIP: KVM integration tests need /dev/kvm (%s)\n", why);
		return GW_TEST_SKIP;
	}
	if (access(GW_TEST_GUEST, R_OK) != 0) {
		printf("test guest %s missing: build it first\n", GW_TEST_GUEST);
		return 1;
	}
	gw_log_set_level(GW_LOG_WARN);
	/* vCPU threads unblock the kick signal themselves; keep it away from the others. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	static const struct gw_test_case cases[] = {
	    {"hello boots and answers in registers", test_hello},
	    {"256 absent PCI functions cost 0 exits", test_pci_scan_no_exits},
	    {"snapshot/restore continues a dirty guest", test_snapshot_restore},
	    {"state with wrong version or corruption is refused", test_state_rejected},
	    {"dirty tracking returns the union", test_dirty_union},
	    {"ioeventfd and irqfd with MSI routing", test_irqfd_ioeventfd},
	    {"guest faults never crash the VMM", test_guest_faults},
	};
	return gw_test_run("kvm", cases, GW_TEST_COUNT(cases));
}
