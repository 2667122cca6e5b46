#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Turns the benchmark's raw runs into medians, godwit/QEMU ratios, target checks, and
bench/results/latest.json plus latest.md (or NAME.json and NAME.md)."""
import datetime
import json
import os
import platform
import statistics
import sys

raw, outdir, qemu_version, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
name = sys.argv[5] if len(sys.argv) > 5 else "latest"  # latest-nic for BENCH_ONLY=nic
rows = [json.loads(l) for l in open(raw) if l.strip()]
tools = ["godwit", "qemu", "qemu-multifd"]
cases = ["idle-after-fill", "dirtying", "idle-after-fill-4g"]


def med(xs):
    return statistics.median(xs) if xs else None


summary = {}
for case in cases:
    for tool in tools:
        rs = [r for r in rows if r["tool"] == tool and r["case"] == case]
        ok = [r for r in rs if r["ok"]]
        if not rs:
            continue
        summary.setdefault(case, {})[tool] = {
            "runs": len(rs), "ok": len(ok),
            "total_ms": med([r["total_ms"] for r in ok]),
            "downtime_ms": med([r["downtime_ms"] for r in ok]),
            "bytes": med([r["bytes"] for r in ok]),
            "mbps": med([r["mbps"] for r in ok]),
            # bytes on the wire over the total time, as each tool reports both
            "bytes_per_s": med([r["bytes"] / (r["total_ms"] / 1e3) for r in ok if r["total_ms"]]),
            "errors": sorted({json.dumps(r["error"]) if isinstance(r["error"], dict) else r["error"]
                         for r in rs if not r["ok"] and r["error"]}),
        }


def ratio(case, key, peer):
    s = summary.get(case, {})
    g, q = s.get("godwit", {}).get(key), s.get(peer, {}).get(key)
    return g / q if g is not None and q else None


idle = summary.get("idle-after-fill", {})
g = idle.get("godwit", {})
targets = {}


def vs_multifd(label, gd, qd):
    """issue 23's targets for one case: godwit against QEMU multifd in the same run. gd and qd
    are the medians (total_ms, downtime_ms, bytes_per_s) or None where a tool did not run."""
    def r(k):
        a_, b_ = (gd or {}).get(k), (qd or {}).get(k)
        return a_ / b_ if a_ is not None and b_ else None
    tr, br = r("total_ms"), r("bytes_per_s")
    gdn, qdn = (gd or {}).get("downtime_ms"), (qd or {}).get("downtime_ms")
    targets[f"{label}: total_le_half_of_qemu_multifd"] = {
        "target": 0.5, "measured_ratio": tr, "met": tr is not None and tr <= 0.5}
    targets[f"{label}: bytes_per_s_ge_qemu_multifd"] = {
        "target": 1.0, "measured_ratio": br,
        "godwit_MBps": (gd or {}).get("bytes_per_s") and gd["bytes_per_s"] / 1e6,
        "qemu_multifd_MBps": (qd or {}).get("bytes_per_s") and qd["bytes_per_s"] / 1e6,
        "met": br is not None and br >= 1.0}
    targets[f"{label}: downtime_le_qemu_multifd"] = {
        "godwit_ms": gdn, "qemu_multifd_ms": qdn,
        "met": gdn is not None and qdn is not None and gdn <= qdn}


for case in cases:
    if case in summary:
        vs_multifd(case, summary[case].get("godwit"), summary[case].get("qemu-multifd"))
tls_meds = {}
for t in ("godwit-tls", "qemu-multifd-tls"):
    ok = [r for r in rows if r.get("case") == "tls-migrate" and r["tool"] == t and r["ok"]]
    if any(r.get("case") == "tls-migrate" and r["tool"] == t for r in rows):
        tls_meds[t] = {"total_ms": med([r["total_ms"] for r in ok]),
                       "downtime_ms": med([r["downtime_ms"] for r in ok]),
                       "bytes_per_s": med([r["bytes"] / (r["total_ms"] / 1e3) for r in ok
                                           if r["total_ms"]])}
if tls_meds:
    vs_multifd("tls", tls_meds.get("godwit-tls"), tls_meds.get("qemu-multifd-tls"))
if idle:
    # the older targets that still apply (bench/README.md)
    targets["median_downtime_le_10ms_idle"] = {
        "target_ms": 10, "measured_ms": g.get("downtime_ms"),
        "met": g.get("downtime_ms") is not None and g["downtime_ms"] <= 10}
    targets["throughput_ge_1GBps_random_pages"] = {
        "target_MBps": 1000, "measured_MBps": (g.get("mbps") or 0) / 8,
        "met": (g.get("mbps") or 0) / 8 >= 1000}
nic = [r for r in rows if r.get("case") == "nic-echo"]
nicmig_rows = [r for r in rows if r.get("case") == "nic-migrate"]
nicmig = {}  # per mode: the median of each figure over its runs, and the runs' counts
for mode in ("off", "shadow", "track"):
    rs = [r for r in nicmig_rows if r["mode"] == mode]
    if not rs:
        continue
    ok = [r for r in rs if r["ok"]]
    agg = {"runs": len(rs), "ok_runs": len(ok), "ok": len(ok) == len(rs),
           "error": "; ".join(sorted({r["error"] for r in rs if r.get("error")}))}
    for k in ("pps_before", "pps_during", "pps_after", "migration_s", "downtime_ms",
              "exits_per_packet_before", "exits_per_packet_after", "dma_pages", "dma_bytes"):
        agg[k] = med([r[k] for r in ok if r.get(k) is not None])
    for k in ("lost", "duplicates", "corrupt"):
        agg[k] = sum(r.get(k) or 0 for r in rs)
    nicmig[mode] = agg
nic_note = ("The test guest echoes what godwit-nicpeer sends over a UDP uplink, through godwit's "
            "emulated 82576-model VF; one VM, one vCPU. No peer is measured side by side yet: "
            "QEMU's igb exposes VFs only once a guest's PF driver enables SR-IOV, which needs a "
            "Linux guest; that comparison comes with the VFIO backend. No target.")
nicgen_rows = [r for r in rows if r.get("case") == "nic-generations"]
nicgen = {}
for dec in ("match", "mismatch", "absent"):
    rs = [r for r in nicgen_rows if r["decision"] == dec]
    if not rs:
        continue
    ok = [r for r in rs if r["ok"]]
    nicgen[dec] = {"runs": len(rs), "ok_runs": len(ok),
                   "downtime_ms": med([r["downtime_ms"] for r in ok]),
                   "total_ms": med([r["total_ms"] for r in ok]),
                   "outage_ms": med([r["outage_ms"] for r in ok if r.get("outage_ms") is not None]),
                   "open_ms": med([r["open_ms"] for r in ok if r.get("open_ms") is not None]),
                 "open_rss_mib": med([r["open_rss_kib"] / 1024 for r in ok
                                      if r.get("open_rss_kib") is not None]),
                 "lost": sum(r.get("lost") or 0 for r in rs),
                   "errors": sorted({r["error"] for r in rs if r.get("error")})}
off_pps = (nicmig.get("off") or {}).get("pps_during")
sh_pps = (nicmig.get("shadow") or {}).get("pps_during")
if off_pps and sh_pps:
    targets["shadow_pps_ge_85pct_of_off_during_migration"] = {
        "target": 0.85, "measured_ratio": sh_pps / off_pps, "met": sh_pps / off_pps >= 0.85}
if nicgen.get("match", {}).get("downtime_ms") is not None and \
        nicgen.get("mismatch", {}).get("downtime_ms") is not None:
    extra = nicgen["mismatch"]["downtime_ms"] - nicgen["match"]["downtime_ms"]
    targets["mismatch_adds_le_50ms_downtime_over_match"] = {
        "target_ms": 50, "measured_ms": extra, "met": extra <= 50}
doc = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "qemu": qemu_version, "runs_per_case": runs,
    "vm": "2 GiB RAM, 512 MiB pseudo-random data (godwit: test guest fill-random:512; "
          "QEMU: busybox initramfs, /dev/urandom into tmpfs); idle-after-fill-4g: 4 GiB RAM",
    "summary": summary, "targets": targets,
    "nic": {"note": nic_note, "configs": nic},
    "nic_migrate": {"medians": nicmig, "runs": nicmig_rows},
    "nic_generations": {"medians": nicgen, "runs": nicgen_rows},
    "runs": [r for r in rows if r not in nic and r not in nicmig_rows and r not in nicgen_rows],
}
os.makedirs(outdir, exist_ok=True)
with open(os.path.join(outdir, name + ".json"), "w") as f:
    json.dump(doc, f, indent=2)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


lines = [f"# godwit benchmark ({doc['date']})", ""]
if summary:
    lines += [f"Migration: {runs} runs per tool and case, medians; loopback; QEMU: {qemu_version}.", "",
              "| case | tool | ok | total (ms) | downtime (ms) | throughput (Gbit/s) | wire (MiB) | bytes/s (MB/s) | total vs godwit |",
              "|---|---|---|---|---|---|---|---|---|"]
for case in cases:
    for tool in tools:
        s = summary.get(case, {}).get(tool)
        if not s:
            continue
        gt = summary.get(case, {}).get("godwit", {}).get("total_ms")
        rel = "" if tool == "godwit" or not gt or not s["total_ms"] else f"godwit {gt / s['total_ms']:.2f}x"
        lines.append(f"| {case} | {tool} | {s['ok']}/{s['runs']} | {fmt(s['total_ms'], '.0f')} | "
                     f"{fmt(s['downtime_ms'], '.1f')} | {fmt((s['mbps'] or 0) / 1000, '.2f')} | "
                     f"{fmt((s['bytes'] or 0) / 2**20, '.0f')} | "
                     f"{fmt((s['bytes_per_s'] or 0) / 1e6, '.0f')} | {rel} |")
# godwit's --channels auto: what each run's first round measured, and the channels it kept.
measured = [(r["case"], r["run"], r.get("channels_used"), r.get("channels"), r["channels_measured"])
            for r in rows if r.get("tool") == "godwit" and r.get("channels_measured")]
if measured:
    lines += ["", "godwit's channels (`--channels auto`: the cores of both hosts, then the first "
              "round's measure of how many pay):", ""]
    for case, run, used, conn, what in measured:
        lines.append(f"- {case} run {run}: {used} of {conn} carry pages ({what})")


def target_line(k, t):
    verdict = "met" if t["met"] else (
        "NOT MEASURED" if any(v is None for a, v in t.items() if a.startswith("measured")
                              or a.endswith(("_ms", "_MBps"))) else "MISSED")
    return f"- {k}: {verdict} ({json.dumps({a: b for a, b in t.items() if a != 'met'})})"


if summary or nicmig or nicgen or tls_meds:
    lines += ["", "Targets (godwit against QEMU multifd in the same run: total <= 0.5x, bytes on "
              "the wire per second of total time >= 1.0x, downtime <= QEMU's):", ""]
    for k, t in targets.items():
        lines.append(target_line(k, t))
if nic:
    lines += ["", "## NIC through the emulated VF (nic-echo)", "", nic_note, "",
              "| configuration | ok | frames | window | packets/s | RTT avg (us) | VM exits/packet | MMIO exits | interrupts/packet | mailbox-page exits/s outside exchanges | mailbox-page exits per exchange | lost | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in nic:
        lines.append(f"| {r['config']} | {'yes' if r.get('ok') else 'NO'} | {r.get('frames', '-')} | "
                     f"{r.get('window', '-')} | {fmt(r.get('pps'), '.0f')} | {fmt(r.get('rtt_avg_us'), '.0f')} | "
                     f"{fmt(r.get('exits_per_packet'), '.3f')} | {r.get('mmio_exits', '-')} | "
                     f"{fmt(r.get('irqs_per_packet'), '.3f')} | {fmt(r.get('mbx_idle_exits_per_s'), '.2f')} | "
                     f"{fmt(r.get('mbx_exits_per_exchange'), '.1f')} ({r.get('mbx_exchanges', '-')} exchanges) | "
                     f"{r.get('lost', '-')} | {r.get('error') or ''} |")
if nicmig:
    lines += ["", "## NIC through the emulated VF during a live migration, per DMA mode", "",
              "Medians over the runs of each mode (lost, duplicates and corrupt: totals). "
              "Packets per second through the VF (nic-echo, 32 frames in flight) in steady state "
              "on the source, during the migration (pre-copy capped so it lasts about a second), "
              "and in steady state on the destination; I/O + MMIO exits per packet in the steady "
              "states. `off` makes device DMA invisible to dirty tracking (the guest receives "
              "stale data: see lost and duplicates), so it is the cost-free baseline, not a mode "
              "to use.", "",
              "| | " + " | ".join(m for m in ("off", "shadow", "track") if m in nicmig) + " |",
              "|---|" + "---|" * len(nicmig)]
    fields = [("packets/s before", "pps_before", ".0f"), ("packets/s during", "pps_during", ".0f"),
              ("packets/s after", "pps_after", ".0f"), ("migration (s)", "migration_s", ".2f"),
              ("downtime (ms)", "downtime_ms", ".1f"),
              ("exits/packet before", "exits_per_packet_before", ".3f"),
              ("exits/packet after", "exits_per_packet_after", ".3f"),
              ("pages marked dirty for DMA", "dma_pages", ".0f"),
              ("bytes copied", "dma_bytes", ".0f"),
              ("lost / duplicates / corrupt", None, None), ("ok runs", "ok", None)]
    order = [m for m in ("off", "shadow", "track") if m in nicmig]
    for label, key, spec in fields:
        cells = []
        for m in order:
            r = nicmig[m]
            if key is None:
                cells.append(f"{r.get('lost')} / {r.get('duplicates')} / {r.get('corrupt')}")
            elif spec is None:
                cells.append(f"{r['ok_runs']}/{r['runs']}" + (f" {r['error']}" if r['error'] else ""))
            else:
                cells.append(fmt(r.get(key), spec))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if off_pps and sh_pps:
        lines += ["", f"shadow during the migration: {100 * sh_pps / off_pps:.0f} % of off "
                      f"(target >= 85 %)."]
if nicgen:
    lines += ["", "## Migrations across NIC generations", "",
              "A VM echoing 500 frames/s on a gen1 VF migrates to a host with a gen1 VF (match), "
              "a gen2 VF (mismatch: the VF is quiesced, its state left behind, re-created and "
              "renegotiated) or no VF (absent: the destination VMM's own model). Medians; "
              "downtime is the VM's pause, outage the traffic's longest gap at the peer.", "",
              "| decision | ok | downtime (ms) | total (ms) | traffic outage (ms) | lost (all runs) |",
              "|---|---|---|---|---|---|"]
    for dec, g in nicgen.items():
        lines.append(f"| {dec} | {g['ok_runs']}/{g['runs']} | {fmt(g['downtime_ms'], '.1f')} | "
                     f"{fmt(g['total_ms'], '.0f')} | {fmt(g['outage_ms'], '.1f')} | {g['lost']} |")
linux_boot = {t: [r["boot_ms"] for r in rows if r.get("case") == "linux-boot" and r["tool"] == t
                  and r["ok"]] for t in ("godwit", "qemu")}
linux_boot_runs = {t: len([r for r in rows if r.get("case") == "linux-boot" and r["tool"] == t])
                   for t in ("godwit", "qemu")}
linux_mig = {t: [r for r in rows if r.get("case") == "linux-migrate" and r["tool"] == t]
             for t in ("godwit", "qemu")}
if any(linux_boot_runs.values()) or any(linux_mig.values()):
    gb, qb = med(linux_boot["godwit"]), med(linux_boot["qemu"])
    boot_ratio = gb / qb if gb and qb else None
    doc["linux"] = {"boot_ms": {"godwit": gb, "qemu": qb}, "boot_ratio": boot_ratio,
                    "boot_target": 0.5, "boot_met": boot_ratio is not None and boot_ratio <= 0.5}
    lines += ["", "## Linux guests", "",
              "The distro kernel and the tests' initramfs (tests/linux/), 2 vCPUs, 256 MiB: time "
              "from the VMM's start to the guest's init printing its marker; godwit-vmm "
              "`--kernel --initrd` against QEMU `-accel kvm -kernel -initrd` on the same host "
              "(where this machine's KVM cannot boot Linux, both run in test host h1, under its "
              "nested KVM). Medians.", "",
              "godwit-vmm unpacks the kernel on the host and caches it; its first run starts with "
              "an empty cache.", "",
              "| tool | ok | boot to init (ms) | vs QEMU | first run (ms) |", "|---|---|---|---|---|"]
    for t, v in (("godwit", gb), ("qemu", qb)):
        rel = f"{v / qb:.2f}x" if v and qb else "-"
        first = [r["boot_ms"] for r in rows if r.get("case") == "linux-boot" and r["tool"] == t
                 and r["run"] == 1]
        lines.append(f"| {t} | {len(linux_boot[t])}/{linux_boot_runs[t]} | {fmt(v, '.0f')} | {rel} | "
                     f"{first[0] if first else '-'} |")
    lines.append("")
    lines.append(f"Target godwit <= 0.5x QEMU: {'met' if doc['linux']['boot_met'] else 'MISSED'}"
                 f" ({fmt(boot_ratio, '.2f')}x).")
    lines += ["", "A 1 GiB Linux guest (its init running gw-clockcheck) migrated back and forth "
              "over loopback: godwit (two godwitd) and QEMU (QMP, one channel). Medians.", "",
              "| tool | ok | total (ms) | downtime (ms) | wire (MiB) |", "|---|---|---|---|---|"]
    for t in ("godwit", "qemu"):
        ok = [r for r in linux_mig[t] if r["ok"]]
        doc["linux"]["migrate_" + t] = {"total_ms": med([r["total_ms"] for r in ok]),
                                        "downtime_ms": med([r["downtime_ms"] for r in ok])}
        lines.append(f"| {t} | {len(ok)}/{len(linux_mig[t])} | "
                     f"{fmt(med([r['total_ms'] for r in ok]), '.0f')} | "
                     f"{fmt(med([r['downtime_ms'] for r in ok]), '.1f')} | "
                     f"{fmt((med([r['bytes'] for r in ok]) or 0) / 2**20, '.0f')} |")
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
vf_rows = [r for r in rows if r.get("case") == "vf-echo"]
if vf_rows:
    tools = ("godwit-vfio", "qemu-vfio", "godwit-emul")
    doc["vf_echo"] = {}
    lines += ["", "## Passthrough", "",
              "The Linux test guest (igbvf, gw-lecho) echoes godwit-nicpeer's frames (window 16), "
              "sent from test host h2's igb PF over the data segment to a VF of h1's igb (QEMU's "
              "82576 with Linux's igb PF): passed through by godwit's vfio backend, by QEMU's "
              "`-device vfio-pci`, and godwit's emulated VF on h1's PF for comparison. Exits per "
              "packet from h1's KVM statistics (debugfs), from the 1000th echo on: every exit, and "
              "those that reached the VMM. Medians; everything runs under TCG, so the rates say "
              "how the paths compare, not what hardware does.", "",
              "| tool | ok | packets/s | RTT avg (us) | exits/packet | to the VMM/packet |",
              "|---|---|---|---|---|---|"]
    for t in tools:
        rs = [r for r in vf_rows if r["tool"] == t]
        ok = [r for r in rs if r.get("ok")]
        g = {k: med([r[k] for r in ok]) for k in
             ("pps", "rtt_us_avg", "exits_per_packet", "vmm_exits_per_packet")}
        doc["vf_echo"][t] = dict(g, ok_runs=len(ok), runs=len(rs))
        lines.append(f"| {t} | {len(ok)}/{len(rs)} | {fmt(g['pps'], '.0f')} | "
                     f"{fmt(g['rtt_us_avg'], '.0f')} | {fmt(g['exits_per_packet'], '.2f')} | "
                     f"{fmt(g['vmm_exits_per_packet'], '.3f')} |")
    gv, qv = doc["vf_echo"]["godwit-vfio"], doc["vf_echo"]["qemu-vfio"]
    if gv["pps"] and qv["pps"]:
        met = gv["pps"] >= qv["pps"] and gv["exits_per_packet"] <= qv["exits_per_packet"]
        doc["vf_echo"]["goal_met"] = met
        lines += ["", f"Goal godwit-vfio >= QEMU's packet rate and <= its exits per packet: "
                  f"{'met' if met else 'MISSED'} ({gv['pps'] / qv['pps']:.2f}x the rate, "
                  f"{fmt(gv['exits_per_packet'], '.2f')} vs {fmt(qv['exits_per_packet'], '.2f')} "
                  f"exits per packet)."]
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
vfm_rows = [r for r in rows if r.get("case") in ("vf-migrate", "vf-return")]
if vfm_rows:
    doc["vf_migrate"] = {"runs": vfm_rows, "medians": {}}
    lines += ["", "## Passthrough migration", "",
              "The test guest's nic-echo on a VF of h1's igb passed through by godwit's vfio "
              "backend echoes godwit-nicpeer's frames (window 16, from h1's PF) while it migrates "
              "to h2, which has no VF (absent: godwit's model takes over), with each DMA mode, "
              "and back onto a VFIO VF of h1. Packets per second in steady state before and "
              "during pre-copy (capped so that it lasts), downtime, and the longest gap in the "
              "echoes (outage). Medians; lost, corrupt and duplicates summed. Under TCG: the "
              "figures compare the modes, not hardware.", "",
              "| migration | DMA mode | decision | ok | pps before | pps during | during/before "
              "| downtime (ms) | outage (ms) | lost | corrupt | dup |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in ("vf-migrate", "vf-return"):
        for mode in ("off", "shadow", "track"):
            rs = [r for r in vfm_rows if r["case"] == case and r["mode"] == mode
                  and r["tool"] == "godwit"]
            if not rs:
                continue
            ok = [r for r in rs if r["ok"]]
            agg = {k: med([r[k] for r in ok if r.get(k) is not None]) for k in
                   ("pps_before", "pps_during", "downtime_ms", "outage_ms")}
            agg.update({k: sum(r.get(k) or 0 for r in rs) for k in ("lost", "corrupt",
                                                                     "duplicates")})
            agg["decision"] = " ".join(sorted({r.get("decision", "") for r in ok}))
            agg["ok_runs"], agg["runs"] = len(ok), len(rs)
            agg["errors"] = sorted({r["error"] for r in rs if r.get("error")})
            doc["vf_migrate"]["medians"][case + "/" + mode] = agg
            rel = (agg["pps_during"] / agg["pps_before"]
                   if agg["pps_during"] and agg["pps_before"] else None)
            what = "h1 -> h2" if case == "vf-migrate" else "back to h1"
            lines.append(f"| {what} | {mode if case == 'vf-migrate' else '(after ' + mode + ')'} "
                         f"| {agg['decision'] or '-'} | {len(ok)}/{len(rs)} "
                         f"| {fmt(agg['pps_before'], '.0f')} | {fmt(agg['pps_during'], '.0f')} "
                         f"| {fmt(rel, '.2f')} | {fmt(agg['downtime_ms'], '.1f')} "
                         f"| {fmt(agg['outage_ms'], '.0f')} | {agg['lost']} | {agg['corrupt']} "
                         f"| {agg['duplicates']} |")
    med_ = doc["vf_migrate"]["medians"]
    off = (med_.get("vf-migrate/off") or {}).get("pps_during")
    sh = (med_.get("vf-migrate/shadow") or {}).get("pps_during")
    if off and sh:
        met = sh / off >= 0.85
        doc["vf_migrate"]["shadow_ge_85pct_of_off"] = {"measured_ratio": sh / off, "met": met}
        lines += ["", f"Goal shadow >= 85 % of off's packet rate during the migration: "
                  f"{'met' if met else 'MISSED'} ({sh / off:.2f})."]
    q = [r for r in rows if r.get("case") == "vf-migrate" and r.get("tool") == "qemu"]
    if q:
        doc["vf_migrate"]["qemu"] = q[0]
        lines += ["", "QEMU (" + qemu_version + ", `-device vfio-pci` with a VF of the same PF, "
                  "QMP `migrate`): " + ("refused: " if q[0].get("refused") else "did not refuse: ")
                  + "`" + (q[0].get("error") or "no error given") + "`"]
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
tls_rows = [r for r in rows if r.get("case") == "tls-migrate"]
if tls_rows:
    doc["tls"] = {}
    lines += ["", "## Encryption", "",
              "A 1 GiB VM with pseudo-random data migrated back and forth over loopback on 2 "
              "channels, in clear and encrypted: godwit's daemons with `--insecure`, then with "
              "certificates of a test CA (mutual TLS between the daemons, the stream TLS 1.3 "
              "keyed by the migration's token, kTLS where the kernel takes it); QEMU multifd "
              "without and with `tls-creds-x509` from the same CA. Medians; the cost is the "
              "encrypted run's figure against the same tool's clear one.", "",
              "| tool | ok | total (ms) | downtime (ms) | throughput (Mbit/s) | kTLS send/recv "
              "channels |", "|---|---|---|---|---|---|"]
    for t in ("godwit", "godwit-tls", "qemu-multifd", "qemu-multifd-tls"):
        rs = [r for r in tls_rows if r["tool"] == t]
        if not rs:
            continue
        ok = [r for r in rs if r["ok"]]
        g = {k: med([r[k] for r in ok]) for k in ("total_ms", "downtime_ms", "mbps")}
        g.update(ok_runs=len(ok), runs=len(rs),
                 errors=sorted({r["error"] for r in rs if r.get("error")}))
        doc["tls"][t] = g
        kt = (f"{med([r.get('ktls_send', 0) for r in ok])}/"
              f"{med([r.get('ktls_recv', 0) for r in ok])}" if t == "godwit-tls" and ok else "-")
        lines.append(f"| {t} | {len(ok)}/{len(rs)} | {fmt(g['total_ms'], '.0f')} | "
                     f"{fmt(g['downtime_ms'], '.1f')} | {fmt(g['mbps'], '.0f')} | {kt} |")

    def cost(tool):
        c, e = doc["tls"].get(tool, {}), doc["tls"].get(tool + "-tls", {})
        if not c.get("mbps") or not e.get("mbps"):
            return None
        return {"throughput_kept": e["mbps"] / c["mbps"],
                "downtime_added_ms": (e["downtime_ms"] or 0) - (c["downtime_ms"] or 0)}
    gc, qc = cost("godwit"), cost("qemu-multifd")
    doc["tls"]["cost"] = {"godwit": gc, "qemu-multifd": qc}
    if gc and qc:
        met = gc["throughput_kept"] >= qc["throughput_kept"]
        doc["tls"]["goal_met"] = met
        lines += ["", f"With TLS godwit keeps {100 * gc['throughput_kept']:.0f} % of its "
                  f"throughput and adds {gc['downtime_added_ms']:.1f} ms of downtime; QEMU "
                  f"multifd keeps {100 * qc['throughput_kept']:.0f} % and adds "
                  f"{qc['downtime_added_ms']:.1f} ms. Goal (TLS costs godwit less than QEMU): "
                  f"{'met' if met else 'MISSED'}."]
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
port_rows = [r for r in rows if r.get("case") == "packet-port"]
vf_rows = [r for r in rows if r.get("case") == "packet-vf"]
dev_rows = [r for r in rows if r.get("case") == "packet-device"]
if port_rows or vf_rows or dev_rows:
    doc["packets"] = {"ports": {}, "device": {}, "vf": {}}
    lines += ["", "## Packets: the uplink's port types", "",
              "Packets per second and CPU per packet with the `udp:`, `tap:` and `dpdk:` ports "
              "(and `packet:`, the AF_PACKET socket on the same wire as `dpdk:`'s "
              "net_af_packet), medians over the runs. `dpdk` is DPDK's net_af_packet (frames "
              "through the kernel, on a veth pair), `dpdk-memif` its net_memif (frames through "
              "shared memory to another DPDK port; no kernel in the path). **Port layer**: "
              "godwit-portbench, one port "
              "sends 64-byte numbered frames (256 in flight, batches of 32 as one device round) "
              "and another receives and checks them, on this machine: `udp:` to a socket on "
              "loopback, `tap:` two TAPs on a bridge, `packet:` and `dpdk:` on the two ends of a "
              "veth pair, two memif ports in the one process; CPU is the whole process's user + "
              "system time; opening both ports (the "
              "EAL's start included, for `dpdk:`) is what each process with such a port pays "
              "once. **Device model**: godwit-vfbench, the emulated VF's igb register model, "
              "its RX/TX ring engines and the port run as godwit-vmm's device thread runs them "
              "(rounds of 32 frames, one flush per round), the guest's driver played on the host "
              "echoing godwit-nicpeer's 64-byte frames (256 in flight) as nic-echo does (no VM "
              "exits, no guest code), natively; CPU is godwit-vfbench's user + system time per "
              "echo, opening its one port. Its echo rate is at most the peer's, in its own "
              "process on the same 2 cores: on `udp` and `tap` one system call per frame each "
              "way; on `dpdk` and `dpdk-memif` a dpdk: port of its own on the same virtual "
              "device (the far end of the veth pair; the memif server). Packets per "
              "CPU-second (1 / CPU per packet) is what the device side alone could echo on one "
              "CPU. **Through the VF**: "
              "the test guest's nic-echo, godwit-nicpeer sending 64-byte frames with 32 in "
              "flight; CPU is the VMM's user + system time per echoed packet.", "",
              "| layer | port | ok | packets/s | CPU per packet (us) | vs udp | packets per "
              "CPU-second, vs udp | lost | corrupt | opening both ports (ms, MiB resident) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for layer, rs_all, key in (("port layer", port_rows, "ports"),
                               ("device model", dev_rows, "device"),
                               ("through the VF", vf_rows, "vf")):
        for port in ("udp", "tap", "packet", "dpdk", "dpdk-memif"):
            rs = [r for r in rs_all if r.get("port") == port]
            if not rs:
                continue
            ok = [r for r in rs if r.get("ok")]
            g = {"runs": len(rs), "ok_runs": len(ok),
                 "pps": med([r["pps"] for r in ok if r.get("pps") is not None]),
                 "cpu_ns_per_packet": med([r["cpu_ns_per_packet"] for r in ok
                                           if r.get("cpu_ns_per_packet") is not None]),
                 "open_ms": med([r["open_ms"] for r in ok if r.get("open_ms") is not None]),
                 "open_rss_mib": med([r["open_rss_kib"] / 1024 for r in ok
                                      if r.get("open_rss_kib") is not None]),
                 "lost": sum(r.get("lost") or 0 for r in rs),
                 "corrupt": sum(r.get("corrupt") or 0 for r in rs),
                 "errors": sorted({r["error"] for r in rs if r.get("error")})}
            doc["packets"][key][port] = g
        base = doc["packets"][key].get("udp", {}).get("pps")
        cbase = doc["packets"][key].get("udp", {}).get("cpu_ns_per_packet")
        for port, g in doc["packets"][key].items():
            g["vs_udp"] = g["pps"] / base if g.get("pps") and base else None
            # What one CPU could echo at this cost: the rate where the peer does not set it.
            c = g.get("cpu_ns_per_packet")
            g["packets_per_cpu_s"] = 1e9 / c if c else None
            g["cpu_vs_udp"] = cbase / c if c and cbase else None
            lines.append(f"| {layer} | {port} | {g['ok_runs']}/{g['runs']} | "
                         f"{fmt(g['pps'], '.0f')} | "
                         f"{fmt(g['cpu_ns_per_packet'] / 1e3 if g['cpu_ns_per_packet'] else None, '.2f')} | "
                         f"{fmt(g['vs_udp'], '.2f')} | "
                         f"{fmt(g['packets_per_cpu_s'], '.0f')}, {fmt(g['cpu_vs_udp'], '.2f')} | "
                         f"{g['lost']} | {g['corrupt']} | "
                         f"{fmt(g['open_ms'], '.0f')}, {fmt(g['open_rss_mib'], '.1f')} |")
    verdict = []
    for key, what in (("ports", "the port layer"),
                      ("device", "through the VF's device model (driver on the host)"),
                      ("vf", "the whole path through the VF")):
        # Met where one of DPDK's devices reaches it; each is named with its ratio.
        got = [(port, doc["packets"][key].get(port, {}).get("vs_udp"))
               for port in ("dpdk", "dpdk-memif")]
        got = [(port, r) for port, r in got if r is not None]
        if got:
            met = any(r >= 3 for _, r in got)
            doc["packets"]["goal_met_" + key] = met
            verdict.append(f"{what}: " + ", ".join(f"{port} {r:.2f}x udp" for port, r in got) +
                           f" ({'met' if met else 'MISSED'})")
    if verdict:
        lines += ["", "Goal (the DPDK port at least 3x the UDP port's packet rate; met where "
                  "one of DPDK's devices reaches it): " + "; ".join(verdict) + "."]
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
cyc_rows = [r for r in rows if r.get("case") == "cycles"]
if cyc_rows:
    doc["cycles"] = cyc_rows
    ev = cyc_rows[0]["event"]
    lines += ["", "## Cycles per page", "",
              "One migration of an idle 2 GiB VM holding pseudo-random data, `perf record -a -e "
              f"{ev}` on every CPU meanwhile, the samples split by process. "
              + ("cpu-clock is a timer (no hardware counters here): CPU time is measured, "
                 "cycles are that time at the clock /proc/cpuinfo gives (an estimate). "
                 if ev == "cpu-clock" else "") +
              "Pages: what the source counted as data pages (godwit's VMM log), else bytes on "
              "the wire / 4096 (QEMU).", "",
              "CPU from /proc is each thread's user + system time over the migration "
              "(bench/cpu_sampler.py), exact whatever perf sampled; its per-page figure is "
              "the one to compare.", "",
              "| tool | side | pages | CPU, /proc (ms) | ns/page, /proc | cycles/page, /proc "
              "| CPU, perf samples (ms) | threads, /proc (ms) | top functions, perf (share of "
              "the side) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in cyc_rows:
        for side, sd in r["sides"].items():
            cpp = sd.get("cycles_per_page", sd.get("cycles_per_page_est"))
            ms = sd.get("cpu_ms", (sd.get("cycles") or 0) / (r["cpu_mhz"] or 1) / 1e3)
            nsp = sd.get("ns_per_page", ms * 1e6 / r["pages"] if r["pages"] else None)
            thr = ", ".join(f"{k} {v:.0f}" for k, v in list((sd.get("proc_threads") or
                                                             sd["threads"]).items())[:6])
            top = "; ".join(f"{t['function']} {100 * t['share']:.0f}%" for t in sd["top"][:6])
            pc = sd.get("proc_cycles_per_page_est")
            lines.append(f"| {r['tool']} | {side} | {r['pages']} | {fmt(sd.get('proc_cpu_ms'), '.0f')} | "
                         f"{fmt(sd.get('proc_ns_per_page'), '.0f')} | {fmt(pc, '.0f')}"
                         f"{' (est.)' if pc is not None else ''} | {fmt(ms, '.0f')} "
                         f"({sd['samples']} samples, {fmt(nsp, '.0f')} ns/page, {fmt(cpp, '.0f')} "
                         f"cycles/page) | {thr} | {top} |")
        m = r["migration"]
        lines.append(f"| {r['tool']} | (migration) | {'ok' if r['ok'] else 'FAILED'} | "
                     f"total {fmt(m.get('total_ms'), '.0f')} ms | downtime "
                     f"{fmt(m.get('downtime_ms'), '.1f')} ms | {fmt((m.get('bytes') or 0) / 2**20, '.0f')} MiB "
                     f"on the wire | | others (perf): " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                              list(r["others"].items())[:4]) + " | |")
        if r.get("perf_log"):
            lines.append(f"\nperf record said: `{' '.join(r['perf_log'].split())[:300]}`\n")
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
md = "\n".join(lines) + "\n"
with open(os.path.join(outdir, name + ".md"), "w") as f:
    f.write(md)
print(md)
for k, t in targets.items():
    print("target " + target_line(k, t)[2:])
