/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the vfio backend (vfio.c, vfio_mbx.c). */
#ifndef GODWIT_SRIOV_VFIO_PRIV_H
#define GODWIT_SRIOV_VFIO_PRIV_H

#include "sriov_priv.h"

#include "godwit/hv.h"
#include "godwit/igb_vf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/*
 * The mailbox page of a VF whose PF is a real driver (docs/devices.md, "Mailbox interception"
 * and "Across generations"): what the VMM sees of the guest's exchanges through the trapped
 * page, and the PF messages it plays to the guest's driver itself. Under lock.
 */
struct vfio_mbx {
	pthread_mutex_t lock;
	/* A PF reset played to the guest's driver (pf_reset); the device's PF knows nothing
	 * of it. */
	bool pf_resetting; /* RSTI shows, and word 0 holds "NACK without CTS" */
	bool notice;	   /* that word is a PF message (PFSTS) until the driver ACKs it */
	bool rstd;	   /* the played reset ended: RSTD shows once (cleared on read) */
	bool reset_seen;   /* the driver reset the function since the reset began */
	/* Interception: the request the guest composes in the mailbox memory, the one it sent
	 * the PF (its reply is recorded when the guest acknowledges it), and the one the VMM
	 * answers itself (trust=off: a NACK; the PF never hears of it). */
	uint32_t msg[IGB_MBX_WORDS];
	bool awaiting;
	uint32_t req[IGB_MBX_WORDS];
	bool answering;
	uint32_t answer[IGB_MBX_WORDS];
	bool show_ack, show_sts; /* PFACK, PFSTS of that answer, until read */
	uint64_t windows;	 /* exchanges that trapped the page */
	uint64_t exits;		 /* accesses that trapped */
	uint64_t idle_exits;	 /* reads that trapped outside any exchange */
	uint64_t wait_polls;	 /* V2PMBX reads in an exchange that found nothing new */
};

struct sriov_be {
	struct sriov_vf *vf;
	char addr[16];
	int container, group, dev;
	uint64_t cfg_off;	      /* the configuration space region's offset in dev */
	uint64_t bar0_off, bar0_size; /* BAR0's region */
	uint8_t *bar0;		      /* mmapped BAR0, or NULL: every access goes through dev */
	struct hv_ram_range ram[2];
	unsigned nram;	     /* ranges mapped in the IOMMU */
	unsigned msix_count; /* vectors the device offers */
	bool msix_on;	     /* VFIO has the vectors' eventfds */
	uint16_t guest_cmd;  /* the guest's command register (its bus master bit) */
	bool closing;	     /* no more bus mastering, whatever the guest set */
	int req_fd;	     /* the host asks for the device back (unbind, hot-unplug) */
	pthread_t req_thread;
	bool req_started;
	int stop_fd; /* the VF closes: the watch and relay threads end */
	/* The device's IOVA map for dma/ (guest RAM, and the shadow memory a migration adds,
	 * mirrored into the IOMMU); the shadow window sits at shadow_base. */
	struct dma_map *dma;
	/* While a migration shadows the device's DMA, its interrupts reach the VMM first
	 * (relay_fd, the relay thread), which copies the completions they announce into guest
	 * memory before the guest hears of them (vf_dma.c). */
	int relay_fd[IGB_VF_MSIX_VECS];
	int kick_fd;
	pthread_t relay_thread;
	bool relay_started;
	bool relaying; /* VFIO signals relay_fd, not the vectors' irqfds (lock) */
	/* Queues held off by be_run(false): the guest's control word of each, shown and kept
	 * while the device has the queue disabled. */
	bool held;
	uint32_t held_ctl[2][IGB_VF_MAX_QUEUES];
	struct timespec held_since; /* frames that arrive meanwhile are dropped: logged */
	pthread_mutex_t lock;
	struct vfio_mbx mbx; /* the mailbox page (vfio_mbx.c) */
};

/* The device's own registers (BAR0), no amendment. */
uint64_t vfio_dev_read(struct sriov_be *be, uint64_t off, unsigned size);
void vfio_dev_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size);

/* vfio_mbx.c. read/write: a 32-bit access to the mailbox page (page 0) as the guest made
 * it; false when it is not the mailbox's (then it goes to the device as is). */
void vfio_mbx_init(struct sriov_be *be);
void vfio_mbx_fini(struct sriov_be *be);
bool vfio_mbx_read(struct sriov_be *be, uint64_t off, uint32_t *val);
bool vfio_mbx_write(struct sriov_be *be, uint64_t off, uint32_t val);
void vfio_mbx_pf_reset(struct sriov_be *be, bool begin);
bool vfio_mbx_pf_reset_seen(struct sriov_be *be);
void vfio_mbx_recreated(struct sriov_be *be);
void vfio_mbx_status(struct sriov_be *be, struct sriov_vf_status *out);
int vfio_mbx_replay(struct sriov_be *be, const struct sriov_gen *g,
		    const struct sriov_vf_config *want, struct sriov_mbx_replay *out);

#endif
