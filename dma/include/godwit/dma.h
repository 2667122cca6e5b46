/* SPDX-License-Identifier: Apache-2.0 */
/* IOVA maps: the only way device threads reach guest (or VMM-owned) memory. */
#ifndef GODWIT_DMA_H
#define GODWIT_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dma_map;

#define DMA_MAP_MAX_RANGES 16u

/* Called for every device write that lands in a range with tracking on (see
 * dma_map_set_write_hook); iova and len describe the bytes written. */
typedef void (*dma_write_hook)(void *opaque, uint64_t iova, uint64_t len);

int dma_map_create(struct dma_map **out);
void dma_map_destroy(struct dma_map *m);
/*
 * Maps [iova, iova + len) to host memory at hva, the way an IOMMU maps guest RAM for a
 * device: -EINVAL (empty, wrapping or unaligned to 4 KiB), -EEXIST (overlap), -ENOSPC.
 */
int dma_map_add(struct dma_map *m, uint64_t iova, uint64_t len, void *hva, bool writable);
int dma_map_remove(struct dma_map *m, uint64_t iova);
/*
 * Device accesses. Each is all or nothing: -EFAULT when any byte lies outside the map (an
 * IOMMU fault), -EACCES when writing a read-only range. Safe from any thread; the map is
 * read-mostly (a seqlock-free RW lock held only for the lookup).
 */
int dma_read(struct dma_map *m, uint64_t iova, void *buf, size_t len);
int dma_write(struct dma_map *m, uint64_t iova, const void *buf, size_t len);
/*
 * dma_write for what a driver reads while the device writes it, a descriptor's write-back: len
 * is 4 or a multiple of 8, iova aligned to 4 or 8 (-EINVAL otherwise), and each 4- or 8-byte
 * word is stored exactly once, in address order, with release semantics. A driver that sees a
 * later word (the status, DD) sees the earlier ones, and a word it rewrites after seeing the
 * status stays as it wrote it. memcpy promises neither: glibc copies 16 bytes with two
 * overlapping 16-byte stores, so a driver that re-posts a descriptor between them finds the
 * write-back (buffer address 0, DD set) stored over its re-post.
 */
int dma_write_words(struct dma_map *m, uint64_t iova, const void *buf, size_t len);
/* Host pointer for [iova, iova + len) when it lies in one range, else NULL. */
void *dma_translate(struct dma_map *m, uint64_t iova, uint64_t len, bool write);
/* Installs (or with hook == NULL removes) the function told about device writes. Real DMA
 * tells nobody; only dma/'s own modes (track, shadow) and test harnesses install one. */
void dma_map_set_write_hook(struct dma_map *m, dma_write_hook hook, void *opaque);

/*
 * A real IOMMU behind the map (a VFIO container): every range added from then on is mapped
 * there too before it counts, and unmapped there when removed, so that a device doing real
 * DMA reaches exactly what the map holds. map fails the add with its error. Ranges already
 * in the map are not replayed: the caller mapped them itself.
 */
struct dma_mirror_ops {
	int (*map)(void *opaque, uint64_t iova, uint64_t len, void *hva, bool writable);
	void (*unmap)(void *opaque, uint64_t iova, uint64_t len);
};
void dma_map_set_mirror(struct dma_map *m, const struct dma_mirror_ops *ops, void *opaque);
/* Where the device's shadow memory goes in this map's IOVA space (dma_shadow.h): above all
 * guest memory and, behind a real IOMMU, inside its aperture. DMA_SHADOW_IOVA_BASE unless
 * set; base must be 1 GiB aligned. */
void dma_map_set_shadow_base(struct dma_map *m, uint64_t base);
uint64_t dma_map_shadow_base(const struct dma_map *m);

struct dma_stats {
	uint64_t reads, writes, read_bytes, write_bytes, faults;
};
void dma_map_stats(struct dma_map *m, struct dma_stats *out);

#endif
