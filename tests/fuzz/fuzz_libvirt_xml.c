/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: godwit vm create --from-libvirt-xml's parser (cli/libvirt_xml.c) on
 * arbitrary bytes: a spec or an error with a reason, never a crash or a partial answer. */
#include "libvirt_xml.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cli_lvx_vm vm;
	char why[600];
	why[0] = '\0';
	int rc = cli_lvx_parse((const char *)data, size, &vm, why, sizeof(why));
	if (rc && !why[0])
		abort(); /* every refusal says why */
	if (rc == 0 && (vm.nnics > CLI_LVX_NIC_MAX || !vm.name[0] || !vm.kernel[0] || !vm.cpus))
		abort();
	return 0;
}
