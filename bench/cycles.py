#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Turns `perf script -F pid,tid,comm,period,ip,sym,dso` of a system-wide recording during one
migration into one JSON line: per side (the processes named by --roles) the CPU time or cycles,
per page and per thread name, and the top functions; and the other processes' share."""
import argparse
import collections
import os
import json
import re
import sys

LINE = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s+(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")

ap = argparse.ArgumentParser()
ap.add_argument("--tool", required=True)
ap.add_argument("--event", required=True)  # cycles or cpu-clock
ap.add_argument("--mhz", type=float, default=0)  # the CPU's clock as /proc/cpuinfo says
ap.add_argument("--freq", type=int, default=0)
ap.add_argument("--roles", required=True)  # {"source-vmm": [pid], ...}
ap.add_argument("--migration", required=True)  # the migration's own figures
ap.add_argument("--top", type=int, default=12)
ap.add_argument("--cpu", help="bench/cpu_sampler.py's output: CPU ms per thread from /proc")
ap.add_argument("--perf-log", help="perf record's own messages, kept when it sampled little")
a = ap.parse_args()
roles = json.loads(a.roles)
mig = json.loads(a.migration)
of_pid = {pid: role for role, pids in roles.items() for pid in pids if pid}

# Pages: the data pages the source's VMM counted when it reports them, else the wire's bytes
# in 4 KiB pages (QEMU: its ram.transferred, page headers included).
if mig.get("pages_sent") is not None:
    pages = mig["pages_sent"] - (mig.get("zero_pages") or 0)
    basis = "data pages the source VMM reported sending (pages sent - zero pages)"
else:
    pages = (mig.get("bytes") or 0) // 4096
    basis = "bytes on the wire / 4096"

per_role = {r: {"period": 0, "samples": 0, "threads": collections.Counter(),
                "syms": collections.Counter()} for r in roles}
other = collections.Counter()
total = 0
for line in sys.stdin:
    m = LINE.match(line)
    if not m:
        continue
    comm, pid, _tid, period, sym, dso = m.groups()
    pid, period = int(pid), int(period)
    total += period
    role = of_pid.get(pid)
    if role is None:
        other[comm if pid else "idle"] += period
        continue
    r = per_role[role]
    r["period"] += period
    r["samples"] += 1
    r["threads"][comm] += period
    dso = dso.rsplit("/", 1)[-1]
    r["syms"][f"{sym} ({dso})"] += period


def amount(period):
    """The sampled period as milliseconds of CPU (cpu-clock counts nanoseconds) or cycles."""
    return period / 1e6 if a.event == "cpu-clock" else period


sides = {}
for role, r in per_role.items():
    s = {"samples": r["samples"]}
    if a.event == "cpu-clock":
        s["cpu_ms"] = r["period"] / 1e6
        s["ns_per_page"] = r["period"] / pages if pages else None
        # A cycle estimate from the clock /proc/cpuinfo gives: the event counts time, not cycles.
        s["cycles_per_page_est"] = (r["period"] * a.mhz / 1e3 / pages) if pages and a.mhz else None
    else:
        s["cycles"] = r["period"]
        s["cycles_per_page"] = r["period"] / pages if pages else None
    s["threads"] = {k: round(amount(v), 3) for k, v in r["threads"].most_common()}
    s["top"] = [{"function": k, "share": v / r["period"]}
                for k, v in r["syms"].most_common(a.top)] if r["period"] else []
    # CPU time from /proc (utime + stime of each thread over the migration): exact, and what
    # the per-page figures use when perf's sampling saw less of the side than /proc did
    proc = {}
    try:
        cpu = json.load(open(a.cpu)) if a.cpu else {}
    except (OSError, ValueError):
        cpu = {}
    for pid in roles[role]:
        for comm, ms in cpu.get(str(pid), {}).values():
            proc[comm] = proc.get(comm, 0) + ms
    s["proc_cpu_ms"] = sum(proc.values()) if proc else None
    s["proc_threads"] = {k: round(v, 1) for k, v in sorted(proc.items(), key=lambda x: -x[1])}
    if s["proc_cpu_ms"] and pages:
        s["proc_ns_per_page"] = s["proc_cpu_ms"] * 1e6 / pages
        s["proc_cycles_per_page_est"] = (s["proc_cpu_ms"] * 1e3 * a.mhz / pages) if a.mhz else None
    sides[role] = s

print(json.dumps({
    "case": "cycles", "tool": a.tool, "ok": bool(mig.get("ok")) and pages > 0,
    "event": a.event, "cpu_mhz": a.mhz, "sample_hz": a.freq, "pages": pages,
    "page_basis": basis, "migration": mig, "sides": sides,
    "others": {k: round(amount(v), 3) for k, v in other.most_common(8)},
    "recorded": round(amount(total), 3),
    "perf_log": (open(a.perf_log).read()[-600:] if a.perf_log and total < 1e9 and
                 os.path.exists(a.perf_log) else ""),
}))
