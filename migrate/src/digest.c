/* SPDX-License-Identifier: Apache-2.0 */
/* What both sides must agree on before any byte of RAM moves, and a RAM checksum. */
#include "mig_priv.h"

#include "godwit/crc.h"

#include <stdio.h>
#include <string.h>

uint64_t mig_config_digest(struct hv_vm *vm)
{
	char desc[1024];
	hv_vm_describe(vm, desc, sizeof(desc));
	/* FNV-1a 64: a mismatch detector, not a security measure (the token is that). */
	uint64_t h = 0xCBF29CE484222325ull;
	for (const char *p = desc; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
	return h;
}

uint64_t mig_ram_checksum(struct hv_vm *vm)
{
	/* CRC-32C of each half, so that the value carries 64 bits. */
	const uint8_t *ram = hv_vm_ram_base(vm);
	uint64_t size = hv_vm_ram_size(vm), half = size / 2;
	uint32_t a = gw_crc32c(0, ram, half);
	uint32_t b = gw_crc32c(0, ram + half, size - half);
	return ((uint64_t)a << 32) | b;
}
