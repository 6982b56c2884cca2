"""vm.py - a throw-away VictoriaMetrics (Debian's /usr/bin/victoria-metrics)
for integration tests: free loopback port, temp storage, readiness wait,
force_flush and /api/v1/export helpers. Installed with apt-get if missing.
Python 3 standard library only.
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

VM_BIN = "/usr/bin/victoria-metrics"


def ensure_installed():
    if os.path.exists(VM_BIN):
        return
    subprocess.run(["apt-get", "install", "-y", "-q", "victoria-metrics"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class VictoriaMetrics:
    def __init__(self):
        ensure_installed()
        self.dir = tempfile.mkdtemp(prefix="ddma-vm-")
        self.port = _free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dd_url = self.base + "/datadog"
        self.log = open(os.path.join(self.dir, "vm.log"), "wb")
        self.proc = subprocess.Popen(
            [VM_BIN, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={os.path.join(self.dir, 'data')}", "-retentionPeriod=100y",
             "-search.disableCache"],
            stdout=self.log, stderr=self.log)
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("victoria-metrics exited; see " + self.log.name)
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("victoria-metrics not ready")

    def force_flush(self):
        with urllib.request.urlopen(self.base + "/internal/force_flush", timeout=10) as r:
            r.read()

    def export(self, match):
        """Series matching a selector: [{"metric": {labels}, "values": [..], "timestamps": [..ms]}]."""
        self.force_flush()
        data = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(self.base + "/api/v1/export", data=data, timeout=10) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]

    def points(self, match):
        """{(name, frozenset(labels without __name__)): {ts_seconds: value}}"""
        out = {}
        for s in self.export(match):
            labels = dict(s["metric"])
            name = labels.pop("__name__")
            key = (name, frozenset(labels.items()))
            d = out.setdefault(key, {})
            for ts, v in zip(s["timestamps"], s["values"]):
                d[ts // 1000] = v
        return out

    def wait_points(self, match, pred, timeout=40):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.points(match)
            if pred(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"VictoriaMetrics: timeout waiting for {match}; last: {last}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
