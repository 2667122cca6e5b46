#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Calls godwit.v1.Peer methods of a godwitd the way a source daemon does, and prints one line
per call: "METHOD CODE STATE-or-message". Stubs are generated from godwit's .proto files by
grpc_tools.protoc into GEN (once).

  peer_check.py PROTO_DIR GEN ADDR grant-of:DIR ID [--after-file F [--after-delay S]] METHOD...
  peer_check.py PROTO_DIR GEN            (only generates the stubs)

Peer calls carry the grant the destination gave for the migration: grant-of:DIR reads it from
the source's record of the migration, DIR/ID.pb (a MigrationRecord; its peer_token).

With --after-file, the calls wait until F (a glob) exists (at most 600 s, else exit code 1),
then S seconds more (imports, stubs and the connection are ready before: the calls come at
once). With --touch-after T, T is created once the calls are done. ID "@FILE": the ID is read
from FILE when the calls begin. Exit code 77 without python3-grpcio / python3-grpc-tools.
"""
import glob
import os
import sys
import time

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:
    print(f"SKIP: python3-grpcio / python3-grpc-tools missing ({e})")
    sys.exit(77)

AFTER_TIMEOUT_S = 600
args = sys.argv[1:]
after, delay = None, 0.0
if "--after-file" in args:
    i = args.index("--after-file")
    after = args[i + 1]
    del args[i : i + 2]
touch = None
if "--touch-after" in args:
    i = args.index("--touch-after")
    touch = args[i + 1]
    del args[i : i + 2]
if "--after-delay" in args:
    i = args.index("--after-delay")
    delay = float(args[i + 1])
    del args[i : i + 2]
proto_dir, gen = args[:2]
if not os.path.exists(os.path.join(gen, "godwit", "v1", "peer_pb2_grpc.py")):
    os.makedirs(gen, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                      "godwit/v1/peer.proto", "godwit/v1/migrations.proto", "godwit/v1/vms.proto",
                      "godwit/internal/v1/record.proto"])
    assert rc == 0, "grpc_tools.protoc failed"
if len(args) == 2:
    sys.exit(0)
addr, cred, mid = args[2:5]
methods = args[5:]
sys.path.insert(0, gen)
from godwit.v1 import peer_pb2, peer_pb2_grpc  # noqa: E402
from godwit.internal.v1 import record_pb2  # noqa: E402

assert cred.startswith("grant-of:"), "the credential is grant-of:DIR"
channel = grpc.insecure_channel(addr)
stub = peer_pb2_grpc.PeerStub(channel)
grpc.channel_ready_future(channel).result(timeout=30)  # connected before the moment comes

if after:
    # Bounded: if the moment never comes (the scenario failed before it), say so and end.
    end = time.monotonic() + AFTER_TIMEOUT_S
    while not glob.glob(after):
        if time.monotonic() > end:
            print(f"TIMEOUT: {after} did not appear within {AFTER_TIMEOUT_S} s", flush=True)
            sys.exit(1)
        time.sleep(0.02)
    time.sleep(delay)
if mid.startswith("@"):
    mid = open(mid[1:]).read().strip()
rec = record_pb2.MigrationRecord()
rec.ParseFromString(open(os.path.join(cred[len("grant-of:"):], mid + ".pb"), "rb").read())
md = [("authorization", "Grant " + rec.peer_token)]

for m in methods:
    try:
        if m == "Commit":
            stub.Commit(peer_pb2.CommitRequest(migration_id=mid), metadata=md, timeout=30)
            print("Commit OK", flush=True)
        elif m == "Abort":
            stub.Abort(peer_pb2.AbortRequest(migration_id=mid, reason="peer_check"), metadata=md,
                       timeout=30)
            print("Abort OK", flush=True)
        elif m == "QueryIncoming":
            r = stub.QueryIncoming(peer_pb2.QueryIncomingRequest(migration_id=mid), metadata=md,
                                   timeout=30)
            print("QueryIncoming OK " + peer_pb2.QueryIncomingResponse.State.Name(r.state),
                  flush=True)
        else:
            print(f"unknown method {m}")
            sys.exit(2)
    except grpc.RpcError as e:
        print(f"{m} {e.code().name} {e.details()}", flush=True)
if touch:
    open(touch, "w").close()
