"""test_parity.py - Datadog parity (issue 19), one test per theme: raw
DogStatsD datagrams sent over UDP to the real dd-mini-agent, the payloads
decoded at fault_intake.py (a capturing intake) and compared field by field
with what Datadog's agent sends for the same input (host, tags, value, type,
interval, timestamp).

One agent serves every theme (each theme its own metric names): the
datagrams go out together at the start of a 10 s bucket, so the whole file
waits for one bucket instead of seven. Distributions go to the sketches
endpoint (forwarder_distributions: sketches), histograms are also copied to
distributions (histogram_copy_to_distribution, prefix "dist.").
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake  # noqa: E402
from fwdlib import agent_for, check_identity, fwd, wait_bucket_start  # noqa: E402

HOST = "fwd-host"  # agent_for's hostname
TS = 1658328888    # the |T timestamp of theme 5

DATAGRAMS = [
    # 1: host: tag on service checks and events; "#host:" = empty host
    "_sc|p1.up|0|#host:localhost\n_sc|p1.empty|1|#host:\n"
    "_e{5,4}:p1.ev|text|#host:evhost,a:b\n_sc|p1.field|0|h:fieldhost|#host:taghost,t",
    # 2: origin-detection tags are metadata, not tags
    "p2.g:7|g|#a:b,dd.internal.entity_id:pod1,dd.internal.card:high\n"
    "_sc|p2.up|0|#dd.internal.entity_id:x,c:d\n_e{5,1}:p2.ev|x|#dd.internal.card:low",
    # 3: a service check's m: ends at the next field
    "_sc|p3.up|0|d:12345|h:localhost|m:this is fine|#a:b,c:d",
    # 4: histogram sample rates
    "p4.h:666|h|@0.21",
    # 5: |T samples
    f"p5.c:666|c|@0.5|T{TS}\np5.g:3|g|T{TS}\np5.d:1:2:3|d|T{TS}\n"
    f"p5.h:1|h|T{TS}\np5.ms:1|ms|T{TS}\np5.s:x|s|T{TS}",
    # 6: histogram_copy_to_distribution
    "p6.h:10|h|#x:y\np6.ms:20|ms",
    # 7: non-finite results never reach the intake
    "p7.c:1e308|c\np7.c:1e308|c\np7.r:1|c|@1e-320\np7.ok:1|c",
]

CFG = {
    "histogram_aggregates": ["max", "median", "avg", "count", "min", "sum"],
    "histogram_percentiles": [0.95],
    "forwarder_distributions": "sketches",
    "histogram_copy_to_distribution": True,
    "histogram_copy_to_distribution_prefix": "dist.",
}

state = {}


def all_series(fi):
    out = []
    for r in fi.requests("/api/v1/series"):
        for s in (r["body"] or {}).get("series", []):
            for ts, v in s["points"]:
                out.append({"metric": s["metric"], "host": s.get("host", ""), "tags": s.get("tags", []),
                            "type": s["type"], "interval": s.get("interval", 0), "ts": ts, "value": v})
    return out


def all_sketches(fi):
    out = []
    for r in fi.requests("/api/beta/sketches"):
        for s in (r["body"] or {}).get("sketches", []):
            for d in s["dogsketches"]:
                out.append({"metric": s["metric"], "host": s["host"], "tags": s["tags"], "ts": d["ts"],
                            "cnt": d["cnt"], "min": d["min"], "max": d["max"], "sum": d["sum"],
                            "avg": d["avg"], "n": sum(d["n"])})
    return out


def all_checks(fi):
    out = []
    for r in fi.requests("/api/v1/check_run"):
        out += r["body"] or []
    return out


def all_events(fi):
    out = []
    for r in fi.requests("/intake/"):
        for evs in ((r["body"] or {}).get("events") or {}).values():
            out += evs
    return out


def named(recs, prefix, key="metric"):
    return sorted((x for x in recs if x[key].startswith(prefix)), key=lambda x: (x[key], x.get("ts", 0)))


def setup():
    fi = FaultIntake().start()
    a = agent_for(fi.url, CFG).start()
    bucket = wait_bucket_start(6)
    for d in DATAGRAMS:
        a.send(d)

    def complete():
        names = {s["metric"] for s in all_series(fi)}
        sk = {s["metric"] for s in all_sketches(fi)}
        return ({"p2.g", "p4.h.count", "p5.c", "p5.g", "p6.h.count", "p7.ok"} <= names and
                {"p5.d", "dist.p6.h", "dist.p6.ms"} <= sk and len(all_checks(fi)) >= 5 and
                len(all_events(fi)) >= 2)
    wait_until(complete, 40, "every theme's records at the intake")
    state.update(fi=fi, agent=a, bucket=bucket)


def teardown():
    if "agent" in state:
        state["agent"].cleanup()
    if "fi" in state:
        state["fi"].stop()


def check(name):
    c = [x for x in all_checks(state["fi"]) if x["check"] == name]
    assert len(c) == 1, f"{name}: {c}"
    return c[0]


def event(title):
    e = [x for x in all_events(state["fi"]) if x["msg_title"] == title]
    assert len(e) == 1, f"{title}: {e}"
    return e[0]


def test_theme1_host_tag_on_events_and_checks():
    c = check("p1.up")
    assert (c["host_name"], c["tags"], c["status"]) == ("localhost", [], 0), c
    c = check("p1.empty")
    assert (c["host_name"], c["tags"], c["status"]) == ("", [], 1), c
    c = check("p1.field")  # a non-empty h: wins, the host: tag is still removed
    assert (c["host_name"], c["tags"]) == ("fieldhost", ["t"]), c
    e = event("p1.ev")
    assert (e["host"], e["tags"], e["msg_text"]) == ("evhost", ["a:b"], "text"), e


def test_theme2_internal_origin_tags_stripped():
    s = named(all_series(state["fi"]), "p2.")
    assert s == [{"metric": "p2.g", "host": HOST, "tags": ["a:b"], "type": "gauge", "interval": 0,
                  "ts": state["bucket"], "value": 7}], s
    c = check("p2.up")
    assert (c["host_name"], c["tags"]) == (HOST, ["c:d"]), c
    e = event("p2.ev")
    assert (e["host"], e["tags"]) == (HOST, []), e


def test_theme3_service_check_message_ends_at_next_field():
    c = check("p3.up")
    assert c == {"check": "p3.up", "host_name": "localhost", "timestamp": 12345, "status": 0,
                 "message": "this is fine", "tags": ["a:b", "c:d"]}, c


def test_theme4_histogram_sample_rate():
    b = state["bucket"]
    inv = 1 / 0.21
    total = 666 * inv
    want = {"p4.h.max": ("gauge", 666), "p4.h.median": ("gauge", 666), "p4.h.min": ("gauge", 666),
            "p4.h.avg": ("gauge", total / 4), "p4.h.sum": ("gauge", total),
            "p4.h.count": ("rate", 0.4), "p4.h.95percentile": ("gauge", 666)}
    s = named(all_series(state["fi"]), "p4.")
    got = {x["metric"]: x for x in s}
    assert sorted(got) == sorted(want), sorted(got)
    for name, (kind, v) in want.items():
        x = got[name]
        assert (x["type"], x["host"], x["tags"], x["ts"], x["value"]) == (kind, HOST, [], b, v), x
        assert x["interval"] == (10 if kind == "rate" else 0), x
    assert abs(got["p4.h.avg"]["value"] - 792.857142857143) < 1e-9


def test_theme5_timestamped_samples():
    s = named(all_series(state["fi"]), "p5.")
    assert s == [
        {"metric": "p5.c", "host": HOST, "tags": [], "type": "rate", "interval": 10, "ts": TS, "value": 66.6},
        {"metric": "p5.g", "host": HOST, "tags": [], "type": "gauge", "interval": 10, "ts": TS, "value": 3},
    ], s
    sk = named(all_sketches(state["fi"]), "p5.")
    assert sk == [{"metric": "p5.d", "host": HOST, "tags": [], "ts": TS, "cnt": 3, "min": 1, "max": 3,
                   "sum": 6, "avg": 2, "n": 3}], sk
    # p5.h, p5.ms and p5.s are discarded (their distribution copies are theme 6's rule)
    st = state["agent"].status()["aggregator"]["dropped"]
    assert st["timestamped_type"] == 3, st
    copies = named(all_sketches(state["fi"]), "dist.p5.")
    assert [(x["metric"], x["ts"], x["cnt"]) for x in copies] == [("dist.p5.h", TS, 1), ("dist.p5.ms", TS, 1)]


def test_theme6_histogram_copy_to_distribution():
    b = state["bucket"]
    sk = named(all_sketches(state["fi"]), "dist.p6.")
    assert sk == [
        {"metric": "dist.p6.h", "host": HOST, "tags": ["x:y"], "ts": b, "cnt": 1, "min": 10, "max": 10,
         "sum": 10, "avg": 10, "n": 1},
        {"metric": "dist.p6.ms", "host": HOST, "tags": [], "ts": b, "cnt": 1, "min": 20, "max": 20,
         "sum": 20, "avg": 20, "n": 1},
    ], sk
    names = {x["metric"] for x in all_series(state["fi"])}
    assert {"p6.h.max", "p6.h.count", "p6.ms.max", "p6.ms.count"} <= names, names
    assert not named(all_sketches(state["fi"]), "p6."), "the histogram itself became a sketch"


def test_theme7_non_finite_never_reaches_the_intake():
    s = named(all_series(state["fi"]), "p7.")
    assert s == [{"metric": "p7.ok", "host": HOST, "tags": [], "type": "rate", "interval": 10,
                  "ts": state["bucket"], "value": 0.1}], s
    for x in all_series(state["fi"]):
        assert isinstance(x["value"], (int, float)) and math.isfinite(x["value"]), x
    a = state["agent"]
    st = a.wait_for(lambda s: s["aggregator"]["dropped"]["non_finite"] >= 2, what="non_finite drops")
    assert st["aggregator"]["dropped"]["non_finite"] == 2, st["aggregator"]
    f = fwd(a)
    assert f.get("points_dropped_non_finite", 0) == 0, f  # caught before the encoder
    check_identity(f)


if __name__ == "__main__":
    tests = [test_theme1_host_tag_on_events_and_checks, test_theme2_internal_origin_tags_stripped,
             test_theme3_service_check_message_ends_at_next_field, test_theme4_histogram_sample_rate,
             test_theme5_timestamped_samples, test_theme6_histogram_copy_to_distribution,
             test_theme7_non_finite_never_reaches_the_intake]
    try:
        setup()
    except Exception:
        teardown()
        raise
    try:
        Runner().run(tests)
    finally:
        teardown()
