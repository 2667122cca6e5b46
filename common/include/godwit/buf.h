/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer for writers and a bounds-checked reader for parsers. */
#ifndef GODWIT_BUF_H
#define GODWIT_BUF_H

#include <stddef.h>
#include <stdint.h>

struct gw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err; /* first allocation failure (-ENOMEM); later appends are no-ops */
};

void gw_buf_init(struct gw_buf *b);
void gw_buf_release(struct gw_buf *b);
/* Reserves n bytes at the end and returns them, or NULL (and sets err) on failure. */
void *gw_buf_reserve(struct gw_buf *b, size_t n);
void gw_buf_put(struct gw_buf *b, const void *p, size_t n);
void gw_buf_put_u16(struct gw_buf *b, uint16_t v);
void gw_buf_put_u32(struct gw_buf *b, uint32_t v);
void gw_buf_put_u64(struct gw_buf *b, uint64_t v);

struct gw_rd {
	const uint8_t *p;
	size_t left;
};

static inline void gw_rd_init(struct gw_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->left = len;
}

/* All return 0 or -EBADMSG when the input is too short. */
int gw_rd_get(struct gw_rd *r, void *out, size_t n);
int gw_rd_ptr(struct gw_rd *r, const void **out, size_t n);
int gw_rd_u16(struct gw_rd *r, uint16_t *v);
int gw_rd_u32(struct gw_rd *r, uint32_t *v);
int gw_rd_u64(struct gw_rd *r, uint64_t *v);

/*
 * Sections: every serialized object starts with this header. Fields are little-endian.
 * The CRC-32C covers the payload that follows the header (docs/state-format.md).
 */
struct gw_sect_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t length;
	uint32_t crc;
};
_Static_assert(sizeof(struct gw_sect_hdr) == 16, "section header is 16 bytes on the wire");

/* Starts a section; returns its offset for gw_sect_end. */
size_t gw_sect_begin(struct gw_buf *b, uint32_t magic, uint16_t version);
void gw_sect_end(struct gw_buf *b, size_t off);
/* flags: the payload carries no CRC (crc is 0) because the transport authenticates it (the
 * migration stream's TLS records); a reader accepts it only from such a transport. */
#define GW_SECT_NO_CRC 0x0001u
/* Ends a section like gw_sect_end, without its CRC: sets GW_SECT_NO_CRC. */
void gw_sect_end_no_crc(struct gw_buf *b, size_t off);
/*
 * Reads one section of the given magic and version: on success *payload covers its payload.
 * -EBADMSG: truncated, wrong magic or bad CRC; -EPROTO: unsupported version.
 */
int gw_sect_read(struct gw_rd *r, uint32_t magic, uint16_t version, struct gw_rd *payload);

/* Typed fields inside a section: u16 id, u16 flags, u32 length, then the bytes. State sections
 * use the field tables of godwit/fields.h, which check them; these two write flags 0 and
 * ignore them (docs/state-format.md). */
void gw_field_put(struct gw_buf *b, uint16_t id, const void *p, uint32_t len);
/* 0, -ENOENT at the end of input, or -EBADMSG when truncated. */
int gw_field_next(struct gw_rd *r, uint16_t *id, const void **p, uint32_t *len);

#define GW_FOURCC(a, b, c, d)                                                                      \
	((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))

#endif
