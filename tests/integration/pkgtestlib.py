"""Shared bits of test_systemd.py and test_package.py: paths from the meson
test environment and a tiny runner printing PASS/FAIL lines and
'N passed, N failed' like agentlib.Runner. Kept apart from agentlib so these
two tests need nothing but the standard library and the unit/package files.
"""
import os
import sys
import time
import traceback

SOURCE_ROOT = os.environ.get("DDMA_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("DDMA_BIN") or os.path.join(
    os.environ.get("DDMA_BUILD_ROOT", "build"), "agent", "dd-mini-agent")


def skip(reason):
    """Exit with meson's 'skipped' code, saying why."""
    print(f"SKIP: {reason}", flush=True)
    sys.exit(77)


def run_tests(fns, stop_on_failure=False):
    """Run fns in order; with stop_on_failure, steps after a failed one (which
    depend on it) are reported as not run instead of failing in cascade."""
    only = os.environ.get("DDMA_ONLY")
    passed = failed = 0
    for i, fn in enumerate(fns):
        if stop_on_failure and failed:
            print("NOT RUN " + ", ".join(f.__name__ for f in fns[i:]), flush=True)
            break
        if only and only not in fn.__name__:
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            print(f"PASS {fn.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report any failure
            failed += 1
            traceback.print_exc()
            print(f"FAIL {fn.__name__}: {e}", flush=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
