"""The daemon's command line: --version, --help, --check-config, signals."""
import os
import re
import signal
import subprocess
import tempfile

from agentlib import BIN, SOURCE_ROOT, Agent, Runner


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("dd-mini-agent "), r
    r = run("--help")
    assert r.returncode == 0 and "--check-config" in r.stdout, r
    r = run("no-such-command")
    assert r.returncode == 64 and "unknown command" in r.stderr, r


def test_check_config_shipped_file():
    r = run("--check-config", "--config", os.path.join(SOURCE_ROOT, "conf.d", "agent.yaml"))
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def test_check_config_errors_name_file_line_key():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write("hostname: h\ndogstatsd_port: 99999\nno_such_key: 1\ndogstatsd_buffer_size: lots\n")
    r = run("--check-config", "--config", path)
    assert r.returncode == 78, r
    assert f"{path}:2: dogstatsd_port" in r.stderr, r.stderr
    assert f"{path}:4: dogstatsd_buffer_size" in r.stderr, r.stderr
    assert f"{path}:3: no_such_key" in r.stderr, r.stderr  # unknown key: a warning
    r = run("check-config", "--config", os.path.join(d, "missing.yaml"))
    assert r.returncode == 78 and "missing.yaml" in r.stderr, r


def test_invalid_config_refuses_to_start():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write("dogstatsd_port: [1]\n")
    r = subprocess.run([BIN, "--config", path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 78, r
    assert path in r.stderr


def stops_cleanly(sig):
    a = Agent().start()
    try:
        a.send("x:1|c")
        a.wait_for(lambda s: s["dogstatsd"]["lines"] == 1, what="one line")
        rc = a.stop(sig)
        assert rc == 0, f"exit code {rc}\n{a.log()}"
        assert "stopped" in a.log()
        # the final flush wrote the open bucket
        recs = [r for r in a.records() if r.get("metric") == "x"]
        assert recs and recs[0]["value"] == 0.1, recs
    finally:
        a.cleanup()


def test_sigterm_stops_cleanly():
    stops_cleanly(signal.SIGTERM)


def test_sigint_stops_cleanly():
    stops_cleanly(signal.SIGINT)


def test_status_command():
    a = Agent().start()
    try:
        a.send("status.test:1|c\nbad line")
        a.wait_for(lambda s: s["dogstatsd"]["lines"] == 2, what="two lines")
        r = run("status", "--config", a.config_path)
        assert r.returncode == 0, r.stderr
        assert re.search(r"^  Lines +2$", r.stdout, re.M), r.stdout
        assert re.search(r"^  Metric parse errors +1$", r.stdout, re.M), r.stdout
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_version_and_help, test_check_config_shipped_file,
                  test_check_config_errors_name_file_line_key, test_invalid_config_refuses_to_start,
                  test_sigterm_stops_cleanly, test_sigint_stops_cleanly, test_status_command])
