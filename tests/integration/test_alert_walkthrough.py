"""The alert walkthrough and the one loader.

- examples/README.md's test-rules block is what the binary prints today;
  the seed scenario fixture (leak, stop, restart) passes; a fixture naming an
  unknown state (CRTICAL) or rule exits 2.
- examples/leaky_service/demo.yaml, with its relative alerts_dir and
  notifiers_file, is accepted by --check-config from any working directory
  and the daemon loads the same 2 rules and 2 notifiers.
- Inline `notifiers:` in agent.yaml: --check-config and the daemon accept the
  same file, and both reject a rule naming an unknown notifier (exit 78).
"""
import os
import re
import subprocess
import tempfile

from agentlib import BIN, SOURCE_ROOT, Agent, Runner, free_port

BIN_ABS = os.path.abspath(BIN)


def run(args, cwd=SOURCE_ROOT):
    return subprocess.run([BIN_ABS] + args, cwd=cwd, capture_output=True, text=True, timeout=60)


def readme_block(cmd):
    """The lines printed under `$ <cmd>` in examples/README.md."""
    with open(os.path.join(SOURCE_ROOT, "examples", "README.md")) as f:
        text = f.read()
    m = re.search(r"^\$ " + re.escape(cmd) + r"\n(.*?)^```", text, re.S | re.M)
    assert m, f"no block for {cmd}"
    return m.group(1)


def test_readme_fixture_output():
    cmd = "./build/agent/dd-mini-agent test-rules conf.d/alerts.d examples/leaky_service/fixture.yaml"
    r = run(cmd.split()[1:])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == readme_block(cmd), r.stdout


def test_seed_scenario_fixture():
    r = run(["test-rules", "conf.d/alerts.d", "examples/leaky_service/fixture_restart.yaml"])
    assert r.returncode == 0, r.stdout
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("+")]
    heap = [ln.split()[2:5] for ln in lines if "heap_growth_rate_high" in ln]
    # one page for the leak, its resolve at the restart, no page for the warm-up
    assert heap == [["OK", "->", "PENDING"], ["PENDING", "->", "CRITICAL"], ["CRITICAL", "->", "OK"],
                    ["OK", "->", "PENDING"], ["PENDING", "->", "OK"]], r.stdout
    assert "CRITICAL -> OK value=-48496640 <= 5242880" in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("8 expectation(s), 0 failed"), r.stdout


def test_fixture_typos_exit_2():
    with open(os.path.join(SOURCE_ROOT, "examples", "leaky_service", "fixture_restart.yaml")) as f:
        good = f.read()
    with tempfile.TemporaryDirectory() as d:
        for bad, what in ((good.replace("state: CRITICAL}", "state: CRTICAL}", 1), "unknown state 'CRTICAL'"),
                          (good.replace("rule: gc_uncollectable_high", "rule: gc_uncolectable_high", 1),
                           "unknown rule 'gc_uncolectable_high'")):
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write(bad)
            r = run(["test-rules", "conf.d/alerts.d", path])
            assert r.returncode == 2, (r.returncode, r.stdout)
            assert what in r.stdout and "bad.yaml:" in r.stdout, r.stdout


def test_demo_config_relative_paths():
    demo = os.path.join(SOURCE_ROOT, "examples", "leaky_service", "demo.yaml")
    with tempfile.TemporaryDirectory() as elsewhere:
        r = run(["--check-config", "--config", demo], cwd=elsewhere)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"alerts: 2 rule\(s\) in \S+/conf.d/alerts.d, 2 notifier\(s\) in \S+/examples/leaky_service/"
                     r"notifiers.yaml", r.stdout), r.stdout
    # the daemon, with the same relative paths (a copy of the layout: free ports)
    a = Agent()
    try:
        layout = os.path.join(a.dir, "examples", "leaky_service")
        os.makedirs(layout)
        os.symlink(os.path.join(SOURCE_ROOT, "conf.d"), os.path.join(a.dir, "conf.d"))
        with open(os.path.join(SOURCE_ROOT, "examples", "leaky_service", "notifiers.yaml")) as f:
            notifiers = f.read()
        with open(os.path.join(layout, "notifiers.yaml"), "w") as f:
            f.write(notifiers)
        a.cfg.update({"alerts_dir": "../../conf.d/alerts.d", "notifiers_file": "notifiers.yaml"})
        a.config_path = os.path.join(layout, "demo.yaml")
        a.write_config()
        a.start()
        assert re.search(r"alerts: 2 rule\(s\) from \S+conf.d/alerts.d, 2 notifier\(s\) from \S+notifiers.yaml",
                         a.log()), a.log()[-2000:]
    finally:
        a.cleanup()


INLINE = """
notifiers:
  inline-hook: {{type: webhook, url: "http://127.0.0.1:{port}/hook"}}
"""
RULE = """rules:
  - name: inline_rule
    query: "last(last_10s):avg:it.inline{{*}} > 1"
    notify: [{notifier}]
"""


def test_inline_notifiers_same_for_check_and_daemon():
    for notifier, ok in (("inline-hook", True), ("no-such-hook", False)):
        a = Agent()
        try:
            rules = os.path.join(a.dir, "rules")
            os.makedirs(rules)
            with open(os.path.join(rules, "r.yaml"), "w") as f:
                f.write(RULE.format(notifier=notifier))
            a.cfg["alerts_dir"] = rules
            a.write_config()
            with open(a.config_path, "a") as f:
                f.write(INLINE.format(port=free_port()))
            r = run(["--check-config", "--config", a.config_path])
            if ok:
                assert r.returncode == 0, r.stdout + r.stderr
                assert "1 notifier(s) in " + a.config_path in r.stdout, r.stdout
                a.start()
                assert "1 notifier(s) from " + a.config_path in a.log(), a.log()[-2000:]
            else:
                assert r.returncode == 78, r.stdout + r.stderr
                assert "unknown notifier 'no-such-hook'" in r.stdout, r.stdout
                a.start(wait=False)
                assert a.proc.wait(10) == 78, a.log()
                assert "unknown notifier 'no-such-hook'" in a.log(), a.log()
        finally:
            a.cleanup()


if __name__ == "__main__":
    Runner().run([test_readme_fixture_output, test_seed_scenario_fixture, test_fixture_typos_exit_2,
                  test_demo_config_relative_paths, test_inline_notifiers_same_for_check_and_daemon])
