/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for dma_write_words: a device's write of words a driver reads meanwhile (a
 * descriptor's write-back), each word stored once, in address order. */
#include "godwit/dma.h"

#include "../../lib/gw_test.h"
#include "../../lib/store_trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IOVA 0x10000ull

static uint8_t *ram, *ro;
static struct dma_map *map;
static unsigned hooked;
static uint64_t hook_iova, hook_len;

static void on_write(void *opaque, uint64_t iova, uint64_t len)
{
	(void)opaque;
	hooked++;
	hook_iova = iova;
	hook_len = len;
}

static void setup(void)
{
	ram = aligned_alloc(4096, 8192);
	ro = aligned_alloc(4096, 4096);
	CU_ASSERT_FATAL(ram && ro);
	memset(ram, 0, 8192);
	CU_ASSERT_FATAL(dma_map_create(&map) == 0);
	CU_ASSERT_FATAL(dma_map_add(map, IOVA, 8192, ram, true) == 0);
	CU_ASSERT_FATAL(dma_map_add(map, IOVA + 0x10000, 4096, ro, false) == 0);
	hooked = 0;
}

static void teardown(void)
{
	dma_map_destroy(map);
	free(ram);
	free(ro);
}

static void test_values_and_stores(void)
{
	setup();
	const uint64_t desc[2] = {0x1122334455667788ull, 0x0040000000000003ull};
	struct gw_store_trace t;
	CU_ASSERT_FATAL(gw_store_trace_start(ram, &t) == 0);
	int rc = dma_write_words(map, IOVA + 32, desc, sizeof(desc));
	gw_store_trace_stop();
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(memcmp(ram + 32, desc, sizeof(desc)), 0);
	/* Two stores, one per word, the low word first: the status word (DD) comes last. */
	CU_ASSERT_EQUAL(t.n, 2);
	CU_ASSERT_EQUAL(t.at[0], (uintptr_t)(ram + 32));
	CU_ASSERT_EQUAL(t.at[1], (uintptr_t)(ram + 40));
	/* One 4-byte word: one store. */
	const uint32_t dd = 1;
	CU_ASSERT_FATAL(gw_store_trace_start(ram, &t) == 0);
	rc = dma_write_words(map, IOVA + 12, &dd, 4);
	gw_store_trace_stop();
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(t.n, 1);
	CU_ASSERT_EQUAL(t.at[0], (uintptr_t)(ram + 12));
	uint32_t got;
	memcpy(&got, ram + 12, 4);
	CU_ASSERT_EQUAL(got, 1);
	/* Across the two pages of one range: still one store a word. */
	uint64_t four[4] = {1, 2, 3, 4};
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 4096 - 16, four, sizeof(four)), 0);
	CU_ASSERT_EQUAL(memcmp(ram + 4096 - 16, four, sizeof(four)), 0);
	teardown();
}

static void test_refusals(void)
{
	setup();
	uint64_t w[2] = {7, 8};
	/* Lengths and alignments it cannot store a word at a time: nothing written. */
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA, w, 0), -EINVAL);
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA, w, 12), -EINVAL);
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 2, w, 4), -EINVAL);
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 4, w, 16), -EINVAL);
	static const uint8_t zero[64];
	CU_ASSERT_EQUAL(memcmp(ram, zero, sizeof(zero)), 0);
	/* Outside the map, a read-only range: as dma_write, and counted as faults. */
	CU_ASSERT_EQUAL(dma_write_words(map, 0x900000, w, 16), -EFAULT);
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 8192 - 8, w, 16), -EFAULT);
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 0x10000, w, 16), -EACCES);
	struct dma_stats st;
	dma_map_stats(map, &st);
	CU_ASSERT_EQUAL(st.faults, 3);
	CU_ASSERT_EQUAL(st.writes, 0);
	teardown();
}

static void test_hook_and_stats(void)
{
	setup();
	dma_map_set_write_hook(map, on_write, NULL);
	uint64_t w[2] = {7, 8};
	CU_ASSERT_EQUAL(dma_write_words(map, IOVA + 64, w, sizeof(w)), 0);
	CU_ASSERT_EQUAL(hooked, 1);
	CU_ASSERT_EQUAL(hook_iova, IOVA + 64);
	CU_ASSERT_EQUAL(hook_len, 16);
	struct dma_stats st;
	dma_map_stats(map, &st);
	CU_ASSERT_EQUAL(st.writes, 1);
	CU_ASSERT_EQUAL(st.write_bytes, 16);
	dma_map_set_write_hook(map, NULL, NULL);
	teardown();
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"each word stored once, low to high", test_values_and_stores},
	    {"lengths, alignments and addresses it refuses", test_refusals},
	    {"the write hook and the counters", test_hook_and_stats},
	};
	return gw_test_run("dma-words", cases, GW_TEST_COUNT(cases));
}
