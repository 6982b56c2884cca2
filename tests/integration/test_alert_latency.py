"""Alert latency does not depend on when the agent started: flushes happen at
bucket boundaries (plus dogstatsd_flush_grace_ms), so a sample's notification
leaves within one 10 s bucket + the grace + delivery.

Three agents with the default 10 s flush interval are started at +1, +5 and
+9 s into a bucket; each gets one sample over the threshold of a
`window: 10s` rule (one bucket: it must see its point) at the start of a bucket
(the worst case) and one in the middle. Every notification must reach the
real HTTP receiver within 10 s + grace + 1.5 s of the send, and the three agents
must notify at the same moment (they share the boundaries).
"""
import time

from agentlib import Agent, Runner
from alertlib import Receiver, percentile, wait_phase, write_notifiers, write_rules

GRACE_MS = 250
DELIVERY = 1.5  # loopback HTTP, with room for a loaded CI machine
BOUND = 10.0 + GRACE_MS / 1000.0 + DELIVERY

RULES = """rules:
  - name: lat_high
    metric: lat.x
    group_by: [case]
    window: 10s
    time_agg: last
    op: ">"
    critical: 1000
    notify: [ops-hook]
"""


def start_agents(rx, phases):
    agents = []
    for p in phases:
        a = Agent({"dogstatsd_flush_interval": 10, "dogstatsd_flush_grace_ms": GRACE_MS,
                   "log_level": "info"})
        a.cfg["alerts_dir"] = write_rules(a.dir, RULES)
        a.cfg["notifiers_file"] = write_notifiers(a.dir, rx, kinds=("webhook",))
        a.write_config()
        wait_phase(p)
        a.start()
        agents.append(a)
    return agents


def send_round(agents, rx, case, phase):
    """One sample per agent at `phase`; returns the latencies in seconds."""
    before = len(rx.snapshot())
    t0 = wait_phase(phase)
    for a in agents:
        a.send(f"lat.x:5000|g|#case:{case}")
    got = rx.wait(before + len(agents), timeout=BOUND + 5)[before:]
    lat = [g[0] - t0 for g in got]
    for g in got:
        hook = g[2]
        assert hook["status"] == "firing", hook
        assert hook["alerts"][0]["labels"]["case"] == case, hook
    return lat


def test_latency_independent_of_start_phase():
    rx = Receiver()
    agents = []
    try:
        agents = start_agents(rx, (1.0, 5.0, 9.0))
        lat = send_round(agents, rx, "edge", 0.3) + send_round(agents, rx, "mid", 5.0)
        print(f"sample->notification: p50 {percentile(lat, 50):.2f}s p100 {max(lat):.2f}s "
              f"(bound {BOUND:.2f}s) {sorted(round(x, 2) for x in lat)}")
        assert max(lat) <= BOUND, lat
        # edge samples wait for their bucket to end (~9.95 s), mid ones ~5 s
        assert min(lat[:3]) >= 9.0 and max(lat[3:]) <= 5.0 + GRACE_MS / 1000.0 + DELIVERY, lat
        # the same boundary for every start phase
        assert max(lat[:3]) - min(lat[:3]) < 1.0, lat
    finally:
        for a in agents:
            a.cleanup()
        rx.down()


if __name__ == "__main__":
    Runner().run([test_latency_independent_of_start_phase])
