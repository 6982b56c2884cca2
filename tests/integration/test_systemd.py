"""The systemd unit: systemd-analyze verify accepts it, its exposure under
`systemd-analyze security --offline=true` is at most 2.0 (docs/RELIABILITY.md X3),
and it keeps the contract the daemon relies on (Type=notify, watchdog,
credential, state and runtime directories).

verify needs ExecStart= to name an existing binary, so it runs on a copy of
systemd/dd-mini-agent.service in a temp dir pointed at the built binary.
Skips (exit 77) only if systemd-analyze is not installed.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

from pkgtestlib import BIN, SOURCE_ROOT, run_tests, skip

UNIT = os.path.join(SOURCE_ROOT, "systemd", "dd-mini-agent.service")
BUILD_ROOT = os.environ.get("DDMA_BUILD_ROOT", "")
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def directives(text):
    """[(section, key, value)] in file order; keys may repeat."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        out.append((section, key.strip(), value.strip()))
    return out


def values(text, key, section="Service"):
    return [v for s, k, v in directives(text) if s == section and k == key]


def analyze(*args):
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60)


def verify_copy(text, name="dd-mini-agent.service"):
    """Run systemd-analyze verify on text saved as a unit; (rc, output)."""
    d = tempfile.mkdtemp(prefix="ddma-unit-")
    try:
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = analyze("verify", "--man=no", path)
        return r.returncode, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def with_binary(text, binary):
    text2 = re.sub(r"^(ExecStart|ExecReload)=\S+", lambda m: m.group(1) + "=" + binary, text, flags=re.M)
    assert text2 != text or binary == "/usr/bin/dd-mini-agent", "ExecStart= not rewritten"
    return text2


def exposure(path):
    r = analyze("security", "--offline=true", "--no-pager", path)
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
    assert m, f"no overall exposure in systemd-analyze output (rc {r.returncode}):\n{out}"
    return float(m.group(1)), out


def test_verify_accepts_unit():
    assert os.access(BIN, os.X_OK), f"built binary {BIN} missing"
    rc, out = verify_copy(with_binary(read(UNIT), os.path.abspath(BIN)))
    # verify exits 0 even for "Invalid syntax, ignoring" lines: any message
    # about our unit is a failure.
    assert rc == 0 and "dd-mini-agent" not in out, f"verify rc {rc}:\n{out}"


def test_verify_rejects_broken_copies():
    """The check above can fail: a missing binary and a bad line are caught."""
    rc, out = verify_copy(with_binary(read(UNIT), "/nonexistent/dd-mini-agent"))
    assert rc != 0 and "not executable" in out, f"rc {rc}:\n{out}"
    text = with_binary(read(UNIT), os.path.abspath(BIN)) + "\n[Service]\nSetCredential=api_key:\n"
    rc, out = verify_copy(text)
    assert "Invalid syntax" in out, f"rc {rc}:\n{out}"


def test_security_exposure():
    level, out = exposure(UNIT)
    print(f"exposure of {os.path.basename(UNIT)}: {level}", flush=True)
    assert level <= MAX_EXPOSURE, f"exposure {level} > {MAX_EXPOSURE}:\n{out}"
    bad = [l for l in out.splitlines() if "ignoring" in l or "Unknown" in l]
    assert not bad, "unit lines systemd ignored:\n" + "\n".join(bad)


def test_security_measures_the_sandbox():
    """Without its sandbox the same unit scores far worse: the parse is real."""
    sandbox = ("Protect", "Private", "Restrict", "SystemCall", "Capability", "NoNew",
               "Memory", "Lock", "ProcSubset", "UMask", "RemoveIPC", "KeyringMode",
               "DevicePolicy", "AmbientCapabilities", "User=", "Group=")
    kept = [l for l in read(UNIT).splitlines() if not l.startswith(sandbox)]
    d = tempfile.mkdtemp(prefix="ddma-unit-")
    try:
        path = os.path.join(d, "dd-mini-agent.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
        level, out = exposure(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert level > 8.0, f"unsandboxed exposure only {level}:\n{out}"


def test_daemon_contract():
    text = read(UNIT)
    expect = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "WatchdogSec": ["30"],
        "ExecStart": ["/usr/bin/dd-mini-agent --config /etc/dd-mini-agent/agent.yaml"],
        # the daemon itself: a minimal system has no /bin/kill
        "ExecReload": ["/usr/bin/dd-mini-agent --config /etc/dd-mini-agent/agent.yaml reload --pid $MAINPID"],
        "Restart": ["on-failure"],
        "RestartPreventExitStatus": ["78"],
        "User": ["dd-mini-agent"],
        "StateDirectory": ["dd-mini-agent"],
        "RuntimeDirectory": ["dd-mini-agent"],
        "LoadCredential": ["api_key:/etc/dd-mini-agent/api_key"],
        # systemd 252 fails the start when a LoadCredential= file is missing
        # unless SetCredential= gives a fallback; the daemon treats a
        # credential that is only whitespace as absent.
        "SetCredential": ["api_key:\\n"],
        "CapabilityBoundingSet": [""],
        "AmbientCapabilities": [""],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "SystemCallFilter": ["@system-service", "~@privileged @resources"],
        "UMask": ["0077"],
    }
    for key, want in expect.items():
        got = values(text, key)
        assert got == want, f"{key}=: want {want}, have {got}"
    assert values(text, "IPAddressDeny") == [], "IPAddressDeny= would cut the intake off"
    assert values(text, "WantedBy", "Install") == ["multi-user.target"]


def build_option(name):
    with open(os.path.join(BUILD_ROOT, "meson-info", "intro-buildoptions.json")) as f:
        for o in json.load(f):
            if o["name"] == name:
                return o["value"]
    raise KeyError(name)


def test_installed_unit_follows_prefix():
    """systemd/meson.build installs the unit as is for /usr, else a copy with
    the configured paths; check that copy when this build made one."""
    gen = os.path.join(BUILD_ROOT, "systemd", "dd-mini-agent.service")
    if not BUILD_ROOT or not os.path.isdir(os.path.join(BUILD_ROOT, "systemd")):
        print("no systemd/ in the build tree (subdir('systemd') not wired yet)", flush=True)
        return
    prefix = build_option("prefix")
    bindir = os.path.join(prefix, build_option("bindir"))
    confdir = os.path.join(prefix, build_option("sysconfdir"), "dd-mini-agent")
    if bindir == "/usr/bin" and confdir == "/etc/dd-mini-agent":
        assert not os.path.exists(gen), "unit generated although paths are the packaged ones"
        return
    want = read(UNIT).replace("/usr/bin/dd-mini-agent", os.path.join(bindir, "dd-mini-agent"))
    want = want.replace("/etc/dd-mini-agent", confdir)
    assert read(gen) == want, f"{gen} does not match the source unit with {bindir}, {confdir}"
    exec_start = values(want, "ExecStart")[0]
    assert exec_start.startswith(os.path.join(bindir, "dd-mini-agent") + " --config " + confdir)


if __name__ == "__main__":
    if not ANALYZE:
        skip("systemd-analyze not found (install systemd to run this test)")
    run_tests([test_verify_accepts_unit, test_verify_rejects_broken_copies,
                  test_security_exposure, test_security_measures_the_sandbox,
                  test_daemon_contract, test_installed_unit_follows_prefix])
