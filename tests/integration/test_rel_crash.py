"""test_rel_crash.py - docs/RELIABILITY.md F5/S2 with the disk queue on: nothing
the forwarder accepted is lost to a crash.

test_restart_during_outage_then_crash: the intake is down (connection
  reset), events are flushed into the disk queue, the agent is stopped with
  SIGTERM; it starts again while the intake is still down and, after a few
  seconds (time for the old code to read the queue into memory and delete
  it), is killed with SIGKILL. Every file is still on disk; when the intake
  comes back one more start delivers every event exactly as accounted.

test_crash_loop: the intake flaps (reset, 500, 202, changing every 0.2-1 s),
  events arrive continuously, and the agent is SIGKILLed at random moments,
  at least CRASH_CYCLES times (20 in CI, about a minute; long mode:
  CRASH_CYCLES=300 CRASH_SEED=<n>). In each run some events are confirmed
  flushed (points_submitted reached them) before the kill. At the end, with
  the intake up:
    - every confirmed event was delivered (2xx), and delivered (deduplicated)
      + counted drops == the points accepted (sum of points_submitted read
      just before each kill, plus the last run's), within the few points a
      flush could add between that read and the kill;
    - an event delivered twice was delivered once shortly before a kill and
      again after it (in flight at the kill), never twice within one run;
    - the identity holds at every read, the disk queue ends empty, no *.tmp.
Events are used because they are flushed every second (series wait for their
10 s bucket), each with a unique title.
"""
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake, series_points  # noqa: E402
from fwdlib import agent_for, check_identity, dropped, fwd  # noqa: E402

DISK = {"forwarder_storage_max_size_in_bytes": 64 << 20,
        # a small memory queue: most payloads wait on disk only and are read back
        "forwarder_retry_queue_payloads_max_size": 2000,
        "serializer_compressor_kind": "none",
        "forwarder_timeout": 2}


def event(title):
    text = "crash-test"
    return f"_e{{{len(title)},{len(text)}}}:{title}|{text}"


def deliveries(fi):
    """(time, title) of every event in a request answered 2xx."""
    out = []
    for r in fi.requests("/intake/"):
        a = r["action"]
        if a.get("reset") or not 200 <= a.get("status", 202) < 300:
            continue
        for evs in ((r.get("body") or {}).get("events") or {}).values():
            for e in evs:
                out.append((r["t"], e["msg_title"]))
    return out


def down_disk_agent(fi):
    """An agent with the disk queue on, its intake down (connection reset);
    returns it (not started) and its queue directory."""
    fi.set_script(default={"reset": True})
    a = agent_for(fi.url, DISK)
    return a, os.path.join(a.cfg["run_path"], "transactions_to_retry")


def flush_events(a, titles, per_flush):
    """Sends an event per title, waiting after every per_flush of them until
    they are flushed: one flush (one queue file, intake down) per group."""
    for i, t in enumerate(titles):
        a.send(event(t))
        if i % per_flush == per_flush - 1:
            wait_until(lambda: fwd(a)["points_submitted"] >= i + 1, 10, "events flushed")


def qfiles(qdir):
    try:
        return sorted(os.listdir(qdir))
    except FileNotFoundError:
        return []


def kill9(a):
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()


def test_restart_during_outage_then_crash():
    with FaultIntake() as fi:
        a, qdir = down_disk_agent(fi)
        try:
            a.start()
            titles = [f"rc.e{i}" for i in range(60)]
            flush_events(a, titles, 10)
            assert a.stop() == 0
            files = [f for f in qfiles(qdir) if f.endswith(".ddq")]
            assert len(files) >= 6, files
            a.start()  # intake still down
            s = fwd(a)
            assert s["points_recovered"] == len(titles), s
            time.sleep(6)
            s = fwd(a)
            check_identity(s)
            assert s["points_delivered"] == 0 and s["attempts"] >= 1, s
            kept = [f for f in qfiles(qdir) if f.endswith(".ddq")]
            assert kept == files, f"disk queue changed during the outage: {files} -> {kept}"
            kill9(a)
            assert [f for f in qfiles(qdir) if f.endswith(".ddq")] == files
            fi.set_script(default={"status": 202})
            a.start()
            s = fwd(a)
            assert s["points_recovered"] == len(titles), s
            wait_until(lambda: fwd(a)["points_queued"] == 0, 30, "replay")
            s = fwd(a)
            check_identity(s)
            assert dropped(s) == 0, s
            got = [t for _, t in deliveries(fi)]
            assert sorted(set(got)) == sorted(titles), sorted(set(titles) - set(got))
            assert len(got) == len(titles), "nothing was in flight at the kill: no duplicate expected"
            assert qfiles(qdir) == [], qfiles(qdir)
        finally:
            a.cleanup()


class Flapper(threading.Thread):
    """Switches the intake between down (reset), 500 and up every 0.2-1 s."""

    def __init__(self, fi, rng):
        super().__init__(daemon=True)
        self.fi, self.rng, self.stop_ev = fi, rng, threading.Event()

    def run(self):
        modes = [{"reset": True}, {"status": 500}, {"status": 202}]
        while not self.stop_ev.wait(self.rng.uniform(0.2, 1.0)):
            self.fi.set_script(default=self.rng.choice(modes))


class Load(threading.Thread):
    """Sends uniquely titled events, ~100 per second, until stopped."""

    def __init__(self, a, prefix):
        super().__init__(daemon=True)
        self.a, self.prefix, self.stop_ev, self.sent = a, prefix, threading.Event(), []

    def run(self):
        i = 0
        while not self.stop_ev.wait(0.01):
            t = f"{self.prefix}.{i}"
            self.a.send(event(t))
            self.sent.append(t)
            i += 1


def test_crash_loop():
    cycles = int(os.environ.get("CRASH_CYCLES", "20"))
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"crash loop: {cycles} cycles, CRASH_SEED={seed}")
    with FaultIntake() as fi:
        a = agent_for(fi.url, DISK)
        qdir = os.path.join(a.cfg["run_path"], "transactions_to_retry")
        flapper = Flapper(fi, rng)
        flapper.start()
        confirmed, sent, kills = [], [], []
        accepted = drops = 0
        try:
            for c in range(cycles):
                a.start()
                s = fwd(a)
                check_identity(s)
                load = Load(a, f"cl{c}")
                load.start()
                # some events surely flushed in this run ...
                time.sleep(0.3)
                n = len(load.sent)
                wait_until(lambda: fwd(a)["points_submitted"] >= n, 15, "events flushed")
                confirmed += load.sent[:n]
                # ... then a kill at a random moment, load still running
                time.sleep(rng.uniform(0, 1.5))
                s = fwd(a)
                kill9(a)
                kills.append(time.time())
                load.stop_ev.set()
                load.join()
                sent += load.sent
                check_identity(s)
                accepted += s["points_submitted"]
                drops += dropped(s)
                assert not [f for f in qfiles(qdir) if not f.endswith((".ddq", ".tmp"))], qfiles(qdir)
            flapper.stop_ev.set()
            flapper.join()
            fi.set_script(default={"status": 202})
            a.start()
            assert not [f for f in qfiles(qdir) if f.endswith(".tmp")], qfiles(qdir)
            wait_until(lambda: fwd(a)["points_queued"] == 0 and fwd(a)["disk_files"] == 0, 60, "replay")
            s = fwd(a)
            check_identity(s)
            drops += dropped(s)
            accepted += s["points_submitted"]
            got = deliveries(fi)
            titles = [t for _, t in got]
            unique = set(titles)
            missing = set(confirmed) - unique
            assert not missing, f"{len(missing)} flushed events lost: {sorted(missing)[:10]}"
            assert unique <= set(sent)
            # a flush between the last read and the kill adds what it accepted
            assert accepted <= len(unique) + drops <= accepted + 2 * cycles * 150, \
                (accepted, len(unique), drops)
            first = {}
            dups, gap = 0, 0.0
            for t, title in sorted(got):
                if title in first:
                    dups += 1
                    prev = first[title]
                    between = [k for k in kills if prev <= k <= t]
                    assert between, f"{title} delivered twice in one run ({prev:.3f}, {t:.3f})"
                    gap = max(gap, between[0] - prev)
                    assert between[0] - prev < 1, f"{title}: first delivery {between[0] - prev:.1f}s before the kill"
                first[title] = t
            assert qfiles(qdir) == [], qfiles(qdir)
            print(f"crash loop: {cycles} kills, {len(sent)} events sent, {len(confirmed)} confirmed flushed, "
                  f"{accepted} accepted, {len(unique)} delivered, {dups} duplicates (first delivery at most "
                  f"{gap:.3f}s before its kill), {drops} dropped")
        finally:
            flapper.stop_ev.set()
            a.cleanup()


def test_drain_accepts_flushes_until_exit():
    """SIGTERM with the intake down and a drain of 3 s (three flush
    intervals): the flushes during the drain are accepted (no "refused"),
    kept in the disk queue, and delivered after the next start."""
    with FaultIntake() as fi:
        fi.set_script(default={"reset": True})
        a = agent_for(fi.url, dict(DISK, telemetry_enabled=True, forwarder_stop_timeout=3))
        try:
            a.start()
            a.send(event("drain.e"))
            wait_until(lambda: fwd(a)["points_submitted"] >= 1, 10, "first flush")
            t_term = time.time()
            assert a.stop(signal.SIGTERM, timeout=3 + 1 + 2) == 0
            t_exit = time.time()
            log = a.log()
            assert "refused the batch" not in log and "ERROR" not in log, log[-2000:]
            fi.set_script(default={"status": 202})
            a.start()
            wait_until(lambda: fwd(a)["points_queued"] == 0 and fwd(a)["disk_files"] == 0, 30, "replay")
            stamps = {p[3] for r in fi.requests("/api/v1/series") if r["action"].get("status") == 202
                      for p in series_points(r) if p[0] == "dd_mini_agent.aggregator.contexts"}
            during = sorted(t for t in stamps if t_term - 0.5 <= t <= t_exit + 0.5)
            assert len(during) >= 2, f"flushes of the drain ({t_term:.1f}..{t_exit:.1f}) not delivered: {sorted(stamps)}"
            assert "drain.e" in {t for _, t in deliveries(fi)}
        finally:
            a.cleanup()


def test_payload_over_the_memory_cap_never_stalls():
    """One payload larger than forwarder_retry_queue_payloads_max_size, the
    intake failing for a while: it is retried, not parked, and delivered soon
    after the intake recovers (with and without the disk queue)."""
    for disk in (True, False):
        with FaultIntake() as fi:
            fi.set_script(default={"status": 503})
            extra = {"forwarder_retry_queue_payloads_max_size": 600, "serializer_compressor_kind": "none",
                     "forwarder_timeout": 2}
            if disk:
                extra["forwarder_storage_max_size_in_bytes"] = 1 << 20
            a = agent_for(fi.url, extra)
            try:
                a.start()
                big = "big." + "x" * 3000
                a.send(f"_e{{{len(big)},4}}:{big}|text")
                wait_until(lambda: fwd(a)["attempts"] >= 3, 20, "three failed attempts")
                s = fwd(a)
                assert s["points_dropped_queue_full"] == 0 and dropped(s) == 0, s
                fi.set_script(default={"status": 202})
                t0 = time.time()
                wait_until(lambda: fwd(a)["points_delivered"] >= 1, 10, "the large payload delivered")
                s = fwd(a)
                check_identity(s)
                assert s["points_queued"] == 0 and dropped(s) == 0, s
                assert big in {t for _, t in deliveries(fi)}
                print(f"disk queue {'on' if disk else 'off'}: delivered {time.time() - t0:.1f} s after recovery")
            finally:
                a.cleanup()


def test_corrupt_and_foreign_entries():
    """A corrupt queue file is named with its reason, counted and removed;
    a directory named *.ddq and other files are left alone and named."""
    with FaultIntake() as fi:
        a, qdir = down_disk_agent(fi)
        try:
            a.start()
            flush_events(a, [f"corrupt.e{i}" for i in range(3)], 1)
            assert a.stop() == 0
            files = sorted(f for f in qfiles(qdir) if f.endswith(".ddq"))
            assert len(files) == 3, files
            with open(os.path.join(qdir, files[0]), "r+b") as f:
                f.seek(70)
                b = f.read(1)
                f.seek(70)
                f.write(bytes([b[0] ^ 0x40]))
            os.mkdir(os.path.join(qdir, "ffffffffffffffff.ddq"))
            with open(os.path.join(qdir, "notes.txt"), "w") as f:
                f.write("operator notes")
            fi.set_script(default={"status": 202})
            a.start()
            wait_until(lambda: fwd(a)["points_queued"] == 0, 20, "replay")
            s = fwd(a)
            check_identity(s)
            assert s["payloads_dropped_corrupt"] == 1, s
            assert s["points_recovered"] == 2, s
            log = a.log()
            assert f"{files[0]}: checksum mismatch" in log, log[-3000:]
            assert "ffffffffffffffff.ddq: not a regular file, left alone" in log, log[-3000:]
            assert "notes.txt: not a queue file name, left alone" in log, log[-3000:]
            assert log.count("ffffffffffffffff.ddq") == 1, "named once"
            assert sorted(qfiles(qdir)) == ["ffffffffffffffff.ddq", "notes.txt"], qfiles(qdir)
            assert {t for _, t in deliveries(fi)} == {"corrupt.e1", "corrupt.e2"}
        finally:
            a.cleanup()


if __name__ == "__main__":
    Runner().run([test_restart_during_outage_then_crash, test_crash_loop, test_drain_accepts_flushes_until_exit,
                  test_payload_over_the_memory_cap_never_stalls, test_corrupt_and_foreign_entries])
