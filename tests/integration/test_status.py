"""test_status.py - the status surface of the running daemon (issue 6 items
2 and 3): known traffic (packets, lines per type, one line per parse error
reason, events, checks, a truncated datagram, a UDS packet, one metric with an
instance_id tag that is the top offender), then EVERY field of /status
compared to the expected value; /metrics parsed line by line and matched to
/status; /health; the `dd-mini-agent status` summary with top metrics,
forwarder and alerts sections; the endpoint bound to loopback only; the
dd_mini_agent.* self metrics in the JSON lines and at a VictoriaMetrics
intake equal to the status counters.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import BIN, Agent, Runner  # noqa: E402
from fault_intake import FaultIntake  # noqa: E402
from fwdlib import agent_for, fwd  # noqa: E402

BUF = 512
LIMITS = {"dogstatsd_buffer_size": BUF, "dogstatsd_max_name_length": 64,
          "dogstatsd_max_tags_per_message": 4, "dogstatsd_max_tag_length": 32,
          "dogstatsd_max_values_per_message": 4}

# one line per parse error reason (docs/DOGSTATSD.md); every reason must be listed
ERRORS = {
    "empty_name": b":1|c",
    "no_value": b"st.e1",
    "bad_value": b"st.e2:abc|c",
    "nan_inf": b"st.e3:nan|g",
    "no_type": b"st.e4:1",
    "bad_type": b"st.e5:1|zz",
    "bad_sample_rate": b"st.e6:1|c|@abc",
    "bad_timestamp": b"st.e7:1|g|Tabc",
    "name_too_long": b"n" * 70 + b":1|c",
    "too_many_tags": b"st.e8:1|c|#a,b,c,d,e",
    "tag_too_long": b"st.e9:1|c|#" + b"t" * 40,
    "too_many_values": b"st.e10:1:2:3:4:5|h",
    "nul_byte": b"st.e11:1\x00|c",
    "invalid_utf8": b"st.\xff:1|c",
    "event_header": b"_e{x,y}:a|b",
    "event_length": b"_e{10,4}:tit|text",
    "event_empty_title": b"_e{0,4}:|text",
    "check_format": b"_sc|svc",
    "check_empty_name": b"_sc||0",
    "check_status": b"_sc|svc|7",
}
EVENT_ERRORS = {"event_header", "event_length", "event_empty_title"}
CHECK_ERRORS = {"check_format", "check_empty_name", "check_status"}
TOP_N = 25  # contexts of st.req, one per instance_id


def send_known(a):
    """The known traffic; returns (udp datagrams, uds datagrams, truncated)."""
    req = [f"st.req:1|c|#instance_id:i-{k:04d},env:prod".encode() for k in range(TOP_N)]
    udp = [b"\n".join(req[i:i + 9]) for i in range(0, TOP_N, 9)] + [
        b"st.gauge:5|g|#env:prod\nst.timer:12|ms|@0.5\nst.hist:1:2:3|h\nst.dist:7|d\n"
        b"st.set:u1|s\nst.set:u2|s\nst.cnt:2|c|@2",
        b"_e{5,4}:title|text|#k:v\n_sc|svc.up|0|m:ok",
        b"\n".join(v for k, v in ERRORS.items() if k not in EVENT_ERRORS | CHECK_ERRORS),
        b"\n".join(v for k, v in ERRORS.items() if k in EVENT_ERRORS | CHECK_ERRORS),
    ]
    for d in udp:
        assert len(d) <= BUF, len(d)
        a.send(d)
    trunc = b"y" * (BUF + 88)
    a.send(trunc)
    uds = [b"st.uds:1|c"]
    for d in uds:
        a.send_uds(d)
    return udp, uds, trunc


def expected_status(udp, uds):
    samples = {"count": TOP_N + 1 + 1, "gauge": 1, "timing": 1, "histogram": 3, "set": 2, "distribution": 1}
    errs = {k: 1 for k in ERRORS}
    n_err_metric = len(ERRORS) - len(EVENT_ERRORS) - len(CHECK_ERRORS)
    dsd = {
        "packets": len(udp) + 1 + len(uds), "udp_packets": len(udp) + 1,
        "uds_packets": len(uds), "uds_bytes": sum(map(len, uds)),
        "truncated": 1, "kernel_drops": 0, "recv_errors": 0,
        "lines": TOP_N + 7 + 2 + len(ERRORS) + 1, "metric_lines": TOP_N + 7 + 1,
        "events": 1, "service_checks": 1, "rate_out_of_range": 1,
        "metric_parse_errors": n_err_metric, "event_parse_errors": len(EVENT_ERRORS),
        "service_check_parse_errors": len(CHECK_ERRORS), "samples": samples, "parse_errors": errs,
        # what reached the parser: every datagram but the truncated one
        "datagrams_parsed": len(udp) + len(uds), "bytes_parsed": sum(map(len, udp)) + sum(map(len, uds)),
    }
    ctx = TOP_N + 6 + 1
    aggr = {"samples": sum(samples.values()), "contexts": ctx, "contexts_created": ctx,
            "contexts_expired": 0, "series_flushed": 0, "sketches_flushed": 0, "events": 1,
            "service_checks": 1,
            # every line is sent once: the seen-line cache learns a line on its second sighting
            "seen_cache_hits": 0, "seen_cache_entries": 0,
            "tag_limited_samples": 0, "tags_excluded": 0, "limited_tag_keys": 0, "limited_tags": [],
            "dropped": {"context_cap": 0, "metric_cap": 0, "timestamped_type": 0, "nomem": 0,
                        "pending_cap": 0, "non_finite": 0, "tag_limit": 0, "memory_limit": 0,
                        "clock_range": 0}}
    return dsd, aggr


def status_agent(extra=None):
    cfg = dict(LIMITS)
    cfg["dogstatsd_flush_interval"] = 60  # no flush during the test: every counter is exact
    cfg["telemetry_enabled"] = False
    a = Agent(cfg)
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    if extra:
        a.cfg.update(extra)
    a.write_config()
    return a


def check_every_field(st, udp, uds, trunc):
    dsd, aggr = expected_status(udp, uds)
    want_top = {"st.req": TOP_N}
    want_top.update({m: 1 for m in ("st.gauge", "st.timer", "st.hist", "st.dist", "st.set", "st.cnt", "st.uds")})
    assert sorted(st) == sorted(["version", "hostname", "now", "uptime_s", "flushes", "last_flush_duration_s",
                                 "last_flush_cpu_s",
                                 "dogstatsd", "aggregator", "alerts", "notifications", "output", "agent",
                                 "alert_states", "pipelines"]), sorted(st)
    assert re.fullmatch(r"\d+\.\d+\.\d+", st["version"]), st["version"]
    assert st["hostname"] == "test-host"
    assert abs(st["now"] - time.time()) < 3, st["now"]
    assert 0 <= st["uptime_s"] < 60 and st["flushes"] == 0 and st["last_flush_duration_s"] == 0, st
    assert st["last_flush_cpu_s"] == 0, st
    d = dict(st["dogstatsd"])
    assert d.pop("sockets") >= 2, st["dogstatsd"]  # a UDP socket per pipeline and bind address, the UDS one
    udp_bytes = d.pop("udp_bytes")
    # the truncated datagram counts what was read of it (buffer size, +1 to detect it) or its size
    assert udp_bytes - sum(map(len, udp)) in (BUF, BUF + 1, len(trunc)), (udp_bytes, sum(map(len, udp)))
    assert d.pop("bytes") == udp_bytes + dsd["uds_bytes"]
    assert d == dsd, f"dogstatsd:\n got  {d}\n want {dsd}"
    g = dict(st["aggregator"])
    assert 1000 < g.pop("memory_bytes") < 64 << 20
    top = g.pop("top")
    assert g == aggr, f"aggregator:\n got  {g}\n want {aggr}"
    want0 = {"metric": "st.req", "contexts": TOP_N, "refused": 0, "top_tag_key": "instance_id",
             "top_tag_values": TOP_N}
    if int(os.environ.get("DDMA_TEST_PIPELINES", "1")) > 1:
        # distinct tag values of one pipeline: with several, the best pipeline's
        # count (documented in agent.c agent_top), not the union's
        assert 0 < top[0]["top_tag_values"] <= TOP_N, top[0]
        want0["top_tag_values"] = top[0]["top_tag_values"]
    assert top[0] == want0, top[0]
    assert len(top) == len(want_top) and {t["metric"]: t["contexts"] for t in top} == want_top, top
    for t in top[1:]:
        assert t["refused"] == 0 and t["top_tag_key"] in ("", "env") and t["top_tag_values"] <= 1, t
    al = dict(st["alerts"])
    assert al.pop("memory_bytes") > 0, st["alerts"]
    assert al == {k: 0 for k in ("instances", "evals", "transitions", "groups_refused", "points_in",
                                 "points_dropped", "state_writes", "state_write_errors", "state_points_skipped",
                                 "restored", "points_restored")}, st["alerts"]
    assert st["notifications"] == {k: 0 for k in ("sent", "failed", "expired", "suppressed", "retried",
                                                   "rate_limited", "dropped", "queued")}, st["notifications"]
    assert st["output"] == {"batches": 0, "records": 0, "write_errors": 0}, st["output"]
    assert st["agent"] == {"reloads": 0, "reload_errors": 0}, st["agent"]
    assert st["alert_states"] == []
    p = dict(st["pipelines"])
    n = int(os.environ.get("DDMA_TEST_PIPELINES", "1"))
    assert p.pop("count") == n and p.pop("records_merged") == 0, st["pipelines"]
    assert p.pop("collects") == 0 and p.pop("last_collect_s") == 0, st["pipelines"]
    assert sorted(p) == [f"p{i}_lines" for i in range(n)], st["pipelines"]
    assert sum(p.values()) == st["dogstatsd"]["lines"], st["pipelines"]


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? '
                       r'(-?[0-9.eE+-]+|NaN|[+-]Inf)$')
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; every line must be a comment or a sample."""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            continue
        m = PROM_LINE.match(ln)
        assert m, f"/metrics: not a Prometheus line: {ln!r}"
        labels = frozenset(PROM_LABEL.findall(m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in out, f"duplicate sample {key}"
        out[key] = float(m.group(4))
    return out


def check_prometheus(text, st):
    p = parse_prometheus(text)
    d, g = st["dogstatsd"], st["aggregator"]

    def v(name, **labels):
        return p.pop(("dd_mini_agent_" + name, frozenset(labels.items())))
    assert v("packets_total", transport="udp") == d["udp_packets"]
    assert v("packets_total", transport="uds") == d["uds_packets"]
    assert v("bytes_total", transport="udp") == d["udp_bytes"]
    assert v("bytes_total", transport="uds") == d["uds_bytes"]
    assert v("truncated_datagrams_total") == d["truncated"]
    assert v("kernel_drops_total") == d["kernel_drops"]
    assert v("recv_errors_total") == d["recv_errors"]
    assert v("lines_total") == d["lines"]
    for t, n in d["samples"].items():
        assert v("samples_total", type=t) == n, t
    assert v("events_total") == d["events"]
    assert v("service_checks_total") == d["service_checks"]
    for r, n in d["parse_errors"].items():
        assert v("parse_errors_total", reason=r) == n, r
    assert v("contexts") == g["contexts"]
    for r, n in g["dropped"].items():
        assert v("aggregator_dropped_total", reason=r) == n, r
    for t in g["top"]:
        assert v("metric_contexts", metric=t["metric"], top_tag_key=t["top_tag_key"]) == t["contexts"]
    assert v("flushes_total") == st["flushes"]
    for sec in ("alerts", "notifications", "output", "agent", "forwarder", "pipelines"):
        for k, n in st.get(sec, {}).items():
            assert v(f"{sec}_{k}") == n, (sec, k)
    assert not p, f"/metrics has samples /status does not explain: {sorted(p)}"


def test_every_status_field():
    a = status_agent().start()
    try:
        udp, uds, trunc = send_known(a)
        want_lines = expected_status(udp, uds)[0]["lines"]
        a.wait_for(lambda s: s["dogstatsd"]["lines"] >= want_lines and s["dogstatsd"]["truncated"] >= 1,
                   what="all known traffic")
        time.sleep(0.2)
        st = a.status()
        check_every_field(st, udp, uds, trunc)
        check_prometheus(a.get("/metrics"), st)
        assert a.get("/health") == "ok\n"
        r = subprocess.run([BIN, "status", "--config", a.config_path], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        d = st["dogstatsd"]
        for label, value in (("UDP packets", d["udp_packets"]), ("UDS packets", 1), ("Truncated datagrams", 1),
                             ("Lines", d["lines"]), ("Metric lines", d["metric_lines"]), ("Events", 1),
                             ("Service checks", 1), ("Parse errors", len(ERRORS)), ("Metric parse errors", 14),
                             ("Event parse errors", 3), ("Service check parse errors", 3),
                             ("Contexts", TOP_N + 7), ("Contexts created", TOP_N + 7), ("Contexts expired", 0)):
            assert re.search(rf"^  {label} +{value}$", out, re.M), f"status output lacks {label} {value}:\n{out}"
        assert "\nDogStatsD\n=========\n" in out and "\nAggregator\n==========\n" in out, out
        assert "\nTop metrics by contexts\n=======================\n" in out, out
        for reason in ERRORS:
            assert re.search(rf"^    {reason} +1$", out, re.M), f"no line for {reason}:\n{out}"
        values = TOP_N if int(os.environ.get("DDMA_TEST_PIPELINES", "1")) == 1 else r"\d+"
        assert re.search(rf"^  st\.req +{TOP_N} contexts +refused 0 +top tag: instance_id \({values} values\)$",
                         out, re.M), out
        # one layout: every row under a title has its value at one column, in its unit, rounded
        rows = [ln for ln in out.splitlines() if ln.startswith("  ") and "contexts  refused" not in ln]
        assert rows and all(ln[32] == " " and ln[33] != " " for ln in rows), out
        assert not re.search(r"\d[eE][+-]?\d", out), out
        assert re.search(r"^  Memory +\d+\.\d (KiB|MiB)$", out, re.M), out
        assert re.search(r"^  Last collect +0 s$", out, re.M), out
        assert out.index("st.req") < out.index("st.gauge"), "top offender not first"
    finally:
        a.cleanup()


RULE = """rules:
  - name: st_gauge_high
    query: "last(last_10s):avg:st.alert{*} by {host} > 10"
    notify: [hook]
"""


def test_status_command_forwarder_and_alerts():
    with FaultIntake() as fi:
        a = agent_for(fi.url)
        alerts = os.path.join(a.dir, "alerts.d")
        os.makedirs(alerts)
        with open(os.path.join(alerts, "r.yaml"), "w") as f:
            f.write(RULE)
        a.cfg["alerts_dir"] = alerts
        a.cfg["notifiers_file"] = os.path.join(a.dir, "notifiers.yaml")
        with open(a.cfg["notifiers_file"], "w") as f:
            f.write(f'notifiers:\n  hook: {{type: webhook, url: "{fi.url}/hook"}}\n')
        a.write_config()
        a.start()
        try:
            for _ in range(40):  # a gauge above the threshold until the rule fires
                a.send("st.alert:50|g")
                st = a.status()
                if st["alert_states"] and "CRITICAL" in st["alert_states"][0]:
                    break
                time.sleep(0.5)
            st = a.status()
            assert st["alert_states"] and "st_gauge_high" in st["alert_states"][0], st["alert_states"]
            f = fwd(a)
            r = subprocess.run([BIN, "status", "--config", a.config_path], capture_output=True, text=True,
                               timeout=20)
            assert r.returncode == 0, r.stderr
            out = r.stdout
            assert "\nForwarder\n=========\n" in out and re.search(r"^  Points delivered +\d+$", out, re.M), out
            assert re.search(r"^  Payloads delivered +[1-9]\d*$", out, re.M) and f["payloads_delivered"] >= 1, (f, out)
            assert re.search(r"^  Queue bytes +\d+(\.\d)? (B|KiB|MiB)$", out, re.M), out
            assert "\nAlert states\n============\n  st_gauge_high {host:fwd-host} CRITICAL value=50" in out, out
            assert "\nAlerts\n======\n" in out and "\nNotifications\n=============\n" in out, out
        finally:
            a.cleanup()


def non_loopback_ipv4():
    """An IPv4 address of this machine that is not loopback, or None (no packet is sent)."""
    for probe in ("10.255.255.255", "192.0.2.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))
            ip = s.getsockname()[0]
            if not ip.startswith("127.") and ip != "0.0.0.0":
                return ip
        except OSError:
            pass
        finally:
            s.close()
    return None


def tcp_listen_addrs(port):
    out = []
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for ln in f:
                    cols = ln.split()
                    addr, p = cols[1].split(":")
                    if int(p, 16) == port and cols[3] == "0A":
                        out.append(addr)
        except FileNotFoundError:
            pass
    return out


def test_status_binds_loopback_only():
    a = Agent()
    a.cfg.pop("status_host", None)  # the default
    a.write_config()
    a.start()
    try:
        assert tcp_listen_addrs(a.status_port) == ["0100007F"], tcp_listen_addrs(a.status_port)
        ip = non_loopback_ipv4()
        if ip is None:
            print("  (no non-loopback IPv4 address here: checked /proc/net/tcp only)")
            return
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((ip, a.status_port))
            raise AssertionError(f"status endpoint reachable on {ip}")
        except (ConnectionRefusedError, socket.timeout):
            pass
        finally:
            s.close()
    finally:
        a.cleanup()


def telemetry_sums(records):
    """{(metric, tags tuple): sum of values} of the dd_mini_agent.* count series."""
    out = {}
    for r in records:
        if r.get("kind") == "series" and r["metric"].startswith("dd_mini_agent.") and r["type"] == "count":
            k = (r["metric"], tuple(r["tags"]))
            out[k] = out.get(k, 0) + r["value"]
    return out


def check_telemetry_matches(sums, st):
    d = st["dogstatsd"]
    want = {("dd_mini_agent.dogstatsd.lines", ()): d["lines"],
            ("dd_mini_agent.dogstatsd.events", ()): d["events"],
            ("dd_mini_agent.dogstatsd.service_checks", ()): d["service_checks"],
            ("dd_mini_agent.dogstatsd.packets", ("transport:udp",)): d["udp_packets"],
            ("dd_mini_agent.dogstatsd.packets", ("transport:uds",)): d["uds_packets"],
            ("dd_mini_agent.dogstatsd.bytes", ("transport:udp",)): d["udp_bytes"],
            ("dd_mini_agent.dogstatsd.bytes", ("transport:uds",)): d["uds_bytes"],
            ("dd_mini_agent.dogstatsd.truncated", ()): d["truncated"]}
    for t, n in d["samples"].items():
        want[("dd_mini_agent.dogstatsd.samples", (f"type:{t}",))] = n
    for r, n in d["parse_errors"].items():
        want[("dd_mini_agent.dogstatsd.parse_errors", (f"reason:{r}",))] = n
    want = {k: v for k, v in want.items() if v}  # zero deltas are not emitted
    got = {k: v for k, v in sums.items() if k[0].startswith("dd_mini_agent.dogstatsd.")}
    assert got == want, f"self metrics != status counters:\n got  {sorted(got.items())}\n want {sorted(want.items())}"


def test_self_telemetry_jsonl():
    a = Agent(dict(LIMITS, telemetry_enabled=True))
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    a.write_config()
    a.start()
    try:
        for phase in range(2):  # two phases: the series are deltas between flushes
            send_known(a)
            lines = a.status()["dogstatsd"]["lines"]
            a.wait_for(lambda s: s["dogstatsd"]["lines"] >= lines, what="traffic")
            time.sleep(0.3)
            st = a.status()
            flushes = st["flushes"]
            a.wait_for(lambda s: s["flushes"] >= flushes + 2, what="two flushes")
            check_telemetry_matches(telemetry_sums(a.records()), st)
            s2 = a.status()  # the flush's main-thread CPU: some, and within its wall time
            assert 0 < s2["last_flush_cpu_s"] <= s2["last_flush_duration_s"] + 0.005, s2
        gauges = [r for r in a.records() if r.get("metric") == "dd_mini_agent.aggregator.contexts"]
        assert gauges and gauges[-1]["value"] == a.status()["aggregator"]["contexts"], gauges[-1:]
        assert all(r["host"] == "test-host" for r in a.records() if r.get("metric", "").startswith("dd_mini_agent."))
    finally:
        a.cleanup()


def test_self_telemetry_at_victoriametrics():
    from vm import VictoriaMetrics
    v = VictoriaMetrics()
    a = agent_for(v.dd_url, dict(LIMITS, telemetry_enabled=True, hostname="tele-host"))
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    a.write_config()
    a.start()
    try:
        send_known(a)
        time.sleep(0.5)
        st = a.status()
        flushes = st["flushes"]
        a.wait_for(lambda s: s["flushes"] >= flushes + 2 and fwd(a)["points_queued"] == 0
                   and s["forwarder"]["payloads_delivered"] >= 2, what="delivered flushes")
        want_lines = st["dogstatsd"]["lines"]

        def total(p, name, tags=()):
            return sum(sum(vals.values()) for (n, lab), vals in p.items()
                       if n == name and dict(lab).get("host") == "tele-host"
                       and all(dict(lab).get(t.split(":")[0]) == t.split(":")[1] for t in tags))
        p = v.wait_points('{__name__=~"dd_mini_agent[.].*"}',
                          lambda p: total(p, "dd_mini_agent.dogstatsd.lines") >= want_lines, timeout=30)
        d = st["dogstatsd"]
        assert total(p, "dd_mini_agent.dogstatsd.lines") == want_lines
        assert total(p, "dd_mini_agent.dogstatsd.packets", ["transport:udp"]) == d["udp_packets"]
        assert total(p, "dd_mini_agent.dogstatsd.packets", ["transport:uds"]) == d["uds_packets"]
        assert total(p, "dd_mini_agent.dogstatsd.parse_errors", ["reason:bad_type"]) == 1
        f = fwd(a)
        delivered = total(p, "dd_mini_agent.forwarder.points_delivered")
        # the series reporting a delivery is itself delivered one flush later
        assert 0 < delivered <= f["points_delivered"], (delivered, f)
    finally:
        a.cleanup()
        v.stop()


if __name__ == "__main__":
    Runner().run([test_every_status_field, test_status_command_forwarder_and_alerts,
                  test_status_binds_loopback_only, test_self_telemetry_jsonl,
                  test_self_telemetry_at_victoriametrics])
