"""test_sdnotify.py - what systemd receives from the daemon on $NOTIFY_SOCKET
(and `systemctl status` shows), with the built binary and a notify socket of
our own: READY=1 with a first STATUS=, then after every flush one line
"R lines/s, N contexts, intake STATE, K alerts firing". The intake state
follows the intake (ok; retrying with points queued while it answers 503;
ok again; sending while a slow intake has points in flight), the JSON lines output, or nothing at all with
dogstatsd_output_file: none, which also logs one warning and writes nothing.
A rule crossing its threshold shows as an alert firing.

The same under a real systemd, from the installed .deb: tests/boot/boot_test.py.
"""
import os
import re
import socket
import time

from agentlib import Agent, Runner, asan_build, wait_until
from alertlib import write_rules
from fault_intake import FaultIntake
from fwdlib import agent_for

# groups: rate, contexts, the intake state after "intake ", alerts firing
LINE = re.compile(r"^(\d+(?:\.\d)?) lines/s, (\d+) contexts?, intake (.+), (\d+) alerts? firing$")


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def wait(self, pred, timeout, what):
        """Reads datagrams until pred(parsed STATUS= line or raw lines) holds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            found = None
            for line in msg.splitlines():   # keep every line of the datagram in seen
                self.seen.append(line)
                found = found or pred(line)
            if found:
                return found
        raise AssertionError(f"no {what} within {timeout}s; last lines: {self.seen[-8:]}")

    def status(self, pred, timeout, what):
        """The next STATUS= summary for which pred(rate, contexts, intake, firing) holds."""
        def check(line):
            if not line.startswith("STATUS="):
                return None
            m = LINE.match(line[7:])
            if not m:
                return None
            v = (float(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4)))
            return v if pred(*v) else None
        return self.wait(check, timeout, what)

    def close(self):
        self.sock.close()


def start(a):
    ns = NotifySocket(a.dir)
    a.start(env={"NOTIFY_SOCKET": ns.path})
    ns.wait(lambda line: line == "READY=1", 10, "READY=1")
    return ns


def test_status_line_with_json_output():
    a = Agent()
    ns = None
    try:
        ns = start(a)
        assert any(line.startswith("STATUS=started") for line in ns.seen), ns.seen
        a.send("\n".join(f"sd.ctx{i}:1|c" for i in range(3)))
        rate, ctx, intake, firing = ns.status(lambda r, c, i, f: c == 3 and r > 0, 25, "3 contexts, lines/s > 0")
        assert intake == "off (JSON lines output)" and firing == 0, (rate, ctx, intake, firing)
        # nothing received since: the next lines say 0.0 lines/s
        ns.status(lambda r, c, i, f: r == 0, 10, "0.0 lines/s")
    finally:
        if ns:
            ns.close()
        a.cleanup()


def test_output_none_is_quiet_and_warns_once():
    a = Agent({"dogstatsd_output_file": "none"})
    ns = None
    try:
        ns = start(a)
        a.send("sd.quiet:1|c")
        ns.status(lambda r, c, i, f: i == "off (nothing forwarded)" and c == 1, 25,
                  "intake off (nothing forwarded)")
        ns.status(lambda r, c, i, f: True, 10, "a second flush")
        assert a.log().count("nothing is forwarded") == 1, a.log()[-3000:]
        assert not os.path.exists(a.out_path) and not os.path.exists(os.path.join(a.dir, "none")), \
            os.listdir(a.dir)
        assert "sd.quiet" not in a.log()
    finally:
        if ns:
            ns.close()
        a.cleanup()


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def test_no_intake_warning_repeats_hourly():
    """The warning comes back once an hour (monotonic clock), not at every
    flush: the agent runs under libfaketime with its clocks (monotonic
    included) moved one hour forward mid-run."""
    if not os.path.exists(LIBFAKETIME):
        print("SKIP test_no_intake_warning_repeats_hourly: libfaketime not installed (apt-get install faketime)")
        return
    if asan_build():
        print("SKIP test_no_intake_warning_repeats_hourly: libfaketime and ASan's start-up clash "
              "(see test_rel_clock.py)")
        return
    a = Agent({"dogstatsd_output_file": "none"})
    ns = None
    offset = os.path.join(a.dir, "offset")
    with open(offset, "w") as f:
        f.write("+0\n")
    try:
        ns = NotifySocket(a.dir)
        a.start(env={"NOTIFY_SOCKET": ns.path, "LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": offset,
                     "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_RESET": "1"})
        for _ in range(3):
            ns.status(lambda r, c, i, f: True, 10, "a flush")
        assert a.log().count("nothing is forwarded") == 1, a.log()[-3000:]
        with open(offset, "w") as f:
            f.write("+3605\n")
        ns.status(lambda r, c, i, f: True, 10, "a flush an hour later")
        wait_until(lambda: a.log().count("nothing is forwarded") == 2, 10, "the second warning")
        for _ in range(3):
            ns.status(lambda r, c, i, f: True, 10, "a flush")
        assert a.log().count("nothing is forwarded") == 2, a.log()[-3000:]
        assert a.stop() == 0, a.log()[-3000:]
    finally:
        if ns:
            ns.close()
        a.cleanup()


def test_intake_states():
    with FaultIntake() as fi:
        a = agent_for(fi.url)
        ns = None
        try:
            ns = start(a)
            a.send("sd.fwd:1|c")
            ns.status(lambda r, c, i, f: i == "ok" and c == 1, 25, "intake ok")
            fi.set_script(default={"status": 503})
            a.send("sd.fwd:1|c")
            _, _, intake, _ = ns.status(lambda r, c, i, f: i.startswith("retrying"), 30,
                                        "intake retrying")
            n = int(re.match(r"retrying \((\d+) points queued\)$", intake).group(1))
            assert n > 0, intake
            fi.set_script(default={"status": 202})
            ns.status(lambda r, c, i, f: i == "ok", 30, "intake ok after recovery")
            # a slow intake that answers: in flight, not retrying
            fi.set_script(default={"status": 202, "delay": 2.5})
            a.send("sd.fwd:1|c")
            ns.status(lambda r, c, i, f: i.startswith("sending ("), 30, "intake sending")
            assert not any("retrying" in line for line in ns.seen[-3:]), ns.seen[-6:]
        finally:
            if ns:
                ns.close()
            a.cleanup()


def test_alert_firing_counted():
    a = Agent()
    ns = None
    try:
        rules = """rules:
  - name: sd_gauge_high
    query: "last(last_10s):avg:sd.gauge{*} by {host} > 10"
"""
        a.cfg["alerts_dir"] = write_rules(a.dir, rules)
        a.write_config()
        ns = start(a)
        a.send("sd.gauge:50|g")
        ns.status(lambda r, c, i, f: f == 1, 30, "1 alert firing")
    finally:
        if ns:
            ns.close()
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_status_line_with_json_output, test_output_none_is_quiet_and_warns_once,
                  test_no_intake_warning_repeats_hourly, test_intake_states, test_alert_firing_counted])
