#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's packet case: packets per second and CPU per packet of the emulated VF's uplink
# with the udp:, tap: and dpdk: ports (and packet:, the AF_PACKET socket on the same wire as
# dpdk:'s net_af_packet), side by side, same machine, same run, in three layers. dpdk: runs
# two of DPDK's virtual devices: net_af_packet (port "dpdk"), frames through the kernel on a
# veth pair, and net_memif (port "dpdk-memif"), frames through shared memory to another DPDK
# port, the kernel out of the path (the memif socket only connects the two).
#   ports  the port layer alone (godwit-portbench: one port sends 64-byte numbered frames,
#          256 in flight, batches of 32 as one device round, another receives and checks them),
#          on this machine: udp: to a socket on loopback; tap: two TAPs on a bridge; packet: and
#          dpdk:net_af_packet on the two ends of a veth pair; two net_memif ports (server and
#          client) in the one process. PORT_FRAMES frames, RUNS runs.
#   vf     the whole guest path: the test guest's nic-echo through the emulated VF, godwit-nicpeer
#          sending NIC_FRAMES 64-byte frames, 32 in flight: uplink udp: (peer on loopback), tap:
#          and dpdk:net_af_packet (a TAP, or one end of a veth pair, in a bridge; the peer on the
#          bridge with packet:), and dpdk:net_memif (the peer's own dpdk: port serves it). CPU:
#          the VMM's user + system time per echoed packet. Needs a KVM that runs the test
#          guest: natively where testhost.sh's probe says so, else in test host h1 (nested KVM
#          under TCG: the guest dominates there).
#   device through the emulated VF's device model, the guest's driver played on the host
#          (godwit-vfbench: the igb register model, its RX/TX ring engines and the port, run
#          as godwit-vmm's device thread runs them, echoing as nic-echo does; no VM, no vCPU,
#          no VM exits, no guest code), natively on this machine; godwit-nicpeer sends
#          DEV_FRAMES (200000) 64-byte frames, DEV_WINDOW (256) in flight: uplink udp: (peer
#          on loopback), tap: (a TAP in a bridge with the peer's packet:), and dpdk: with the
#          peer on a dpdk: port of its own, so that its rate is not one system call per frame:
#          net_af_packet on the two ends of a veth pair, net_memif (the peer serves). CPU:
#          godwit-vfbench's user + system time per echo.
# Needs root (TAPs, veth pairs, bridges, AF_PACKET). PACKET_LAYERS=ports, device or vf (or a
# list of them) runs those layers only.
# usage: bench/packets.sh BUILD RAW             (appends JSON lines to RAW)
#        bench/packets.sh --vf-here BUILD OUT   (the vf layer on this machine, lines to OUT)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
PORT_FRAMES=${PORT_FRAMES:-1000000}
NIC_FRAMES=${NIC_FRAMES:-20000}
DEV_FRAMES=${DEV_FRAMES:-200000}
DEV_WINDOW=${DEV_WINDOW:-256}
log() { printf '[bench packets] %s\n' "$*" >&2; }

K=gwb$(($$ % 100000))
IFS_MADE=()
WORK=$(mktemp -d /tmp/godwit-bench-pkt-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	for i in "${IFS_MADE[@]}"; do ip link del "$i" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
noipv6() { echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6" 2>/dev/null || true; }
up() { noipv6 "$1" && ip link set "$1" up; }
bridge() { ip link add "$1" type bridge && IFS_MADE+=("$1") && up "$1"; }
veth() { ip link add "$1" type veth peer name "$2" && IFS_MADE+=("$1") && up "$1" && up "$2"; }
tap() { ip tuntap add "$1" mode tap && IFS_MADE+=("$1") && up "$1"; }

# vf NAME UPLINK PEERLISTEN: one run of nic-echo through the emulated VF; one JSON line.
vf() {
	local name=$1 uplink=$2 listen=$3 run=$4
	rm -f "$WORK/ready"
	"$PEER" --listen "$listen" --ready-file "$WORK/ready" --count "$NIC_FRAMES" --window 32 \
		--wait-announce 120 --json --quiet >"$WORK/peer.json" 2>"$WORK/peer.err" &
	local peer=$!
	# Up to 60 s: a dpdk: peer starts its EAL first, slowly under TCG, and a memif client
	# whose server is not there yet does not start.
	for _ in $(seq 1200); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
	[ "$uplink" = peer ] && uplink=$(cat "$WORK/ready")
	/usr/bin/time -f "%U %S" -o "$WORK/time" "$VMM" --memory 64M --guest "$GUEST" \
		--cmdline "nic-echo:$NIC_FRAMES" --serial "file:$WORK/console" --json --timeout 600 \
		--log-level warn --vf "pf=0,vf=0,gen=1,mac=02:67:77:00:0e:02,uplink=$uplink" \
		>"$WORK/vmm.json" 2>"$WORK/vmm.err" || true
	wait "$peer" || true
	/usr/bin/python3 - "$WORK/peer.json" "$WORK/vmm.json" "$WORK/time" "$name" "$run" \
		"$NIC_FRAMES" <<'EOF'
import json, sys
peer, vmm, tm, name, run, frames = sys.argv[1:7]
try:
    p = json.load(open(peer))
    v = json.load(open(vmm))
    u, s = (float(x) for x in open(tm).read().split()[-2:])
except (OSError, ValueError) as e:
    print(json.dumps({"tool": "godwit", "case": "packet-vf", "port": name, "run": int(run),
                      "ok": False, "error": str(e)}))
    sys.exit(0)
got = p.get("received", 0)
print(json.dumps({
    "tool": "godwit", "case": "packet-vf", "port": name, "run": int(run),
    "ok": p.get("result") == "pass", "frames": int(frames), "received": got,
    "lost": p.get("lost"), "corrupt": p.get("corrupt"), "pps": p.get("pps"),
    "rtt_avg_us": p.get("rtt_us", {}).get("avg"), "vmm_cpu_s": u + s,
    "cpu_ns_per_packet": (u + s) * 1e9 / got if got else None,
    "describe": (v.get("vfs") or [{}])[0].get("port"),
    "error": "" if p.get("result") == "pass" else p.get("result", "?")}))
EOF
}

if [ "${1:-}" = --vf-here ]; then
	BUILD=$2
	OUT=$3
	VMM=$BUILD/vmm/godwit-vmm
	GUEST=$BUILD/tests/guest/godwit-test-guest
	PEER=$BUILD/tools/nicpeer/godwit-nicpeer
	# A test host's /dev has no net/tun until something asks for it.
	[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true
	[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }
	bridge "${K}br"
	veth "${K}p" "${K}ps"
	veth "${K}d" "${K}ds"
	tap "${K}t"
	for i in "${K}ps" "${K}ds" "${K}t"; do ip link set "$i" master "${K}br"; done
	for run in $(seq "$RUNS"); do
		vf udp peer udp:127.0.0.1:0 "$run" >>"$OUT"
		log "vf udp run $run: $(tail -n 1 "$OUT")"
		vf tap "tap:${K}t" "packet:${K}p" "$run" >>"$OUT"
		log "vf tap run $run: $(tail -n 1 "$OUT")"
		vf dpdk "dpdk:net_af_packet0,iface=${K}d" "packet:${K}p" "$run" >>"$OUT"
		log "vf dpdk run $run: $(tail -n 1 "$OUT")"
		vf dpdk-memif "dpdk:net_memif0,role=client,socket=$WORK/vf-memif-$run.sock" \
			"dpdk:net_memif0,role=server,socket=$WORK/vf-memif-$run.sock" "$run" >>"$OUT"
		log "vf dpdk-memif run $run: $(tail -n 1 "$OUT")"
	done
	exit 0
fi

BUILD=$(realpath "$1")
RAW=$2
LAYERS=${PACKET_LAYERS:-ports device vf}
# port NAME RUN ARGS...: one run of godwit-portbench; one JSON line to RAW.
port() {
	local name=$1 run=$2
	shift 2
	local line
	line=$("$PB" --frames "$PORT_FRAMES" --label "$name" "$@" 2>"$WORK/pb.err") || true
	[ -n "$line" ] || line="{\"port\":\"$name\",\"ok\":false,\"error\":\"$(tail -n 1 "$WORK/pb.err" | tr -d '"\\')\"}"
	/usr/bin/python3 -c 'import json,sys
r = json.loads(sys.argv[1])
r.update(tool="godwit", case="packet-port", run=int(sys.argv[2]))
r.setdefault("ok", r.get("lost") == 0 and r.get("corrupt") == 0)
print(json.dumps(r))' "$line" "$run" >>"$RAW"
	log "port $name run $run: $(tail -n 1 "$RAW")"
}
# dev NAME UPLINK PEERLISTEN RUN: one run of godwit-vfbench against godwit-nicpeer; one JSON
# line to RAW.
dev() {
	local name=$1 uplink=$2 listen=$3 run=$4
	rm -f "$WORK/ready" "$WORK/vfb.json" "$WORK/peer.json"
	"$PEER" --listen "$listen" --ready-file "$WORK/ready" --count "$DEV_FRAMES" \
		--window "$DEV_WINDOW" --wait-announce 60 --json --quiet >"$WORK/peer.json" \
		2>"$WORK/peer.err" &
	local peer=$!
	for _ in $(seq 1200); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
	[ "$uplink" = peer ] && uplink=$(cat "$WORK/ready")
	"$VFB" --uplink "$uplink" --frames "$DEV_FRAMES" --timeout 600 --json >"$WORK/vfb.json" \
		2>"$WORK/vfb.err" || true
	wait "$peer" || true
	/usr/bin/python3 - "$WORK/peer.json" "$WORK/vfb.json" "$WORK/vfb.err" "$name" "$run" \
		"$DEV_FRAMES" "$DEV_WINDOW" >>"$RAW" <<'EOF'
import json, sys
peer, vfb, err, name, run, frames, window = sys.argv[1:8]
try:
    p = json.load(open(peer))
    v = json.load(open(vfb))
except (OSError, ValueError) as e:
    tail = open(err).read().strip().splitlines()[-1:]
    print(json.dumps({"tool": "godwit", "case": "packet-device", "port": name, "run": int(run),
                      "ok": False, "error": (tail or [str(e)])[0]}))
    sys.exit(0)
ok = p.get("result") == "pass" and v.get("result") == "pass"
print(json.dumps({
    "tool": "godwit", "case": "packet-device", "port": name, "run": int(run), "ok": ok,
    "frames": int(frames), "window": int(window), "received": p.get("received"),
    "lost": p.get("lost"), "corrupt": p.get("corrupt"), "bad": v.get("bad"),
    "pps": v.get("pps"), "peer_pps": p.get("pps"), "rtt_avg_us": p.get("rtt_us", {}).get("avg"),
    "cpu_s": v.get("cpu_s"), "cpu_ns_per_packet": v.get("cpu_ns_per_packet"),
    "open_ms": v.get("open_ms"), "rounds": v.get("rounds"), "idle_waits": v.get("idle_waits"),
    "describe": v.get("describe"),
    "error": "" if ok else "peer %s, vfbench %s" % (p.get("result"), v.get("result"))}))
EOF
	log "device $name run $run: $(tail -n 1 "$RAW")"
}
device_layer() {
	VFB=$BUILD/bench/vfbench/godwit-vfbench
	PEER=$BUILD/tools/nicpeer/godwit-nicpeer
	log "device: $DEV_FRAMES frames of 64 bytes, $DEV_WINDOW in flight, $RUNS runs per port"
	bridge "${K}vb"
	veth "${K}e" "${K}es"
	veth "${K}f" "${K}fs"
	tap "${K}u"
	for i in "${K}es" "${K}u"; do ip link set "$i" master "${K}vb"; done
	for run in $(seq "$RUNS"); do
		dev udp peer udp:127.0.0.1:0 "$run"
		dev tap "tap:${K}u" "packet:${K}e" "$run"
		dev dpdk "dpdk:net_af_packet0,iface=${K}f" "dpdk:net_af_packet0,iface=${K}fs" "$run"
		dev dpdk-memif "dpdk:net_memif0,role=client,socket=$WORK/dev-memif-$run.sock" \
			"dpdk:net_memif0,role=server,socket=$WORK/dev-memif-$run.sock" "$run"
	done
}
ports_layer() {
	PB=$BUILD/tools/portbench/godwit-portbench
	log "ports: $PORT_FRAMES frames of 64 bytes, $RUNS runs per port"
	veth "${K}a" "${K}b"
	bridge "${K}br"
	tap "${K}t0"
	tap "${K}t1"
	ip link set "${K}t0" master "${K}br"
	ip link set "${K}t1" master "${K}br"
	for run in $(seq "$RUNS"); do
		port udp "$run" udp
		port tap "$run" "tap:${K}t0" "tap:${K}t1"
		port packet "$run" "packet:${K}a" "packet:${K}b"
		port dpdk "$run" "dpdk:net_af_packet0,iface=${K}a" "dpdk:net_af_packet1,iface=${K}b"
		port dpdk-memif "$run" "dpdk:net_memif0,role=server,socket=$WORK/port-memif-$run.sock" \
			"dpdk:net_memif1,role=client,socket=$WORK/port-memif-$run.sock"
	done
}
[[ " $LAYERS " != *" ports "* ]] || ports_layer
[[ " $LAYERS " != *" device "* ]] || device_layer
[[ " $LAYERS " == *" vf "* ]] || exit 0

HOSTS="$SRC/tests/hosts/testhost.sh --build $BUILD"
if $HOSTS probe >/dev/null 2>&1; then
	log "vf: natively"
	"$0" --vf-here "$BUILD" "$RAW"
	exit 0
fi
log "vf: in test host h1 (this machine's KVM cannot run the test guest)"
$HOSTS boot h1 >&2
out=$BUILD/testhosts/bench-packets.jsonl
: >"$out"
rc=0
$HOSTS run h1 --timeout 3600 --env "RUNS=$RUNS" --env "NIC_FRAMES=$NIC_FRAMES" -- \
	"$0" --vf-here "$BUILD" "$out" || rc=$?
cat "$out" >>"$RAW"
exit $rc
