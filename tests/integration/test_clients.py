"""test_clients.py - real client libraries against the real daemon (issue 6
item 4): Debian's python3-statsd (plain statsd: counters, gauges, timers,
sample rates) and npm hot-shots (tests/clients/, DogStatsD over UDP and the
Unix socket: tags, histograms, distributions, sets, timings, events, service
checks). Series are read back from VictoriaMetrics; timers' aggregates,
events and service checks from the JSON lines copy the agent writes next to
the intake. A missing client is a failure with the install command, never a
silent pass.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import SOURCE_ROOT, Runner  # noqa: E402
from fwdlib import agent_for, check_identity, fwd, wait_bucket_start  # noqa: E402
from vm import shared_vm  # noqa: E402

CLIENTS = os.path.join(SOURCE_ROOT, "tests", "clients")


def import_statsd():
    try:
        import statsd
    except ImportError:
        # Debian's python3-statsd lives in the system dist-packages, which a
        # pyenv/venv python3 does not search
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import statsd
        except ImportError:
            raise AssertionError("python3-statsd is not installed: run scripts/deps.sh --test "
                                 "(apt-get install python3-statsd)") from None
    return statsd


def L(**kw):
    return frozenset(kw.items())


def agent_vm_jsonl(host):
    v = shared_vm()
    a = agent_for(v.dd_url, {"hostname": host, "histogram_aggregates": ["max", "median", "avg", "count", "min", "sum"]})
    a.cfg["dogstatsd_output_file"] = a.out_path  # a JSON lines copy next to the intake
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    a.write_config()
    return v, a.start()


def check_exact(pts, want, bucket):
    for k, val in want.items():
        assert k in pts and bucket in pts[k], f"{k} missing at {bucket}: {sorted(pts)}"
        got = pts[k][bucket]
        assert abs(got - val) < 1e-9, f"{k}: {got} != {val}"


def test_python_statsd():
    statsd = import_statsd()
    import statsd.client.base as base
    v, a = agent_vm_jsonl("py-host")
    try:
        c = statsd.StatsClient("127.0.0.1", a.port, prefix="pys")
        real_random = base.random.random
        base.random.random = lambda: 0.0  # sampled calls always sent: exact expectations
        try:
            bucket = wait_bucket_start()
            c.incr("hits")                      # 1
            c.incr("hits", 4)                   # 4
            c.incr("hits", 3, rate=0.5)         # 3 / 0.5 = 6
            c.decr("hits", 1)                   # -1  -> 10 in the bucket: 1.0 per second
            c.gauge("temp", 20)
            c.gauge("temp", 5, delta=True)      # "+5": statsd delta, DogStatsD keeps last value
            c.gauge("level", 7.25)
            for ms in (10, 20, 30, 40):
                c.timing("db", ms)
            c.timing("db", 50, rate=0.5)        # one sample, weight 2
            with c.timer("block"):
                pass
        finally:
            base.random.random = real_random
        want = {
            ("pys.hits", L(host="py-host")): 1.0,
            ("pys.level", L(host="py-host")): 7.25,
            ("pys.db.max", L(host="py-host")): 50,
            ("pys.db.min", L(host="py-host")): 10,
            ("pys.db.count", L(host="py-host")): 0.6,   # 4 + 2 (rate 0.5) samples / 10 s
        }
        pts = v.wait_points('{__name__=~"pys[.].*",host="py-host"}',
                            lambda p: all(bucket in p.get(k, {}) for k in want), timeout=40)
        check_exact(pts, want, bucket)
        temp = pts[("pys.temp", L(host="py-host"))][bucket]
        assert temp in (5, 25), f"gauge after +5: {temp}"  # 5 (last value) unless gauge_deltas
        assert ("pys.block.count", L(host="py-host")) in pts
        recs = [r for r in a.records() if r.get("metric", "").startswith("pys.db.") and r["ts"] == bucket]
        got = {r["metric"]: r["value"] for r in recs}
        assert got["pys.db.max"] == 50 and got["pys.db.min"] == 10 and got["pys.db.sum"] == 10 + 20 + 30 + 40 + 2 * 50
        assert abs(got["pys.db.avg"] - 200 / 6) < 1e-9 and got["pys.db.count"] == 0.6, got
        assert got["pys.db.median"] in (30, 40, 50), got
        st = a.status()["dogstatsd"]
        assert st["metric_parse_errors"] == 0 and st["rate_out_of_range"] == 0, st
        check_identity(fwd(a))
    finally:
        a.cleanup()


def node():
    n = shutil.which("node") or shutil.which("nodejs")
    if not n:
        raise AssertionError("node is not installed: run scripts/deps.sh --test (apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(CLIENTS, "node_modules", "hot-shots")):
        raise AssertionError(f"hot-shots is not installed: (cd {CLIENTS} && npm install)")
    return n


def run_hotshots(mode, target):
    r = subprocess.run([node(), os.path.join(CLIENTS, "send_hotshots.js"), mode, str(target)],
                       capture_output=True, text=True, timeout=30, cwd=CLIENTS)
    if r.returncode == 3:
        return r.stdout.strip()
    assert r.returncode == 0 and r.stdout.strip() == "sent 19", (r.returncode, r.stdout, r.stderr)
    return None


def hotshots_expect(t, host):
    tags = dict(host=host, app="node", transport=t)
    return {
        ("hs.requests", L(route="/api", **tags)): 0.5,        # 3 + 2 over 10 s
        ("hs.queue_depth", L(**tags)): 17.5,
        ("hs.latency.max", L(**tags)): 50,
        ("hs.latency.min", L(**tags)): 10,
        ("hs.latency.avg", L(**tags)): 30,
        ("hs.latency.sum", L(**tags)): 150,
        ("hs.latency.count", L(**tags)): 0.5,
        ("hs.latency.median", L(**tags)): 30,
        ("hs.users", L(**tags)): 3,
        ("hs.render.max", L(**tags)): 42,
        ("hs.render.count", L(**tags)): 0.1,
    }


def check_hotshots_jsonl(a, t, host):
    ev = [r for r in a.records() if r.get("kind") == "event" and r["title"] == f"hs.deploy {t}"]
    assert len(ev) == 1, ev
    e = ev[0]
    assert (e["text"], e["priority"], e["alert_type"], e["host"]) == ("version 1.2.3 rolled out", "low", "success",
                                                                       host), e
    assert sorted(e["tags"]) == ["app:node", f"transport:{t}"], e
    sc = [r for r in a.records() if r.get("kind") == "service_check" and r["check"] == "hs.service.up"
          and f"transport:{t}" in r["tags"]]
    assert len(sc) == 1 and sc[0]["status"] == 1 and sc[0]["message"] == f"degraded {t}", sc
    sk = [r for r in a.records() if r.get("kind") == "sketch" and r["metric"] == "hs.payload"
          and f"transport:{t}" in r["tags"]]
    assert len(sk) == 1, f"hs.payload sketch for {t}: {sk}"
    k = sk[0]
    assert (k["cnt"], k["min"], k["max"], k["sum"], k["avg"]) == (4, 1, 4, 10, 2.5), k


def test_hotshots_udp_and_uds():
    node()
    v, a = agent_vm_jsonl("hs-host")
    try:
        bucket = wait_bucket_start(7)
        assert run_hotshots("udp", a.port) is None
        skipped = run_hotshots("uds", a.cfg["dogstatsd_socket"])
        if skipped:
            print("  " + skipped)
        transports = ["udp"] + ([] if skipped else ["uds"])
        want = {}
        for t in transports:
            want.update(hotshots_expect(t, "hs-host"))
        pts = v.wait_points('{__name__=~"hs[.].*",host="hs-host"}',
                            lambda p: all(bucket in p.get(k, {}) for k in want), timeout=40)
        check_exact(pts, want, bucket)
        for t in transports:  # distributions reach VictoriaMetrics summarised as series
            dist = {k[0]: pts[k][bucket] for k in pts if k[0].startswith("hs.payload.")
                    and ("transport", t) in k[1] and bucket in pts[k]}
            assert dist.get("hs.payload.max") == 4 and dist.get("hs.payload.min", 1) == 1, (t, dist)
            assert dist.get("hs.payload.count") == 0.4 or dist.get("hs.payload.count") == 4, (t, dist)
        st = a.status()["dogstatsd"]
        assert st["lines"] == 19 * len(transports) and st["metric_parse_errors"] == 0, st
        assert st["event_parse_errors"] == 0 and st["service_check_parse_errors"] == 0, st
        assert st["uds_packets"] == (0 if skipped else 1), st  # hot-shots buffers uds into one datagram
        a.wait_for(lambda s: s["output"]["records"] > 0, what="JSON lines")
        for t in transports:
            check_hotshots_jsonl(a, t, "hs-host")
        check_identity(fwd(a))
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_python_statsd, test_hotshots_udp_and_uds])
