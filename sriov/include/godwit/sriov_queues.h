/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device profile's queue registers, described for the vendor-neutral code that handles a
 * VF's rings (sriov/src/vf_dma.c): where each queue's register block lies in BAR0, which
 * register of a block holds what, and the ring format. A profile (igb_ring.c) fills one in.
 */
#ifndef GODWIT_SRIOV_QUEUES_H
#define GODWIT_SRIOV_QUEUES_H

#include <stdbool.h>
#include <stdint.h>

#include "godwit/dma_shadow.h"

/* The registers of one queue's block. */
enum sriov_qreg {
	SRIOV_QREG_BASE_LO, /* ring base address, low and high halves */
	SRIOV_QREG_BASE_HI,
	SRIOV_QREG_LEN,	  /* ring length in bytes (len_mask) */
	SRIOV_QREG_HEAD,  /* the device's next descriptor */
	SRIOV_QREG_TAIL,  /* the driver's doorbell */
	SRIOV_QREG_CTL,	  /* queue control: ctl_enable */
	SRIOV_QREG_BUFSZ, /* RX: the receive buffer size (rx_buf_size) */
	SRIOV_QREG_N,
};

#define SRIOV_QPROG_MAX 8u

struct sriov_queue_layout {
	const char *name;
	const struct dma_ring_ops *ring; /* descriptor format */
	uint32_t base[2];		 /* queue 0's block: [0] RX, [1] TX */
	uint32_t stride;		 /* from one queue's block to the next */
	unsigned max_queues;		 /* blocks per direction */
	unsigned first_page, last_page;	 /* the BAR0 pages that hold every block */
	uint32_t reg[SRIOV_QREG_N];	 /* offsets within a block */
	uint32_t ctl_enable;		 /* the CTL bit that enables the queue */
	uint32_t len_mask;		 /* the LEN bits that hold the ring's bytes */
	uint32_t align;			 /* ring base alignment */
	/* The registers a driver sets a ring up with, per direction, in the order they reach
	 * the device when writes held back meanwhile are let through. */
	uint32_t prog[2][SRIOV_QPROG_MAX];
	unsigned nprog[2];
	/* A write of reset_bit to reset_reg resets the function: every queue is cleared. */
	uint32_t reset_reg, reset_bit;
	/* RX buffer bytes from the BUFSZ register's value; 0 when it names none. */
	uint32_t (*rx_buf_size)(uint32_t bufsz);
};

/* The BAR0 offset of register reg (an offset within a block) of queue q. */
static inline uint32_t sriov_queue_off(const struct sriov_queue_layout *l, bool tx, unsigned q,
				       uint32_t reg)
{
	return l->base[tx] + l->stride * q + reg;
}

/* Whether BAR0 offset off is in one of the max_queues blocks of either direction; if so,
 * which direction, queue and offset within the block. */
static inline bool sriov_queue_decode(const struct sriov_queue_layout *l, uint64_t off, bool *tx,
				      unsigned *q, uint32_t *reg)
{
	for (int t = 0; t < 2; t++) {
		if (off >= l->base[t] && off - l->base[t] < (uint64_t)l->stride * l->max_queues) {
			*tx = t != 0;
			*q = (unsigned)((off - l->base[t]) / l->stride);
			*reg = (uint32_t)((off - l->base[t]) % l->stride);
			return true;
		}
	}
	return false;
}

/* Index of reg among the direction's ring-setup registers, or -1. */
static inline int sriov_queue_prog_index(const struct sriov_queue_layout *l, bool tx, uint32_t reg)
{
	for (unsigned i = 0; i < l->nprog[tx]; i++)
		if (l->prog[tx][i] == reg)
			return (int)i;
	return -1;
}

#endif
