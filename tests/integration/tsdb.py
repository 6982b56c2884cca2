"""tsdb.py - what the throw-away time-series servers of the integration tests
share (vm.py's VictoriaMetrics, prom.py's Prometheus): a free loopback port, a
temporary directory with the server's log, a readiness wait on an HTTP path,
polling for points, and a stop that cleans up. Python 3 stdlib only.
"""
import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class LocalServer:
    """Subclasses set NAME, READY_PATH, READY_TIMEOUT and STOP_TIMEOUT, call
    _prepare() for self.dir/self.port/self.base, then _start(argv), and
    implement points(selector) -> {(name, frozenset(labels)): {ts: value}}."""
    NAME = "server"
    READY_PATH = "/"
    READY_TIMEOUT = 30
    STOP_TIMEOUT = 10

    def _prepare(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.port = free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def _start(self, argv, log_name):
        self.log = open(os.path.join(self.dir, log_name), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + self.READY_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.NAME} exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + self.READY_PATH, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.NAME} not ready")

    def wait_points(self, selector, pred, timeout=40):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.points(selector)
            if pred(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"{self.NAME}: timeout waiting for {selector}; last: {last}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
