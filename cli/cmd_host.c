/* SPDX-License-Identifier: Apache-2.0 */
/* godwit host info. */
#include "cli.h"

#include "godwit/v1/host.pb-c.h"

#include <getopt.h>
#include <string.h>

static void host_usage(FILE *f)
{
	fprintf(f, "Usage: godwit host info\n"
		   "Shows the host godwitd runs on: its id, KVM support, memory, CPUs, VMs and\n"
		   "device inventory: each SR-IOV PF (godwitd --emul-nic, --pf) with its\n"
		   "backend, generation, uplink or PCI address and free VFs, which VM holds each\n"
		   "other VF, and for a real PF each VF's address, driver, IOMMU group and why a\n"
		   "VM cannot have it or which libvirt domain holds it; and where godwitd read\n"
		   "its real PFs (godwitd --libvirt: sysfs or libvirt). With --json, the\n"
		   "godwit.v1.HostInfo message.\n");
}

/* A real PF's VF: address, driver, group; who holds it, or why no VM can.
 *   vf1  0000:00:10.2  vfio-pci  group 12  held by web1  02:12:34:56:78:9a */
static void print_real_vf(const Godwit__V1__SriovVf *vf)
{
	printf("  vf%u  %s  %s  group %s  ", vf->index, vf->host_address,
	       vf->driver[0] ? vf->driver : "no driver",
	       vf->iommu_group[0] ? vf->iommu_group : "-");
	if (vf->libvirt_domain && vf->libvirt_domain[0])
		printf("busy: in use by libvirt domain %s\n", vf->libvirt_domain);
	else if (!vf->available)
		printf("unavailable: %s\n", vf->reason);
	else if (!vf->free)
		printf("held by %s  %s\n", vf->vm, vf->mac);
	else
		printf("free\n");
}

/* pf0  emul gen1  8086:10ca rev 01 api 1.0 queues 1  uplink none  VFs 7 (6 free)
 *   vf3  held by web1  02:12:34:56:78:9a
 * pf1  vfio gen1  8086:10ca ...  PF 0000:00:04.0  VFs 2 (1 free)
 *   vf0  0000:00:10.0  vfio-pci  group 11  free */
static void print_sriov(const Godwit__V1__HostInfo *h)
{
	if (h->n_sriov_pfs == 0) {
		printf("SR-IOV    none declared (godwitd --emul-nic none)\n");
		return;
	}
	printf("SR-IOV\n");
	for (size_t i = 0; i < h->n_sriov_pfs; i++) {
		const Godwit__V1__SriovPf *pf = h->sriov_pfs[i];
		const Godwit__V1__GenDescriptor *g = pf->gen;
		bool real = !strcmp(pf->backend, "vfio");
		printf("pf%u  %s gen%u  %s  %s %s  VFs %u (%u free)\n", pf->index, pf->backend,
		       g ? g->gen : 0, g ? g->summary : "?", real ? "PF" : "uplink",
		       real ? pf->address : pf->uplink, pf->total_vfs, pf->free_vfs);
		for (size_t v = 0; v < pf->n_vfs; v++) {
			if (real)
				print_real_vf(pf->vfs[v]);
			else if (!pf->vfs[v]->free)
				printf("  vf%u  held by %s  %s\n", pf->vfs[v]->index,
				       pf->vfs[v]->vm, pf->vfs[v]->mac);
		}
	}
}

int cmd_host(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		host_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if (strcmp(argv[1], "info") != 0)
		return cli_usage_error("host", "unknown subcommand '%s'; see 'godwit host --help'",
				       argv[1]);
	if (argc > 2) {
		if (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
			host_usage(stdout);
			return CLI_OK;
		}
		return cli_usage_error("host info", "unexpected argument '%s'", argv[2]);
	}
	Godwit__V1__GetInfoRequest req = GODWIT__V1__GET_INFO_REQUEST__INIT;
	Godwit__V1__HostInfo *h;
	int rc = cli_call(c, &godwit__v1__host__descriptor, "GetInfo", &req.base,
			  (ProtobufCMessage **)&h);
	if (rc)
		return rc;
	if (c->json) {
		out_json(&h->base);
	} else {
		char mem[32];
		fmt_bytes(h->memory_total_bytes, mem, sizeof(mem));
		printf("host      %s (id %s)\n", h->hostname, h->host_id);
		printf("version   %s\n", h->version);
		if (h->kvm && h->kvm->available)
			printf("kvm       available: API %d, %s, %s, %s, up to %u vCPUs\n",
			       h->kvm->api_version,
			       h->kvm->irqchip ? "in-kernel irqchip" : "no irqchip",
			       h->kvm->manual_dirty_log ? "manual dirty log" : "basic dirty log",
			       h->kvm->tsc_control ? "TSC scaling" : "no TSC scaling",
			       h->kvm->max_vcpus);
		else
			printf("kvm       unavailable: %s\n", h->kvm ? h->kvm->error : "?");
		printf("memory    %s\n", mem);
		printf("cpus      %u\n", h->cpus);
		printf("vms       %u (%u running)\n", h->vms, h->vms_running);
		printf("inventory %s\n", h->inventory && h->inventory[0] ? h->inventory : "sysfs");
		if (h->n_devices > 0) {
			const char *hdr[] = {"DEVICE", "KIND", "GENERATION", "FREE", "ASSIGNED TO"};
			struct table *t = table_new(5, hdr);
			for (size_t i = 0; i < h->n_devices; i++) {
				Godwit__V1__DeviceInfo *dv = h->devices[i];
				const char *row[] = {dv->id, dv->kind, dv->generation,
						     dv->free ? "yes" : "no", dv->assigned_to};
				table_row(t, row);
			}
			printf("devices\n");
			table_print(t, stdout);
		}
		print_sriov(h);
	}
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return CLI_OK;
}
