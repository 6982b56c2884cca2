"""test_security.py - X1/X2/X4 of the spec and logging hygiene (issue 6):
the API key never leaves the process except in the DD-API-KEY header (not in
the log at debug level with intake faults, 403s and reloads, not in /status,
/metrics, the status command, the disk retry files, /proc/<pid>/cmdline);
api_key_file must not be readable by others (0644 refused with exit 78 and
file:line: key, 0600 accepted); files the agent creates are 0600; the
DogStatsD listeners bind loopback only unless dogstatsd_non_local_traffic;
the UDS socket mode is configurable; repeated errors are rate-limited in the
log with a "suppressed" line.
"""
import os
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import BIN, Agent, Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake  # noqa: E402
from fwdlib import agent_for, check_identity, fwd  # noqa: E402

KEY = "zq7Secr3tK3y-9f3a7c1e5b2d4680aa11"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names]
    return out


def no_key(what, data):
    if isinstance(data, str):
        data = data.encode()
    assert KEY.encode() not in data, f"API key found in {what}"
    assert KEY[:12].encode() not in data, f"API key prefix found in {what}"


def test_api_key_never_leaks():
    with FaultIntake() as fi:
        # 500s (retried, spilled to disk), then 403s (dropped), then OK
        fi.set_script(script=[{"status": 500}] * 12 + [{"status": 403}] * 3, default={"status": 202})
        a = agent_for(fi.url, {"api_key": KEY, "serializer_max_series_points_per_payload": 1,
                               "forwarder_retry_queue_payloads_max_size": 600,
                               "forwarder_storage_max_size_in_bytes": 1 << 20,
                               "log_level": "debug", "log_file": "", "telemetry_enabled": False})
        a.cfg["alerts_dir"] = os.path.join(a.dir, "alerts.d")
        os.makedirs(a.cfg["alerts_dir"])
        with open(os.path.join(a.cfg["alerts_dir"], "r.yaml"), "w") as f:
            f.write('rules:\n  - name: sec_rule\n    query: "last(last_10s):avg:sec.g{*} > 1"\n')
        a.write_config()
        a.start()
        qdir = os.path.join(a.cfg["run_path"], "transactions_to_retry")
        try:
            for i in range(20):
                a.send(f"sec.m{i}:{i}|g\nsec.g:5|g")
            wait_until(lambda: fwd(a)["disk_files"] >= 1, 30, "a payload spilled to disk")
            disk = [f for f in files_under(qdir)]
            assert disk, "no disk retry file"
            for p in disk:
                with open(p, "rb") as f:
                    no_key(p, f.read())
                assert mode(p) == 0o600, f"{p}: mode {oct(mode(p))}"
            for _ in range(3):
                a.signal(signal.SIGHUP)
                time.sleep(0.3)
            wait_until(lambda: a.status()["agent"]["reloads"] == 3, 10, "3 reloads")
            wait_until(lambda: any(r["action"].get("status") == 403 for r in fi.requests()), 30, "a 403")
            wait_until(lambda: fwd(a)["points_queued"] == 0, 40, "queue drained")
            assert fwd(a)["points_dropped_http_403"] >= 1
            check_identity(fwd(a))
            assert all(r["headers"].get("DD-API-KEY") == KEY for r in fi.requests()), "key not sent"
            no_key("/status", a.get("/status"))
            no_key("/status?format=text", a.get("/status?format=text"))
            no_key("/metrics", a.get("/metrics"))
            r = subprocess.run([BIN, "status", "--config", a.config_path], capture_output=True, timeout=20)
            assert r.returncode == 0
            no_key("status command", r.stdout + r.stderr)
            r = subprocess.run([BIN, "--check-config", "--config", a.config_path], capture_output=True, timeout=20)
            no_key("check-config output", r.stdout + r.stderr)
            with open(f"/proc/{a.proc.pid}/cmdline", "rb") as f:
                no_key("/proc/pid/cmdline", f.read())
            with open(f"/proc/{a.proc.pid}/environ", "rb") as f:
                no_key("/proc/pid/environ", f.read())
            state = os.path.join(a.cfg["run_path"], "alerts.state")
            wait_until(lambda: os.path.exists(state), 15, "alert state file")
            assert mode(state) == 0o600, f"alerts.state mode {oct(mode(state))}"
            assert a.stop() == 0
            log = a.log()
            # (nothing in the agent logs at debug level today; the level is still debug)
            assert "HTTP 403" in log and "HTTP 500" in log and "reload:" in log, log[-3000:]
            no_key("the log", log)
            for p in files_under(a.dir):
                if os.path.isfile(p):
                    with open(p, "rb") as f:
                        data = f.read()
                    if p != a.config_path:
                        no_key(p, data)
        finally:
            a.cleanup()


def key_file_agent(file_mode):
    a = agent_for("http://127.0.0.1:9", {"hostname": "kf"})
    a.cfg.pop("api_key")
    kf = os.path.join(a.dir, "api_key")
    with open(kf, "w") as f:
        f.write(KEY + "\n")
    os.chmod(kf, file_mode)
    a.cfg["api_key_file"] = kf
    a.write_config()
    line = open(a.config_path).read().split("\n").index(f'api_key_file: "{kf}"') + 1
    return a, kf, line


def test_api_key_file_permissions():
    a, kf, line = key_file_agent(0o644)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DD_API_KEY", "CREDENTIALS_DIRECTORY")}
        r = subprocess.run([BIN, "--config", a.config_path], capture_output=True, text=True, timeout=20, env=env)
        assert r.returncode == 78, (r.returncode, r.stderr)
        assert f"{a.config_path}:{line}: api_key_file" in r.stderr, r.stderr
        assert kf in r.stderr, r.stderr
        no_key("the refusal message", r.stderr)
        os.chmod(kf, 0o600)
        a.start(env={"DD_API_KEY": ""})
        assert a.status()["agent"]["reload_errors"] == 0
        no_key("the log", a.log())
    finally:
        a.cleanup()


def test_created_files_are_0600():
    d = None
    a = Agent({"log_file": "", "telemetry_enabled": True})
    try:
        d = a.dir
        a.cfg["log_file"] = os.path.join(d, "agent-own.log")
        a.write_config()
        old = os.umask(0)  # the agent must not rely on the caller's umask
        try:
            a.start()
        finally:
            os.umask(old)
        a.send("perm.c:1|c")
        wait_until(lambda: a.records(), 10, "JSON lines written")
        for p in (a.cfg["log_file"], a.out_path):
            assert os.path.exists(p), p
            assert mode(p) == 0o600, f"{p}: mode {oct(mode(p))}"
    finally:
        a.cleanup()


def udp_binds(port):
    """Local addresses (hex, as in /proc/net/udp*) bound to `port`."""
    out = []
    for fn in ("/proc/net/udp", "/proc/net/udp6"):
        with open(fn) as f:
            next(f)
            for ln in f:
                addr, p = ln.split()[1].split(":")
                if int(p, 16) == port:
                    out.append(addr)
    # N receive pipelines bind each address N times (SO_REUSEPORT)
    return sorted(set(out))


V6_LOOPBACK = "00000000000000000000000001000000"
V6_ANY = "0" * 32


def test_default_bind_is_loopback():
    a = Agent()
    a.cfg.pop("bind_host")  # the default
    a.write_config()
    a.start()
    try:
        assert udp_binds(a.port) == sorted(["0100007F", V6_LOOPBACK]), udp_binds(a.port)
        a.send("bind.v6:1|c", family=socket.AF_INET6)
        a.send("bind.v4:1|c")
        a.wait_for(lambda s: s["dogstatsd"]["lines"] == 2, what="v4 and v6 lines")
    finally:
        a.cleanup()
    b = Agent({"dogstatsd_non_local_traffic": True})
    b.cfg.pop("bind_host")
    b.write_config()
    b.start()
    try:
        got = udp_binds(b.port)
        assert got in (sorted(["00000000", V6_ANY]), [V6_ANY]), got
    finally:
        b.cleanup()


def test_uds_socket_mode():
    for want in ("0600", "0666", None):
        a = Agent()
        sock = os.path.join(a.dir, "dsd.sock")
        a.cfg["dogstatsd_socket"] = sock
        if want:
            a.cfg["dogstatsd_socket_mode"] = want
        a.write_config()
        a.start()
        try:
            expect = int(want or "0660", 8)
            assert mode(sock) == expect, f"socket mode {oct(mode(sock))} != {oct(expect)}"
            a.send_uds("uds.mode:1|c")
            a.wait_for(lambda s: s["dogstatsd"]["uds_packets"] == 1, what="uds packet")
        finally:
            a.cleanup()


def count_lines(log, needle):
    return sum(1 for ln in log.splitlines() if needle in ln)


def test_repeated_errors_rate_limited():
    with FaultIntake() as fi:
        fi.set_script(default={"status": 500})
        a = agent_for(fi.url, {"forwarder_backoff_base": 0.02, "forwarder_backoff_max": 0.05})
        a.start()
        try:
            a.send("rl.g:1|g")
            # past the 10 s window of the limiter so the suppressed count is reported
            wait_until(lambda: len(fi.requests()) >= 60, 30, "60 failing requests")
            t0 = time.time()
            wait_until(lambda: "suppressed" in a.log(), 15, "a suppressed line")
            n_req = len(fi.requests())
            log = a.log()
            n_log = count_lines(log, "HTTP 500")
            assert n_req >= 60 and n_log <= 10, f"{n_req} failing requests, {n_log} log lines"
            assert n_log >= 1
            assert count_lines(log, "similar messages suppressed") >= 1, log[-2000:]
            print(f"  {n_req} failing requests -> {n_log} log lines ({time.time() - t0:.1f}s for the summary)")
        finally:
            a.cleanup()


def test_output_write_errors_rate_limited():
    if not os.path.exists("/dev/full"):
        raise AssertionError("/dev/full missing: cannot provoke write errors")
    a = Agent({"dogstatsd_output_file": "/dev/full", "telemetry_enabled": True})
    a.start()
    try:
        # one failed write per flush (every second, telemetry always has records)
        t0 = time.time()
        # (and a 10 s window closed with more than 5: its summary is logged)
        st = a.wait_for(lambda s: s["output"]["write_errors"] >= 12 and "similar messages suppressed" in a.log(),
                        timeout=30, what="12 write errors and a suppressed summary")
        windows = int((time.time() - t0) // 10) + 2  # limiter: 5 lines per 10 s window per call site
        log = a.log()
        n_log = count_lines(log, "writing JSON lines output")
        suppressed = [int(ln.split("(")[1].split()[0]) for ln in log.splitlines() if "similar messages suppressed" in ln]
        assert suppressed, "no suppressed summary:\n" + log[-2000:]
        assert 1 <= n_log <= 5 * windows, f"{st['output']['write_errors']} write errors logged {n_log} times"
        assert n_log + sum(suppressed) <= st["output"]["write_errors"] + 1, (n_log, suppressed, st["output"])
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_api_key_never_leaks, test_api_key_file_permissions, test_created_files_are_0600,
                  test_default_bind_is_loopback, test_uds_socket_mode, test_repeated_errors_rate_limited,
                  test_output_write_errors_rate_limited])
