#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""godwitd as a host service, no KVM needed: its /metrics page parsed by Prometheus's own Python
parser (families, types, values that follow what was done), sd_notify (READY=1 once it answers,
WATCHDOG=1 at half of WATCHDOG_USEC, none without it, STOPPING=1) on a NOTIFY_SOCKET this test
listens on, socket activation (LISTEN_FDS/LISTEN_PID, the socket at fd 3) with the CLI through
it, and log lines as journal entries with their fields (a journal socket of this test's own, in
a private mount namespace) or on stderr."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

GODWITD, GODWIT = sys.argv[1:3]
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print(f"SKIP: python3-prometheus-client missing ({e})")
    sys.exit(77)

failures = 0
procs = []
tmp = tempfile.mkdtemp(prefix="gw-ops-")


def check(name, cond, detail=""):
    global failures
    print(("ok   - " if cond else "FAIL - ") + name + ("" if cond else f": {detail}"))
    if not cond:
        failures += 1


def state_dir(name):
    d = os.path.join(tmp, name)
    os.makedirs(d, mode=0o700)
    return d


def wait_file(path, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().strip()
        time.sleep(0.05)
    return None


def start(name, *args, env=None, stderr_path=None, **kw):
    d = os.path.join(tmp, name)
    if not os.path.isdir(d):
        state_dir(name)
    log = open(stderr_path or os.path.join(tmp, name + ".log"), "ab")
    p = subprocess.Popen([GODWITD, "--state-dir", d, *args], stdout=log, stderr=log,
                         env=env if env is not None else os.environ, **kw)
    procs.append(p)
    return p, d


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cli(host, *args, token=None):
    cmd = [GODWIT, "--host", host]
    if token:
        cmd += ["--token-file", token]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, family, sample, **labels):
    for s in fams[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def test_metrics():
    p, d = start("m", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
    addr = wait_file(os.path.join(d, "metrics-address"))
    tcp = wait_file(os.path.join(d, "listen-address"))
    check("metrics-address is written", addr is not None and addr.startswith("127.0.0.1:"),
          addr)
    if not addr:
        return
    unix = "unix:" + os.path.join(d, "godwitd.sock")
    guest = os.path.join(tmp, "guest")
    open(guest, "w").write("x")
    # Calls whose outcome the page must show: OK, NOT_FOUND, UNAUTHENTICATED, a VM and a VF.
    check("vm create", cli(unix, "vm", "create", "web", "--memory", "32M", "--guest", guest,
                           "--nic", "vf").returncode == 0)
    cli(unix, "vm", "list")
    cli(unix, "vm", "list")
    check("vm info of a VM that does not exist fails", cli(unix, "vm", "info", "nosuch").returncode != 0)
    bad = os.path.join(tmp, "badtoken")
    open(bad, "w").write("0" * 64)
    check("a wrong token fails", cli(tcp, "vm", "list", token=bad).returncode != 0)

    ctype, text = scrape(addr)
    check("Content-Type is the text format 0.0.4",
          ctype == "text/plain; version=0.0.4; charset=utf-8", ctype)
    try:
        fams = families(text)
    except Exception as e:  # noqa: BLE001 (any parse error fails the check)
        check("the page parses as the Prometheus text format", False, repr(e))
        return
    check("the page parses as the Prometheus text format", True)
    want = {
        "godwit_build_info": "gauge",
        "godwit_vms": "gauge",
        "godwit_migrations": "counter",  # samples godwit_migrations_total
        "godwit_migrations_in_progress": "gauge",
        "godwit_migration_duration_seconds": "histogram",
        "godwit_migration_downtime_seconds": "histogram",
        "godwit_migration_bytes": "histogram",
        "godwit_dma_shadow_pages": "counter",
        "godwit_dma_shadow_bytes": "counter",
        "godwit_vf_pool_vfs": "gauge",
        "godwit_vmm_up": "gauge",
        "godwit_mailbox_exchanges": "counter",
        "godwit_mailbox_denials": "counter",
        "godwit_rpcs": "counter",
    }
    for name, typ in want.items():
        got = fams[name].type if name in fams else None
        check(f"family {name} is a {typ}", got == typ, got)
    check("one VM defined", value(fams, "godwit_vms", "godwit_vms", state="defined") == 1)
    check("VF pool: 6 free, 1 held",
          value(fams, "godwit_vf_pool_vfs", "godwit_vf_pool_vfs", pf="pf0", state="free") == 6
          and value(fams, "godwit_vf_pool_vfs", "godwit_vf_pool_vfs", pf="pf0",
                    state="held") == 1)
    check("no migration yet",
          value(fams, "godwit_migrations", "godwit_migrations_total", direction="outgoing",
                outcome="completed") == 0)
    inf = value(fams, "godwit_migration_bytes", "godwit_migration_bytes_bucket",
                outcome="completed", le="+Inf")
    check("histogram buckets end with +Inf", inf == 0, inf)

    def rpc(method, code):
        return value(fams, "godwit_rpcs", "godwit_rpcs_total", service="godwit.v1.Vms",
                     method=method, code=code)
    check("RPCs: Vms.List OK twice", rpc("List", "OK") == 2, rpc("List", "OK"))
    check("RPCs: Vms.Create OK once", rpc("Create", "OK") == 1)
    check("RPCs: Vms.Get NOT_FOUND once", rpc("Get", "NOT_FOUND") == 1, rpc("Get", "NOT_FOUND"))
    check("RPCs: the wrong token counted UNAUTHENTICATED", rpc("List", "UNAUTHENTICATED") == 1)

    # Counters move: one more call, one more count.
    cli(unix, "vm", "list")
    fams = families(scrape(addr)[1])
    check("RPCs: Vms.List counted again", rpc("List", "OK") == 3)

    # What is not /metrics, or not GET.
    try:
        urllib.request.urlopen(f"http://{addr}/other", timeout=5)
        check("another path is 404", False)
    except urllib.error.HTTPError as e:
        check("another path is 404", e.code == 404, e.code)
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://{addr}/metrics", data=b"x",
                                                      method="POST"), timeout=5)
        check("POST is 405", False)
    except urllib.error.HTTPError as e:
        check("POST is 405", e.code == 405, e.code)
    stop(p)

    # --metrics off: no page, no address file; a bad or taken address: refused at start.
    p, d = start("off", "--listen", "none", "--metrics", "off")
    for _ in range(100):
        if os.path.exists(os.path.join(d, "godwitd.sock")):
            break
        time.sleep(0.1)
    check("--metrics off writes no metrics-address",
          p.poll() is None and not os.path.exists(os.path.join(d, "metrics-address")))
    stop(p)
    r = subprocess.run([GODWITD, "--state-dir", state_dir("bad"), "--listen", "none",
                        "--metrics", "nonsense"], capture_output=True, text=True, timeout=20)
    check("--metrics nonsense is refused", r.returncode == 1 and "HOST:PORT" in r.stderr,
          r.stderr)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    r = subprocess.run([GODWITD, "--state-dir", state_dir("taken"), "--listen", "none",
                        "--metrics", f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=20)
    check("a --metrics address in use is refused",
          r.returncode == 1 and "Address already in use" in r.stderr, r.stderr)
    taken.close()


def notify_socket():
    path = os.path.join(tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path


def messages(s, until, stop_on=None):
    """Datagrams until the time limit (or one that contains stop_on), with their arrival."""
    got = []
    while time.time() < until:
        s.settimeout(max(0.01, until - time.time()))
        try:
            data = s.recv(4096).decode()
        except socket.timeout:
            break
        got.append((time.time(), data))
        if stop_on and stop_on in data:
            break
    return got


def test_notify():
    s, path = notify_socket()
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    p, d = start("n", "--listen", "none", "--metrics", "off", env=env)
    msgs = messages(s, time.time() + 15, stop_on="READY=1")
    ready = [m for m in msgs if "READY=1" in m[1]]
    check("READY=1 arrives", bool(ready), msgs)
    if ready:
        # Ready means serving: the API answers at once.
        r = cli("unix:" + os.path.join(d, "godwitd.sock"), "vm", "list")
        check("the API answers when READY=1 came", r.returncode == 0, r.stderr)
        check("READY=1 carries a STATUS", "STATUS=" in ready[0][1], ready[0][1])
    msgs = messages(s, time.time() + 2.6)
    pings = [t for t, m in msgs if "WATCHDOG=1" in m]
    check("WATCHDOG=1 about every 0.5 s with WATCHDOG_USEC=1s", 4 <= len(pings) <= 7,
          f"{len(pings)} pings in 2.6 s")
    p.send_signal(signal.SIGTERM)
    msgs = messages(s, time.time() + 10, stop_on="STOPPING=1")
    check("STOPPING=1 on SIGTERM", any("STOPPING=1" in m for _, m in msgs), msgs)
    p.wait(timeout=10)
    # Whatever it sent after STOPPING=1, up to its end: no ping (a check under way then
    # once pinged after it, and the next godwitd on this socket seemed to ping unasked).
    late = messages(s, time.time() + 0.5)
    check("no WATCHDOG=1 after STOPPING=1", not any("WATCHDOG=1" in m for _, m in late), late)

    # No WATCHDOG_USEC: no pings.
    env = dict(os.environ, NOTIFY_SOCKET=path)
    p, d = start("n2", "--listen", "none", "--metrics", "off", env=env)
    msgs = messages(s, time.time() + 15, stop_on="READY=1")
    msgs += messages(s, time.time() + 1.5)
    check("without WATCHDOG_USEC: READY=1 and no WATCHDOG=1",
          any("READY=1" in m for _, m in msgs) and not any("WATCHDOG=1" in m for _, m in msgs),
          msgs)
    stop(p)
    s.close()


# Puts the socket at fd 3 and sets LISTEN_FDS and LISTEN_PID (its own pid, which exec keeps, or
# another) before it becomes godwitd: what systemd does.
EXEC_ACTIVATED = """import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid() if sys.argv[2] == "self" else 1)
os.execv(sys.argv[3], sys.argv[3:])
"""


def activated(name, sock_path, mode=0o600, pid_ok=True, ls=None):
    """godwitd started the way systemd starts a socket-activated service, on ls or a new
    listening socket at sock_path."""
    if ls is None:
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        ls.bind(sock_path)
        os.chmod(sock_path, mode)
        ls.listen(16)
    d = os.path.join(tmp, name)
    if not os.path.isdir(d):
        state_dir(name)
    log = open(os.path.join(tmp, name + ".log"), "ab")
    p = subprocess.Popen([sys.executable, "-c", EXEC_ACTIVATED, str(ls.fileno()),
                          "self" if pid_ok else "other", GODWITD, "--state-dir", d,
                          "--listen", "none", "--metrics", "off"],
                         stdout=log, stderr=log, pass_fds=(ls.fileno(),))
    procs.append(p)
    return p, d, ls


def test_socket_activation():
    sock = os.path.join(tmp, "sa.sock")  # not DIR/godwitd.sock: godwitd must not bind that
    p, d, ls = activated("sa", sock)
    host = "unix:" + sock
    r = None
    for _ in range(100):
        r = cli(host, "vm", "list")
        if r.returncode == 0:
            break
        time.sleep(0.1)
    check("the CLI works through the passed socket", r.returncode == 0 and "no VMs" in r.stdout,
          r.stdout + r.stderr)
    check("godwitd bound no socket of its own", not os.path.exists(os.path.join(d, "godwitd.sock")))
    log = open(os.path.join(tmp, "sa.log")).read()
    check("the log names the passed socket", f"unix socket {sock} systemd passed" in log, log[-600:])
    stop(p)
    check("the passed socket's file stays after godwitd ends (systemd's)", os.path.exists(sock))
    # A second activation on the same socket: what systemd does after a restart.
    p, d, ls = activated("sa", sock, ls=ls)
    r = None
    for _ in range(100):
        r = cli(host, "vm", "list")
        if r.returncode == 0:
            break
        time.sleep(0.1)
    check("a restarted godwitd serves the same socket", r.returncode == 0, r.stderr)
    stop(p)
    ls.close()

    # A socket others may use would give them the API without a token: refused.
    p, d, ls = activated("sa-open", os.path.join(tmp, "open.sock"), mode=0o666)
    rc = p.wait(timeout=20)
    log = open(os.path.join(tmp, "sa-open.log")).read()
    check("a passed socket open to others is refused", rc == 2 and "SocketMode=0600" in log, log)
    ls.close()
    # LISTEN_PID of another process: not ours, godwitd binds its own socket.
    p, d, ls = activated("sa-other", os.path.join(tmp, "other.sock"), pid_ok=False)
    for _ in range(100):
        if os.path.exists(os.path.join(d, "godwitd.sock")):
            break
        time.sleep(0.1)
    ok = os.path.exists(os.path.join(d, "godwitd.sock"))
    check("fds meant for another pid are left alone", ok and p.poll() is None)
    stop(p)
    ls.close()


def parse_journal(data):
    """The journal's native protocol: KEY=VALUE lines, or KEY, a 64-bit little-endian length
    and the value for values with line feeds."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode()
            i = nl + 1
        else:
            n = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            fields[line.decode()] = data[nl + 9:nl + 9 + n].decode()
            i = nl + 9 + n + 1
    return fields


def journal_child():
    """In a private mount namespace: a journal socket of our own where journald's would be,
    godwitd with stderr a file that JOURNAL_STREAM names, and a VM defined and started."""
    os.makedirs("/run/systemd/journal", exist_ok=True)
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind("/run/systemd/journal/socket")
    err = os.path.join(tmp, "j.stderr")
    f = open(err, "wb")
    st = os.fstat(f.fileno())
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    d = state_dir("j")
    p = subprocess.Popen([GODWITD, "--state-dir", d, "--listen", "none", "--metrics", "off"],
                         stdout=f, stderr=f, env=env)
    procs.append(p)
    unix = "unix:" + os.path.join(d, "godwitd.sock")
    guest = os.path.join(tmp, "guest")
    open(guest, "w").write("x")
    for _ in range(100):
        if cli(unix, "vm", "list").returncode == 0:
            break
        time.sleep(0.1)
    cli(unix, "vm", "create", "web", "--memory", "32M", "--guest", guest)
    cli(unix, "vm", "start", "web")  # fails without KVM: logged from the VM's threads
    entries = []
    end = time.time() + 5
    while time.time() < end:
        j.settimeout(max(0.01, end - time.time()))
        try:
            entries.append(parse_journal(j.recv(65536)))
        except socket.timeout:
            break
    stop(p)
    json.dump({"entries": entries, "stderr": open(err).read()},
              open(os.path.join(tmp, "journal.json"), "w"))


def test_journal():
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                        'mount -t tmpfs tmpfs /run && exec "$@"', "sh", sys.executable,
                        os.path.abspath(__file__), GODWITD, GODWIT, "--journal-child", tmp],
                       capture_output=True, text=True, timeout=120)
    out = os.path.join(tmp, "journal.json")
    if r.returncode != 0 or not os.path.exists(out):
        print(f"# no private mount namespace here ({r.stderr.strip()[:200]}): journal fields "
              "not checked")
        return False
    got = json.load(open(out))
    entries = got["entries"]
    defined = [e for e in entries if "defined: 32 MiB" in e.get("MESSAGE", "")]
    check("log lines arrive as journal entries", bool(defined), entries[:3])
    if defined:
        e = defined[0]
        check("with PRIORITY, SYSLOG_IDENTIFIER, GODWIT_OBJECT and GODWIT_VM",
              e.get("PRIORITY") == "6" and e.get("SYSLOG_IDENTIFIER") == "godwitd"
              and e.get("GODWIT_OBJECT") == "web" and e.get("GODWIT_VM") == "web", e)
    warn = [e for e in entries if "start failed" in e.get("MESSAGE", "")]
    check("a warning has PRIORITY 4 and the VM's field",
          bool(warn) and warn[0].get("PRIORITY") == "4" and warn[0].get("GODWIT_VM") == "web",
          warn)
    check("and stderr does not repeat them", "defined: 32 MiB" not in got["stderr"],
          got["stderr"][-400:])
    return True


def test_stderr():
    """Without JOURNAL_STREAM, or one that names another file (stderr redirected), lines stay
    on stderr in godwit's own format."""
    for name, env in (("e1", {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}),
                      ("e2", dict(os.environ, JOURNAL_STREAM="1:1"))):
        p, d = start(name, "--listen", "none", "--metrics", "off", env=env)
        unix = "unix:" + os.path.join(d, "godwitd.sock")
        for _ in range(100):
            if cli(unix, "vm", "list").returncode == 0:
                break
            time.sleep(0.1)
        guest = os.path.join(tmp, "guest")
        open(guest, "w").write("x")
        cli(unix, "vm", "create", "web", "--memory", "32M", "--guest", guest)
        stop(p)
        log = open(os.path.join(tmp, name + ".log")).read()
        lines = [x for x in log.splitlines() if "defined: 32 MiB" in x]
        check(f"stderr format ({name})", len(lines) == 1 and " godwitd[" in lines[0]
              and " info web: defined: 32 MiB" in lines[0], log[-400:])


if len(sys.argv) > 4 and sys.argv[3] == "--journal-child":
    tmp = sys.argv[4]
    journal_child()
    sys.exit(0)

def sanitizers_quiet():
    """Under `make sanitize` a daemon's report lands in its log, not in an exit code we see."""
    bad = []
    for f in sorted(os.listdir(tmp)):
        if f.endswith((".log", ".stderr")):
            text = open(os.path.join(tmp, f), errors="replace").read()
            if "Sanitizer" in text or "runtime error:" in text:
                bad.append(f)
    check("no sanitizer report in any godwitd log", not bad, bad)


try:
    test_metrics()
    test_notify()
    test_socket_activation()
    test_stderr()
    test_journal()
    for p in procs:
        stop(p)
    sanitizers_quiet()
finally:
    for p in procs:
        stop(p)
    if failures:
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".log"):
                print(f"--- {f} ---\n" + open(os.path.join(tmp, f)).read()[-1500:])
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{'FAIL' if failures else 'PASS'}: daemon ops ({failures} failed)")
sys.exit(1 if failures else 0)
