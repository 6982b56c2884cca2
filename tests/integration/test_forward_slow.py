"""test_forward_slow.py - docs/RELIABILITY.md F4: a slow intake (seconds per
response, then a trickling body) under steady load. Memory stays within the
configured caps, receiving goes on with no socket drops, flushes stay on
schedule, and the accounting identity holds."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner, asan_build  # noqa: E402
from fault_intake import FaultIntake  # noqa: E402
from fwdlib import agent_for, check_identity, fwd  # noqa: E402

QUEUE_CAP = 32 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sender(port, stop, sent):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    i = 0
    while not stop.is_set():
        lines = [f"slow.c:1|c|#k:{(i + k) % 3000}" for k in range(10)]
        s.sendto("\n".join(lines).encode(), ("127.0.0.1", port))
        sent[0] += len(lines)
        i += 10
        time.sleep(0.005)  # ~2000 lines/s: moderate load
    s.close()


def test_slow_intake_bounded_and_on_schedule():
    with FaultIntake() as fi:
        # every answer takes 3 s, longer than forwarder_timeout: each attempt
        # times out and is retried, so the retry queue fills up to its cap
        fi.set_script(default={"status": 202, "delay": 3})
        a = agent_for(fi.url, {"forwarder_retry_queue_payloads_max_size": QUEUE_CAP,
                               "forwarder_timeout": 2,
                               "serializer_max_series_points_per_payload": 50}).start()
        stop, sent = threading.Event(), [0]
        t = threading.Thread(target=sender, args=(a.port, stop, sent))
        try:
            t.start()
            t0 = time.time()
            f0 = a.status()["flushes"]
            rss0 = rss_kib(a.proc.pid)
            max_q, max_rss = 0, rss0
            while time.time() - t0 < 15:
                s = fwd(a)
                max_q = max(max_q, s["queue_bytes"])
                max_rss = max(max_rss, rss_kib(a.proc.pid))
                time.sleep(0.2)
            stop.set()
            t.join()
            elapsed = time.time() - t0
            st = a.wait_for(lambda s: s["dogstatsd"]["lines"] == sent[0], what="all lines counted")
            flushes = st["flushes"] - f0
            # flush interval 1 s: flushing never waits for the intake
            assert flushes >= elapsed - 2, (flushes, elapsed)
            assert st["dogstatsd"]["kernel_drops"] == 0, st["dogstatsd"]
            s = fwd(a)
            # the retry queue never exceeds its cap by more than one payload
            assert max_q <= QUEUE_CAP + 16 * 1024, max_q
            assert s["payloads_retried"] + s["points_dropped_queue_full"] > 0, s  # the intake was too slow
            # memory stays bounded: the queue cap plus a few MiB of working set
            # (not under ASan: its quarantine keeps freed memory by design)
            if not asan_build():
                assert max_rss - rss0 < 16 * 1024, (rss0, max_rss)
            check_identity(s)
        finally:
            stop.set()
            a.cleanup()


if __name__ == "__main__":
    Runner().run([test_slow_intake_bounded_and_on_schedule])
