/* SPDX-License-Identifier: Apache-2.0 */
/* The 82576's packet offloads: TX checksums, VLAN insertion and TCP segmentation, RX VLAN
 * stripping. Pure functions over a frame in memory. */
#ifndef GODWIT_SRIOV_IGB_OFFLOAD_H
#define GODWIT_SRIOV_IGB_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/igb_vf.h"

/* What the data descriptors of one frame asked for: the first one's command and olinfo, and
 * the context slot they name. */
struct igb_tx_req {
	const struct igb_tx_ctx *ctx;
	uint32_t cmd;	 /* cmd_type_len: TSE, VLE */
	uint32_t olinfo; /* olinfo_status: POPTS IXSM / TXSM */
};

/* Hands one finished frame to the wire; returns 0 when it went out. */
typedef int (*igb_tx_emit)(void *opaque, const uint8_t *frame, size_t len);

/*
 * Applies the offloads to the gathered frame pkt[0..len) (which it rewrites) and emits the
 * result: one frame, or one per MSS of payload with TSE. seg is scratch for one frame of at
 * most seg_size bytes. Returns how many frames were emitted, or -EINVAL when the context's
 * header lengths do not fit the frame (nothing is emitted: the frame is dropped).
 */
int igb_tx_offload(const struct igb_tx_req *rq, uint8_t *pkt, size_t len, uint8_t *seg,
		   size_t seg_size, igb_tx_emit emit, void *opaque);

/* Strips an 802.1Q tag in place: returns its TCI and shortens *len by 4, or -1 for a frame
 * without one. */
int igb_rx_strip_vlan(uint8_t *f, size_t *len);

#endif
