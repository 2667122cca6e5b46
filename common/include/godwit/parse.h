/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers for values people type: sizes such as 256M, unsigned integers. */
#ifndef GODWIT_PARSE_H
#define GODWIT_PARSE_H

#include <stdint.h>

/* "4096", "64K", "256M", "2G" (binary units; optional trailing "iB"/"B"). 0 or -EINVAL/-ERANGE. */
int gw_parse_size(const char *s, uint64_t *out);
/* Decimal unsigned integer within [min, max]. 0 or -EINVAL/-ERANGE. */
int gw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
