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

static uint32_t rx_buf_size(uint32_t srrctl)
{
	return (srrctl & IGB_SRRCTL_BSIZEPKT_MASK) * 1024u;
}

/* Datasheet 8.10 (RX) and 8.12 (TX): a block per queue; SRRCTL exists for RX only. */
const struct sriov_queue_layout igb_vf_queue_layout = {
    .name = "igb-vf",
    .ring = &igb_adv_ring_ops,
    .base = {IGB_RXQ_BASE, IGB_TXQ_BASE},
    .stride = IGB_QSTRIDE,
    .max_queues = IGB_VF_MAX_QUEUES,
    .first_page = IGB_RXQ_BASE / 4096u,
    .last_page = (IGB_TXQ_BASE + IGB_QSTRIDE * IGB_VF_MAX_QUEUES - 1) / 4096u,
    .reg =
	{
	    [SRIOV_QREG_BASE_LO] = IGB_Q_BAL,
	    [SRIOV_QREG_BASE_HI] = IGB_Q_BAH,
	    [SRIOV_QREG_LEN] = IGB_Q_LEN,
	    [SRIOV_QREG_HEAD] = IGB_Q_HEAD,
	    [SRIOV_QREG_TAIL] = IGB_Q_TAIL,
	    [SRIOV_QREG_CTL] = IGB_Q_DCTL,
	    [SRIOV_QREG_BUFSZ] = IGB_Q_SRRCTL,
	},
    .ctl_enable = IGB_XDCTL_ENABLE,
    .len_mask = IGB_Q_LEN_MASK,
    .align = IGB_RING_ALIGN,
    .prog =
	{
	    {IGB_Q_BAL, IGB_Q_BAH, IGB_Q_LEN, IGB_Q_SRRCTL, IGB_Q_HEAD, IGB_Q_DCTL},
	    {IGB_Q_BAL, IGB_Q_BAH, IGB_Q_LEN, IGB_Q_HEAD, IGB_Q_DCTL},
	},
    .nprog = {6, 5},
    .reset_reg = IGB_CTRL,
    .reset_bit = IGB_CTRL_RST,
    .rx_buf_size = rx_buf_size,
};
