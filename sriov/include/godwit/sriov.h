/* SPDX-License-Identifier: Apache-2.0 */
/* VFs attached to a VM: one PCI function each, backed by a backend (emul now, vfio later). */
#ifndef GODWIT_SRIOV_H
#define GODWIT_SRIOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/sriov_gen.h"
#include "godwit/sriov_pf.h"

struct hv_vm;
struct sriov_vf;

/* How the VMM presents one BAR page: straight into the guest (no exits; the hardware
 * observes the memory) or trapped (every access exits to the VMM). The VMM decides. */
enum sriov_page_mode {
	SRIOV_PAGE_TRAP = 0,
	SRIOV_PAGE_DIRECT = 1,
	SRIOV_PAGE_READ = 2, /* reads straight from memory, writes trap */
};

struct sriov_vf_config_spec {
	const char *backend; /* "emul" or "vfio" */
	char host[16];	     /* vfio: the VF's PCI address on the host, "DDDD:BB:DD.F" */
	unsigned pf, vf;     /* host indexes, for the inventory and logs */
	unsigned index;	     /* position among the VM's VFs: the device's name, "vf<index>" */
	unsigned gen;	     /* emul: 1 or 2 */
	unsigned nvfs;	     /* VFs the PF has (PF agent size); default SRIOV_EMUL_MAX_VFS */
	const char *uplink;  /* packet port spec (sriov_port.h); NULL = "none" */
	uint8_t mac[6];	     /* the administrator's MAC for this VF */
	enum sriov_page_mode queue_pages; /* BAR0 pages 2-3, the RX/TX queue registers */
	bool mbx_trap;	/* mbx=trap: the mailbox page always traps (default: intercept) */
	bool untrusted; /* trust=off: the VF may not change its MAC */
	/* backing=emulated: no host VF backs it; the VMM's own device model serves the same
	 * interface (a migration's "absent" decision), so its writes are tracked directly */
	bool emulated;
};

/* Parses "pf=P,vf=V,gen=G,mac=MAC[,pages=trap|direct][,mbx=intercept|trap][,trust=on|off]
 * [,backend=emul|vfio][,host=DDDD:BB:DD.F],uplink=SPEC" (uplink last: it may hold commas;
 * backend=vfio needs host= and takes no uplink). -EINVAL with a reason in err. */
int sriov_vf_spec_parse(const char *s, struct sriov_vf_config_spec *out, char *err, size_t n);
/* A PCI address "DDDD:BB:DD.F" (lower or upper case hex): 0 and the packed
 * domain << 16 | bus << 8 | device << 3 | function in out (may be NULL), or -EINVAL. */
int sriov_pci_addr_parse(const char *s, unsigned *out);
int sriov_mac_parse(const char *s, uint8_t mac[6]);
void sriov_mac_format(const uint8_t mac[6], char out[18]);

/* Puts the VF on the VM's PCI bus (the next free slot), assigns its BARs, registers its state
 * with hv's device interface and starts its backend (paused until the VM runs). */
int sriov_vf_attach(struct hv_vm *vm, const struct sriov_vf_config_spec *spec,
		    struct sriov_vf **out);
void sriov_vf_detach(struct sriov_vf *vf);
int sriov_vf_set_page_mode(struct sriov_vf *vf, unsigned page, enum sriov_page_mode mode);
struct sriov_pf_agent *sriov_vf_pf_agent(struct sriov_vf *vf);

struct sriov_vf_status {
	char name[16];
	char backend[8];
	bool emulated;		    /* backing=emulated */
	bool recreate;		    /* quiesced for re-creation on another generation */
	uint64_t recreate_quiesces; /* how often it was */
	struct sriov_gen gen;
	unsigned pf, vf, bdf;
	uint64_t bar0, bar3;
	bool msix;
	struct sriov_vf_config config; /* PF side */
	uint64_t tx_frames, rx_frames, tx_dropped, rx_dropped, dma_faults, irqs, mbx_requests;
	/* rx_dropped split by cause: no descriptor posted, MAC/VLAN filter, longer than allowed */
	uint64_t rx_no_desc, rx_filtered, rx_too_long;
	uint64_t trapped_accesses; /* BAR accesses that exited to the VMM */
	unsigned direct_pages;	   /* bit p: BAR0 page p is mapped into the guest now */
	bool dma_active;	   /* a migration's DMA mode is engaged */
	char dma_mode[8];	   /* "off", "shadow", "track" */
	/* Mailbox interception: the VMM's record of the VF's configuration, the exchanges that
	 * trapped the mailbox page, and the page's exits during them and outside them. */
	struct sriov_mbx_record record;
	uint64_t mbx_exchanges, mbx_exits, mbx_idle_exits;
	/* of mbx_exits, the driver's reads of the mailbox control register during an exchange
	 * that found nothing new: its wait for the PF, as many as the PF's latency makes */
	uint64_t mbx_wait_polls;
	char port[96];
};
void sriov_vf_status(struct sriov_vf *vf, struct sriov_vf_status *out);

/*
 * Reconfiguration across generations (docs/devices.md), source side: quiesces the device for a
 * migration whose destination re-creates it on another generation. The PF tells the VF a
 * reset is in progress and waits (up to timeout_ms) until the guest driver has reset the
 * function, so it no longer does DMA; from then on the VF's migration state carries no
 * device state, only what the destination needs to re-create it (the mailbox record).
 * -ETIMEDOUT, with the device running again, when the driver did not react. 0 at once when
 * the VF is quiesced already.
 */
int sriov_vf_recreate_prepare(struct sriov_vf *vf, int timeout_ms);
/* Whether the dirty log sees the VF's DMA (a DMA mode, or the VMM's own device). A VF whose
 * DMA it cannot see (vfio) is quiesced before tracking starts, not once pre-copy converged:
 * what it wrote before then is in the first full copy, and it writes nothing after. */
bool sriov_vf_dma_tracked(const struct sriov_vf *vf);
/* The VM stays here after all: the reset ends (RSTD) and the driver goes on. Idempotent. */
void sriov_vf_recreate_cancel(struct sriov_vf *vf);

#endif
