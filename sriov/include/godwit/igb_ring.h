/* SPDX-License-Identifier: Apache-2.0 */
/* The igb profile's descriptor ring format (advanced RX/TX descriptors) for dma/'s shadows. */
#ifndef GODWIT_IGB_RING_H
#define GODWIT_IGB_RING_H

#include "godwit/dma_shadow.h"

extern const struct dma_ring_ops igb_adv_ring_ops;

#endif
