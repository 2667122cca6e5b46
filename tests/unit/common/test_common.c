/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/: bitmaps, CRC-32C, parsers, buffers and section framing. */
#include "godwit/bitmap.h"
#include "godwit/buf.h"
#include "godwit/crc.h"
#include "godwit/parse.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_bitmap_basic(void)
{
	uint64_t *bm = gw_bitmap_alloc(130);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bm);
	gw_bitmap_set(bm, 0);
	gw_bitmap_set(bm, 64);
	gw_bitmap_set(bm, 129);
	CU_ASSERT_TRUE(gw_bitmap_test(bm, 64));
	CU_ASSERT_FALSE(gw_bitmap_test(bm, 63));
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, 130), 3);
	CU_ASSERT_EQUAL(gw_bitmap_next_set(bm, 130, 1), 64);
	CU_ASSERT_EQUAL(gw_bitmap_next_set(bm, 130, 65), 129);
	CU_ASSERT_EQUAL(gw_bitmap_next_set(bm, 129, 65), 129); /* past the end: none */
	gw_bitmap_clear(bm, 64);
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, 130), 2);
	gw_bitmap_zero(bm, 130);
	gw_bitmap_set_range_atomic(bm, 60, 10);
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, 130), 10);
	CU_ASSERT_TRUE(gw_bitmap_test(bm, 60) && gw_bitmap_test(bm, 69));
	CU_ASSERT_FALSE(gw_bitmap_test(bm, 59) || gw_bitmap_test(bm, 70));
	gw_bitmap_clear_range(bm, 62, 5);
	CU_ASSERT_EQUAL(gw_bitmap_count(bm, 130), 5);
	CU_ASSERT_TRUE(gw_bitmap_test(bm, 61) && gw_bitmap_test(bm, 67));
	CU_ASSERT_FALSE(gw_bitmap_test(bm, 62) || gw_bitmap_test(bm, 66));
	gw_bitmap_free(bm);
}

static void test_bitmap_union(void)
{
	/* dst is a window into a bigger bitmap: bits past nbits must survive the OR. */
	uint64_t dst[2] = {0x1, 0x8000000000000000ull};
	uint64_t src[2] = {0x2, 0xFFFFFFFFFFFFFFFFull};
	gw_bitmap_or(dst, src, 70);
	CU_ASSERT_EQUAL(dst[0], 0x3);
	CU_ASSERT_EQUAL(dst[1], 0x8000000000000000ull | 0x3F);

	uint64_t take_dst[2] = {0, 0};
	uint64_t take_src[2] = {0x10, 0x1};
	gw_bitmap_take_or(take_dst, take_src, 128);
	CU_ASSERT_EQUAL(take_dst[0], 0x10);
	CU_ASSERT_EQUAL(take_dst[1], 0x1);
	CU_ASSERT_EQUAL(take_src[0], 0);
	CU_ASSERT_EQUAL(take_src[1], 0);
}

static void test_crc32c(void)
{
	/* The check value of CRC-32C (RFC 3720 test vector "123456789"). */
	CU_ASSERT_EQUAL(gw_crc32c(0, "123456789", 9), 0xE3069283u);
	/* Incremental equals one-shot. */
	uint32_t c = gw_crc32c(0, "1234", 4);
	CU_ASSERT_EQUAL(gw_crc32c(c, "56789", 5), 0xE3069283u);
	uint8_t zeros[32] = {0};
	CU_ASSERT_EQUAL(gw_crc32c(0, zeros, 32), 0x8A9136AAu);
	/* Large buffers take the three-chain path: it must agree with the bytewise one, for
	 * every length class and a non-zero starting CRC. */
	size_t sizes[] = {16384, 16385, 16391, 65536, 100003, 1 << 20};
	uint8_t *buf = malloc(1 << 20);
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < (1 << 20); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		CU_ASSERT_EQUAL(gw_crc32c(0, buf, sizes[k]), gw_crc32c_sw(0, buf, sizes[k]));
		CU_ASSERT_EQUAL(gw_crc32c(0x12345678, buf, sizes[k]),
				gw_crc32c_sw(0x12345678, buf, sizes[k]));
	}
	free(buf);
}

static void test_parse_size(void)
{
	uint64_t v;
	CU_ASSERT_EQUAL(gw_parse_size("256M", &v), 0);
	CU_ASSERT_EQUAL(v, 256ull << 20);
	CU_ASSERT_EQUAL(gw_parse_size("2G", &v), 0);
	CU_ASSERT_EQUAL(v, 2ull << 30);
	CU_ASSERT_EQUAL(gw_parse_size("64KiB", &v), 0);
	CU_ASSERT_EQUAL(v, 64ull << 10);
	CU_ASSERT_EQUAL(gw_parse_size("4096", &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(gw_parse_size("", &v), -EINVAL);
	CU_ASSERT_EQUAL(gw_parse_size("-1M", &v), -EINVAL);
	CU_ASSERT_EQUAL(gw_parse_size("12Q", &v), -EINVAL);
	CU_ASSERT_EQUAL(gw_parse_size("1Mx", &v), -EINVAL);
	CU_ASSERT_EQUAL(gw_parse_size("99999999999999T", &v), -ERANGE);
	CU_ASSERT_EQUAL(gw_parse_size("99999999999999999999999", &v), -ERANGE);
	CU_ASSERT_EQUAL(gw_parse_u64("7", 1, 8, &v), 0);
	CU_ASSERT_EQUAL(gw_parse_u64("9", 1, 8, &v), -ERANGE);
	CU_ASSERT_EQUAL(gw_parse_u64("3x", 1, 8, &v), -EINVAL);
}

static void build_section(struct gw_buf *b)
{
	gw_buf_init(b);
	size_t off = gw_sect_begin(b, GW_FOURCC('T', 'E', 'S', 'T'), 3);
	gw_field_put(b, 1, "abc", 3);
	gw_buf_put_u64(b, 0x1122334455667788ull);
	gw_sect_end(b, off);
}

static void test_section_roundtrip(void)
{
	struct gw_buf b;
	build_section(&b);
	CU_ASSERT_EQUAL_FATAL(b.err, 0);
	CU_ASSERT_EQUAL(b.len, 16 + 8 + 3 + 8);
	struct gw_rd rd, body;
	gw_rd_init(&rd, b.data, b.len);
	CU_ASSERT_EQUAL_FATAL(gw_sect_read(&rd, GW_FOURCC('T', 'E', 'S', 'T'), 3, &body), 0);
	uint16_t id;
	const void *p;
	uint32_t len;
	CU_ASSERT_EQUAL(gw_field_next(&body, &id, &p, &len), 0);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_EQUAL(memcmp(p, "abc", 3), 0);
	uint64_t v;
	CU_ASSERT_EQUAL(gw_rd_u64(&body, &v), 0);
	CU_ASSERT_EQUAL(v, 0x1122334455667788ull);
	CU_ASSERT_EQUAL(gw_field_next(&body, &id, &p, &len), -ENOENT);
	CU_ASSERT_EQUAL(rd.left, 0);
	gw_buf_release(&b);
}

static void test_section_rejects(void)
{
	struct gw_buf b;
	build_section(&b);
	struct gw_rd rd, body;
	/* Wrong version. */
	gw_rd_init(&rd, b.data, b.len);
	CU_ASSERT_EQUAL(gw_sect_read(&rd, GW_FOURCC('T', 'E', 'S', 'T'), 4, &body), -EPROTO);
	/* Wrong magic. */
	gw_rd_init(&rd, b.data, b.len);
	CU_ASSERT_EQUAL(gw_sect_read(&rd, GW_FOURCC('X', 'E', 'S', 'T'), 3, &body), -EBADMSG);
	/* Truncated anywhere. */
	for (size_t cut = 0; cut < b.len; cut++) {
		gw_rd_init(&rd, b.data, cut);
		CU_ASSERT_EQUAL(gw_sect_read(&rd, GW_FOURCC('T', 'E', 'S', 'T'), 3, &body),
				-EBADMSG);
	}
	/* Any flipped payload bit fails the CRC. */
	for (size_t i = 16; i < b.len; i++) {
		b.data[i] ^= 0x10;
		gw_rd_init(&rd, b.data, b.len);
		CU_ASSERT_EQUAL(gw_sect_read(&rd, GW_FOURCC('T', 'E', 'S', 'T'), 3, &body),
				-EBADMSG);
		b.data[i] ^= 0x10;
	}
	/* A field longer than its section. */
	uint8_t bad_field[8] = {1, 0, 0, 0, 0xFF, 0, 0, 0};
	gw_rd_init(&body, bad_field, sizeof(bad_field));
	uint16_t id;
	const void *p;
	uint32_t len;
	CU_ASSERT_EQUAL(gw_field_next(&body, &id, &p, &len), -EBADMSG);
	gw_buf_release(&b);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"bitmap basic", test_bitmap_basic},
	    {"bitmap union", test_bitmap_union},
	    {"crc32c vectors", test_crc32c},
	    {"parse sizes and integers", test_parse_size},
	    {"section round trip", test_section_roundtrip},
	    {"section rejects bad input", test_section_rejects},
	};
	return gw_test_run("common", cases, GW_TEST_COUNT(cases));
}
