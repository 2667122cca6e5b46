#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A /metrics page for shell tests, read with Prometheus's own parser (prometheus_client):
  gw_prom.py scrape HOST:PORT FILE          saves the page (it must parse)
  gw_prom.py value FILE SAMPLE [k=v ...]    prints the sample whose labels include those
  gw_prom.py grew BEFORE AFTER SAMPLE [k=v ...] [--by N]
                                            exit 0 when the sample grew (by exactly N if given);
                                            absent from BEFORE counts as 0 (a counter's labels
                                            show up with their first event)
Exit 2 when the page does not parse or the sample is absent."""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def load(path):
    return list(text_string_to_metric_families(open(path).read()))


def find(fams, sample, labels, absent=None):
    for f in fams:
        for s in f.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    if absent is not None:
        return absent
    print(f"gw_prom: no {sample}{labels}", file=sys.stderr)
    sys.exit(2)


def labels_of(args):
    return dict(a.split("=", 1) for a in args)


cmd = sys.argv[1]
if cmd == "scrape":
    with urllib.request.urlopen(f"http://{sys.argv[2]}/metrics", timeout=15) as r:
        text = r.read().decode()
    list(text_string_to_metric_families(text))  # raises when it does not parse
    open(sys.argv[3], "w").write(text)
elif cmd == "value":
    print(f"{find(load(sys.argv[2]), sys.argv[3], labels_of(sys.argv[4:])):g}")
elif cmd == "grew":
    args = sys.argv[5:]
    by = None
    if "--by" in args:
        i = args.index("--by")
        by = float(args[i + 1])
        args = args[:i] + args[i + 2:]
    lab = labels_of(args)
    b = find(load(sys.argv[2]), sys.argv[4], lab, absent=0.0)
    a = find(load(sys.argv[3]), sys.argv[4], lab)
    print(f"{sys.argv[4]}{lab}: {b:g} -> {a:g}")
    sys.exit(0 if (a - b == by if by is not None else a > b) else 1)
else:
    sys.exit(f"gw_prom: unknown command {cmd}")
