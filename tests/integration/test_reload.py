"""test_reload.py - SIGHUP reload under traffic (docs/RELIABILITY.md F7, issue 6).

A thread sends known counts over UDP and the Unix socket while the test sends
SIGHUP several times, changing the global tags, a per-metric context cap, the
alert rules and the intake (dd_url moves to a second fault_intake.py). Checks:
the UDP socket is the same one (inode through /proc), the UDS path keeps
working, status counters never go back, lines == sent exactly, the new tag
and cap apply, the added rule fires and notifies, payloads go to the new
intake, and every accepted point is delivered (summed over both intakes).
An invalid config keeps the old one running, says why in the log and
increments agent.reload_errors.
"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import BIN, Agent, Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake, series_points  # noqa: E402
from fwdlib import agent_for, check_identity, fwd  # noqa: E402

RULE = """rules:
  - name: reload_added_rule
    query: "last(last_10s):avg:rl.gauge{*} by {host} > 10"
    notify: [hook]
"""


def udp_inode(port):
    for fn in ("/proc/net/udp", "/proc/net/udp6"):
        with open(fn) as f:
            next(f)
            for ln in f:
                c = ln.split()
                if int(c[1].split(":")[1], 16) == port:
                    return int(c[9])
    raise AssertionError(f"no UDP socket on port {port}")


def fd_socket_inodes(pid):
    out = set()
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(int(t[8:-1]))
    return out


class Sender(threading.Thread):
    """Sends rl.count:1|c lines in datagrams of 5 (UDP) and single lines (UDS)."""

    def __init__(self, agent):
        super().__init__(daemon=True)
        self.a = agent
        self.stop_ev = threading.Event()
        self.udp_lines = self.uds_lines = 0

    def run(self):
        import socket
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        i = 0
        while not self.stop_ev.is_set():
            u.sendto(b"\n".join([b"rl.count:1|c|#src:udp"] * 5), ("127.0.0.1", self.a.port))
            self.udp_lines += 5
            if i % 4 == 0:
                x.sendto(b"rl.count:1|c|#src:uds", self.a.cfg["dogstatsd_socket"])
                self.uds_lines += 1
            i += 1
            time.sleep(0.002)
        u.close()
        x.close()

    def finish(self):
        self.stop_ev.set()
        self.join()
        return self.udp_lines + self.uds_lines


class Monotonic:
    """Every status read must not go back on any counter."""

    def __init__(self, agent):
        self.a = agent
        self.last = None

    def read(self):
        st = self.a.status()
        d = st["dogstatsd"]
        cur = {"packets": d["packets"], "lines": d["lines"], "flushes": st["flushes"],
               "contexts_created": st["aggregator"]["contexts_created"],
               "samples": st["aggregator"]["samples"], "reloads": st["agent"]["reloads"],
               "points_submitted": st["forwarder"]["points_submitted"],
               "points_delivered": st["forwarder"]["points_delivered"]}
        if self.last:
            for k, v in cur.items():
                assert v >= self.last[k], f"{k} went back: {self.last[k]} -> {v}"
        self.last = cur
        return st


def count_points(fi, metric):
    """{tags tuple: sum of values * interval (the count sent)} over every request."""
    out = {}
    for r in fi.requests("/api/v1/series"):
        for s in (r.get("body") or {}).get("series", []):
            if s["metric"] != metric:
                continue
            for _, v in s["points"]:
                k = tuple(sorted(s.get("tags", [])))
                out[k] = out.get(k, 0) + v * (s.get("interval") or 10)
    return out


def hup(a, mon, what):
    before = mon.read()["agent"]
    a.signal(signal.SIGHUP)
    st = wait_until(lambda: (lambda s: s if s["agent"] != before else None)(mon.read()), 10, "reload: " + what)
    return st["agent"]


def test_reload_under_traffic():
    with FaultIntake() as fi1, FaultIntake() as fi2:
        # one pipeline: the context caps are per pipeline and the exact
        # refusal count below assumes one
        a = agent_for(fi1.url, {"tags": ["gen:1"], "dogstatsd_max_contexts_per_metric": 1000,
                                "dogstatsd_pipeline_count": 1})
        a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
        a.cfg["alerts_dir"] = os.path.join(a.dir, "alerts.d")
        os.makedirs(a.cfg["alerts_dir"])
        a.cfg["notifiers_file"] = os.path.join(a.dir, "notifiers.yaml")
        with open(a.cfg["notifiers_file"], "w") as f:
            f.write(f'notifiers:\n  hook: {{type: webhook, url: "{fi2.url}/hook"}}\n')
        a.write_config()
        a.start()
        mon = Monotonic(a)
        snd = Sender(a)
        try:
            inode = udp_inode(a.port)
            assert inode in fd_socket_inodes(a.proc.pid)
            snd.start()
            time.sleep(1.5)
            assert hup(a, mon, "same config") == {"reloads": 1, "reload_errors": 0}
            time.sleep(0.5)

            # tags, cap, alert rule and intake change together (rl.count has 4 contexts:
            # gen:1/gen:2 x src:udp/src:uds, all within the new per-metric cap)
            cfg = dict(a.cfg, tags=["gen:2"], dd_url=fi2.url, dogstatsd_max_contexts_per_metric=4)
            with open(os.path.join(a.cfg["alerts_dir"], "r.yaml"), "w") as f:
                f.write(RULE)
            a.write_config(cfg)
            assert hup(a, mon, "new config") == {"reloads": 2, "reload_errors": 0}
            t_switch = time.time()
            assert "reload: configuration from" in a.log(), a.log()[-2000:]
            for i in range(10):
                a.send(f"rl.cap:1|c|#i:{i}")
            wait_until(lambda: mon.read()["aggregator"]["dropped"]["metric_cap"] == 6, 10, "cap of 4 applied")

            # an invalid config is refused; the running one stays
            a.write_config(dict(cfg, tags=["gen:bad"], dogstatsd_buffer_size="lots"))
            line = open(a.config_path).read().split("\n").index('dogstatsd_buffer_size: "lots"') + 1
            assert hup(a, mon, "invalid config") == {"reloads": 2, "reload_errors": 1}
            log = a.log()
            assert "keeping the running configuration" in log, log[-2000:]
            assert f"{a.config_path}:{line}: dogstatsd_buffer_size" in log, "no file:line: key in the log:\n" + log[-2000:]
            a.write_config(cfg)
            assert hup(a, mon, "valid again") == {"reloads": 3, "reload_errors": 1}

            for _ in range(60):  # the added rule fires and notifies
                a.send("rl.gauge:50|g")
                if fi2.requests("/hook"):
                    break
                time.sleep(0.25)
            assert fi2.requests("/hook"), "the rule added by reload never notified"
            assert any("reload_added_rule" in s and "CRITICAL" in s for s in mon.read()["alert_states"])

            sent = snd.finish()
            wait_until(lambda: mon.read()["dogstatsd"]["lines"] >= sent + 10 + 1, 10, "all lines read")
            time.sleep(0.3)
            st = mon.read()
            n_gauge = st["dogstatsd"]["samples"]["gauge"]
            assert st["dogstatsd"]["lines"] == sent + 10 + n_gauge, (st["dogstatsd"], sent)
            assert st["dogstatsd"]["kernel_drops"] == 0 and st["dogstatsd"]["metric_parse_errors"] == 0
            assert snd.uds_lines > 0 and st["dogstatsd"]["uds_packets"] == snd.uds_lines, (st, snd.uds_lines)
            assert udp_inode(a.port) == inode, "the UDP socket was reopened"
            assert inode in fd_socket_inodes(a.proc.pid)
            check_identity(st["forwarder"])
            assert a.stop() == 0, a.log()[-3000:]

            assert not any("gen:bad" in k for k in count_points(fi2, "rl.count")), "invalid config applied"
            c1, c2 = count_points(fi1, "rl.count"), count_points(fi2, "rl.count")
            total = sum(c1.values()) + sum(c2.values())
            assert round(total) == sent, f"delivered {total} != sent {sent}: {c1} {c2}"
            # the open 10 s bucket may still hold every gen:1 point at the switch
            assert all(k[0] == "gen:1" for k in c1), c1
            assert set(c2) >= {("gen:2", "src:udp"), ("gen:2", "src:uds")}, c2
            assert st["aggregator"]["dropped"]["metric_cap"] == 6, st["aggregator"]
            late = [r["t"] - t_switch for r in fi1.requests() if r["t"] > t_switch + 2]
            assert not late, f"the old intake still got requests {late} s after the reload"
            cap = count_points(fi2, "rl.cap")
            assert len(cap) == 4 and round(sum(cap.values())) == 4, cap
        finally:
            snd.stop_ev.set()
            a.cleanup()


def test_repeated_reloads_keep_counts():
    """Several reloads in a row with a running intake: no counter reset, the
    identity holds, the reload count is exact."""
    with FaultIntake() as fi:
        a = agent_for(fi.url, {"telemetry_enabled": False})
        a.start()
        mon = Monotonic(a)
        try:
            n = 0
            for i in range(10):
                a.send("\n".join(["rh.c:1|c"] * 10))
                n += 10
                a.signal(signal.SIGHUP)
                time.sleep(0.15)
            st = wait_until(lambda: (lambda s: s if s["agent"]["reloads"] == 10 else None)(mon.read()),
                            10, "10 reloads")
            assert st["agent"]["reload_errors"] == 0
            wait_until(lambda: mon.read()["dogstatsd"]["lines"] == n, 5, "lines")
            check_identity(fwd(a))
            assert a.stop() == 0, a.log()[-3000:]
            got = count_points(fi, "rh.c")
            assert round(sum(got.values())) == n, got
            assert "need a restart" not in a.log(), "a plain reload warned about a restart:\n" + a.log()[-3000:]
        finally:
            a.cleanup()


def reload_cmd(a, *args, env=None):
    e = {k: v for k, v in os.environ.items() if k != "MAINPID"}
    e.update(env or {})
    return subprocess.run([BIN, "--config", a.config_path, "reload", *args], capture_output=True,
                          text=True, timeout=30, env=e, stdin=subprocess.DEVNULL)


def test_reload_command():
    """`dd-mini-agent reload` (the unit's ExecReload=): checks the file, then
    SIGHUPs --pid or $MAINPID; a broken file fails with exit 78 and the reason,
    and the agent is not signalled."""
    a = Agent()
    a.start()
    try:
        r = reload_cmd(a, "--pid", str(a.proc.pid))
        assert r.returncode == 0, r.stderr
        wait_until(lambda: a.status()["agent"]["reloads"] == 1, 10, "reload through --pid")
        r = reload_cmd(a, env={"MAINPID": str(a.proc.pid)})
        assert r.returncode == 0, r.stderr
        wait_until(lambda: a.status()["agent"]["reloads"] == 2, 10, "reload through $MAINPID")
        good = dict(a.cfg)
        a.write_config(dict(good, dogstatsd_flush_interval="soon"))
        r = reload_cmd(a, "--pid", str(a.proc.pid))
        assert r.returncode == 78, (r.returncode, r.stderr)
        assert "dogstatsd_flush_interval" in r.stderr and "not reloading" in r.stderr, r.stderr
        # a SIGHUP is handled within milliseconds: half a second without one
        # means none was sent
        time.sleep(0.5)
        st = a.status()["agent"]
        assert st["reloads"] == 2 and st["reload_errors"] == 0, st
        a.write_config(good)
        assert reload_cmd(a).returncode == 64, "no --pid and no $MAINPID must be a usage error"
        assert reload_cmd(a, "--pid", "1").returncode == 64, "pid 1 must be refused"
        assert a.stop() == 0, a.log()[-3000:]
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_reload_under_traffic, test_repeated_reloads_keep_counts, test_reload_command])
