#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""godwitd's transport security through a standard gRPC client (Python grpcio), no KVM needed:
TLS required beyond loopback, certificates checked at start, the API over TLS, Peer calls only
from a host certificate the CA signed and with a grant for that host, VM and migration, and a
flood of health streams that does not starve the API."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gw_grpc  # noqa: E402

GODWITD, PROTO_DIR, MAKE_CA, GODWIT = sys.argv[1:5]
try:
    import grpc
    import grpc_tools  # noqa: F401 (gw_grpc generates the stubs with it)
except ImportError as e:
    print(f"SKIP: python3-grpcio / python3-grpc-tools missing ({e})")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="gw-sec-")
gw_grpc.gen_stubs(PROTO_DIR, tmp, ["godwit/v1/host.proto", "godwit/v1/vms.proto", "godwit/v1/migrations.proto", "godwit/v1/peer.proto"])
from godwit.v1 import host_pb2, host_pb2_grpc  # noqa: E402
from godwit.v1 import migrations_pb2, migrations_pb2_grpc  # noqa: E402
from godwit.v1 import peer_pb2, peer_pb2_grpc, vms_pb2  # noqa: E402
from gwhealth import health_pb2, health_pb2_grpc  # noqa: E402

failures = 0
procs = []


def check(name, cond, detail=""):
    global failures
    print(("ok   - " if cond else "FAIL - ") + name + ("" if cond else f": {detail}"))
    if not cond:
        failures += 1


ca = os.path.join(tmp, "ca")


def mk(*args):
    subprocess.run([MAKE_CA, ca, *args], check=True)


mk("ca")
mk("ca", "--ca", "evil")
mk("host", "d", "IP:127.0.0.1,DNS:gw-d")          # the destination godwitd
mk("host", "s", "DNS:gw-s")                       # the source host, as a client
mk("host", "o", "DNS:gw-o")                       # another host of the same CA
mk("host", "old", "IP:127.0.0.1", "--days", "-1")  # expired


def pem(name):
    return open(os.path.join(ca, name), "rb").read()


def start(name, *opts, wait=True):
    state = os.path.join(tmp, name)
    log = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen([GODWITD, "--state-dir", state, *opts], stdout=log, stderr=log)
    procs.append(p)
    if not wait:
        return p, state
    for _ in range(200):
        if os.path.exists(os.path.join(state, "listen-address")) or p.poll() is not None:
            break
        time.sleep(0.05)
    return p, state


def refused(name, opts, want):
    p, state = start(name, *opts, wait=False)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
    out = open(os.path.join(tmp, name + ".log")).read()
    check(f"godwitd refuses {name}: exit 2 and says why", p.returncode == 2 and want in out,
          f"rc {p.returncode}: {out[-300:]}")


def threads(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


try:
    # --- what godwitd refuses at start ---
    refused("plaintext-beyond-loopback", ["--listen", "0.0.0.0:0"], "--insecure")
    refused("half-tls", ["--listen", "127.0.0.1:0", "--tls-cert", f"{ca}/d.pem"],
            "together")
    refused("expired-cert", ["--listen", "127.0.0.1:0", "--tls-cert", f"{ca}/old.pem",
                             "--tls-key", f"{ca}/old-key.pem", "--tls-ca", f"{ca}/ca.pem"],
            "expired")
    shutil.copy(f"{ca}/d-key.pem", f"{ca}/open-key.pem")
    os.chmod(f"{ca}/open-key.pem", 0o644)
    refused("world-readable-key", ["--listen", "127.0.0.1:0", "--tls-cert", f"{ca}/d.pem",
                                   "--tls-key", f"{ca}/open-key.pem", "--tls-ca",
                                   f"{ca}/ca.pem"], "chmod 600")
    p, _ = start("insecure", "--listen", "0.0.0.0:0", "--insecure")
    check("godwitd --insecure serves plaintext beyond loopback", p.poll() is None)
    p.terminate()

    # --- the destination, over TLS ---
    d, dstate = start("dest", "--listen", "127.0.0.1:0", "--tls-cert", f"{ca}/d.pem",
                      "--tls-key", f"{ca}/d-key.pem", "--tls-ca", f"{ca}/ca.pem")
    addr = open(os.path.join(dstate, "listen-address")).read().strip()
    token = open(os.path.join(dstate, "token")).read().strip()
    md = [("authorization", "Bearer " + token)]
    req = host_pb2.GetInfoRequest()

    plain = grpc.insecure_channel(addr)
    c, _ = code_of(lambda: host_pb2_grpc.HostStub(plain).GetInfo(req, metadata=md, timeout=10))
    check("plaintext to the TLS API fails", c == grpc.StatusCode.UNAVAILABLE, c)
    evil = grpc.secure_channel(addr, grpc.ssl_channel_credentials(pem("evil.pem")))
    c, _ = code_of(lambda: host_pb2_grpc.HostStub(evil).GetInfo(req, metadata=md, timeout=10))
    check("a client trusting another CA does not talk to it", c == grpc.StatusCode.UNAVAILABLE,
          c)
    tls = grpc.secure_channel(addr, grpc.ssl_channel_credentials(pem("ca.pem")))
    info = host_pb2_grpc.HostStub(tls).GetInfo(req, metadata=md, timeout=10)
    check("the API over TLS; HostInfo names this host's certificate",
          info.tls and "gw-d" in info.tls_names and "127.0.0.1" in info.tls_names, info.tls_names)
    c, _ = code_of(lambda: host_pb2_grpc.HostStub(tls).GetInfo(req, timeout=10))
    check("the token is still required over TLS", c == grpc.StatusCode.UNAUTHENTICATED, c)

    # --- grants and Peer calls ---
    migs = migrations_pb2_grpc.MigrationsStub(tls)
    g = migs.GrantIncoming(migrations_pb2.GrantIncomingRequest(vm="v1", source_names=["gw-s"]),
                           metadata=md, timeout=10)
    check("GrantIncoming gives a grant for v1 from gw-s", len(g.grant) == 64 and g.vm == "v1")
    c, _ = code_of(lambda: migs.GrantIncoming(migrations_pb2.GrantIncomingRequest(vm="v1"),
                                              timeout=10))
    check("GrantIncoming needs the token", c == grpc.StatusCode.UNAUTHENTICATED, c)

    def peer_as(cert):
        creds = grpc.ssl_channel_credentials(
            pem("ca.pem"), pem(cert + "-key.pem") if cert else None,
            pem(cert + ".pem") if cert else None)
        return peer_pb2_grpc.PeerStub(grpc.secure_channel(addr, creds))

    def prepare(stub, grant, vm="v1", mig="mig-0001", plaintext=False):
        r = peer_pb2.PrepareIncomingRequest(
            migration_id=mig, vm_name=vm, stream_token="ab" * 32, channels=1,
            spec=vms_pb2.VmSpec(memory_bytes=64 << 20, guest_path="/nonexistent"),
            plaintext_stream=plaintext)
        m = [("authorization", "Grant " + grant)] if grant else []
        return code_of(lambda: stub.PrepareIncoming(r, metadata=m, timeout=30))

    src, other, anon = peer_as("s"), peer_as("o"), peer_as(None)
    c, why = prepare(anon, g.grant)
    check("Peer call without a host certificate: refused", c == grpc.StatusCode.UNAUTHENTICATED
          and "host certificate" in why, (c, why))
    c, why = prepare(src, None)
    check("Peer call without a grant: refused", c == grpc.StatusCode.UNAUTHENTICATED
          and "grant" in why, (c, why))
    c, why = prepare(src, "00" * 32)
    check("an unknown grant: refused", c == grpc.StatusCode.UNAUTHENTICATED, (c, why))
    c, why = prepare(other, g.grant)
    check("the grant from another host of the CA: refused",
          c == grpc.StatusCode.UNAUTHENTICATED and "gw-s" in why, (c, why))
    c, why = prepare(src, g.grant, vm="v2")
    check("the grant for another VM: refused",
          c == grpc.StatusCode.UNAUTHENTICATED and "for VM v1" in why, (c, why))
    c, why = prepare(src, g.grant)
    check("the source host with its grant gets past authorisation",
          c != grpc.StatusCode.UNAUTHENTICATED, (c, why))
    c, why = prepare(src, g.grant, mig="mig-0002")
    check("a grant starts one migration only", c == grpc.StatusCode.UNAUTHENTICATED
          and "used by migration mig-0001" in why, (c, why))
    ab = peer_pb2.AbortRequest(migration_id="mig-0002", reason="test")
    c, why = code_of(lambda: src.Abort(ab, metadata=[("authorization", "Grant " + g.grant)],
                                       timeout=10))
    check("the grant aborts only its own migration", c == grpc.StatusCode.UNAUTHENTICATED, c)
    ab = peer_pb2.AbortRequest(migration_id="mig-0001", reason="test")
    c, why = code_of(lambda: src.Abort(ab, metadata=[("authorization", "Grant " + g.grant)],
                                       timeout=10))
    check("...and does abort it", c == grpc.StatusCode.OK, (c, why))
    short = migs.GrantIncoming(migrations_pb2.GrantIncomingRequest(vm="v3", ttl_s=1),
                               metadata=md, timeout=10)
    time.sleep(2.2)
    c, why = prepare(src, short.grant, vm="v3", mig="mig-0003")
    check("an expired grant: refused", c == grpc.StatusCode.UNAUTHENTICATED
          and "expired" in why, (c, why))
    g4 = migs.GrantIncoming(migrations_pb2.GrantIncomingRequest(vm="v4", source_names=["gw-s"]),
                            metadata=md, timeout=10)
    c, why = prepare(src, g4.grant, vm="v4", mig="mig-0004", plaintext=True)
    check("a stream in clear is refused by a host without --insecure",
          c == grpc.StatusCode.PERMISSION_DENIED and "encrypted only" in why, (c, why))
    # The CLI: a grant made on the destination, for the source to use without its token.
    cli = [GODWIT, "--host", addr, "--token-file", os.path.join(dstate, "token"),
           "--tls-ca", f"{ca}/ca.pem"]
    r = subprocess.run(cli + ["migration", "grant", "v5", "--source-name", "gw-s", "--ttl", "60"],
                       capture_output=True, text=True, timeout=30)
    cg = r.stdout.strip()
    check("godwit migration grant prints a grant", r.returncode == 0 and len(cg) == 64
          and "from gw-s" in r.stderr, (r.returncode, r.stdout, r.stderr))
    c, why = prepare(src, cg, vm="v5", mig="mig-0005")
    check("...which the source host can use", c != grpc.StatusCode.UNAUTHENTICATED, (c, why))
    r = subprocess.run(cli[:3] + ["--tls-ca", f"{ca}/ca.pem", "migration", "grant", "v6"],
                       capture_output=True, text=True, timeout=30)
    check("godwit migration grant needs the destination's token", r.returncode == 1
          and "UNAUTHENTICATED" in r.stderr, (r.returncode, r.stderr))
    r = subprocess.run(cli[:3] + ["migration", "grant", "v6"], capture_output=True, text=True,
                       timeout=30)
    check("the CLI over plaintext to a TLS godwitd fails", r.returncode != 0, r.stderr)
    files = os.listdir(os.path.join(dstate, "grants"))
    on_disk = "".join(open(os.path.join(dstate, "grants", f)).read() for f in files)
    check("grants are kept hashed, never in clear", files and g.grant not in on_disk
          and g.grant not in "".join(files), files)

    # --- the source side: a grant, and TLS beyond loopback ---
    s, sstate = start("plain-src", "--listen", "127.0.0.1:0")
    saddr = open(os.path.join(sstate, "listen-address")).read().strip()
    stoken = open(os.path.join(sstate, "token")).read().strip()
    smigs = migrations_pb2_grpc.MigrationsStub(grpc.insecure_channel(saddr))
    smd = [("authorization", "Bearer " + stoken)]
    c, why = code_of(lambda: smigs.Migrate(migrations_pb2.MigrateRequest(
        vm="v1", destination=addr), metadata=smd, timeout=10))
    check("Migrate without a grant: refused", c == grpc.StatusCode.INVALID_ARGUMENT
          and "grant" in why, (c, why))
    c, why = code_of(lambda: smigs.Migrate(migrations_pb2.MigrateRequest(
        vm="v1", destination="192.0.2.1:7700", destination_grant=g.grant), metadata=smd,
        timeout=10))
    check("a plaintext godwitd will not migrate to another host",
          c == grpc.StatusCode.PERMISSION_DENIED and "TLS" in why, (c, why))

    # --- a flood of unauthenticated health streams ---
    before = threads(d.pid)
    flood_ch = [grpc.secure_channel(addr, grpc.ssl_channel_credentials(pem("ca.pem")))
                for _ in range(10)]
    streams, got, busy = [], 0, 0
    for i in range(400):
        w = health_pb2_grpc.HealthStub(flood_ch[i % 10]).Watch(
            health_pb2.HealthCheckRequest(), timeout=120)
        streams.append(w)
    for w in streams:
        try:
            next(w)
            got += 1
        except grpc.RpcError as e:
            busy += e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    during = threads(d.pid)
    check(f"400 health streams: {got} held, {busy} refused as busy",
          got <= 16 and got + busy == 400, (got, busy))
    check(f"godwitd's threads stay bounded ({before} -> {during})", during < before + 40,
          (before, during))
    c, _ = code_of(lambda: host_pb2_grpc.HostStub(tls).GetInfo(req, metadata=md, timeout=10))
    check("the API answers during the flood", c == grpc.StatusCode.OK, c)
    for w in streams:
        w.cancel()
    check("godwitd is still running", d.poll() is None)

    # --- the bounds are the operator's: --max-calls ---
    refused("max-calls-0", ["--max-calls", "0"], "4..4096")
    small, sstate = start("small", "--listen", "127.0.0.1:0", "--insecure", "--max-calls", "8")
    saddr = open(os.path.join(sstate, "listen-address")).read().strip()
    sch = grpc.insecure_channel(saddr)
    streams, got, busy = [], 0, 0
    for i in range(20):
        streams.append(health_pb2_grpc.HealthStub(sch).Watch(health_pb2.HealthCheckRequest(),
                                                             timeout=60))
    for w in streams:
        try:
            next(w)
            got += 1
        except grpc.RpcError as e:
            busy += e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    check(f"--max-calls 8: 20 health streams, {got} held (a quarter: 2), {busy} refused",
          got == 2 and busy == 18, (got, busy))
    for w in streams:
        w.cancel()
    check("godwitd --max-calls 8 is still running", small.poll() is None)
finally:
    gw_grpc.finish(procs, tmp, failures, 1500)

print(f"{'FAIL' if failures else 'PASS'}: {failures} failure(s)")
sys.exit(1 if failures else 0)
