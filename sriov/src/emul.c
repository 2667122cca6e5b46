/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emul backend: godwit's own SR-IOV NIC hardware. Each VF runs the igb register model in
 * a thread of its own, reaches guest memory only through a dma/ IOVA map (so what it writes is
 * invisible to KVM's dirty log, exactly like real DMA) and moves frames through a packet port.
 */
#include "igb_dev.h"
#include "sriov_priv.h"

#include "godwit/hv.h"
#include "godwit/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define BUDGET	     32u
#define IDLE_WAIT_MS 100 /* everything that matters kicks the thread; this is a safety net */
#define POLL_WAIT_US 200 /* direct-mapped doorbells must be looked at */

struct sriov_be {
	struct sriov_vf *vf;
	struct igb_dev dev;
	uint32_t *regs; /* page-aligned BAR0 image */
	struct dma_map *dma;
	struct sriov_port *port;
	uint8_t mac[6];
	int kick_fd;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool run, stop, busy, polling;
	bool moved; /* arrived by migration: announce on the first run */
};

static void be_msix(void *opaque, unsigned vec)
{
	struct sriov_be *be = opaque;
	sriov_vf_raise_msix(be->vf, vec);
}

static void be_intx(void *opaque, bool level)
{
	struct sriov_be *be = opaque;
	sriov_vf_set_intx(be->vf, level);
}

static void be_mbx_xchg(void *opaque, bool on)
{
	struct sriov_be *be = opaque;
	sriov_vf_mbx_exchange(be->vf, on);
}

static void be_kick(void *opaque)
{
	struct sriov_be *be = opaque;
	uint64_t one = 1;
	if (write(be->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		GW_DEBUG(sriov_vf_name(be->vf), "kick lost: %s", strerror(errno));
}

/* Waits for work: a kick, a frame on the port, or (with direct doorbells, or a port that no fd
 * announces, such as DPDK's) a short timeout. */
static void wait_work(struct sriov_be *be)
{
	struct pollfd p[2] = {{.fd = be->kick_fd, .events = POLLIN},
			      {.fd = sriov_port_fd(be->port), .events = POLLIN}};
	bool poll = be->polling || sriov_port_polled(be->port);
	struct timespec ts = {0, poll ? POLL_WAIT_US * 1000L : IDLE_WAIT_MS * 1000000L};
	if (ppoll(p, p[1].fd >= 0 ? 2 : 1, &ts, NULL) > 0 && (p[0].revents & POLLIN)) {
		uint64_t v;
		if (read(be->kick_fd, &v, sizeof(v)) < 0)
			(void)0; /* already drained */
	}
}

/* Tells the switch where the VF's MAC now lives once the VM has moved here, as a hypervisor
 * announces a migrated guest. At bring-up the guest's driver announces itself. */
static void announce(struct sriov_be *be)
{
	struct sriov_vf_config c;
	sriov_pf_agent_vf_config(be->dev.pf, be->dev.vf, &c);
	static const uint8_t zero[6];
	const uint8_t *mac = memcmp(c.mac, zero, 6) ? c.mac : be->mac;
	if (sriov_port_announce(be->port, mac))
		GW_DEBUG(sriov_vf_name(be->vf), "announce not sent");
}

static void *be_thread(void *arg)
{
	struct sriov_be *be = arg;
	pthread_mutex_lock(&be->run_lock);
	while (!be->stop) {
		if (!be->run) {
			pthread_cond_wait(&be->run_cond, &be->run_lock);
			continue;
		}
		bool moved = be->moved;
		be->moved = false;
		be->busy = true;
		pthread_mutex_unlock(&be->run_lock);
		if (moved)
			announce(be);
		unsigned did = igb_dev_process(&be->dev, BUDGET);
		/* Between two rounds: where a migration's DMA shadowing does its copying. */
		sriov_vf_device_round(be->vf);
		if (!did)
			wait_work(be);
		pthread_mutex_lock(&be->run_lock);
		be->busy = false;
		pthread_cond_broadcast(&be->run_cond);
	}
	pthread_mutex_unlock(&be->run_lock);
	return NULL;
}

static int be_run(struct sriov_be *be, bool run)
{
	pthread_mutex_lock(&be->run_lock);
	be->run = run;
	pthread_cond_broadcast(&be->run_cond);
	/* Quiesce returns only when the hardware is between two rounds of work: nothing is
	 * half-done and nothing touches guest memory until it runs again. */
	while (!run && be->busy) {
		pthread_mutex_unlock(&be->run_lock);
		be_kick(be);
		pthread_mutex_lock(&be->run_lock);
		if (be->busy)
			pthread_cond_wait(&be->run_cond, &be->run_lock);
	}
	pthread_mutex_unlock(&be->run_lock);
	/* Frames that reached the wire side before the stop are not lost with the source:
	 * they go into the rings (and with guest memory to the destination). */
	if (!run && igb_dev_rx_drain(&be->dev))
		sriov_vf_device_round(be->vf);
	return 0;
}

static int map_ram(struct sriov_be *be, struct hv_vm *vm)
{
	uint64_t size = hv_vm_ram_size(vm);
	uint64_t low = size < HV_RAM_LOW_MAX ? size : HV_RAM_LOW_MAX;
	uint8_t *base = hv_vm_ram_base(vm);
	/* The IOMMU view a passthrough device gets: guest-physical = IOVA, RAM only. */
	int rc = dma_map_add(be->dma, 0, low, base, true);
	if (rc == 0 && size > low)
		rc = dma_map_add(be->dma, HV_RAM_HIGH_BASE, size - low, base + low, true);
	return rc;
}

static void be_close(struct sriov_be *be);

static int be_open_res(struct sriov_be *be, struct hv_vm *vm,
		       const struct sriov_vf_config_spec *spec)
{
	char err[160] = "";
	be->regs =
	    mmap(NULL, IGB_VF_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (be->regs == MAP_FAILED) {
		be->regs = NULL;
		return -errno;
	}
	be->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->kick_fd < 0)
		return -errno;
	int rc = dma_map_create(&be->dma);
	if (rc == 0)
		rc = map_ram(be, vm);
	if (rc)
		return rc;
	rc = sriov_port_open(spec->uplink ? spec->uplink : "none", &be->port, err, sizeof(err));
	if (rc) {
		GW_ERR(sriov_vf_name(be->vf), "uplink '%s': %s", spec->uplink, err);
		return rc;
	}
	return 0;
}

static int be_open(struct sriov_vf *vf, const struct sriov_vf_config_spec *spec,
		   struct sriov_be **out)
{
	struct sriov_be *be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->vf = vf;
	be->kick_fd = -1;
	memcpy(be->mac, spec->mac, 6);
	pthread_mutex_init(&be->run_lock, NULL);
	pthread_cond_init(&be->run_cond, NULL);
	int rc = be_open_res(be, sriov_vf_vm(vf), spec);
	if (rc)
		goto err_close;
	struct sriov_gen g;
	sriov_emul_gen(spec->gen, &g);
	struct igb_dev_io io = {.dma = be->dma,
				.port = be->port,
				.msix = be_msix,
				.intx = be_intx,
				.kick = be_kick,
				.mbx_xchg = be_mbx_xchg,
				.opaque = be};
	igb_dev_init(&be->dev, sriov_vf_name(vf), &g, spec->vf, sriov_vf_agent(vf), &io, be->regs);
	rc = -pthread_create(&be->thread, NULL, be_thread, be);
	if (rc)
		goto err_close;
	be->thread_started = true;
	*out = be;
	return 0;

err_close:
	be_close(be);
	return rc;
}

static void be_close(struct sriov_be *be)
{
	if (be->thread_started) {
		pthread_mutex_lock(&be->run_lock);
		be->stop = true;
		pthread_cond_broadcast(&be->run_cond);
		pthread_mutex_unlock(&be->run_lock);
		be_kick(be);
		pthread_join(be->thread, NULL);
		igb_dev_fini(&be->dev);
	}
	sriov_port_close(be->port);
	dma_map_destroy(be->dma);
	if (be->kick_fd >= 0)
		close(be->kick_fd);
	if (be->regs)
		munmap(be->regs, IGB_VF_BAR0_SIZE);
	pthread_cond_destroy(&be->run_cond);
	pthread_mutex_destroy(&be->run_lock);
	free(be);
}

/* The register image behind BAR0 pages the VMM may map: the queue pages (plain registers)
 * and the mailbox page (read straight while no exchange runs; its memory then shows what a
 * read would). The interrupt page has side effects on every access. */
static void *be_bar0_page(struct sriov_be *be, unsigned page)
{
	return page == 0 || (page >= 2 && page < 4) ? (uint8_t *)be->regs + 4096u * page : NULL;
}

static uint64_t be_read(struct sriov_be *be, uint64_t off, unsigned size)
{
	return igb_dev_read(&be->dev, off, size);
}

static void be_write(struct sriov_be *be, uint64_t off, uint64_t val, unsigned size)
{
	igb_dev_write(&be->dev, off, val, size);
}

static void be_set_msix(struct sriov_be *be, bool on)
{
	igb_dev_set_msix(&be->dev, on);
}

static void be_set_polling(struct sriov_be *be, bool on)
{
	pthread_mutex_lock(&be->run_lock);
	be->polling = on;
	pthread_mutex_unlock(&be->run_lock);
	be_kick(be);
}

static int be_save(struct sriov_be *be, struct gw_buf *out)
{
	return igb_dev_save(&be->dev, out);
}

/* Frames this port took in before the VM's state arrived came while the source still ran
 * and received the same wire (a packet or DPDK port on a shared segment sees them too): the
 * source delivered them, or drained them into the rings that came with the state. Delivering
 * them again here would duplicate them; what arrives from now on is this host's. */
static void discard_stale(struct sriov_be *be)
{
	uint8_t frame[IGB_MAX_FRAME + 4];
	unsigned n = 0;
	for (; n < 1u << 16; n++) {
		ssize_t r = sriov_port_recv(be->port, frame, sizeof(frame));
		if (r < 0 && r != -EMSGSIZE)
			break;
	}
	if (n)
		GW_INFO(sriov_vf_name(be->vf),
			"%u frame(s) that came before the VM's state were "
			"the source's: dropped",
			n);
}

static int be_load(struct sriov_be *be, const void *data, size_t len)
{
	int rc = igb_dev_load(&be->dev, data, len);
	if (rc == 0 && be->port)
		discard_stale(be);
	return rc;
}

static void be_arrived(struct sriov_be *be)
{
	pthread_mutex_lock(&be->run_lock);
	be->moved = true;
	pthread_mutex_unlock(&be->run_lock);
}

static struct dma_map *be_dma(struct sriov_be *be)
{
	return be->dma;
}

static void be_kick_op(struct sriov_be *be)
{
	be_kick(be);
}

static void be_pf_reset(struct sriov_be *be, bool begin)
{
	if (begin)
		igb_dev_pf_reset_begin(&be->dev);
	else
		igb_dev_pf_reset_end(&be->dev);
}

static bool be_pf_reset_seen(struct sriov_be *be)
{
	return igb_dev_pf_reset_seen(&be->dev);
}

static void be_status(struct sriov_be *be, struct sriov_vf_status *out)
{
	struct igb_dev_stats s;
	igb_dev_get_stats(&be->dev, &s);
	out->tx_frames = s.tx_frames;
	out->rx_frames = s.rx_frames;
	out->tx_dropped = s.tx_dropped;
	out->rx_dropped = s.rx_no_desc + s.rx_filtered + s.rx_too_long;
	out->rx_no_desc = s.rx_no_desc;
	out->rx_filtered = s.rx_filtered;
	out->rx_too_long = s.rx_too_long;
	out->dma_faults = s.dma_faults;
	out->irqs = s.irqs;
	out->mbx_exchanges = s.mbx_exchanges;
	out->mbx_exits = s.mbx_xchg_access + s.mbx_idle_access;
	out->mbx_idle_exits = s.mbx_idle_access;
	out->mbx_wait_polls = s.mbx_wait_polls;
	out->mbx_requests = s.mbx_requests;
	snprintf(out->port, sizeof(out->port), "%s", sriov_port_describe(be->port));
}

const struct sriov_backend_ops sriov_emul_ops = {
    .name = "emul",
    .state_format = "igb-vf",
    .open = be_open,
    .close = be_close,
    .bar0_page = be_bar0_page,
    .read = be_read,
    .write = be_write,
    .set_msix = be_set_msix,
    .set_polling = be_set_polling,
    .run = be_run,
    .save = be_save,
    .load = be_load,
    .arrived = be_arrived,
    .status = be_status,
    .dma = be_dma,
    .kick = be_kick_op,
    .pf_reset = be_pf_reset,
    .pf_reset_seen = be_pf_reset_seen,
};
