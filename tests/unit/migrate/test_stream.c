/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the migration stream codec and the session state table. */
#include "godwit/crc.h"
#include "godwit/mig.h"
#include "stream.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char TOKEN[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_hello(void)
{
	struct mig_hello h;
	mig_hello_encode(&h, 3, 4, 0x1122334455667788ull, 1ull << 31, 2500000, MIG_HELLO_TSC_ANY,
			 TOKEN);
	CU_ASSERT_EQUAL(mig_hello_check(&h), 0);
	CU_ASSERT_EQUAL(h.channel, 3);
	CU_ASSERT_EQUAL(h.nchannels, 4);
	CU_ASSERT_EQUAL(memcmp(h.token, TOKEN, 64), 0);
	/* Any flipped byte is caught. */
	for (size_t i = 0; i < offsetof(struct mig_hello, crc); i++) {
		((uint8_t *)&h)[i] ^= 0x20;
		CU_ASSERT_NOT_EQUAL(mig_hello_check(&h), 0);
		((uint8_t *)&h)[i] ^= 0x20;
	}
	/* A well-formed hello of another version is told apart from garbage. */
	h.version = MIG_STREAM_VERSION + 1;
	h.crc = gw_crc32c(0, &h, offsetof(struct mig_hello, crc));
	CU_ASSERT_EQUAL(mig_hello_check(&h), -EPROTO);
	memset(&h, 0, sizeof(h));
	CU_ASSERT_EQUAL(mig_hello_check(&h), -EBADMSG);

	struct mig_reply r;
	mig_reply_encode(&r, MIG_REPLY_TOKEN, "wrong stream token");
	CU_ASSERT_EQUAL(mig_reply_check(&r), 0);
	CU_ASSERT_EQUAL(r.status, MIG_REPLY_TOKEN);
	CU_ASSERT_STRING_EQUAL(r.message, "wrong stream token");
	r.message[0] ^= 1;
	CU_ASSERT_EQUAL(mig_reply_check(&r), -EBADMSG);
}

static uint8_t *make_ram(uint64_t npages)
{
	uint8_t *ram = calloc(npages, MIG_PAGE);
	for (uint64_t p = 0; p < npages; p++) {
		if (p % 3 == 0)
			continue; /* zero pages */
		for (unsigned i = 0; i < MIG_PAGE; i++)
			ram[p * MIG_PAGE + i] = (uint8_t)(p * 7 + i);
	}
	return ram;
}

/* The bytes a batch puts on the wire, gathered from its iovecs. */
static uint8_t *batch_wire(struct mig_batch *b, size_t *len)
{
	int iovcnt;
	*len = mig_batch_end(b, &iovcnt);
	uint8_t *w = malloc(*len), *p = w;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p, b->iov[i].iov_base, b->iov[i].iov_len);
		p += b->iov[i].iov_len;
	}
	CU_ASSERT_EQUAL((size_t)(p - w), *len);
	return w;
}

static void test_batch_roundtrip(void)
{
	const uint64_t n = 32;
	uint8_t *src = make_ram(n), *dst = malloc(n * MIG_PAGE);
	memset(dst, 0xAA, n * MIG_PAGE); /* stale content: zero pages must clear it */
	static struct mig_batch b;
	mig_batch_begin(&b, 0);
	for (uint64_t p = 0; p < n; p++)
		mig_batch_add(&b, p, src + p * MIG_PAGE);
	size_t len;
	uint8_t *wire = batch_wire(&b, &len);
	CU_ASSERT_EQUAL(b.count, n);
	CU_ASSERT_EQUAL(b.zero, 11);
	CU_ASSERT_EQUAL(b.ndata, 21);
	/* The pages are sent from where they are, not copied: page 1 is the second iovec. */
	CU_ASSERT_PTR_EQUAL(b.iov[1].iov_base, src + 1 * MIG_PAGE);
	/* Zero pages travel as 8 bytes: header, head, 32 indexes, then 21 data pages. */
	CU_ASSERT_EQUAL(len, 16 + 24 + n * 8 + 21 * MIG_PAGE);
	struct gw_sect_hdr h;
	memcpy(&h, wire, sizeof(h));
	CU_ASSERT_EQUAL(mig_record_check_hdr(&h), 0);
	CU_ASSERT_EQUAL(h.magic, MIG_TAG_RAM);
	const uint8_t *payload = wire + sizeof(h);
	/* The record's CRC covers the head alone. */
	CU_ASSERT_EQUAL(gw_crc32c(0, payload, 24 + n * 8), h.crc);
	uint64_t pages = 0, zeros = 0;
	CU_ASSERT_EQUAL(mig_batch_apply(&h, payload, dst, n, NULL, &pages, &zeros), 0);
	CU_ASSERT_EQUAL(pages, n);
	CU_ASSERT_EQUAL(zeros, 11);
	CU_ASSERT_EQUAL(memcmp(src, dst, n * MIG_PAGE), 0);
	free(wire);
	/* An empty batch (a channel's keepalive, in clear and as over TLS) is valid and
	 * changes nothing. */
	for (int tls = 0; tls < 2; tls++) {
		mig_batch_begin(&b, tls ? MIG_RAMB_NO_HASH : 0);
		wire = batch_wire(&b, &len);
		CU_ASSERT_EQUAL(len, 16 + 24);
		memcpy(&h, wire, sizeof(h));
		CU_ASSERT_EQUAL(mig_record_check_hdr(&h), 0);
		struct mig_batch_view v;
		CU_ASSERT_EQUAL(mig_batch_head_check(&h, wire + sizeof(h), 24, n, &v), 0);
		CU_ASSERT_EQUAL(v.count, 0);
		CU_ASSERT_EQUAL(v.ndata, 0);
		CU_ASSERT_EQUAL(mig_batch_hash_ram(&v, dst), v.hash);
		pages = zeros = 0;
		CU_ASSERT_EQUAL(mig_batch_apply(&h, wire + sizeof(h), dst, n, NULL, &pages, &zeros),
				0);
		CU_ASSERT_EQUAL(pages, 0);
		CU_ASSERT_EQUAL(memcmp(src, dst, n * MIG_PAGE), 0);
		free(wire);
	}
	free(src);
	free(dst);
}

/* Whether all n pages at ram are zero. */
static bool all_zero(const uint8_t *ram, uint64_t n)
{
	for (uint64_t i = 0; i < n * MIG_PAGE; i++)
		if (ram[i])
			return false;
	return true;
}

static void test_batch_rejects(void)
{
	const uint64_t n = 8;
	uint8_t *src = make_ram(n), *dst = calloc(n, MIG_PAGE);
	static struct mig_batch b;
	mig_batch_begin(&b, 0);
	for (uint64_t p = 0; p < n; p++)
		mig_batch_add(&b, p, src + p * MIG_PAGE);
	size_t len;
	uint8_t *wire = batch_wire(&b, &len);
	struct gw_sect_hdr h;
	memcpy(&h, wire, sizeof(h));
	uint8_t *payload = wire + sizeof(h);
	const size_t head = 24 + n * 8;
	uint64_t pages = 0, zeros = 0;
	/* A length that disagrees with the head, shorter or longer. */
	for (uint32_t cut = 0; cut < h.length; cut += 97) {
		struct gw_sect_hdr t = h;
		t.length = cut;
		CU_ASSERT_NOT_EQUAL(mig_batch_apply(&t, payload, dst, n, NULL, &pages, &zeros), 0);
	}
	/* A page outside RAM (the destination is smaller than the batch says) is refused before
	 * any byte lands. */
	CU_ASSERT_EQUAL(mig_batch_apply(&h, payload, dst, n - 1, NULL, &pages, &zeros), -EPROTO);
	CU_ASSERT_TRUE(all_zero(dst, n));
	/* Any flipped bit in the head fails its CRC, before any byte lands. */
	for (size_t i = 0; i < head; i += 7) {
		payload[i] ^= 0x10;
		int rc = mig_batch_apply(&h, payload, dst, n, NULL, &pages, &zeros);
		CU_ASSERT_TRUE(rc == -EBADMSG);
		payload[i] ^= 0x10;
	}
	CU_ASSERT_TRUE(all_zero(dst, n));
	/* A flipped bit in a page's data fails the batch's hash. */
	payload[head + 3 * MIG_PAGE + 100] ^= 0x04;
	CU_ASSERT_EQUAL(mig_batch_apply(&h, payload, dst, n, NULL, &pages, &zeros), -EILSEQ);
	payload[head + 3 * MIG_PAGE + 100] ^= 0x04;
	CU_ASSERT_EQUAL(mig_batch_apply(&h, payload, dst, n, NULL, &pages, &zeros), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, n * MIG_PAGE), 0);
	/* Count larger than what follows. */
	uint32_t big = 200;
	memcpy(payload, &big, 4);
	CU_ASSERT_EQUAL(mig_batch_apply(&h, payload, dst, n, NULL, &pages, &zeros), -EBADMSG);
	/* Headers: unknown tag, other version, oversized. */
	struct gw_sect_hdr bad = h;
	bad.magic = GW_FOURCC('X', 'X', 'X', 'X');
	CU_ASSERT_EQUAL(mig_record_check_hdr(&bad), -EBADMSG);
	bad = h;
	bad.version = 9;
	CU_ASSERT_EQUAL(mig_record_check_hdr(&bad), -EPROTO);
	bad = h;
	bad.length = MIG_MAX_RECORD + 1;
	CU_ASSERT_EQUAL(mig_record_check_hdr(&bad), -EBADMSG);
	free(wire);
	free(src);
	free(dst);
}

/* A page the guest rewrites after it was added (its bytes travel from guest RAM) shows as a
 * hash mismatch, which asks for the batch again; over TLS (no hash) the batch is taken as
 * authenticated by the records. */
static void test_batch_rewritten(void)
{
	const uint64_t n = 4;
	uint8_t *src = make_ram(n), *dst = calloc(n, MIG_PAGE);
	static struct mig_batch b;
	mig_batch_begin(&b, 0);
	for (uint64_t p = 0; p < n; p++)
		mig_batch_add(&b, p, src + p * MIG_PAGE);
	src[2 * MIG_PAGE + 5] ^= 0xff; /* after the hash, before the send */
	size_t len;
	uint8_t *wire = batch_wire(&b, &len);
	struct gw_sect_hdr h;
	memcpy(&h, wire, sizeof(h));
	uint64_t pages = 0, zeros = 0;
	CU_ASSERT_EQUAL(mig_batch_apply(&h, wire + sizeof(h), dst, n, NULL, &pages, &zeros),
			-EILSEQ);
	free(wire);
	mig_batch_begin(&b, MIG_RAMB_NO_HASH | MIG_RAMB_STABLE);
	for (uint64_t p = 0; p < n; p++)
		mig_batch_add(&b, p, src + p * MIG_PAGE);
	src[2 * MIG_PAGE + 5] ^= 0xff;
	wire = batch_wire(&b, &len);
	memcpy(&h, wire, sizeof(h));
	CU_ASSERT_EQUAL(mig_batch_apply(&h, wire + sizeof(h), dst, n, NULL, &pages, &zeros), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, n * MIG_PAGE), 0);
	/* An unknown flag is malformed. */
	wire[sizeof(h) + 8] = 0x80;
	memcpy(&h, wire, sizeof(h));
	h.crc = gw_crc32c(0, wire + sizeof(h), 24 + n * 8);
	CU_ASSERT_EQUAL(mig_batch_apply(&h, wire + sizeof(h), dst, n, NULL, &pages, &zeros),
			-EPROTO);
	free(wire);
	free(src);
	free(dst);
}

static void test_records(void)
{
	struct gw_buf b;
	gw_buf_init(&b);
	mig_record_put(&b, MIG_TAG_FAIL, "why", 3);
	mig_record_put(&b, MIG_TAG_END, NULL, 0);
	struct gw_rd rd, body;
	gw_rd_init(&rd, b.data, b.len);
	CU_ASSERT_EQUAL(gw_sect_read(&rd, MIG_TAG_FAIL, MIG_STREAM_VERSION, &body), 0);
	CU_ASSERT_EQUAL(body.left, 3);
	CU_ASSERT_EQUAL(gw_sect_read(&rd, MIG_TAG_END, MIG_STREAM_VERSION, &body), 0);
	CU_ASSERT_EQUAL(body.left, 0);
	CU_ASSERT_EQUAL(rd.left, 0);
	gw_buf_release(&b);
	uint8_t z[MIG_PAGE] = {0};
	CU_ASSERT_TRUE(mig_page_is_zero(z));
	z[MIG_PAGE - 1] = 1;
	CU_ASSERT_FALSE(mig_page_is_zero(z));
}

static void test_state_table(void)
{
	struct mig_transition t;
	/* The happy path. */
	CU_ASSERT_EQUAL(mig_transition(MIG_SETUP, MIG_EV_CONNECTED, &t), 0);
	CU_ASSERT_EQUAL(t.next, MIG_PRECOPY);
	CU_ASSERT_EQUAL(mig_transition(MIG_PRECOPY, MIG_EV_CONVERGED, &t), 0);
	CU_ASSERT_EQUAL(t.next, MIG_STOP_AND_COPY);
	CU_ASSERT_EQUAL(mig_transition(MIG_STOP_AND_COPY, MIG_EV_DEST_READY, &t), 0);
	CU_ASSERT_EQUAL(t.next, MIG_HANDOVER);
	CU_ASSERT_EQUAL(mig_transition(MIG_HANDOVER, MIG_EV_COMMIT, &t), 0);
	CU_ASSERT_EQUAL(t.next, MIG_DONE);
	CU_ASSERT_FALSE(t.resume_source);
	/* Every failure or cancel before a commit resumes the source. */
	enum mig_state live[] = {MIG_SETUP, MIG_PRECOPY, MIG_STOP_AND_COPY, MIG_HANDOVER};
	for (size_t i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(mig_transition(live[i], MIG_EV_CANCEL, &t), 0);
		CU_ASSERT_EQUAL(t.next, MIG_CANCELLED);
		CU_ASSERT_TRUE(t.resume_source);
	}
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(mig_transition(live[i], MIG_EV_ERROR, &t), 0);
		CU_ASSERT_EQUAL(t.next, MIG_FAILED);
		CU_ASSERT_TRUE(t.resume_source);
	}
	CU_ASSERT_EQUAL(mig_transition(MIG_HANDOVER, MIG_EV_ABORT, &t), 0);
	CU_ASSERT_TRUE(t.resume_source);
	/* What must never happen: commit before the destination is ready, anything after the
	 * end, skipping pre-copy. */
	CU_ASSERT_EQUAL(mig_transition(MIG_PRECOPY, MIG_EV_COMMIT, &t), -EINVAL);
	CU_ASSERT_EQUAL(mig_transition(MIG_STOP_AND_COPY, MIG_EV_COMMIT, &t), -EINVAL);
	CU_ASSERT_EQUAL(mig_transition(MIG_SETUP, MIG_EV_DEST_READY, &t), -EINVAL);
	CU_ASSERT_EQUAL(mig_transition(MIG_HANDOVER, MIG_EV_ERROR, &t), -EINVAL);
	enum mig_state final[] = {MIG_DONE, MIG_FAILED, MIG_CANCELLED};
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_TRUE(mig_state_final(final[i]));
		for (int e = 0; e < MIG_NEVENTS; e++)
			CU_ASSERT_EQUAL(mig_transition(final[i], (enum mig_event)e, &t), -EINVAL);
	}
	CU_ASSERT_EQUAL(mig_transition(MIG_NSTATES, MIG_EV_CANCEL, &t), -EINVAL);
	CU_ASSERT_STRING_EQUAL(mig_state_name(MIG_STOP_AND_COPY), "stop-and-copy");
	CU_ASSERT_STRING_EQUAL(mig_event_name(MIG_EV_DEST_READY), "destination ready");
	CU_ASSERT_STRING_EQUAL(mig_event_name(MIG_NEVENTS), "unknown");
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"handshake and reply", test_hello},
	    {"RAM batch round trip with zero pages", test_batch_roundtrip},
	    {"RAM batch and header rejects", test_batch_rejects},
	    {"RAM batch: a page rewritten after its hash, and TLS batches", test_batch_rewritten},
	    {"records and zero detection", test_records},
	    {"session state table", test_state_table},
	};
	return gw_test_run("migrate-stream", cases, GW_TEST_COUNT(cases));
}
