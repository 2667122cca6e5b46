/* SPDX-License-Identifier: Apache-2.0 */
/* The igb advanced descriptor formats (82576 datasheet 7.1.5, 7.2.2) as dma/ needs them. */
#include "godwit/igb_ring.h"

#include "godwit/igb_vf.h"

static uint64_t rx_buf(const void *d)
{
	return ((const union igb_rx_desc *)d)->read.pkt_addr;
}

static void rx_set_buf(void *d, uint64_t iova)
{
	((union igb_rx_desc *)d)->read.pkt_addr = iova;
}

static int rx_len(const void *d)
{
	const union igb_rx_desc *r = d;
	return (r->wb.status & IGB_RXD_STAT_DD) ? r->wb.length : -1;
}

static bool tx_done(const void *d)
{
	return (((const union igb_tx_desc *)d)->wb.status & IGB_TXD_STAT_DD) != 0;
}

const struct dma_ring_ops igb_adv_ring_ops = {
    .name = "igb-adv",
    .desc_size = 16,
    .rx_buf_addr = rx_buf,
    .rx_set_buf_addr = rx_set_buf,
    .rx_done_len = rx_len,
    .tx_done = tx_done,
};
