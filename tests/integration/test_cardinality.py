"""test_cardinality.py - the cardinality guard against the real daemon and
the real VictoriaMetrics (README "Cardinality guard").

The bomb: BOMB_VALUES distinct instance_id values (20,000 in CI; the
issue's 200,000 by hand: BOMB_VALUES=200000) on 4 metrics (two counters, a
gauge, a histogram), sent over real UDP as fast as the agent takes them.

- tag limit (defaults: dogstatsd_tag_value_limit 1000, strip_tag), the
  bomb spread over 2 pipelines (one sender socket each): at the intake, at most 1000 + 1 series per metric (the kept values and the series
  without the tag); every counter's total over all its series and points
  equals what was sent; the histogram's sample count too; the gauge's last
  value (sent last, to a value over the limit) is on the series without the
  tag; one WARN per metric; /status lists the 4 limited tags with their
  value counts and samples affected; the agent's own telemetry carries the
  same counts; peak RSS under the memory limit plus the documented overhead.
- drop_sample: the samples over the limit are refused and counted per reason
  and per metric.
- reload: SIGHUP raising, removing and setting the limit again.
- static rules: dogstatsd_tags_exclude removes instance_id before
  aggregation: one series per metric, totals exact.
- memory limit with the tag limit off (MEMLIMIT_MIB, default 16): the
  aggregator's memory stays under
  dogstatsd_memory_limit (plus one allocation step), every refused sample
  is counted, the peak RSS of the whole agent stays under the limit plus
  the documented overhead.

Prints the figures (series at the intake, RSS) for the README.
"""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Agent, Runner, asan_build, wait_until  # noqa: E402
from fwdlib import agent_for  # noqa: E402
from vm import shared_vm  # noqa: E402

N = int(os.environ.get("BOMB_VALUES", "20000"))
LIMIT = 1000
LPD = 20            # lines per datagram
# conf.d/agent.yaml dogstatsd_memory_limit: the agent's resident memory
# beyond the limit (the idle agent, ~15 MiB, and the allocator's slack;
# measured limit + 15 MiB at 16 MiB, limit + 22 MiB at 64 MiB)
OVERHEAD = 32 << 20


def rss_peak(agent):
    """VmHWM of the agent process, bytes."""
    with open(f"/proc/{agent.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def bomb_lines(prefix):
    """The bomb's lines and what they add up to."""
    lines, sums = [], {"req": 0, "bytes": 0, "lat": 0}
    for i in range(N):
        iid = f"i-{i:07d}"
        lines.append(f"{prefix}.req:1|c|#instance_id:{iid},env:prod")
        lines.append(f"{prefix}.bytes:{i % 7 + 1}|c|#instance_id:{iid},env:prod")
        lines.append(f"{prefix}.temp:{i % 50}|g|#instance_id:{iid},env:prod")
        lines.append(f"{prefix}.lat:{i % 100}|h|#instance_id:{iid},env:prod")
        sums["req"] += 1
        sums["bytes"] += i % 7 + 1
        sums["lat"] += 1
    return lines, sums


def one_socket_per_pipeline(agent, npipes):
    """Sockets whose datagrams land on distinct pipelines (SO_REUSEPORT
    spreads source addresses): each candidate sends a probe line, and the
    pipeline whose line count moves tells where it landed."""
    socks, seen = [], set()
    for _ in range(64):
        if len(seen) == npipes:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        before = agent.status()["pipelines"]
        s.sendto(b"cardprobe:1|c", ("127.0.0.1", agent.port))
        agent.wait_for(lambda st: any(st["pipelines"][f"p{i}_lines"] > before[f"p{i}_lines"]
                                      for i in range(npipes)), what="probe counted")
        after = agent.status()["pipelines"]
        p = next(i for i in range(npipes) if after[f"p{i}_lines"] > before[f"p{i}_lines"])
        if p in seen:
            s.close()
            continue
        seen.add(p)
        socks.append(s)
    assert len(seen) == npipes, seen
    return socks


def send_paced(agent, lines, pipelines=1):
    """Sends the lines in datagrams of LPD, in turn from one socket per
    pipeline, waiting for the agent to have counted each slice (no kernel
    drop can hide a sample)."""
    if pipelines > 1:
        socks = one_socket_per_pipeline(agent, pipelines)
    else:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
    senders = len(socks)
    base = agent.status()["dogstatsd"]["lines"]
    sent, step, n = 0, 2000 * LPD, 0
    for k in range(0, len(lines), step):
        chunk = lines[k:k + step]
        for j in range(0, len(chunk), LPD):
            socks[n % senders].sendto("\n".join(chunk[j:j + LPD]).encode(), ("127.0.0.1", agent.port))
            n += 1
        sent += len(chunk)
        agent.wait_for(lambda st: st["dogstatsd"]["lines"] - base >= sent, timeout=60,
                       what=f"{sent} lines counted")
    d = agent.status()["dogstatsd"]
    assert d["kernel_drops"] == 0, d
    return socks


def series_of(points, name):
    return {k: v for k, v in points.items() if k[0] == name}


def total(points, name):
    """A counter's total at the intake: each point is a rate over 10 s."""
    return round(sum(sum(v.values()) for v in series_of(points, name).values()) * 10, 6)


def guard_agent(v, host, extra=None):
    cfg = {"hostname": host, "dogstatsd_pipeline_count": 2, "telemetry_enabled": True,
           "dogstatsd_memory_limit": 64 << 20, "dogstatsd_so_rcvbuf": 8 << 20,
           "dogstatsd_flush_interval": 2}
    cfg.update(extra or {})
    return agent_for(v.dd_url, cfg).start()


def test_tag_limit_bomb_exact_totals():
    v = shared_vm()
    host = "card-strip"
    a = guard_agent(v, host)
    try:
        lines, sums = bomb_lines("cb")
        # to both pipelines: they share the tag limit and their records merge
        t0 = time.time()
        socks = send_paced(a, lines, pipelines=2)
        took = time.time() - t0
        # last, over the limit, a second later (a gauge merged from two
        # pipelines takes the value received last, to the second): the
        # untagged series' last value
        time.sleep(1.1)
        before = a.status()["dogstatsd"]["lines"]
        socks[0].sendto(b"cb.temp:42.5|g|#instance_id:i-last,env:prod", ("127.0.0.1", a.port))
        for s in socks:
            s.close()
        a.wait_for(lambda x: x["dogstatsd"]["lines"] > before, what="the last gauge")
        pipes = a.status()["pipelines"]
        assert min(pipes["p0_lines"], pipes["p1_lines"]) >= len(lines) // 2, pipes
        st = a.status()["aggregator"]
        peak = rss_peak(a)

        untagged = frozenset({("host", host), ("env", "prod")})

        def last_gauge(p):
            pts = p.get(("cb.temp", untagged), {})
            return pts[max(pts)] if pts else None

        def complete(p):
            # the counters' buckets and the last gauge's (maybe a later one)
            return (total(p, "cb.req") == sums["req"] and total(p, "cb.bytes") == sums["bytes"]
                    and total(p, "cb.lat.count") == sums["lat"] and last_gauge(p) == 42.5)
        p = v.wait_points(f'{{__name__=~"cb[.].*",host="{host}"}}', complete, timeout=60)
        nseries = {m: len(series_of(p, m)) for m in ("cb.req", "cb.bytes", "cb.temp", "cb.lat.count")}
        print(f"tag limit: {4 * N} lines ({N} instance_id values x 4 metrics) in {took:.1f} s "
              f"(lines per pipeline {pipes.get('p0_lines')}, {pipes.get('p1_lines')}); "
              f"series at the intake {nseries}; contexts {st['contexts']}; "
              f"aggregator memory {st['memory_bytes']} B; peak RSS {peak / 2**20:.1f} MiB")
        for m, n in nseries.items():
            assert n <= LIMIT + 1, (m, n)
            assert n == min(N, LIMIT) + (N > LIMIT), (m, n)
        assert last_gauge(p) == 42.5, p[("cb.temp", untagged)]
        # status: the 4 limited tags, their values and samples affected
        rows = {r["metric"]: r for r in st["limited_tags"]}
        assert sorted(rows) == ["cb.bytes", "cb.lat", "cb.req", "cb.temp"], st["limited_tags"]
        for m, r in rows.items():
            want = N - LIMIT + (m == "cb.temp")
            assert r["tag_key"] == "instance_id" and r["values"] == LIMIT, r
            assert r["samples_stripped"] == want and r["samples_dropped"] == 0, (r, want)
        assert st["tag_limited_samples"] == 4 * (N - LIMIT) + 1, st
        assert st["limited_tag_keys"] == 4, st
        text = a.get("/status?format=text")
        assert re.search(r"\nLimited tags \(dogstatsd_tag_value_limit\)\n=+\n  Metric/tag keys +4\n", text), text
        # one WARN per metric and tag key
        log = a.log()
        for m in rows:
            w = f"tag limit: metric {m} has more than {LIMIT} values of tag instance_id"
            assert log.count(w) == 1, (w, log[-3000:])
        # the same counts in the agent's own telemetry
        want_t = {m: N - LIMIT + (m == "cb.temp") for m in rows}

        def telemetry_right(tp):
            got = {dict(k[1]).get("metric"): max(pts.items())[1] for k, pts in tp.items()}
            return got == want_t
        v.wait_points(f'{{__name__="dd_mini_agent.aggregator.tag_limit.samples_affected",host="{host}"}}',
                      telemetry_right, timeout=30)
        assert asan_build() or peak <= (64 << 20) + OVERHEAD, peak
    finally:
        a.cleanup()


def test_drop_sample_counted():
    v = shared_vm()
    host = "card-drop"
    a = guard_agent(v, host, {"dogstatsd_tag_limit_action": "drop_sample", "dogstatsd_tag_value_limit": 100})
    try:
        n = 500
        lines = [f"cd.req:1|c|#instance_id:{i}" for i in range(n)]
        for s in send_paced(a, lines):
            s.close()
        st = a.status()["aggregator"]
        assert st["dropped"]["tag_limit"] == n - 100, st
        assert st["tag_limited_samples"] == 0, st
        top = {t["metric"]: t for t in st["top"]}
        assert top["cd.req"]["refused"] == n - 100 and top["cd.req"]["contexts"] == 100, top
        rows = st["limited_tags"]
        assert rows and rows[0]["samples_dropped"] == n - 100, rows
        p = v.wait_points(f'{{__name__="cd.req",host="{host}"}}', lambda p: total(p, "cd.req") == 100)
        assert len(p) == 100, len(p)
    finally:
        a.cleanup()


def test_tags_exclude_rule():
    v = shared_vm()
    host = "card-rule"
    a = guard_agent(v, host, {"dogstatsd_tags_exclude": ["instance_*", "user_id|cr.checkout*"]})
    try:
        n = 3000
        lines = []
        for i in range(n):
            lines.append(f"cr.req:2|c|#instance_id:{i},user_id:{i % 3}")
            lines.append(f"cr.checkout:1|c|#instance_id:{i},user_id:{i % 3}")
        for s in send_paced(a, lines):
            s.close()

        def done(p):
            return total(p, "cr.req") == 2 * n and total(p, "cr.checkout") == n
        p = v.wait_points(f'{{__name__=~"cr[.].*",host="{host}"}}', done)
        assert len(series_of(p, "cr.req")) == 3, p.keys()       # user_id kept, 3 values
        assert len(series_of(p, "cr.checkout")) == 1, p.keys()  # both removed
        st = a.status()["aggregator"]
        assert st["tags_excluded"] >= 3 * n, st
        assert st["limited_tag_keys"] == 0, st
    finally:
        a.cleanup()


def test_reload_changes_the_limit():
    """SIGHUP with a higher limit lets new values in; with 0, nothing is
    limited (and nothing tracked); a lower one again limits new values."""
    a = Agent({"dogstatsd_tag_value_limit": 5, "telemetry_enabled": False}).start()
    try:
        def values():
            rows = a.status()["aggregator"]["limited_tags"]
            return rows[0]["values"] if rows else None

        def reload(limit, n):
            a.cfg["dogstatsd_tag_value_limit"] = limit
            a.write_config()
            a.signal(signal.SIGHUP)
            a.wait_for(lambda st: st["agent"]["reloads"] == n, what=f"reload {n}")

        for s in send_paced(a, [f"rl.req:1|c|#id:{i}" for i in range(10)]):
            s.close()
        st = a.status()["aggregator"]
        assert values() == 5 and st["tag_limited_samples"] == 5, st
        reload(12, 1)
        for s in send_paced(a, [f"rl.req:1|c|#id:{i}" for i in range(100, 110)]):
            s.close()
        st = a.status()["aggregator"]
        assert values() == 12 and st["tag_limited_samples"] == 8, st
        reload(0, 2)
        for s in send_paced(a, [f"rl.req:1|c|#id:{i}" for i in range(200, 210)]):
            s.close()
        st = a.status()["aggregator"]
        assert values() == 0 and st["tag_limited_samples"] == 8, st  # nothing tracked
        reload(3, 3)  # the 22 live ids are registered: over 3, new ones lose the tag
        for s in send_paced(a, [f"rl.req:1|c|#id:{i}" for i in (300, 200)]):
            s.close()
        st = a.status()["aggregator"]
        assert values() == 22 and st["tag_limited_samples"] == 9, st
    finally:
        a.cleanup()


def test_memory_limit_bounds_rss():
    # (under ASan: a smaller bomb, a smaller limit, no RSS figures)
    limit = int(os.environ.get("MEMLIMIT_MIB", "4" if asan_build() else "16")) << 20
    a = Agent({"dogstatsd_tag_value_limit": 0, "dogstatsd_memory_limit": limit,
               "dogstatsd_max_contexts_per_metric": 10000000,
               "dogstatsd_output_file": "/dev/null", "telemetry_enabled": False,
               "dogstatsd_so_rcvbuf": 8 << 20, "dogstatsd_pipeline_count": 1}).start()
    try:
        # enough unique contexts to reach the limit (~280 B each)
        n = max(N, 200000, limit // 100) if not asan_build() else N
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0
        base = a.status()["dogstatsd"]["lines"]
        for k in range(0, n, 2000):
            for j in range(k, min(n, k + 2000), LPD):
                s.sendto("\n".join(f"cm.req:1|c|#instance_id:{i},env:prod"
                                   for i in range(j, min(n, j + LPD))).encode(), ("127.0.0.1", a.port))
            sent = min(n, k + 2000)
            a.wait_for(lambda st: st["dogstatsd"]["lines"] - base >= sent, timeout=60, what="counted")
        s.close()
        st = a.status()["aggregator"]
        peak = rss_peak(a)
        print(f"memory limit {limit >> 20} MiB: {n} unique contexts offered, {st['contexts']} kept, "
              f"{st['dropped']['memory_limit']} refused, aggregator memory {st['memory_bytes']} B, "
              f"peak RSS {peak / 2**20:.1f} MiB")
        assert st["contexts"] + st["dropped"]["memory_limit"] == n, st
        assert st["dropped"]["memory_limit"] > 0, st
        # over by at most one allocation step (a slab chunk of 4096 contexts, a table doubling)
        assert st["memory_bytes"] <= limit + (8 << 20), st
        top = {t["metric"]: t for t in st["top"]}
        assert top["cm.req"]["refused"] == st["dropped"]["memory_limit"], top
        # wait for a flush of all of them, then the RSS
        a.wait_for(lambda x: x["flushes"] >= 2, timeout=30, what="two flushes")
        peak = rss_peak(a)
        print(f"memory limit {limit >> 20} MiB: peak RSS after two flushes {peak / 2**20:.1f} MiB "
              f"(limit + {(peak - limit) / 2**20:.1f} MiB)")
        assert asan_build() or peak <= limit + OVERHEAD, (peak, limit + OVERHEAD)
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_tag_limit_bomb_exact_totals, test_drop_sample_counted, test_tags_exclude_rule,
                  test_reload_changes_the_limit, test_memory_limit_bounds_rss])
