/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the whole VM state load (hv_vm_load_state) into a VM with every kind of
 * device godwit-vmm has (com1, rtc, pci and an emulated igb VF with its mailbox record), KVM
 * stubbed (fake_vm.c). Each input is loaded as it comes and with its sections' CRCs made
 * right. GW_FUZZ_SEEDS=DIR writes a real saved state there first, as the corpus to start from. */
#include "fake_vm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct gw_buf seed;
	if (fake_vm_state(&seed) == 0)
		fake_vm_write_seeds(getenv("GW_FUZZ_SEEDS"), "state", &seed, 1);
	gw_buf_release(&seed);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hv_vm *vm = fake_vm();
	if (!vm)
		abort(); /* the harness itself is broken: say so loudly */
	hv_vm_load_state(vm, data, size);
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fake_fix_crcs(copy, size);
	hv_vm_load_state(vm, copy, size);
	free(copy);
	return 0;
}
