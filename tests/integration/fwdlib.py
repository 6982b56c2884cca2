"""fwdlib.py - shared helpers of the forwarding integration tests: an agent
pointed at an intake, bucket timing, the forwarder's status section and the
accounting identity. Python 3 standard library only.
"""
import time

from agentlib import Agent

BUCKET = 10


def agent_for(url, extra=None, name="agent"):
    """A dd-mini-agent forwarding to `url` (flush every second)."""
    cfg = {"dd_url": url, "api_key": "it-secret-api-key-0123456789", "hostname": "fwd-host",
           "forwarder_backoff_base": 0.2, "forwarder_backoff_max": 1,
           "forwarder_stop_timeout": 3,
           # these tests count payloads and attempts exactly: no dd_mini_agent.* series
           "telemetry_enabled": False}
    if extra:
        cfg.update(extra)
    a = Agent(cfg, name=name)
    a.cfg.pop("dogstatsd_output_file", None)  # an intake is configured
    a.write_config()
    return a


def wait_bucket_start(margin=6.0):
    """Sleeps until at least `margin` seconds are left in the current 10 s
    bucket, and at least 0.1 s of it have passed; returns the bucket start.
    (The agent reads CLOCK_REALTIME_COARSE, which lags by up to a kernel tick:
    a line sent in the first milliseconds of a bucket can be stamped in the
    previous one; seen once in CI.)"""
    while True:
        now = time.time()
        if BUCKET - now % BUCKET >= margin and now % BUCKET >= 0.1:
            return int(now) // BUCKET * BUCKET
        time.sleep(0.05)


def fwd(agent):
    """The forwarder section of /status."""
    st = agent.status()
    if "forwarder" not in st:
        raise AssertionError(f"/status has no forwarder section: {sorted(st)}")
    return st["forwarder"]


def dropped(s):
    return sum(v for k, v in s.items() if k.startswith("points_dropped_"))


def check_identity(s):
    lhs = s["points_submitted"] + s.get("points_recovered", 0)
    rhs = s["points_delivered"] + dropped(s) + s["points_queued"]
    assert lhs == rhs, f"identity broken: submitted+recovered {lhs} != delivered+dropped+queued {rhs}: {s}"
