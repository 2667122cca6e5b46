/* SPDX-License-Identifier: Apache-2.0 */
/* Bit arrays of 64-bit words, with atomic set for concurrent writers and a collect-and-clear. */
#ifndef GODWIT_BITMAP_H
#define GODWIT_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_BITS_PER_WORD       64u
#define GW_BITMAP_WORDS(nbits) (((nbits) + GW_BITS_PER_WORD - 1) / GW_BITS_PER_WORD)

uint64_t *gw_bitmap_alloc(size_t nbits);
void gw_bitmap_free(uint64_t *bm);

static inline void gw_bitmap_set(uint64_t *bm, size_t bit)
{
	bm[bit / GW_BITS_PER_WORD] |= 1ull << (bit % GW_BITS_PER_WORD);
}

static inline void gw_bitmap_clear(uint64_t *bm, size_t bit)
{
	bm[bit / GW_BITS_PER_WORD] &= ~(1ull << (bit % GW_BITS_PER_WORD));
}

static inline bool gw_bitmap_test(const uint64_t *bm, size_t bit)
{
	return (bm[bit / GW_BITS_PER_WORD] >> (bit % GW_BITS_PER_WORD)) & 1u;
}

/* Safe against concurrent gw_bitmap_set_atomic and gw_bitmap_take callers. */
static inline void gw_bitmap_set_atomic(uint64_t *bm, size_t bit)
{
	__atomic_fetch_or(&bm[bit / GW_BITS_PER_WORD], 1ull << (bit % GW_BITS_PER_WORD),
			  __ATOMIC_RELAXED);
}

/* Sets bits [first, first + count). */
void gw_bitmap_set_range(uint64_t *bm, size_t first, size_t count);
void gw_bitmap_set_range_atomic(uint64_t *bm, size_t first, size_t count);
/* Clears bits [first, first + count). */
void gw_bitmap_clear_range(uint64_t *bm, size_t first, size_t count);
void gw_bitmap_zero(uint64_t *bm, size_t nbits);
size_t gw_bitmap_count(const uint64_t *bm, size_t nbits);
/* dst |= src over nbits. */
void gw_bitmap_or(uint64_t *dst, const uint64_t *src, size_t nbits);
/* dst |= src over nbits, atomically emptying src word by word (src has concurrent writers). */
void gw_bitmap_take_or(uint64_t *dst, uint64_t *src, size_t nbits);
/* Returns the next set bit at or after start, or nbits when there is none. */
size_t gw_bitmap_next_set(const uint64_t *bm, size_t nbits, size_t start);

#endif
