"""test_remote_write.py - more than one intake (README "Several intakes").

- Prometheus 2.42 (Debian's package, loopback, temp storage, remote write
  receiver on) fed by remote_write: names, label sets and values read back
  with its query API and compared exactly (counters per interval and
  cumulative _total, gauges, histogram aggregates, bare and repeated tags).
- VictoriaMetrics' /datadog intake as the main endpoint, a second
  VictoriaMetrics as an additional_endpoints entry and the first one's
  /api/v1/write as remote_write, all from one agent: the same values in each.
- One endpoint down (503) for OUTAGE_SECONDS (30 in CI, 120 by hand: the
  long mode) while the other stays healthy: the healthy one gets every flush
  on time, the down one catches up afterwards; identity per endpoint.
- Remote write faults against fault_intake.py: 500 and 429 (Retry-After)
  retried, 400 and 404 dropped without a retry and counted; headers (snappy,
  version, basic auth, custom) checked; identity asserted.
"""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Agent, Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake, rw_points, series_points  # noqa: E402
from fwdlib import agent_for, check_identity, fwd, wait_bucket_start  # noqa: E402
from prom import Prometheus  # noqa: E402
from vm import VictoriaMetrics  # noqa: E402

OUTAGE = float(os.environ.get("OUTAGE_SECONDS", "30"))


def labels(**kw):
    return frozenset(kw.items())


def rw_agent(rw, extra=None, name="agent"):
    """An agent whose only intake is remote_write (flush every second)."""
    cfg = {"hostname": "rw-host", "remote_write": rw, "forwarder_backoff_base": 0.2,
           "forwarder_backoff_max": 1, "forwarder_stop_timeout": 3, "telemetry_enabled": False,
           "dogstatsd_pipeline_count": 1}
    if extra:
        cfg.update(extra)
    a = Agent(cfg, name=name)
    a.cfg.pop("dogstatsd_output_file", None)
    a.write_config()
    return a


def sections(agent):
    st = agent.status()
    return {k: v for k, v in st.items() if k == "forwarder" or k.startswith("forwarder_")}


def test_prometheus_exact():
    prom = Prometheus()
    a = rw_agent([{"url": prom.write_url, "name": "prom", "headers": {"X-Test": "yes"}}]).start()
    try:
        bucket = wait_bucket_start()
        for line in [
            "rw.cnt:3|c|#env:a,team:x",
            "rw.cnt:2|c|@0.5|#team:x,env:a",          # same context: 3 + 4
            "rw.gauge:1|g|#env:a",
            "rw.gauge:42.5|g|#env:a",                 # last value wins
            "rw.hist:1|h|#env:a\nrw.hist:2|h|#env:a\nrw.hist:3|h|#env:a\nrw.hist:4|h|#env:a\nrw.hist:5|h|#env:a",
            "rw.set:alice|s\nrw.set:bob|s\nrw.set:alice|s\nrw.set:carol|s",
            "rw.tags:7|g|#bare,role:db,role:web,dotted.key:v,9th:x",
            "rw.other:8|g|#host:elsewhere",
        ]:
            a.send(line)
        h = "rw-host"
        want = {
            ("rw_cnt", labels(host=h, env="a", team="x")): 7,
            ("rw_gauge", labels(host=h, env="a")): 42.5,
            ("rw_hist", labels(host=h, env="a", stat="max")): 5,
            ("rw_hist", labels(host=h, env="a", stat="median")): 3,
            ("rw_hist", labels(host=h, env="a", stat="avg")): 3,
            ("rw_hist", labels(host=h, env="a", stat="count")): 5,
            ("rw_set", labels(host=h)): 3,
            ("rw_tags", labels(host=h, bare="true", role="db,web", dotted_key="v", _9th="x")): 7,
            ("rw_other", labels(host="elsewhere")): 8,
        }
        p95 = ("rw_hist", labels(host=h, env="a", quantile="0.95"))

        def complete(p):
            return all(bucket in p.get(k, {}) for k in list(want) + [p95])
        pts = prom.wait_points('{__name__=~"rw_.*"}', complete, timeout=40)
        for k, val in want.items():
            assert pts[k][bucket] == val, f"{k}: {pts[k][bucket]} != {val}"
        assert 4.8 <= pts[p95][bucket] <= 5, pts[p95]
        assert set(pts) == set(want) | {p95}, sorted(set(pts) - set(want))
        # the counter is zero-filled in later buckets, never anything else
        for ts, val in pts[("rw_cnt", labels(host=h, env="a", team="x"))].items():
            assert ts == bucket or val == 0, (ts, val)
        s = fwd(a)
        assert s["remote_write"] == 1 and s["points_delivered"] >= len(want), s
        assert s["points_dropped_http_400"] == 0, "Prometheus refused samples (out of order?)"
        check_identity(s)
    finally:
        a.cleanup()
        prom.stop()


def test_prometheus_cumulative_counters():
    prom = Prometheus()
    a = rw_agent([{"url": prom.write_url}], {"remote_write_counters": "cumulative"}).start()
    try:
        b1 = wait_bucket_start()
        a.send("cum.jobs:4|c|#q:x")
        time.sleep(b1 + 10.5 - time.time())
        a.send("cum.jobs:6|c|#q:x")
        key = ("cum_jobs_total", labels(host="rw-host", q="x"))
        pts = prom.wait_points('cum_jobs_total', lambda p: len(p.get(key, {})) >= 4, timeout=50)
        got = pts[key]
        assert got[b1] == 4 and got[b1 + 10] == 10, got
        # zero-filled buckets keep the total
        assert all(v == 10 for ts, v in got.items() if ts > b1 + 10), got
        check_identity(fwd(a))
    finally:
        a.cleanup()
        prom.stop()


def test_vm_three_endpoints():
    vm1, vm2 = VictoriaMetrics(), VictoriaMetrics()
    a = agent_for(vm1.dd_url, {
        "hostname": "dual-host", "dogstatsd_pipeline_count": 1,
        "additional_endpoints": {vm2.dd_url: ["second-key-0123456789"]},
        "remote_write": [{"url": vm1.base + "/api/v1/write"}]}).start()
    try:
        bucket = wait_bucket_start()
        a.send("dual.cnt:3|c|#env:a\ndual.cnt:4|c|#env:a\ndual.gauge:2.5|g|#env:a")
        keys_dd = [("dual.cnt", labels(host="dual-host", env="a")), ("dual.gauge", labels(host="dual-host", env="a"))]
        keys_rw = [("dual_cnt", labels(host="dual-host", env="a")), ("dual_gauge", labels(host="dual-host", env="a"))]

        def has(keys):
            return lambda p: all(bucket in p.get(k, {}) for k in keys)
        p1 = vm1.wait_points('{__name__=~"dual.*"}', has(keys_dd + keys_rw))
        p2 = vm2.wait_points('{__name__=~"dual.*"}', has(keys_dd))
        for k in keys_dd:
            assert p1[k][bucket] == p2[k][bucket], (k, p1[k], p2[k])
        assert p1[keys_dd[0]][bucket] == 0.7 and p1[keys_dd[1]][bucket] == 2.5
        assert p1[keys_rw[0]][bucket] == 7 and p1[keys_rw[1]][bucket] == 2.5
        secs = sections(a)
        assert set(secs) == {"forwarder", "forwarder_1", "forwarder_2"}, set(secs)
        assert [secs[n]["remote_write"] for n in ("forwarder", "forwarder_1", "forwarder_2")] == [0, 0, 1]
        for s in secs.values():
            assert s["points_delivered"] > 0, s
            check_identity(s)
        assert "second-key-0123456789" not in a.log()
    finally:
        a.cleanup()
        vm1.stop()
        vm2.stop()


def beat_delays(fi):
    """{bucket: seconds from the bucket's end to the arrival of its heartbeat point}"""
    out = {}
    for r in fi.requests("/api/v1/series"):
        for p in series_points(r):
            if p[0] == "beat":
                out.setdefault(p[3], r["t"] - (p[3] + 10))
    return out


def beats(fi):
    return sorted({p[3] for r in fi.requests("/api/v1/series") for p in series_points(r) if p[0] == "beat"})


def test_one_endpoint_down():
    with FaultIntake() as healthy, FaultIntake() as down:
        down.set_script(default={"status": 503})
        a = agent_for(healthy.url, {"additional_endpoints": {down.url: ["down-key-0123456789"]},
                                    "forwarder_backoff_max": 2,
                                    "forwarder_storage_max_size_in_bytes": 50 << 20}).start()
        try:
            t0 = time.time()
            while time.time() - t0 < OUTAGE:
                a.send(f"beat:{int(time.time())}|g")
                time.sleep(0.5)
            # every bucket closed during the outage reached the healthy endpoint on time
            # (flushed at its end + dogstatsd_flush_grace_ms)
            delays = {b: d for b, d in beat_delays(healthy).items() if b + 10 < t0 + OUTAGE}
            assert len(delays) >= int(OUTAGE // 10) - 1, delays
            assert max(delays.values()) < 2, f"healthy endpoint delayed: {delays}"
            s_down = sections(a)["forwarder_1"]
            assert s_down["points_delivered"] == 0 and s_down["points_queued"] > 0, s_down
            check_identity(s_down)
            # its own disk queue directory, next to the main one's
            run = a.cfg["run_path"]
            dirs = sorted(d for d in os.listdir(run) if d.startswith("transactions_to_retry"))
            assert len(dirs) == 2 and dirs[0] == "transactions_to_retry", dirs
            own = [f for f in os.listdir(os.path.join(run, dirs[1])) if f.endswith(".ddq")]
            assert len(own) == s_down["disk_files"] > 0, (own, s_down)
            assert sections(a)["forwarder"]["points_queued"] == 0
            down.set_script(default={"status": 202})

            def caught_up():
                s = sections(a)
                return s["forwarder_1"]["points_queued"] == 0 and s["forwarder"]["points_queued"] == 0 and s
            wait_until(caught_up, 60, "the down endpoint catches up")
            s = sections(a)
            for sec in s.values():
                check_identity(sec)
            dropped = sum(v for k, v in s["forwarder_1"].items() if k.startswith("points_dropped_"))
            assert dropped == 0, s["forwarder_1"]
            assert s["forwarder_1"]["points_delivered"] == s["forwarder"]["points_delivered"], s
            assert beats(down) == beats(healthy), "the recovered endpoint has other buckets"
        finally:
            a.cleanup()


def test_remote_write_faults():
    with FaultIntake() as fi:
        codes = {"rwf_s500": [{"status": 500}], "rwf_s429": [{"status": 429, "retry_after": "2"}],
                 "rwf_s400": [{"status": 400, "body": "out of order sample"}], "rwf_s404": [{"status": 404}]}
        fi.set_script(per_metric=codes, default={"status": 200})
        a = rw_agent([{"url": fi.url + "/api/v1/write", "basic_auth": {"username": "u", "password": "p w"},
                       "headers": {"X-Scope-OrgID": "tenant-1"},
                       "queue_config": {"max_samples_per_send": 1}}]).start()
        try:
            wait_bucket_start(3)
            for m in codes:
                a.send(f"{m}:1|g")

            def attempts():
                out = {}
                for r in fi.requests():
                    for p in rw_points(r):
                        out.setdefault(p[0], []).append((r["t"], r["action"].get("status", 202)))
                return out

            def done():
                at = attempts()
                return (len(at.get("rwf_s500", [])) >= 2 and len(at.get("rwf_s429", [])) >= 2
                        and "rwf_s400" in at and "rwf_s404" in at and at)
            wait_until(done, 30, "every status answered")
            time.sleep(2.5)  # a dropped payload must not come back
            at = attempts()
            assert [s for _, s in at["rwf_s500"]] == [500, 200], at["rwf_s500"]
            assert [s for _, s in at["rwf_s429"]] == [429, 200], at["rwf_s429"]
            assert at["rwf_s429"][1][0] - at["rwf_s429"][0][0] >= 1.9, "Retry-After not honoured"
            assert len(at["rwf_s400"]) == 1 and len(at["rwf_s404"]) == 1, at
            r = fi.requests()[0]
            hd = {k.lower(): v for k, v in r["headers"].items()}
            assert hd["content-encoding"] == "snappy" and hd["content-type"] == "application/x-protobuf"
            assert hd["x-prometheus-remote-write-version"] == "0.1.0"
            assert hd["authorization"] == "Basic " + base64.b64encode(b"u:p w").decode()
            assert hd["x-scope-orgid"] == "tenant-1"
            assert r["error"] is None, r["error"]
            s = fwd(a)
            assert s["points_dropped_http_400"] == 1 and s["points_dropped_http_4xx"] == 1, s
            assert s["payloads_retried"] >= 2
            check_identity(s)
        finally:
            a.cleanup()


def test_outage_keeps_time_order_with_disk_queue():
    """Remote write down for a while with a memory queue of a few payloads:
    most wait on disk. After recovery every series arrives in timestamp order
    (what Prometheus requires), nothing lost."""
    with FaultIntake() as fi:
        fi.set_script(default={"status": 503})
        a = rw_agent([{"url": fi.url + "/api/v1/write", "queue_config": {"max_samples_per_send": 2}}],
                     {"forwarder_storage_max_size_in_bytes": 10 << 20,
                      "forwarder_retry_queue_payloads_max_size": 300}).start()
        try:
            t0 = time.time()
            while time.time() - t0 < min(OUTAGE, 35):
                a.send(f"ord.g:{int(time.time())}|g\nord.c:1|c\nord.h:{int(time.time()) % 7}|g")
                time.sleep(0.5)
            s = fwd(a)
            assert s["disk_files"] > 3 and s["points_delivered"] == 0, s
            fi.set_script(default={"status": 200})
            wait_until(lambda: fwd(a)["points_queued"] == 0, 60, "the queue drains")
            last = {}
            n = 0
            for r in fi.requests():
                if r["action"].get("status") != 200:
                    continue
                for name, lab, ts, _ in rw_points(r):
                    key = (name, lab)
                    if ts <= last.get(key, -1):
                        dump = [(q["t"], q["action"], rw_points(q)) for q in fi.requests()]
                        raise AssertionError(f"{key}: {ts} after {last.get(key)}: {dump}\n{a.log()[-3000:]}")
                    last[key] = ts
                    n += 1
            s = fwd(a)
            check_identity(s)
            assert n == s["points_delivered"] and s["points_submitted"] == n, (n, s)
        finally:
            a.cleanup()


def test_reload_applies_endpoint_settings():
    """SIGHUP: a remote write entry's headers change in place; adding an
    endpoint is reported as needing a restart, the rest still applies."""
    import signal
    with FaultIntake() as fi:
        fi.set_script(default={"status": 200})
        rw = [{"url": fi.url + "/api/v1/write", "headers": {"X-Gen": "1"}}]
        a = rw_agent(rw).start()
        try:
            a.send("rl.g:1|g")
            wait_until(lambda: any(rw_points(r) for r in fi.requests()), 30, "first request")
            assert all(r["headers"].get("X-Gen") == "1" for r in fi.requests())
            a.cfg["remote_write"] = [{"url": fi.url + "/api/v1/write", "headers": {"X-Gen": "2"}}]
            a.write_config()
            a.signal(signal.SIGHUP)
            wait_until(lambda: "reload: configuration" in a.log(), 10, "reload applied")
            fi.clear()
            a.send("rl.g:2|g")
            wait_until(lambda: any(rw_points(r) for r in fi.requests()), 30, "request after reload")
            assert all(r["headers"].get("X-Gen") == "2" for r in fi.requests()), fi.requests()
            a.cfg["additional_endpoints"] = {fi.url: ["k-0123456789"]}
            a.write_config()
            a.signal(signal.SIGHUP)
            wait_until(lambda: "reordering intake endpoints" in a.log(), 10, "restart needed said")
            assert set(sections(a)) == {"forwarder"}
            check_identity(fwd(a))
        finally:
            a.cleanup()


if __name__ == "__main__":
    # listed so that DDMA_PART's shares (meson.build: 3) take about as long
    Runner().run([test_outage_keeps_time_order_with_disk_queue, test_one_endpoint_down,
                  test_prometheus_cumulative_counters, test_prometheus_exact, test_vm_three_endpoints,
                  test_remote_write_faults, test_reload_applies_endpoint_settings])
