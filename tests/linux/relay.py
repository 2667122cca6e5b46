# SPDX-License-Identifier: Apache-2.0
"""A wire between a network interface and godwit-nicpeer, for test_lecho.sh: every frame that
arrives on IFNAME goes to the peer as one UDP datagram, as godwit's emulated VF port sends it
(sriov/src/port.c), and every datagram from the peer goes out on IFNAME.
    relay.py IFNAME udp:127.0.0.1:PORT READY-FILE (created once both sockets are bound)"""
import select, socket, sys

ifname, spec, ready = sys.argv[1:4]
host, port = spec.split(":", 1)[1].rsplit(":", 1)
wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
wire.bind((ifname, 0))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
udp.connect((host, int(port)))
open(ready, "w").close()
while True:
    for s in select.select([wire, udp], [], [])[0]:
        if s is wire:
            data, addr = wire.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING:  # not what this relay itself sent
                udp.send(data)
        else:
            wire.send(udp.recv(65536))
