"""Issue 7: dogstatsd_pipeline_count: N receive threads on SO_REUSEPORT
sockets, each with its own parser and aggregator, merged at flush.

Two pipelines; traffic from 32 client sockets (32 source ports: the kernel
spreads senders over the pipelines by address hash, and with 32 senders
both pipelines get some, asserted from /status). Every sender sends the
same contexts, so each context is split over both aggregators and the
flush must merge them: counters add up, histograms combine samples, sets
take the union, distributions merge sketches, gauges keep the last value;
and each context yields exactly one point per bucket (no duplicates).
The Unix socket (pipeline 0's) feeds the same counter.
"""
import os
import socket
import time

from agentlib import Agent, Runner
from test_aggregate import by_name, fresh_bucket

SENDERS = 32


def send_all(socks, port, payload):
    for s in socks:
        s.sendto(payload.encode(), ("127.0.0.1", port))


def wait_bucket(a, bucket, names, timeout=25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = {n: [r for r in v if r["ts"] == bucket] for n, v in by_name(a.records()).items()}
        if all(got.get(n) for n in names):
            return got
        time.sleep(0.2)
    raise AssertionError(f"bucket {bucket}: missing series\n{a.log()[-3000:]}")


def test_two_pipelines_merge_exactly():
    a = Agent({"dogstatsd_pipeline_count": 2, "histogram_aggregates": ["max", "min", "count", "sum"],
               "histogram_percentiles": []})
    path = os.path.join(a.dir, "dsd.sock")
    a.cfg["dogstatsd_socket"] = path
    a.write_config()
    a.start()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SENDERS)]
    try:
        st = a.status()
        assert st["pipelines"]["count"] == 2, st["pipelines"]
        bucket = fresh_bucket()
        # 10 counter increments per sender, 2 of them at @0.5 (count 2 each)
        send_all(socks, a.port, "\n".join(["pc.count:1|c|#k:v"] * 8 + ["pc.count:1|c|@0.5|#k:v"] * 2))
        send_all(socks, a.port, "\n".join(f"pc.hist:{v}|h" for v in range(1, 11)))
        for i, s in enumerate(socks):  # members m0..m39, overlapping between senders
            s.sendto("\n".join(f"pc.set:m{(i + k) % 40}|s" for k in range(8)).encode(),
                     ("127.0.0.1", a.port))
        send_all(socks, a.port, "\n".join(f"pc.dist:{v}|d" for v in (1, 2, 3)))
        send_all(socks, a.port, "pc.gauge:1|g")
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        u.sendto(b"pc.count:5|c|#k:v", path)
        u.close()
        time.sleep(1.2)  # a later receive second: this gauge value must win
        socks[SENDERS // 2].sendto(b"pc.gauge:42|g", ("127.0.0.1", a.port))
        got = wait_bucket(a, bucket, ["pc.count", "pc.hist.count", "pc.set", "pc.gauge"])
        sk = [r for r in a.records() if r.get("kind") == "sketch" and r["metric"] == "pc.dist" and r["ts"] == bucket]
        for name, recs in got.items():
            if name.startswith("pc."):
                assert len(recs) == 1, f"{name}: {len(recs)} points for one bucket: {recs}"
        sent_counts = SENDERS * (8 + 2 * 2) + 5
        assert abs(got["pc.count"][0]["value"] * 10 - sent_counts) < 1e-6, got["pc.count"]
        assert got["pc.count"][0]["tags"] == ["k:v"]
        assert abs(got["pc.hist.count"][0]["value"] * 10 - SENDERS * 10) < 1e-6, got["pc.hist.count"]
        assert got["pc.hist.max"][0]["value"] == 10 and got["pc.hist.min"][0]["value"] == 1
        assert got["pc.hist.sum"][0]["value"] == SENDERS * 55
        assert got["pc.set"][0]["value"] == 39, got["pc.set"]  # (i + k) % 40 for i < 32, k < 8: m0..m38
        assert len(sk) == 1, sk
        assert sk[0]["cnt"] == SENDERS * 3 and sk[0]["sum"] == SENDERS * 6, sk
        assert sk[0]["min"] == 1 and sk[0]["max"] == 3 and sk[0]["bins"] == 3, sk
        assert got["pc.gauge"][0]["value"] == 42, got["pc.gauge"]
        st = a.status()
        p0, p1 = st["pipelines"]["p0_lines"], st["pipelines"]["p1_lines"]
        assert p0 > 0 and p1 > 0, f"the kernel gave one pipeline everything: {st['pipelines']}"
        assert p0 + p1 == st["dogstatsd"]["lines"], (st["pipelines"], st["dogstatsd"])
        assert st["pipelines"]["records_merged"] > 0, st["pipelines"]
    finally:
        for s in socks:
            s.close()
        a.stop()


if __name__ == "__main__":
    Runner().run([test_two_pipelines_merge_exactly])
