/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI host bridge with ECAM (PCI Express Base spec, "Enhanced Configuration Access
 * Mechanism"). Present functions trap; every absent function is backed by one shared
 * read-only page of 0xFF bytes mapped into the guest, so probing absent functions costs no
 * exit (a read of all-ones vendor ID means "no function", PCI Local Bus spec 6.1).
 * Configuration mechanism #1 (the address port 0xCF8 and the data ports 0xCFC-0xCFF, PCI
 * Local Bus spec 3.2.2.3.2) reaches the same functions: Linux checks for it before it trusts
 * the ECAM, and uses it for the first 256 bytes of every function.
 */
#include "hv_priv.h"

#include "godwit/fields.h"
#include "godwit/log.h"
#include "pci_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ECAM_FUNCS	  (HV_ECAM_BUSES * 256u)
#define ECAM_SIZE	  ((uint64_t)ECAM_FUNCS * HV_PAGE_SIZE)
#define PCI_STATE_MAGIC	  GW_FOURCC('G', 'P', 'C', 'F')
#define PCI_STATE_VERSION 2 /* 2: one field-table section per function */
#define PCI_HOST_MAGIC	  GW_FOURCC('G', 'P', 'C', 'H')
#define PCI_HOST_VERSION  1
#define CF8_PORT	  0xCF8u
#define CFC_PORT	  0xCFCu
#define CF8_ENABLE	  0x80000000u

struct hv_pci_dev {
	const struct hv_pci_dev_ops *ops;
	void *opaque;
};

struct hv_pci {
	struct hv_vm *vm;
	struct hv_pci_dev devs[256]; /* bus 0 only */
	uint64_t next_mmio;
	pthread_mutex_t lock;
	struct hv_pci_func *funcs[ECAM_FUNCS];
	bool present[ECAM_FUNCS];
	int ff_fd;
	uint8_t *ff_region; /* ECAM_SIZE of VA, every page the same 0xFF page */
	int slots[HV_MAX_SLOTS];
	unsigned nslots;
	_Atomic uint32_t cf8; /* mechanism #1's address register */
};

static void ecam_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
		      unsigned size)
{
	(void)vcpu;
	struct hv_pci *pci = opaque;
	struct hv_ecam_addr a;
	hv_ecam_decode(off, &a);
	*val = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
	pthread_mutex_lock(&pci->lock);
	if (pci->funcs[a.index])
		*val = hv_pci_cfg_read(pci->funcs[a.index], a.reg, size);
	pthread_mutex_unlock(&pci->lock);
}

static void ecam_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
		       unsigned size)
{
	(void)vcpu;
	struct hv_pci *pci = opaque;
	struct hv_ecam_addr a;
	hv_ecam_decode(off, &a);
	struct hv_pci_dev dev = {0};
	pthread_mutex_lock(&pci->lock);
	/* Writes to absent functions land here too (the shared page is read-only): dropped. */
	if (pci->funcs[a.index])
		hv_pci_cfg_write(pci->funcs[a.index], a.reg, val, size);
	if (a.index < 256)
		dev = pci->devs[a.index];
	pthread_mutex_unlock(&pci->lock);
	/* Outside the lock: the device reads its space back and may remap BARs. */
	if (dev.ops && dev.ops->cfg_written)
		dev.ops->cfg_written(dev.opaque, a.reg, size);
}

static const struct hv_io_ops ecam_io = {
    .read = ecam_read,
    .write = ecam_write,
};

/* Only a 32-bit access to 0xCF8 is the address register; byte and word accesses to the
 * ports there are other (legacy) registers, which godwit does not have. */
static void cf8_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val, unsigned size)
{
	(void)vcpu;
	struct hv_pci *pci = opaque;
	*val = off == 0 && size == 4 ? atomic_load(&pci->cf8) : (1ull << (size * 8)) - 1;
}

static void cf8_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val, unsigned size)
{
	(void)vcpu;
	struct hv_pci *pci = opaque;
	if (off == 0 && size == 4)
		atomic_store(&pci->cf8, (uint32_t)val & 0x80FFFFFCu);
}

/* The ECAM offset the address register and the data port's byte select name, or -1 when
 * the register is disabled or names a bus beyond the ECAM's. */
static int64_t cfc_target(struct hv_pci *pci, uint64_t off, unsigned size)
{
	uint32_t a = atomic_load(&pci->cf8);
	unsigned bus = (a >> 16) & 0xFF, devfn = (a >> 8) & 0xFF;
	if (!(a & CF8_ENABLE) || bus >= HV_ECAM_BUSES || off + size > 4)
		return -1;
	return (int64_t)(((uint64_t)bus * 256 + devfn) * HV_PAGE_SIZE + (a & 0xFC) + off);
}

static void cfc_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val, unsigned size)
{
	int64_t at = cfc_target(opaque, off, size);
	if (at < 0)
		*val = (1ull << (size * 8)) - 1;
	else
		ecam_read(opaque, vcpu, (uint64_t)at, val, size);
}

static void cfc_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val, unsigned size)
{
	int64_t at = cfc_target(opaque, off, size);
	if (at >= 0)
		ecam_write(opaque, vcpu, (uint64_t)at, val, size);
}

static const struct hv_io_ops cf8_io = {.read = cf8_read, .write = cf8_write};
static const struct hv_io_ops cfc_io = {.read = cfc_read, .write = cfc_write};

static void drop_slots(struct hv_pci *pci)
{
	for (unsigned i = 0; i < pci->nslots; i++)
		hv_vm_unmap(pci->vm, pci->slots[i]);
	pci->nslots = 0;
}

static int map_run(unsigned start, unsigned count, void *opaque)
{
	struct hv_pci *pci = opaque;
	if (pci->nslots == HV_MAX_SLOTS)
		return -ENOSPC;
	int h = hv_vm_map(pci->vm, HV_ECAM_BASE + (uint64_t)start * HV_PAGE_SIZE,
			  (uint64_t)count * HV_PAGE_SIZE,
			  pci->ff_region + (uint64_t)start * HV_PAGE_SIZE, true);
	if (h < 0)
		return h;
	pci->slots[pci->nslots++] = h;
	return 0;
}

/* One read-only memslot per run of absent functions, all aliasing the same host page. */
static int remap(struct hv_pci *pci)
{
	drop_slots(pci);
	return hv_pci_absent_runs(pci->present, ECAM_FUNCS, map_run, pci);
}

static int add_func(struct hv_pci *pci, unsigned bdf, struct hv_pci_func *f)
{
	if (bdf >= ECAM_FUNCS || pci->funcs[bdf])
		return -EEXIST;
	pthread_mutex_lock(&pci->lock);
	pci->funcs[bdf] = f;
	pci->present[bdf] = true;
	pthread_mutex_unlock(&pci->lock);
	return remap(pci);
}

/* The saved state of one present function (docs/state-format.md). */
struct pci_func_state {
	uint32_t bdf;
	uint8_t cfg[4096];
};

static const struct gw_field pci_func_fields[] = {
    GW_FIELD(1, struct pci_func_state, bdf, 0),
    GW_FIELD(2, struct pci_func_state, cfg, 0),
};

static const struct gw_fields pci_func_table = GW_FIELDS_TABLE(
    "pci-function", PCI_STATE_MAGIC, PCI_STATE_VERSION, struct pci_func_state, pci_func_fields);

/* The host bridge's own state: mechanism #1's address register (a guest may be paused between
 * writing it and using the data port). */
struct pci_host_state {
	uint32_t cf8;
};

static const struct gw_field pci_host_fields[] = {
    GW_FIELD(1, struct pci_host_state, cf8, 0),
};

static const struct gw_fields pci_host_table = GW_FIELDS_TABLE(
    "pci-host", PCI_HOST_MAGIC, PCI_HOST_VERSION, struct pci_host_state, pci_host_fields);

/* The host bridge's section, then one per present function in bus/device/function order. */
static int pci_save(void *opaque, struct gw_buf *out)
{
	struct hv_pci *pci = opaque;
	struct pci_host_state host = {.cf8 = atomic_load(&pci->cf8)};
	int rc = gw_fields_save(&pci_host_table, &host, out);
	struct pci_func_state *st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&pci->lock);
	for (unsigned i = 0; rc == 0 && i < ECAM_FUNCS; i++) {
		if (!pci->funcs[i])
			continue;
		st->bdf = i;
		memcpy(st->cfg, pci->funcs[i]->cfg, sizeof(st->cfg));
		rc = gw_fields_save(&pci_func_table, st, out);
	}
	pthread_mutex_unlock(&pci->lock);
	free(st);
	return rc;
}

static int pci_load(void *opaque, const void *data, size_t len)
{
	struct hv_pci *pci = opaque;
	struct gw_rd rd;
	gw_rd_init(&rd, data, len);
	struct pci_host_state host = {0};
	int rc = gw_fields_load(&pci_host_table, &rd, &host);
	if (rc)
		return rc;
	atomic_store(&pci->cf8, host.cf8 & 0x80FFFFFCu);
	struct pci_func_state *st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&pci->lock);
	while (rd.left) {
		rc = gw_fields_load(&pci_func_table, &rd, st);
		if (rc)
			break;
		/* The destination must have the same functions: config space is not a way to
		 * create one. */
		if (st->bdf >= ECAM_FUNCS || !pci->funcs[st->bdf]) {
			rc = -EINVAL;
			break;
		}
		memcpy(pci->funcs[st->bdf]->cfg, st->cfg, sizeof(st->cfg));
	}
	pthread_mutex_unlock(&pci->lock);
	free(st);
	for (unsigned i = 0; rc == 0 && i < 256; i++) {
		if (pci->devs[i].ops && pci->devs[i].ops->cfg_written)
			pci->devs[i].ops->cfg_written(pci->devs[i].opaque, 0, 4096);
	}
	return rc;
}

static const struct hv_device_ops pci_dev_ops = {
    .kind = "pci-host",
    .save = pci_save,
    .load = pci_load,
};

int hv_pci_create(struct hv_vm *vm, struct hv_pci **out)
{
	struct hv_pci *pci = calloc(1, sizeof(*pci));
	if (!pci)
		return -ENOMEM;
	pci->vm = vm;
	pci->next_mmio = HV_MMIO_BASE;
	pthread_mutex_init(&pci->lock, NULL);
	pci->ff_region = MAP_FAILED;
	int rc;
	pci->ff_fd = memfd_create("godwit-pci-ff", MFD_CLOEXEC);
	if (pci->ff_fd < 0 || ftruncate(pci->ff_fd, HV_PAGE_SIZE) < 0) {
		rc = -errno;
		goto err_free;
	}
	uint8_t *page = mmap(NULL, HV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pci->ff_fd, 0);
	if (page == MAP_FAILED) {
		rc = -errno;
		goto err_free;
	}
	memset(page, 0xFF, HV_PAGE_SIZE);
	munmap(page, HV_PAGE_SIZE);
	pci->ff_region = mmap(NULL, ECAM_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pci->ff_region == MAP_FAILED) {
		rc = -errno;
		goto err_free;
	}
	for (unsigned i = 0; i < ECAM_FUNCS; i++) {
		void *p = mmap(pci->ff_region + (uint64_t)i * HV_PAGE_SIZE, HV_PAGE_SIZE, PROT_READ,
			       MAP_SHARED | MAP_FIXED, pci->ff_fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			goto err_free;
		}
	}
	rc = hv_bus_register(vm->mmio, HV_ECAM_BASE, ECAM_SIZE, &ecam_io, pci, "ecam");
	if (rc)
		goto err_free;
	if ((rc = hv_bus_register(vm->pio, CF8_PORT, 4, &cf8_io, pci, "pci-cf8")) ||
	    (rc = hv_bus_register(vm->pio, CFC_PORT, 4, &cfc_io, pci, "pci-cfc")))
		goto err_unregister;
	struct hv_pci_func *hb = malloc(sizeof(*hb));
	if (hb)
		hv_pci_host_bridge_init(hb);
	if (!hb) {
		rc = -ENOMEM;
		goto err_unregister;
	}
	rc = add_func(pci, 0, hb);
	if (rc) {
		free(hb);
		goto err_unregister;
	}
	rc = hv_device_register(vm, "pci", &pci_dev_ops, pci);
	if (rc)
		goto err_unregister;
	*out = pci;
	return 0;

err_unregister:
	hv_bus_unregister(vm->pio, CF8_PORT);
	hv_bus_unregister(vm->pio, CFC_PORT);
	hv_bus_unregister(vm->mmio, HV_ECAM_BASE);
err_free:
	GW_ERR(vm->name, "cannot set up the PCI host bridge: %s", strerror(-rc));
	hv_pci_destroy(pci);
	return rc;
}

void hv_pci_destroy(struct hv_pci *pci)
{
	if (!pci)
		return;
	drop_slots(pci);
	for (unsigned i = 0; i < ECAM_FUNCS; i++)
		free(pci->funcs[i]);
	if (pci->ff_region != MAP_FAILED)
		munmap(pci->ff_region, ECAM_SIZE);
	if (pci->ff_fd >= 0)
		close(pci->ff_fd);
	pthread_mutex_destroy(&pci->lock);
	free(pci);
}

int hv_pci_add_function(struct hv_vm *vm, unsigned bdf, const uint8_t *cfg, const uint8_t *wmask,
			const struct hv_pci_dev_ops *ops, void *opaque)
{
	struct hv_pci *pci = vm->pci;
	if (bdf == 0 || bdf >= 256)
		return -EINVAL;
	struct hv_pci_func *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	memcpy(f->cfg, cfg, sizeof(f->cfg));
	memcpy(f->wmask, wmask, sizeof(f->wmask));
	pthread_mutex_lock(&pci->lock);
	bool taken = pci->funcs[bdf] != NULL;
	if (!taken)
		pci->devs[bdf] = (struct hv_pci_dev){ops, opaque};
	pthread_mutex_unlock(&pci->lock);
	if (taken) {
		free(f);
		return -EEXIST;
	}
	int rc = add_func(pci, bdf, f);
	if (rc) /* the function went in but the absent-function map could not follow */
		hv_pci_remove_function(vm, bdf);
	return rc;
}

int hv_pci_remove_function(struct hv_vm *vm, unsigned bdf)
{
	struct hv_pci *pci = vm->pci;
	if (bdf == 0 || bdf >= 256)
		return -EINVAL;
	pthread_mutex_lock(&pci->lock);
	struct hv_pci_func *f = pci->funcs[bdf];
	pci->funcs[bdf] = NULL;
	pci->present[bdf] = false;
	pci->devs[bdf] = (struct hv_pci_dev){0};
	pthread_mutex_unlock(&pci->lock);
	if (!f)
		return -ENOENT;
	free(f);
	return remap(pci);
}

unsigned hv_pci_functions(struct hv_vm *vm, uint16_t *bdfs, unsigned max)
{
	struct hv_pci *pci = vm->pci;
	unsigned n = 0;
	pthread_mutex_lock(&pci->lock);
	for (unsigned i = 0; i < 256; i++) {
		if (pci->funcs[i] && n++ < max)
			bdfs[n - 1] = (uint16_t)i;
	}
	pthread_mutex_unlock(&pci->lock);
	return n;
}

int hv_pci_free_slot(struct hv_vm *vm)
{
	struct hv_pci *pci = vm->pci;
	int slot = -ENOSPC;
	pthread_mutex_lock(&pci->lock);
	for (unsigned dev = 1; dev < 32; dev++) {
		if (!pci->funcs[dev * 8]) {
			slot = (int)(dev * 8);
			break;
		}
	}
	pthread_mutex_unlock(&pci->lock);
	return slot;
}

uint64_t hv_pci_cfg_get(struct hv_vm *vm, unsigned bdf, unsigned reg, unsigned size)
{
	struct hv_pci *pci = vm->pci;
	uint64_t v = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
	pthread_mutex_lock(&pci->lock);
	if (bdf < ECAM_FUNCS && pci->funcs[bdf])
		v = hv_pci_cfg_read(pci->funcs[bdf], reg, size);
	pthread_mutex_unlock(&pci->lock);
	return v;
}

void hv_pci_cfg_put(struct hv_vm *vm, unsigned bdf, unsigned reg, uint64_t val, unsigned size)
{
	struct hv_pci *pci = vm->pci;
	if (size == 0 || size > 8 || reg + size > 4096)
		return;
	pthread_mutex_lock(&pci->lock);
	if (bdf < ECAM_FUNCS && pci->funcs[bdf])
		memcpy(&pci->funcs[bdf]->cfg[reg], &val, size);
	pthread_mutex_unlock(&pci->lock);
}

uint64_t hv_pci_alloc_mmio(struct hv_vm *vm, uint64_t size)
{
	struct hv_pci *pci = vm->pci;
	if (size < HV_PAGE_SIZE || (size & (size - 1)))
		return 0;
	pthread_mutex_lock(&pci->lock);
	uint64_t base = (pci->next_mmio + size - 1) & ~(size - 1);
	uint64_t gpa = 0;
	if (base + size <= HV_ECAM_BASE) {
		gpa = base;
		pci->next_mmio = base + size;
	}
	pthread_mutex_unlock(&pci->lock);
	return gpa;
}
