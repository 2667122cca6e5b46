# SPDX-License-Identifier: Apache-2.0
"""What the Python gRPC tests share: stubs generated from godwit's .proto files at test time,
and the end of a test (its daemons stopped, their logs shown on failure, its folder removed)."""
import os
import shutil
import subprocess
import sys


def gen_stubs(proto_dir, tmp, protos):
    """Python stubs of protos (and of the health protocol, as module gwhealth: compiled from its
    own directory, its package grpc.health.v1 would shadow the grpc module) into TMP/gen, which
    goes on sys.path."""
    from grpc_tools import protoc
    gen = os.path.join(tmp, "gen")
    os.makedirs(os.path.join(tmp, "src", "gwhealth"))
    shutil.copy(os.path.join(proto_dir, "grpc/health/v1/health.proto"),
                os.path.join(tmp, "src", "gwhealth", "health.proto"))
    os.makedirs(gen)
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{tmp}/src", f"--python_out={gen}",
                      f"--grpc_python_out={gen}", *protos, "gwhealth/health.proto"])
    assert rc == 0, "grpc_tools.protoc failed"
    sys.path.insert(0, gen)


def finish(procs, tmp, failures, log_tail=1500):
    """Stops procs, prints the tail of each TMP/*.log when something failed, removes TMP."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    if failures:
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".log"):
                print(f"--- {f} ---\n" + open(os.path.join(tmp, f)).read()[-log_tail:])
    shutil.rmtree(tmp, ignore_errors=True)
