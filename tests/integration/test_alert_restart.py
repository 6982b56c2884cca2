"""The seed scenario over real UDP with a real HTTP receiver (Slack,
PagerDuty and webhook paths): a service leaks
memory, its heap-growth alert fires, the agent is restarted mid-incident
(gracefully, then with kill -9) while the leak goes on, the service stops
(no data), then restarts (the heap drops back).

Asserts what a pager needs: exactly one trigger per receiver for the whole
incident (a restart neither resolves the alert nor pages again: the window's
points come back with the state), and one resolve, with the same dedup key,
once the service restarted; the Slack texts show the state once and the
comparator and threshold that decided it.
"""
import os
import signal
import threading
import time

from agentlib import Agent, Runner
from alertlib import Receiver, write_notifiers, write_rules

WINDOW = 30
LEAK_PER_S = 1000.0
RULES = f"""rules:
  - name: heap_growth
    query: "avg(last_{WINDOW}s):growth:svc.heap{{service:pay}} by {{host}} > 20000"
    critical_recovery: 15000
    no_data: {{action: keep}}
    notify: [slack-team, pd-oncall, ops-hook]
"""


class LeakyService:
    """Sends svc.heap over UDP 5 times a second: base + LEAK_PER_S per second
    while leaking, flat at `base` after a restart, nothing while stopped."""

    def __init__(self, agent):
        self.agent = agent
        self.mode = "leak"
        self.t0 = time.time()
        self.base = 50_000_000.0
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop_ev.wait(0.2):
            if self.mode == "leak":
                v = self.base + LEAK_PER_S * (time.time() - self.t0)
            elif self.mode == "restarted":
                v = self.base
            else:
                continue
            try:
                self.agent.send(f"svc.heap:{v:.0f}|g|#service:pay")
            except OSError:
                pass

    def close(self):
        self.stop_ev.set()
        self.th.join()


def quiet_for(rx, n, seconds, what):
    """Asserts the receiver got nothing beyond its first n bodies for `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = rx.snapshot()
        assert len(got) == n, f"{what}: unexpected notification(s) {[(g[1], g[2]) for g in got[n:]]}"
        time.sleep(0.1)


def test_restart_mid_incident():
    rx = Receiver()
    a = Agent()
    svc = None
    try:
        a.cfg["alerts_dir"] = write_rules(a.dir, RULES)
        a.cfg["notifiers_file"] = write_notifiers(a.dir, rx, kinds=("slack", "pagerduty", "webhook"))
        a.write_config()
        a.start()
        svc = LeakyService(a)
        got = rx.wait(3, timeout=WINDOW + 25)
        pd = [g[2] for g in got if g[1] == "/pagerduty"]
        assert len(pd) == 1 and pd[0]["event_action"] == "trigger", got
        assert pd[0]["payload"]["summary"].endswith(" > 20000"), pd
        dedup = pd[0]["dedup_key"]
        # let the alert run a little, then a graceful restart
        time.sleep(3)
        assert a.stop() == 0, a.log()[-2000:]
        with open(os.path.join(a.cfg["run_path"], "alerts.state")) as f:
            state = f.read()
        assert state.startswith("ddma-alert-state 2 ") and "\tCRITICAL\t" in state, state[:500]
        a.start()
        quiet_for(rx, 3, WINDOW - 5, "after a graceful restart")
        # kill -9: the last written window (one flush old) comes back
        a.stop(sig=signal.SIGKILL)
        a.start()
        quiet_for(rx, 3, WINDOW - 5, "after kill -9")
        # the service stops: missing data never resolves
        svc.mode = "stopped"
        quiet_for(rx, 3, 5, "while the service is stopped")
        # the service restarts: the heap drops, growth goes negative: resolved
        svc.mode = "restarted"
        got = rx.wait(6, timeout=20)
        pd = [g[2] for g in got if g[1] == "/pagerduty"]
        assert [p["event_action"] for p in pd] == ["trigger", "resolve"], pd
        assert pd[1]["dedup_key"] == dedup, pd
        hooks = [g[2] for g in got if g[1] == "/webhook"]
        assert [h["status"] for h in hooks] == ["firing", "resolved"], hooks
        assert hooks[0]["alerts"][0]["fingerprint"] == dedup == hooks[1]["alerts"][0]["fingerprint"]
        slack = [g[2]["text"] for g in got if g[1] == "/slack"]
        assert len(slack) == 2 and slack[0].startswith(":rotating_light: [CRITICAL] heap_growth on test-host: value "), slack
        assert slack[1].startswith(":white_check_mark: [RESOLVED] heap_growth on test-host: value "), slack
        assert slack[1].endswith(" <= 15000"), slack  # the recovery threshold, the direction it recovered in
        quiet_for(rx, 6, 3, "after the resolve")
    finally:
        if svc:
            svc.close()
        a.cleanup()
        rx.down()


if __name__ == "__main__":
    Runner().run([test_restart_mid_incident])
