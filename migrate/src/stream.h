/* SPDX-License-Identifier: Apache-2.0 */
/* The migration stream's wire format (docs/migration-stream.md): pure encode/decode. */
#ifndef GODWIT_MIG_STREAM_H
#define GODWIT_MIG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "godwit/buf.h"
#include "godwit/mig.h"

#define MIG_STREAM_MAGIC   GW_FOURCC('G', 'W', 'M', 'S')
#define MIG_REPLY_MAGIC	   GW_FOURCC('G', 'W', 'M', 'R')
#define MIG_STREAM_VERSION 3
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
/* dest -> source, channel 0: u32 channel, u32 count, count u64 page indexes to send again (a
 * batch sent while the VM ran whose pages did not match their hash) */
#define MIG_TAG_NACK GW_FOURCC('N', 'A', 'C', 'K')

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
 * RAM batch payload: a head, then the data of its pages.
 *   head: u32 count, u32 ndata, u32 flags (MIG_RAMB_*), u32 reserved (0), u64 hash, then count
 *         u64 page indexes (bit 63: the page is all zeros and has no data)
 *   data: ndata pages of 4096 bytes, one per entry without bit 63, in the entries' order
 * The record header's CRC covers the head alone, so that the destination can check every
 * index before any byte lands and then read the pages straight into guest RAM. The pages are
 * covered by hash (XXH64, chained page by page), or by the stream's TLS records
 * (MIG_RAMB_NO_HASH, accepted only on a TLS channel).
 */
#define MIG_BATCH_MAX	  1024u /* entries a batch may carry */
#define MIG_RAMB_STABLE	  0x1u	/* sent while the VM was paused: a mismatch is corruption */
#define MIG_RAMB_NO_HASH  0x2u	/* the pages are authenticated by the TLS records */
#define MIG_RAMB_HEAD_MIN 24u	/* the head without its indexes */

/* Builds a batch that references the pages where they are (guest RAM): the head in head[],
 * and iov[0] the record header and head, iov[1..ndata] the pages. */
struct mig_batch {
	uint8_t head[sizeof(struct gw_sect_hdr) + MIG_RAMB_HEAD_MIN + 8 * MIG_BATCH_MAX];
	struct iovec iov[1 + MIG_BATCH_MAX];
	uint32_t count, ndata, zero;
	uint32_t flags;
	uint64_t hash;
};
void mig_batch_begin(struct mig_batch *b, uint32_t flags);
/* Adds a page: only its index when it reads as zeros, else a reference to its bytes, hashed
 * now (unless MIG_RAMB_NO_HASH). The caller sends the batch before it holds MIG_BATCH_MAX
 * entries (a page added to a full batch is not taken). The bytes must stay mapped until the batch
 * is sent; when they change in between, the destination finds the hash wrong and asks for the pages
 * again. */
void mig_batch_add(struct mig_batch *b, uint64_t page_index, const uint8_t *data);
/* Adds a page known to be zero (a hole in RAM) without reading it. */
void mig_batch_add_zero(struct mig_batch *b, uint64_t page_index);
/* Seals the head; returns the record's size on the wire and sets *iovcnt (b->iov). */
size_t mig_batch_end(struct mig_batch *b, int *iovcnt);

/* A received head, checked. */
struct mig_batch_view {
	uint32_t count, ndata, flags;
	uint64_t hash;
	const uint8_t *idx; /* count little-endian u64 entries */
};
/* How many bytes of head follow a record header of a RAM batch, given the head's first
 * MIG_RAMB_HEAD_MIN bytes; -EBADMSG when the count is out of bounds for the record. */
long mig_batch_head_len(const struct gw_sect_hdr *h, const uint8_t *fixed);
/* Checks a whole head (head_len bytes, starting with the fixed part): its CRC (h->crc, else
 * -EBADMSG: damaged on the way), then the flags, the counts against the record's length and
 * every index against npages (else -EPROTO: a malformed batch). */
int mig_batch_head_check(const struct gw_sect_hdr *h, const uint8_t *head, size_t head_len,
			 uint64_t npages, struct mig_batch_view *v);
/* Entry i of a checked head: its page index, and whether it is a zero page. */
uint64_t mig_batch_entry(const struct mig_batch_view *v, uint32_t i, bool *zero);
/* The hash of the data pages as they are now in RAM (ram: npages pages). */
uint64_t mig_batch_hash_ram(const struct mig_batch_view *v, const uint8_t *ram);
/* Applies the zero entries of a checked head: a zero page landing on a page never written
 * (touched, optional) is skipped, since fresh RAM already reads as zeros; marks the data pages
 * touched. Counts pages and zero pages. */
void mig_batch_apply_zero(const struct mig_batch_view *v, uint8_t *ram, uint64_t *touched,
			  uint64_t *pages, uint64_t *zeros);
/* A whole payload in memory (the fuzzer's and the unit tests' way; the destination reads the
 * pages straight into RAM instead): checks the head, copies the pages, applies the zero
 * pages. On a bad head, mig_batch_head_check's error before any byte lands; -EILSEQ after
 * landing when the pages do not match the hash. */
int mig_batch_apply(const struct gw_sect_hdr *h, const uint8_t *payload, uint8_t *ram,
		    uint64_t npages, uint64_t *touched, uint64_t *pages, uint64_t *zeros);

bool mig_page_is_zero(const uint8_t *p);

#endif
