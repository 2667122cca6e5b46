/* SPDX-License-Identifier: Apache-2.0 */
/* CRC-32C (Castagnoli), the checksum of every wire and state section. */
#ifndef GODWIT_CRC_H
#define GODWIT_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0. Uses SSE4.2 when the CPU has it. */
uint32_t gw_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable bytewise path, for checking the fast one. */
uint32_t gw_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
