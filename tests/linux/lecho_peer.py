# SPDX-License-Identifier: Apache-2.0
"""The far end of gw-lecho in its native test (tests/linux/test_lecho.sh): on one end of a veth
pair it waits for gw-lecho's RARP announce, sends it test frames (struct gw_nic_frame of
sriov/include/godwit/igb_vf.h) and checks every echo byte by byte, sends frames that must not be
echoed, and asks for a second announce with SIGUSR2. Prints one 'ok'/'FAIL' line per check and
exits 1 on any failure.
    lecho_peer.py IFNAME READY-FILE PID-FILE
READY-FILE is created once its socket is bound (gw-lecho may start then); PID-FILE holds
gw-lecho's pid by the time the SIGUSR2 is due."""
import os, select, signal, socket, struct, sys, time

ETH_P_ALL = 0x0003
GW_NIC_ETHERTYPE = 0x88B5
GW_NIC_MAGIC = 0x6777
RARP = 0x8035

ifname, ready_file, pid_file = sys.argv[1:4]
fails = 0


def check(name, ok, detail=""):
    global fails
    print(("ok   - " if ok else "FAIL - ") + name + ("" if ok else ": " + detail), flush=True)
    if not ok:
        fails += 1


def nic_sum(payload, seq):
    a = ((seq & 0xFFFFFFFF) ^ 0x9E3779B9) & 0xFFFFFFFF
    b = (seq >> 32) & 0xFFFFFFFF
    for x in payload:
        a = (a + x) & 0xFFFFFFFF
        b = (b + a) & 0xFFFFFFFF
    return ((b << 16) ^ a) & 0xFFFFFFFF


def frame(dst, src, seq, size, sum_delta=0, len_field=None):
    payload = bytes((seq * 7 + i) & 0xFF for i in range(size - 36))
    hdr = dst + src + struct.pack(">H", GW_NIC_ETHERTYPE) + struct.pack(
        "<HIQII", GW_NIC_MAGIC, size if len_field is None else len_field, seq,
        (nic_sum(payload, seq) + sum_delta) & 0xFFFFFFFF, 0)
    return hdr + payload


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((ifname, 0))
mine = s.getsockname()[4][:6]
open(ready_file, "w").close()  # bound: gw-lecho may start, its first announce will be seen


def recv(types, timeout):
    """The next incoming frame of one of the ethertypes, or None."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return None
        data, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        if len(data) >= 14 and struct.unpack(">H", data[12:14])[0] in types:
            return data


def check_rarp(f, what):
    if f is None:
        check(what, False, "no RARP frame within 5 s")
        return None
    mac = f[6:12]
    want = (b"\xff" * 6 + mac + b"\x80\x35" + bytes([0, 1, 8, 0, 6, 4, 0, 3]) + mac +
            b"\0" * 4 + mac + b"\0" * 4)
    check(what, len(f) == 60 and f[:42] == want and f[42:] == b"\0" * 18,
          "frame %s" % f.hex())
    return mac


lecho_mac = check_rarp(recv((RARP,), 5), "announce at start: RFC 903 request reverse, 60 bytes")
if lecho_mac is None:
    sys.exit(1)

seq = 0
good = 0
for size in (60, 64, 100, 1000, 1514) * 4:
    seq += 1
    f = frame(lecho_mac, mine, seq, size)
    s.send(f)
    e = recv((GW_NIC_ETHERTYPE,), 2)
    want = bytearray(f)
    want[0:6], want[6:12] = mine, lecho_mac
    want[32] |= 1  # flags, little-endian: GW_NIC_FLAG_ECHO
    if e == bytes(want):
        good += 1
    else:
        check("echo of seq %d (%d bytes)" % (seq, size), False,
              "got %s" % (e.hex()[:120] if e else "nothing"))
check("20 echoes intact: MACs swapped, GW_NIC_FLAG_ECHO set, the rest as sent", good == 20)

bad = [frame(lecho_mac, mine, 100, 200, sum_delta=1),           # checksum
       frame(lecho_mac, mine, 101, 200, len_field=199),          # length field
       frame(lecho_mac, mine, 102, 100)[:14] + b"\x00\x01" + frame(lecho_mac, mine, 102, 100)[16:],
       frame(lecho_mac, mine, 103, 100)[:30]]                    # shorter than the header
for f in bad:
    s.send(f)
e = recv((GW_NIC_ETHERTYPE,), 0.5)
check("no echo of a frame with a bad checksum, length, magic or size", e is None,
      "got %s" % (e.hex()[:80] if e else ""))

os.kill(int(open(pid_file).read()), signal.SIGUSR2)
check_rarp(recv((RARP,), 5), "a second announce on SIGUSR2")

# The echo path still works after the bad frames.
seq += 1
s.send(frame(lecho_mac, mine, seq, 300))
e = recv((GW_NIC_ETHERTYPE,), 2)
check("echo after the bad frames", e is not None and len(e) == 300 and e[32] & 1 == 1)
sys.exit(1 if fails else 0)
