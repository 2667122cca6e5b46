# SPDX-License-Identifier: Apache-2.0
# One Ethernet segment for the tests of dpdk: uplinks, sourced after gw_test.sh (TMP set):
#   dpdk_segment NAME...   a Linux bridge and, for p (the peer) and each NAME, a veth pair with
#                          one end in the bridge; the other end is $K<NAME> (the peer's $K p):
#                          what a DPDK net_af_packet port, or godwit-nicpeer's packet:, opens.
#                          Skips the test (77) where this host cannot make a bridge or veth.
#                          IPv6 is off on all of them (no router solicitations on the wire).
# K: a prefix of interface names unique to this shell, so that runs side by side do not meet.
K=gwk$(($$ % 100000))
DPDK_IFS=()
gw_cleanup_hook() {
	local i
	for i in "${DPDK_IFS[@]}"; do ip link del "$i" 2>/dev/null; done
}
dpdk_noipv6() { echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6" 2>/dev/null; }
dpdk_segment() {
	local x
	if ! ip link add "${K}br" type bridge 2>"$TMP/ip.err"; then
		echo "SKIP: cannot make a bridge: $(cat "$TMP/ip.err")"
		exit 77
	fi
	DPDK_IFS+=("${K}br")
	dpdk_noipv6 "${K}br"
	for x in p "$@"; do
		if ! ip link add "$K$x" type veth peer name "$K${x}s" 2>"$TMP/ip.err"; then
			echo "SKIP: cannot make a veth pair: $(cat "$TMP/ip.err")"
			exit 77
		fi
		DPDK_IFS+=("$K$x")
		dpdk_noipv6 "$K$x"
		dpdk_noipv6 "$K${x}s"
		ip link set "$K${x}s" master "${K}br" && ip link set "$K${x}s" up &&
			ip link set "$K$x" up || fail "cannot bring up $K$x"
	done
	ip link set "${K}br" up || fail "cannot bring up ${K}br"
}
