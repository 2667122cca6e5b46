/* SPDX-License-Identifier: Apache-2.0 */
/* The 82576 VF register model: BAR0 semantics, mailbox hardware, RX/TX ring engines. */
#ifndef GODWIT_SRIOV_IGB_DEV_H
#define GODWIT_SRIOV_IGB_DEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwit/buf.h"
#include "godwit/dma.h"
#include "godwit/igb_vf.h"
#include "godwit/sriov_gen.h"
#include "godwit/sriov_pf.h"
#include "godwit/sriov_port.h"

/* What the model needs from whoever hosts it (the emul backend, or a unit test). */
struct igb_dev_io {
	struct dma_map *dma;
	struct sriov_port *port;
	void (*msix)(void *opaque, unsigned vec); /* an edge on an MSI-X vector */
	void (*intx)(void *opaque, bool level);	  /* the INTx line, when MSI-X is off */
	void (*kick)(void *opaque);		  /* wake the device thread */
	/* A mailbox exchange begins (the mailbox page must trap from now on) or has ended (it
	 * may be mapped again). Called with the device lock held, before the device sets any
	 * clear-on-read bit: those work only on a trapped page. */
	void (*mbx_xchg)(void *opaque, bool on);
	void *opaque;
};

struct igb_dev_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped, tx_bad_desc;
	uint64_t rx_frames, rx_bytes, rx_no_desc, rx_filtered, rx_too_long;
	uint64_t dma_faults, bad_reg_access, mbx_requests, resets;
	uint64_t irqs;		  /* MSI-X messages and INTx assertions */
	uint64_t mbx_exchanges;	  /* exchanges begun (each trapped the mailbox page) */
	uint64_t mbx_xchg_access; /* page-0 accesses that reached the device during one */
	uint64_t mbx_idle_access; /* ... and outside any (a trapped page 0 with nothing going on) */
	/* of mbx_xchg_access, reads of V2PMBX that found nothing new: the driver waiting for the
	 * PF's answer (as many as the answer's latency allows its polls) */
	uint64_t mbx_wait_polls;
};

struct igb_dev {
	pthread_mutex_t lock;
	char name[32];
	struct sriov_gen gen;
	unsigned vf;
	struct sriov_pf_agent *pf;
	struct igb_dev_io io;
	uint32_t *regs;	    /* the BAR0 image; pages of it may be mapped straight into the guest */
	uint32_t mbx;	    /* V2PMBX as the VF sees it */
	bool pf_req;	    /* the VF posted a request the PF has not read */
	bool pf_reply;	    /* the PF has a reply waiting for the buffer */
	bool xchg;	    /* a mailbox exchange is running */
	bool await_ack;	    /* the PF posted a message the VF has not acknowledged yet */
	bool pf_resetting;  /* RSTI: a reset of the function is in progress (RSTD withheld) */
	bool vf_reset_seen; /* the driver reset the function since pf_resetting began */
	uint32_t reply[IGB_MBX_WORDS];
	bool msix_enabled;
	bool intx_level;
	bool queue_error[2][IGB_VF_MAX_QUEUES]; /* [rx/tx][q]: stopped on a fatal ring error */
	bool pf_notice; /* the PF's "not clear to send" waits to be posted (PF reset begun) */
	struct igb_tx_ctx txctx[IGB_VF_MAX_QUEUES][2]; /* each TX queue's two context slots */
	struct igb_dev_stats st;
	uint8_t frame[IGB_MAX_FRAME + 4]; /* one frame on the wire (+ an inserted VLAN tag) */
	uint8_t txbuf[IGB_TSO_MAX];	  /* one frame as the TX descriptors gather it */
};

/* regs must hold IGB_VF_BAR0_SIZE bytes and stay valid for the device's life. */
int igb_dev_init(struct igb_dev *d, const char *name, const struct sriov_gen *gen, unsigned vf,
		 struct sriov_pf_agent *pf, const struct igb_dev_io *io, uint32_t *regs);
void igb_dev_fini(struct igb_dev *d);
/* BAR0 accesses from the guest. Anything but aligned 4- and 8-byte accesses is dropped. */
uint64_t igb_dev_read(struct igb_dev *d, uint64_t off, unsigned size);
void igb_dev_write(struct igb_dev *d, uint64_t off, uint64_t val, unsigned size);
/* One round of hardware work: the PF side of the mailbox, TX rings, then up to budget frames
 * from the port into RX rings. Returns how many things it did (0 = idle). */
unsigned igb_dev_process(struct igb_dev *d, unsigned budget);
/* Moves the frames already waiting on the port into the RX rings (while descriptors last),
 * as hardware empties its receive FIFO before it stops. */
unsigned igb_dev_rx_drain(struct igb_dev *d);
void igb_dev_set_msix(struct igb_dev *d, bool enabled);
/* The PF begins a reset of the function (RSTI, a mailbox interrupt): the driver is to stop
 * and reset; its CTRL.RST then clears the function but RSTD waits for igb_dev_pf_reset_end
 * (which a device re-created elsewhere never needs: it starts with RSTD). */
void igb_dev_pf_reset_begin(struct igb_dev *d);
void igb_dev_pf_reset_end(struct igb_dev *d);
/* The driver has reset the function (so it stopped its DMA) since the reset began. */
bool igb_dev_pf_reset_seen(struct igb_dev *d);
/* The PF resets the VF (function-level reset or CTRL.RST). */
void igb_dev_reset(struct igb_dev *d);
/* Device state for migration: registers, mailbox, interrupt state, PF-side settings. */
int igb_dev_save(struct igb_dev *d, struct gw_buf *out);
/* The same state for an igb VF that is not this model (a real one, its registers read while
 * its queues were stopped: vfio.c), of generation gen: regs as the VF's BAR0 (the registers
 * it has not read are 0), the mailbox idle, no TX offload context cached. This model loads it
 * as its own. */
int igb_dev_regs_save(const struct sriov_gen *gen, const uint32_t *regs, struct gw_buf *out);
/* -EPROTO (version), -EBADMSG (malformed), -EINVAL (another generation). */
int igb_dev_load(struct igb_dev *d, const void *data, size_t len);
void igb_dev_get_stats(struct igb_dev *d, struct igb_dev_stats *out);

#endif
