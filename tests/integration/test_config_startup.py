"""test_config_startup.py - everything that would make start-up fail is a
config error: `--check-config` reports it with file, line and key and exits
78, and starting the agent with it exits 78 (EX_CONFIG, so systemd's
Restart=on-failure stops) with the same message. Cases: dd_url without a
host ('http://'), DD_DD_URL likewise (no line: the environment), a
dogstatsd_socket path over 107 bytes, a forwarder_storage_path that cannot
be a writable directory, an explicitly set alerts_dir or notifiers_file that
does not exist; and the default disk queue path under an unusable run_path
(no key to name: exit 78 at start with the path in the message).
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentlib import BIN, Runner, free_port, to_yaml  # noqa: E402


def write(d, name, cfg):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return path


def base(d):
    os.makedirs(os.path.join(d, "alerts.d"), exist_ok=True)  # check-config reads the default one
    return {"hostname": "h", "dogstatsd_port": free_port(), "bind_host": "localhost",
            "status_port": 0, "run_path": os.path.join(d, "run"),
            "dogstatsd_output_file": os.path.join(d, "out.jsonl")}


def line_of(path, key):
    with open(path) as f:
        for i, ln in enumerate(f, 1):
            if ln.startswith(key + ":"):
                return i
    raise AssertionError(f"{key} not in {path}")


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN] + args, capture_output=True, text=True, errors="replace",
                          timeout=30, env=e)


def both_refuse(path, expect, env=None, what=""):
    """--check-config and a start both exit 78 and print expect and what."""
    for args in (["--check-config", "--config", path], ["--config", path]):
        r = run(args, env)
        assert r.returncode == 78, f"{args}: exit {r.returncode} (want 78):\n{r.stdout}{r.stderr[-2000:]}"
        for x in (expect, what):
            assert x in r.stderr, f"{args}: no {x!r} in:\n{r.stderr[-2000:]}"


def accepted(path, env=None):
    r = run(["--check-config", "--config", path], env)
    assert r.returncode == 0, f"{path} refused:\n{r.stdout}{r.stderr[-2000:]}"


def case(key, value, what, extra=None):
    d = tempfile.mkdtemp(prefix="ddma-cfgstart-")
    cfg = base(d)
    cfg.update(extra or {})
    cfg[key] = value(d) if callable(value) else value
    path = write(d, "agent.yaml", cfg)
    both_refuse(path, f"{path}:{line_of(path, key)}: {key}: ", what=what)
    return d


def test_dd_url_without_host():
    for url in ["http://", "https://", "http:///api", "http://:8080", "https://h:0", "https://h:x"]:
        case("dd_url", url, "must be http:// or https:// followed by a host")
    d = tempfile.mkdtemp(prefix="ddma-cfgstart-")
    cfg = base(d)
    for url in ["https://user@intake.example.com:8443/x", "http://[::1]:9/", "http://127.0.0.1:9"]:
        cfg["dd_url"] = url
        path = write(d, "agent.yaml", cfg)
        accepted(path)
    both_refuse(path, "DD_DD_URL: must be http:// or https:// followed by a host", {"DD_DD_URL": "http://"})


def test_socket_path_too_long():
    def long_path(d):
        return os.path.join(d, "s" * (108 - len(d) - 1))  # 108 bytes: one too many
    d = case("dogstatsd_socket", long_path, "path is 108 bytes, a Unix socket path can have at most 107")
    ok = base(d)
    ok["dogstatsd_socket"] = os.path.join(d, "s" * (107 - len(d) - 1))
    accepted(write(d, "ok.yaml", ok))


def test_unwritable_storage_path():
    def under_file(d):
        with open(os.path.join(d, "afile"), "w") as f:
            f.write("x")
        return os.path.join(d, "afile", "queue")
    on = {"forwarder_storage_max_size_in_bytes": 1 << 20, "dd_url": "http://127.0.0.1:9"}
    case("forwarder_storage_path", under_file, "cannot be used for the disk queue: Not a directory", on)
    # the same path with the disk queue off is not used, hence no error
    d = tempfile.mkdtemp(prefix="ddma-cfgstart-")
    cfg = base(d)
    cfg["forwarder_storage_path"] = under_file(d)
    accepted(write(d, "off.yaml", cfg))


def test_default_storage_under_unusable_run_path():
    d = tempfile.mkdtemp(prefix="ddma-cfgstart-")
    with open(os.path.join(d, "afile"), "w") as f:
        f.write("x")
    cfg = base(d)
    cfg.update({"run_path": os.path.join(d, "afile", "run"), "dd_url": "http://127.0.0.1:9",
                "forwarder_storage_max_size_in_bytes": 1 << 20})
    path = write(d, "agent.yaml", cfg)
    r = run(["--config", path])
    assert r.returncode == 78, f"exit {r.returncode}:\n{r.stderr[-2000:]}"
    assert os.path.join(d, "afile", "run", "transactions_to_retry") in r.stderr, r.stderr[-2000:]


def test_explicit_alert_paths_must_exist():
    case("alerts_dir", lambda d: os.path.join(d, "no-such-rules"), "")
    d = case("notifiers_file", lambda d: os.path.join(d, "no-such-notifiers.yaml"), "")
    r = run(["--check-config", "--config", os.path.join(d, "agent.yaml")])
    assert "No such file or directory" in r.stderr, r.stderr
    # a directory where a file is expected
    case("notifiers_file", lambda d: d, "is not a regular file")
    # set and present: fine
    d = tempfile.mkdtemp(prefix="ddma-cfgstart-")
    os.mkdir(os.path.join(d, "rules"))
    with open(os.path.join(d, "n.yaml"), "w") as f:
        f.write("{}\n")
    cfg = base(d)
    cfg.update({"alerts_dir": os.path.join(d, "rules"), "notifiers_file": os.path.join(d, "n.yaml")})
    accepted(write(d, "agent.yaml", cfg))


if __name__ == "__main__":
    Runner().run([test_dd_url_without_host, test_socket_path_too_long, test_unwritable_storage_path,
                  test_default_storage_under_unusable_run_path, test_explicit_alert_paths_must_exist])
