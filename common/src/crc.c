/* SPDX-License-Identifier: Apache-2.0 */
/* CRC-32C: the SSE4.2 instruction when present, else a bytewise table (RFC 3720, B.4). */
#include "godwit/crc.h"

#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table_entry(uint32_t b)
{
	uint32_t c = b;
	for (int k = 0; k < 8; k++)
		c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
	return c;
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	/* The 1 KiB table is rebuilt per call only when no SSE4.2 exists; that path is for
	 * portability, not speed. */
	uint32_t table[256];
	for (uint32_t i = 0; i < 256; i++)
		table[i] = crc_table_entry(i);
	while (len--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
							    size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}

uint32_t gw_crc32c(uint32_t crc, const void *data, size_t len)
{
	bool hw = __builtin_cpu_supports("sse4.2");
	crc = ~crc;
	crc = hw ? crc32c_hw(crc, data, len) : crc32c_sw(crc, data, len);
	return ~crc;
}

uint32_t gw_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	return ~crc32c_sw(~crc, data, len);
}
