"""prom.py - a throw-away Prometheus (Debian's /usr/bin/prometheus, 2.42) for
integration tests: free loopback port, temp storage, no scrape targets, the
remote write receiver on (--web.enable-remote-write-receiver), readiness wait,
and raw samples read back through the HTTP query API. Python 3 stdlib only.
"""
import atexit
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

PROM_BIN = "/usr/bin/prometheus"


def _free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Prometheus:
    def __init__(self):
        if not os.path.exists(PROM_BIN):
            raise RuntimeError(f"{PROM_BIN} missing: scripts/deps.sh --test installs Debian's prometheus")
        self.dir = tempfile.mkdtemp(prefix="ddma-prom-")
        self.port = _free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.write_url = self.base + "/api/v1/write"
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROM_BIN, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             "--web.enable-remote-write-receiver", "--log.level=warn"],
            stdout=self.log, stderr=self.log)
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited; see " + self.log.name)
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus not ready")

    def query(self, q, at=None):
        args = {"query": q}
        if at is not None:
            args["time"] = str(at)
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode(args)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise AssertionError(f"query {q}: {body}")
        return body["data"]

    def points(self, selector, window="30m"):
        """Raw samples of every series matching selector within `window` before now:
        {(name, frozenset(labels without __name__)): {ts_seconds: value}}"""
        data = self.query(f"{selector}[{window}]", at=time.time())
        out = {}
        for s in data["result"]:
            labels = dict(s["metric"])
            name = labels.pop("__name__")
            d = out.setdefault((name, frozenset(labels.items())), {})
            for ts, v in s["values"]:
                d[int(round(float(ts)))] = float(v)
        return out

    def wait_points(self, selector, pred, timeout=40):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.points(selector)
            if pred(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: timeout waiting for {selector}; last: {last}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
