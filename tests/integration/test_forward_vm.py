"""test_forward_vm.py - the real dd-mini-agent feeding Debian's VictoriaMetrics
through its Datadog API (/datadog/api/v1/series, JSON + deflate).

Exact names, tags, hosts, timestamps and values for counters, gauges,
histogram aggregates and sets, read back with /api/v1/export; then four
agents with distinct hostnames into one VictoriaMetrics, per-host and global
totals exact (docs/RELIABILITY.md L5).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner  # noqa: E402
from fwdlib import agent_for, check_identity, fwd, wait_bucket_start  # noqa: E402
from vm import shared_vm  # noqa: E402



def labels(**kw):
    return frozenset(kw.items())


def test_types_exact():
    v = shared_vm()
    # one pipeline: each a.send() is a new socket, and two pipelines cannot
    # order two gauge values received in the same second (README, "differs")
    a = agent_for(v.dd_url, {"hostname": "vm-host-1", "dogstatsd_pipeline_count": 1}).start()
    try:
        bucket = wait_bucket_start()
        lines = [
            "fv.cnt:3|c|#env:a,team:x",
            "fv.cnt:2|c|@0.5|#team:x,env:a",     # same context, tags reordered: +4
            "fv.gauge:1|g|#env:a",
            "fv.gauge:42.5|g|#env:a",            # last value wins
            "fv.hist:1|h|#env:a\nfv.hist:2|h|#env:a\nfv.hist:3|h|#env:a\nfv.hist:4|h|#env:a\nfv.hist:5|h|#env:a",
            "fv.set:alice|s\nfv.set:bob|s\nfv.set:alice|s\nfv.set:carol|s",
            "fv.other:7|g|#host:elsewhere,bare",
        ]
        for line in lines:
            a.send(line)
        want = {
            ("fv.cnt", labels(host="vm-host-1", env="a", team="x")): 0.7,   # (3 + 2/0.5) / 10
            ("fv.gauge", labels(host="vm-host-1", env="a")): 42.5,
            ("fv.hist.max", labels(host="vm-host-1", env="a")): 5,
            ("fv.hist.median", labels(host="vm-host-1", env="a")): 3,
            ("fv.hist.avg", labels(host="vm-host-1", env="a")): 3,
            ("fv.hist.count", labels(host="vm-host-1", env="a")): 0.5,      # 5 / 10
            ("fv.set", labels(host="vm-host-1")): 3,
            ("fv.other", labels(host="elsewhere", bare="no_label_value")): 7,
        }

        def complete(p):
            return all(bucket in p.get(k, {}) for k in want)
        pts = v.wait_points('{__name__=~"fv[.].*"}', complete, timeout=40)
        for k, val in want.items():
            got = pts[k][bucket]
            assert abs(got - val) < 1e-9, f"{k}: {got} != {val}"
        p95 = pts[("fv.hist.95percentile", labels(host="vm-host-1", env="a"))][bucket]
        assert 4.8 <= p95 <= 5, p95
        names = {k[0] for k in pts}
        assert names == {k[0] for k in want} | {"fv.hist.95percentile"}, names
        # a counter that stopped is zero-filled in later buckets, never anything else
        for ts, val in pts[("fv.cnt", labels(host="vm-host-1", env="a", team="x"))].items():
            assert ts == bucket or val == 0, (ts, val)
        s = fwd(a)
        assert s["points_delivered"] >= len(want)
        check_identity(s)
    finally:
        a.cleanup()


def test_four_agents_one_vm():
    v = shared_vm()
    agents = [agent_for(v.dd_url, {"hostname": f"l5-host-{i}"}, name=f"a{i}").start() for i in range(4)]
    try:
        bucket = wait_bucket_start()
        sent = {}
        for i, a in enumerate(agents):
            n = 0
            for k in range(50 * (i + 1)):
                val = (k % 7) + i
                a.send(f"l5.requests:{val}|c|#svc:api")
                n += val
            sent[f"l5-host-{i}"] = n

        def complete(p):
            return all(bucket in p.get(("l5.requests", labels(host=h, svc="api")), {}) for h in sent)
        pts = v.wait_points('{__name__="l5.requests"}', complete, timeout=40)
        total = 0.0
        for h, n in sent.items():
            got = pts[("l5.requests", labels(host=h, svc="api"))][bucket]
            assert abs(got - n / 10) < 1e-9, f"{h}: {got} != {n / 10}"
            total += got
        assert abs(total - sum(sent.values()) / 10) < 1e-9
        assert {dict(k[1])["host"] for k in pts} == set(sent)
        for a in agents:
            check_identity(fwd(a))
    finally:
        for a in agents:
            a.cleanup()


if __name__ == "__main__":
    Runner().run([test_types_exact, test_four_agents_one_vm])
