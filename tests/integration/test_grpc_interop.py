#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A standard gRPC client (Python grpcio) against godwitd, with stubs generated at test time
from godwit's own .proto files by grpc_tools.protoc."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

GODWITD, GUEST, PROTO_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:
    print(f"SKIP: python3-grpcio / python3-grpc-tools missing ({e})")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="gw-interop-")
gen = os.path.join(tmp, "gen")
os.makedirs(os.path.join(tmp, "src", "gwhealth"))
# The health proto's package is grpc.health.v1, which would shadow the grpc module in
# Python; compiled from another directory it keeps its wire names under a new module path.
shutil.copy(os.path.join(PROTO_DIR, "grpc/health/v1/health.proto"),
            os.path.join(tmp, "src", "gwhealth", "health.proto"))
os.makedirs(gen)
rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{tmp}/src", f"--python_out={gen}",
                  f"--grpc_python_out={gen}", "godwit/v1/host.proto", "godwit/v1/vms.proto",
                  "gwhealth/health.proto"])
assert rc == 0, "grpc_tools.protoc failed"
sys.path.insert(0, gen)
from godwit.v1 import host_pb2, host_pb2_grpc, vms_pb2, vms_pb2_grpc  # noqa: E402
from gwhealth import health_pb2, health_pb2_grpc  # noqa: E402

state = os.path.join(tmp, "state")
log = open(os.path.join(tmp, "godwitd.log"), "w")
daemon = subprocess.Popen([GODWITD, "--listen", "127.0.0.1:0", "--state-dir", state],
                          stdout=log, stderr=log)
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   - " if cond else "FAIL - ") + name + ("" if cond else f": {detail}"))
    if not cond:
        failures += 1


try:
    for _ in range(100):
        if os.path.exists(os.path.join(state, "listen-address")):
            break
        time.sleep(0.05)
    addr = open(os.path.join(state, "listen-address")).read().strip()
    token = open(os.path.join(state, "token")).read().strip()
    md = [("authorization", "Bearer " + token)]
    ch = grpc.insecure_channel(addr)
    host = host_pb2_grpc.HostStub(ch)
    vms = vms_pb2_grpc.VmsStub(ch)
    health = health_pb2_grpc.HealthStub(ch)

    r = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    check("health Check says SERVING", r.status == health_pb2.HealthCheckResponse.SERVING, r)
    r = health.Check(health_pb2.HealthCheckRequest(service="godwit.v1.Vms"), timeout=10)
    check("health Check of godwit.v1.Vms", r.status == health_pb2.HealthCheckResponse.SERVING)
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        check("health Check of an unknown service is NOT_FOUND", False, "no error")
    except grpc.RpcError as e:
        check("health Check of an unknown service is NOT_FOUND",
              e.code() == grpc.StatusCode.NOT_FOUND, e.code())
    first = next(health.Watch(health_pb2.HealthCheckRequest(), timeout=10))
    check("health Watch streams SERVING", first.status == health_pb2.HealthCheckResponse.SERVING)

    info = host.GetInfo(host_pb2.GetInfoRequest(), metadata=md, timeout=10)
    check("Host.GetInfo answers", len(info.host_id) == 32, info)
    # Whether KVM works depends on the machine; what GetInfo says about it must be true.
    kvm_here = os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)
    check("Host.GetInfo tells whether KVM is usable",
          (info.kvm.available and kvm_here) or (not info.kvm.available and info.kvm.error),
          info.kvm)
    try:
        host.GetInfo(host_pb2.GetInfoRequest(), timeout=10)
        check("no token is UNAUTHENTICATED", False, "no error")
    except grpc.RpcError as e:
        check("no token is UNAUTHENTICATED", e.code() == grpc.StatusCode.UNAUTHENTICATED, e.code())

    spec = vms_pb2.VmSpec(memory_bytes=32 << 20, guest_path=GUEST, cmdline="dirty:1:50")
    vm = vms.Create(vms_pb2.CreateVmRequest(name="py1", spec=spec), metadata=md, timeout=10)
    check("Vms.Create", vm.name == "py1" and vm.state == vms_pb2.VM_STATE_DEFINED, vm)
    try:
        vms.Create(vms_pb2.CreateVmRequest(name="py1", spec=spec), metadata=md, timeout=10)
        check("duplicate Create is ALREADY_EXISTS", False, "no error")
    except grpc.RpcError as e:
        check("duplicate Create is ALREADY_EXISTS",
              e.code() == grpc.StatusCode.ALREADY_EXISTS, e.code())
    lst = vms.List(vms_pb2.ListVmsRequest(), metadata=md, timeout=10)
    check("Vms.List", [v.name for v in lst.vms] == ["py1"], lst)

    if not info.kvm.available:
        try:
            vms.Start(vms_pb2.VmRef(name="py1"), metadata=md, timeout=90)
            check("Vms.Start without KVM fails", False, "no error")
        except grpc.RpcError as e:
            check("Vms.Start without KVM fails with a reason", bool(e.details()), e)
        print(f"note - Console/Stop not run: no usable /dev/kvm ({info.kvm.error})")
        raise SystemExit(1 if failures else 0)
    vm = vms.Start(vms_pb2.VmRef(name="py1"), metadata=md, timeout=90)
    check("Vms.Start", vm.state == vms_pb2.VM_STATE_RUNNING and vm.pid > 0, vm)
    seen = b""
    try:
        for chunk in vms.Console(vms_pb2.ConsoleRequest(name="py1"), metadata=md, timeout=90):
            seen += chunk.data
            if b"all 256 pages ok" in seen:
                break
    except grpc.RpcError as e:
        pass
    check("Vms.Console streams the guest's output", b"all 256 pages ok" in seen, seen[-200:])
    vm = vms.Stop(vms_pb2.StopVmRequest(name="py1"), metadata=md, timeout=60)
    check("Vms.Stop", vm.state == vms_pb2.VM_STATE_STOPPED, vm)
    vms.Delete(vms_pb2.VmRef(name="py1"), metadata=md, timeout=10)
    lst = vms.List(vms_pb2.ListVmsRequest(), metadata=md, timeout=10)
    check("Vms.Delete", len(lst.vms) == 0, lst)
finally:
    daemon.terminate()
    daemon.wait(timeout=20)
    subprocess.run(["pkill", "-KILL", "-f", state + "/vms/"])
    shutil.rmtree(tmp, ignore_errors=True)

print("all interop checks passed" if failures == 0 else f"{failures} check(s) failed")
sys.exit(1 if failures else 0)
