"""Issue 3 integration: real UDP traffic in, JSON lines out, values exact.

All traffic of one test is sent inside one 10 s bucket (the test waits for a
fresh bucket first), then the test waits for the bucket to close and reads the
flushed JSON lines written by the embedded default output."""
import time

from agentlib import Agent, Runner


def fresh_bucket():
    """Sleep until at least 7 s remain in the current 10 s bucket."""
    r = time.time() % 10
    if r > 3:
        time.sleep(10 - r + 0.05)
    return int(time.time()) // 10 * 10


def by_name(recs):
    out = {}
    for r in recs:
        if r.get("kind") == "series":
            out.setdefault(r["metric"], []).append(r)
    return out


def wait_records(a, names, timeout=25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = by_name(a.records())
        if all(n in got for n in names):
            return got
        time.sleep(0.2)
    raise AssertionError(f"missing {[n for n in names if n not in by_name(a.records())]}\n{a.log()[-3000:]}")


def test_exact_aggregates():
    a = Agent({"histogram_percentiles": [0.5, 0.95], "histogram_aggregates": ["max", "median", "avg", "count", "min", "sum"],
               "tags": ["team:core"]}).start()
    try:
        bucket = fresh_bucket()
        lines = []
        lines += ["req:1|c|@0.5|#b:2,a:1"] * 4          # 4 * 2 = 8
        lines += ["req:1|c|@0.1|#a:1,b:2,a:1"] * 2       # 2 * 10 = 20 -> same context
        lines += ["temp:10|g", "temp:30|g", "temp:20|g"]  # last = 20
        lines += [f"lat:{v}|h" for v in range(1, 101)]    # 1..100
        lines += ["users:alice|s", "users:bob|s", "users:alice|s", "users:c:d|s"]
        lines += ["hosted:5|g|#host:other", "emptyhost:7|g|#host:"]
        for i in range(0, len(lines), 20):
            a.send("\n".join(lines[i:i + 20]))
        got = wait_records(a, ["req", "temp", "lat.max", "users", "hosted", "emptyhost"])
        req = got["req"]
        assert len(req) == 1, req
        r = req[0]
        assert r["type"] == "rate" and r["interval"] == 10 and r["ts"] == bucket, r
        assert abs(r["value"] - 2.8) < 1e-9, r  # (8 + 20) / 10
        assert r["tags"] == ["a:1", "b:2", "team:core"], r
        assert r["host"] == "test-host"
        assert got["temp"][0]["value"] == 20 and got["temp"][0]["type"] == "gauge"
        assert got["lat.max"][0]["value"] == 100
        assert got["lat.min"][0]["value"] == 1
        assert got["lat.sum"][0]["value"] == 5050
        assert got["lat.avg"][0]["value"] == 50.5
        assert got["lat.median"][0]["value"] == 50, got["lat.median"]   # lower middle
        assert got["lat.count"][0]["value"] == 10 and got["lat.count"][0]["type"] == "rate"  # 100 / 10
        assert got["lat.95percentile"][0]["value"] == 95, got["lat.95percentile"]
        assert got["users"][0]["value"] == 3
        assert got["hosted"][0]["host"] == "other" and "host:other" not in got["hosted"][0]["tags"]
        assert got["emptyhost"][0]["host"] == ""
    finally:
        a.cleanup()


def test_counter_zero_fill_after_stop():
    a = Agent({"dogstatsd_expiry_seconds": 300}).start()
    try:
        bucket = fresh_bucket()
        a.send("zf:5|c")
        deadline = time.time() + 35
        pts = []
        while time.time() < deadline:
            pts = [r for r in a.records() if r.get("metric") == "zf"]
            if len(pts) >= 2:
                break
            time.sleep(0.5)
        assert pts[0]["ts"] == bucket and pts[0]["value"] == 0.5, pts
        assert pts[1]["ts"] == bucket + 10 and pts[1]["value"] == 0, pts
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_exact_aggregates, test_counter_zero_fill_after_stop])
