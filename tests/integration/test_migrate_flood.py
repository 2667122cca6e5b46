#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A migration between two godwitd on loopback that must complete while both daemons are
flooded: hundreds of health Watch streams (which need no token), raw TCP connections that send
junk or nothing, and calls without the token carrying a large payload. The guest verifies its
memory on the destination; both daemons keep running with bounded threads."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gw_grpc  # noqa: E402

GODWITD, GODWIT, GUEST, PROTO_DIR = sys.argv[1:5]
try:
    import grpc
    import grpc_tools  # noqa: F401 (gw_grpc generates the stubs with it)
except ImportError as e:
    print(f"SKIP: python3-grpcio / python3-grpc-tools missing ({e})")
    sys.exit(77)
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    print("SKIP: no usable /dev/kvm for the migration")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="gw-flood-")
gw_grpc.gen_stubs(PROTO_DIR, tmp, ["godwit/v1/vms.proto"])
from godwit.v1 import vms_pb2, vms_pb2_grpc  # noqa: E402
from gwhealth import health_pb2, health_pb2_grpc  # noqa: E402

failures = 0
procs, stop = [], threading.Event()


def check(name, cond, detail=""):
    global failures
    print(("ok   - " if cond else "FAIL - ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures += 1


def daemon(n):
    state = os.path.join(tmp, n)
    log = open(os.path.join(tmp, n + ".log"), "w")
    p = subprocess.Popen([GODWITD, "--listen", "127.0.0.1:0", "--state-dir", state],
                         stdout=log, stderr=log)
    procs.append(p)
    for _ in range(200):
        if os.path.exists(os.path.join(state, "listen-address")):
            break
        time.sleep(0.05)
    return p, open(os.path.join(state, "listen-address")).read().strip(), state


def gw(addr, state, *args, timeout=600):
    r = subprocess.run([GODWIT, "--host", addr, "--token-file", os.path.join(state, "token"),
                        *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def threads(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def watch_flood(addr, n, held):
    """n health Watch streams, held open until the end (those the daemon refuses end)."""
    chans = [grpc.insecure_channel(addr) for _ in range(10)]
    for i in range(n):
        w = health_pb2_grpc.HealthStub(chans[i % 10]).Watch(health_pb2.HealthCheckRequest(),
                                                             timeout=900)
        held.append(w)


# The flood runs on the same test host as the daemons, so it is paced: what it tests is the
# daemons' bounds, not who gets the host's CPU first.
def junk_flood(port, counts):
    """Raw TCP connections, half sending junk, half nothing, 10 a second, 200 held at once."""
    socks = []
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            if len(socks) % 2:
                s.sendall(os.urandom(512))
            socks.append(s)
            counts[0] += 1
        except OSError:
            counts[1] += 1
        if len(socks) >= 200:
            socks.pop(0).close()
        time.sleep(0.1)
    for s in socks:
        s.close()


def unauth_flood(addr, counts):
    """Calls without the token, each with a 4 MiB payload (serialized once), 2 a second:
    refused before the payload is read."""
    ch = grpc.insecure_channel(addr, options=[("grpc.max_send_message_length", 8 << 20)])
    get = ch.unary_unary("/godwit.v1.Vms/Get", request_serializer=None,
                         response_deserializer=vms_pb2.Vm.FromString)
    payload = vms_pb2.VmRef(name="x" * (4 << 20)).SerializeToString()
    while not stop.is_set():
        try:
            get(payload, timeout=10)
        except grpc.RpcError as e:
            counts[e.code() == grpc.StatusCode.UNAUTHENTICATED] += 1
        time.sleep(0.5)


try:
    a, A, sa = daemon("a")
    b, B, sb = daemon("b")
    rc, out = gw(A, sa, "vm", "create", "web", "--memory", "64M", "--guest", GUEST,
                 "--cmdline", "dirty:2:300")
    check("create web on A", rc == 0, out)
    rc, out = gw(A, sa, "vm", "start", "web")
    check("start web on A", rc == 0, out)
    time.sleep(1.5)

    before = {p.pid: threads(p.pid) for p in (a, b)}
    held, junk, unauth = [], {}, {}
    flooders = []
    for addr, st in ((A, sa), (B, sb)):
        watch_flood(addr, 300, held)
        junk[addr], unauth[addr] = [0, 0], [0, 0]
        port = int(addr.rsplit(":", 1)[1])
        flooders.append(threading.Thread(target=junk_flood, args=(port, junk[addr])))
        flooders.append(threading.Thread(target=unauth_flood, args=(addr, unauth[addr])))
    for t in flooders:
        t.start()
    time.sleep(2)

    # Paced so that the flood lasts through pre-copy, the handover and the commit.
    t0 = time.time()
    rc, out = gw(A, sa, "migrate", "web", "--to", B, "--to-token-file",
                 os.path.join(sb, "token"), "--max-bandwidth", "4M")
    check(f"the migration completes during the flood ({time.time() - t0:.1f} s)",
          rc == 0 and "done" in out, out[-600:])
    during = {p.pid: threads(p.pid) for p in (a, b)}
    stop.set()
    for t in flooders:
        t.join()
    for addr in (A, B):
        check(f"{addr}: junk connections were made ({junk[addr][0]}) and calls without the "
              f"token refused ({unauth[addr][1]})", junk[addr][0] >= 20 and unauth[addr][1] >= 3,
              (junk[addr], unauth[addr]))
    for p in (a, b):
        check(f"godwitd {p.pid} kept its threads bounded ({before[p.pid]} -> {during[p.pid]})",
              during[p.pid] < before[p.pid] + 80, (before, during))
        check(f"godwitd {p.pid} is still running", p.poll() is None)
    for w in held:
        w.cancel()

    rc, out = gw(B, sb, "vm", "list")
    check("web runs on B", rc == 0 and "web" in out and "running" in out, out)
    rc, out = gw(A, sa, "vm", "list")
    check("web is gone from A", rc == 0 and "no VMs" in out, out)
    con = ""
    for _ in range(15):
        rc, o = gw(B, sb, "vm", "console", "web", "--timeout", "4", timeout=60)
        con += o
        if "pages ok" in con:
            break
    check("the guest verifies its whole pattern on B", "pages ok" in con and "BAD" not in con,
          con[-400:])
    gw(B, sb, "vm", "stop", "web", "--force")
finally:
    stop.set()
    gw_grpc.finish(procs, tmp, failures, 2000)

print(f"{'FAIL' if failures else 'PASS'}: {failures} failure(s)")
sys.exit(1 if failures else 0)
