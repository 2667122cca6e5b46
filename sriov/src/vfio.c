/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vfio backend: a real VF bound to vfio-pci, reached through the Linux VFIO uapi
 * (Documentation/driver-api/vfio.rst): a container with the type1v2 IOMMU, the VF's IOMMU
 * group, and its device fd. The guest sees it through the same igb profile as the emulated
 * VF (vf.c does the PCI function): BAR0 pages come straight from the device's mmapped BAR,
 * MSI-X vectors go from VFIO's eventfds straight to KVM's irqfds, and the device DMAs into
 * guest RAM that the IOMMU maps at IOVA = guest-physical address.
 */
#include "sriov_priv.h"

#include "godwit/hv.h"
#include "godwit/igb_vf.h"
#include "godwit/log.h"

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
#include <unistd.h>

#define VFIO_DEV "/dev/vfio"

struct sriov_be {
	struct sriov_vf *vf;
	char addr[16];
	int container, group, dev;
	uint64_t cfg_off;	      /* the configuration space region's offset in dev */
	uint64_t bar0_off, bar0_size; /* BAR0's region */
	uint8_t *bar0;		      /* mmapped BAR0, or NULL: every access goes through dev */
	struct hv_ram_range ram[2];
	unsigned nram;	     /* ranges mapped in the IOMMU */
	unsigned msix_count; /* vectors the device offers */
	bool msix_on;	     /* VFIO has the vectors' eventfds */
	uint16_t guest_cmd;  /* the guest's command register (its bus master bit) */
	bool closing;	     /* no more bus mastering, whatever the guest set */
	int req_fd;	     /* the host asks for the device back (unbind, hot-unplug) */
	pthread_t req_thread;
	bool req_started;
	int stop_fd;
	pthread_mutex_t lock;
	/* A PF reset the VMM plays to the guest's driver (pf_reset): the device's PF knows
	 * nothing of it, so the mailbox page traps and its reads are amended (mbx_lock). */
	pthread_mutex_t mbx_lock;
	bool pf_resetting; /* RSTI shows, and word 0 holds "NACK without CTS" */
	bool notice;	   /* that word is a PF message (PFSTS) until the driver ACKs it */
	bool rstd;	   /* the played reset ended: RSTD shows once (cleared on read) */
	bool reset_seen;   /* the driver reset the function since the reset began */
};

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

/* Guest RAM in the IOMMU at IOVA = guest-physical address: the device's DMA reaches exactly
 * the guest's memory. The kernel pins the pages. */
static int map_ram(struct sriov_be *be)
{
	struct hv_ram_range r[2];
	unsigned n = hv_vm_ram_ranges(sriov_vf_vm(be->vf), r);
	for (unsigned i = 0; i < n; i++) {
		struct vfio_iommu_type1_dma_map m = {
		    .argsz = sizeof(m),
		    .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		    .vaddr = (uint64_t)(uintptr_t)r[i].hva,
		    .iova = r[i].gpa,
		    .size = r[i].len,
		};
		if (ioctl(be->container, VFIO_IOMMU_MAP_DMA, &m) < 0) {
			int rc = -errno;
			GW_ERR(be_name(be), "the IOMMU refused guest RAM [%#llx, +%llu MiB): %s%s",
			       (unsigned long long)r[i].gpa, (unsigned long long)(r[i].len >> 20),
			       strerror(errno),
			       errno == ENOMEM ? " (raise the locked-memory limit, ulimit -l)"
					       : "");
			return rc;
		}
		be->ram[be->nram++] = r[i];
	}
	return 0;
}

static void unmap_ram(struct sriov_be *be)
{
	for (unsigned i = 0; i < be->nram; i++) {
		struct vfio_iommu_type1_dma_unmap u = {
		    .argsz = sizeof(u), .iova = be->ram[i].gpa, .size = be->ram[i].len};
		if (ioctl(be->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
			GW_WARN(be_name(be), "cannot unmap guest RAM from the IOMMU: %s",
				strerror(errno));
	}
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
	be->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (be->req_fd < 0 || be->stop_fd < 0 ||
	    set_irqs(be, VFIO_PCI_REQ_IRQ_INDEX, 1, &be->req_fd) ||
	    pthread_create(&be->req_thread, NULL, req_main, be)) {
		GW_WARN(be_name(be), "no notice of %s's removal: %s", be->addr, strerror(errno));
		return;
	}
	be->req_started = true;
}

static void be_close(struct sriov_be *be);

static int be_open(struct sriov_vf *vf, const struct sriov_vf_config_spec *spec,
		   struct sriov_be **out)
{
	struct sriov_be *be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->vf = vf;
	be->container = be->group = be->dev = be->req_fd = be->stop_fd = -1;
	pthread_mutex_init(&be->lock, NULL);
	pthread_mutex_init(&be->mbx_lock, NULL);
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
	if (be->req_started) {
		uint64_t one = 1;
		if (write(be->stop_fd, &one, sizeof(one)) < 0)
			GW_WARN(be_name(be), "cannot end the removal watch: %s", strerror(errno));
		pthread_join(be->req_thread, NULL);
	}
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
	if (be->container >= 0)
		unmap_ram(be);
	if (be->bar0)
		munmap(be->bar0, IGB_VF_BAR0_SIZE);
	int fds[] = {be->dev, be->group, be->container, be->req_fd, be->stop_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&be->lock);
	pthread_mutex_destroy(&be->mbx_lock);
	free(be);
}

static void *be_bar0_page(struct sriov_be *be, unsigned page)
{
	return be->bar0 && page < IGB_VF_BAR0_SIZE / 4096u ? be->bar0 + 4096u * page : NULL;
}

/* The device's own registers. */
static uint64_t dev_read(struct sriov_be *be, uint64_t off, unsigned size)
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

static void dev_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size)
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

/*
 * The played PF reset (docs/devices.md, "Across generations"). The VF's state cannot be read
 * from the device, so a VM leaves with it only as the emulated VF does for another
 * generation: its driver resets the function and waits, and the destination re-creates it.
 * The device's PF is not asked (it may be any PF driver, and it would reset the function for
 * good): the VMM shows the driver what a PF's reset looks like on the VF's side. While it
 * lasts the mailbox page traps: V2PMBX reads with RSTI and, until the driver acknowledges
 * it, PFSTS; word 0 of the mailbox memory reads "NACK without CTS", the message that makes
 * Linux igbvf reset and renegotiate. The driver's CTRL.RST goes to the device: the function
 * resets, and its PF takes its queues away (VFRE/VFTE) until a new VF_RESET handshake, so it
 * does no DMA from then on. When the reset ends here (the VM stays), RSTD shows once and the
 * driver's handshake goes to the PF as usual.
 */
static bool mbx_amended(const struct sriov_be *be)
{
	return be->pf_resetting || be->notice || be->rstd;
}

static uint64_t be_read(struct sriov_be *be, uint64_t off, unsigned size)
{
	if (size != 4 || (off != IGB_V2PMBX && off != IGB_VMBMEM))
		return dev_read(be, off, size);
	pthread_mutex_lock(&be->mbx_lock);
	uint32_t v = (uint32_t)dev_read(be, off, size);
	bool back = false;
	if (off == IGB_VMBMEM && (be->pf_resetting || be->notice)) {
		v = IGB_PF_NOT_CTS;
	} else if (off == IGB_V2PMBX && mbx_amended(be)) {
		v |= (be->pf_resetting ? IGB_MBX_RSTI : 0) | (be->notice ? IGB_MBX_PFSTS : 0) |
		     (be->rstd ? IGB_MBX_RSTD : 0);
		be->rstd = false;
		back = !mbx_amended(be);
	}
	pthread_mutex_unlock(&be->mbx_lock);
	if (back) {
		sriov_vf_mbx_exchange(be->vf, false); /* read straight again, unless policy traps */
		/* A reset begun meanwhile (be_pf_reset) needs the page trapped after all. */
		pthread_mutex_lock(&be->mbx_lock);
		bool again = mbx_amended(be);
		pthread_mutex_unlock(&be->mbx_lock);
		if (again)
			sriov_vf_mbx_exchange(be->vf, true);
	}
	return v;
}

static void be_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size)
{
	if (size != 4 || (off != IGB_V2PMBX && off != IGB_CTRL)) {
		dev_write(be, off, val, size);
		return;
	}
	pthread_mutex_lock(&be->mbx_lock);
	if (off == IGB_V2PMBX && be->notice && (val & IGB_MBX_ACK)) {
		be->notice = false; /* the played message was read: the PF hears no ACK of it */
		val &= ~(uint64_t)IGB_MBX_ACK;
	}
	if (off == IGB_CTRL && (val & IGB_CTRL_RST) && be->pf_resetting) {
		be->reset_seen = true;
		be->notice = false;
	}
	dev_write(be, off, val, size);
	pthread_mutex_unlock(&be->mbx_lock);
}

/* The mailbox's interrupt, as the device would raise it: the vector its driver allocated to
 * "other" causes (IVAR_MISC), through the same eventfd the device signals. */
static void mbx_interrupt(struct sriov_be *be)
{
	uint32_t ivar = (uint32_t)dev_read(be, IGB_IVAR_MISC, 4);
	pthread_mutex_lock(&be->lock);
	bool msix = be->msix_on;
	pthread_mutex_unlock(&be->lock);
	if (!msix || !(ivar & 0x80u))
		return; /* no vector yet: the driver finds the mailbox when it next looks */
	uint64_t one = 1;
	int fd = sriov_vf_msix_eventfd(be->vf, ivar & 3u);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		GW_WARN(be_name(be), "cannot raise the mailbox interrupt: %s", strerror(errno));
}

static void be_pf_reset(struct sriov_be *be, bool begin)
{
	pthread_mutex_lock(&be->mbx_lock);
	if (begin) {
		be->pf_resetting = be->notice = true;
		be->rstd = be->reset_seen = false;
	} else if (be->pf_resetting) {
		be->pf_resetting = be->notice = false;
		be->rstd = true;
	} else {
		pthread_mutex_unlock(&be->mbx_lock);
		return;
	}
	pthread_mutex_unlock(&be->mbx_lock);
	sriov_vf_mbx_exchange(be->vf, true); /* reads trap from now until RSTD was read */
	mbx_interrupt(be);
	GW_INFO(be_name(be), "%s: %s", be->addr,
		begin ? "a PF reset shown to the guest's driver (RSTI), the device's PF not asked"
		      : "the shown PF reset ended (RSTD): the driver's handshake goes to the PF");
}

/* A migration's destination: the driver waits on the reset it saw on the source (RSTI). The
 * device was reset when it was opened, and the 82576 latches RSTD only when its PF resets
 * (QEMU's igb too): so RSTD shows once, as it would after the PF's reset, and the driver's
 * VF_RESET goes to this host's PF. No interrupt: the function's vectors are not allocated yet
 * (its IVAR_MISC came up reset), and the driver polls while it waits. */
static void be_recreated(struct sriov_be *be)
{
	pthread_mutex_lock(&be->mbx_lock);
	be->rstd = true;
	pthread_mutex_unlock(&be->mbx_lock);
	sriov_vf_mbx_exchange(be->vf, true);
}

static bool be_pf_reset_seen(struct sriov_be *be)
{
	pthread_mutex_lock(&be->mbx_lock);
	bool seen = be->reset_seen;
	pthread_mutex_unlock(&be->mbx_lock);
	return seen;
}

/* MSI-X on: each vector's VFIO trigger is the eventfd vf.c wired to KVM's irqfd, so an
 * interrupt reaches the guest without the VMM. */
static void be_set_msix(struct sriov_be *be, bool on)
{
	pthread_mutex_lock(&be->lock);
	if (on != be->msix_on) {
		int fds[IGB_VF_MSIX_VECS];
		for (unsigned v = 0; v < IGB_VF_MSIX_VECS; v++)
			fds[v] = sriov_vf_msix_eventfd(be->vf, v);
		int rc = set_irqs(be, VFIO_PCI_MSIX_IRQ_INDEX, on ? IGB_VF_MSIX_VECS : 0, fds);
		if (rc)
			GW_ERR(be_name(be), "cannot %s MSI-X on %s: %s", on ? "enable" : "disable",
			       be->addr, strerror(-rc));
		else
			be->msix_on = on;
	}
	pthread_mutex_unlock(&be->lock);
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

/* Without a vendor migration driver the device cannot be frozen: while the VM is paused it
 * goes on receiving into the rings the guest gave it. Holding its bus mastering off instead
 * is no pause: a NIC drops what arrives meanwhile but moves its ring head on (QEMU's igb
 * does), and the guest's ring is never in step again (seen: echoes stopped for good after a
 * VM pause). So a pause leaves the device alone; a migration has the guest's driver reset it
 * first (be_pf_reset), after which its PF lets it do no DMA. */
static int be_run(struct sriov_be *be, bool run)
{
	(void)be;
	(void)run;
	return 0;
}

static int be_save(struct sriov_be *be, struct gw_buf *out)
{
	(void)out;
	GW_ERR(be_name(be),
	       "%s: the state of a VF passed through with VFIO cannot be read without a vendor "
	       "migration driver; it migrates only by re-creation on the destination",
	       be->addr);
	return -ENOTSUP;
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
	out->rx_frames = dev_read(be, IGB_VFGPRC, 4);
	out->tx_frames = dev_read(be, IGB_VFGPTC, 4);
	snprintf(out->port, sizeof(out->port), "vfio:%s", be->addr);
}

const struct sriov_backend_ops sriov_vfio_ops = {
    .name = "vfio",
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
};
