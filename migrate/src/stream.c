/* SPDX-License-Identifier: Apache-2.0 */
/* Encoding and checking of the migration stream: handshake, records, RAM batches. */
#include "stream.h"

#include "godwit/bitmap.h"
#include "godwit/crc.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void mig_hello_encode(struct mig_hello *h, uint16_t channel, uint16_t nchannels, uint64_t digest,
		      uint64_t ram_size, uint32_t tsc_khz, uint16_t flags, const char *token)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(MIG_STREAM_MAGIC);
	h->version = htole16(MIG_STREAM_VERSION);
	h->channel = htole16(channel);
	h->nchannels = htole16(nchannels);
	h->flags = htole16(flags);
	h->tsc_khz = htole32(tsc_khz);
	h->config_digest = htole64(digest);
	h->ram_size = htole64(ram_size);
	memcpy(h->token, token, strnlen(token, sizeof(h->token)));
	h->crc = htole32(gw_crc32c(0, h, offsetof(struct mig_hello, crc)));
}

int mig_hello_check(const struct mig_hello *h)
{
	if (le32toh(h->magic) != MIG_STREAM_MAGIC)
		return -EBADMSG;
	if (le32toh(h->crc) != gw_crc32c(0, h, offsetof(struct mig_hello, crc)))
		return -EBADMSG;
	if (le16toh(h->version) != MIG_STREAM_VERSION)
		return -EPROTO;
	return 0;
}

void mig_reply_encode(struct mig_reply *r, enum mig_reply_status st, const char *msg)
{
	memset(r, 0, sizeof(*r));
	r->magic = htole32(MIG_REPLY_MAGIC);
	r->version = htole16(MIG_STREAM_VERSION);
	r->status = htole16((uint16_t)st);
	snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
	r->crc = htole32(gw_crc32c(0, r, offsetof(struct mig_reply, crc)));
}

int mig_reply_check(const struct mig_reply *r)
{
	if (le32toh(r->magic) != MIG_REPLY_MAGIC ||
	    le32toh(r->crc) != gw_crc32c(0, r, offsetof(struct mig_reply, crc)))
		return -EBADMSG;
	/* A reply of another version still carries a readable status and message. */
	return 0;
}

int mig_record_check_hdr(const struct gw_sect_hdr *h)
{
	uint32_t tag = le32toh(h->magic);
	if (tag != MIG_TAG_RAM && tag != MIG_TAG_STATE && tag != MIG_TAG_END &&
	    tag != MIG_TAG_READY && tag != MIG_TAG_FAIL && tag != MIG_TAG_SYNC &&
	    tag != MIG_TAG_SACK)
		return -EBADMSG;
	if (le16toh(h->version) != MIG_STREAM_VERSION)
		return -EPROTO;
	if (le32toh(h->length) > MIG_MAX_RECORD)
		return -EBADMSG;
	if (le16toh(h->flags) & ~GW_SECT_NO_CRC)
		return -EBADMSG;
	return 0;
}

void mig_record_put(struct gw_buf *out, uint32_t tag, const void *payload, uint32_t len)
{
	size_t off = gw_sect_begin(out, tag, MIG_STREAM_VERSION);
	gw_buf_put(out, payload, len);
	gw_sect_end(out, off);
}

bool mig_page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t acc = 0;
	for (unsigned i = 0; i < MIG_PAGE / 8; i += 8)
		acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] |
		       q[i + 7];
	return acc == 0;
}

void mig_batch_begin(struct mig_batch *b)
{
	b->buf.len = 0;
	b->buf.err = 0;
	b->count = 0;
	b->zero = 0;
	b->hdr_off = gw_sect_begin(&b->buf, MIG_TAG_RAM, MIG_STREAM_VERSION);
	gw_buf_put_u32(&b->buf, 0); /* count, patched at the end */
	gw_buf_put_u32(&b->buf, 0);
}

void mig_batch_add_zero(struct mig_batch *b, uint64_t page_index)
{
	gw_buf_put_u64(&b->buf, page_index | MIG_ZERO_FLAG);
	b->count++;
	b->zero++;
}

void mig_batch_add(struct mig_batch *b, uint64_t page_index, const uint8_t *data)
{
	/* Copied, not referenced: the guest may rewrite the page while it is on its way, and
	 * the CRC (or the TLS record) must cover the bytes actually sent. A changed page is dirty
	 * and goes again. The zero check reads the copy, which is still in cache. */
	uint8_t *dst = gw_buf_reserve(&b->buf, 8 + MIG_PAGE);
	if (!dst)
		return;
	memcpy(dst + 8, data, MIG_PAGE);
	if (mig_page_is_zero(dst + 8)) {
		b->buf.len -= 8 + MIG_PAGE;
		mig_batch_add_zero(b, page_index);
		return;
	}
	uint64_t idx = htole64(page_index);
	memcpy(dst, &idx, 8);
	b->count++;
}

void mig_batch_end(struct mig_batch *b)
{
	if (b->buf.err)
		return;
	uint32_t c = htole32(b->count);
	memcpy(b->buf.data + b->hdr_off + sizeof(struct gw_sect_hdr), &c, 4);
	if (b->no_crc)
		gw_sect_end_no_crc(&b->buf, b->hdr_off);
	else
		gw_sect_end(&b->buf, b->hdr_off);
}

int mig_batch_apply(const uint8_t *payload, size_t len, uint8_t *ram, uint64_t npages,
		    uint64_t *touched, uint64_t *pages, uint64_t *zeros)
{
	struct gw_rd rd;
	gw_rd_init(&rd, payload, len);
	uint32_t count, rsvd;
	if (gw_rd_u32(&rd, &count) || gw_rd_u32(&rd, &rsvd))
		return -EBADMSG;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t idx;
		if (gw_rd_u64(&rd, &idx))
			return -EBADMSG;
		bool zero = idx & MIG_ZERO_FLAG;
		idx &= ~MIG_ZERO_FLAG;
		if (idx >= npages)
			return -EBADMSG;
		uint8_t *dst = ram + idx * MIG_PAGE;
		if (zero) {
			/* Untouched destination RAM is a hole that reads as zeros: leave it. */
			if (!touched || gw_bitmap_test(touched, idx))
				memset(dst, 0, MIG_PAGE);
			(*zeros)++;
		} else {
			const void *src;
			if (gw_rd_ptr(&rd, &src, MIG_PAGE))
				return -EBADMSG;
			memcpy(dst, src, MIG_PAGE);
			if (touched)
				gw_bitmap_set(touched, idx);
		}
		(*pages)++;
	}
	return rd.left ? -EBADMSG : 0;
}
