/* SPDX-License-Identifier: Apache-2.0 */
/* IOVA maps: ranges of device-visible addresses backed by host memory, checked per access. */
#include "godwit/dma.h"
#include "godwit/dma_shadow.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dma_range {
	uint64_t iova, len;
	uint8_t *hva;
	bool writable;
};

struct dma_map {
	pthread_rwlock_t lock;
	struct dma_range r[DMA_MAP_MAX_RANGES];
	unsigned n;
	dma_write_hook hook;
	void *hook_opaque;
	const struct dma_mirror_ops *mirror;
	void *mirror_opaque;
	uint64_t shadow_base;
	uint64_t reads, writes, read_bytes, write_bytes, faults;
};

int dma_map_create(struct dma_map **out)
{
	struct dma_map *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_rwlock_init(&m->lock, NULL);
	m->shadow_base = DMA_SHADOW_IOVA_BASE;
	*out = m;
	return 0;
}

void dma_map_destroy(struct dma_map *m)
{
	if (!m)
		return;
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

int dma_map_add(struct dma_map *m, uint64_t iova, uint64_t len, void *hva, bool writable)
{
	if (!len || iova + len < iova || (iova | len) & 0xFFF || !hva)
		return -EINVAL;
	int rc = 0;
	pthread_rwlock_wrlock(&m->lock);
	for (unsigned i = 0; i < m->n; i++) {
		if (iova < m->r[i].iova + m->r[i].len && m->r[i].iova < iova + len) {
			rc = -EEXIST;
			goto out_unlock;
		}
	}
	if (m->n == DMA_MAP_MAX_RANGES) {
		rc = -ENOSPC;
		goto out_unlock;
	}
	if (m->mirror) {
		rc = m->mirror->map(m->mirror_opaque, iova, len, hva, writable);
		if (rc)
			goto out_unlock;
	}
	m->r[m->n++] = (struct dma_range){iova, len, hva, writable};
out_unlock:
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

int dma_map_remove(struct dma_map *m, uint64_t iova)
{
	int rc = -ENOENT;
	pthread_rwlock_wrlock(&m->lock);
	for (unsigned i = 0; i < m->n; i++) {
		if (m->r[i].iova == iova) {
			if (m->mirror)
				m->mirror->unmap(m->mirror_opaque, iova, m->r[i].len);
			m->r[i] = m->r[--m->n];
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

/* Caller holds the lock. Wrapping ranges and ranges that straddle two mappings fault: a real
 * IOMMU would translate them page by page, but no descriptor of ours needs that. */
static const struct dma_range *lookup(const struct dma_map *m, uint64_t iova, uint64_t len)
{
	if (!len || iova + len < iova)
		return NULL;
	for (unsigned i = 0; i < m->n; i++) {
		const struct dma_range *r = &m->r[i];
		if (iova >= r->iova && iova - r->iova + len <= r->len)
			return r;
	}
	return NULL;
}

void *dma_translate(struct dma_map *m, uint64_t iova, uint64_t len, bool write)
{
	pthread_rwlock_rdlock(&m->lock);
	const struct dma_range *r = lookup(m, iova, len);
	void *p = r && (!write || r->writable) ? r->hva + (iova - r->iova) : NULL;
	pthread_rwlock_unlock(&m->lock);
	return p;
}

int dma_read(struct dma_map *m, uint64_t iova, void *buf, size_t len)
{
	pthread_rwlock_rdlock(&m->lock);
	const struct dma_range *r = lookup(m, iova, len);
	if (!r) {
		pthread_rwlock_unlock(&m->lock);
		__atomic_add_fetch(&m->faults, 1, __ATOMIC_RELAXED);
		return -EFAULT;
	}
	memcpy(buf, r->hva + (iova - r->iova), len);
	pthread_rwlock_unlock(&m->lock);
	__atomic_add_fetch(&m->reads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->read_bytes, len, __ATOMIC_RELAXED);
	return 0;
}

/* A device write's target: its host address with the map's read lock held, or NULL (the lock
 * released, the fault counted, *rc saying why). write_end finishes what this began. */
static uint8_t *write_begin(struct dma_map *m, uint64_t iova, size_t len, int *rc)
{
	pthread_rwlock_rdlock(&m->lock);
	const struct dma_range *r = lookup(m, iova, len);
	if (!r || !r->writable) {
		pthread_rwlock_unlock(&m->lock);
		__atomic_add_fetch(&m->faults, 1, __ATOMIC_RELAXED);
		*rc = r ? -EACCES : -EFAULT;
		return NULL;
	}
	return r->hva + (iova - r->iova);
}

static void write_end(struct dma_map *m, uint64_t iova, size_t len)
{
	/* Under the lock, so that once dma_map_set_write_hook returns no call of the old
	 * hook is still running. */
	if (m->hook)
		m->hook(m->hook_opaque, iova, len);
	pthread_rwlock_unlock(&m->lock);
	__atomic_add_fetch(&m->writes, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->write_bytes, len, __ATOMIC_RELAXED);
}

int dma_write(struct dma_map *m, uint64_t iova, const void *buf, size_t len)
{
	int rc;
	uint8_t *dst = write_begin(m, iova, len, &rc);
	if (!dst)
		return rc;
	memcpy(dst, buf, len);
	write_end(m, iova, len);
	return 0;
}

int dma_write_words(struct dma_map *m, uint64_t iova, const void *buf, size_t len)
{
	size_t w = len == 4 ? 4 : 8;
	if (len == 0 || len % w || iova % w)
		return -EINVAL;
	int rc;
	uint8_t *dst = write_begin(m, iova, len, &rc);
	if (!dst)
		return rc;
	if ((uintptr_t)dst % w) { /* a range whose host address is not aligned like its IOVA */
		pthread_rwlock_unlock(&m->lock);
		return -EINVAL;
	}
	if (w == 4) {
		uint32_t v;
		memcpy(&v, buf, 4);
		__atomic_store_n((uint32_t *)(void *)dst, v, __ATOMIC_RELEASE);
	} else {
		for (size_t i = 0; i < len; i += 8) {
			uint64_t v;
			memcpy(&v, (const uint8_t *)buf + i, 8);
			__atomic_store_n((uint64_t *)(void *)(dst + i), v, __ATOMIC_RELEASE);
		}
	}
	write_end(m, iova, len);
	return 0;
}

void dma_map_set_mirror(struct dma_map *m, const struct dma_mirror_ops *ops, void *opaque)
{
	pthread_rwlock_wrlock(&m->lock);
	m->mirror = ops;
	m->mirror_opaque = opaque;
	pthread_rwlock_unlock(&m->lock);
}

void dma_map_set_shadow_base(struct dma_map *m, uint64_t base)
{
	m->shadow_base = base;
}

uint64_t dma_map_shadow_base(const struct dma_map *m)
{
	return m->shadow_base;
}

void dma_map_set_write_hook(struct dma_map *m, dma_write_hook hook, void *opaque)
{
	pthread_rwlock_wrlock(&m->lock);
	m->hook = hook;
	m->hook_opaque = opaque;
	pthread_rwlock_unlock(&m->lock);
}

void dma_map_stats(struct dma_map *m, struct dma_stats *out)
{
	out->reads = __atomic_load_n(&m->reads, __ATOMIC_RELAXED);
	out->writes = __atomic_load_n(&m->writes, __ATOMIC_RELAXED);
	out->read_bytes = __atomic_load_n(&m->read_bytes, __ATOMIC_RELAXED);
	out->write_bytes = __atomic_load_n(&m->write_bytes, __ATOMIC_RELAXED);
	out->faults = __atomic_load_n(&m->faults, __ATOMIC_RELAXED);
}
