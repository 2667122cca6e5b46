#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Lists the project's C sources and headers (what clang-format checks), one per line.
cd "$(dirname "$0")/.." || exit 1
find common hv vmm tests daemon cli migrate sriov dma proto tools bench \
	-name '*.[ch]' -not -path '*/build/*' 2>/dev/null | sort
