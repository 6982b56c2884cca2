"""test_rel_load.py - docs/RELIABILITY.md L1-L3 against the real daemon.

L1  UDP above capacity: every line the agent did not count is in the exported
    kernel drop counter (lost lines == kernel drops x lines per datagram).
    The zero-loss rate search and the 80 % run are the long mode:
    L1_SEARCH=1 (prints the highest zero-loss rate found).
L2  UDS: with the agent stopped, a non-blocking sender fills the socket and
    sees EAGAIN; after it resumes, lines counted == datagrams the kernel
    accepted x lines each: nothing is lost silently.
L3  cardinality: many unique contexts offered (L3_CONTEXTS, 2M in CI, 10M by
    hand): live contexts stay at or below dogstatsd_max_contexts, memory stays
    bounded, a series created before the flood keeps flowing, every refused
    sample is counted and the top offending metric/tag key is reported.
"""
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Agent, Runner, asan_build  # noqa: E402

BUILD = os.environ.get("DDMA_BUILD_ROOT", "build")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
LPD = 20


def loadgen(port, *args):
    r = subprocess.run([LOADGEN, "--port", str(port), "--lines-per-datagram", str(LPD), *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    kv = dict(x.split("=") for x in r.stdout.split() if "=" in x)
    return int(kv["lines_sent"])


def settled(a, key="packets", quiet=1.0, timeout=60):
    """Waits until the agent's packet counter stops moving."""
    last, since, deadline = None, time.time(), time.time() + timeout
    while time.time() < deadline:
        s = a.status()
        v = s["dogstatsd"][key]
        if v != last:
            last, since = v, time.time()
        elif time.time() - since >= quiet:
            return s
        time.sleep(0.1)
    raise AssertionError("traffic did not settle")


def test_l1_lost_lines_are_kernel_drops():
    a = Agent({"dogstatsd_output_file": "/dev/null", "telemetry_enabled": False}).start()
    try:
        sent = loadgen(a.port, "--lines", "4000000", "--contexts", "10000", "--tags-per-line", "3")
        s = settled(a)["dogstatsd"]
        lost = sent - s["lines"]
        print(f"L1 burst: sent {sent}, counted {s['lines']}, kernel drops {s['kernel_drops']} datagrams")
        assert lost == s["kernel_drops"] * LPD, (sent, s)
        assert s["truncated"] == 0 and s["metric_parse_errors"] == 0, s
    finally:
        a.cleanup()


def test_l1_zero_loss_search():
    if not os.environ.get("L1_SEARCH"):
        print("L1 search: long mode only (L1_SEARCH=1)")
        return
    a = Agent({"dogstatsd_output_file": "/dev/null", "dogstatsd_so_rcvbuf": 8 << 20}).start()
    try:
        best = 0
        for rate in (100_000, 200_000, 400_000, 600_000, 800_000, 1_000_000, 1_500_000, 2_000_000):
            before = settled(a)["dogstatsd"]["lines"]
            sent = loadgen(a.port, "--rate", str(rate), "--duration", "5")
            got = settled(a)["dogstatsd"]["lines"] - before
            print(f"L1 search: {rate} lines/s: sent {sent} counted {got}")
            if got != sent:
                break
            best = rate
        d0 = settled(a)["dogstatsd"]["kernel_drops"]
        loadgen(a.port, "--rate", str(int(best * 0.8)), "--duration", "10")
        d1 = settled(a)["dogstatsd"]["kernel_drops"]
        print(f"L1: highest zero-loss rate {best} lines/s; at 80 %: {d1 - d0} kernel drops")
        assert d1 == d0
    finally:
        a.cleanup()


def test_l2_uds_senders_see_eagain():
    a = Agent()
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    a.write_config()
    a.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        a.proc.send_signal(signal.SIGSTOP)
        ok = eagain = 0
        payload = "\n".join(f"l2.c:1|c|#i:{i}" for i in range(LPD)).encode()
        for _ in range(200000):
            try:
                s.sendto(payload, a.cfg["dogstatsd_socket"])
                ok += 1
            except OSError as e:
                assert e.errno in (errno.EAGAIN, errno.EWOULDBLOCK), e
                eagain += 1
                if eagain >= 100:
                    break
        a.proc.send_signal(signal.SIGCONT)
        assert eagain > 0 and ok > 0, (ok, eagain)
        st = a.wait_for(lambda st: st["dogstatsd"]["uds_packets"] >= ok, what="queued datagrams read")
        time.sleep(0.5)
        st = a.status()["dogstatsd"]
        print(f"L2: {ok} datagrams accepted by the kernel, {eagain} EAGAIN, {st['lines']} lines counted")
        assert st["uds_packets"] == ok and st["lines"] == ok * LPD, st
    finally:
        s.close()
        a.proc.send_signal(signal.SIGCONT)
        a.cleanup()


def alive_sender(port, stop, sent):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while not stop.is_set():
        s.sendto(b"l3.alive:1|c", ("127.0.0.1", port))
        sent[0] += 1
        time.sleep(0.05)
    s.close()


def test_l3_cardinality_flood():
    n = int(os.environ.get("L3_CONTEXTS", "2000000"))
    cap = 50000
    # one pipeline: the context cap is per pipeline, and the alive sender and
    # loadgen may land on different ones
    # no tag value limit: the flood's ctx tag would be stripped past 1000
    # values per metric, and this test is about the context cap
    a = Agent({"dogstatsd_max_contexts": cap, "dogstatsd_max_contexts_per_metric": 100000,
               "dogstatsd_tag_value_limit": 0,
               "dogstatsd_output_file": "/dev/null", "telemetry_enabled": False,
               "dogstatsd_so_rcvbuf": 8 << 20, "dogstatsd_pipeline_count": 1}).start()
    stop, alive = threading.Event(), [0]
    t = threading.Thread(target=alive_sender, args=(a.port, stop, alive))
    try:
        t.start()
        a.wait_for(lambda st: st["aggregator"]["contexts"] >= 1, what="alive series")
        rate = "150000" if asan_build() else "400000"
        sent = loadgen(a.port, "--lines", str(n), "--unique", "--rate", rate, "--type", "c")
        stop.set()
        t.join()
        st = settled(a)
        d, ag = st["dogstatsd"], st["aggregator"]
        flood_counted = d["lines"] - alive[0]
        refused = ag["dropped"]["context_cap"]
        print(f"L3: offered {sent} unique contexts, counted {flood_counted}, live {ag['contexts']}, "
              f"refused {refused}, memory {ag['memory_bytes']} B, kernel drops {d['kernel_drops']}")
        assert d["lines"] + d["kernel_drops"] * LPD >= sent + alive[0] - LPD, d  # every line accounted
        assert ag["contexts"] <= cap, ag
        assert ag["contexts_created"] == cap, ag
        # every flood line beyond the cap was refused and counted: 1 alive context + (cap - 1) flood ones
        assert refused == flood_counted - (cap - 1), (refused, flood_counted)
        assert ag["memory_bytes"] < 64 * 1024 * 1024, ag
        top = ag["top"]
        assert top and top[0]["metric"].startswith("loadgen.metric.") and top[0]["top_tag_key"] == "ctx", top
        assert sum(x["refused"] for x in top) > 0, top
        # the series that existed before the flood kept flowing, exactly
        assert d["samples"]["count"] >= alive[0] + cap - 1, d
    finally:
        stop.set()
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_l1_lost_lines_are_kernel_drops, test_l1_zero_loss_search,
                  test_l2_uds_senders_see_eagain, test_l3_cardinality_flood])
