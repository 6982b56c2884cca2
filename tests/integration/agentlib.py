"""Helpers for integration tests: start the real dd-mini-agent binary with a
config written by the test, send real datagrams, read its /status endpoint.

Python 3 standard library only. Every test gets its own temp dir and free
loopback ports; every process started is stopped at exit.
"""
import atexit
import json
import os
import shutil
import signal as _signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.environ.get("DDMA_BIN") or os.path.join(
    os.environ.get("DDMA_BUILD_ROOT", "build"), "agent", "dd-mini-agent")
SOURCE_ROOT = os.environ.get("DDMA_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


def wait_until(pred, timeout, what):
    """Polls pred() every 0.1 s; returns its first true value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timeout waiting for " + what)


def asan_build():
    """True when the agent under test is built with AddressSanitizer, whose
    quarantine keeps freed memory: RSS bounds do not apply there."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


def free_port(family=socket.AF_INET, kind=socket.SOCK_DGRAM):
    """A port free for both UDP and TCP on loopback."""
    for _ in range(100):
        s = socket.socket(family, kind)
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        port = s.getsockname()[1]
        s.close()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            u.bind(("::1", port))
            u.close()
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port")


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # JSON strings are valid YAML double-quoted scalars


def to_yaml(d, indent=0):
    """Minimal YAML writer for test configs (maps, lists, scalars)."""
    pad = " " * indent
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            if not v:
                out.append(f"{pad}{k}: {{}}")
            else:
                out.append(f"{pad}{k}:")
                out.append(to_yaml(v, indent + 2))
        elif isinstance(v, list):
            out.append(f"{pad}{k}: []" if not v else f"{pad}{k}:")
            for item in v:
                if isinstance(item, dict):
                    sub = to_yaml(item, indent + 4).lstrip()
                    out.append(f"{pad}  - {sub}")
                else:
                    out.append(f"{pad}  - {yaml_scalar(item)}")
        else:
            out.append(f"{pad}{k}: {yaml_scalar(v)}")
    return "\n".join(out)


class Agent:
    """One dd-mini-agent process. cfg overrides the test defaults."""

    def __init__(self, cfg=None, tmpdir=None, name="agent"):
        self.dir = tmpdir or tempfile.mkdtemp(prefix="ddma-it-")
        self.port = free_port()
        self.status_port = free_port(kind=socket.SOCK_STREAM)
        self.out_path = os.path.join(self.dir, name + ".jsonl")
        self.log_path = os.path.join(self.dir, name + ".log")
        base = {
            "hostname": "test-host",
            "dogstatsd_port": self.port,
            "bind_host": "localhost",
            "status_port": self.status_port,
            "dogstatsd_flush_interval": 1,
            "run_path": os.path.join(self.dir, "run"),
            "dogstatsd_output_file": self.out_path,
            "log_level": "debug",
        }
        # DDMA_TEST_PIPELINES=N runs every integration test with N receive
        # pipelines (by hand; scripts/test.sh explains why CI does not).
        if os.environ.get("DDMA_TEST_PIPELINES"):
            base["dogstatsd_pipeline_count"] = int(os.environ["DDMA_TEST_PIPELINES"])
        if cfg:
            base.update(cfg)
        self.cfg = base
        self.config_path = os.path.join(self.dir, name + ".yaml")
        self.write_config()
        self.proc = None

    def write_config(self, cfg=None):
        if cfg is not None:
            self.cfg = cfg
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.cfg) + "\n")

    def start(self, wait=True, env=None):
        os.makedirs(self.cfg.get("run_path", self.dir), exist_ok=True)
        logf = open(self.log_path, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([BIN, "--config", self.config_path],
                                     stdout=logf, stderr=logf, env=e)
        _procs.append(self.proc)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log()}")
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("agent not ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}{path}", timeout=5) as r:
            return r.read().decode()

    def status(self):
        return json.loads(self.get("/status"))

    def send(self, payload, family=socket.AF_INET):
        if isinstance(payload, str):
            payload = payload.encode()
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.sendto(payload, ("127.0.0.1" if family == socket.AF_INET else "::1", self.port))
        s.close()

    def send_uds(self, payload, path=None):
        if isinstance(payload, str):
            payload = payload.encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(payload, path or self.cfg["dogstatsd_socket"])
        s.close()

    def wait_for(self, pred, timeout=10, what="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.status()
            if pred(last):
                return last
            time.sleep(0.05)
        raise AssertionError(f"timeout waiting for {what}; last status: {json.dumps(last)[:2000]}")

    def records(self):
        """Every JSON line the agent wrote (embedded default output)."""
        out = []
        try:
            with open(self.out_path) as f:
                for line in f:
                    out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=_signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("agent did not stop in time:\n" + self.log())
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Runner:
    """Tiny test runner printing 'N passed, N failed' (read by CI)."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, fns):
        only = os.environ.get("DDMA_ONLY")
        # DDMA_PART=k/n: only the k-th of n shares of fns (every n-th from the
        # k-th); tests/integration/meson.build runs a long script as n tests
        # side by side this way.
        part = os.environ.get("DDMA_PART")
        if part:
            k, n = (int(x) for x in part.split("/"))
            fns = fns[k - 1::n]
        for fn in fns:
            if only and only not in fn.__name__:
                continue
            t0 = time.time()
            try:
                fn()
                self.passed += 1
                print(f"PASS {fn.__name__} ({time.time() - t0:.1f}s)", flush=True)
            except Exception as e:  # noqa: BLE001 - report any failure
                self.failed += 1
                import traceback
                traceback.print_exc()
                print(f"FAIL {fn.__name__}: {e}", flush=True)
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
