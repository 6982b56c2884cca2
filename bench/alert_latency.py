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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from alertlib import Receiver, percentile  # noqa: E402
from test_alert_latency import send_round, start_agents  # noqa: E402


def main():
    nagents = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    rx = Receiver()
    agents = []
    lat = []
    try:
        agents = start_agents(rx, [10.0 * i / nagents + 0.5 for i in range(nagents)])
        rng = random.Random(21)
        for r in range(rounds):
            phase = rng.uniform(0.0, 10.0)
            got = send_round(agents, rx, f"r{r}", phase)
            lat += got
            print(f"round {r}: phase {phase:.2f}s latency {min(got):.2f}..{max(got):.2f}s", flush=True)
    finally:
        for a in agents:
            a.cleanup()
        rx.down()
    print(f"{len(lat)} notifications from {nagents} agents: p50 {percentile(lat, 50):.2f}s "
          f"p100 {max(lat):.2f}s")


if __name__ == "__main__":
    main()
