#!/usr/bin/env python3
"""perf_check.py - the hot-path regression guard (tests/perf/meson.build).

Runs perf_driver under valgrind --tool=callgrind. The driver collects
instructions only inside each phase and dumps one callgrind file per phase
(counters: parse + aggregate of LINES counter lines over 10k existing
contexts; mix: the same with all six types; create: LINES lines that each
create a context; flush: the flush of the counters phase's 10k contexts).
Each phase's instructions per line (per context for flush) is compared with
budget.txt; any phase over its budget fails the test. Instruction counts are
deterministic for a given binary, so this catches regressions that wall-clock
benchmarks on a shared machine cannot. The driver runs twice: with the
portable seen-line cache key (budget key BUILD_KEY) and with the AES one
(BUILD_KEY-aes; not checked on a CPU without AES-NI).

usage: perf_check.py DRIVER BUDGET_FILE [BUILD_KEY]
Exit 0 = within budget, 1 = over budget or error, 77 = skipped (no valgrind,
or no budget line for BUILD_KEY, e.g. an unusual compiler/buildtype).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

LINES = 50000


def read_budget(path, key):
    budget = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].split()
            if len(line) == 3 and line[0] == key:
                budget[line[1]] = float(line[2])
    return budget


def dump_totals(outdir):
    """{phase: instructions} from callgrind's per-dump files."""
    res = {}
    for path in glob.glob(os.path.join(outdir, 'cg.out*')):
        phase, total = None, None
        with open(path) as f:
            for line in f:
                m = re.match(r'desc: Trigger: Client Request: (\S+)', line)
                if m:
                    phase = m.group(1)
                m = re.match(r'(?:totals|summary): (\d+)', line)
                if m:
                    total = int(m.group(1))
        if phase and total is not None:
            res[phase] = total
    return res


def run_driver(driver, extra):
    """(callgrind totals per phase, driver stdout), or None on failure."""
    with tempfile.TemporaryDirectory() as d:
        cmd = ['valgrind', '--tool=callgrind', '--collect-atstart=no',
               '--callgrind-out-file=' + os.path.join(d, 'cg.out'),
               driver, 'callgrind', str(LINES)]
        # meson test sets MALLOC_PERTURB_ (glibc then fills every malloc and
        # free): that would add allocation-size-dependent, random noise.
        env = {k: v for k, v in os.environ.items() if k != 'MALLOC_PERTURB_'}
        env.update(extra)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            print(f'FAIL: {" ".join(cmd)} exited {p.returncode}')
            return None
        return dump_totals(d), p.stdout


def check(budget, totals, out):
    """Prints each phase against its budget; True when one is over."""
    contexts = re.search(r'flush contexts=(\d+)', out)
    per = {'counters': LINES, 'mix': LINES, 'create': LINES, 'create_tl': LINES,
           'flush': int(contexts.group(1)) if contexts else 0}
    failed = False
    m = re.search(r'^bytes_per_context (.*)$', out, re.M)
    mem = dict(re.findall(r'(\w+)=([\d.]+)', m.group(1))) if m else {}
    for phase, limit in sorted(budget.items()):
        if phase.startswith('bytes_'):
            if phase[len('bytes_'):] not in mem:
                print(f'FAIL: {phase}: not in the bytes_per_context line (driver output: {out!r})')
                failed = True
                continue
            v = float(mem[phase[len('bytes_'):]])
            verdict = 'ok' if v <= limit else 'OVER BUDGET'
            print(f'  {phase:11s} {v:9.1f} bytes/context         budget {limit:9.1f}  {verdict}')
            failed |= v > limit
            continue
        if phase not in totals or not per.get(phase):
            print(f'FAIL: phase {phase}: no callgrind dump (driver output: {out!r})')
            failed = True
            continue
        v = totals[phase] / per[phase]
        verdict = 'ok' if v <= limit else 'OVER BUDGET'
        print(f'  {phase:9s} {v:9.1f} instructions/{"context" if phase == "flush" else "line"}'
              f'  budget {limit:9.1f}  {verdict}')
        failed |= v > limit
    return failed


def main():
    driver, budget_file = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else 'gcc-debugoptimized'
    if not shutil.which('valgrind'):
        print('SKIP: valgrind not installed (scripts/deps.sh --test installs it)')
        return 77
    failed = False
    ran = 0
    # The seen-line cache key has two implementations (parse/keyhash.h):
    # portable (budget key KEY) and AES (KEY-aes, where the CPU has AES-NI).
    for suffix, extra in (('', {'PERF_KEY_PLAIN': '1'}), ('-aes', {})):
        budget = read_budget(budget_file, key + suffix)
        if not budget:
            print(f'no budget line for build "{key + suffix}" in {budget_file}: not checked')
            continue
        r = run_driver(driver, extra)
        if r is None:
            return 1
        totals, out = r
        impl = re.search(r'^key=(\S+)', out, re.M)
        if suffix == '-aes' and (not impl or impl.group(1) != 'aes'):
            print('this CPU has no AES-NI: the AES key budget is not checked')
            continue
        print(f'{key + suffix}:')
        failed |= check(budget, totals, out)
        ran += 1
    if not ran:
        print(f'SKIP: no budget checked for build "{key}"')
        return 77
    if failed:
        print('A phase is over budget: find the cause (callgrind_annotate on a run of\n'
              '`valgrind --tool=callgrind --collect-atstart=no perf_driver callgrind`),\n'
              'or, for an intended change, update tests/perf/budget.txt as it says.')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
