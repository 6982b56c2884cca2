"""test_rel_clock.py - docs/RELIABILITY.md S3: wall-clock jumps while running.

The agent runs under libfaketime (Debian's `faketime` package) with
FAKETIME_DONT_FAKE_MONOTONIC=1, so only the wall clock (CLOCK_REALTIME, time())
jumps, as with an NTP step or an admin's `date -s`; the monotonic clock that
drives the flush timer keeps running. The offset lives in a file that the
test rewrites (FAKETIME_TIMESTAMP_FILE, re-read on every call):
  +0  ->  +3600 s (forward one hour)  ->  -600 s (back ten minutes)  ->  +0.
A counter is sent every 50 ms throughout; /status is sampled every 100 ms.

Asserts:
  - no burst of flushes: over every 1 s of real time, /status `flushes`
    grows by at most 2 (the interval is 1 s);
  - no gap: `flushes` never stays unchanged for more than 2 s of real time
    (one interval + 1 s tolerance);
  - no loss: every counter increment sent is in the JSON-lines output
    (sum of value*interval over the counter's records == increments sent);
  - forward jumps are followed (some bucket stamped in the +3600 s hour);
    backward jumps are not: the agent's clock never goes back (agent.c
    agent_now), so no bucket timestamp is sent twice and none lands in the
    -600 s past;
  - the agent keeps running and exits 0 on SIGTERM.
Skipped (counted as passed with a note) when libfaketime is not installed,
and in the ASan build (libfaketime and ASan's start-up clash).
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Agent, Runner, asan_build  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
PHASES = [("+0", 4), ("+3600", 5), ("-600", 5), ("+0", 4)]


def faketime_env(offset_file):
    pre = LIBFAKETIME
    if os.environ.get("LD_PRELOAD"):
        pre = os.environ["LD_PRELOAD"] + ":" + pre
    env = {"LD_PRELOAD": pre, "FAKETIME_TIMESTAMP_FILE": offset_file,
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "FAKETIME_DONT_RESET": "1"}
    # an ASan build wants its runtime first in the library list; libfaketime
    # only interposes time calls, so the order check can be relaxed.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    return env


def test_clock_jumps():
    if not os.path.exists(LIBFAKETIME):
        print("SKIP test_clock_jumps: libfaketime not installed (apt-get install faketime)")
        return
    if asan_build():
        # ASan's runtime calls clock_gettime while it initialises, before
        # libfaketime has; libfaketime then reports "Unexpected recursive
        # calls" and, on some machines, the agent never gets past start-up
        # (seen in CI). The clock logic is the same code in both builds; the
        # gcc build runs this test.
        print("SKIP test_clock_jumps: libfaketime cannot preload into an ASan binary reliably")
        return
    a = Agent({"dogstatsd_expiry_seconds": 3})
    offset_file = os.path.join(a.dir, "faketime")
    with open(offset_file, "w") as f:
        f.write("+0\n")
    a.start(env=faketime_env(offset_file))
    try:
        sent = [0]
        stop = threading.Event()

        def sender():
            while not stop.is_set():
                a.send("clk.c:1|c")
                sent[0] += 1
                time.sleep(0.05)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        samples = []  # (real time, flushes, agent's "now")
        for offset, secs in PHASES:
            with open(offset_file + ".new", "w") as f:
                f.write(offset + "\n")
            os.replace(offset_file + ".new", offset_file)
            end = time.time() + secs
            while time.time() < end:
                st = a.status()
                samples.append((time.time(), st["flushes"], st["now"], offset))
                time.sleep(0.1)
        stop.set()
        th.join()
        # the last sends are flushed at shutdown
        rc = a.stop(signal.SIGTERM)
        assert rc == 0, f"exit code {rc}\n{a.log()[-2000:]}"
        check_flush_times(samples)
        recs = [r for r in a.records() if r.get("metric") == "clk.c"]
        total = sum(r["value"] * r["interval"] for r in recs)
        assert abs(total - sent[0]) < 1e-6, f"sent {sent[0]} increments, output has {total}: {recs}"
        t_real = samples[0][0]
        ts = sorted({r["ts"] for r in recs})
        assert any(t >= t_real + 3000 for t in ts), f"no bucket in the +1 h phase: {ts}"
        # after the backward jump the agent's clock does not go back: it goes on
        # from the +1 h phase at the monotonic pace, so no bucket is reopened
        # after its flush (one point per series and timestamp at the intake)
        assert len(ts) == len(recs), f"a bucket timestamp was sent twice: {sorted(r['ts'] for r in recs)}"
        assert not any(t <= t_real - 300 for t in ts), f"buckets went back in time: {ts}"
        per_ts = {}
        for r in recs:
            per_ts[r["ts"] - int(t_real)] = per_ts.get(r["ts"] - int(t_real), 0) + 1
        print(f"clock: records per bucket ts (rel. to start): {sorted(per_ts.items())}")
        agent_now = [(round(t - t_real, 1), n - int(t), o) for t, _, n, o in samples[::10]]
        print(f"clock: {sent[0]} increments sent, all in the output; bucket ts (rel. to start) "
              f"{[t - int(t_real) for t in ts]}; agent now - real now by phase: {agent_now}")
    finally:
        a.cleanup()


def check_flush_times(samples):
    t0 = samples[0][0]
    for i, (t, f, _, _) in enumerate(samples):
        # every 1 s window: at most 2 flushes
        j = i
        while j + 1 < len(samples) and samples[j + 1][0] - t <= 1.0:
            j += 1
        grew = samples[j][1] - f
        assert grew <= 2, f"burst: {grew} flushes in 1 s at t={t - t0:.1f}s: {samples[i:j + 1]}"
    last_change = samples[0][0]
    for k in range(1, len(samples)):
        if samples[k][1] != samples[k - 1][1]:
            last_change = samples[k][0]
        gap = samples[k][0] - last_change
        assert gap <= 2.0, f"no flush for {gap:.1f}s at t={samples[k][0] - t0:.1f}s (offset {samples[k][3]})"


if __name__ == "__main__":
    Runner().run([test_clock_jumps])
