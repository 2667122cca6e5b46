/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the migration stream decoder (handshake, record headers, RAM batches)
 * on arbitrary bytes, applied to a small RAM. */
#include "godwit/crc.h"
#include "stream.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t ram[16 * MIG_PAGE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= sizeof(struct mig_hello)) {
		struct mig_hello h;
		memcpy(&h, data, sizeof(h));
		mig_hello_check(&h);
	}
	if (size >= sizeof(struct mig_reply)) {
		struct mig_reply r;
		memcpy(&r, data, sizeof(r));
		mig_reply_check(&r);
	}
	/* A sequence of records, as a destination channel reads them. */
	struct gw_rd rd;
	gw_rd_init(&rd, data, size);
	struct gw_sect_hdr h;
	while (gw_rd_get(&rd, &h, sizeof(h)) == 0) {
		if (mig_record_check_hdr(&h))
			break;
		const void *payload;
		if (gw_rd_ptr(&rd, &payload, h.length))
			break;
		/* The CRC is checked first in the product; here the decoder also meets payloads
		 * whose CRC happens to match nothing, so apply regardless. */
		uint64_t pages = 0, zeros = 0;
		if (h.magic == MIG_TAG_RAM)
			mig_batch_apply(&h, payload, ram, 16, NULL, &pages, &zeros);
		(void)gw_crc32c(0, payload, h.length);
	}
	return 0;
}
