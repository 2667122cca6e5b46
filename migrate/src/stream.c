/* SPDX-License-Identifier: Apache-2.0 */
/* Encoding and checking of the migration stream: handshake, records, RAM batches. */
#include "stream.h"

#include "godwit/bitmap.h"
#include "godwit/crc.h"

#include <xxhash.h>

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
	    tag != MIG_TAG_SACK && tag != MIG_TAG_NACK)
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
	/* Most pages that are not zero show it in their first cache line: no full pass then. */
	if (q[0] | q[1] | q[2] | q[3] | q[4] | q[5] | q[6] | q[7])
		return false;
	uint64_t acc = 0;
	for (unsigned i = 8; i < MIG_PAGE / 8; i += 8)
		acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] |
		       q[i + 7];
	return acc == 0;
}

/* The batch's hash: XXH64 of each page, seeded with the hash so far. Not XXH3: seeded, it
 * derives a fresh secret for every page, and on 4 KiB it ran at half XXH64's speed here
 * (7.6-9.8 against 15-18 GB/s) and a tenth of it in a test host under TCG (350 MB/s against
 * 3.7-4.2 GB/s; migrate/README.md). */
static uint64_t hash_page(uint64_t h, const uint8_t *page)
{
	return XXH64(page, MIG_PAGE, h);
}

#define HEAD_OFF sizeof(struct gw_sect_hdr)

void mig_batch_begin(struct mig_batch *b, uint32_t flags)
{
	b->count = b->ndata = b->zero = 0;
	b->flags = flags;
	b->hash = 0;
}

static void put_index(struct mig_batch *b, uint64_t v)
{
	uint64_t le = htole64(v);
	memcpy(b->head + HEAD_OFF + MIG_RAMB_HEAD_MIN + 8 * b->count, &le, 8);
	b->count++;
}

void mig_batch_add_zero(struct mig_batch *b, uint64_t page_index)
{
	if (b->count == MIG_BATCH_MAX)
		return;
	put_index(b, page_index | MIG_ZERO_FLAG);
	b->zero++;
}

void mig_batch_add(struct mig_batch *b, uint64_t page_index, const uint8_t *data)
{
	if (b->count == MIG_BATCH_MAX)
		return;
	if (mig_page_is_zero(data)) {
		mig_batch_add_zero(b, page_index);
		return;
	}
	put_index(b, page_index);
	b->ndata++;
	b->iov[b->ndata] = (struct iovec){.iov_base = (void *)data, .iov_len = MIG_PAGE};
	if (!(b->flags & MIG_RAMB_NO_HASH))
		b->hash = hash_page(b->hash, data);
}

size_t mig_batch_end(struct mig_batch *b, int *iovcnt)
{
	uint8_t *head = b->head + HEAD_OFF;
	size_t head_len = MIG_RAMB_HEAD_MIN + 8 * (size_t)b->count;
	uint32_t w[4] = {htole32(b->count), htole32(b->ndata), htole32(b->flags), 0};
	memcpy(head, w, sizeof(w));
	uint64_t hash = htole64(b->hash);
	memcpy(head + 16, &hash, 8);
	struct gw_sect_hdr h = {
	    .magic = htole32(MIG_TAG_RAM),
	    .version = htole16(MIG_STREAM_VERSION),
	    .flags = 0,
	    .length = htole32((uint32_t)(head_len + (size_t)b->ndata * MIG_PAGE)),
	    .crc = htole32(gw_crc32c(0, head, head_len)),
	};
	memcpy(b->head, &h, sizeof(h));
	b->iov[0] = (struct iovec){.iov_base = b->head, .iov_len = HEAD_OFF + head_len};
	*iovcnt = 1 + (int)b->ndata;
	return HEAD_OFF + head_len + (size_t)b->ndata * MIG_PAGE;
}

long mig_batch_head_len(const struct gw_sect_hdr *h, const uint8_t *fixed)
{
	uint32_t count;
	memcpy(&count, fixed, 4);
	count = le32toh(count);
	uint32_t len = le32toh(h->length);
	if (len < MIG_RAMB_HEAD_MIN || count > MIG_BATCH_MAX ||
	    MIG_RAMB_HEAD_MIN + 8 * (uint64_t)count > len)
		return -EBADMSG;
	return (long)(MIG_RAMB_HEAD_MIN + 8 * count);
}

int mig_batch_head_check(const struct gw_sect_hdr *h, const uint8_t *head, size_t head_len,
			 uint64_t npages, struct mig_batch_view *v)
{
	if (head_len < MIG_RAMB_HEAD_MIN || mig_batch_head_len(h, head) != (long)head_len)
		return -EBADMSG;
	if (gw_crc32c(0, head, head_len) != le32toh(h->crc))
		return -EBADMSG;
	uint32_t w[4];
	memcpy(w, head, sizeof(w));
	struct mig_batch_view r = {.count = le32toh(w[0]),
				   .ndata = le32toh(w[1]),
				   .flags = le32toh(w[2]),
				   .idx = head + MIG_RAMB_HEAD_MIN};
	if (w[3] || (r.flags & ~(MIG_RAMB_STABLE | MIG_RAMB_NO_HASH)))
		return -EPROTO;
	memcpy(&r.hash, head + 16, 8);
	r.hash = le64toh(r.hash);
	if (le32toh(h->length) != head_len + (uint64_t)r.ndata * MIG_PAGE)
		return -EPROTO;
	uint32_t data = 0;
	for (uint32_t i = 0; i < r.count; i++) {
		bool zero;
		if (mig_batch_entry(&r, i, &zero) >= npages)
			return -EPROTO;
		data += !zero;
	}
	if (data != r.ndata)
		return -EPROTO;
	*v = r;
	return 0;
}

uint64_t mig_batch_entry(const struct mig_batch_view *v, uint32_t i, bool *zero)
{
	uint64_t e;
	memcpy(&e, v->idx + 8 * (size_t)i, 8);
	e = le64toh(e);
	*zero = e & MIG_ZERO_FLAG;
	return e & ~MIG_ZERO_FLAG;
}

uint64_t mig_batch_hash_ram(const struct mig_batch_view *v, const uint8_t *ram)
{
	uint64_t h = 0;
	for (uint32_t i = 0; i < v->count; i++) {
		bool zero;
		uint64_t pg = mig_batch_entry(v, i, &zero);
		if (!zero)
			h = hash_page(h, ram + pg * MIG_PAGE);
	}
	return h;
}

void mig_batch_apply_zero(const struct mig_batch_view *v, uint8_t *ram, uint64_t *touched,
			  uint64_t *pages, uint64_t *zeros)
{
	for (uint32_t i = 0; i < v->count; i++) {
		bool zero;
		uint64_t pg = mig_batch_entry(v, i, &zero);
		if (!zero) {
			if (touched)
				gw_bitmap_set(touched, pg);
			continue;
		}
		/* Untouched destination RAM is a hole that reads as zeros: leave it. */
		if (!touched || gw_bitmap_test(touched, pg))
			memset(ram + pg * MIG_PAGE, 0, MIG_PAGE);
		(*zeros)++;
	}
	*pages += v->count;
}

int mig_batch_apply(const struct gw_sect_hdr *h, const uint8_t *payload, uint8_t *ram,
		    uint64_t npages, uint64_t *touched, uint64_t *pages, uint64_t *zeros)
{
	uint32_t len = le32toh(h->length);
	if (len < MIG_RAMB_HEAD_MIN)
		return -EBADMSG;
	long head_len = mig_batch_head_len(h, payload);
	struct mig_batch_view v;
	if (head_len < 0)
		return -EBADMSG;
	int rc = mig_batch_head_check(h, payload, (size_t)head_len, npages, &v);
	if (rc)
		return rc;
	const uint8_t *data = payload + head_len;
	for (uint32_t i = 0; i < v.count; i++) {
		bool zero;
		uint64_t pg = mig_batch_entry(&v, i, &zero);
		if (!zero) {
			memcpy(ram + pg * MIG_PAGE, data, MIG_PAGE);
			data += MIG_PAGE;
		}
	}
	mig_batch_apply_zero(&v, ram, touched, pages, zeros);
	if (!(v.flags & MIG_RAMB_NO_HASH) && mig_batch_hash_ram(&v, ram) != v.hash)
		return -EILSEQ;
	return 0;
}
