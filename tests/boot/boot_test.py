#!/usr/bin/env python3
"""boot_test.py - the .deb under a real systemd, in a booted container.

Builds the .deb (packaging/build-deb.sh), creates a minimal Debian bookworm
root with `debootstrap --variant=minbase` (systemd, systemd-sysv, dbus and
the package's dependencies, read from the .deb), boots a throw-away copy of
it with `systemd-nspawn -b --register=no --keep-unit --ephemeral` and checks,
from the host (nsenter into the container):

  - the package installs, the unit is enabled; started with the packaged
    agent.yaml it reaches active (running) through READY=1, logs one
    "nothing is forwarded" warning, no JSON lines, and `systemctl status`
    shows the STATUS= line after a flush;
  - with dd_url and /etc/dd-mini-agent/api_key, traffic sent from the host
    reaches a VictoriaMetrics on the host's loopback through a gate that
    refuses any request without that API key: the key only reaches the
    service through LoadCredential= (the file is root-only);
  - `systemctl reload` applies a changed agent.yaml; a broken one fails the
    reload and the running configuration stays;
  - a SIGSTOPped agent is killed by the watchdog (WatchdogSec=30) and
    restarted;
  - `systemctl stop` drains (a counter sent just before arrives) and the
    daemon exits 0;
  - a configuration error gives exit 78 and no restart loop
    (RestartPreventExitStatus=78);
  - `dpkg --purge` removes what the package created.

The container shares the host's network namespace (no --private-network), so
the agent's UDP and status ports and the VictoriaMetrics port are free ports
picked on the host. The package is installed with a policy-rc.d that stops
it from starting before the test has set those ports.

Cache: the root is kept in $DDMA_BOOT_CACHE (default
/var/cache/dd-mini-agent-test), named after a hash of the suite, mirror and
package list, and reused by later runs on the same machine; the container
boots an ephemeral copy, so the cached root is never modified. A cold
debootstrap takes about 40 s to a few minutes depending on the mirror.

  tests/boot/boot_test.py                 CI mode: cached root, every check
  DDMA_BOOT_LONG=1 tests/boot/boot_test.py
                                          long mode: a fresh root (the cache
                                          is rebuilt), plus a restart after
                                          `systemctl kill -s KILL` and
                                          `systemd-analyze security` inside
  --deb PATH                              test this .deb instead of building
  DDMA_BOOT_MIRROR=URL                    Debian mirror (deb.debian.org)

Needs root, debootstrap, systemd-container (systemd-nspawn), util-linux
(nsenter), dpkg-dev/debhelper (the .deb build) and victoria-metrics: all in
scripts/deps.sh --test. Missing tools are a failure. Exits 77 (skipped) with
the reason only when not root or when systemd-nspawn cannot run a container
on this machine (probed first); never silently.
"""
import argparse
import fcntl
import hashlib
import http.server
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))

from pkgtestlib import run_tests, skip  # noqa: E402
from vm import VictoriaMetrics  # noqa: E402

SUITE = "bookworm"
MIRROR = os.environ.get("DDMA_BOOT_MIRROR", "http://deb.debian.org/debian")
CACHE = os.environ.get("DDMA_BOOT_CACHE", "/var/cache/dd-mini-agent-test")
LONG = bool(os.environ.get("DDMA_BOOT_LONG"))
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus"]
UNIT = "dd-mini-agent.service"
CONF = "/etc/dd-mini-agent/agent.yaml"
API_KEY = "0123456789abcdef0123456789abcdef"
MNT = "/mnt/ddma"           # the host's work dir, bound read-only in the container
TOOLS = ["debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb", "dpkg-buildpackage"]


def log(msg):
    print(msg, flush=True)


def sh(args, check=True, timeout=120, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(what, fn, timeout, interval=0.5):
    """Poll fn until it returns a true value; AssertionError after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timeout ({timeout}s) waiting for {what}; last: {last!r}")


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- the cached root ----

def deb_depends(deb):
    """Package names of the .deb's Depends (first alternative, no versions)."""
    dep = sh(["dpkg-deb", "-f", deb, "Depends"]).stdout
    names = []
    for part in dep.split(","):
        name = part.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names


def cached_root(deb):
    """The path of a pristine minbase root holding every package the .deb
    needs; created with debootstrap when the cache has none (or in long mode)."""
    include = sorted(set(BASE_PACKAGES + deb_depends(deb)))
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(include)}".encode()).hexdigest()[:12]
    os.makedirs(CACHE, exist_ok=True)
    root = os.path.join(CACHE, f"{SUITE}-{key}")
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if LONG and os.path.isdir(root):
            log(f"long mode: removing the cached root {root}")
            shutil.rmtree(root)
        if os.path.isfile(os.path.join(root, ".complete")):
            log(f"cached root: {root}")
            return root
        for old in os.listdir(CACHE):
            if re.fullmatch(rf"{SUITE}-[0-9a-f]{{12}}(\.tmp)?", old):
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
        tmp = root + ".tmp"
        log(f"debootstrap --variant=minbase {SUITE} ({', '.join(include)}) into {tmp}")
        t0 = time.time()
        r = sh(["debootstrap", "--variant=minbase", "--include=" + ",".join(include), SUITE, tmp, MIRROR],
               check=False, timeout=1200)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AssertionError(f"debootstrap failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        # no getty on the console: nothing reads it
        sh(["ln", "-sf", "/dev/null", os.path.join(tmp, "etc/systemd/system/console-getty.service")])
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write(f"{' '.join(include)}\n")
        os.rename(tmp, root)
        log(f"root created in {time.time() - t0:.0f}s: {root}")
        return root


# ---- the container ----

class Container:
    """A booted ephemeral copy of root; run() executes a command inside it."""

    def __init__(self, root, workdir):
        self.log_path = os.path.join(workdir, "console.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "-D", root, "--ephemeral", "-b", "--register=no", "--keep-unit",
             "--console=read-only", f"--bind-ro={workdir}:{MNT}"],
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.leader = wait_for("the container's init", self._find_leader, 30, 0.2)
        wait_for("systemd in the container to finish booting", self._booted, 120, 0.5)

    def _find_leader(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}:\n{self.console()}")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
            except OSError:
                continue
            ppid = re.search(r"^PPid:\s*(\d+)", st, re.M)
            nspid = re.search(r"^NSpid:\s*(.*)$", st, re.M)
            if ppid and int(ppid.group(1)) == self.proc.pid and nspid and nspid.group(1).split()[-1] == "1":
                return int(pid)
        return None

    def _booted(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}:\n{self.console()}")
        r = self.run("systemctl", "is-system-running", check=False)
        return r.stdout.strip() in ("running", "degraded") and r.stdout.strip()

    def run(self, *args, check=True, timeout=60, input=None):
        cmd = ["nsenter", f"--target={self.leader}", "--all",
               "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0",
               "SYSTEMD_PAGER=", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"in the container: {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def write(self, path, text, mode="0644"):
        self.run("sh", "-c", f'cat > "$1" && chmod {mode} "$1"', "sh", path, input=text)

    def read(self, path):
        return self.run("cat", path).stdout

    def show(self, *props):
        r = self.run("systemctl", "show", UNIT, "-p", ",".join(props))
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def journal(self, after=0):
        """The unit's journal messages; after= a length returned by an earlier
        journal_len() keeps only what was logged since."""
        return self.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout[after:]

    def journal_len(self):
        return len(self.journal())

    def console(self):
        self.log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)   # nspawn asks the container's init to power off
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()


def nspawn_usable(root):
    """None, or why systemd-nspawn cannot run a container here."""
    r = sh(["systemd-nspawn", "--quiet", "-D", root, "--ephemeral", "--register=no", "--keep-unit",
            "/bin/true"], check=False, timeout=120)
    if r.returncode == 0:
        return None
    return f"systemd-nspawn cannot run a container on this machine (exit {r.returncode}): " + \
        (r.stderr.strip() or r.stdout.strip())[-600:]


# ---- an intake gate: refuses requests without the API key, forwards the rest to VictoriaMetrics ----

class KeyGate:
    def __init__(self, upstream, key):
        self.upstream, self.key = upstream, key
        self.accepted = self.refused = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("DD-API-KEY") != gate.key:
                    gate.refused += 1
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                gate.accepted += 1
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "content-encoding", "dd-api-key")}
                req = urllib.request.Request(gate.upstream + self.path, data=body, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=20) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the checks, in order (each builds on the previous one) ----

S = {}   # shared state: deb, work, root, ct, vm, gate, ports


def send(lines):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for line in lines:
        s.sendto(line.encode(), ("127.0.0.1", S["udp"]))
    s.close()


def agent_config(extra=""):
    """The packaged agent.yaml plus this test's ports and intake."""
    return (S["packaged_conf"] + f"\n# boot test\ndogstatsd_port: {S['udp']}\nstatus_port: {S['status']}\n"
            f"dd_url: {S['gate'].url}/datadog\n" + extra)


def wait_metric(name, pred=lambda pts: True, timeout=60):
    def got():
        pts = S["vm"].points(name)
        return pts if pts and pred(pts) else None
    return wait_for(f"{name} in VictoriaMetrics", got, timeout, 1.0)


def counter_total(pts):
    """Samples counted: the agent sends counters as a rate per second of a
    10 s bucket, and zero-fills a stopped counter's later buckets."""
    return round(10 * sum(v for series in pts.values() for v in series.values()), 6)


def log_status(what):
    """Prints `systemctl status` as seen in the container (the README quotes it)."""
    out = S["ct"].run("systemctl", "status", "--no-pager", "--lines=5", UNIT, check=False).stdout
    log(f"---- systemctl status ({what}), in the booted container ----\n{out}---- end ----")
    return out


def service_running():
    st = S["ct"].show("ActiveState", "SubState", "MainPID", "NRestarts")
    return st if st["ActiveState"] == "active" and st["SubState"] == "running" else None


def test_install():
    ct = S["ct"]
    # the package must not start before the test has chosen free ports
    ct.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", "0755")
    ct.run("dpkg", "-i", f"{MNT}/{os.path.basename(S['deb'])}", timeout=180)
    ct.run("rm", "-f", "/usr/sbin/policy-rc.d")
    assert ct.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "enabled"
    assert ct.run("test", "-x", "/bin/kill", check=False).returncode != 0, \
        "the root has /bin/kill: the reload check would not prove anything"
    S["packaged_conf"] = ct.read(CONF)
    assert "\ndogstatsd_output_file: none\n" in S["packaged_conf"], "packaged agent.yaml is not quiet"


def test_packaged_default_is_quiet():
    """The packaged agent.yaml (only the ports changed): READY=1, one warning,
    no JSON lines, a STATUS= line after the first flush."""
    ct = S["ct"]
    ct.write(CONF, S["packaged_conf"] + f"\ndogstatsd_port: {S['udp']}\nstatus_port: {S['status']}\n")
    ct.run("systemctl", "start", UNIT, timeout=60)   # returns once READY=1 arrived (Type=notify)
    assert service_running(), ct.run("systemctl", "status", UNIT, check=False).stdout
    send([f"boot.quiet:{i}|c" for i in range(5)])
    st = wait_for("a STATUS= line after a flush",
                  lambda: "lines/s" in ct.show("StatusText")["StatusText"] and ct.show("StatusText"), 40)
    assert "intake off (nothing forwarded)" in st["StatusText"], st
    journal = ct.journal()
    assert journal.count("nothing is forwarded") == 1, journal
    assert "boot.quiet" not in journal and '{"' not in journal, f"metrics in the journal:\n{journal}"
    log_status("packaged default, no intake")
    ct.run("systemctl", "stop", UNIT, timeout=60)


def test_delivers_with_credential_key():
    ct = S["ct"]
    ct.write("/etc/dd-mini-agent/api_key", API_KEY + "\n", "0600")
    ct.write(CONF, agent_config())
    ct.run("systemctl", "start", UNIT, timeout=60)
    assert service_running()
    send(["boot.delivered:1|c|#step:deliver" for _ in range(7)])
    pts = wait_metric("boot.delivered", lambda p: counter_total(p) >= 7)
    assert counter_total(pts) == 7, pts
    assert S["gate"].accepted > 0 and S["gate"].refused == 0, (S["gate"].accepted, S["gate"].refused)
    # the key file is root's: the service can only have it from LoadCredential=
    assert ct.run("stat", "-c", "%U %a", "/etc/dd-mini-agent/api_key").stdout.split() == ["root", "600"]
    st = wait_for("intake ok in STATUS=", lambda: "intake ok" in ct.show("StatusText")["StatusText"] and
                  ct.show("StatusText"), 40)
    status = log_status("forwarding")
    assert "Status: \"" in status and "active (running)" in status, status
    S["status_text"] = st["StatusText"]


def test_reload_applies_changed_config():
    ct = S["ct"]
    pid = service_running()["MainPID"]
    mark = ct.journal_len()
    ct.write(CONF, agent_config("tags:\n  - boot:reloaded\n"))
    ct.run("systemctl", "reload", UNIT, timeout=60)
    wait_for("the reload to be applied",
             lambda: "reload: configuration from" in ct.journal(mark), 30)
    send(["boot.reloaded:1|c"])
    pts = wait_metric("boot.reloaded")
    tags = [dict(k[1]) for k in pts]
    assert any(t.get("boot") == "reloaded" for t in tags), tags
    assert service_running()["MainPID"] == pid, "reload restarted the daemon"


def test_reload_refuses_broken_config():
    ct = S["ct"]
    pid = service_running()["MainPID"]
    mark = ct.journal_len()
    ct.write(CONF, agent_config("tags:\n  - boot:reloaded\n") + "dogstatsd_flush_interval: soon\n")
    r = ct.run("systemctl", "reload", UNIT, check=False, timeout=60)
    assert r.returncode != 0, "reload of a broken agent.yaml succeeded"
    assert "dogstatsd_flush_interval" in ct.journal(mark), ct.journal(mark)
    assert "reload: configuration from" not in ct.journal(mark), "the daemon reloaded a broken file"
    assert service_running()["MainPID"] == pid
    ct.write(CONF, agent_config("tags:\n  - boot:reloaded\n"))


def test_watchdog_restarts_stopped_agent():
    ct = S["ct"]
    before = service_running()
    ct.run("systemctl", "kill", "--kill-who=main", "-s", "SIGSTOP", UNIT)
    # WatchdogSec=30 after the last ping, then RestartSec=5
    after = wait_for("the watchdog to restart the agent",
                     lambda: (lambda s: s if s and s["MainPID"] != before["MainPID"] else None)(service_running()),
                     90, 1.0)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1, (before, after)
    assert "Watchdog timeout" in ct.run("journalctl", "-u", UNIT, "--no-pager").stdout


def test_kill_restarts_agent():
    """Long mode: the unit's Restart=on-failure after SIGKILL."""
    ct = S["ct"]
    before = service_running()
    ct.run("systemctl", "kill", "-s", "KILL", UNIT)
    wait_for("a restart after SIGKILL",
             lambda: (lambda s: s if s and s["MainPID"] != before["MainPID"] else None)(service_running()),
             30, 0.5)


def test_security_inside():
    """Long mode: systemd-analyze security on the installed unit, as booted."""
    r = S["ct"].run("systemd-analyze", "security", "--no-pager", UNIT, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout + r.stderr)
    assert m and float(m.group(1)) <= 2.0, r.stdout[-2000:] + r.stderr
    log(f"systemd-analyze security in the booted container: {m.group(1)}")


def test_stop_drains_and_exits_0():
    ct = S["ct"]
    assert service_running()
    mark = ct.journal_len()
    # loopback UDP: sendto returns once the datagram is in the agent's socket
    # buffer; the stop must parse, flush and deliver it
    send(["boot.drained:1|c" for _ in range(3)])
    ct.run("systemctl", "stop", UNIT, timeout=60)
    st = ct.show("ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert st["ActiveState"] == "inactive" and st["Result"] == "success", st
    assert st["ExecMainStatus"] == "0", st
    pts = wait_metric("boot.drained", lambda p: counter_total(p) >= 3, 30)
    assert counter_total(pts) == 3, pts
    assert "stopping: final flush" in ct.journal(mark)


def test_config_error_exit_78_no_restart_loop():
    ct = S["ct"]
    mark = ct.journal_len()
    ct.write(CONF, agent_config("dogstatsd_port: many\n"))
    ct.run("systemctl", "start", UNIT, check=False, timeout=60)
    st = wait_for("the unit to fail", lambda: (lambda s: s if s["ActiveState"] == "failed" else None)(
        ct.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")), 30)
    assert st["ExecMainStatus"] == "78" and st["Result"] == "exit-code", st
    # RestartSec=5: a restart loop would show within 8 s
    time.sleep(8)
    again = ct.show("ActiveState", "NRestarts", "ExecMainStatus")
    assert again["ActiveState"] == "failed" and again["NRestarts"] == st["NRestarts"], (st, again)
    journal = ct.journal(mark)
    assert "dogstatsd_port" in journal, journal


def test_purge_removes_everything():
    ct = S["ct"]
    ct.run("dpkg", "--purge", "dd-mini-agent", timeout=120)
    for path in ("/etc/dd-mini-agent", "/var/lib/dd-mini-agent", "/usr/bin/dd-mini-agent",
                 "/lib/systemd/system/dd-mini-agent.service"):
        assert ct.run("test", "-e", path, check=False).returncode != 0, f"{path} left after purge"
    r = ct.run("systemctl", "cat", UNIT, check=False)
    assert r.returncode != 0, r.stdout
    # the system user stays, as usual on Debian (see packaging/README.md)
    assert ct.run("getent", "passwd", "dd-mini-agent", check=False).returncode == 0


def build_deb(workdir):
    log("building the .deb (packaging/build-deb.sh)")
    r = sh([os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), workdir], check=False, timeout=1200)
    if r.returncode != 0:
        raise AssertionError(f"build-deb.sh failed:\n{r.stderr[-4000:]}")
    return r.stdout.strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb", help="test this .deb instead of building one")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        skip("the boot test needs root (debootstrap, systemd-nspawn)")
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        log(f"FAIL: missing {', '.join(missing)}: install them with scripts/deps.sh --test")
        sys.exit(1)
    work = tempfile.mkdtemp(prefix="ddma-boot-")
    os.chmod(work, 0o755)
    ct = vm = gate = None
    try:
        if opts.deb:
            S["deb"] = shutil.copy(opts.deb, work)
        else:
            S["deb"] = build_deb(work)
        root = cached_root(S["deb"])
        why = nspawn_usable(root)
        if why:
            skip(why)
        t0 = time.time()
        ct = Container(root, work)
        log(f"container booted in {time.time() - t0:.1f}s (leader pid {ct.leader})")
        vm = VictoriaMetrics()
        gate = KeyGate(vm.base, API_KEY)
        S.update(ct=ct, vm=vm, gate=gate, udp=free_port(socket.SOCK_DGRAM), status=free_port(socket.SOCK_STREAM))
        tests = [test_install, test_packaged_default_is_quiet, test_delivers_with_credential_key,
                 test_reload_applies_changed_config, test_reload_refuses_broken_config,
                 test_watchdog_restarts_stopped_agent]
        if LONG:
            tests += [test_kill_restarts_agent, test_security_inside]
        tests += [test_stop_drains_and_exits_0, test_config_error_exit_78_no_restart_loop,
                  test_purge_removes_everything]
        try:
            run_tests(tests, stop_on_failure=True)
        except SystemExit as e:
            if e.code and ct.proc.poll() is None:
                log("---- the unit's journal ----\n" +
                    ct.run("journalctl", "-u", UNIT, "--no-pager", check=False).stdout[-6000:])
            raise
    finally:
        if gate:
            gate.close()
        if vm:
            vm.stop()
        if ct:
            ct.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
