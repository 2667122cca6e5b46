/* SPDX-License-Identifier: Apache-2.0 */
/* A libvirt domain's XML (virsh dumpxml) as a godwit VM spec: what godwit can honour is
 * taken, anything else is refused by its element's name (godwit vm create --from-libvirt-xml). */
#ifndef GODWIT_CLI_LIBVIRT_XML_H
#define GODWIT_CLI_LIBVIRT_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_LVX_NIC_MAX	   4	/* godwit's NICs per VM */
#define CLI_LVX_PATH_SZ	   4096 /* kernel, initrd */
#define CLI_LVX_CMDLINE_SZ 4096
#define CLI_LVX_FILE_MAX   (1 << 20) /* a domain's XML is a few KiB */

/* One <interface type='hostdev'>: a real VF by its PCI address on the host. */
struct cli_lvx_nic {
	char host[13]; /* "0000:03:10.2" */
	char mac[18];  /* "" when the XML gives none */
	unsigned vlan; /* <vlan><tag id=N/></vlan>; 0 = none */
	bool trust;    /* trustGuestRxFilters='yes' */
};

struct cli_lvx_vm {
	char name[256];
	uint64_t memory_bytes;
	unsigned cpus;
	char kernel[CLI_LVX_PATH_SZ];
	char initrd[CLI_LVX_PATH_SZ]; /* "": none */
	char cmdline[CLI_LVX_CMDLINE_SZ];
	unsigned nnics;
	struct cli_lvx_nic nics[CLI_LVX_NIC_MAX];
};

/* Parses one <domain> document of len bytes into vm. 0; -EINVAL when it is not well-formed
 * XML or not a libvirt domain, or a value is malformed; -ENOTSUP when it asks for something
 * godwit cannot honour. why then names the element (and its line) and what to do. */
int cli_lvx_parse(const char *xml, size_t len, struct cli_lvx_vm *vm, char *why, size_t n);
/* The same for a file (at most CLI_LVX_FILE_MAX bytes); -errno when it cannot be read. */
int cli_lvx_parse_file(const char *path, struct cli_lvx_vm *vm, char *why, size_t n);

#endif
