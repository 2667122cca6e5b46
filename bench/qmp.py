#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Minimal QMP client for the QEMU side of the benchmark: set up and run one migration (with
--tls DIR: over TLS with x509 credentials from DIR) and print QEMU's own figures (total time,
downtime, bytes, throughput) as JSON.
usage: qmp.py SRC.qmp DST.qmp PORT CHANNELS [--tls DIR]"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")


def setup(q, channels):
    caps = [{"capability": "multifd", "state": channels > 1}]
    q.cmd("migrate-set-capabilities", capabilities=caps)
    if channels > 1:
        q.cmd("migrate-set-parameters", **{"multifd-channels": channels})


def tls(q, creds_dir, endpoint, port):
    """TLS on the migration with x509 credentials from creds_dir (ca-cert.pem and the
    endpoint's cert and key), the peer's certificate verified. The object is named after the
    migration's port: a QEMU that came in over TLS already holds one for the other side."""
    name = f"tls{port}"
    q.cmd("object-add", **{"qom-type": "tls-creds-x509", "id": name, "dir": creds_dir,
                           "endpoint": endpoint, "verify-peer": True})
    params = {"tls-creds": name}
    if endpoint == "client":
        params["tls-hostname"] = "localhost"
    q.cmd("migrate-set-parameters", **params)


def main():
    src, dst, port, channels = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    qs, qd = Qmp(src), Qmp(dst)
    setup(qs, channels)
    setup(qd, channels)
    if len(sys.argv) > 6 and sys.argv[5] == "--tls":
        tls(qs, sys.argv[6], "client", port)
        tls(qd, sys.argv[6], "server", port)
    qd.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")
    # "max-bandwidth raised": effectively unlimited on loopback.
    qs.cmd("migrate-set-parameters", **{"max-bandwidth": 100 * 1024**3})
    qs.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    while True:
        r = qs.cmd("query-migrate")
        if r.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)
    if r["status"] != "completed":
        print(json.dumps({"error": r.get("error-desc", r["status"])}))
        sys.exit(1)
    ram = r.get("ram", {})
    print(json.dumps({
        "total_ms": r.get("total-time"),
        "downtime_ms": r.get("downtime"),
        "bytes": ram.get("transferred"),
        "mbps": ram.get("mbps"),
    }))


try:
    main()
except RuntimeError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(1)
