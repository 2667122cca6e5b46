#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Attaches the terminal to a test host's serial shell (a QEMU unix-socket chardev); Ctrl-] leaves."""
import os, select, socket, sys, termios, tty

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
except OSError as e:
    sys.exit(f"console: {sys.argv[1]}: {e}")
fd = sys.stdin.fileno()
old = termios.tcgetattr(fd) if os.isatty(fd) else None
if old:
    tty.setraw(fd)
try:
    sock.sendall(b"\n")
    while True:
        r, _, _ = select.select([fd, sock], [], [])
        if sock in r:
            data = sock.recv(4096)
            if not data:
                break
            os.write(sys.stdout.fileno(), data)
        if fd in r:
            data = os.read(fd, 4096)
            if not data or b"\x1d" in data:
                break
            sock.sendall(data)
finally:
    if old:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
