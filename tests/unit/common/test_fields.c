/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/'s field-table codec: round trip, and everything a loader must refuse. */
#include "godwit/crc.h"
#include "godwit/fields.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC GW_FOURCC('T', 'E', 'S', 'T')

struct thing {
	uint32_t a;
	uint64_t b;
	uint8_t mac[6];
	bool on;
	uint16_t nlist;
	uint16_t list[8];
	uint32_t blob_len;
	uint8_t *blob;
	uint32_t extra; /* optional */
};

static const struct gw_field thing_fields[] = {
    GW_FIELD(1, struct thing, a, 0),
    GW_FIELD(2, struct thing, b, 0),
    GW_FIELD(3, struct thing, mac, 0),
    GW_FIELD(4, struct thing, on, GW_FIELD_BOOL),
    GW_FIELD_ARRAY(5, struct thing, list, nlist, 0),
    GW_FIELD_BUFFER(6, struct thing, blob, blob_len, 64, 4, GW_FIELD_NONEMPTY),
    GW_FIELD(7, struct thing, extra, GW_FIELD_OPTIONAL),
};

static const struct gw_fields thing_table =
    GW_FIELDS_TABLE("thing", MAGIC, 1, struct thing, thing_fields);

static uint8_t blob_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void fill(struct thing *t)
{
	memset(t, 0, sizeof(*t));
	t->a = 0x11223344;
	t->b = 0x0102030405060708ull;
	memcpy(t->mac, "\x02\x00\x00\x00\x00\x07", 6);
	t->on = true;
	t->nlist = 3;
	t->list[0] = 10;
	t->list[1] = 20;
	t->list[2] = 30;
	t->list[5] = 0xDEAD; /* beyond nlist: does not travel */
	t->blob_len = sizeof(blob_bytes);
	t->blob = blob_bytes;
	t->extra = 77;
}

/* A section of the test table's magic and version with the fields given as (id, len, bytes). */
struct raw_field {
	uint16_t id, wflags;
	uint32_t len;
	const void *p;
};

static void build(struct gw_buf *b, const struct raw_field *f, unsigned n)
{
	gw_buf_init(b);
	size_t off = gw_sect_begin(b, MAGIC, 1);
	for (unsigned i = 0; i < n; i++) {
		gw_buf_put_u16(b, f[i].id);
		gw_buf_put_u16(b, f[i].wflags);
		gw_buf_put_u32(b, f[i].len);
		gw_buf_put(b, f[i].p, f[i].len);
	}
	gw_sect_end(b, off);
}

static int load_raw(const struct raw_field *f, unsigned n, struct thing *out)
{
	struct gw_buf b;
	build(&b, f, n);
	struct gw_rd rd;
	gw_rd_init(&rd, b.data, b.len);
	memset(out, 0, sizeof(*out));
	int rc = gw_fields_load(&thing_table, &rd, out);
	gw_buf_release(&b);
	return rc;
}

/* The fields of a valid thing, to be spoiled one at a time. */
static uint32_t v_a = 1;
static uint64_t v_b = 2;
static uint8_t v_mac[6] = {2, 0, 0, 0, 0, 1};
static uint8_t v_on = 1;
static uint16_t v_list[2] = {5, 6};
static uint8_t v_blob[4] = {9, 9, 9, 9};

static void valid_fields(struct raw_field f[6])
{
	f[0] = (struct raw_field){1, 0, 4, &v_a};
	f[1] = (struct raw_field){2, 0, 8, &v_b};
	f[2] = (struct raw_field){3, 0, 6, v_mac};
	f[3] = (struct raw_field){4, 0, 1, &v_on};
	f[4] = (struct raw_field){5, 0, 4, v_list};
	f[5] = (struct raw_field){6, 0, 4, v_blob};
}

static void test_table_check(void)
{
	CU_ASSERT_EQUAL(gw_fields_check(&thing_table), 0);
	static const struct gw_field dup[] = {
	    GW_FIELD(1, struct thing, a, 0),
	    GW_FIELD(1, struct thing, b, 0),
	};
	struct gw_fields t = GW_FIELDS_TABLE("dup", MAGIC, 1, struct thing, dup);
	CU_ASSERT_EQUAL(gw_fields_check(&t), -EINVAL);
	static const struct gw_field zero[] = {GW_FIELD(0, struct thing, a, 0)};
	struct gw_fields z = GW_FIELDS_TABLE("zero", MAGIC, 1, struct thing, zero);
	CU_ASSERT_EQUAL(gw_fields_check(&z), -EINVAL);
	/* A member outside the struct. */
	struct gw_field out = GW_FIELD(1, struct thing, a, 0);
	out.offset = sizeof(struct thing) - 2;
	struct gw_fields o = {"out", MAGIC, 1, 1, sizeof(struct thing), &out};
	CU_ASSERT_EQUAL(gw_fields_check(&o), -EINVAL);
	struct thing th;
	fill(&th);
	struct gw_buf b;
	gw_buf_init(&b);
	CU_ASSERT_EQUAL(gw_fields_save(&o, &th, &b), -EINVAL);
	CU_ASSERT_EQUAL(b.len, 0);
	gw_buf_release(&b);
}

static void test_roundtrip(void)
{
	struct thing a, b;
	fill(&a);
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(gw_fields_save(&thing_table, &a, &buf), 0);
	/* Header, then 7 fields of 8-byte headers: 4 + 8 + 6 + 1 + 6 + 8 + 4 bytes of data. */
	CU_ASSERT_EQUAL(buf.len, 16 + 7 * 8 + 37);
	struct gw_rd rd;
	gw_rd_init(&rd, buf.data, buf.len);
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL_FATAL(gw_fields_load(&thing_table, &rd, &b), 0);
	CU_ASSERT_EQUAL(rd.left, 0);
	CU_ASSERT_EQUAL(b.a, a.a);
	CU_ASSERT_EQUAL(b.b, a.b);
	CU_ASSERT_EQUAL(memcmp(b.mac, a.mac, 6), 0);
	CU_ASSERT_TRUE(b.on);
	CU_ASSERT_EQUAL(b.nlist, 3);
	CU_ASSERT_EQUAL(b.list[2], 30);
	CU_ASSERT_EQUAL(b.list[5], 0);
	CU_ASSERT_EQUAL_FATAL(b.blob_len, sizeof(blob_bytes));
	CU_ASSERT_PTR_NOT_EQUAL(b.blob, a.blob); /* the loader's own copy */
	CU_ASSERT_EQUAL(memcmp(b.blob, blob_bytes, sizeof(blob_bytes)), 0);
	CU_ASSERT_EQUAL(b.extra, 77);
	gw_fields_release(&thing_table, &b);
	CU_ASSERT_PTR_NULL(b.blob);
	CU_ASSERT_EQUAL(b.blob_len, 0);
	/* Another version is refused as such. */
	buf.data[4] = 2;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(gw_fields_load(&thing_table, &rd, &b), -EPROTO);
	gw_buf_release(&buf);
}

static void test_save_rejects(void)
{
	struct thing a;
	struct gw_buf buf;
	gw_buf_init(&buf);
	fill(&a);
	a.nlist = 9; /* more than the array holds */
	CU_ASSERT_EQUAL(gw_fields_save(&thing_table, &a, &buf), -EINVAL);
	fill(&a);
	a.blob_len = 6; /* not whole units */
	CU_ASSERT_EQUAL(gw_fields_save(&thing_table, &a, &buf), -EINVAL);
	fill(&a);
	a.blob_len = 0; /* NONEMPTY */
	CU_ASSERT_EQUAL(gw_fields_save(&thing_table, &a, &buf), -EINVAL);
	fill(&a);
	a.blob = NULL;
	CU_ASSERT_EQUAL(gw_fields_save(&thing_table, &a, &buf), -EINVAL);
	CU_ASSERT_EQUAL(buf.len, 0); /* nothing half-written */
	gw_buf_release(&buf);
}

static void test_optional_absent(void)
{
	struct raw_field f[6];
	valid_fields(f);
	struct thing t;
	CU_ASSERT_EQUAL_FATAL(load_raw(f, 6, &t), 0);
	CU_ASSERT_EQUAL(t.a, 1);
	CU_ASSERT_EQUAL(t.nlist, 2);
	CU_ASSERT_EQUAL(t.list[1], 6);
	CU_ASSERT_EQUAL(t.extra, 0); /* absent: left as the caller had it */
	gw_fields_release(&thing_table, &t);
}

static void test_missing_required(void)
{
	struct raw_field f[6];
	struct thing t;
	for (unsigned skip = 0; skip < 6; skip++) {
		valid_fields(f);
		struct raw_field g[5];
		for (unsigned i = 0, j = 0; i < 6; i++)
			if (i != skip)
				g[j++] = f[i];
		CU_ASSERT_EQUAL(load_raw(g, 5, &t), -EBADMSG);
		CU_ASSERT_PTR_NULL(t.blob); /* nothing leaks when the load fails */
	}
}

static void test_wrong_size(void)
{
	struct raw_field f[6];
	struct thing t;
	uint8_t big[128] = {0};
	valid_fields(f);
	f[0].len = 2; /* a u32 in 2 bytes */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	f[1] = (struct raw_field){2, 0, 16, big}; /* a u64 in 16 */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	f[4] = (struct raw_field){5, 0, 18, big}; /* 9 list entries: more than the array */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	f[4] = (struct raw_field){5, 0, 3, big}; /* half an entry */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	f[5] = (struct raw_field){6, 0, 68, big}; /* over the buffer's maximum */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	f[5] = (struct raw_field){6, 0, 0, big}; /* NONEMPTY */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	valid_fields(f);
	uint8_t two = 2;
	f[3] = (struct raw_field){4, 0, 1, &two}; /* a bool that is neither 0 nor 1 */
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), -EBADMSG);
	/* An empty list is fine. */
	valid_fields(f);
	f[4].len = 0;
	CU_ASSERT_EQUAL(load_raw(f, 6, &t), 0);
	CU_ASSERT_EQUAL(t.nlist, 0);
	gw_fields_release(&thing_table, &t);
}

static void test_unknown_and_repeated(void)
{
	struct raw_field f[7];
	struct thing t;
	uint32_t x = 5;
	valid_fields(f);
	f[6] = (struct raw_field){99, 0, 4, &x}; /* unknown, required: not ours */
	CU_ASSERT_EQUAL(load_raw(f, 7, &t), -EBADMSG);
	CU_ASSERT_PTR_NULL(t.blob);	      /* the blob loaded before it was freed */
	f[6].wflags = GW_FIELD_WIRE_OPTIONAL; /* unknown, optional: a newer writer's, skipped */
	CU_ASSERT_EQUAL(load_raw(f, 7, &t), 0);
	gw_fields_release(&thing_table, &t);
	f[6].wflags = 0x8000; /* a reserved flag */
	CU_ASSERT_EQUAL(load_raw(f, 7, &t), -EBADMSG);
	f[6] = (struct raw_field){1, 0, 4, &x}; /* a known field twice */
	CU_ASSERT_EQUAL(load_raw(f, 7, &t), -EBADMSG);
	f[6] = (struct raw_field){6, 0, 4, v_blob}; /* the allocated one twice: no leak */
	CU_ASSERT_EQUAL(load_raw(f, 7, &t), -EBADMSG);
	CU_ASSERT_PTR_NULL(t.blob);
}

static void test_truncated(void)
{
	struct thing a, b;
	fill(&a);
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(gw_fields_save(&thing_table, &a, &buf), 0);
	struct gw_rd rd;
	/* Every prefix is refused, and never read past (ASan in the fuzz build checks that). */
	for (size_t n = 0; n < buf.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
		memcpy(copy, buf.data, n);
		gw_rd_init(&rd, copy, n);
		memset(&b, 0, sizeof(b));
		CU_ASSERT_EQUAL(gw_fields_load(&thing_table, &rd, &b), -EBADMSG);
		CU_ASSERT_PTR_NULL(b.blob);
		free(copy);
	}
	/* A field whose length runs past its section, with a CRC that matches. */
	struct raw_field f[6];
	valid_fields(f);
	struct gw_buf bad;
	build(&bad, f, 6);
	uint32_t huge = 1000;
	memcpy(bad.data + 16 + 4, &huge, 4); /* the first field's length */
	uint32_t crc = gw_crc32c(0, bad.data + 16, bad.len - 16);
	memcpy(bad.data + 12, &crc, 4);
	gw_rd_init(&rd, bad.data, bad.len);
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL(gw_fields_load(&thing_table, &rd, &b), -EBADMSG);
	gw_buf_release(&bad);
	gw_buf_release(&buf);
}

static void test_sect_take(void)
{
	struct thing a;
	fill(&a);
	struct gw_buf buf;
	gw_buf_init(&buf);
	CU_ASSERT_EQUAL_FATAL(gw_fields_save(&thing_table, &a, &buf), 0);
	size_t one = buf.len;
	CU_ASSERT_EQUAL_FATAL(gw_fields_save(&thing_table, &a, &buf), 0);
	gw_buf_put_u32(&buf, 0xABCDEF01);
	struct gw_rd rd, s;
	gw_rd_init(&rd, buf.data, buf.len);
	CU_ASSERT_EQUAL(gw_sect_take(&rd, &s), 0);
	CU_ASSERT_EQUAL(s.left, one);
	CU_ASSERT_EQUAL(gw_sect_take(&rd, &s), 0);
	CU_ASSERT_EQUAL(s.left, one);
	CU_ASSERT_EQUAL(rd.left, 4);
	CU_ASSERT_EQUAL(gw_sect_take(&rd, &s), -EBADMSG); /* 4 bytes are no header */
	gw_rd_init(&rd, buf.data, one - 1);
	CU_ASSERT_EQUAL(gw_sect_take(&rd, &s), -EBADMSG); /* payload cut short */
	gw_buf_release(&buf);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"table_check", test_table_check},
	    {"roundtrip", test_roundtrip},
	    {"save_rejects", test_save_rejects},
	    {"optional_absent", test_optional_absent},
	    {"missing_required", test_missing_required},
	    {"wrong_size", test_wrong_size},
	    {"unknown_and_repeated", test_unknown_and_repeated},
	    {"truncated", test_truncated},
	    {"sect_take", test_sect_take},
	};
	return gw_test_run("fields", cases, GW_TEST_COUNT(cases));
}
