/* SPDX-License-Identifier: Apache-2.0 */
/* Growable buffer, bounds-checked reader and the section/field framing shared by all formats. */
#include "godwit/buf.h"

#include "godwit/crc.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gw_buf_init(struct gw_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void gw_buf_release(struct gw_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void *gw_buf_reserve(struct gw_buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > SIZE_MAX - b->len) {
		b->err = -ENOMEM;
		return NULL;
	}
	/* An empty buffer gets its first block even for n == 0: NULL + 0 is undefined (C11
	 * 6.5.6), and the caller gets a pointer it may keep. */
	if (b->len + n > b->cap || !b->data) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	void *p = b->data + b->len;
	b->len += n;
	return p;
}

void gw_buf_put(struct gw_buf *b, const void *p, size_t n)
{
	void *d = gw_buf_reserve(b, n);
	if (d && n)
		memcpy(d, p, n);
}

void gw_buf_put_u16(struct gw_buf *b, uint16_t v)
{
	v = htole16(v);
	gw_buf_put(b, &v, sizeof(v));
}

void gw_buf_put_u32(struct gw_buf *b, uint32_t v)
{
	v = htole32(v);
	gw_buf_put(b, &v, sizeof(v));
}

void gw_buf_put_u64(struct gw_buf *b, uint64_t v)
{
	v = htole64(v);
	gw_buf_put(b, &v, sizeof(v));
}

int gw_rd_ptr(struct gw_rd *r, const void **out, size_t n)
{
	if (r->left < n)
		return -EBADMSG;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int gw_rd_get(struct gw_rd *r, void *out, size_t n)
{
	const void *p;
	int rc = gw_rd_ptr(r, &p, n);
	if (rc == 0 && n)
		memcpy(out, p, n);
	return rc;
}

int gw_rd_u16(struct gw_rd *r, uint16_t *v)
{
	int rc = gw_rd_get(r, v, sizeof(*v));
	*v = le16toh(*v);
	return rc;
}

int gw_rd_u32(struct gw_rd *r, uint32_t *v)
{
	int rc = gw_rd_get(r, v, sizeof(*v));
	*v = le32toh(*v);
	return rc;
}

int gw_rd_u64(struct gw_rd *r, uint64_t *v)
{
	int rc = gw_rd_get(r, v, sizeof(*v));
	*v = le64toh(*v);
	return rc;
}

size_t gw_sect_begin(struct gw_buf *b, uint32_t magic, uint16_t version)
{
	size_t off = b->len;
	gw_buf_put_u32(b, magic);
	gw_buf_put_u16(b, version);
	gw_buf_put_u16(b, 0);
	gw_buf_put_u32(b, 0); /* length, patched by gw_sect_end */
	gw_buf_put_u32(b, 0); /* crc, patched by gw_sect_end */
	return off;
}

void gw_sect_end(struct gw_buf *b, size_t off)
{
	if (b->err)
		return;
	size_t start = off + sizeof(struct gw_sect_hdr);
	uint32_t len = htole32((uint32_t)(b->len - start));
	uint32_t crc = htole32(gw_crc32c(0, b->data + start, b->len - start));
	memcpy(b->data + off + 8, &len, 4);
	memcpy(b->data + off + 12, &crc, 4);
}

void gw_sect_end_no_crc(struct gw_buf *b, size_t off)
{
	if (b->err)
		return;
	size_t start = off + sizeof(struct gw_sect_hdr);
	uint32_t len = htole32((uint32_t)(b->len - start)), crc = 0;
	uint16_t flags = htole16(GW_SECT_NO_CRC);
	memcpy(b->data + off + 6, &flags, 2);
	memcpy(b->data + off + 8, &len, 4);
	memcpy(b->data + off + 12, &crc, 4);
}

int gw_sect_read(struct gw_rd *r, uint32_t magic, uint16_t version, struct gw_rd *payload)
{
	uint32_t m, len, crc;
	uint16_t ver, flags;
	if (gw_rd_u32(r, &m) || gw_rd_u16(r, &ver) || gw_rd_u16(r, &flags) || gw_rd_u32(r, &len) ||
	    gw_rd_u32(r, &crc))
		return -EBADMSG;
	if (m != magic)
		return -EBADMSG;
	if (ver != version)
		return -EPROTO;
	const void *p;
	if (gw_rd_ptr(r, &p, len))
		return -EBADMSG;
	if (gw_crc32c(0, p, len) != crc)
		return -EBADMSG;
	gw_rd_init(payload, p, len);
	return 0;
}

void gw_field_put(struct gw_buf *b, uint16_t id, const void *p, uint32_t len)
{
	gw_buf_put_u16(b, id);
	gw_buf_put_u16(b, 0);
	gw_buf_put_u32(b, len);
	gw_buf_put(b, p, len);
}

int gw_field_next(struct gw_rd *r, uint16_t *id, const void **p, uint32_t *len)
{
	if (r->left == 0)
		return -ENOENT;
	uint16_t rsvd;
	if (gw_rd_u16(r, id) || gw_rd_u16(r, &rsvd) || gw_rd_u32(r, len))
		return -EBADMSG;
	return gw_rd_ptr(r, p, *len);
}
