/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VF's DMA during a migration (docs/devices.md, "DMA shadowing"): the vendor-neutral engine
 * that moves a VF's queues onto dma/'s shadow rings (or tracks them) while dirty logging runs.
 * It sees the device only through vf_dma_dev_ops and the profile's queue layout; vf.c owns
 * the PCI function and calls in, never the other way round.
 */
#ifndef GODWIT_SRIOV_VF_DMA_H
#define GODWIT_SRIOV_VF_DMA_H

#include <stdbool.h>
#include <stdint.h>

#include "godwit/dma_shadow.h"
#include "godwit/sriov.h"
#include "godwit/sriov_queues.h"

struct dma_map;
struct vf_dma;

/* What the engine needs of the device; dev is the ops' opaque. */
struct vf_dma_dev_ops {
	/* The device's own registers (no DMA mode in the way): 32-bit, and any size. */
	uint32_t (*reg_read)(void *dev, uint32_t off);
	void (*reg_write)(void *dev, uint32_t off, uint32_t val);
	void (*write)(void *dev, uint64_t off, uint64_t val, unsigned size);
	int (*run)(void *dev, bool run); /* resume / quiesce the device's work */
	struct dma_map *(*dma)(void *dev);
	void (*kick)(void *dev); /* have the device run a round soon */
	/* The device works by itself, not in rounds that call vf_dma_round between them (real
	 * hardware): the engine holds it off (run) to move its queues. */
	bool (*live)(void *dev);
	unsigned (*queues)(void *dev); /* queues per direction the device has now */
	enum sriov_page_mode (*page_mode)(void *dev, unsigned page);
	int (*set_page_mode)(void *dev, unsigned page, enum sriov_page_mode mode);
	void (*msix)(void *dev, unsigned vec); /* deliver an interrupt now */
	void (*intx)(void *dev, bool level);
	/* What the guest sees of its memory, split from what the device reaches there
	 * (hv_vm_ram_split, hv_vm_ram_join), with the vCPUs held around it (hold_guest): for a
	 * device that works by itself, whose rings then stay put while shadowed. NULL or an
	 * error where that cannot be (a model in the VMM sees what the guest sees). */
	int (*hold_guest)(void *dev, bool hold);
	int (*split)(void *dev, uint64_t gpa, uint64_t len, void **dev_view);
	int (*join)(void *dev, uint64_t gpa, uint64_t len, void *dev_view);
	/* The migration's side: its DMA mode, and dirty tracking (IOVA = guest-physical). */
	enum dma_mode (*dirty_mode)(void *dev);
	void (*dirty_mark)(void *dev, uint64_t iova, uint64_t len);
	void (*dirty_account)(void *dev, uint64_t pages, uint64_t bytes_copied);
};

/*
 * The engine's state, named after VFIO's v2 migration states (linux/vfio.h) where they mean
 * the same. Dirty logging starts and stops (LOG_*), the VM stops and runs (QUIESCE, RESUME);
 * the table in vf_dma.c says where each event leads from each state.
 */
enum vf_dma_state {
	VF_DMA_STOP,		 /* stopped, no dirty logging */
	VF_DMA_RUNNING,		 /* running, no dirty logging: no exits, nothing engaged */
	VF_DMA_STOP_COPY,	 /* logging, stopped: the queues are on the guest's rings */
	VF_DMA_PRE_COPY,	 /* logging, running, the DMA mode not engaged (off, or failed) */
	VF_DMA_PRE_COPY_ENGAGED, /* logging, running on shadow (or tracked) rings */
	VF_DMA_PRE_COPY_RETAKE,	 /* engaged; a ring changed: take the queues over again */
	VF_DMA_NSTATES,
};
const char *vf_dma_state_name(enum vf_dma_state s);

/* name is kept (for logs), not copied. -EINVAL for a layout the engine cannot hold. */
int vf_dma_create(const struct vf_dma_dev_ops *ops, void *dev,
		  const struct sriov_queue_layout *layout, const char *name, struct vf_dma **out);
void vf_dma_destroy(struct vf_dma *d);
void vf_dma_release(struct vf_dma *d); /* drops shadow memory: before the backend closes */

/* hv's device interface: dirty logging on and off; the device stopped and run with the DMA
 * mode handed back / engaged. quiesce and resume return the device's run op's result. */
void vf_dma_log_start(struct vf_dma *d);
void vf_dma_log_stop(struct vf_dma *d);
int vf_dma_quiesce(struct vf_dma *d);
int vf_dma_resume(struct vf_dma *d);

/* The guest's BAR0 accesses (vCPU threads): true when the engine handled it. */
bool vf_dma_bar0_read(struct vf_dma *d, uint64_t off, unsigned size, uint64_t *val);
bool vf_dma_bar0_write(struct vf_dma *d, uint64_t off, uint64_t val, unsigned size);

/* The device's side: an interrupt waits for the completions it announces (true: held, the
 * engine delivers it); after every round of device work. */
bool vf_dma_defer_msix(struct vf_dma *d, unsigned vec);
bool vf_dma_defer_intx(struct vf_dma *d, bool level);
void vf_dma_round(struct vf_dma *d);

void vf_dma_status(struct vf_dma *d, bool *active, const char **mode);
enum vf_dma_state vf_dma_state(struct vf_dma *d);

#endif
