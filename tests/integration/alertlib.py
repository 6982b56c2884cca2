"""Shared pieces of the alert integration tests: a real HTTP receiver
standing in for Slack, PagerDuty and an Alertmanager webhook (it can be taken
down and brought back on the same port), and rule/notifier file writers.
"""
import http.server
import json
import os
import threading
import time

from agentlib import free_port


class Receiver:
    """One HTTP server; the request path tells which notifier posted.
    down() closes the listening socket (the agent sees connection refused),
    up() listens again on the same port. While `gate` is cleared, each request
    is recorded at once and answered only once the gate is set again."""

    def __init__(self, port=None):
        self.got = []  # (time, path, json body, content type)
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.port = port or free_port()
        self.srv = None
        self.up()

    def _handler(self):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.got.append((time.time(), self.path, json.loads(body),
                                      self.headers.get("Content-Type")))
                outer.gate.wait(60)
                self.send_response(202 if self.path == "/pagerduty" else 200)
                self.end_headers()

            def log_message(self, *a):
                pass

        return H

    def up(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def down(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def wait(self, n, timeout=30, path=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.by_path(path) if path else self.snapshot()
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {n} notifications, got {len(self.got)}: {self.got}")

    def snapshot(self):
        with self.lock:
            return list(self.got)

    def by_path(self, path, start=0):
        with self.lock:
            return [g for g in self.got[start:] if g[1] == path]


def write_rules(d, rules):
    alerts = os.path.join(d, "alerts.d")
    os.makedirs(alerts, exist_ok=True)
    with open(os.path.join(alerts, "it.yaml"), "w") as f:
        f.write(rules)
    return alerts


def write_notifiers(d, rx, kinds=("slack", "pagerduty", "webhook")):
    """notifiers.yaml with one destination per kind, all on rx."""
    base = f"http://127.0.0.1:{rx.port}"
    lines = ["notifiers:"]
    if "slack" in kinds:
        lines.append(f"  slack-team: {{type: slack, url: \"{base}/slack\"}}")
    if "pagerduty" in kinds:
        lines.append(f"  pd-oncall: {{type: pagerduty, routing_key: \"RK123\", url: \"{base}/pagerduty\"}}")
    if "webhook" in kinds:
        lines.append(f"  ops-hook: {{type: webhook, url: \"{base}/webhook\"}}")
    path = os.path.join(d, "notifiers.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def wait_phase(phase, period=10.0):
    """Sleeps until the wall clock is `phase` seconds into a period."""
    now = time.time()
    wait = (phase - now % period) % period
    time.sleep(wait)
    return time.time()


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]
