"""test_rel_config.py - docs/RELIABILITY.md B4: hostile configuration files.

At start: each hostile file (wrong types, huge numbers, integer overflow,
deep nesting, a 1 MiB string, binary garbage, a missing file, a directory
instead of a file, a missing api_key_file) makes the daemon exit 78
(EX_CONFIG) quickly, with a message naming the file (and line and key where
there is one). Unknown keys are warnings, not errors (Datadog's agent accepts
them): the daemon starts. A missing notifiers_file or alerts_dir is not an
error either: both are documented as optional (conf.d/agent.yaml).
On reload (SIGHUP): the same hostile contents written over the running
config are refused; the daemon keeps running with its old config (hostname
and listener unchanged, lines still counted), agent.reload_errors counts each
refusal, the log says why (file:line: key); a valid file then reloads.
(test_daemon.py covers check-config messages; tests/unit/test_config.c every
key's type errors, one per line of tests/data/config/errors.yaml.)
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import BIN, Agent, Runner  # noqa: E402

# (name, file contents, text expected in stderr besides the path, line or None)
HOSTILE = [
    ("wrong type", "hostname: h\ndogstatsd_port: [1, 2]\n", "dogstatsd_port", 2),
    ("huge number", "dogstatsd_buffer_size: 99999999999999999999999999\n", "dogstatsd_buffer_size", 1),
    ("float overflow", "forwarder_timeout: 1e400\n", "forwarder_timeout", 1),
    ("negative size", "forwarder_storage_max_size_in_bytes: -5\n", "forwarder_storage_max_size_in_bytes", 1),
    ("deep nesting", "tags: " + "[" * 5000 + "]" * 5000 + "\n", None, None),
    ("1 MiB scalar", "hostname: " + "x" * (1 << 20) + "\n", "hostname", 1),
    ("binary", "\x00\x01\x02\xff\xfe garbage: [\n", None, None),
    ("not a map", "- a\n- b\n", None, None),
    ("missing api_key_file", "api_key_file: /nonexistent/ddma/key\n", "api_key_file", 1),
]


def start_fails(path, expect, line):
    t0 = time.time()
    r = subprocess.run([BIN, "--config", path], capture_output=True, text=True,
                       errors="replace", timeout=30)
    took = time.time() - t0
    assert r.returncode == 78, f"exit {r.returncode} (want 78):\n{r.stderr[-2000:]}"
    assert path in r.stderr, f"message does not name {path}:\n{r.stderr[-2000:]}"
    if line is not None:
        assert f"{path}:{line}" in r.stderr, f"no {path}:{line} in:\n{r.stderr[-2000:]}"
    if expect:
        assert expect in r.stderr, f"no {expect!r} in:\n{r.stderr[-2000:]}"
    assert took < 5, f"took {took:.1f}s to refuse"
    assert len(r.stderr) < 64 * 1024, f"{len(r.stderr)} bytes of messages"


def test_hostile_config_at_start_exits_78():
    d = tempfile.mkdtemp(prefix="ddma-b4-")
    for i, (name, text, expect, line) in enumerate(HOSTILE):
        path = os.path.join(d, f"c{i}.yaml")
        with open(path, "w", errors="surrogateescape") as f:
            f.write(text)
        try:
            start_fails(path, expect, line)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    start_fails(os.path.join(d, "missing.yaml"), None, None)
    os.mkdir(os.path.join(d, "adir.yaml"))
    start_fails(os.path.join(d, "adir.yaml"), None, None)


def test_unknown_key_is_a_warning():
    a = Agent({"no_such_key_at_all": 1})
    try:
        a.start()
        assert "no_such_key_at_all" in a.log(), a.log()[-2000:]
    finally:
        a.cleanup()


def test_hostile_config_on_reload_keeps_old():
    a = Agent({"hostname": "old-host"}).start()
    try:
        good = a.cfg
        for i, (name, text, expect, line) in enumerate(HOSTILE):
            with open(a.config_path, "w", errors="surrogateescape") as f:
                f.write(text)
            a.signal(signal.SIGHUP)
            st = a.wait_for(lambda s: s["agent"]["reload_errors"] >= i + 1, timeout=10,
                            what=f"reload refused ({name})")
            assert a.proc.poll() is None, f"{name}: agent exited {a.proc.returncode}"
            assert st["hostname"] == "old-host", (name, st["hostname"])
            assert st["agent"]["reloads"] == 0, (name, st["agent"])
            n = st["dogstatsd"]["lines"]
            a.send("still.up:1|c")
            a.wait_for(lambda s: s["dogstatsd"]["lines"] == n + 1, timeout=5, what=f"listener after {name}")
            if line is not None:
                assert f"{a.config_path}:{line}" in a.log(), f"{name}: log does not say why:\n{a.log()[-1500:]}"
        good = dict(good, hostname="new-host")
        a.write_config(good)
        a.signal(signal.SIGHUP)
        st = a.wait_for(lambda s: s["agent"]["reloads"] >= 1, timeout=10, what="valid reload")
        assert st["hostname"] == "new-host", st["hostname"]
        assert st["agent"]["reload_errors"] == len(HOSTILE), st["agent"]
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_hostile_config_at_start_exits_78, test_unknown_key_is_a_warning,
                  test_hostile_config_on_reload_keeps_old])
