"""The Debian package: packaging/build-deb.sh builds it from this tree, it
installs on this machine with dpkg -i, its files are where the unit and the
docs say, its configuration is valid (dd-mini-agent --check-config exits 0)
and marked as conffiles, a reinstall keeps the administrator's edits, and
dpkg -r then dpkg -P remove everything.

Installs into the running system, so it needs root (CI runs as root) and
skips (exit 77), saying why, when not root, when dpkg-buildpackage is
missing, or when dd-mini-agent is already installed (it is never touched).
The system user the package creates is deleted again at the end if this
test created it.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from agentlib import free_port
from pkgtestlib import SOURCE_ROOT, run_tests, skip

PKG = "dd-mini-agent"
USER = "dd-mini-agent"
CONFDIR = "/etc/dd-mini-agent"
STATEDIR = "/var/lib/dd-mini-agent"
BIN_PATH = "/usr/bin/dd-mini-agent"
UNIT_PATH = "/lib/systemd/system/dd-mini-agent.service"
SYSTEMD_RUNNING = os.path.isdir("/run/systemd/system")

state = {"deb": None, "user_existed": False, "outdir": None}


def sh(*args, check=True, timeout=120, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def pkg_status():
    r = sh("dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG, check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def shipped_conffiles():
    """Config files conf.d/meson.build installs, as paths under /etc."""
    src = os.path.join(SOURCE_ROOT, "conf.d")
    out = [f"{CONFDIR}/agent.yaml"]
    if os.path.isfile(os.path.join(src, "notifiers.yaml")):
        out.append(f"{CONFDIR}/notifiers.yaml")
    alerts = os.path.join(src, "alerts.d")
    for root, _, files in os.walk(alerts):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), alerts)
            out.append(f"{CONFDIR}/alerts.d/{rel}")
    return sorted(out)


def meson_version():
    top = read(os.path.join(SOURCE_ROOT, "meson.build"))
    return re.search(r"^\s*version:\s*'([^']+)'", top, re.M).group(1)


def test_rpm_spec_in_step():
    """The spec builds the same version, files and user as the .deb."""
    spec = read(os.path.join(SOURCE_ROOT, "packaging", "rpm", "dd-mini-agent.spec"))
    version = re.search(r"^Version:\s*(\S+)", spec, re.M).group(1)
    assert version == meson_version(), f"spec Version {version} vs meson {meson_version()}"
    changelog = read(os.path.join(SOURCE_ROOT, "packaging", "debian", "changelog"))
    deb_version = re.match(r"dd-mini-agent \(([^)]+)\)", changelog).group(1)
    assert deb_version.rsplit("-", 1)[0] == version, f"debian {deb_version} vs spec {version}"
    rules = read(os.path.join(SOURCE_ROOT, "packaging", "debian", "rules"))
    opts = "-Dtests=disabled -Dfuzz=false -Dsystemd=enabled -Dpackaged_config=true"
    assert opts in spec and opts in rules, "meson options differ between spec and rules"
    for entry in ("%{_bindir}/dd-mini-agent", "%{_unitdir}/dd-mini-agent.service",
                  "%config(noreplace) %{_sysconfdir}/dd-mini-agent/*",
                  "useradd -r -g dd-mini-agent", "%systemd_post dd-mini-agent.service"):
        assert entry in spec, f"spec lacks {entry!r}"
    if shutil.which("rpmspec"):
        r = sh("rpmspec", "-q", "--qf", "%{name}-%{version}\n",
               os.path.join(SOURCE_ROOT, "packaging", "rpm", "dd-mini-agent.spec"))
        assert r.stdout.strip() == f"dd-mini-agent-{version}", r.stdout


def test_build_deb():
    top = read(os.path.join(SOURCE_ROOT, "meson.build"))
    for sub in ("systemd", "conf.d"):
        assert re.search(r"^\s*subdir\('%s'\)" % re.escape(sub), top, re.M), \
            f"top-level meson.build lacks subdir('{sub}'): the package would miss its files"
    state["outdir"] = tempfile.mkdtemp(prefix="ddma-deb-")
    # niced: the tests running beside this one (tests/integration/meson.build) keep their timing
    r = sh("nice", "-n", "10", os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), state["outdir"],
           check=False, timeout=1200)
    assert r.returncode == 0, f"build-deb.sh failed ({r.returncode}):\n{r.stderr[-6000:]}"
    deb = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(deb) and deb.endswith(".deb"), f"no .deb at {deb!r}"
    state["deb"] = deb
    version = sh("dpkg-deb", "-f", deb, "Version").stdout.strip()
    assert version.startswith(meson_version() + "-"), f"{version} vs meson {meson_version()}"
    files = sh("dpkg-deb", "-c", deb).stdout
    for path in (BIN_PATH, UNIT_PATH, *shipped_conffiles()):
        assert re.search(r" \.%s$" % re.escape(path), files, re.M), f"{path} not in the .deb:\n{files}"


def test_install():
    assert state["deb"], "no .deb built"
    sh("dpkg", "-i", state["deb"], timeout=300)
    assert pkg_status() == "ii", pkg_status()

    st = os.stat(BIN_PATH)
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 and st.st_uid == 0, oct(st.st_mode)
    assert read(UNIT_PATH) == read(os.path.join(SOURCE_ROOT, "systemd", "dd-mini-agent.service"))
    # conf.d/agent.yaml with the packages' quiet default (packaging/packaged_config.py)
    want = os.path.join(state["outdir"], "packaged-agent.yaml")
    sh(sys.executable, os.path.join(SOURCE_ROOT, "packaging", "packaged_config.py"),
       os.path.join(SOURCE_ROOT, "conf.d", "agent.yaml"), want)
    assert read(f"{CONFDIR}/agent.yaml") == read(want)
    assert "\ndogstatsd_output_file: none\n" in read(want)

    r = sh("dpkg-query", "-W", "-f=${Conffiles}", PKG)
    conffiles = sorted(l.split()[0] for l in r.stdout.splitlines() if l.strip())
    assert conffiles == shipped_conffiles(), f"conffiles {conffiles}"

    pw = pwd.getpwnam(USER)
    assert 0 < pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin"), pw
    st = os.stat(STATEDIR)
    assert st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o750, (st.st_uid, oct(st.st_mode))

    if SYSTEMD_RUNNING:
        r = sh("systemctl", "is-active", PKG, check=False)
        assert r.stdout.strip() == "active", f"service not active after install: {r.stdout}"
    else:
        print("no systemd running here: service start not checked", flush=True)


def test_installed_config_is_valid():
    r = sh(BIN_PATH, "--check-config", "--config", f"{CONFDIR}/agent.yaml", check=False)
    assert r.returncode == 0, f"check-config -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    # The service user can read everything it needs.
    r = sh("setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
           BIN_PATH, "--check-config", "--config", f"{CONFDIR}/agent.yaml", check=False)
    assert r.returncode == 0, f"check-config as {USER} -> {r.returncode}\n{r.stderr}"


def test_installed_unit_verifies():
    if not shutil.which("systemd-analyze"):
        print("systemd-analyze absent: installed unit not verified", flush=True)
        return
    r = sh("systemd-analyze", "verify", "--man=no", UNIT_PATH, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and PKG not in out, f"verify -> {r.returncode}\n{out}"


def notify_wait(sock, proc, want, timeout):
    """Read sd_notify datagrams until one holds the line want."""
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        sock.settimeout(max(0.05, min(0.5, deadline - time.time())))
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            if proc.poll() is not None:
                break
            continue
        seen.append(msg)
        if want in msg.splitlines():
            return
    err = proc.stderr.read() if proc.poll() is not None else "(still running)"
    raise AssertionError(f"no {want} within {timeout}s; got {seen}; rc {proc.poll()}; stderr: {err}")


def test_service_user_runs_installed_config():
    """What systemd does, by hand: run the installed daemon as the service
    user with the installed config, NOTIFY_SOCKET, WATCHDOG_USEC and a
    credentials directory holding the unit's fallback api_key (a lone
    newline, meaning no key); expect READY=1, WATCHDOG=1, RELOADING=1 then
    READY=1 on SIGHUP, STOPPING=1 and exit 0 on SIGTERM."""
    pw = pwd.getpwnam(USER)
    d = tempfile.mkdtemp(prefix="ddma-svc-")
    os.chmod(d, 0o755)
    creds = os.path.join(d, "creds")
    os.mkdir(creds, 0o500)
    with open(os.path.join(creds, "api_key"), "w", encoding="utf-8") as f:
        f.write("\n")
    os.chmod(os.path.join(creds, "api_key"), 0o400)
    for path in (creds, os.path.join(creds, "api_key")):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    # The installed configuration, with the listener on a free port and the
    # status endpoint off (8125 and 5012 may be taken on the test machine);
    # the files it names relative to its own directory named in /etc.
    conf = os.path.join(d, "agent.yaml")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(read(f"{CONFDIR}/agent.yaml"))
        f.write(f"\ndogstatsd_port: {free_port()}\nstatus_port: 0\n"
                f"alerts_dir: {CONFDIR}/alerts.d\nnotifiers_file: {CONFDIR}/notifiers.yaml\n")
    os.chmod(conf, 0o644)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "notify"))
    os.chmod(os.path.join(d, "notify"), 0o777)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": os.path.join(d, "notify"),
           "WATCHDOG_USEC": "2000000", "CREDENTIALS_DIRECTORY": creds}
    proc = subprocess.Popen(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
                             BIN_PATH, "--config", conf],
                            env=env, cwd="/", stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        notify_wait(sock, proc, "READY=1", 15)
        notify_wait(sock, proc, "WATCHDOG=1", 5)
        proc.send_signal(signal.SIGHUP)
        notify_wait(sock, proc, "RELOADING=1", 10)
        notify_wait(sock, proc, "READY=1", 10)
        proc.send_signal(signal.SIGTERM)
        notify_wait(sock, proc, "STOPPING=1", 10)
        rc = proc.wait(timeout=30)
        assert rc == 0, f"exit {rc}: {proc.stderr.read()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_reinstall_keeps_admin_edits():
    with open(f"{CONFDIR}/agent.yaml", "a", encoding="utf-8") as f:
        f.write("\n# edited by the administrator\n")
    with open(f"{CONFDIR}/api_key", "w", encoding="utf-8") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    os.chmod(f"{CONFDIR}/api_key", 0o600)
    sh("dpkg", "-i", state["deb"], timeout=300)
    assert pkg_status() == "ii"
    assert read(f"{CONFDIR}/agent.yaml").endswith("# edited by the administrator\n")
    assert os.path.isfile(f"{CONFDIR}/api_key")


def test_remove_keeps_config_then_purge_cleans():
    sh("dpkg", "-r", PKG, timeout=300)
    assert pkg_status() == "rc", pkg_status()
    assert not os.path.exists(BIN_PATH) and not os.path.exists(UNIT_PATH)
    assert os.path.isfile(f"{CONFDIR}/agent.yaml"), "remove must keep conffiles"
    sh("dpkg", "-P", PKG, timeout=300)
    assert pkg_status() == "", pkg_status()
    for path in (CONFDIR, STATEDIR, BIN_PATH, UNIT_PATH):
        assert not os.path.exists(path), f"{path} left after purge"


def cleanup():
    if pkg_status():
        sh("dpkg", "-P", PKG, check=False, timeout=300)
    if not state["user_existed"]:
        try:
            pwd.getpwnam(USER)
            sh("deluser", "--quiet", "--system", USER, check=False)
        except KeyError:
            pass
    if state["outdir"]:
        shutil.rmtree(state["outdir"], ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("needs root to install the package with dpkg -i")
    for tool in ("dpkg-buildpackage", "dpkg", "dh", "setpriv"):
        if not shutil.which(tool):
            skip(f"{tool} not found")
    if pkg_status():
        skip(f"{PKG} is already known to dpkg ({pkg_status()}); not touching it")
    try:
        pwd.getpwnam(USER)
        state["user_existed"] = True
    except KeyError:
        pass
    try:
        run_tests([test_rpm_spec_in_step, test_build_deb, test_install, test_installed_config_is_valid,
                   test_installed_unit_verifies, test_service_user_runs_installed_config,
                   test_reinstall_keeps_admin_edits,
                   test_remove_keeps_config_then_purge_cleans], stop_on_failure=True)
    finally:
        cleanup()
