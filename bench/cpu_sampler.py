#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""CPU time per thread of the processes whose command line names MARK, read from /proc every
0.1 s until STOP exists, written to OUT as JSON {pid: {tid: [comm, ms]}}: a thread's last
reading before it ends (the source's VMM exits at the handover) counts. Readings are deltas
from the first one seen, so what a process spent before the sampler started is left out.
usage: cpu_sampler.py MARK STOP OUT"""
import json
import os
import sys
import time

mark, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
first, last = {}, {}


def threads():
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() not in f.read():
                    continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    s = f.read()
                comm = s[s.index("(") + 1:s.rindex(")")]
                rest = s[s.rindex(")") + 2:].split()
                yield int(pid), int(tid), comm, (int(rest[11]) + int(rest[12])) * tick_ms
        except (OSError, ValueError):
            continue


while not os.path.exists(stop):
    for pid, tid, comm, ms in threads():
        first.setdefault((pid, tid), ms)
        last[(pid, tid)] = (comm, ms)
    time.sleep(0.1)
doc = {}
for (pid, tid), (comm, ms) in last.items():
    doc.setdefault(str(pid), {})[str(tid)] = [comm, ms - first[(pid, tid)]]
with open(out, "w") as f:
    json.dump(doc, f)
