#!/usr/bin/python3
"""leaky_service.py - a "payment service" that leaks memory on purpose.

Reports through DogStatsD (Debian's python3-statsd, UDP) every --interval s:
  payment_svc.memory.heap.size         gauge, bytes traced by tracemalloc
  payment_svc.memory.gc.uncollectable  gauge, len(gc.garbage)
both tagged service:payment-processor. python3-statsd's plain client has no
tags, so TaggedStatsClient appends the DogStatsD `|#tags` suffix to the value
it hands to the client's own _prepare/_send path.

The leak: every second it keeps --leak-kib KiB of "request payloads" in a
module-level list that is never trimmed, and creates --cycles reference
cycles; gc.DEBUG_SAVEALL makes the collector park them in gc.garbage instead
of freeing them (what a __del__-laden cycle did before PEP 442).

Usage: ./leaky_service.py [--port 8125] [--leak-kib 64] [--cycles 20] [--duration 0]
"""
import argparse
import gc
import os
import time
import tracemalloc

import statsd

TAGS = "service:payment-processor"


class TaggedStatsClient(statsd.StatsClient):
    """statsd.StatsClient plus DogStatsD tags on gauges."""

    def gauge_tagged(self, stat, value, tags):
        # _prepare builds "stat:value" (+ "|@rate" when sampled); the tags
        # suffix rides along inside the value string.
        self._after(self._prepare(stat, "%s|g|#%s" % (value, tags), 1))


_cache = []  # the leak: grows forever


class Order:
    def __init__(self, n):
        self.n = n
        self.peer = None


def handle_requests(leak_kib, cycles):
    _cache.append(bytearray(os.urandom(16)) * (leak_kib * 64))  # leak_kib KiB kept
    for i in range(cycles):
        a, b = Order(i), Order(i + 1)
        a.peer, b.peer = b, a  # a cycle; dropped right away
    gc.collect()  # with DEBUG_SAVEALL the cycles land in gc.garbage


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8125)
    ap.add_argument("--leak-kib", type=int, default=64, help="KiB leaked per interval")
    ap.add_argument("--cycles", type=int, default=20, help="uncollectable cycles per interval")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=0, help="seconds to run, 0 = forever")
    args = ap.parse_args()

    tracemalloc.start()
    gc.set_debug(gc.DEBUG_SAVEALL)
    client = TaggedStatsClient(args.host, args.port)
    start = time.monotonic()
    while not args.duration or time.monotonic() - start < args.duration:
        handle_requests(args.leak_kib, args.cycles)
        heap, _peak = tracemalloc.get_traced_memory()
        client.gauge_tagged("payment_svc.memory.heap.size", heap, TAGS)
        client.gauge_tagged("payment_svc.memory.gc.uncollectable", len(gc.garbage), TAGS)
        print("heap=%d bytes uncollectable=%d" % (heap, len(gc.garbage)), flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
