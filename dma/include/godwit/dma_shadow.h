/* SPDX-License-Identifier: Apache-2.0 */
/* DMA shadowing and tracking: how device writes reach dirty tracking during a migration. */
#ifndef GODWIT_DMA_SHADOW_H
#define GODWIT_DMA_SHADOW_H

#include <stdbool.h>
#include <stdint.h>

#include "godwit/dma.h"

/*
 * What a migration does about device DMA (docs/devices.md):
 *   off     nothing: device writes stay invisible to dirty tracking (real DMA's problem)
 *   shadow  the device works on shadow rings and buffers in VMM-owned IOVA space; the VMM
 *           copies posted descriptors out of the guest's ring on each doorbell, and copies
 *           completions (data, then written-back descriptors) into guest memory, marking
 *           those pages dirty, before the interrupt is relayed
 *   track   the device keeps the guest's rings; the VMM notes the buffers posted on each
 *           doorbell and marks them and the descriptors dirty as they complete (no copies)
 */
enum dma_mode {
	DMA_MODE_OFF = 0,
	DMA_MODE_SHADOW = 1,
	DMA_MODE_TRACK = 2,
};
const char *dma_mode_name(enum dma_mode m);
/* "off", "shadow", "track"; -EINVAL otherwise. */
int dma_mode_parse(const char *s, enum dma_mode *out);

/* A descriptor ring format, from the device profile: dma/ knows no vendor. */
struct dma_ring_ops {
	const char *name;
	unsigned desc_size; /* bytes, a multiple of 8 up to 64 */
	/* RX, driver's (read) format: the buffer's address, and its rewrite. */
	uint64_t (*rx_buf_addr)(const void *desc);
	void (*rx_set_buf_addr)(void *desc, uint64_t iova);
	/* RX, device's (write-back) format: the bytes written, or -1 when not written back. */
	int (*rx_done_len)(const void *desc);
	/* TX: whether the device wrote the descriptor back. */
	bool (*tx_done)(const void *desc);
};

/* A queue's ring as the device's registers describe it. */
struct dma_queue_regs {
	uint64_t base; /* the guest's ring address (IOVA) */
	uint32_t n;    /* descriptors */
	uint32_t head, tail;
	uint32_t buf_size; /* RX: bytes per buffer */
};

#define DMA_SHADOW_MAX_QUEUES 8u
/* Where shadow memory sits in a device's IOVA space: far above any guest RAM. */
#define DMA_SHADOW_IOVA_BASE 0x100000000000ull
#define DMA_SHADOW_SLOT_SIZE 0x40000000ull

typedef void (*dma_dirty_fn)(void *opaque, uint64_t iova, uint64_t len);

struct dma_shadow;

/* One per device. map is the device's IOVA map (guest RAM at IOVA = guest-physical);
 * dirty marks guest pages (the VMM-side dirty bitmap). */
int dma_shadow_create(struct dma_map *map, const struct dma_ring_ops *ops, enum dma_mode mode,
		      dma_dirty_fn dirty, void *opaque, struct dma_shadow **out);
/* Frees every queue's shadow memory; the device must no longer use it. */
void dma_shadow_destroy(struct dma_shadow *s);
enum dma_mode dma_shadow_mode(const struct dma_shadow *s);

/*
 * Takes over queue slot (0..DMA_SHADOW_MAX_QUEUES-1) with the device quiesced: descriptors
 * [head, tail) are the device's, the rest the driver's. *dev_base is the ring address the
 * device must use from now on: the shadow ring, or (track mode, or a guest ring that is not
 * wholly in guest memory, which the device then faults on by itself) the guest's own.
 * Returns 0, or -ENOMEM / -ENOSPC.
 */
int dma_shadow_queue_start(struct dma_shadow *s, unsigned slot, bool tx,
			   const struct dma_queue_regs *r, uint64_t *dev_base);
/*
 * Shadow mode without moving the ring (the device keeps working, a real NIC that would drop
 * frames for a queue held off to move it): the guest's view of the ring's pages was split
 * from the device's (hv_vm_ram_split), dev_ring is the device's view of the ring at r->base,
 * the guest sees its copy there. The descriptors the device owns ([head, tail)) stay as the
 * driver posted them (they complete as in track); what the driver posts from now on reaches
 * dev_ring with shadow buffers. The device need not be quiesced. 0, -EINVAL (not shadow
 * mode), -ENOMEM / -ENOSPC.
 */
int dma_shadow_queue_start_split(struct dma_shadow *s, unsigned slot, bool tx,
				 const struct dma_queue_regs *r, void *dev_ring);
/* A split ring's way back: posts reach the device as the driver wrote them from now on.
 * True once no descriptor the device owns names a shadow buffer (completions drain them):
 * the guest may then see the device's view of the ring again. */
bool dma_shadow_queue_drain(struct dma_shadow *s, unsigned slot);
/* The descriptors the device owns or completed unseen ([*first, *first + *count) modulo the
 * ring's *n): what must not be written in its ring. False when the queue is not active. */
bool dma_shadow_queue_device_owned(struct dma_shadow *s, unsigned slot, uint32_t *first,
				   uint32_t *count, uint32_t *n);
/* Maps shadow memory for a queue of n descriptors (RX: of buf_size bytes each) in slot now,
 * so that dma_shadow_queue_start, with the device held off, finds it ready (an IOMMU pins
 * memory it maps, which takes time). Nothing in track mode. 0, -EINVAL, -ENOSPC, -ENOMEM or
 * the map's error. */
int dma_shadow_queue_reserve(struct dma_shadow *s, unsigned slot, bool tx, uint32_t n,
			     uint32_t buf_size);
/* The driver moved the tail (a doorbell): called before the device hears of it. False when
 * the tail was refused: it went backwards or past what the device still owns (the driver and
 * the shadow disagree about what completed), and nothing was posted. */
bool dma_shadow_queue_post(struct dma_shadow *s, unsigned slot, uint32_t tail);
/* The device's head moved: completions up to head reach guest memory, marked dirty. A
 * descriptor that is not written back (a head no device would report) stops the walk. */
void dma_shadow_queue_complete(struct dma_shadow *s, unsigned slot, uint32_t head);
/* Hands the queue back (device quiesced, after a last complete): descriptors the device had
 * not reached are still intact in the guest's ring. Returns the guest's ring address. The
 * slot's shadow memory stays mapped until dma_shadow_destroy (or a start that needs more). */
uint64_t dma_shadow_queue_stop(struct dma_shadow *s, unsigned slot);
/* Forgets a queue the device no longer uses (reset): no handback. */
void dma_shadow_queue_drop(struct dma_shadow *s, unsigned slot);
bool dma_shadow_queue_active(const struct dma_shadow *s, unsigned slot);
/* The guest's ring address of an active queue, or 0. */
uint64_t dma_shadow_queue_guest_base(const struct dma_shadow *s, unsigned slot);
/* The shadow ring's address of an active queue in shadow mode, or 0. */
uint64_t dma_shadow_queue_dev_base(const struct dma_shadow *s, unsigned slot);

struct dma_shadow_stats {
	uint64_t pages_dirtied; /* guest pages marked dirty for device DMA */
	uint64_t bytes_copied;	/* payload copied from shadow buffers into guest buffers */
	uint64_t descs_posted, descs_completed;
	uint64_t bad_addrs; /* guest buffers or rings outside guest memory, left to the device */
	uint64_t tails_refused; /* doorbells past what the device still owns: not posted */
};
void dma_shadow_get_stats(struct dma_shadow *s, struct dma_shadow_stats *out);

#endif
