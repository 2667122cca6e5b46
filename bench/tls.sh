#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's encryption case, godwit and QEMU side by side on the same host, same run: a 1 GiB
# VM holding 384 MiB of pseudo-random data migrated back and forth RUNS times over loopback on 2
# channels, in clear and encrypted.
#   godwit      two godwitd --insecure: the API and the stream in clear
#   godwit-tls  two godwitd with certificates of a test CA: mutual TLS between the daemons, the
#               stream TLS 1.3 keyed by the migration's token (kTLS where the kernel takes it)
#   qemu-multifd, qemu-multifd-tls
#               QEMU, multifd on 2 channels, without and with tls-creds-x509 (verify-peer) from
#               the same CA
# Both need a KVM that runs their guests: natively where testhost.sh's probe says this machine's
# KVM runs the test guest, else inside test host h1, under its nested KVM.
# usage: bench/tls.sh BUILD RAW          (appends JSON lines to RAW)
#        bench/tls.sh --here BUILD OUT   (runs the case on this machine, lines to OUT)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-5}
MIB=${TLS_MIB:-384}
log() { printf '[bench tls] %s\n' "$*" >&2; }

if [ "${1:-}" != --here ]; then
	# shellcheck source=bench/lib.sh
	. "$HERE/lib.sh"
	RUNS=$RUNS TLS_MIB=$MIB bench_dispatch "$0" "$(realpath "$1")" "$2" tls 5400 RUNS TLS_MIB
	exit $?
fi

. "$HERE/lib.sh"
bench_here "$2" "$3"
WORK=$(mktemp -d /tmp/godwit-bench-tls-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# One CA for both tools. QEMU reads its x509 directory by fixed names.
CA=$WORK/ca
"$SRC/scripts/make-test-ca.sh" "$CA" ca
"$SRC/scripts/make-test-ca.sh" "$CA" host a IP:127.0.0.1,DNS:localhost
"$SRC/scripts/make-test-ca.sh" "$CA" host b IP:127.0.0.1,DNS:localhost
mkdir -p "$WORK/qtls"
cp "$CA/ca.pem" "$WORK/qtls/ca-cert.pem"
cp "$CA/a.pem" "$WORK/qtls/server-cert.pem"
cp "$CA/a-key.pem" "$WORK/qtls/server-key.pem"
cp "$CA/b.pem" "$WORK/qtls/client-cert.pem"
cp "$CA/b-key.pem" "$WORK/qtls/client-key.pem"

row() { # TOOL RUN JSON-FROM-STDIN: the Migration's figures as a raw row
	/usr/bin/python3 -c '
import json, sys
m = json.loads(sys.stdin.read().strip().splitlines()[-1])
total = int(m.get("totalTimeUs", 0)) / 1e3
print(json.dumps({"tool": sys.argv[1], "case": "tls-migrate", "run": int(sys.argv[2]),
                  "ok": m.get("phase") == "MIGRATION_PHASE_DONE", "total_ms": total,
                  "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "bytes": int(m.get("bytesSent", 0)),
                  "mbps": int(m.get("bytesSent", 0)) * 8 / 1e6 / (total / 1e3) if total else 0,
                  "stream_tls": m.get("streamTls", False),
                  "ktls_send": m.get("ktlsSendChannels", 0),
                  "ktls_recv": m.get("ktlsRecvChannels", 0), "error": m.get("error", "")}))' "$@"
}

godwit_case() { # TOOL: godwit (in clear) or godwit-tls
	local tool=$1 opts=() cli=()
	for h in a b; do
		if [ "$tool" = godwit-tls ]; then
			opts=(--tls-cert "$CA/$h.pem" --tls-key "$CA/$h-key.pem" --tls-ca "$CA/ca.pem")
		else
			opts=(--insecure)
		fi
		"$GODWITD" --listen 127.0.0.1:0 --state-dir "$WORK/$tool-$h" --log-level warn \
			"${opts[@]}" >"$WORK/$tool-$h.log" 2>&1 &
		disown
	done
	for h in a b; do
		for _ in $(seq 200); do [ -s "$WORK/$tool-$h/listen-address" ] && break; sleep 0.05; done
	done
	[ "$tool" = godwit-tls ] && cli=(--tls-ca "$CA/ca.pem" --tls-cert "$CA/a.pem" --tls-key "$CA/a-key.pem")
	G() { local h=$1; shift; "$GODWIT" --host "$(cat "$WORK/$tool-$h/listen-address")" \
		--token-file "$WORK/$tool-$h/token" "${cli[@]}" "$@"; }
	G a vm create bench --memory 1G --guest "$GUEST" --cmdline "fill-random:$MIB" >/dev/null
	G a vm start bench >/dev/null
	for _ in $(seq 1200); do
		grep -q "guest report checksum" "$WORK/$tool-a/vms/bench/vmm.log" 2>/dev/null && break
		sleep 0.5
	done
	local from=a to=b
	for run in $(seq "$RUNS"); do
		G "$from" --json migrate bench --to "$(cat "$WORK/$tool-$to/listen-address")" \
			--to-token-file "$WORK/$tool-$to/token" --channels 2 >"$WORK/m.json" 2>"$WORK/m.err" || true
		row "$tool" "$run" <"$WORK/m.json" >>"$OUT" || log "$tool run $run: $(tail -n 2 "$WORK/m.err")"
		log "$tool run $run: $(tail -n 1 "$OUT")"
		local t=$from; from=$to; to=$t
	done
	G "$from" vm stop bench --force >/dev/null 2>&1 || true
	pkill -f "$WORK/$tool-[ab]" 2>/dev/null || true
}

qemu_vm() { # NAME [incoming]
	local extra=()
	[ "${2:-}" = incoming ] && extra=(-incoming defer)
	qemu-system-x86_64 -accel kvm -cpu host -m 1G -smp 1 -nodefaults -display none -no-reboot \
		-kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "console=ttyS0 quiet bench.mib=$MIB" \
		-serial "file:$WORK/$1.con" -qmp "unix:$WORK/$1.qmp,server,nowait" "${extra[@]}" \
		>"$WORK/$1.out" 2>&1 &
	disown
	echo $!
}

qemu_case() { # TOOL: qemu-multifd or qemu-multifd-tls
	local tool=$1 from=a to=b pfrom port=47200 tls=()
	[ "$tool" = qemu-multifd-tls ] && tls=(--tls "$WORK/qtls")
	pfrom=$(qemu_vm "$tool-a")
	for _ in $(seq 2400); do grep -q BENCH-FILLED "$WORK/$tool-a.con" 2>/dev/null && break; sleep 0.25; done
	for run in $(seq "$RUNS"); do
		local pto ok=true
		pto=$(qemu_vm "$tool-$to" incoming)
		port=$((port + 1))
		/usr/bin/python3 "$HERE/qmp.py" "$WORK/$tool-$from.qmp" "$WORK/$tool-$to.qmp" "$port" 2 \
			"${tls[@]}" >"$WORK/q.json" || ok=false
		/usr/bin/python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
print(json.dumps({"tool": sys.argv[2], "case": "tls-migrate", "run": int(sys.argv[3]),
                  "ok": sys.argv[4] == "true", "total_ms": q.get("total_ms", 0),
                  "downtime_ms": q.get("downtime_ms", 0), "bytes": q.get("bytes", 0),
                  "mbps": q.get("mbps", 0), "error": q.get("error", "")}))' \
			"$WORK/q.json" "$tool" "$run" "$ok" >>"$OUT"
		log "$tool run $run: $(tail -n 1 "$OUT")"
		kill "$pfrom" 2>/dev/null || true
		rm -f "$WORK/$tool-$from.qmp"
		pfrom=$pto
		local t=$from; from=$to; to=$t
	done
	kill "$pfrom" 2>/dev/null || true
}

log "$RUNS runs each, 1 GiB VMs with $MIB MiB of random data, 2 channels"
godwit_case godwit
godwit_case godwit-tls
if command -v qemu-system-x86_64 >/dev/null && [ -n "$KERNEL" ]; then
	"$HERE/mkinitramfs.sh" "$WORK/initrd.gz"
	qemu_case qemu-multifd
	qemu_case qemu-multifd-tls
else
	log "QEMU or a kernel is missing: only godwit was measured"
fi
