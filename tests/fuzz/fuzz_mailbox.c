/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for what a guest can send a VF: mailbox messages straight to the PF agent,
 * and register writes (mailbox protocol included) to the igb register model, interleaved with
 * rounds of hardware work. Invariants: replies fit the mailbox, VF 1's settings never change
 * because of VF 0, and nothing crashes. When the first byte's bit 1 is set, the device first
 * loads a saved state that the input has corrupted (a migration stream from the network), and
 * the VF configuration codec reads one too.
 */
#include "igb_dev.h"

#include "godwit/crc.h"

#include <stdlib.h>
#include <string.h>

static uint8_t ram[65536] __attribute__((aligned(4096)));
static uint32_t regs[IGB_VF_BAR0_SIZE / 4] __attribute__((aligned(4096)));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* XORs the input into a saved section's payload and fixes its CRC, so that the loader gets
 * past the framing and meets corrupt fields. */
static void corrupt(struct gw_buf *b, const uint8_t *data, size_t size)
{
	if (b->err || b->len < sizeof(struct gw_sect_hdr))
		return;
	uint8_t *payload = b->data + sizeof(struct gw_sect_hdr);
	size_t len = b->len - sizeof(struct gw_sect_hdr);
	for (size_t i = 0; i < size && i < len; i++)
		payload[i] ^= data[i];
	uint32_t crc = gw_crc32c(0, payload, len);
	memcpy(b->data + 12, &crc, 4);
}

static void load_corrupt(struct igb_dev *d, struct sriov_pf_agent *pf, const uint8_t *data,
			 size_t size)
{
	struct gw_buf b;
	gw_buf_init(&b);
	igb_dev_save(d, &b);
	corrupt(&b, data, size);
	igb_dev_load(d, b.data, b.len);
	gw_buf_release(&b);
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(pf, 0, &c);
	gw_buf_init(&b);
	sriov_vf_config_save(&c, &b);
	corrupt(&b, data, size);
	sriov_vf_config_load(&c, b.data, b.len);
	gw_buf_release(&b);
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct sriov_gen g;
	sriov_emul_gen(1 + (data[0] & 1), &g);
	struct sriov_pf_agent *pf;
	struct dma_map *dma;
	if (sriov_pf_agent_create(&g, 2, &pf))
		return 0;
	dma_map_create(&dma);
	dma_map_add(dma, 0x10000, sizeof(ram), ram, true);
	static const uint8_t mac[6] = {2, 1, 2, 3, 4, 5};
	sriov_pf_agent_set_mac(pf, 1, mac);
	struct sriov_vf_config before, after;
	sriov_pf_agent_vf_config(pf, 1, &before);
	struct igb_dev_io io = {.dma = dma};
	static struct igb_dev d;
	igb_dev_init(&d, "fuzz", &g, 0, pf, &io, regs);
	if (data[0] & 2)
		load_corrupt(&d, pf, data + 1, size - 1);
	size_t i = 1;
	while (i + 2 <= size) {
		uint8_t op = data[i++] % 3, n = data[i++];
		if (op == 0) {
			uint32_t msg[IGB_MBX_WORDS + 2] = {0}, reply[IGB_MBX_WORDS];
			unsigned len = n % (IGB_MBX_WORDS + 2);
			size_t bytes = len * 4u < size - i ? len * 4u : size - i;
			memcpy(msg, data + i, bytes);
			i += bytes;
			unsigned r = sriov_pf_agent_handle(pf, 0, msg, len, reply);
			if (r > IGB_MBX_WORDS)
				abort();
		} else if (op == 1 && i + 6 <= size) {
			uint32_t off, val;
			memcpy(&off, data + i, 2);
			memcpy(&val, data + i + 2, 4);
			i += 6;
			igb_dev_write(&d, (off & 0xFFFF) % (IGB_VF_BAR0_SIZE + 8), val,
				      (n & 1) ? 4 : 8);
			igb_dev_read(&d, IGB_V2PMBX, 4);
		} else {
			igb_dev_process(&d, 4);
		}
	}
	sriov_pf_agent_vf_config(pf, 1, &after);
	if (memcmp(&before, &after, sizeof(before)) != 0)
		abort();
	igb_dev_fini(&d);
	dma_map_destroy(dma);
	sriov_pf_agent_destroy(pf);
	return 0;
}
