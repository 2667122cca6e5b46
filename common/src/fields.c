/* SPDX-License-Identifier: Apache-2.0 */
/* The one codec for field tables: a struct and its table to a section, and back, checked. */
#include "godwit/fields.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define KNOWN_FLAGS                                                                                \
	(GW_FIELD_OPTIONAL | GW_FIELD_VARLEN | GW_FIELD_COUNT_BYTES | GW_FIELD_NONEMPTY |          \
	 GW_FIELD_ALLOC | GW_FIELD_BOOL)

static bool inside(const struct gw_fields *t, uint64_t off, uint64_t size)
{
	return off <= t->struct_size && size <= t->struct_size - off;
}

static int check_field(const struct gw_fields *t, const struct gw_field *f)
{
	if (f->id == 0 || (f->flags & ~KNOWN_FLAGS) || f->size == 0 || f->size > UINT32_MAX / 2)
		return -EINVAL;
	bool varlen = f->flags & GW_FIELD_VARLEN;
	bool alloc = f->flags & GW_FIELD_ALLOC;
	if (!varlen && (f->flags & (GW_FIELD_COUNT_BYTES | GW_FIELD_NONEMPTY)))
		return -EINVAL;
	if (alloc && !varlen)
		return -EINVAL; /* a pointer needs a length */
	if (!inside(t, f->offset, alloc ? sizeof(void *) : f->size))
		return -EINVAL;
	if (!varlen)
		return 0;
	if (f->unit == 0 || f->size % f->unit || (f->count_size != 2 && f->count_size != 4) ||
	    !inside(t, f->count_offset, f->count_size))
		return -EINVAL;
	/* The count must be able to say "all of it". */
	uint64_t most = (f->flags & GW_FIELD_COUNT_BYTES) ? f->size : f->size / f->unit;
	if (f->count_size == 2 && most > UINT16_MAX)
		return -EINVAL;
	return 0;
}

int gw_fields_check(const struct gw_fields *t)
{
	if (!t || !t->fields || t->nfields == 0 || t->nfields > GW_FIELDS_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < t->nfields; i++) {
		int rc = check_field(t, &t->fields[i]);
		if (rc)
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (t->fields[j].id == t->fields[i].id)
				return -EINVAL;
	}
	return 0;
}

static uint32_t get_count(const struct gw_field *f, const void *obj)
{
	const uint8_t *p = (const uint8_t *)obj + f->count_offset;
	if (f->count_size == 2) {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void set_count(const struct gw_field *f, void *obj, uint32_t v)
{
	uint8_t *p = (uint8_t *)obj + f->count_offset;
	if (f->count_size == 2) {
		uint16_t s = (uint16_t)v;
		memcpy(p, &s, 2);
	} else {
		memcpy(p, &v, 4);
	}
}

/* Where the field's bytes are in obj (for ALLOC members: what the pointer points at). */
static const void *field_src(const struct gw_field *f, const void *obj)
{
	const uint8_t *m = (const uint8_t *)obj + f->offset;
	if (!(f->flags & GW_FIELD_ALLOC))
		return m;
	const void *p;
	memcpy(&p, m, sizeof(p));
	return p;
}

/* The number of bytes the field has in obj, or -EINVAL when its count is out of range. */
static int64_t field_len(const struct gw_field *f, const void *obj)
{
	if (!(f->flags & GW_FIELD_VARLEN))
		return f->size;
	uint64_t n = get_count(f, obj);
	uint64_t len = (f->flags & GW_FIELD_COUNT_BYTES) ? n : n * f->unit;
	if (len > f->size || len % f->unit)
		return -EINVAL;
	if ((f->flags & GW_FIELD_NONEMPTY) && len == 0)
		return -EINVAL;
	if (len && !field_src(f, obj))
		return -EINVAL;
	return (int64_t)len;
}

int gw_fields_save(const struct gw_fields *t, const void *obj, struct gw_buf *out)
{
	int rc = gw_fields_check(t);
	if (rc)
		return rc;
	/* Check every length before anything is appended: no half-written section. */
	for (unsigned i = 0; i < t->nfields; i++)
		if (field_len(&t->fields[i], obj) < 0)
			return -EINVAL;
	size_t off = gw_sect_begin(out, t->magic, t->version);
	for (unsigned i = 0; i < t->nfields; i++) {
		const struct gw_field *f = &t->fields[i];
		uint32_t len = (uint32_t)field_len(f, obj);
		gw_buf_put_u16(out, f->id);
		gw_buf_put_u16(out, (f->flags & GW_FIELD_OPTIONAL) ? GW_FIELD_WIRE_OPTIONAL : 0);
		gw_buf_put_u32(out, len);
		gw_buf_put(out, field_src(f, obj), len);
	}
	gw_sect_end(out, off);
	return out->err;
}

static const struct gw_field *find(const struct gw_fields *t, uint16_t id, unsigned *idx)
{
	for (unsigned i = 0; i < t->nfields; i++) {
		if (t->fields[i].id == id) {
			*idx = i;
			return &t->fields[i];
		}
	}
	return NULL;
}

static bool bools_ok(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] > 1)
			return false;
	return true;
}

/* Checks one field against its descriptor and stores it in obj. */
static int put_field(const struct gw_field *f, void *obj, const uint8_t *p, uint32_t len)
{
	if (f->flags & GW_FIELD_VARLEN) {
		if (len > f->size || len % f->unit || ((f->flags & GW_FIELD_NONEMPTY) && len == 0))
			return -EBADMSG;
	} else if (len != f->size) {
		return -EBADMSG;
	}
	if ((f->flags & GW_FIELD_BOOL) && !bools_ok(p, len))
		return -EBADMSG;
	uint8_t *m = (uint8_t *)obj + f->offset;
	if (f->flags & GW_FIELD_ALLOC) {
		void *buf = malloc(len ? len : 1);
		if (!buf)
			return -ENOMEM;
		if (len)
			memcpy(buf, p, len);
		memcpy(m, &buf, sizeof(buf));
	} else if (len) {
		memcpy(m, p, len);
	}
	if (f->flags & GW_FIELD_VARLEN)
		set_count(f, obj, (f->flags & GW_FIELD_COUNT_BYTES) ? len : len / f->unit);
	return 0;
}

/* Frees the ALLOC members whose bit is set in mask. */
static void release_mask(const struct gw_fields *t, void *obj, uint64_t mask)
{
	for (unsigned i = 0; i < t->nfields; i++) {
		const struct gw_field *f = &t->fields[i];
		if (!(f->flags & GW_FIELD_ALLOC) || !(mask & (1ull << i)))
			continue;
		uint8_t *m = (uint8_t *)obj + f->offset;
		void *p;
		memcpy(&p, m, sizeof(p));
		free(p);
		p = NULL;
		memcpy(m, &p, sizeof(p));
		set_count(f, obj, 0);
	}
}

void gw_fields_release(const struct gw_fields *t, void *obj)
{
	if (gw_fields_check(t) == 0)
		release_mask(t, obj, ~0ull);
}

/* The fields that must be present, one bit per table index. */
static uint64_t required_mask(const struct gw_fields *t)
{
	uint64_t m = 0;
	for (unsigned i = 0; i < t->nfields; i++)
		if (!(t->fields[i].flags & GW_FIELD_OPTIONAL))
			m |= 1ull << i;
	return m;
}

int gw_fields_load(const struct gw_fields *t, struct gw_rd *in, void *obj)
{
	int rc = gw_fields_check(t);
	if (rc)
		return rc;
	struct gw_rd body;
	rc = gw_sect_read(in, t->magic, t->version, &body);
	if (rc)
		return rc;
	uint64_t seen = 0;
	while (body.left) {
		uint16_t id, wflags;
		uint32_t len;
		const void *p;
		if (gw_rd_u16(&body, &id) || gw_rd_u16(&body, &wflags) || gw_rd_u32(&body, &len) ||
		    gw_rd_ptr(&body, &p, len)) {
			rc = -EBADMSG;
			goto err_release;
		}
		if (wflags & ~GW_FIELD_WIRE_OPTIONAL) {
			rc = -EBADMSG;
			goto err_release;
		}
		unsigned i;
		const struct gw_field *f = find(t, id, &i);
		if (!f) {
			/* A newer writer's optional field: skip it. Anything else is not ours. */
			if (wflags & GW_FIELD_WIRE_OPTIONAL)
				continue;
			rc = -EBADMSG;
			goto err_release;
		}
		if (seen & (1ull << i)) {
			rc = -EBADMSG;
			goto err_release;
		}
		rc = put_field(f, obj, p, len);
		if (rc)
			goto err_release;
		seen |= 1ull << i;
	}
	uint64_t req = required_mask(t);
	if ((seen & req) != req) {
		rc = -EBADMSG;
		goto err_release;
	}
	return 0;

err_release:
	release_mask(t, obj, seen);
	return rc;
}

int gw_sect_take(struct gw_rd *in, struct gw_rd *sect)
{
	uint32_t len;
	if (in->left < sizeof(struct gw_sect_hdr))
		return -EBADMSG;
	memcpy(&len, in->p + 8, sizeof(len));
	len = le32toh(len);
	if (len > in->left - sizeof(struct gw_sect_hdr))
		return -EBADMSG;
	const void *p;
	size_t total = sizeof(struct gw_sect_hdr) + len;
	gw_rd_ptr(in, &p, total);
	gw_rd_init(sect, p, total);
	return 0;
}
