/* SPDX-License-Identifier: Apache-2.0 */
/* The merge step of dirty tracking: one memslot's KVM bitmap into the RAM-wide union. */
#include "godwit/bitmap.h"
#include "godwit/hv.h"

void hv_dirty_merge(uint64_t *out, const uint64_t *kvm_bits, size_t first_page, size_t npages)
{
	if (first_page % GW_BITS_PER_WORD == 0) {
		gw_bitmap_or(out + first_page / GW_BITS_PER_WORD, kvm_bits, npages);
		return;
	}
	for (size_t i = gw_bitmap_next_set(kvm_bits, npages, 0); i < npages;
	     i = gw_bitmap_next_set(kvm_bits, npages, i + 1))
		gw_bitmap_set(out, first_page + i);
}
