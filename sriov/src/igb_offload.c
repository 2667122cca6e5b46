/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The 82576's packet offloads (datasheet 7.2.4 "TCP segmentation", 7.2.5 "checksum
 * offloading", 7.4 "VLAN support"): what Linux igbvf asks of every TCP/UDP frame it sends
 * (NETIF_F_HW_CSUM, TSO and VLAN insertion are on by default) and the VLAN stripping the igb
 * PF turns on for its VFs (VMOLR.STRVLAN).
 */
#include "igb_offload.h"

#include "godwit/crc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define ETH_HLEN 14u
#define VLAN_LEN 4u
#define TCP_FIN	 0x01u
#define TCP_PSH	 0x08u
#define TCP_CWR	 0x80u

struct geom {
	size_t mac, ip, l4, l4len; /* header offsets and the TCP header length (TSO) */
	uint32_t l4t, mss;
	bool v4;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* RFC 1071 one's-complement sum of big-endian 16-bit words, not yet folded. */
static uint32_t sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)s;
}

static bool geom_get(const struct igb_tx_ctx *c, size_t len, struct geom *g)
{
	g->mac = (c->vlan_macip_lens >> IGB_CTX_MACLEN_SHIFT) & 0x7F;
	g->ip = c->vlan_macip_lens & IGB_CTX_IPLEN_MASK;
	g->l4 = g->mac + g->ip;
	g->l4len = (c->mss_l4len_idx >> IGB_CTX_L4LEN_SHIFT) & 0xFF;
	g->l4t = c->type_tucmd_mlhl & IGB_CTX_TUCMD_L4T;
	g->mss = c->mss_l4len_idx >> IGB_CTX_MSS_SHIFT;
	return g->mac >= ETH_HLEN && g->mac < len && g->l4 <= len;
}

/* The IPv4 header checksum over the context's IPLEN bytes (IXSM). */
static void ip_csum(uint8_t *f, const struct geom *g)
{
	uint8_t *ip = f + g->mac;
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~fold(sum(ip, g->ip, 0)));
}

/* Where the L4 checksum lives, by the context's L4T (TCP, UDP, SCTP). */
static size_t l4_csum_off(uint32_t l4t)
{
	return l4t == IGB_CTX_L4T_TCP ? 16 : l4t == IGB_CTX_L4T_UDP ? 6 : 8;
}

/* TXSM without TSE: the driver left the pseudo-header sum in the checksum field
 * (CHECKSUM_PARTIAL); the device adds everything from the L4 header to the end. SCTP gets
 * its CRC-32c, stored little-endian (RFC 4960 appendix B). */
static int l4_csum_partial(uint8_t *f, size_t len, const struct geom *g)
{
	size_t off = g->l4 + l4_csum_off(g->l4t);
	if (off + (g->l4t == IGB_CTX_L4T_SCTP ? 4 : 2) > len)
		return -EINVAL;
	if (g->l4t == IGB_CTX_L4T_SCTP) {
		memset(f + off, 0, 4);
		uint32_t crc = gw_crc32c(0, f + g->l4, len - g->l4);
		for (unsigned i = 0; i < 4; i++)
			f[off + i] = (uint8_t)(crc >> (8 * i));
		return 0;
	}
	uint16_t c = (uint16_t)~fold(sum(f + g->l4, len - g->l4, 0));
	if (c == 0 && g->l4t == IGB_CTX_L4T_UDP)
		c = 0xFFFF; /* UDP: 0 means "no checksum" (RFC 768) */
	put16(f + off, c);
	return 0;
}

/* A TSO segment's TCP checksum, from scratch: pseudo header of this segment's length. */
static void tcp_csum_full(uint8_t *f, size_t len, const struct geom *g)
{
	const uint8_t *ip = f + g->mac;
	size_t tlen = len - g->l4;
	uint32_t s = g->v4 ? sum(ip + 12, 8, 0) : sum(ip + 8, 32, 0);
	s += 6 + (uint32_t)tlen; /* next header TCP, and the TCP length */
	put16(f + g->l4 + 16, 0);
	put16(f + g->l4 + 16, (uint16_t)~fold(sum(f + g->l4, tlen, s)));
}

/* VLE: the tag goes in after the addresses, into seg. */
static int emit_frame(const struct igb_tx_req *rq, const uint8_t *f, size_t len, uint8_t *seg,
		      size_t seg_size, igb_tx_emit emit, void *opaque)
{
	if (!(rq->cmd & IGB_TXD_CMD_VLE))
		return emit(opaque, f, len) == 0;
	if (len < 12 || len + VLAN_LEN > seg_size)
		return 0;
	if (seg != f)
		memmove(seg, f, 12);
	memmove(seg + 12 + VLAN_LEN, f + 12, len - 12);
	put16(seg + 12, 0x8100);
	put16(seg + 14, (uint16_t)(rq->ctx->vlan_macip_lens >> IGB_CTX_VLAN_SHIFT));
	return emit(opaque, seg, len + VLAN_LEN) == 0;
}

/* TSE: one frame per MSS of payload, each with the header copied and its lengths, IPv4 id,
 * TCP sequence number, flags and checksums made right for that segment. */
static int tso(const struct igb_tx_req *rq, const struct geom *g, uint8_t *pkt, size_t len,
	       uint8_t *seg, size_t seg_size, igb_tx_emit emit, void *opaque)
{
	size_t hdr = g->l4 + g->l4len;
	if (g->l4t != IGB_CTX_L4T_TCP || g->l4len < 20 || g->mss == 0 || hdr > len ||
	    hdr + g->mss + VLAN_LEN > seg_size || (!g->v4 && g->ip < 40) || (g->v4 && g->ip < 20))
		return -EINVAL;
	size_t pay = len - hdr, done = 0;
	uint16_t id = get16(pkt + g->mac + 4);
	uint32_t seq = get32(pkt + g->l4 + 4);
	uint8_t flags = pkt[g->l4 + 13];
	int sent = 0;
	unsigned i = 0;
	do {
		size_t n = pay - done < g->mss ? pay - done : g->mss;
		bool last = done + n == pay;
		memcpy(seg, pkt, hdr);
		memcpy(seg + hdr, pkt + hdr + done, n);
		uint8_t *ip = seg + g->mac, *tcp = seg + g->l4;
		if (g->v4) {
			put16(ip + 2, (uint16_t)(g->ip + g->l4len + n));
			put16(ip + 4, (uint16_t)(id + i));
		} else {
			put16(ip + 4, (uint16_t)(g->ip - 40 + g->l4len + n));
		}
		if (g->v4 && (rq->olinfo & IGB_TXD_POPTS_IXSM))
			ip_csum(seg, g);
		put32(tcp + 4, seq + (uint32_t)done);
		tcp[13] = (uint8_t)(flags & ~(last ? 0 : TCP_FIN | TCP_PSH) & ~(i ? TCP_CWR : 0));
		tcp_csum_full(seg, hdr + n, g);
		/* VLE needs the tag room: shift the segment within seg. */
		sent += emit_frame(rq, seg, hdr + n, seg, seg_size, emit, opaque);
		done += n;
		i++;
	} while (done < pay);
	return sent;
}

int igb_tx_offload(const struct igb_tx_req *rq, uint8_t *pkt, size_t len, uint8_t *seg,
		   size_t seg_size, igb_tx_emit emit, void *opaque)
{
	bool any = rq->cmd & (IGB_TXD_CMD_TSE | IGB_TXD_CMD_VLE) ||
		   rq->olinfo & (IGB_TXD_POPTS_IXSM | IGB_TXD_POPTS_TXSM);
	if (!any)
		return emit(opaque, pkt, len) == 0;
	struct geom g;
	if (!geom_get(rq->ctx, len, &g))
		return -EINVAL;
	g.v4 = (pkt[g.mac] >> 4) == 4;
	if (rq->cmd & IGB_TXD_CMD_TSE)
		return tso(rq, &g, pkt, len, seg, seg_size, emit, opaque);
	if (rq->olinfo & IGB_TXD_POPTS_IXSM) {
		if (!g.v4 || g.ip < 20)
			return -EINVAL;
		ip_csum(pkt, &g);
	}
	if ((rq->olinfo & IGB_TXD_POPTS_TXSM) && l4_csum_partial(pkt, len, &g))
		return -EINVAL;
	return emit_frame(rq, pkt, len, seg, seg_size, emit, opaque);
}

int igb_rx_strip_vlan(uint8_t *f, size_t *len)
{
	if (*len < ETH_HLEN + VLAN_LEN || get16(f + 12) != 0x8100)
		return -1;
	int tci = get16(f + 14);
	memmove(f + 12, f + 16, *len - 16);
	*len -= VLAN_LEN;
	return tci;
}
