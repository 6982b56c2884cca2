#!/usr/bin/env python3
"""diskq_cost.py - what the durable disk queue costs per flush at N contexts.

Runs the real agent twice against the fault intake (answering 202), once with
the disk queue off and once on (forwarder_storage_max_size_in_bytes > 0),
sends N unique gauge contexts with bench/loadgen (one line each, paced so
the socket does not drop), and reads /status until every point was flushed.
Prints, for each mode: points, payloads, files written, bytes written, fsync
calls, the main thread's time writing them (disk_write_seconds), and the longest flush (last_flush_duration_s, the main thread's wall
time for collect + encode + queue, which includes the writes) among the
flushes that carried the points.

usage: bench/diskq_cost.py [BUILD_DIR] [--contexts 1000000] [--rate 200000]
       [--dir DIRECTORY_FOR_THE_QUEUE]   (default: a temp dir; pick the disk to measure)
Needs the build's agent/dd-mini-agent and bench/loadgen; Python 3 stdlib only.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def run(build, contexts, rate, qdir, disk):
    os.environ["DDMA_BUILD_ROOT"] = build
    import agentlib  # noqa: E402 - BIN depends on DDMA_BUILD_ROOT
    agentlib.BIN = os.path.join(build, "agent", "dd-mini-agent")
    from fault_intake import FaultIntake
    from fwdlib import agent_for, fwd
    extra = {"dogstatsd_max_contexts": contexts * 2, "dogstatsd_so_rcvbuf": 8 << 20,
             "log_level": "info", "forwarder_retry_queue_payloads_max_size": 256 << 20}
    if disk:
        extra.update({"forwarder_storage_max_size_in_bytes": 4 << 30,
                      "forwarder_storage_path": os.path.join(qdir, "q")})
    with FaultIntake() as fi:
        fi.record = lambda rec: None  # do not keep 1M decoded points in memory
        a = agent_for(fi.url, extra)
        a.start()
        try:
            before = fwd(a)
            subprocess.run([os.path.join(build, "bench", "loadgen"), "--port", str(a.port),
                            "--contexts", str(contexts), "--lines", str(contexts), "--unique",
                            "--tags-per-line", "0", "--type", "g", "--rate", str(rate)],
                           check=True, stdout=subprocess.DEVNULL)
            deadline = time.time() + 60
            while time.time() < deadline:
                if fwd(a)["points_submitted"] - before["points_submitted"] >= contexts:
                    break
                time.sleep(0.1)
            time.sleep(1.5)
            s = fwd(a)
            return {k: s.get(k, 0) - before.get(k, 0) for k in
                    ("points_submitted", "payloads_submitted", "disk_written", "disk_written_bytes",
                     "disk_syncs", "disk_write_seconds")}
        finally:
            a.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--contexts", type=int, default=1000000)
    ap.add_argument("--rate", type=int, default=200000)
    ap.add_argument("--dir", default=None)
    o = ap.parse_args()
    qdir = o.dir or tempfile.mkdtemp(prefix="ddma-diskq-cost-")
    print(f"contexts={o.contexts} rate={o.rate} queue dir={qdir}")
    for disk in (False, True):
        r = run(o.build, o.contexts, o.rate, qdir, disk)
        print(f"disk_queue={'on ' if disk else 'off'} points={r['points_submitted']} "
              f"payloads={r['payloads_submitted']} files={r['disk_written']} "
              f"bytes={r['disk_written_bytes']} fsyncs={r['disk_syncs']} "
              f"write_s={r['disk_write_seconds']:.3f}", flush=True)


if __name__ == "__main__":
    main()
