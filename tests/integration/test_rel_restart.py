"""test_rel_restart.py - docs/RELIABILITY.md S2: restarts under outage.

The intake answers 503 throughout while the agent is restarted four times,
alternately stopped with SIGTERM (persist and exit) and SIGKILL (crash). A
tiny in-memory retry queue (600 B) and one point per payload make every
flush spill to the disk queue, whose cap is 12 KiB; each run receives 40 new
metrics. After every stop and at every /status sample:
  - the disk queue directory holds only *.ddq files whose sizes add up to at
    most the cap (status disk_bytes too); no *.tmp survives a SIGTERM, and
    none survives the next start after a SIGKILL;
  - the forwarder identity holds, nothing is counted corrupt;
  - with the cap reached, the evictions are counted (points_dropped_disk_evicted).
Then the intake recovers and one more start delivers what is on disk: the
directory ends empty and every metric found on disk before that start
arrives at the intake.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import Runner, wait_until  # noqa: E402
from fault_intake import FaultIntake, series_points  # noqa: E402
from fwdlib import agent_for, check_identity, fwd  # noqa: E402
from test_forward_faults import disk_metric_names  # noqa: E402

CAP = 12 * 1024


def qfiles(qdir):
    try:
        return sorted(os.listdir(qdir))
    except FileNotFoundError:
        return []


def check_dir(qdir, allow_tmp=False):
    files = qfiles(qdir)
    bad = [f for f in files if not f.endswith(".ddq") and not (allow_tmp and f.endswith(".tmp"))]
    assert not bad, f"orphan files in the disk queue: {bad}"
    size = sum(os.path.getsize(os.path.join(qdir, f)) for f in files if f.endswith(".ddq"))
    assert size <= CAP, f"disk queue {size} B over its cap {CAP} B: {files}"
    return size


def test_restarts_under_outage():
    with FaultIntake() as fi:
        fi.set_script(default={"status": 503})
        extra = {"serializer_max_series_points_per_payload": 1,
                 "serializer_compressor_kind": "none",
                 "forwarder_retry_queue_payloads_max_size": 600,
                 "forwarder_storage_max_size_in_bytes": CAP}
        a = agent_for(fi.url, extra)
        qdir = os.path.join(a.cfg["run_path"], "transactions_to_retry")
        evicted = 0
        try:
            for run, sig in enumerate([signal.SIGTERM, signal.SIGKILL, signal.SIGTERM, signal.SIGKILL]):
                a.start()
                check_dir(qdir)  # a crash's *.tmp is gone once started
                s = fwd(a)
                assert s["points_dropped_corrupt"] == 0, s
                for i in range(40):
                    a.send(f"rs.r{run}.m{i}:{i}|g")
                wait_until(lambda: fwd(a)["points_submitted"] >= 40, 20, "40 points submitted")
                time.sleep(1)
                s = fwd(a)
                check_identity(s)
                assert s["disk_bytes"] <= CAP, s
                check_dir(qdir, allow_tmp=True)
                evicted += s["points_dropped_disk_evicted"]
                a.stop(sig) if sig == signal.SIGTERM else (a.proc.send_signal(sig), a.proc.wait())
                size = check_dir(qdir, allow_tmp=(sig == signal.SIGKILL))
                print(f"run {run} ({signal.Signals(sig).name}): disk queue {len(qfiles(qdir))} files, "
                      f"{size} B (cap {CAP}), evicted so far {evicted}")
            assert evicted > 0, "the cap was never reached: the test does not test it"
            on_disk = disk_metric_names(qdir)
            assert on_disk
            fi.set_script(default={"status": 202})
            a.start()
            check_dir(qdir)
            wait_until(lambda: fwd(a)["points_queued"] == 0 and fwd(a)["disk_files"] == 0, 30, "replay")
            s = fwd(a)
            check_identity(s)
            assert s["points_dropped_corrupt"] == 0, s
            got = {p[0] for r in fi.requests("/api/v1/series") if r["action"].get("status") == 202
                   for p in series_points(r)}
            missing = on_disk - got
            assert not missing, f"persisted but not delivered: {sorted(missing)}"
            a.stop()
            assert not [f for f in qfiles(qdir) if not f.endswith(".ddq")], qfiles(qdir)
        finally:
            a.cleanup()


if __name__ == "__main__":
    Runner().run([test_restarts_under_outage])
