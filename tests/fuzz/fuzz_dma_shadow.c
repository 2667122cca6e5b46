/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for dma/'s shadow engine under a hostile guest and a confused device:
 * ring registers, descriptor contents (buffer addresses anywhere, lengths of any size),
 * doorbells and completion heads all come from the input, in the igb advanced format, in
 * shadow and track mode. Invariants: nothing crashes or reads/writes out of bounds (ASan),
 * and every page marked dirty is a page of guest memory.
 */
#include "godwit/dma.h"
#include "godwit/dma_shadow.h"
#include "godwit/igb_ring.h"
#include "godwit/igb_vf.h"

#include <stdlib.h>
#include <string.h>

#define RAM_SIZE (256u * 1024u)
static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static void on_dirty(void *opaque, uint64_t iova, uint64_t len)
{
	(void)opaque;
	if (iova >= RAM_SIZE || len > RAM_SIZE - iova)
		abort(); /* only guest memory may ever be marked */
}

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct dma_map *map;
	if (dma_map_create(&map))
		return 0;
	dma_map_add(map, 0, RAM_SIZE, ram, true);
	struct dma_shadow *s;
	enum dma_mode mode = (data[0] & 1) ? DMA_MODE_TRACK : DMA_MODE_SHADOW;
	if (dma_shadow_create(map, &igb_adv_ring_ops, mode, on_dirty, NULL, &s)) {
		dma_map_destroy(map);
		return 0;
	}
	uint64_t dev[DMA_SHADOW_MAX_QUEUES] = {0};
	size_t i = 1;
	while (i + 1 < size) {
		uint8_t op = data[i++];
		unsigned slot = (op >> 3) % DMA_SHADOW_MAX_QUEUES;
		switch (op & 7) {
		case 0: /* start a queue with registers from the input */
			if (i + 16 <= size) {
				struct dma_queue_regs r = {.base = u32(data + i) & ~127u,
							   .n = u32(data + i + 4) % 80,
							   .head = u32(data + i + 8) % 80,
							   .tail = u32(data + i + 12) % 80,
							   .buf_size = 1024u * (1 + data[i] % 4)};
				i += 16;
				dma_shadow_queue_start(s, slot, op & 0x40, &r, &dev[slot]);
			}
			break;
		case 1: /* the guest writes descriptors anywhere in its memory */
			if (i + 8 <= size) {
				uint32_t at = u32(data + i) % (RAM_SIZE - 16);
				memcpy(ram + at, data + i + 4, 4);
				memcpy(ram + at + 8, data + i + 4, 4);
				i += 8;
			}
			break;
		case 2: /* a doorbell */
			dma_shadow_queue_post(s, slot, data[i++] % 80);
			break;
		case 3: /* the device writes back descriptors of its ring (shadow or guest's) */
			if (i + 4 <= size) {
				union igb_rx_desc wb = {0};
				wb.wb.status = data[i] & 3;
				wb.wb.length = (uint16_t)(data[i + 1] | data[i + 2] << 8);
				dma_write(map, dev[slot] + 16u * (data[i + 3] % 80), &wb,
					  sizeof(wb));
				i += 4;
			}
			break;
		case 4: /* the device reports a head */
			dma_shadow_queue_complete(s, slot, data[i++] % 80);
			break;
		case 5:
			dma_shadow_queue_stop(s, slot);
			break;
		default:
			i++;
			break;
		}
	}
	struct dma_shadow_stats st;
	dma_shadow_get_stats(s, &st);
	dma_shadow_destroy(s);
	dma_map_destroy(map);
	return 0;
}
