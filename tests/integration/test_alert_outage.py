"""Durable notifications: the receiver (PagerDuty and webhook paths of one
real HTTP server) is down while an alert fires and resolves; meanwhile the
agent is reloaded (SIGHUP) and restarted (SIGTERM + start). When the receiver
comes back it must get exactly one trigger, then the resolve, per notifier;
the retry counters survive the reload.

Modes: CI runs OUTAGE_SECONDS=60 (default). Long mode by hand:
OUTAGE_SECONDS=600 python3 tests/integration/test_alert_outage.py
(the receiver is down for 10 minutes).
"""
import os
import signal
import time

from agentlib import Agent, Runner
from alertlib import Receiver, write_notifiers, write_rules

OUTAGE = int(os.environ.get("OUTAGE_SECONDS", "60"))
RULES = """rules:
  - name: it_outage
    query: "last(last_10s):avg:it.x{*} > 1000"
    notify: [pd-oncall, ops-hook]
"""


def notif(a):
    return a.status()["notifications"]


def test_receiver_down_across_reload_and_restart():
    rx = Receiver()
    rx.down()
    a = Agent()
    try:
        a.cfg["alerts_dir"] = write_rules(a.dir, RULES)
        a.cfg["notifiers_file"] = write_notifiers(a.dir, rx, kinds=("pagerduty", "webhook"))
        a.write_config()
        t0 = time.time()
        a.start()
        a.send("it.x:5000|g")
        a.wait_for(lambda s: s["notifications"]["queued"] == 2 and s["notifications"]["retried"] >= 2,
                   timeout=20, what="the trigger queued and retried")

        time.sleep(max(0.0, t0 + OUTAGE / 3 - time.time()))
        before = notif(a)
        a.signal(signal.SIGHUP)
        a.wait_for(lambda s: s["agent"]["reloads"] == 1, timeout=10, what="the reload")
        after = notif(a)
        assert after["queued"] == 2, after
        assert after["retried"] >= before["retried"] and after["failed"] == 0, (before, after)

        time.sleep(max(0.0, t0 + OUTAGE / 2 - time.time()))
        a.send("it.x:10|g")
        a.wait_for(lambda s: s["notifications"]["queued"] == 4, timeout=20, what="the resolve queued")

        time.sleep(max(0.0, t0 + 2 * OUTAGE / 3 - time.time()))
        assert a.stop() == 0, a.log()[-2000:]
        spool = os.path.join(a.cfg["run_path"], "notifications")
        assert len([f for f in os.listdir(spool) if f.endswith(".ntf")]) == 4, os.listdir(spool)
        assert "kept in" in a.log(), a.log()[-2000:]
        a.start()
        a.wait_for(lambda s: s["notifications"]["queued"] == 4, timeout=10, what="the spool reloaded")

        time.sleep(max(0.0, t0 + OUTAGE - time.time()))
        assert rx.snapshot() == []
        rx.up()
        got = rx.wait(4, timeout=75)
        for path, first, second in (("/pagerduty", "trigger", "resolve"), ("/webhook", "firing", "resolved")):
            bodies = [g[2] for g in got if g[1] == path]
            kinds = [b.get("event_action") or b.get("status") for b in bodies]
            assert kinds == [first, second], (path, kinds)
        time.sleep(3)
        assert len(rx.snapshot()) == 4, rx.snapshot()[4:]
        st = notif(a)
        assert st["sent"] == 4 and st["queued"] == 0 and st["expired"] == 0 and st["dropped"] == 0, st
        assert [f for f in os.listdir(spool) if f.endswith(".ntf")] == []
    finally:
        a.cleanup()
        rx.down()


if __name__ == "__main__":
    Runner().run([test_receiver_down_across_reload_and_restart])
