/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VF as the guest sees it: a PCI function with BAR0 (registers) and BAR3 (MSI-X table and
 * PBA, PCI Local Bus spec 3.0 section 6.8.2), INTx as the fallback, and page-by-page choice
 * between mapping BAR0 pages straight into the guest and trapping them. The backend behind
 * it does the device's work.
 */
#include "sriov_priv.h"
#include "vf_dma.h"

#include "godwit/deadline.h"
#include "godwit/fields.h"
#include "godwit/hv.h"
#include "godwit/igb_ring.h"
#include "godwit/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MSIX_CAP	 0x70u
#define VF_STATE_MAGIC	 GW_FOURCC('G', 'V', 'F', 'S')
#define VF_STATE_VER	 4 /* 2: the mailbox record travels with the VF; 3: flags; 4: fields */
#define BAR0_PAGES	 (IGB_VF_BAR0_SIZE / 4096u)
#define CMD_MEM		 0x0002u
#define CMD_INTX_OFF	 0x0400u
#define MSIX_ENABLE	 0x8000u
#define MSIX_FN_MASK	 0x4000u
#define MBX_REMAPS_PER_S 64u

static const struct sriov_backend_ops *const backends[] = {&sriov_emul_ops, &sriov_vfio_ops};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct sriov_vf {
	char name[16];
	struct hv_vm *vm;
	const struct sriov_backend_ops *ops;
	struct sriov_be *be;
	struct sriov_pf_agent *agent;
	struct sriov_vf_config_spec spec;
	unsigned bdf, gsi;
	pthread_mutex_t lock; /* BAR placement, MSI-X table, INTx */
	uint64_t bar0, bar3;  /* where they are mapped now; 0 = not decoded */
	enum sriov_page_mode mode[BAR0_PAGES];
	int slot[BAR0_PAGES];
	struct msix_entry msix[IGB_VF_MSIX_VECS];
	uint32_t pba;
	int msix_gsi[IGB_VF_MSIX_VECS];
	int msix_fd[IGB_VF_MSIX_VECS];
	bool msix_irqfd[IGB_VF_MSIX_VECS]; /* the vector's eventfd is KVM's irqfd now */
	uint16_t msgctl, cmd;
	bool intx_level;
	uint64_t trapped;
	struct vf_dma *dma;
	bool recreate; /* quiesced for re-creation elsewhere: no device state in vf_save */
	uint64_t recreate_quiesces;
	uint64_t mbx_window_ms; /* rate limit on remapping the mailbox page (device lock) */
	unsigned mbx_remaps;
	pthread_mutex_t rec_lock;
	struct sriov_mbx_record rec; /* what the mailbox exchanges configured (docs/devices.md) */
	/* The guest's configuration when the VMM began the reset that quiesced the VF for
	 * re-creation: the reset clears the PF's copy (and the record with it), but this is what
	 * the destination's PF is to hold (rec_lock). */
	struct sriov_vf_config carried;
	bool have_carried;
};

const char *sriov_vf_name(const struct sriov_vf *vf)
{
	return vf->name;
}

struct hv_vm *sriov_vf_vm(struct sriov_vf *vf)
{
	return vf->vm;
}

struct sriov_pf_agent *sriov_vf_agent(struct sriov_vf *vf)
{
	return vf->agent;
}

struct sriov_pf_agent *sriov_vf_pf_agent(struct sriov_vf *vf)
{
	return vf->agent;
}

/* Caller holds vf->lock. */
static void msix_fire_locked(struct sriov_vf *vf, unsigned vec)
{
	if ((vf->msgctl & MSIX_FN_MASK) || (vf->msix[vec].ctrl & 1) || vf->msix_gsi[vec] < 0) {
		vf->pba |= 1u << vec; /* pending until unmasked */
		return;
	}
	vf->pba &= ~(1u << vec);
	uint64_t one = 1;
	if (write(vf->msix_fd[vec], &one, sizeof(one)) != sizeof(one))
		GW_WARN(vf->name, "MSI-X vector %u lost: %s", vec, strerror(errno));
}

static void msix_now(struct sriov_vf *vf, unsigned vec)
{
	if (vec >= IGB_VF_MSIX_VECS)
		return;
	pthread_mutex_lock(&vf->lock);
	msix_fire_locked(vf, vec);
	pthread_mutex_unlock(&vf->lock);
}

static void intx_now(struct sriov_vf *vf, bool level)
{
	pthread_mutex_lock(&vf->lock);
	vf->intx_level = level;
	bool line = level && !(vf->cmd & CMD_INTX_OFF);
	/* Status bit 3 shows the function's interrupt state whatever the disable bit says. */
	uint16_t st = (uint16_t)hv_pci_cfg_get(vf->vm, vf->bdf, 0x06, 2);
	st = (uint16_t)(level ? (st | 0x08) : (st & ~0x08));
	hv_pci_cfg_put(vf->vm, vf->bdf, 0x06, st, 2);
	pthread_mutex_unlock(&vf->lock);
	hv_vm_irq_line(vf->vm, vf->gsi, line);
}

void sriov_vf_raise_msix(struct sriov_vf *vf, unsigned vec)
{
	if (vec < IGB_VF_MSIX_VECS && !vf_dma_defer_msix(vf->dma, vec))
		msix_now(vf, vec);
}

void sriov_vf_set_intx(struct sriov_vf *vf, bool level)
{
	if (!vf_dma_defer_intx(vf->dma, level))
		intx_now(vf, level);
}

/* Caller holds vf->lock. Keeps the vector's GSI route equal to its table entry. */
static void msix_route_locked(struct sriov_vf *vf, unsigned vec)
{
	const struct msix_entry *e = &vf->msix[vec];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;
	if (vf->msix_gsi[vec] >= 0)
		hv_vm_msi_route_update(vf->vm, (unsigned)vf->msix_gsi[vec], addr, e->data);
}

/* Caller holds vf->lock. For a backend whose device signals the eventfds itself: the vector's
 * irqfd exists exactly while the vector is enabled and unmasked. What the device signals
 * meanwhile stays in the eventfd, and KVM delivers it when the irqfd comes back (it looks for
 * a pending count on assignment): the pending bit of PCI 3.0 6.8.2.9. */
static void msix_direct_sync_locked(struct sriov_vf *vf)
{
	if (!vf->ops->msix_direct)
		return;
	bool on = (vf->msgctl & MSIX_ENABLE) && !(vf->msgctl & MSIX_FN_MASK);
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		bool want = on && !(vf->msix[v].ctrl & 1) && vf->msix_gsi[v] >= 0;
		if (want == vf->msix_irqfd[v])
			continue;
		int rc = hv_vm_irqfd(vf->vm, vf->msix_fd[v], (unsigned)vf->msix_gsi[v], want);
		if (rc)
			GW_WARN(vf->name, "MSI-X vector %u: cannot %s its irqfd: %s", v,
				want ? "assign" : "remove", strerror(-rc));
		else
			vf->msix_irqfd[v] = want;
	}
}

/* Caller holds vf->lock. The pending bits: for a direct backend, masked vectors whose
 * eventfd holds a count. */
static uint32_t msix_pba_locked(struct sriov_vf *vf)
{
	if (!vf->ops->msix_direct)
		return vf->pba;
	uint32_t pba = 0;
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		struct pollfd p = {.fd = vf->msix_fd[v], .events = POLLIN};
		if (!vf->msix_irqfd[v] && poll(&p, 1, 0) == 1)
			pba |= 1u << v;
	}
	return pba;
}

int sriov_vf_msix_eventfd(struct sriov_vf *vf, unsigned vec)
{
	return vec < IGB_VF_MSIX_VECS ? vf->msix_fd[vec] : -1;
}

static void bar3_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
		      unsigned size)
{
	(void)vcpu;
	struct sriov_vf *vf = opaque;
	*val = 0;
	if (size != 4 || (off & 3))
		return;
	pthread_mutex_lock(&vf->lock);
	vf->trapped++;
	if (off < sizeof(vf->msix))
		memcpy(val, (const uint8_t *)vf->msix + off, 4);
	else if (off == IGB_VF_MSIX_PBA)
		*val = msix_pba_locked(vf);
	pthread_mutex_unlock(&vf->lock);
}

static void bar3_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
		       unsigned size)
{
	(void)vcpu;
	struct sriov_vf *vf = opaque;
	if (size != 4 || (off & 3) || off >= sizeof(vf->msix))
		return; /* the PBA is read-only; the rest of the BAR is reserved */
	pthread_mutex_lock(&vf->lock);
	vf->trapped++;
	unsigned vec = (unsigned)off / 16;
	uint32_t v = (uint32_t)val;
	if ((off & 15) == 12)
		v &= 1; /* vector control: only the mask bit */
	memcpy((uint8_t *)vf->msix + off, &v, 4);
	if ((off & 15) != 12)
		msix_route_locked(vf, vec);
	else if (!(v & 1) && (vf->pba & (1u << vec)))
		msix_fire_locked(vf, vec);
	msix_direct_sync_locked(vf);
	pthread_mutex_unlock(&vf->lock);
}

static const struct hv_io_ops bar3_io = {.read = bar3_read, .write = bar3_write};

static void bar0_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
		      unsigned size)
{
	(void)vcpu;
	struct sriov_vf *vf = opaque;
	__atomic_add_fetch(&vf->trapped, 1, __ATOMIC_RELAXED);
	if (!vf_dma_bar0_read(vf->dma, off, size, val))
		*val = vf->ops->read(vf->be, off, size);
}

static void bar0_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
		       unsigned size)
{
	(void)vcpu;
	struct sriov_vf *vf = opaque;
	__atomic_add_fetch(&vf->trapped, 1, __ATOMIC_RELAXED);
	if (!vf_dma_bar0_write(vf->dma, off, val, size))
		vf->ops->write(vf->be, off, val, size);
}

static const struct hv_io_ops bar0_io = {.read = bar0_read, .write = bar0_write};

/* Caller holds vf->lock. Direct pages are memslots over the backend's page; the rest of
 * BAR0 stays on the MMIO bus, where KVM sends every access that no memslot covers. */
static void bar0_unplace(struct sriov_vf *vf)
{
	if (!vf->bar0)
		return;
	for (unsigned p = 0; p < BAR0_PAGES; p++) {
		if (vf->slot[p] >= 0)
			hv_vm_unmap(vf->vm, vf->slot[p]);
		vf->slot[p] = -1;
	}
	hv_bus_unregister(hv_vm_mmio_bus(vf->vm), vf->bar0);
	vf->bar0 = 0;
}

static int bar0_place(struct sriov_vf *vf, uint64_t gpa)
{
	int rc =
	    hv_bus_register(hv_vm_mmio_bus(vf->vm), gpa, IGB_VF_BAR0_SIZE, &bar0_io, vf, vf->name);
	if (rc)
		return rc;
	vf->bar0 = gpa;
	bool polling = false;
	for (unsigned p = 0; p < BAR0_PAGES; p++) {
		void *hva = vf->ops->bar0_page(vf->be, p);
		if (vf->mode[p] == SRIOV_PAGE_TRAP || !hva)
			continue;
		int h =
		    hv_vm_map(vf->vm, gpa + 4096ull * p, 4096, hva, vf->mode[p] == SRIOV_PAGE_READ);
		if (h < 0) {
			GW_WARN(vf->name, "BAR0 page %u stays trapped: %s", p, strerror(-h));
			continue;
		}
		vf->slot[p] = h;
		polling |= vf->mode[p] == SRIOV_PAGE_DIRECT; /* writes that never exit */
	}
	vf->ops->set_polling(vf->be, polling);
	return 0;
}

static void bars_update_locked(struct sriov_vf *vf)
{
	bool mem = (vf->cmd & CMD_MEM) != 0;
	uint64_t b0 = mem ? hv_pci_cfg_get(vf->vm, vf->bdf, 0x10, 4) & ~0xFull : 0;
	uint64_t b3 = mem ? hv_pci_cfg_get(vf->vm, vf->bdf, 0x1C, 4) & ~0xFull : 0;
	/* A BAR being sized (all ones) or parked at 0 decodes nothing. */
	if (b0 >= HV_ECAM_BASE)
		b0 = 0;
	if (b3 >= HV_ECAM_BASE)
		b3 = 0;
	if (b0 != vf->bar0) {
		bar0_unplace(vf);
		if (b0 && bar0_place(vf, b0))
			GW_WARN(vf->name, "BAR0 at %#llx overlaps another range; not decoded",
				(unsigned long long)b0);
	}
	if (b3 != vf->bar3) {
		if (vf->bar3)
			hv_bus_unregister(hv_vm_mmio_bus(vf->vm), vf->bar3);
		vf->bar3 = 0;
		if (b3 && hv_bus_register(hv_vm_mmio_bus(vf->vm), b3, IGB_VF_BAR3_SIZE, &bar3_io,
					  vf, vf->name) == 0)
			vf->bar3 = b3;
	}
}

static void cfg_written(void *opaque, unsigned reg, unsigned size)
{
	struct sriov_vf *vf = opaque;
	/* A space loaded from another generation's function (a re-created device) keeps this
	 * function's identity. */
	if (reg == 0 && size == 4096)
		hv_pci_cfg_put(vf->vm, vf->bdf, 0x08, sriov_pf_agent_gen(vf->agent)->revision, 1);
	pthread_mutex_lock(&vf->lock);
	vf->cmd = (uint16_t)hv_pci_cfg_get(vf->vm, vf->bdf, 0x04, 2);
	uint16_t old = vf->msgctl;
	vf->msgctl = (uint16_t)hv_pci_cfg_get(vf->vm, vf->bdf, MSIX_CAP + 2, 2);
	bars_update_locked(vf);
	bool unmasked = (old & MSIX_FN_MASK) && !(vf->msgctl & MSIX_FN_MASK);
	for (unsigned v = 0; unmasked && v < IGB_VF_MSIX_VECS; v++)
		if (vf->pba & (1u << v))
			msix_fire_locked(vf, v);
	bool level = vf->intx_level && !(vf->cmd & CMD_INTX_OFF);
	uint16_t cmd = vf->cmd;
	bool msix = (vf->msgctl & MSIX_ENABLE) != 0;
	pthread_mutex_unlock(&vf->lock);
	hv_vm_irq_line(vf->vm, vf->gsi, level);
	if (vf->ops->command)
		vf->ops->command(vf->be, cmd);
	vf->ops->set_msix(vf->be, msix);
	pthread_mutex_lock(&vf->lock);
	msix_direct_sync_locked(vf);
	pthread_mutex_unlock(&vf->lock);
}

static const struct hv_pci_dev_ops vf_pci_ops = {.cfg_written = cfg_written};

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Configuration space of an 82576 VF as a VMM presents it (datasheet 9.7). */
static void cfg_init(struct sriov_vf *vf, const struct sriov_gen *g, uint8_t *cfg, uint8_t *wm)
{
	put16(&cfg[0x00], g->vendor);
	put16(&cfg[0x02], g->device);
	put16(&cfg[0x06], 0x0010); /* capability list */
	cfg[0x08] = g->revision;
	cfg[0x0B] = 0x02; /* network controller, ethernet */
	put32(&cfg[0x10], (uint32_t)hv_pci_alloc_mmio(vf->vm, IGB_VF_BAR0_SIZE));
	put32(&cfg[0x1C], (uint32_t)hv_pci_alloc_mmio(vf->vm, IGB_VF_BAR3_SIZE));
	put16(&cfg[0x2C], g->subsys_vendor);
	put16(&cfg[0x2E], g->subsys_device);
	cfg[0x34] = MSIX_CAP;
	cfg[0x3C] = (uint8_t)vf->gsi;
	cfg[0x3D] = vf->ops->msix_direct ? 0 : 1; /* INTA#; a real VF has none (SR-IOV 3.5.5) */
	cfg[MSIX_CAP] = 0x11;
	put16(&cfg[MSIX_CAP + 2], IGB_VF_MSIX_VECS - 1);
	put32(&cfg[MSIX_CAP + 4], 3);			/* table at BAR3 + 0 */
	put32(&cfg[MSIX_CAP + 8], IGB_VF_MSIX_PBA | 3); /* PBA at BAR3 + 0x2000 */
	put16(&wm[0x04], CMD_MEM | 0x0004 | 0x0100 | CMD_INTX_OFF);
	put32(&wm[0x10], ~(IGB_VF_BAR0_SIZE - 1));
	put32(&wm[0x1C], ~(IGB_VF_BAR3_SIZE - 1));
	wm[0x3C] = 0xFF;
	put16(&wm[MSIX_CAP + 2], MSIX_ENABLE | MSIX_FN_MASK);
}

/* What the VF saves of its own. Its section is followed by the recorded configuration's
 * (sriov_vf_config_save) and, unless the device is re-created, by the backend's state. */
struct vf_state {
	struct msix_entry msix[IGB_VF_MSIX_VECS];
	uint32_t pba;
	bool intx_level;
	bool recreate; /* no device state follows: re-create the device from the record */
	uint64_t exchanges, nacked, denied;
	char backend[8]; /* the backend's name, NUL-padded */
	char format[8];	 /* its state's form (sriov_backend_ops.state_format), NUL-padded */
};
/* The MSI-X table travels as the guest wrote it: 4 dwords an entry (PCI 3.0 6.8.2). */
_Static_assert(sizeof(struct msix_entry) == 16, "MSI-X table entry");

/* Field ids are part of the format (docs/state-format.md): never renumber, only add. */
static const struct gw_field vf_state_fields[] = {
    GW_FIELD(1, struct vf_state, msix, 0),
    GW_FIELD(2, struct vf_state, pba, 0),
    GW_FIELD(3, struct vf_state, intx_level, GW_FIELD_BOOL),
    GW_FIELD(4, struct vf_state, recreate, GW_FIELD_BOOL),
    GW_FIELD(5, struct vf_state, exchanges, 0),
    GW_FIELD(6, struct vf_state, nacked, 0),
    GW_FIELD(7, struct vf_state, denied, 0),
    GW_FIELD(8, struct vf_state, backend, 0),
    GW_FIELD(9, struct vf_state, format, GW_FIELD_OPTIONAL),
};

static const struct gw_fields vf_state_table =
    GW_FIELDS_TABLE("vf", VF_STATE_MAGIC, VF_STATE_VER, struct vf_state, vf_state_fields);

static int vf_save(void *opaque, struct gw_buf *out)
{
	struct sriov_vf *vf = opaque;
	struct vf_state st = {0};
	pthread_mutex_lock(&vf->lock);
	memcpy(st.msix, vf->msix, sizeof(st.msix));
	st.pba = vf->pba;
	st.intx_level = vf->intx_level;
	st.recreate = vf->recreate;
	pthread_mutex_unlock(&vf->lock);
	/* The configuration the VMM recorded from the mailbox, for the destination's PF; as it
	 * was before the reset, for a VF quiesced for re-creation. */
	pthread_mutex_lock(&vf->rec_lock);
	struct sriov_vf_config cfg = st.recreate && vf->have_carried ? vf->carried : vf->rec.cfg;
	st.exchanges = vf->rec.exchanges;
	st.nacked = vf->rec.nacked;
	st.denied = vf->rec.denied;
	pthread_mutex_unlock(&vf->rec_lock);
	memcpy(st.backend, vf->ops->name, strnlen(vf->ops->name, sizeof(st.backend)));
	if (vf->ops->state_format)
		memcpy(st.format, vf->ops->state_format,
		       strnlen(vf->ops->state_format, sizeof(st.format)));
	int rc = gw_fields_save(&vf_state_table, &st, out);
	if (rc == 0)
		rc = sriov_vf_config_save(&cfg, out);
	/* Quiesced for another generation: its state structures stay behind (docs/devices.md). */
	if (rc || st.recreate)
		return rc;
	return vf->ops->save(vf->be, out);
}

/* Replay: this host's PF has never seen the VF's exchanges; before the guest runs again it
 * takes on what the source's acknowledged. A PF the VMM does not drive hears it through the
 * VF's mailbox, and what it refuses (its administrator's settings) stays refused: the record
 * then says what it holds. */
static int vf_replay(struct sriov_vf *vf, struct sriov_mbx_record *rec)
{
	const char *to = "the PF agent";
	/* trust=off here: what the guest may not set on this NIC is not set for it by the
	 * stream either (the source may have trusted it, or lied). */
	if (vf->spec.untrusted) {
		char what[120];
		pthread_mutex_lock(&vf->rec_lock);
		uint8_t admin[6];
		memcpy(admin, vf->rec.admin_mac, 6);
		pthread_mutex_unlock(&vf->rec_lock);
		if (sriov_vf_config_untrusted(&rec->cfg, admin, what, sizeof(what)))
			GW_WARN(vf->name, "not replayed, the NIC is not trusted: %s", what);
	}
	if (vf->ops->replay) {
		struct sriov_mbx_replay rp;
		int rc = vf->ops->replay(vf->be, sriov_pf_agent_gen(vf->agent), &rec->cfg, &rp);
		if (rc) {
			GW_ERR(vf->name,
			       "cannot replay the VF's configuration to this host's PF: %s (is its "
			       "PF driver loaded and the PF up?)",
			       rp.error);
			return rc;
		}
		if (rp.refused)
			GW_WARN(vf->name,
				"this host's PF refused %s: its administrator's settings stand",
				rp.refusals);
		rp.rec.cfg.requests = rec->cfg.requests;
		rp.rec.cfg.nacks = rec->cfg.nacks;
		rec->cfg = rp.rec.cfg;
		to = "the PF through the VF's mailbox";
	}
	int rc = sriov_pf_agent_put_vf_config(vf->agent, vf->spec.vf, &rec->cfg);
	if (rc)
		return rc;
	pthread_mutex_lock(&vf->rec_lock);
	memcpy(rec->admin_mac, vf->rec.admin_mac, 6); /* this host's, for a later VF reset */
	vf->rec = *rec;
	pthread_mutex_unlock(&vf->rec_lock);
	char mac[18];
	sriov_mac_format(rec->cfg.mac, mac);
	GW_INFO(vf->name,
		"replayed the recorded VF configuration to %s: MAC %s, %u VLANs, %u multicast "
		"hashes, max frame %u, API %s",
		to, mac, rec->cfg.nvlans, rec->cfg.nmc,
		rec->cfg.max_frame ? rec->cfg.max_frame : 1518,
		rec->cfg.api == IGB_API_11 ? "1.1" : "1.0");
	return 0;
}

static int vf_load(void *opaque, const void *data, size_t len)
{
	struct sriov_vf *vf = opaque;
	struct gw_rd rd, cfg;
	struct vf_state st = {0};
	struct sriov_mbx_record rec = {0};
	gw_rd_init(&rd, data, len);
	int rc = gw_fields_load(&vf_state_table, &rd, &st);
	if (rc)
		return rc;
	if (gw_sect_take(&rd, &cfg))
		return -EBADMSG;
	/* Device state loads only where its form is known: into a backend that saves the same
	 * form (a VFIO VF's registers into the emulated model of the same VF, say), else into the
	 * backend that saved it. A re-created VF carries none, so it moves between any. */
	const char *fmt = vf->ops->state_format ? vf->ops->state_format : "";
	if (!st.recreate && (st.format[0] ? strncmp(st.format, fmt, sizeof(st.format))
					  : strncmp(st.backend, vf->ops->name, sizeof(st.backend))))
		return -EINVAL;
	rc = sriov_vf_config_load(&rec.cfg, cfg.p, cfg.left);
	if (rc) {
		GW_ERR(vf->name,
		       "the VF configuration in the migration stream is malformed or holds a "
		       "setting no PF acknowledges (a multicast or zero MAC, a VLAN past 4095, too "
		       "many filters, a frame size or mailbox API out of range): refused");
		return rc;
	}
	rec.exchanges = st.exchanges;
	rec.nacked = st.nacked;
	rec.denied = st.denied;
	if (st.recreate) {
		/* Re-created here: the device starts from reset (RSTD waiting for the driver,
		 * which the source left waiting for just that) on this host's generation. */
		if (rd.left)
			return -EBADMSG;
		GW_INFO(vf->name,
			"re-created from the source's record on this generation (gen%u): the guest "
			"driver renegotiates",
			sriov_pf_agent_gen(vf->agent)->gen);
		if (vf->ops->recreated)
			vf->ops->recreated(vf->be);
	} else {
		rc = vf->ops->load(vf->be, rd.p, rd.left);
		if (rc)
			return rc;
	}
	/* Either way the MAC lives here now: a re-created VF's driver has nothing to say to the
	 * network (Linux's igbvf sends no frame of its own when it renegotiates), so the VMM
	 * announces, as it does for a VF whose state moved. */
	if (vf->ops->arrived)
		vf->ops->arrived(vf->be);
	rc = vf_replay(vf, &rec);
	if (rc)
		return rc;
	pthread_mutex_lock(&vf->lock);
	memcpy(vf->msix, st.msix, sizeof(st.msix));
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		vf->msix[v].ctrl &= 1;
		msix_route_locked(vf, v);
	}
	vf->pba = st.pba & ((1u << IGB_VF_MSIX_VECS) - 1);
	/* A direct backend's vectors reach KVM through irqfds assigned per unmasked vector:
	 * the configuration space may have been loaded before this table was. */
	msix_direct_sync_locked(vf);
	pthread_mutex_unlock(&vf->lock);
	sriov_vf_set_intx(vf, st.intx_level);
	return 0;
}

static int vf_quiesce(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return vf_dma_quiesce(vf->dma);
}

static int vf_resume(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return vf_dma_resume(vf->dma);
}

static void emulated_write(void *opaque, uint64_t iova, uint64_t len)
{
	struct sriov_vf *vf = opaque;
	hv_dirty_mark(vf->vm, iova, len); /* IOVA is guest-physical */
	hv_dirty_dma_account(vf->vm, (iova + len - 1) / 4096 - iova / 4096 + 1, 0);
}

/* Real DMA tells dirty tracking nothing: the migration's DMA mode (dma/) makes it visible.
 * An emulated backing is the VMM's own device: it marks what it writes itself. */
static void vf_dirty_start(void *opaque)
{
	struct sriov_vf *vf = opaque;
	if (!vf->ops->dma) {
		GW_WARN(vf->name,
			"the %s backend's DMA is not tracked: its writes stay invisible "
			"to the dirty log",
			vf->ops->name);
		return;
	}
	if (vf->spec.emulated) {
		dma_map_set_write_hook(vf->ops->dma(vf->be), emulated_write, vf);
		return;
	}
	if (vf->ops->relay && hv_dirty_dma_mode(vf->vm) == DMA_MODE_SHADOW)
		vf->ops->relay(vf->be, true); /* before the queues move to shadow rings */
	vf_dma_log_start(vf->dma);
}

static void vf_dirty_stop(void *opaque)
{
	struct sriov_vf *vf = opaque;
	if (!vf->ops->dma)
		return;
	if (vf->spec.emulated) {
		dma_map_set_write_hook(vf->ops->dma(vf->be), NULL, NULL);
		return;
	}
	vf_dma_log_stop(vf->dma);
	if (vf->ops->relay)
		vf->ops->relay(vf->be, false); /* the queues are back on the guest's rings */
}

/* The emulated hardware says a mailbox exchange begins or ended: with interception on, the
 * mailbox page traps for exactly that long (docs/devices.md). */
void sriov_vf_mbx_exchange(struct sriov_vf *vf, bool on)
{
	if (vf->spec.mbx_trap)
		return;
	if (on) {
		if (sriov_vf_set_page_mode(vf, 0, SRIOV_PAGE_TRAP)) {
			/* The page could not be made to trap: clear-on-read bits would be lost on
			 * a mapped page, so the mailbox stays trapped from now on. */
			vf->spec.mbx_trap = true;
			GW_WARN(vf->name,
				"mailbox interception off: the mailbox page stays trapped");
		}
		return;
	}
	/* A guest that opens and closes exchanges in a loop would have us remap the page (a
	 * memslot change, an SRCU wait) each time: past MBX_REMAPS_PER_S in a second the page
	 * stays trapped until the second is over (its exits then count as idle ones). */
	uint64_t now = gw_now_ms();
	if (now - vf->mbx_window_ms >= 1000) {
		vf->mbx_window_ms = now;
		vf->mbx_remaps = 0;
	}
	if (++vf->mbx_remaps > MBX_REMAPS_PER_S) {
		if (vf->mbx_remaps == MBX_REMAPS_PER_S + 1)
			GW_DEBUG(vf->name,
				 "mailbox exchanges too frequent: the page stays trapped");
		return;
	}
	sriov_vf_set_page_mode(vf, 0, SRIOV_PAGE_READ);
}

/* The PF agent's callback (like DPDK's RTE_ETH_EVENT_VF_MBOX), and what a backend whose PF
 * is not the VMM's tells of the exchanges it saw (sriov_vf_mbx_event): the VMM's policy on
 * each request, and its record of each answered one. */
static enum sriov_mbx_verdict vf_mbx_cb(void *opaque, const struct sriov_mbx_event *ev)
{
	struct sriov_vf *vf = opaque;
	if (ev->vf_reset) {
		pthread_mutex_lock(&vf->rec_lock);
		sriov_mbx_record_observe(&vf->rec, sriov_pf_agent_gen(vf->agent), ev);
		pthread_mutex_unlock(&vf->rec_lock);
		return SRIOV_MBX_ACCEPT;
	}
	if (!ev->reply) {
		uint32_t type = ev->msg[0] & IGB_MSG_TYPE_MASK;
		if (vf->spec.untrusted && type == IGB_VF_SET_MAC_ADDR) {
			pthread_mutex_lock(&vf->rec_lock);
			uint64_t n = ++vf->rec.denied;
			pthread_mutex_unlock(&vf->rec_lock);
			if (n <= 4)
				GW_INFO(vf->name, "MAC change denied: the VM's NIC is not trusted");
			return SRIOV_MBX_DENY;
		}
		return SRIOV_MBX_OBSERVE;
	}
	pthread_mutex_lock(&vf->rec_lock);
	sriov_mbx_record_observe(&vf->rec, sriov_pf_agent_gen(vf->agent), ev);
	pthread_mutex_unlock(&vf->rec_lock);
	return SRIOV_MBX_ACCEPT;
}

enum sriov_mbx_verdict sriov_vf_mbx_event(struct sriov_vf *vf, const struct sriov_mbx_event *ev)
{
	return vf_mbx_cb(vf, ev);
}

/* ---- what vf_dma.c sees of the VF: its device, without the DMA engine in the way ---- */

static uint32_t dev_reg_read(void *opaque, uint32_t off)
{
	struct sriov_vf *vf = opaque;
	return (uint32_t)vf->ops->read(vf->be, off, 4);
}

static void dev_reg_write(void *opaque, uint32_t off, uint32_t val)
{
	struct sriov_vf *vf = opaque;
	vf->ops->write(vf->be, off, val, 4);
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct sriov_vf *vf = opaque;
	vf->ops->write(vf->be, off, val, size);
}

static int dev_run(void *opaque, bool run)
{
	struct sriov_vf *vf = opaque;
	return vf->ops->run(vf->be, run);
}

static struct dma_map *dev_dma(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return vf->ops->dma(vf->be);
}

static void dev_kick(void *opaque)
{
	struct sriov_vf *vf = opaque;
	if (vf->ops->kick)
		vf->ops->kick(vf->be);
}

static bool dev_live(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return vf->ops->msix_direct;
}

static unsigned dev_queues(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return sriov_pf_agent_gen(vf->agent)->queues; /* the engine holds it to the layout */
}

static enum sriov_page_mode dev_page_mode(void *opaque, unsigned page)
{
	struct sriov_vf *vf = opaque;
	pthread_mutex_lock(&vf->lock);
	enum sriov_page_mode m = page < BAR0_PAGES ? vf->mode[page] : SRIOV_PAGE_TRAP;
	pthread_mutex_unlock(&vf->lock);
	return m;
}

static int dev_set_page_mode(void *opaque, unsigned page, enum sriov_page_mode mode)
{
	return sriov_vf_set_page_mode(opaque, page, mode);
}

static void dev_msix(void *opaque, unsigned vec)
{
	msix_now(opaque, vec);
}

static void dev_intx(void *opaque, bool level)
{
	intx_now(opaque, level);
}

static enum dma_mode dev_dirty_mode(void *opaque)
{
	struct sriov_vf *vf = opaque;
	return (enum dma_mode)hv_dirty_dma_mode(vf->vm);
}

static void dev_dirty_mark(void *opaque, uint64_t iova, uint64_t len)
{
	struct sriov_vf *vf = opaque;
	hv_dirty_mark(vf->vm, iova, len); /* IOVA is guest-physical */
}

static void dev_dirty_account(void *opaque, uint64_t pages, uint64_t bytes_copied)
{
	struct sriov_vf *vf = opaque;
	hv_dirty_dma_account(vf->vm, pages, bytes_copied);
}

/* Only where the device is hardware: a model in the VMM sees guest memory as the guest does. */
static int dev_hold_guest(void *opaque, bool hold)
{
	struct sriov_vf *vf = opaque;
	if (!hold) {
		hv_vm_release_vcpus(vf->vm);
		return 0;
	}
	return vf->ops->msix_direct ? hv_vm_hold_vcpus(vf->vm) : -ENOTSUP;
}

static int dev_split(void *opaque, uint64_t gpa, uint64_t len, void **dev_view)
{
	struct sriov_vf *vf = opaque;
	return vf->ops->msix_direct ? hv_vm_ram_split(vf->vm, gpa, len, dev_view) : -ENOTSUP;
}

static int dev_join(void *opaque, uint64_t gpa, uint64_t len, void *dev_view)
{
	struct sriov_vf *vf = opaque;
	return hv_vm_ram_join(vf->vm, gpa, len, dev_view);
}

static const struct vf_dma_dev_ops vf_dma_dev = {
    .reg_read = dev_reg_read,
    .reg_write = dev_reg_write,
    .write = dev_write,
    .run = dev_run,
    .dma = dev_dma,
    .kick = dev_kick,
    .live = dev_live,
    .queues = dev_queues,
    .page_mode = dev_page_mode,
    .set_page_mode = dev_set_page_mode,
    .msix = dev_msix,
    .intx = dev_intx,
    .hold_guest = dev_hold_guest,
    .split = dev_split,
    .join = dev_join,
    .dirty_mode = dev_dirty_mode,
    .dirty_mark = dev_dirty_mark,
    .dirty_account = dev_dirty_account,
};

void sriov_vf_device_round(struct sriov_vf *vf)
{
	vf_dma_round(vf->dma);
}

static const struct hv_device_ops vf_dev_ops = {
    .kind = "sriov-vf",
    .dirty_log_start = vf_dirty_start,
    .dirty_log_stop = vf_dirty_stop,
    .save = vf_save,
    .load = vf_load,
    .quiesce = vf_quiesce,
    .resume = vf_resume,
};

static int msix_init(struct sriov_vf *vf)
{
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		vf->msix[v].ctrl = 1; /* masked after reset (PCI spec 6.8.2.9) */
		vf->msix_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vf->msix_fd[v] < 0)
			return -errno;
		vf->msix_gsi[v] = hv_vm_msi_route_add(vf->vm, 0, 0);
		if (vf->msix_gsi[v] < 0)
			return vf->msix_gsi[v];
		if (vf->ops->msix_direct)
			continue; /* wired when the guest unmasks it (msix_direct_sync_locked) */
		int rc = hv_vm_irqfd(vf->vm, vf->msix_fd[v], (unsigned)vf->msix_gsi[v], true);
		if (rc)
			return rc;
		vf->msix_irqfd[v] = true;
	}
	return 0;
}

static void msix_fini(struct sriov_vf *vf)
{
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		if (vf->msix_irqfd[v])
			hv_vm_irqfd(vf->vm, vf->msix_fd[v], (unsigned)vf->msix_gsi[v], false);
		if (vf->msix_gsi[v] >= 0)
			hv_vm_msi_route_remove(vf->vm, (unsigned)vf->msix_gsi[v]);
		if (vf->msix_fd[v] >= 0)
			close(vf->msix_fd[v]);
	}
}

static const struct sriov_backend_ops *backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name ? name : "emul") == 0)
			return backends[i];
	return NULL;
}

static int vf_setup(struct sriov_vf *vf, const struct sriov_vf_config_spec *spec)
{
	struct sriov_gen g;
	int rc = sriov_emul_gen(spec->gen, &g);
	if (rc)
		return rc;
	rc = sriov_pf_agent_create(&g, spec->nvfs ? spec->nvfs : SRIOV_EMUL_MAX_VFS, &vf->agent);
	if (rc)
		return rc;
	rc = sriov_pf_agent_set_mac(vf->agent, spec->vf, spec->mac);
	if (rc)
		return rc;
	sriov_mbx_record_init(&vf->rec, spec->mac);
	sriov_pf_agent_set_callback(vf->agent, vf_mbx_cb, vf);
	rc = msix_init(vf);
	if (rc == 0)
		rc = vf_dma_create(&vf_dma_dev, vf, &igb_vf_queue_layout, vf->name, &vf->dma);
	if (rc)
		return rc;
	rc = vf->ops->open(vf, spec, &vf->be);
	if (rc)
		return rc;
	int slot = hv_pci_free_slot(vf->vm);
	if (slot < 0)
		return slot;
	vf->bdf = (unsigned)slot;
	vf->gsi = hv_pci_intx_gsi(vf->bdf);
	uint8_t *c = calloc(2, 4096); /* configuration space, then its writable mask */
	if (!c)
		return -ENOMEM;
	cfg_init(vf, &g, c, c + 4096);
	rc = hv_pci_add_function(vf->vm, vf->bdf, c, c + 4096, &vf_pci_ops, vf);
	free(c);
	if (rc)
		return rc;
	return hv_device_register(vf->vm, vf->name, &vf_dev_ops, vf);
}

int sriov_vf_attach(struct hv_vm *vm, const struct sriov_vf_config_spec *spec,
		    struct sriov_vf **out)
{
	const struct sriov_backend_ops *ops = backend_find(spec->backend);
	if (!ops || spec->vf >= (spec->nvfs ? spec->nvfs : SRIOV_EMUL_MAX_VFS))
		return -EINVAL;
	struct sriov_vf *vf = calloc(1, sizeof(*vf));
	if (!vf)
		return -ENOMEM;
	pthread_mutex_init(&vf->lock, NULL);
	pthread_mutex_init(&vf->rec_lock, NULL);
	vf->vm = vm;
	vf->ops = ops;
	vf->spec = *spec;
	vf->spec.uplink = NULL; /* not owned */
	/* Named by its place in the VM, not by the host's indexes: a migration destination
	 * backs the same device with whatever VF it has free. */
	snprintf(vf->name, sizeof(vf->name), "vf%u", spec->index);
	for (unsigned p = 0; p < BAR0_PAGES; p++) {
		vf->slot[p] = -1;
		vf->mode[p] = (p >= 2) ? spec->queue_pages : SRIOV_PAGE_TRAP;
	}
	if (ops->msix_direct) {
		/* Real hardware behind every page: the mailbox page is read straight and its
		 * writes trap (where interception begins); the interrupt page is the device's. */
		vf->mode[0] = spec->mbx_trap ? SRIOV_PAGE_TRAP : SRIOV_PAGE_READ;
		vf->mode[1] = SRIOV_PAGE_DIRECT;
	}
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		vf->msix_fd[v] = -1;
		vf->msix_gsi[v] = -1;
	}
	int rc = vf_setup(vf, spec);
	if (rc) {
		GW_ERR(vf->name, "cannot attach the VF: %s", strerror(-rc));
		sriov_vf_detach(vf);
		return rc;
	}
	GW_INFO(vf->name, "attached at 00:%02x.%x: %s pf%u vf%u gen%u", vf->bdf >> 3, vf->bdf & 7,
		ops->name, spec->pf, spec->vf, spec->gen);
	*out = vf;
	return 0;
}

void sriov_vf_detach(struct sriov_vf *vf)
{
	if (!vf)
		return;
	if (vf->be)
		vf->ops->run(vf->be, false);
	if (vf->bdf)
		hv_pci_remove_function(vf->vm, vf->bdf);
	pthread_mutex_lock(&vf->lock);
	bar0_unplace(vf);
	if (vf->bar3)
		hv_bus_unregister(hv_vm_mmio_bus(vf->vm), vf->bar3);
	vf->bar3 = 0;
	pthread_mutex_unlock(&vf->lock);
	if (vf->dma)
		vf_dma_release(vf->dma); /* the device is stopped; its map still exists */
	if (vf->be)
		vf->ops->close(vf->be);
	vf_dma_destroy(vf->dma); /* after the device thread is gone */
	msix_fini(vf);
	sriov_pf_agent_destroy(vf->agent);
	pthread_mutex_destroy(&vf->lock);
	pthread_mutex_destroy(&vf->rec_lock);
	free(vf);
}

int sriov_vf_set_page_mode(struct sriov_vf *vf, unsigned page, enum sriov_page_mode mode)
{
	if (page >= BAR0_PAGES)
		return -EINVAL;
	/* Only the queue pages have plain register semantics; the mailbox page may at most be
	 * read straight (writes start an exchange); the interrupt page always traps. */
	if ((mode == SRIOV_PAGE_DIRECT && page < 2) || (mode == SRIOV_PAGE_READ && page != 0))
		return -EINVAL;
	if (mode != SRIOV_PAGE_TRAP && !vf->ops->bar0_page(vf->be, page))
		return -ENOTSUP;
	pthread_mutex_lock(&vf->lock);
	vf->mode[page] = mode;
	int rc = 0;
	/* Only the page's memslot comes or goes: the BAR stays decoded throughout, so a vCPU
	 * touching it meanwhile reaches the MMIO handler or the memory, never nothing. */
	if (vf->bar0 && vf->slot[page] >= 0) {
		rc = hv_vm_unmap(vf->vm, vf->slot[page]);
		if (rc) {
			/* The old mapping stays: so does the page's old mode. */
			GW_WARN(vf->name, "BAR0 page %u: cannot unmap it: %s", page, strerror(-rc));
			pthread_mutex_unlock(&vf->lock);
			return rc;
		}
		vf->slot[page] = -1;
	}
	if (vf->bar0 && mode != SRIOV_PAGE_TRAP) {
		int h = hv_vm_map(vf->vm, vf->bar0 + 4096ull * page, 4096,
				  vf->ops->bar0_page(vf->be, page), mode == SRIOV_PAGE_READ);
		if (h < 0)
			rc = h;
		else
			vf->slot[page] = h;
	}
	bool polling = false;
	for (unsigned p = 0; p < BAR0_PAGES; p++)
		polling |= vf->slot[p] >= 0 && vf->mode[p] == SRIOV_PAGE_DIRECT;
	vf->ops->set_polling(vf->be, polling);
	pthread_mutex_unlock(&vf->lock);
	return rc;
}

/* The guest's configuration taken along (or not) across the reset for re-creation. */
static void carry(struct sriov_vf *vf, bool on)
{
	pthread_mutex_lock(&vf->rec_lock);
	vf->carried = vf->rec.cfg;
	vf->have_carried = on;
	pthread_mutex_unlock(&vf->rec_lock);
}

int sriov_vf_recreate_prepare(struct sriov_vf *vf, int timeout_ms)
{
	if (!vf->ops->pf_reset) {
		GW_ERR(vf->name, "the %s backend cannot have the PF reset the VF", vf->ops->name);
		return -ENOTSUP;
	}
	pthread_mutex_lock(&vf->lock);
	bool already = vf->recreate;
	pthread_mutex_unlock(&vf->lock);
	if (already)
		return 0; /* quiesced earlier in this migration (sriov_vf_dma_tracked) */
	carry(vf, true);
	vf->ops->pf_reset(vf->be, true);
	uint64_t end = gw_now_ms() + (uint64_t)timeout_ms;
	while (!vf->ops->pf_reset_seen(vf->be)) {
		if (gw_now_ms() >= end) {
			vf->ops->pf_reset(vf->be, false);
			carry(vf, false);
			GW_WARN(vf->name, "the guest driver did not reset the VF within %d ms",
				timeout_ms);
			return -ETIMEDOUT;
		}
		usleep(5000);
	}
	pthread_mutex_lock(&vf->lock);
	vf->recreate = true;
	vf->recreate_quiesces++;
	pthread_mutex_unlock(&vf->lock);
	GW_INFO(vf->name, "quiesced for re-creation on the destination: the driver reset it");
	return 0;
}

bool sriov_vf_dma_tracked(const struct sriov_vf *vf)
{
	return vf->ops->dma != NULL;
}

void sriov_vf_recreate_cancel(struct sriov_vf *vf)
{
	pthread_mutex_lock(&vf->lock);
	bool was = vf->recreate;
	vf->recreate = false;
	pthread_mutex_unlock(&vf->lock);
	if (!was || !vf->ops->pf_reset)
		return;
	carry(vf, false);
	vf->ops->pf_reset(vf->be, false);
	GW_INFO(vf->name, "the VM stays: the reset ends and the driver goes on here");
}

void sriov_vf_status(struct sriov_vf *vf, struct sriov_vf_status *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", vf->name);
	snprintf(out->backend, sizeof(out->backend), "%s", vf->ops->name);
	out->emulated = vf->spec.emulated;
	out->recreate = vf->recreate;
	out->recreate_quiesces = vf->recreate_quiesces;
	out->gen = *sriov_pf_agent_gen(vf->agent);
	out->pf = vf->spec.pf;
	out->vf = vf->spec.vf;
	out->bdf = vf->bdf;
	pthread_mutex_lock(&vf->lock);
	out->bar0 = vf->bar0;
	out->bar3 = vf->bar3;
	out->msix = (vf->msgctl & MSIX_ENABLE) != 0;
	out->trapped_accesses = __atomic_load_n(&vf->trapped, __ATOMIC_RELAXED);
	for (unsigned p = 0; p < BAR0_PAGES; p++)
		out->direct_pages |= (vf->slot[p] >= 0) << p;
	pthread_mutex_unlock(&vf->lock);
	const char *mode;
	vf_dma_status(vf->dma, &out->dma_active, &mode);
	snprintf(out->dma_mode, sizeof(out->dma_mode), "%s", mode);
	pthread_mutex_lock(&vf->rec_lock);
	out->record = vf->rec;
	pthread_mutex_unlock(&vf->rec_lock);
	sriov_pf_agent_vf_config(vf->agent, vf->spec.vf, &out->config);
	if (vf->ops->status)
		vf->ops->status(vf->be, out);
}
