"""test_fleet.py - a fleet that adds up (README "Scaling out").

FLEET_AGENTS agents (20) with distinct hostnames on this machine, each with
its own load (different contexts and values), all shipping to one
VictoriaMetrics twice at once: through its Datadog intake (the main
endpoint) and through its Prometheus remote write endpoint (remote_write).
For every bucket the totals per metric across the fleet at the backend
equal what was sent, on both paths, and every endpoint of every agent keeps
its accounting identity. Prints the per-node payload sizes and request rates
that README's scaling section quotes.

CI mode: FLEET_BUCKETS=1 (one 10 s bucket). Long mode by hand:
FLEET_BUCKETS=6 FLEET_AGENTS=20 (a minute of load); FLEET_ROUTES=1500 gives each
node about 1000 counter contexts (the payload sizes README quotes).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner  # noqa: E402
from fwdlib import agent_for, check_identity, wait_bucket_start  # noqa: E402
from vm import VictoriaMetrics  # noqa: E402

AGENTS = int(os.environ.get("FLEET_AGENTS", "20"))
BUCKETS = int(os.environ.get("FLEET_BUCKETS", "1"))
ROUTES = int(os.environ.get("FLEET_ROUTES", "25"))  # counter contexts per node: 2/3 of them


def load_of(i, b):
    """Agent i's lines for bucket number b and what they add up to."""
    lines, sent = [], {}
    for r in range(ROUTES):
        if (r + i) % 3 == 0:
            continue  # each node has its own set of contexts
        v = (r * 7 + i * 3 + b) % 11 + 1
        lines.append(f"fleet.req:{v}|c|#route:r{r}")
        sent["req"] = sent.get("req", 0) + v
    for k in range(i % 4 + 1):
        lines.append(f"fleet.lat:{10 * (k + 1) + i}|ms")
    sent["lat_count"] = i % 4 + 1
    lines.append(f"fleet.load:{i + b}|g")
    sent["load"] = i + b
    return lines, sent


def send_all(agent, lines):
    chunk = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == 20:
            agent.send("\n".join(chunk))
            chunk = []
    if chunk:
        agent.send("\n".join(chunk))


def by_bucket(points, name):
    """{bucket ts: sum over series named `name`} from VictoriaMetrics points."""
    out = {}
    for (n, _), d in points.items():
        if n == name:
            for ts, v in d.items():
                out[ts] = out.get(ts, 0) + v
    return out


def test_fleet_totals():
    v = VictoriaMetrics()
    agents = []
    try:
        for i in range(AGENTS):
            agents.append(agent_for(v.dd_url, {
                "hostname": f"fleet-{i:03d}", "dogstatsd_pipeline_count": 1,
                "remote_write": [{"url": v.base + "/api/v1/write"}]}, name=f"f{i}").start())
        want = {}
        first = None
        for b in range(BUCKETS):
            bucket = wait_bucket_start()
            while bucket in want:  # one bucket per round
                time.sleep(0.2)
                bucket = wait_bucket_start()
            first = first if first is not None else bucket
            tot = {"req": 0, "lat_count": 0, "load": 0}
            for i, a in enumerate(agents):
                lines, sent = load_of(i, b)
                send_all(a, lines)
                for k in tot:
                    tot[k] += sent[k]
            want[bucket] = tot

        def complete(p):
            rw = by_bucket(p, "fleet_load")
            dd = by_bucket(p, "fleet.load")
            return all(rw.get(b) == t["load"] and abs(dd.get(b, -1) - t["load"]) < 1e-9
                       for b, t in want.items())
        pts = v.wait_points('{__name__=~"fleet.*"}', complete, timeout=60)
        dd_req, rw_req = by_bucket(pts, "fleet.req"), by_bucket(pts, "fleet_req")
        hosts = {dict(k[1]).get("host") for k in pts}
        assert hosts == {f"fleet-{i:03d}" for i in range(AGENTS)}, sorted(hosts)
        rw_lat = {}
        for (n, lab), d in pts.items():
            if n == "fleet_lat" and dict(lab).get("stat") == "count":
                for ts, x in d.items():
                    rw_lat[ts] = rw_lat.get(ts, 0) + x
        for b, t in want.items():
            assert rw_req[b] == t["req"], f"remote write: {rw_req[b]} != {t['req']} (bucket {b})"
            assert abs(dd_req[b] * 10 - t["req"]) < 1e-6, f"datadog: {dd_req[b] * 10} != {t['req']}"
            assert rw_lat[b] == t["lat_count"], (rw_lat[b], t)
        # the numbers README's scaling section quotes
        per = {"dd": [], "rw": []}
        for a in agents:
            st = a.status()
            for sec, kind in (("forwarder", "dd"), ("forwarder_1", "rw")):
                s = st[sec]
                check_identity(s)
                assert s["points_dropped_http_400"] == 0 and s["points_queued"] == 0, s
                per[kind].append(s)
        secs = max(1.0, time.time() - first)
        report = {}
        for kind, ss in per.items():
            payloads = sum(s["payloads_delivered"] for s in ss)
            nbytes = sum(s["bytes_sent"] for s in ss)
            points = sum(s["points_delivered"] for s in ss)
            report[kind] = {"agents": len(ss), "seconds": round(secs, 1),
                            "payloads_per_node_per_10s": round(payloads / len(ss) / (secs / 10), 2),
                            "bytes_per_payload": round(nbytes / max(1, payloads)),
                            "bytes_per_point": round(nbytes / max(1, points), 1),
                            "points_per_node_per_10s": round(points / len(ss) / (secs / 10), 1)}
        print("FLEET " + json.dumps(report), flush=True)
    finally:
        for a in agents:
            a.cleanup()
        v.stop()


if __name__ == "__main__":
    Runner().run([test_fleet_totals])
