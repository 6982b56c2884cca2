"""Local alerts end to end: real DogStatsD traffic over UDP into the daemon,
rules with short windows, loopback receivers standing in for Slack,
PagerDuty and an Alertmanager webhook. Asserts the bodies, that the
notification arrives within 1 s of the flush that crossed the threshold, that
the state survives a restart without a second notification, and that the
recovery is sent with the same dedup key / fingerprint.
"""
import os
import signal
import threading
import time

from agentlib import Agent, Runner
from alertlib import Receiver, write_notifiers, write_rules

RULES = """rules:
  - name: it_heap_high
    query: "last(last_30s):avg:it.heap{service:payment-processor} by {host} > 1000"
    notify: [slack-team, pd-oncall, ops-hook]
    labels: {team: payments}
    message: "{{rule}} on {{host}}: {{value}} {{comparator}} {{threshold}}{{#is_recovery}} recovered{{/is_recovery}}"
"""


def flushed_at(agent, value, timeout=25):
    """Time the flush carrying it.heap == value showed up in the output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for r in agent.records():
            if r.get("metric") == "it.heap" and r.get("value") == value:
                return time.time()
        time.sleep(0.02)
    raise AssertionError(f"it.heap={value} never flushed:\n{agent.log()[-3000:]}")


def write_config(d, rx):
    return {"alerts_dir": write_rules(d, RULES), "notifiers_file": write_notifiers(d, rx)}


def started():
    """A receiver and an agent running with the rule and the three notifiers."""
    rx = Receiver()
    a = Agent()
    a.cfg.update(write_config(a.dir, rx))
    a.write_config()
    a.start()
    return rx, a


def check_firing(rx):
    slack = rx.by_path("/slack")[0][2]
    assert slack["text"] == ":rotating_light: [CRITICAL] it_heap_high on test-host: 5000 > 1000", slack
    pd = rx.by_path("/pagerduty")[0][2]
    assert pd["routing_key"] == "RK123" and pd["event_action"] == "trigger", pd
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "test-host", pd
    assert pd["payload"]["summary"] == "it_heap_high on test-host: 5000 > 1000", pd
    assert pd["payload"]["custom_details"]["group"] == {"host": "test-host"}, pd
    hook = rx.by_path("/webhook")[0][2]
    assert hook["version"] == "4" and hook["status"] == "firing" and hook["receiver"] == "ops-hook", hook
    alert = hook["alerts"][0]
    assert alert["labels"] == {"alertname": "it_heap_high", "host": "test-host", "team": "payments",
                               "severity": "critical"}, alert
    assert alert["endsAt"] == "0001-01-01T00:00:00Z", alert
    assert alert["fingerprint"] == pd["dedup_key"] and len(alert["fingerprint"]) == 16, (alert, pd)
    assert all(g[3] == "application/json" for g in rx.got), rx.got
    return pd["dedup_key"]


def test_notify_fire_restart_resolve():
    rx, a = started()
    try:
        a.send("it.heap:200|g|#service:payment-processor")
        flushed_at(a, 200)
        time.sleep(0.5)
        assert rx.got == [], rx.got
        a.send("it.heap:5000|g|#service:payment-processor")
        t_flush = flushed_at(a, 5000)
        got = rx.wait(3)
        late = max(g[0] for g in got) - t_flush
        assert late < 1.0, f"notifications {late:.2f}s after the flush"
        fp = check_firing(rx)
        states = [r for r in a.records() if r.get("metric") == "dd_mini_agent.alerts.state"]
        assert any("rule:it_heap_high" in r["tags"] and "state:critical" in r["tags"] for r in states), states[-3:]

        # restart: the CRITICAL state is restored, no second notification
        # (once the agent has the receiver's answers: a notification still
        # queued at the stop is sent again after the start, by design)
        a.wait_for(lambda s: s["notifications"]["sent"] == 3 and s["notifications"]["queued"] == 0,
                   what="the three notifications acknowledged")
        assert a.stop() == 0, a.log()
        state_files = os.listdir(a.cfg["run_path"])
        a.start()
        a.send("it.heap:6000|g|#service:payment-processor")
        flushed_at(a, 6000)
        time.sleep(1.5)
        assert len(rx.got) == 3, (state_files, rx.got[3:])

        # recovery: resolved bodies with the same identity
        a.send("it.heap:10|g|#service:payment-processor")
        t_flush = flushed_at(a, 10)
        got = rx.wait(6)
        assert max(g[0] for g in got[3:]) - t_flush < 1.0
        pd = rx.by_path("/pagerduty", 3)[0][2]
        assert pd["event_action"] == "resolve" and pd["dedup_key"] == fp, pd
        hook = rx.by_path("/webhook", 3)[0][2]
        assert hook["status"] == "resolved" and hook["alerts"][0]["fingerprint"] == fp, hook
        assert hook["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z", hook
        slack = rx.by_path("/slack", 3)[0][2]
        assert slack["text"] == ":white_check_mark: [RESOLVED] it_heap_high on test-host: 10 <= 1000 recovered", slack
    finally:
        a.cleanup()
        rx.down()


def test_stop_waits_for_notifications_in_flight():
    """SIGTERM while the receivers still hold their answers: the agent waits
    for them, so the accepted notifications are not sent again after the
    restart (they would be, from the spool, had the stop cut them off)."""
    rx, a = started()
    try:
        rx.gate.clear()
        a.send("it.heap:5000|g|#service:payment-processor")
        rx.wait(3)
        a.signal(signal.SIGTERM)
        releaser = threading.Timer(1.0, rx.gate.set)
        releaser.start()
        assert a.stop() == 0, a.log()
        releaser.join()
        spool = os.listdir(os.path.join(a.cfg["run_path"], "notifications"))
        assert not [f for f in spool if f.endswith(".ntf")], spool
        a.start()
        a.send("it.heap:6000|g|#service:payment-processor")
        flushed_at(a, 6000)
        time.sleep(1.5)
        assert len(rx.got) == 3, rx.got[3:]
    finally:
        rx.gate.set()
        a.cleanup()
        rx.down()


if __name__ == "__main__":
    Runner().run([test_notify_fire_restart_resolve, test_stop_waits_for_notifications_in_flight])
