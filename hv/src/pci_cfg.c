/* SPDX-License-Identifier: Apache-2.0 */
/* PCI configuration space semantics (PCI Local Bus spec 3.0, ch. 6; PCIe base spec ECAM). */
#include "pci_cfg.h"

#include "godwit/hv.h"

#include <string.h>

void hv_ecam_decode(uint64_t off, struct hv_ecam_addr *a)
{
	a->bus = (unsigned)(off >> 20) & 0xFF;
	a->dev = (unsigned)(off >> 15) & 0x1F;
	a->fn = (unsigned)(off >> 12) & 0x7;
	a->reg = (unsigned)off & 0xFFF;
	a->index = (unsigned)(off >> 12) & 0xFFFF;
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

uint64_t hv_pci_cfg_read(const struct hv_pci_func *f, unsigned reg, unsigned size)
{
	if (size == 0 || size > 8 || reg + size > 4096)
		return ones(size);
	uint64_t v = 0;
	memcpy(&v, &f->cfg[reg], size);
	return v;
}

void hv_pci_cfg_write(struct hv_pci_func *f, unsigned reg, uint64_t val, unsigned size)
{
	if (size == 0 || size > 8 || reg + size > 4096)
		return;
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = f->wmask[reg + i];
		uint8_t b = (uint8_t)(val >> (i * 8));
		f->cfg[reg + i] = (uint8_t)((f->cfg[reg + i] & ~m) | (b & m));
	}
}

int hv_pci_absent_runs(const bool *present, unsigned nfuncs,
		       int (*fn)(unsigned start, unsigned count, void *opaque), void *opaque)
{
	unsigned i = 0;
	while (i < nfuncs) {
		if (present[i]) {
			i++;
			continue;
		}
		unsigned start = i;
		while (i < nfuncs && !present[i])
			i++;
		int rc = fn(start, i - start, opaque);
		if (rc)
			return rc;
	}
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

void hv_pci_host_bridge_init(struct hv_pci_func *f)
{
	memset(f, 0, sizeof(*f));
	put16(&f->cfg[0x00], 0x8086); /* vendor: Intel */
	put16(&f->cfg[0x02], 0x29C0); /* device: a host bridge every OS knows */
	f->cfg[0x0B] = 0x06;	      /* class: bridge; subclass 00: host bridge */
	put16(&f->cfg[0x2C], 0x8086);
	put16(&f->cfg[0x2E], 0x0001);
	/* Command register: memory space, bus master, SERR, INTx disable are writable. */
	put16(&f->wmask[0x04], 0x0546);
	f->wmask[0x0C] = 0xFF; /* cache line size */
	f->wmask[0x0D] = 0xFF; /* latency timer */
}

unsigned hv_pci_intx_gsi(unsigned bdf)
{
	/* Swizzle by device number over the eight I/O APIC pins above the ISA ones. */
	return 16u + ((bdf >> 3) & 7u);
}
