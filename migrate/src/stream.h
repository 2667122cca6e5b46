/* SPDX-License-Identifier: Apache-2.0 */
/* The migration stream's wire format (docs/migration-stream.md): pure encode/decode. */
#ifndef GODWIT_MIG_STREAM_H
#define GODWIT_MIG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "godwit/buf.h"
#include "godwit/mig.h"

#define MIG_STREAM_MAGIC   GW_FOURCC('G', 'W', 'M', 'S')
#define MIG_REPLY_MAGIC	   GW_FOURCC('G', 'W', 'M', 'R')
#define MIG_STREAM_VERSION 1
#define MIG_MAX_RECORD	   (8u << 20)
#define MIG_PAGE	   4096u
#define MIG_ZERO_FLAG	   (1ull << 63)

/* Record tags. */
#define MIG_TAG_RAM   GW_FOURCC('R', 'A', 'M', 'B') /* a batch of pages */
#define MIG_TAG_STATE GW_FOURCC('S', 'T', 'A', 'T') /* hv_vm_save_state blob */
#define MIG_TAG_END   GW_FOURCC('E', 'N', 'D', 'S') /* this channel is complete */
#define MIG_TAG_READY GW_FOURCC('R', 'E', 'D', 'Y') /* dest -> source: state loaded */
#define MIG_TAG_FAIL  GW_FOURCC('F', 'A', 'I', 'L') /* either way: a message, then close */
#define MIG_TAG_SYNC  GW_FOURCC('S', 'Y', 'N', 'C') /* source -> dest: answer once applied */
#define MIG_TAG_SACK  GW_FOURCC('S', 'A', 'C', 'K') /* dest -> source, channel 0: u32 channel */

struct mig_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t channel;
	uint16_t nchannels;
	uint16_t flags;	  /* MIG_HELLO_* */
	uint32_t tsc_khz; /* the VM's TSC rate; 0: unknown */
	uint64_t config_digest;
	uint64_t ram_size;
	char token[MIG_TOKEN_LEN];
	uint32_t crc;
	uint32_t pad;
};
_Static_assert(sizeof(struct mig_hello) == 104, "hello is 104 bytes on the wire");

enum mig_reply_status {
	MIG_REPLY_OK = 0,
	MIG_REPLY_VERSION = 1,
	MIG_REPLY_TOKEN = 2,
	MIG_REPLY_CONFIG = 3,
	MIG_REPLY_CHANNEL = 4,
	MIG_REPLY_MEMORY = 5,
	MIG_REPLY_MALFORMED = 6,
	MIG_REPLY_TLS = 7, /* the destination takes the stream over TLS only */
};

struct mig_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t status;
	char message[120];
	uint32_t crc;
	uint32_t pad;
};
_Static_assert(sizeof(struct mig_reply) == 136, "reply is 136 bytes on the wire");

/* The operator lets the destination run the guest's TSC at its host's rate (hv_tsc_plan). */
#define MIG_HELLO_TSC_ANY 0x0001u

void mig_hello_encode(struct mig_hello *h, uint16_t channel, uint16_t nchannels, uint64_t digest,
		      uint64_t ram_size, uint32_t tsc_khz, uint16_t flags, const char *token);
/* Checks framing and CRC only: -EBADMSG (not a godwit stream or corrupt), -EPROTO (version). */
int mig_hello_check(const struct mig_hello *h);
void mig_reply_encode(struct mig_reply *r, enum mig_reply_status st, const char *msg);
int mig_reply_check(const struct mig_reply *r);

/* Record header = gw_sect_hdr. Validates tag, version and size; -EBADMSG/-EPROTO. */
int mig_record_check_hdr(const struct gw_sect_hdr *h);
/* Builds a whole record (header + payload) into out. */
void mig_record_put(struct gw_buf *out, uint32_t tag, const void *payload, uint32_t len);

/*
 * RAM batch payload: u32 count, u32 reserved, then count entries of u64 page index (bit 63:
 * the page is all zeros and no data follows) and, unless zero, 4096 bytes of data.
 */
struct mig_batch {
	struct gw_buf buf; /* header + payload under construction */
	size_t hdr_off;
	uint32_t count;
	uint32_t zero;
	/* Sent over TLS: its records' AEAD authenticates every byte, so no CRC is computed
	 * (GW_SECT_NO_CRC), and the destination accepts that only on a TLS channel. */
	bool no_crc;
};
void mig_batch_begin(struct mig_batch *b);
/* Adds a page: only its index when it reads as zeros, else a copy of its bytes. */
void mig_batch_add(struct mig_batch *b, uint64_t page_index, const uint8_t *data);
/* Adds a page known to be zero (a hole in RAM) without reading it. */
void mig_batch_add_zero(struct mig_batch *b, uint64_t page_index);
/* Finishes the record (length, CRC); b->buf then holds the bytes to send. */
void mig_batch_end(struct mig_batch *b);
/* Applies a RAM batch to RAM (npages pages at ram). -EBADMSG on any inconsistency, before
 * or after writing: pages already written are harmless (the stream is then abandoned). */
/* touched (optional): pages written so far; a zero page landing on an untouched page is
 * skipped, since fresh RAM already reads as zeros. */
int mig_batch_apply(const uint8_t *payload, size_t len, uint8_t *ram, uint64_t npages,
		    uint64_t *touched, uint64_t *pages, uint64_t *zeros);

bool mig_page_is_zero(const uint8_t *p);

#endif
