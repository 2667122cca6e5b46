/* SPDX-License-Identifier: Apache-2.0 */
/* The DPDK packet port as port.c sees it: no DPDK type crosses this header. */
#ifndef GODWIT_SRIOV_PORT_DPDK_H
#define GODWIT_SRIOV_PORT_DPDK_H

#include "godwit/sriov_port.h"

#include <stddef.h>
#include <sys/types.h>

struct port_dpdk;

/* Frames a send batches before it hands them to the device (one rte_eth_tx_burst). */
#define PORT_DPDK_BURST 32u

/*
 * Opens DEVARGS ("net_af_packet0,iface=eth1", "net_tap0,iface=gw0", "0000:03:00.0") as an
 * ethdev port with one RX and one TX queue, starting this process's EAL on the first call.
 * desc gets "dpdk net_af_packet0 (port 0)". -EINVAL for a bad spec, else -errno; err says why.
 */
int port_dpdk_open(const char *devargs, struct port_dpdk **out, char *desc, size_t desclen,
		   char *err, size_t errlen);
void port_dpdk_close(struct port_dpdk *d);
/* Copies one frame into the TX batch (flushed when full); counts into st. 0 or -ENOBUFS. */
int port_dpdk_send(struct port_dpdk *d, const void *frame, size_t len, struct sriov_port_stats *st);
/* Hands the batch to the device; what it does not take is dropped and counted. */
void port_dpdk_flush(struct port_dpdk *d, struct sriov_port_stats *st);
/* One frame: its length, -EMSGSIZE when longer than cap (consumed), or -EAGAIN. */
ssize_t port_dpdk_recv(struct port_dpdk *d, void *buf, size_t cap);

#endif
