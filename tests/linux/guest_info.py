#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Reads what /init's gw.test=info printed (a console log, kernel lines and CRs allowed),
writes each ACPI table it dumped to OUTDIR/NAME, and prints one JSON object:
{"nproc": N, "pci": [{"bdf": "00:01.0", "vendor": "0x8086", "device": "0x10ca",
"class": "0x020000", "driver": "igbvf"}...] in bdf order, "tables": {"NAME": size...}}.
Exit 1 when the block is missing or a table does not decode to its stated size."""
import base64
import json
import os
import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: guest_info.py CONSOLE OUTDIR")
    text = open(sys.argv[1], errors="replace").read().replace("\r", "")
    lines = text.splitlines()
    try:
        lines = lines[lines.index("GODWIT-INFO-BEGIN"):lines.index("GODWIT-INFO-END") + 1]
    except ValueError:
        sys.exit("guest_info: no GODWIT-INFO-BEGIN..END block in " + sys.argv[1])
    out = {"nproc": None, "pci": [], "tables": {}}
    cur = None
    for line in lines:
        m = re.fullmatch(r"GODWIT-ACPI-TABLE-BEGIN name=(\S+) size=([0-9]+)", line)
        if m:
            cur, size, chunks = m.group(1), int(m.group(2)), []
        elif cur and line == "GODWIT-ACPI-TABLE-END name=" + cur:
            data = base64.b64decode("".join(chunks))
            if len(data) != size:
                sys.exit("guest_info: table %s decodes to %d bytes, not %d" % (cur, len(data), size))
            path = os.path.join(sys.argv[2], cur)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            out["tables"][cur] = size
            cur = None
        elif cur:
            chunks.append(line)
        elif line.startswith("nproc: "):
            out["nproc"] = int(line.split()[1])
        elif line.startswith("pci: "):
            f = line.split()
            d = dict(kv.split("=", 1) for kv in f[2:])
            d["bdf"] = f[1].split(":", 1)[1]  # 0000:00:01.0 -> 00:01.0
            out["pci"].append(d)
    out["pci"].sort(key=lambda d: d["bdf"])
    print(json.dumps(out))


main()
