/* SPDX-License-Identifier: Apache-2.0 */
/* The igb profile's rings: the advanced RX/TX descriptor format for dma/'s shadows, and the
 * VF's queue-register layout for the vendor-neutral code (sriov_queues.h). */
#ifndef GODWIT_IGB_RING_H
#define GODWIT_IGB_RING_H

#include "godwit/dma_shadow.h"
#include "godwit/sriov_queues.h"

extern const struct dma_ring_ops igb_adv_ring_ops;
extern const struct sriov_queue_layout igb_vf_queue_layout;

#endif
