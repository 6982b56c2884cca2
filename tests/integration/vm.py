"""vm.py - a throw-away VictoriaMetrics (Debian's /usr/bin/victoria-metrics)
for integration tests: free loopback port, temp storage, readiness wait,
force_flush and /api/v1/export helpers; shared_vm() for a script's tests. Installed with apt-get if missing.
Python 3 standard library only.
"""
import json
import os
import subprocess
import urllib.parse
import urllib.request

from tsdb import LocalServer

VM_BIN = "/usr/bin/victoria-metrics"


_shared = None


def shared_vm():
    """One VictoriaMetrics for every test of a script, started on first use
    (stopped at exit, as every LocalServer). Tests that share it tell their
    series apart by name or host."""
    global _shared
    if _shared is None:
        _shared = VictoriaMetrics()
    return _shared


def ensure_installed():
    if os.path.exists(VM_BIN):
        return
    subprocess.run(["apt-get", "install", "-y", "-q", "victoria-metrics"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


class VictoriaMetrics(LocalServer):
    NAME = "victoria-metrics"
    READY_PATH = "/health"

    def __init__(self):
        ensure_installed()
        self._prepare("ddma-vm-")
        self.dd_url = self.base + "/datadog"
        self._start([VM_BIN, f"-httpListenAddr=127.0.0.1:{self.port}",
                     f"-storageDataPath={os.path.join(self.dir, 'data')}", "-retentionPeriod=100y",
                     "-search.disableCache"], "vm.log")

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
