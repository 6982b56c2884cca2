"""test_rel_soak.py - docs/RELIABILITY.md S1: soak under steady traffic with intake
faults. Python 3 stdlib only; uses agentlib/fault_intake/fwdlib.

The real agent forwards to fault_intake.py while a sender thread offers a
steady DogStatsD load over a fixed set of contexts (counters, gauges,
histograms, distributions, sets). Every SOAK_FAULT_PERIOD seconds the intake
misbehaves for a while, cycling through: 503 outage, 429 + Retry-After,
connection resets, slow answers (1 s). Once per second the test samples the
agent's RSS (/proc/<pid>/status VmRSS), its open descriptors (/proc/<pid>/fd)
and /status.

Asserts:
  - the forwarder identity at every sample and at the end:
    points_submitted + points_recovered == points_delivered + sum(points_dropped_*) + points_queued
  - at the end (intake healthy, queue drained): points_queued == 0, nothing
    dropped, and the points the intake answered 2xx == points_delivered;
  - lines sent == dogstatsd.lines and packets sent == dogstatsd.packets
    (+ kernel_drops, which must be 0 at this moderate rate);
  - RSS: after the warm-up (the first third of the run, which includes at
    least one full outage, so the retry queue has reached its high-water
    mark), the median RSS of the last quarter exceeds the median RSS of the
    second third by at most RSS_SLACK_KIB (1024 KiB) + 2 % of it (not in an
    ASan build, whose quarantine keeps freed memory: RSS grows ~100 KiB/s
    there by design; LeakSanitizer checks at exit instead, and the agent
    must exit 0 on SIGTERM);
  - descriptors: non-socket descriptors (files, pipes, eventfds) are exactly
    as many at every sample after warm-up as at its end; sockets (the
    listeners plus curl's intake connections, which come and go: up to 4 at
    once) never exceed the warm-up maximum + 4, and the median count of the
    last quarter is at most the median of the second third + 1 (one leaked
    descriptor per fault cycle would break it).

Modes: CI runs SOAK_SECONDS=60 (default; faults every 8 s). Long mode by
hand, e.g. scripts/soak.sh (SOAK_SECONDS=3600 SOAK_FAULT_PERIOD=120).
SOAK_RATE sets lines/s (default 2000).
"""
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import asan_build, Runner  # noqa: E402
from fault_intake import FaultIntake, series_points  # noqa: E402
from fwdlib import agent_for, check_identity, dropped, fwd  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
FAULT_PERIOD = float(os.environ.get("SOAK_FAULT_PERIOD", "8"))
RATE = int(os.environ.get("SOAK_RATE", "2000"))
RSS_SLACK_KIB = 1024

FAULTS = [
    ("outage 503", {"status": 503}),
    ("429 Retry-After 1", {"status": 429, "retry_after": 1}),
    ("connection reset", {"reset": True}),
    ("slow 1 s", {"status": 202, "delay": 1.0}),
]


class CountingIntake(FaultIntake):
    """Keeps tallies instead of every request (a long soak would pile them up)."""

    def __init__(self):
        super().__init__()
        self.ok_points = 0
        self.requests_seen = 0

    def record(self, rec):
        a = rec["action"]
        with self._lock:
            self.requests_seen += 1
            if not a.get("reset") and 200 <= a.get("status", 202) < 300:
                self.ok_points += len(series_points(rec))


class Sender(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_ev = threading.Event()
        self.lines = 0
        self.packets = 0

    def run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        kinds = ["c", "g", "h", "d", "s", "ms"]
        per_packet = 20
        t0 = time.time()
        i = 0
        while not self.stop_ev.is_set():
            lines = []
            for _ in range(per_packet):
                k = kinds[i % len(kinds)]
                v = f"u{i % 50}" if k == "s" else str(i % 97)
                lines.append(f"soak.m{i % 40}.{k}:{v}|{k}|#shard:{i % 5},env:soak")
                i += 1
            s.sendto("\n".join(lines).encode(), ("127.0.0.1", self.port))
            self.lines += per_packet
            self.packets += 1
            ahead = self.lines / RATE - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
        s.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid):
    """(all descriptors, non-socket descriptors)."""
    n = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        n += 1
        if not target.startswith("socket:"):
            other += 1
    return n, other


def fault_cycle(fi, t_start, stop_ev, log):
    """Healthy for FAULT_PERIOD/2, then a fault for FAULT_PERIOD/2, cycling."""
    n = 0
    while not stop_ev.wait(FAULT_PERIOD / 2):
        name, action = FAULTS[n % len(FAULTS)]
        fi.set_script(default=action)
        log.append((round(time.time() - t_start, 1), name))
        if stop_ev.wait(FAULT_PERIOD / 2):
            break
        fi.set_script(default={"status": 202})
        n += 1
    fi.set_script(default={"status": 202})


def test_soak():
    with CountingIntake() as fi:
        a = agent_for(fi.url, {"forwarder_retry_queue_payloads_max_size": 2 << 20,
                               "forwarder_backoff_max": 2,
                               "forwarder_timeout": 5}).start()
        try:
            pid = a.proc.pid
            sender = Sender(a.port)
            stop_faults = threading.Event()
            faults_log = []
            t0 = time.time()
            sender.start()
            ft = threading.Thread(target=fault_cycle, args=(fi, t0, stop_faults, faults_log), daemon=True)
            ft.start()
            samples = []  # (t, rss KiB, fds)
            while time.time() - t0 < SECONDS:
                time.sleep(1)
                s = fwd(a)
                check_identity(s)
                samples.append((time.time() - t0, rss_kib(pid), fd_count(pid)))
            sender.stop_ev.set()
            sender.join()
            stop_faults.set()
            ft.join()
            # lines: every line sent is counted
            st = a.wait_for(lambda st: st["dogstatsd"]["packets"] + st["dogstatsd"]["kernel_drops"]
                            >= sender.packets, timeout=20, what="all packets counted")
            d = st["dogstatsd"]
            assert d["kernel_drops"] == 0, d
            assert d["packets"] == sender.packets, (d["packets"], sender.packets)
            assert d["lines"] == sender.lines, (d["lines"], sender.lines)
            assert d["metric_parse_errors"] == 0, d
            # drain: intake healthy again, everything queued arrives
            a.wait_for(lambda st: st["forwarder"]["points_queued"] == 0
                       and st["forwarder"]["inflight"] == 0
                       and st["aggregator"]["samples"] == sender.lines, timeout=60,
                       what="queue drained")
            time.sleep(12)  # the last bucket closes and is delivered
            s = a.wait_for(lambda st: st["forwarder"]["points_queued"] == 0
                           and st["forwarder"]["inflight"] == 0, timeout=60, what="final drain")["forwarder"]
            check_identity(s)
            assert dropped(s) == 0, s
            with fi._lock:
                ok = fi.ok_points
            assert ok == s["points_delivered"], (ok, s)
            assert s["points_delivered"] > 0 and s["payloads_retried"] > 0, s
            samples.append((time.time() - t0, rss_kib(pid), fd_count(pid)))
            check_resources(samples)
            rc = a.stop()
            assert rc == 0, f"exit code {rc} (LeakSanitizer?):\n{a.log()[-3000:]}"
            print(f"soak: {SECONDS}s, {sender.lines} lines, {s['points_delivered']} points delivered, "
                  f"{s['attempts']} attempts, {s['payloads_retried']} retried, faults: {faults_log}")
        finally:
            a.cleanup()


def check_resources(samples):
    n = len(samples)
    assert n >= 12, f"too few samples ({n})"
    warm = samples[: n // 3]
    mid = samples[n // 3: 2 * n // 3]
    last = samples[3 * n // 4:]
    rss_mid = statistics.median(r for _, r, _ in mid)
    rss_last = statistics.median(r for _, r, _ in last)
    bound = RSS_SLACK_KIB + rss_mid * 0.02
    print(f"soak: RSS KiB warm-up max {max(r for _, r, _ in warm)}, mid median {rss_mid}, "
          f"last median {rss_last} (growth {rss_last - rss_mid:+} KiB, bound {bound:.0f}); "
          f"fds (all, non-socket) warm-up max {max(f for _, _, f in warm)}, "
          f"after warm-up {sorted(set(f for _, _, f in samples[n // 3:]))}, final {samples[-1][2]}")
    if asan_build():
        print("soak: ASan build: RSS bound not checked (quarantine); LeakSanitizer checks at exit")
    else:
        assert rss_last - rss_mid <= bound, f"RSS grew {rss_last - rss_mid} KiB > {bound:.0f}: {samples}"
    fd_warm = max(f[0] for _, _, f in warm)
    other = warm[-1][2][1]
    after = [f for _, _, f in samples[n // 3:]]
    assert all(o == other for _, o in after), f"non-socket descriptors changed from {other}: {after}"
    assert max(t for t, _ in after) <= fd_warm + 4, f"descriptors past warm-up max {fd_warm} + 4: {after}"
    fd_mid = statistics.median(f[0] for _, _, f in mid)
    fd_last = statistics.median(f[0] for _, _, f in last)
    assert fd_last <= fd_mid + 1, f"descriptors grew: median {fd_mid} -> {fd_last}: {after}"


if __name__ == "__main__":
    Runner().run([test_soak])
