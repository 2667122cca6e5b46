/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of sriov/: the backend ops table and the VF object shared by vf.c and backends. */
#ifndef GODWIT_SRIOV_PRIV_H
#define GODWIT_SRIOV_PRIV_H

#include <pthread.h>

#include "godwit/buf.h"
#include "godwit/dma.h"
#include "godwit/sriov.h"
#include "godwit/sriov_pf.h"

struct sriov_be;

/* What a backend does for a VF; vf.c does the PCI function, BAR mapping and MSI-X. */
struct sriov_backend_ops {
	const char *name;
	/* The form of the state save writes and load takes ("igb-vf": godwit's model of the igb
	 * VF, igb_dev.c), or NULL: state moves only between VFs of the same backend. */
	const char *state_format;
	/* Interrupts go from the device straight to the vectors' eventfds
	 * (sriov_vf_msix_eventfd), not through sriov_vf_raise_msix: vf.c masks a vector by
	 * taking its irqfd away. */
	bool msix_direct;
	int (*open)(struct sriov_vf *vf, const struct sriov_vf_config_spec *spec,
		    struct sriov_be **out);
	void (*close)(struct sriov_be *be);
	/* BAR0 page memory that may be mapped into the guest, or NULL (must trap). */
	void *(*bar0_page)(struct sriov_be *be, unsigned page);
	uint64_t (*read)(struct sriov_be *be, uint64_t off, unsigned size);
	void (*write)(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size);
	void (*set_msix)(struct sriov_be *be, bool on);
	void (*set_polling)(struct sriov_be *be, bool on); /* some doorbells are direct-mapped */
	/* Optional: the guest wrote the function's command register (bus master, memory). */
	void (*command)(struct sriov_be *be, uint16_t cmd);
	int (*run)(struct sriov_be *be, bool run); /* resume / quiesce (STOP) */
	int (*save)(struct sriov_be *be, struct gw_buf *out);
	int (*load)(struct sriov_be *be, const void *data, size_t len);
	/* The rest are optional (NULL: the backend has no such thing). */
	/* The VF lives here now, after a migration (its state loaded, or re-created on this
	 * generation): the network is told where its MAC went when it next runs. */
	void (*arrived)(struct sriov_be *be);
	void (*status)(struct sriov_be *be, struct sriov_vf_status *out);
	struct dma_map *(*dma)(struct sriov_be *be); /* the device's IOVA map */
	/* A reset of the function by the PF: begin (the driver is told to stop and reset) or
	 * end (it may go on); whether the driver has reset it since the beginning. */
	void (*pf_reset)(struct sriov_be *be, bool begin);
	bool (*pf_reset_seen)(struct sriov_be *be);
	void (*kick)(struct sriov_be *be); /* look for work now */
	/* A device that works by itself rather than in rounds of the VMM's (msix_direct):
	 * while a migration shadows its DMA, its interrupts come to the VMM first and it runs
	 * rounds of the DMA engine (sriov_vf_device_round) on them and on a timer. */
	void (*relay)(struct sriov_be *be, bool on);
	/* The device was re-created here from the source's record (a migration's destination):
	 * the guest's driver, waiting on its reset, is to find it done (RSTD). A backend whose
	 * device comes up that way by itself (emul: power-on) has none. */
	void (*recreated)(struct sriov_be *be);
	/* A PF the VMM does not drive (vfio: the host's PF driver): the source's record is
	 * replayed to it through the VF's mailbox before the guest runs again (mbx_replay.c).
	 * Without: the VMM's own PF agent takes the record as it is. */
	int (*replay)(struct sriov_be *be, const struct sriov_gen *g,
		      const struct sriov_vf_config *want, struct sriov_mbx_replay *out);
};

extern const struct sriov_backend_ops sriov_emul_ops;
extern const struct sriov_backend_ops sriov_vfio_ops;

/* Called by backends: an interrupt on MSI-X vector vec, or the INTx line (held back while
 * DMA shadowing has completions to copy first), and after every round of device work. */
void sriov_vf_raise_msix(struct sriov_vf *vf, unsigned vec);
/* The eventfd behind MSI-X vector vec (KVM's irqfd while the vector is unmasked). */
int sriov_vf_msix_eventfd(struct sriov_vf *vf, unsigned vec);
void sriov_vf_set_intx(struct sriov_vf *vf, bool level);
void sriov_vf_device_round(struct sriov_vf *vf);
void sriov_vf_mbx_exchange(struct sriov_vf *vf, bool on);
/* A backend whose mailbox's other end is a real PF (vfio) tells the VMM what it saw: a
 * request (ev->reply NULL: the VMM's verdict, SRIOV_MBX_DENY to answer it with a NACK
 * itself), the request with the PF's reply (recorded), or a reset of the function. */
enum sriov_mbx_verdict sriov_vf_mbx_event(struct sriov_vf *vf, const struct sriov_mbx_event *ev);
struct sriov_pf_agent *sriov_vf_agent(struct sriov_vf *vf);
const char *sriov_vf_name(const struct sriov_vf *vf);
struct hv_vm *sriov_vf_vm(struct sriov_vf *vf);

#endif
