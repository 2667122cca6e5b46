# SPDX-License-Identifier: Apache-2.0
# The prologue every shell test shares (bash), sourced first:
#   . "$(dirname "$0")/../lib/gw_test.sh"
# It gives:
#   gw_need_kvm WHAT   skip (exit 77, CTest's SKIP_RETURN_CODE) without a usable /dev/kvm
#   gw_tmp [PREFIX]    TMP: a new directory under /tmp, removed at exit together with every
#                      process whose arguments name it; first the processes given to gw_bg are
#                      sent SIGTERM and a test's own gw_cleanup_hook, if it defines one, runs
#   gw_bg PID...       a process to end at exit
#   pass/fail NAME     one line per check; fail counts in $fails
#   expect NAME RC PATTERN -- CMD...  runs CMD: its exit code must be RC and its output match
#                      the extended regex PATTERN
#   verified G VM [S]  the test guest's own memory verification, read from VM's console through
#                      the CLI command in array G, S seconds a look (default 4)
#   jget FILE EXPR     a value from a JSON file, e.g. jget f.json "['sent']"
#   gw_finish WHAT     the verdict and the exit code; on failure gw_failure_hook, if defined,
#                      runs first (to show logs)
fails=0
TMP=
GW_PIDS=()

pass() { echo "ok   - $1"; }
fail() {
	echo "FAIL - $1"
	fails=$((fails + 1))
}

gw_need_kvm() {
	if [ ! -r /dev/kvm ] || ! : <>/dev/kvm 2>/dev/null; then
		echo "SKIP: $1 need a usable /dev/kvm"
		exit 77
	fi
}

gw_bg() { GW_PIDS+=("$@"); }

gw_cleanup() {
	for p in "${GW_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	if declare -F gw_cleanup_hook >/dev/null; then gw_cleanup_hook; fi
	if [ -n "$TMP" ]; then
		pkill -KILL -f "$TMP/" 2>/dev/null
		wait 2>/dev/null
		sleep 0.2
		rm -rf "$TMP"
	fi
}

gw_tmp() {
	TMP=$(mktemp -d "/tmp/${1:-gw-test}-XXXXXX") || exit 1
	trap gw_cleanup EXIT
}

# gw_until SECS CMD...: runs CMD (in this shell) every GW_UNTIL_STEP (0.1) s until it succeeds
# (0) or SECS seconds of the clock passed (1). Seconds, not tries: each try may itself be slow
# on a loaded test host.
gw_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep "${GW_UNTIL_STEP:-0.1}"
	done
}

jget() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

expect() {
	local name=$1 want=$2 pat=$3
	shift 4
	"$@" >"$TMP/out" 2>&1
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$name: exit code $rc, wanted $want"
		sed 's/^/       /' "$TMP/out" | tail -n 6
	elif ! grep -Eq -- "$pat" "$TMP/out"; then
		fail "$name: output lacks /$pat/"
		sed 's/^/       /' "$TMP/out" | tail -n 6
	else
		pass "$name"
	fi
}

verified() {
	# A slow host may need more than one look before a pass completes (at most 15).
	local -n g=$1
	: >"$TMP/con"
	for _ in $(seq 15); do
		"${g[@]}" vm console "$2" --timeout "${3:-4}" >>"$TMP/con" 2>&1
		grep -q "pages ok" "$TMP/con" && break
	done
	grep -q "pages ok" "$TMP/con" && ! grep -q "BAD" "$TMP/con"
}

# gw_test_certs DIR: a test CA (DIR/ca.pem) and certificates for the test hosts, h1 (10.77.0.11)
# and h2 (10.77.0.12), made with scripts/make-test-ca.sh; gw_tls DIR hN: godwitd's TLS options
# as host hN.
gw_test_certs() {
	local mk
	mk="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/make-test-ca.sh"
	"$mk" "$1" ca && "$mk" "$1" host h1 IP:10.77.0.11,DNS:h1 &&
		"$mk" "$1" host h2 IP:10.77.0.12,DNS:h2
}
gw_tls() { echo "--tls-cert $1/$2.pem --tls-key $1/$2-key.pem --tls-ca $1/ca.pem"; }

gw_finish() {
	if [ "$fails" -ne 0 ]; then
		if declare -F gw_failure_hook >/dev/null; then gw_failure_hook; fi
		echo "$fails check(s) failed"
		exit 1
	fi
	echo "all $1 checks passed"
}
