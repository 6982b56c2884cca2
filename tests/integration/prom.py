"""prom.py - a throw-away Prometheus (Debian's /usr/bin/prometheus, 2.42) for
integration tests: free loopback port, temp storage, no scrape targets, the
remote write receiver on (--web.enable-remote-write-receiver), readiness wait,
and raw samples read back through the HTTP query API. Python 3 stdlib only.
"""
import json
import os
import time
import urllib.parse
import urllib.request

from tsdb import LocalServer

PROM_BIN = "/usr/bin/prometheus"


class Prometheus(LocalServer):
    NAME = "prometheus"
    READY_PATH = "/-/ready"
    READY_TIMEOUT = 60
    STOP_TIMEOUT = 15

    def __init__(self):
        if not os.path.exists(PROM_BIN):
            raise RuntimeError(f"{PROM_BIN} missing: scripts/deps.sh --test installs Debian's prometheus")
        self._prepare("ddma-prom-")
        self.write_url = self.base + "/api/v1/write"
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        self._start([PROM_BIN, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{self.port}",
                     f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                     "--web.enable-remote-write-receiver", "--log.level=warn"], "prometheus.log")

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
