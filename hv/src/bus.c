/* SPDX-License-Identifier: Apache-2.0 */
/* Address-range bus for port I/O and MMIO: sorted ranges, binary search, read-mostly lock. */
#include "hv_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hv_bus_range {
	uint64_t base;
	uint64_t len;
	const struct hv_io_ops *ops;
	void *opaque;
	char name[32];
};

struct hv_bus {
	char name[16];
	pthread_rwlock_t lock;
	struct hv_bus_range *r;
	size_t n;
	size_t cap;
};

struct hv_bus *hv_bus_create(const char *name)
{
	struct hv_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return NULL;
	snprintf(bus->name, sizeof(bus->name), "%s", name);
	pthread_rwlock_init(&bus->lock, NULL);
	return bus;
}

void hv_bus_destroy(struct hv_bus *bus)
{
	if (!bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->r);
	free(bus);
}

/* Index of the first range whose end is above addr. */
static size_t lower_bound(const struct hv_bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bus->r[mid].base + bus->r[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int hv_bus_register(struct hv_bus *bus, uint64_t base, uint64_t len, const struct hv_io_ops *ops,
		    void *opaque, const char *name)
{
	if (len == 0 || base + len < base || !ops)
		return -EINVAL;
	int rc = 0;
	pthread_rwlock_wrlock(&bus->lock);
	size_t i = lower_bound(bus, base);
	if (i < bus->n && bus->r[i].base < base + len) {
		rc = -EEXIST;
		goto out_unlock;
	}
	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 16;
		struct hv_bus_range *r = realloc(bus->r, cap * sizeof(*r));
		if (!r) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		bus->r = r;
		bus->cap = cap;
	}
	memmove(&bus->r[i + 1], &bus->r[i], (bus->n - i) * sizeof(bus->r[0]));
	bus->r[i] = (struct hv_bus_range){.base = base, .len = len, .ops = ops, .opaque = opaque};
	snprintf(bus->r[i].name, sizeof(bus->r[i].name), "%s", name ? name : "?");
	bus->n++;
out_unlock:
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

int hv_bus_unregister(struct hv_bus *bus, uint64_t base)
{
	int rc = -ENOENT;
	pthread_rwlock_wrlock(&bus->lock);
	size_t i = lower_bound(bus, base);
	if (i < bus->n && bus->r[i].base == base) {
		memmove(&bus->r[i], &bus->r[i + 1], (bus->n - i - 1) * sizeof(bus->r[0]));
		bus->n--;
		rc = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

static int bus_access(struct hv_bus *bus, struct hv_vcpu *vcpu, uint64_t addr, uint64_t *val,
		      unsigned size, bool write)
{
	pthread_rwlock_rdlock(&bus->lock);
	size_t i = lower_bound(bus, addr);
	if (i >= bus->n || bus->r[i].base > addr || addr + size > bus->r[i].base + bus->r[i].len) {
		pthread_rwlock_unlock(&bus->lock);
		if (!write)
			*val = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
		return -ENOENT;
	}
	struct hv_bus_range r = bus->r[i];
	pthread_rwlock_unlock(&bus->lock);
	/* Handlers run without the bus lock so that they may (un)register ranges themselves. */
	if (write) {
		if (r.ops->write)
			r.ops->write(r.opaque, vcpu, addr - r.base, *val, size);
	} else {
		*val = 0;
		if (r.ops->read)
			r.ops->read(r.opaque, vcpu, addr - r.base, val, size);
		else
			*val = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
	}
	return 0;
}

int hv_bus_read(struct hv_bus *bus, struct hv_vcpu *vcpu, uint64_t addr, uint64_t *val,
		unsigned size)
{
	if (size == 0 || size > 8)
		return -EINVAL;
	return bus_access(bus, vcpu, addr, val, size, false);
}

int hv_bus_write(struct hv_bus *bus, struct hv_vcpu *vcpu, uint64_t addr, uint64_t val,
		 unsigned size)
{
	if (size == 0 || size > 8)
		return -EINVAL;
	return bus_access(bus, vcpu, addr, &val, size, true);
}
