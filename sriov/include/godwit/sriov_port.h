/* SPDX-License-Identifier: Apache-2.0 */
/* Packet ports: the wire side of an emulated NIC function (UDP, unix datagram, TAP, a NIC, or
 * a DPDK ethdev port). */
#ifndef GODWIT_SRIOV_PORT_H
#define GODWIT_SRIOV_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sriov_port;

/*
 * Opens a port from a spec:
 *   "none"            frames sent are dropped and counted; nothing is ever received
 *   "udp:HOST:PORT"   the uplink peer ("the switch"); the port binds an ephemeral UDP socket
 *                     on the matching local address and sends every frame to HOST:PORT;
 *                     only datagrams from HOST:PORT are frames (others are dropped and
 *                     counted as rx_foreign)
 *   "unix:PATH"       the same with unix datagram sockets (the port autobinds its own name)
 *   "tap:NAME"        a TAP interface (IFF_TAP | IFF_NO_PI); -EPERM/-ENOENT when unavailable
 *   "packet:IFNAME"   a network interface through an AF_PACKET raw socket (packet(7)): whole
 *                     Ethernet frames go out on IFNAME; frames that come in on it are received,
 *                     not those that leave it (PACKET_OUTGOING: other sockets' frames; on a
 *                     loopback interface every frame sent also comes back in, and every port
 *                     on it, the sender's included, receives that copy). The interface is
 *                     promiscuous while the port is open, so frames to other MACs (a VF's on
 *                     its PF) are seen; VLAN tags the NIC stripped on receive are not put
 *                     back. -ENODEV when IFNAME does not exist, -EPERM without CAP_NET_RAW
 *                     (the reason says which)
 *   "dpdk:DEVARGS"    a DPDK ethdev port (port_dpdk.c): DEVARGS as DPDK's --vdev or -a takes
 *                     it, a virtual device ("net_af_packet0,iface=eth1", "net_tap0,iface=gw0",
 *                     "net_vhost0,iface=/run/sw.sock") or a PCI address of a NIC bound to
 *                     vfio-pci ("0000:03:00.0"). The process's EAL starts with the first such
 *                     port (no hugepages, no shared files); one RX and one TX queue, burst
 *                     RX, sends batched until sriov_port_flush or a full burst, promiscuous.
 *                     The port has no fd: the caller polls (sriov_port_polled). -EBUSY when
 *                     another port of this process holds the device
 * Returns 0 or -EINVAL (bad spec, with a one-line reason in err), or another -errno.
 */
int sriov_port_open(const char *spec, struct sriov_port **out, char *err, size_t errlen);
void sriov_port_close(struct sriov_port *p);
/* A non-blocking fd that polls readable when a frame can be received (-1 for "none" and
 * "dpdk:"). */
int sriov_port_fd(const struct sriov_port *p);
/* True for a port whose frames no fd announces (a DPDK poll-mode driver): whoever receives
 * from it must look again every little while. */
bool sriov_port_polled(const struct sriov_port *p);
/* Hands frames a port batched (dpdk:) to the wire; the others send at once. Call it after a
 * round of sends; a full batch goes by itself. */
void sriov_port_flush(struct sriov_port *p);
/* Sends one frame; returns 0, -EAGAIN when the socket is full, -ENOBUFS when a dpdk: port has
 * no mbuf for it, -EMSGSIZE, or -errno. */
int sriov_port_send(struct sriov_port *p, const void *frame, size_t len);
/* Receives one frame into buf; returns its length (frames longer than cap are truncated and
 * reported as -EMSGSIZE after being consumed), -EAGAIN when there is none, or -errno. */
ssize_t sriov_port_recv(struct sriov_port *p, void *buf, size_t cap);
/* Tells the switch where this MAC now lives (a RARP frame, ethertype 0x8035, as hypervisors
 * send after a migration). */
int sriov_port_announce(struct sriov_port *p, const uint8_t mac[6]);
/* "udp 127.0.0.1:40000 -> 127.0.0.1:9000", for logs and status. */
const char *sriov_port_describe(const struct sriov_port *p);

struct sriov_port_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped;
	uint64_t rx_frames, rx_bytes, rx_errors;
	uint64_t rx_foreign; /* udp: datagrams from another address than the peer's, dropped */
};
void sriov_port_stats(const struct sriov_port *p, struct sriov_port_stats *out);

#endif
