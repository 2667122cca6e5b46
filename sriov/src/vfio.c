/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vfio backend: a real VF bound to vfio-pci, reached through the Linux VFIO uapi
 * (Documentation/driver-api/vfio.rst): a container with the type1v2 IOMMU, the VF's IOMMU
 * group, and its device fd. The guest sees it through the same igb profile as the emulated
 * VF (vf.c does the PCI function): BAR0 pages come straight from the device's mmapped BAR,
 * MSI-X vectors go from VFIO's eventfds straight to KVM's irqfds, and the device DMAs into
 * guest RAM that the IOMMU maps at IOVA = guest-physical address.
 */
#include "vfio_priv.h"

#include "igb_dev.h"

#include "godwit/dma_shadow.h"
#include "godwit/hv.h"
#include "godwit/igb_ring.h"
#include "godwit/igb_vf.h"
#include "godwit/log.h"
#include "godwit/sriov_queues.h"
#include "godwit/deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define VFIO_DEV "/dev/vfio"

static const char *be_name(const struct sriov_be *be)
{
	return sriov_vf_name(be->vf);
}

/* The VF's IOMMU group number and current driver, from sysfs. */
static int sysfs_link(const char *addr, const char *what, char *out, size_t n)
{
	char path[PATH_MAX], target[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", addr, what);
	ssize_t len = readlink(path, target, sizeof(target) - 1);
	if (len < 0)
		return -errno;
	target[len] = 0;
	const char *base = strrchr(target, '/');
	snprintf(out, n, "%s", base ? base + 1 : target);
	return 0;
}

static int cfg_read(struct sriov_be *be, unsigned off, void *buf, size_t len)
{
	ssize_t r = pread(be->dev, buf, len, (off_t)(be->cfg_off + off));
	return r == (ssize_t)len ? 0 : r < 0 ? -errno : -EIO;
}

static int cfg_write(struct sriov_be *be, unsigned off, const void *buf, size_t len)
{
	ssize_t r = pwrite(be->dev, buf, len, (off_t)(be->cfg_off + off));
	return r == (ssize_t)len ? 0 : r < 0 ? -errno : -EIO;
}

/* The device's command register: memory decode always (the VMM's mappings need it), bus
 * mastering as the guest set it until the VF is closed, never I/O or INTx. */
static void apply_command(struct sriov_be *be)
{
	uint16_t cmd;
	if (cfg_read(be, PCI_COMMAND, &cmd, 2))
		return;
	uint16_t want = (uint16_t)((cmd & ~(PCI_COMMAND_MASTER | PCI_COMMAND_IO)) |
				   PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	if (!be->closing && (be->guest_cmd & PCI_COMMAND_MASTER))
		want |= PCI_COMMAND_MASTER;
	if (want != cmd && cfg_write(be, PCI_COMMAND, &want, 2))
		GW_WARN(be_name(be), "cannot write the device's command register: %s",
			strerror(errno));
}

static int open_group(struct sriov_be *be)
{
	char grp[16], drv[64] = "";
	if (sysfs_link(be->addr, "driver", drv, sizeof(drv)) || strcmp(drv, "vfio-pci") != 0) {
		GW_ERR(be_name(be),
		       "%s is bound to %s, not vfio-pci: bind it first (godwitd --pf does) or "
		       "choose another VF",
		       be->addr, drv[0] ? drv : "no driver");
		return -EBUSY;
	}
	if (sysfs_link(be->addr, "iommu_group", grp, sizeof(grp))) {
		GW_ERR(be_name(be),
		       "%s has no IOMMU group: boot the host with its IOMMU on "
		       "(intel_iommu=on or amd_iommu=on)",
		       be->addr);
		return -ENODEV;
	}
	be->container = open(VFIO_DEV "/vfio", O_RDWR | O_CLOEXEC);
	if (be->container < 0) {
		int rc = -errno;
		GW_ERR(be_name(be), "cannot open %s/vfio: %s (modprobe vfio-pci)", VFIO_DEV,
		       strerror(errno));
		return rc;
	}
	if (ioctl(be->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(be->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
		GW_ERR(be_name(be), "this kernel's VFIO has no type1v2 IOMMU");
		return -ENOTSUP;
	}
	char path[64];
	snprintf(path, sizeof(path), VFIO_DEV "/%s", grp);
	be->group = open(path, O_RDWR | O_CLOEXEC);
	if (be->group < 0) {
		int rc = -errno;
		GW_ERR(be_name(be), "cannot open %s: %s%s", path, strerror(errno),
		       errno == EBUSY ? " (another process holds the group)" : "");
		return rc;
	}
	struct vfio_group_status st = {.argsz = sizeof(st)};
	if (ioctl(be->group, VFIO_GROUP_GET_STATUS, &st) < 0 ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		GW_ERR(be_name(be),
		       "IOMMU group %s is not viable: every device in it must be bound to "
		       "vfio-pci or to no driver",
		       grp);
		return -EPERM;
	}
	if (ioctl(be->group, VFIO_GROUP_SET_CONTAINER, &be->container) < 0 ||
	    ioctl(be->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
		int rc = -errno;
		GW_ERR(be_name(be), "cannot attach IOMMU group %s to a container: %s", grp,
		       strerror(errno));
		return rc;
	}
	be->dev = ioctl(be->group, VFIO_GROUP_GET_DEVICE_FD, be->addr);
	if (be->dev < 0) {
		int rc = -errno;
		GW_ERR(be_name(be), "cannot open %s through VFIO: %s", be->addr, strerror(errno));
		return rc;
	}
	return 0;
}

static int region(struct sriov_be *be, unsigned index, struct vfio_region_info *ri)
{
	*ri = (struct vfio_region_info){.argsz = sizeof(*ri), .index = index};
	return ioctl(be->dev, VFIO_DEVICE_GET_REGION_INFO, ri) < 0 ? -errno : 0;
}

/* The device is the igb profile's VF, and its BAR0 can be reached (mapped if possible). */
static int open_device(struct sriov_be *be, const struct sriov_gen *g)
{
	struct vfio_device_info di = {.argsz = sizeof(di)};
	if (ioctl(be->dev, VFIO_DEVICE_GET_INFO, &di) < 0 || !(di.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    di.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX ||
	    di.num_irqs <= VFIO_PCI_MSIX_IRQ_INDEX) {
		GW_ERR(be_name(be), "%s is not a PCI device VFIO can pass through", be->addr);
		return -ENODEV;
	}
	struct vfio_region_info ri;
	int rc = region(be, VFIO_PCI_CONFIG_REGION_INDEX, &ri);
	if (rc)
		return rc;
	be->cfg_off = ri.offset;
	uint16_t id[2];
	rc = cfg_read(be, PCI_VENDOR_ID, id, sizeof(id));
	if (rc)
		return rc;
	if (id[0] != g->vendor || id[1] != g->device) {
		GW_ERR(be_name(be), "%s is %04x:%04x; godwit's igb profile drives %04x:%04x VFs",
		       be->addr, id[0], id[1], g->vendor, g->device);
		return -ENODEV;
	}
	rc = region(be, VFIO_PCI_BAR0_REGION_INDEX, &ri);
	if (rc || ri.size < IGB_VF_BAR0_SIZE) {
		GW_ERR(be_name(be), "%s: BAR0 is missing or smaller than %u bytes", be->addr,
		       IGB_VF_BAR0_SIZE);
		return -ENODEV;
	}
	be->bar0_off = ri.offset;
	be->bar0_size = ri.size;
	if (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		void *p = mmap(NULL, IGB_VF_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, be->dev,
			       (off_t)ri.offset);
		if (p != MAP_FAILED)
			be->bar0 = p;
	}
	if (!be->bar0)
		GW_WARN(be_name(be),
			"%s: BAR0 cannot be mmapped; every register access traps to the VMM",
			be->addr);
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX};
	if (ioctl(be->dev, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0 || ii.count < IGB_VF_MSIX_VECS) {
		GW_ERR(be_name(be), "%s offers fewer than %u MSI-X vectors", be->addr,
		       IGB_VF_MSIX_VECS);
		return -ENODEV;
	}
	be->msix_count = ii.count;
	if ((di.flags & VFIO_DEVICE_FLAGS_RESET) && ioctl(be->dev, VFIO_DEVICE_RESET) < 0)
		GW_WARN(be_name(be), "%s: reset failed: %s", be->addr, strerror(errno));
	return 0;
}

/* A range in the IOMMU (dma/'s mirror of the device's map, and guest RAM at open). The
 * kernel pins the pages. */
static int iommu_map(void *opaque, uint64_t iova, uint64_t len, void *hva, bool writable)
{
	struct sriov_be *be = opaque;
	struct vfio_iommu_type1_dma_map m = {
	    .argsz = sizeof(m),
	    .flags = VFIO_DMA_MAP_FLAG_READ | (writable ? VFIO_DMA_MAP_FLAG_WRITE : 0),
	    .vaddr = (uint64_t)(uintptr_t)hva,
	    .iova = iova,
	    .size = len,
	};
	if (ioctl(be->container, VFIO_IOMMU_MAP_DMA, &m) == 0)
		return 0;
	int rc = -errno;
	GW_ERR(be_name(be), "the IOMMU refused [%#llx, +%llu KiB): %s%s", (unsigned long long)iova,
	       (unsigned long long)(len >> 10), strerror(errno),
	       errno == ENOMEM ? " (raise the locked-memory limit, ulimit -l)" : "");
	return rc;
}

static void iommu_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	struct sriov_be *be = opaque;
	struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof(u), .iova = iova, .size = len};
	if (ioctl(be->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		GW_WARN(be_name(be), "cannot unmap [%#llx, +%llu KiB) from the IOMMU: %s",
			(unsigned long long)iova, (unsigned long long)(len >> 10), strerror(errno));
}

static const struct dma_mirror_ops iommu_mirror = {.map = iommu_map, .unmap = iommu_unmap};

#define GIB (1ull << 30)

/* Whether [base, base + len) lies in one of the IOMMU's usable IOVA ranges; true when VFIO
 * does not say (an older kernel). */
static bool iova_usable(struct sriov_be *be, uint64_t base, uint64_t len)
{
	struct vfio_iommu_type1_info probe = {.argsz = sizeof(probe)};
	if (ioctl(be->container, VFIO_IOMMU_GET_INFO, &probe) < 0 ||
	    !(probe.flags & VFIO_IOMMU_INFO_CAPS) || probe.argsz <= sizeof(probe))
		return true;
	struct vfio_iommu_type1_info *info = calloc(1, probe.argsz);
	if (!info)
		return true;
	info->argsz = probe.argsz;
	bool ok = true;
	if (ioctl(be->container, VFIO_IOMMU_GET_INFO, info) == 0 && info->cap_offset) {
		uint32_t off = info->cap_offset;
		while (off && off + sizeof(struct vfio_info_cap_header) <= info->argsz) {
			const struct vfio_info_cap_header *h =
			    (const void *)((const uint8_t *)info + off);
			if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				const struct vfio_iommu_type1_info_cap_iova_range *r =
				    (const void *)h;
				ok = false;
				for (uint32_t i = 0; i < r->nr_iovas; i++)
					ok |= base >= r->iova_ranges[i].start &&
					      base + len - 1 <= r->iova_ranges[i].end;
				break;
			}
			off = h->next;
		}
	}
	free(info);
	return ok;
}

/* Guest RAM in the IOMMU at IOVA = guest-physical address: the device's DMA reaches exactly
 * the guest's memory. The same ranges make dma/'s map of the device, whose shadow window
 * goes above them (and above the 32-bit MSI window), inside the IOMMU's aperture. */
static int map_ram(struct sriov_be *be)
{
	struct hv_ram_range r[2];
	unsigned n = hv_vm_ram_ranges(sriov_vf_vm(be->vf), r);
	int rc = dma_map_create(&be->dma);
	uint64_t end = 4 * GIB;
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		rc = iommu_map(be, r[i].gpa, r[i].len, r[i].hva, true);
		if (rc == 0)
			be->ram[be->nram++] = r[i];
		if (rc == 0)
			rc = dma_map_add(be->dma, r[i].gpa, r[i].len, r[i].hva, true);
		if (r[i].gpa + r[i].len > end)
			end = r[i].gpa + r[i].len;
	}
	if (rc)
		return rc;
	uint64_t base = (end + GIB - 1) & ~(GIB - 1);
	uint64_t need = DMA_SHADOW_MAX_QUEUES * DMA_SHADOW_SLOT_SIZE;
	if (!iova_usable(be, base, need))
		GW_WARN(be_name(be),
			"the IOMMU cannot map [%#llx, +%llu GiB) for shadow rings: DMA shadowing "
			"will fail on this VF (use --dma-mode track)",
			(unsigned long long)base, (unsigned long long)(need / GIB));
	dma_map_set_shadow_base(be->dma, base);
	dma_map_set_mirror(be->dma, &iommu_mirror, be);
	return 0;
}

static void unmap_ram(struct sriov_be *be)
{
	for (unsigned i = 0; i < be->nram; i++)
		iommu_unmap(be, be->ram[i].gpa, be->ram[i].len);
	be->nram = 0;
}

static int set_irqs(struct sriov_be *be, unsigned index, unsigned count, const int *fds)
{
	size_t sz = sizeof(struct vfio_irq_set) + sizeof(int) * count;
	struct vfio_irq_set *s = calloc(1, sz);
	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)sz;
	s->flags = VFIO_IRQ_SET_ACTION_TRIGGER |
		   (count ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
	s->index = index;
	s->count = count;
	if (count)
		memcpy(s->data, fds, sizeof(int) * count);
	int rc = ioctl(be->dev, VFIO_DEVICE_SET_IRQS, s) < 0 ? -errno : 0;
	free(s);
	return rc;
}

/* The host wants the device back (its driver is being unbound, or it is being removed): the
 * VM cannot keep a device that is going away, so it stops, with the reason in the log. */
static void *req_main(void *arg)
{
	struct sriov_be *be = arg;
	struct pollfd p[2] = {{.fd = be->req_fd, .events = POLLIN},
			      {.fd = be->stop_fd, .events = POLLIN}};
	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if (p[0].revents & POLLIN) {
		GW_ERR(be_name(be),
		       "the host is taking %s back (unbind or hot-unplug): stopping the VM",
		       be->addr);
		hv_vm_stop(sriov_vf_vm(be->vf));
	}
	return NULL;
}

static void start_req(struct sriov_be *be)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_REQ_IRQ_INDEX};
	if (ioctl(be->dev, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0 || ii.count < 1)
		return; /* an older kernel: an unbind then waits for the VM to end */
	be->req_fd = eventfd(0, EFD_CLOEXEC);
	if (be->req_fd < 0 || set_irqs(be, VFIO_PCI_REQ_IRQ_INDEX, 1, &be->req_fd) ||
	    pthread_create(&be->req_thread, NULL, req_main, be)) {
		GW_WARN(be_name(be), "no notice of %s's removal: %s", be->addr, strerror(errno));
		return;
	}
	be->req_started = true;
}

static void be_close(struct sriov_be *be);
static int start_relay(struct sriov_be *be);

static int be_open(struct sriov_vf *vf, const struct sriov_vf_config_spec *spec,
		   struct sriov_be **out)
{
	struct sriov_be *be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->vf = vf;
	be->container = be->group = be->dev = be->req_fd = be->stop_fd = be->kick_fd = -1;
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
		be->relay_fd[v] = -1;
	pthread_mutex_init(&be->lock, NULL);
	vfio_mbx_init(be);
	snprintf(be->addr, sizeof(be->addr), "%s", spec->host);
	for (char *c = be->addr; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c); /* sysfs spelling */
	struct sriov_gen g;
	int rc = sriov_emul_gen(spec->gen, &g);
	if (rc == 0)
		rc = open_group(be);
	if (rc == 0)
		rc = open_device(be, &g);
	if (rc == 0)
		rc = map_ram(be);
	if (rc == 0) {
		be->stop_fd = eventfd(0, EFD_CLOEXEC);
		rc = be->stop_fd < 0 ? -errno : start_relay(be);
	}
	if (rc) {
		be_close(be);
		return rc;
	}
	apply_command(be); /* memory decode on, bus mastering off until the guest asks */
	start_req(be);
	GW_INFO(be_name(be),
		"%s through VFIO: BAR0 %s, %u MSI-X vectors, %u RAM ranges in the IOMMU", be->addr,
		be->bar0 ? "mapped" : "trapped", be->msix_count, be->nram);
	*out = be;
	return 0;
}

static void be_close(struct sriov_be *be)
{
	uint64_t one = 1;
	if (be->stop_fd >= 0 && write(be->stop_fd, &one, sizeof(one)) < 0)
		GW_WARN(be_name(be), "cannot end the removal watch and the relay: %s",
			strerror(errno));
	if (be->req_started)
		pthread_join(be->req_thread, NULL);
	if (be->relay_started)
		pthread_join(be->relay_thread, NULL);
	if (be->dev >= 0) {
		if (be->msix_on)
			set_irqs(be, VFIO_PCI_MSIX_IRQ_INDEX, 0, NULL);
		if (be->req_started)
			set_irqs(be, VFIO_PCI_REQ_IRQ_INDEX, 0, NULL);
		be->closing = true;
		apply_command(be); /* no more DMA, then a clean device for the next VM */
		if (ioctl(be->dev, VFIO_DEVICE_RESET) < 0 && errno != ENOTTY)
			GW_WARN(be_name(be), "%s: reset on release failed: %s", be->addr,
				strerror(errno));
	}
	if (be->dma)
		dma_map_set_mirror(be->dma, NULL, NULL); /* the shadow memory is gone already */
	if (be->container >= 0)
		unmap_ram(be);
	dma_map_destroy(be->dma);
	if (be->bar0)
		munmap(be->bar0, IGB_VF_BAR0_SIZE);
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
		if (be->relay_fd[v] >= 0)
			close(be->relay_fd[v]);
	int fds[] = {be->dev, be->group, be->container, be->req_fd, be->stop_fd, be->kick_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&be->lock);
	vfio_mbx_fini(be);
	free(be);
}

static void *be_bar0_page(struct sriov_be *be, unsigned page)
{
	return be->bar0 && page < IGB_VF_BAR0_SIZE / 4096u ? be->bar0 + 4096u * page : NULL;
}

/* The device's own registers. */
uint64_t vfio_dev_read(struct sriov_be *be, uint64_t off, unsigned size)
{
	if (off + size > IGB_VF_BAR0_SIZE || (size != 4 && size != 8))
		return 0;
	if (be->bar0) {
		if (size == 8)
			return *(volatile uint64_t *)(be->bar0 + off);
		return *(volatile uint32_t *)(be->bar0 + off);
	}
	uint64_t v = 0;
	if (pread(be->dev, &v, size, (off_t)(be->bar0_off + off)) != (ssize_t)size)
		return ~0ull;
	return v;
}

void vfio_dev_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size)
{
	if (off + size > IGB_VF_BAR0_SIZE || (size != 4 && size != 8))
		return;
	if (be->bar0) {
		if (size == 8)
			*(volatile uint64_t *)(be->bar0 + off) = val;
		else
			*(volatile uint32_t *)(be->bar0 + off) = (uint32_t)val;
		return;
	}
	if (pwrite(be->dev, &val, size, (off_t)(be->bar0_off + off)) != (ssize_t)size)
		GW_WARN(be_name(be), "BAR0 write at %#llx failed: %s", (unsigned long long)off,
			strerror(errno));
}

/* The queues' control registers (be_run holds the queues off through them). */
static uint32_t qctl(bool tx, unsigned q)
{
	return sriov_queue_off(&igb_vf_queue_layout, tx, q, IGB_Q_DCTL);
}

/* Whether off is a queue's control register; which one. */
static bool is_qctl(uint64_t off, int *tx, unsigned *q)
{
	for (*tx = 0; *tx < 2; (*tx)++)
		for (*q = 0; *q < IGB_VF_MAX_QUEUES; (*q)++)
			if (off == qctl(*tx, *q))
				return true;
	return false;
}

/* A held queue's control word as the guest wrote it (be_run); false if not held. */
static bool held_read(struct sriov_be *be, uint64_t off, uint32_t *v)
{
	int tx;
	unsigned q;
	if (!is_qctl(off, &tx, &q))
		return false; /* most trapped accesses: no lock to take */
	pthread_mutex_lock(&be->lock);
	bool h = be->held;
	if (h)
		*v = be->held_ctl[tx][q];
	pthread_mutex_unlock(&be->lock);
	return h;
}

/* The guest writes a held queue's control word: kept for the resume, the queue stays off. A
 * reset of the function clears the enable bits the resume would restore. */
static bool held_write(struct sriov_be *be, uint64_t off, uint32_t v)
{
	int tx;
	unsigned q;
	if (off != IGB_CTRL && !is_qctl(off, &tx, &q))
		return false; /* most trapped accesses: no lock to take */
	pthread_mutex_lock(&be->lock);
	bool h = be->held && is_qctl(off, &tx, &q);
	if (h) {
		be->held_ctl[tx][q] = v;
		vfio_dev_write(be, off, v & ~IGB_XDCTL_ENABLE, 4);
	} else if (be->held && off == IGB_CTRL && (v & IGB_CTRL_RST)) {
		for (tx = 0; tx < 2; tx++)
			for (q = 0; q < IGB_VF_MAX_QUEUES; q++)
				be->held_ctl[tx][q] &= ~IGB_XDCTL_ENABLE;
	}
	pthread_mutex_unlock(&be->lock);
	return h;
}

static uint64_t be_read(struct sriov_be *be, uint64_t off, unsigned size)
{
	uint32_t v;
	if (size == 4 && (held_read(be, off, &v) || vfio_mbx_read(be, off, &v)))
		return v;
	return vfio_dev_read(be, off, size);
}

static void be_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size)
{
	if (size == 4 &&
	    (held_write(be, off, (uint32_t)val) || vfio_mbx_write(be, off, (uint32_t)val)))
		return;
	vfio_dev_write(be, off, val, size);
}

static void be_pf_reset(struct sriov_be *be, bool begin)
{
	vfio_mbx_pf_reset(be, begin);
}

static bool be_pf_reset_seen(struct sriov_be *be)
{
	return vfio_mbx_pf_reset_seen(be);
}

static void be_recreated(struct sriov_be *be)
{
	vfio_mbx_recreated(be);
}

/* Caller holds be->lock. MSI-X on: each vector's VFIO trigger is the eventfd vf.c wired to
 * KVM's irqfd, so an interrupt reaches the guest without the VMM; or, while a migration
 * shadows the device's DMA, the relay's. */
static int wire_msix_locked(struct sriov_be *be, bool on)
{
	int fds[IGB_VF_MSIX_VECS];
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
		fds[v] = be->relaying ? be->relay_fd[v] : sriov_vf_msix_eventfd(be->vf, v);
	return set_irqs(be, VFIO_PCI_MSIX_IRQ_INDEX, on ? IGB_VF_MSIX_VECS : 0, fds);
}

static void be_set_msix(struct sriov_be *be, bool on)
{
	pthread_mutex_lock(&be->lock);
	if (on != be->msix_on) {
		int rc = wire_msix_locked(be, on);
		if (rc)
			GW_ERR(be_name(be), "cannot %s MSI-X on %s: %s", on ? "enable" : "disable",
			       be->addr, strerror(-rc));
		else
			be->msix_on = on;
	}
	pthread_mutex_unlock(&be->lock);
}

static void be_kick(struct sriov_be *be)
{
	uint64_t one = 1;
	if (be->kick_fd >= 0 && write(be->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		GW_WARN(be_name(be), "cannot wake the relay: %s", strerror(errno));
}

/*
 * The relay (DMA shadowing, docs/devices.md): while it is on, the device's interrupts come
 * here first. Each wakeup, and every millisecond besides (a driver polling its ring with
 * interrupts off must see completions too), runs a round of the DMA engine, which copies
 * the completions the device wrote to shadow rings into guest memory, marks them dirty and
 * only then lets the interrupts that announced them through (vf_dma.c).
 */
static void *relay_main(void *arg)
{
	struct sriov_be *be = arg;
	enum { N = IGB_VF_MSIX_VECS };
	struct pollfd p[N + 2];
	for (unsigned v = 0; v < N; v++)
		p[v] = (struct pollfd){.fd = be->relay_fd[v], .events = POLLIN};
	p[N] = (struct pollfd){.fd = be->kick_fd, .events = POLLIN};
	p[N + 1] = (struct pollfd){.fd = be->stop_fd, .events = POLLIN};
	for (;;) {
		pthread_mutex_lock(&be->lock);
		bool relaying = be->relaying;
		pthread_mutex_unlock(&be->lock);
		if (poll(p, N + 2, relaying ? 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			GW_ERR(be_name(be), "the relay stops: %s", strerror(errno));
			break;
		}
		if (p[N + 1].revents)
			break;
		uint64_t c;
		if ((p[N].revents & POLLIN) && read(be->kick_fd, &c, sizeof(c)) < 0)
			c = 0;
		uint32_t fired = 0;
		for (unsigned v = 0; v < N; v++)
			if ((p[v].revents & POLLIN) && read(be->relay_fd[v], &c, sizeof(c)) == 8)
				fired |= 1u << v;
		sriov_vf_device_round(be->vf);
		for (unsigned v = 0; v < N; v++)
			if (fired & (1u << v))
				sriov_vf_raise_msix(be->vf, v);
	}
	return NULL;
}

static int start_relay(struct sriov_be *be)
{
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++) {
		be->relay_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (be->relay_fd[v] < 0)
			return -errno;
	}
	be->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->kick_fd < 0)
		return -errno;
	int rc = pthread_create(&be->relay_thread, NULL, relay_main, be);
	if (rc)
		return -rc;
	be->relay_started = true;
	return 0;
}

/* The relay on (a migration shadows the device's DMA) or off. */
static void be_relay(struct sriov_be *be, bool on)
{
	pthread_mutex_lock(&be->lock);
	if (on == be->relaying || !be->relay_started) {
		pthread_mutex_unlock(&be->lock);
		return;
	}
	be->relaying = on;
	int rc = be->msix_on ? wire_msix_locked(be, true) : 0;
	if (rc) {
		be->relaying = !on;
		GW_ERR(be_name(be), "%s: cannot move its interrupts %s the VMM: %s", be->addr,
		       on ? "through" : "past", strerror(-rc));
	}
	pthread_mutex_unlock(&be->lock);
	if (rc)
		return;
	be_kick(be); /* the relay looks at its eventfds again, and at how long to wait */
	/* An interrupt raised while VFIO swapped the eventfds may have reached neither: each
	 * vector fires once. A spurious interrupt costs a driver a look at its causes; a lost
	 * one can stall it. */
	for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
		sriov_vf_raise_msix(be->vf, v);
}

static struct dma_map *be_dma(struct sriov_be *be)
{
	return be->dma;
}

static void be_set_polling(struct sriov_be *be, bool on)
{
	(void)be;
	(void)on; /* the hardware sees its doorbells itself */
}

static void be_command(struct sriov_be *be, uint16_t cmd)
{
	pthread_mutex_lock(&be->lock);
	be->guest_cmd = cmd;
	apply_command(be);
	pthread_mutex_unlock(&be->lock);
}

/*
 * Quiesce and resume: the device's queues are held off, each with its enable bit cleared
 * (RXDCTL/TXDCTL, datasheet 7.1.2.x), and given back as they were. A disabled queue neither
 * fetches nor writes back: the NIC drops what arrives for it and its head stays put (QEMU's
 * igb skips the queue), so the rings are in step when it resumes, and the DMA engine
 * (vf_dma.c) may move them meanwhile. Bus mastering off instead is no pause: a NIC then drops
 * frames but moves its ring head on, and the guest's ring never gets in step again. The
 * guest's control words are kept and shown while held (be_read, be_write). A transmit queue
 * starts only on a tail write, so each is rung again with its own tail when it resumes.
 * Without a vendor migration driver the rest of the device cannot be frozen: a migration has
 * the guest's driver reset the function before it leaves (be_pf_reset).
 */
static int be_run(struct sriov_be *be, bool run)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&be->lock);
	if (run == !be->held) {
		pthread_mutex_unlock(&be->lock);
		return 0;
	}
	int rc = 0;
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < IGB_VF_MAX_QUEUES; q++) {
			uint32_t off = qctl(tx, q);
			if (run) {
				vfio_dev_write(be, off, be->held_ctl[tx][q], 4);
				if (tx && (be->held_ctl[tx][q] & IGB_XDCTL_ENABLE))
					vfio_dev_write(
					    be, IGB_QREG(1, q, IGB_Q_TAIL),
					    vfio_dev_read(be, IGB_QREG(1, q, IGB_Q_TAIL), 4), 4);
				continue;
			}
			uint32_t v = (uint32_t)vfio_dev_read(be, off, 4);
			be->held_ctl[tx][q] = v;
			if (!(v & IGB_XDCTL_ENABLE))
				continue;
			vfio_dev_write(be, off, v & ~IGB_XDCTL_ENABLE, 4);
			/* The enable bit reads clear once the queue has stopped. */
			uint64_t end = gw_now_ms() + 100;
			while (vfio_dev_read(be, off, 4) & IGB_XDCTL_ENABLE) {
				if (gw_now_ms() >= end) {
					GW_ERR(be_name(be), "%s: %s queue %u did not stop",
					       be->addr, tx ? "TX" : "RX", q);
					rc = -ETIMEDOUT;
					break;
				}
				usleep(100);
			}
		}
	}
	be->held = !run;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!run)
		be->held_since = t0; /* from the first queue disabled */
	double ms = (double)(now.tv_sec - be->held_since.tv_sec) * 1e3 +
		    (double)(now.tv_nsec - be->held_since.tv_nsec) / 1e6;
	pthread_mutex_unlock(&be->lock);
	if (run)
		GW_INFO(be_name(be),
			"%s: queues held off for %.2f ms (what arrived meanwhile was dropped)",
			be->addr, ms);
	return rc;
}

/*
 * The VF's state without a vendor migration driver: what an igb VF's driver sees of it is its
 * registers (the rest lives in guest memory, and on its PF, which the record carries), so
 * with its queues stopped (be_run) they are read one by one, in the form godwit's own model
 * of the same VF loads (igb_dev_regs_save): a destination without a VF takes it over there
 * as it was, without the driver noticing. Not read: the interrupt causes (reading them clears
 * them: the next completions raise them again) and the mailbox control register (reading it
 * clears the PF's acknowledgements: the mailbox is taken as idle, which it is between
 * exchanges); the queues' enable bits are the guest's, held meanwhile.
 */
static int be_save(struct sriov_be *be, struct gw_buf *out)
{
	static const uint32_t plain[] = {IGB_CTRL,   IGB_STATUS, IGB_EIMS,	IGB_EIAC,
					 IGB_EIAM,   IGB_IVAR0,	 IGB_IVAR_MISC, IGB_VFGPRC,
					 IGB_VFGPTC, IGB_VFGORC, IGB_VFGOTC,	IGB_VFMPRC};
	static const uint32_t qregs[] = {IGB_Q_BAL,  IGB_Q_BAH,	 IGB_Q_LEN,
					 IGB_Q_HEAD, IGB_Q_TAIL, IGB_Q_SRRCTL};
	uint32_t *regs = calloc(IGB_VF_BAR0_SIZE / 4, sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		regs[plain[i] / 4] = (uint32_t)vfio_dev_read(be, plain[i], 4);
	for (unsigned w = 0; w < IGB_MBX_WORDS; w++)
		regs[IGB_VMBMEM / 4 + w] = (uint32_t)vfio_dev_read(be, IGB_VMBMEM + 4u * w, 4);
	/* The vectors the driver maps causes to come back unmasked: a vector masks itself when it
	 * fires (EIAM), and an interrupt the VF raised just before it stopped may reach the guest
	 * here only after its state was saved, so that the driver would wait on the destination
	 * for an interrupt the masked vector never sends (Linux igbvf's NAPI did). Unmasked, the
	 * next cause fires it: at worst one interrupt with nothing to do. The "other causes"
	 * vector (the mailbox's) too, auto-masked or not: it was seen to read back masked (QEMU's
	 * igb VF: EIMS 0x1 where the test guest had written 0x5), and a model that kept it masked
	 * would never tell the driver of a PF message, such as the PF reset a later migration
	 * plays. */
	uint32_t mapped = 0;
	for (unsigned b = 0; b < 4; b++) {
		uint32_t byte = regs[IGB_IVAR0 / 4] >> (8 * b) & 0xFFu;
		if (byte & IGB_IVAR_VALID)
			mapped |= 1u << (byte & 3u);
	}
	uint32_t misc = regs[IGB_IVAR_MISC / 4];
	regs[IGB_EIMS / 4] |= mapped & regs[IGB_EIAM / 4];
	if (misc & IGB_IVAR_VALID)
		regs[IGB_EIMS / 4] |= 1u << (misc & 3u);
	pthread_mutex_lock(&be->lock);
	bool held = be->held;
	for (int tx = 0; tx < 2; tx++) {
		for (unsigned q = 0; q < IGB_VF_MAX_QUEUES; q++) {
			for (size_t i = 0; i < sizeof(qregs) / sizeof(qregs[0]); i++) {
				if (tx && qregs[i] == IGB_Q_SRRCTL)
					continue;
				uint32_t off =
				    sriov_queue_off(&igb_vf_queue_layout, tx, q, qregs[i]);
				regs[off / 4] = (uint32_t)vfio_dev_read(be, off, 4);
			}
			regs[qctl(tx, q) / 4] = held ? be->held_ctl[tx][q]
						     : (uint32_t)vfio_dev_read(be, qctl(tx, q), 4);
		}
	}
	pthread_mutex_unlock(&be->lock);
	int rc = -EBUSY;
	if (held)
		rc = igb_dev_regs_save(sriov_pf_agent_gen(sriov_vf_agent(be->vf)), regs, out);
	else
		GW_ERR(be_name(be), "%s: its registers are read only with its queues stopped",
		       be->addr);
	free(regs);
	if (rc == 0)
		GW_INFO(be_name(be),
			"%s: its registers saved (queues stopped): a VMM's model of the VF takes "
			"them over",
			be->addr);
	return rc;
}

static int be_load(struct sriov_be *be, const void *data, size_t len)
{
	(void)data;
	(void)len;
	GW_ERR(be_name(be), "%s: a VFIO VF cannot take another device's state", be->addr);
	return -ENOTSUP;
}

static void be_status(struct sriov_be *be, struct sriov_vf_status *out)
{
	/* The VF's own statistics registers (82576 datasheet 8.24): they count since its reset. */
	out->rx_frames = vfio_dev_read(be, IGB_VFGPRC, 4);
	out->tx_frames = vfio_dev_read(be, IGB_VFGPTC, 4);
	snprintf(out->port, sizeof(out->port), "vfio:%s", be->addr);
	vfio_mbx_status(be, out);
}

const struct sriov_backend_ops sriov_vfio_ops = {
    .name = "vfio",
    .state_format = "igb-vf", /* saved only: see be_save */
    .msix_direct = true,
    .open = be_open,
    .close = be_close,
    .bar0_page = be_bar0_page,
    .read = be_read,
    .write = be_write,
    .set_msix = be_set_msix,
    .set_polling = be_set_polling,
    .command = be_command,
    .run = be_run,
    .save = be_save,
    .load = be_load,
    .status = be_status,
    .pf_reset = be_pf_reset,
    .pf_reset_seen = be_pf_reset_seen,
    .recreated = be_recreated,
    .replay = vfio_mbx_replay,
    .dma = be_dma,
    .kick = be_kick,
    .relay = be_relay,
};
