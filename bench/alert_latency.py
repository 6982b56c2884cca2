#!/usr/bin/env python3
"""Sample -> notification latency of local alerts.

Starts AGENTS agents (default 5) at evenly spread phases of the 10 s bucket,
all with the default 10 s flush interval, each with a one-bucket rule
notifying a local HTTP receiver. Then ROUNDS times (default 6) it sends every
agent one sample over the threshold at a random phase and measures the time
from the send to the receiver's arrival. Prints p50 and p100 (the bound is
10 s + dogstatsd_flush_grace_ms + delivery).

  python3 bench/alert_latency.py [AGENTS] [ROUNDS]
  DDMA_BIN=build/agent/dd-mini-agent (default, as for the integration tests)
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from agentlib import Agent  # noqa: E402
from alertlib import Receiver, percentile, wait_phase, write_notifiers, write_rules  # noqa: E402

RULES = """rules:
  - name: lat_high
    metric: lat.x
    group_by: [case]
    window: 10s
    time_agg: last
    critical: 1000
    notify: [ops-hook]
"""


def main():
    nagents = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    rx = Receiver()
    agents = []
    lat = []
    try:
        for i in range(nagents):
            a = Agent({"dogstatsd_flush_interval": 10, "log_level": "warn"})
            a.cfg["alerts_dir"] = write_rules(a.dir, RULES)
            a.cfg["notifiers_file"] = write_notifiers(a.dir, rx, kinds=("webhook",))
            a.write_config()
            wait_phase(10.0 * i / nagents + 0.5)
            a.start()
            agents.append(a)
        rng = random.Random(21)
        for r in range(rounds):
            before = len(rx.snapshot())
            t0 = wait_phase(rng.uniform(0.0, 10.0))
            for a in agents:
                a.send(f"lat.x:5000|g|#case:r{r}")
            got = rx.wait(before + nagents, timeout=20)[before:]
            lat += [g[0] - t0 for g in got]
            print(f"round {r}: phase {t0 % 10:.2f}s latency {min(lat[-nagents:]):.2f}..{max(lat[-nagents:]):.2f}s",
                  flush=True)
    finally:
        for a in agents:
            a.cleanup()
        rx.down()
    print(f"{len(lat)} notifications from {nagents} agents: p50 {percentile(lat, 50):.2f}s "
          f"p100 {max(lat):.2f}s")


if __name__ == "__main__":
    main()
