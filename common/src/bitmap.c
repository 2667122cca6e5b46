/* SPDX-License-Identifier: Apache-2.0 */
/* Bitmap helpers used by dirty-page tracking. */
#include "godwit/bitmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t *gw_bitmap_alloc(size_t nbits)
{
	size_t words = GW_BITMAP_WORDS(nbits);
	return calloc(words ? words : 1, sizeof(uint64_t));
}

void gw_bitmap_free(uint64_t *bm)
{
	free(bm);
}

static uint64_t tail_mask(size_t nbits)
{
	size_t rem = nbits % GW_BITS_PER_WORD;
	return rem ? (1ull << rem) - 1 : ~0ull;
}

void gw_bitmap_set_range(uint64_t *bm, size_t first, size_t count)
{
	for (size_t b = first; b < first + count; b++)
		gw_bitmap_set(bm, b);
}

void gw_bitmap_clear_range(uint64_t *bm, size_t first, size_t count)
{
	for (size_t b = first; b < first + count; b++)
		gw_bitmap_clear(bm, b);
}

void gw_bitmap_set_range_atomic(uint64_t *bm, size_t first, size_t count)
{
	size_t b = first, end = first + count;
	while (b < end) {
		size_t off = b % GW_BITS_PER_WORD;
		size_t n = GW_BITS_PER_WORD - off;
		if (n > end - b)
			n = end - b;
		uint64_t mask = (n == GW_BITS_PER_WORD) ? ~0ull : ((1ull << n) - 1) << off;
		__atomic_fetch_or(&bm[b / GW_BITS_PER_WORD], mask, __ATOMIC_RELAXED);
		b += n;
	}
}

void gw_bitmap_zero(uint64_t *bm, size_t nbits)
{
	memset(bm, 0, GW_BITMAP_WORDS(nbits) * sizeof(uint64_t));
}

size_t gw_bitmap_count(const uint64_t *bm, size_t nbits)
{
	size_t words = GW_BITMAP_WORDS(nbits), n = 0;
	for (size_t i = 0; i < words; i++) {
		uint64_t w = bm[i];
		if (i == words - 1)
			w &= tail_mask(nbits);
		n += (size_t)__builtin_popcountll(w);
	}
	return n;
}

void gw_bitmap_or(uint64_t *dst, const uint64_t *src, size_t nbits)
{
	size_t words = GW_BITMAP_WORDS(nbits);
	/* Bits of src past nbits are ignored; dst's own bits there are left alone, since dst
	 * may be a window into a larger bitmap. */
	for (size_t i = 0; i + 1 < words; i++)
		dst[i] |= src[i];
	if (words)
		dst[words - 1] |= src[words - 1] & tail_mask(nbits);
}

void gw_bitmap_take_or(uint64_t *dst, uint64_t *src, size_t nbits)
{
	size_t words = GW_BITMAP_WORDS(nbits);
	for (size_t i = 0; i < words; i++) {
		if (__atomic_load_n(&src[i], __ATOMIC_RELAXED) == 0)
			continue;
		uint64_t w = __atomic_exchange_n(&src[i], 0, __ATOMIC_ACQ_REL);
		dst[i] |= (i == words - 1) ? (w & tail_mask(nbits)) : w;
	}
}

size_t gw_bitmap_next_set(const uint64_t *bm, size_t nbits, size_t start)
{
	if (start >= nbits)
		return nbits;
	size_t i = start / GW_BITS_PER_WORD;
	uint64_t w = bm[i] & (~0ull << (start % GW_BITS_PER_WORD));
	size_t words = GW_BITMAP_WORDS(nbits);
	for (;;) {
		if (w) {
			size_t bit = i * GW_BITS_PER_WORD + (size_t)__builtin_ctzll(w);
			return bit < nbits ? bit : nbits;
		}
		if (++i >= words)
			return nbits;
		w = bm[i];
	}
}
