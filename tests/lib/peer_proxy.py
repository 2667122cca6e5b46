#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy between two godwitd for fault tests: it numbers the gRPC requests it carries
(HTTP/2 HEADERS frames from the client that open a new stream, across all its connections, in
order: with one source daemon, 1 is PrepareIncoming and 2 the Commit) and does to request N
what its rule says; every other byte passes unchanged.

  lose-answer  forward request N, then close the client's connection at once: the server
               acts on the request, its answer never arrives. With --stop-pid-file, the process
               named there is stopped (SIGSTOP) as request N passes and continued once
               CTL/continue exists, or --stop-s
               seconds later, so that the server's work on it is still running when the
               client asks again.
  hold         forward nothing of request N's connection from request N on; write CTL/held-N;
               then, once CTL/release exists, close the connection ("drop") or forward what was
               held and go on ("forward"), as the file says.
  hold-answer  forward request N, and from then on nothing back to the client; write
               CTL/answered-N once the server's answer to it (its HEADERS) came.

CTL/port holds the port it listens on (127.0.0.1). Runs until killed.
"""
import argparse
import os
import signal
import socket
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, DATA = 1, 0
END_STREAM = 1


class Proxy:
    def __init__(self, args):
        self.a = args
        self.lock = threading.Lock()
        self.requests = 0

    def mark(self, name):
        with open(os.path.join(self.a.ctl, name), "w") as f:
            f.write("%f\n" % time.time())

    def next_request(self):
        with self.lock:
            self.requests += 1
            return self.requests


def frames(buf):
    """Complete HTTP/2 frames at the start of buf: (frames, rest)."""
    out = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[0:3], "big")
        if len(buf) < 9 + n:
            break
        kind, flags = buf[3], buf[4]
        sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        out.append((kind, flags, sid, bytes(buf[: 9 + n])))
        buf = buf[9 + n :]
    return out, buf


class Conn:
    def __init__(self, proxy, cli, srv):
        self.p, self.cli, self.srv = proxy, cli, srv
        self.max_sid = 0
        self.target = None  # the stream of request N on this connection
        self.mute = False  # nothing more goes back to the client
        self.closed = False

    def close(self):
        self.closed = True
        for s in (self.cli, self.srv):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def server_to_client(self):
        buf = b""
        try:
            while True:
                data = self.srv.recv(65536)
                if not data:
                    break
                buf += data
                fr, buf_rest = frames(buf)
                for kind, flags, sid, raw in fr:
                    if self.target is not None and sid == self.target and kind == HEADERS:
                        if self.p.a.rule == "hold-answer":
                            self.p.mark("answered-%d" % self.p.a.n)
                    if not self.mute:
                        self.cli.sendall(raw)
                buf = buf_rest
        except OSError:
            pass
        if not self.mute:
            self.close()

    def hold(self, held):
        self.p.mark("held-%d" % self.p.a.n)
        rel = os.path.join(self.p.a.ctl, "release")
        while not os.path.exists(rel):
            time.sleep(0.05)
        time.sleep(0.05)
        with open(rel) as f:
            how = f.read().strip()
        if how != "forward":
            self.close()
            return False
        self.srv.sendall(held)
        return True

    def stop_then_continue(self):
        try:
            with open(self.p.a.stop_pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        os.kill(pid, signal.SIGSTOP)
        self.p.mark("stopped-%d" % pid)

        def cont():
            # Until CTL/continue exists (whoever checks the stopped moment says when it is
            # done), --stop-s at most.
            until = time.time() + self.p.a.stop_s
            while time.time() < until and not os.path.exists(
                    os.path.join(self.p.a.ctl, "continue")):
                time.sleep(0.05)
            os.kill(pid, signal.SIGCONT)

        threading.Thread(target=cont, daemon=True).start()

    def client_to_server(self):
        a = self.p.a
        buf = b""
        seen_preface = False
        try:
            while True:
                data = self.cli.recv(65536)
                if not data:
                    break
                buf += data
                if not seen_preface:
                    if len(buf) < len(PREFACE):
                        continue
                    self.srv.sendall(buf[: len(PREFACE)])
                    buf = buf[len(PREFACE) :]
                    seen_preface = True
                fr, buf = frames(buf)
                for i, (kind, flags, sid, raw) in enumerate(fr):
                    if kind == HEADERS and sid > self.max_sid:
                        self.max_sid = sid
                        if self.p.next_request() == a.n:
                            self.target = sid
                            if a.rule == "hold":
                                # This frame, the rest read so far, and nothing after.
                                held = b"".join(x[3] for x in fr[i:]) + buf
                                if not self.hold(held):
                                    return
                                buf = b""
                                break
                            if a.rule == "lose-answer" and a.stop_pid_file:
                                self.stop_then_continue()
                            if a.rule in ("lose-answer", "hold-answer"):
                                self.mute = True
                    self.srv.sendall(raw)
                    ended = kind in (HEADERS, DATA) and flags & END_STREAM
                    if a.rule == "lose-answer" and sid == self.target and ended:
                        # The request is whole on its way: the client loses the answer.
                        self.p.mark("lost-%d" % a.n)
                        try:
                            self.cli.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        time.sleep(5)
                        self.close()
                        return
        except OSError:
            pass
        self.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="HOST:PORT of the server")
    ap.add_argument("--ctl", required=True, help="directory for the port file and markers")
    ap.add_argument("--rule", required=True, choices=["lose-answer", "hold", "hold-answer", "pass"])
    ap.add_argument("--n", type=int, default=2, help="the request the rule applies to")
    ap.add_argument("--stop-pid-file")
    ap.add_argument("--stop-s", type=float, default=3.0)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    p = Proxy(a)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    tmp = os.path.join(a.ctl, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, os.path.join(a.ctl, "port"))
    while True:
        cli, _ = ls.accept()
        try:
            srv = socket.create_connection((host, int(port)))
        except OSError:
            cli.close()
            continue
        for s in (cli, srv):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(p, cli, srv)
        threading.Thread(target=c.client_to_server, daemon=True).start()
        threading.Thread(target=c.server_to_client, daemon=True).start()


if __name__ == "__main__":
    main()
