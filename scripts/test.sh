#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs (Debian packages,
# VictoriaMetrics, hot-shots), builds with gcc -Dwerror=true, runs every test;
# then builds with clang under ASan/UBSan (LeakSanitizer on) and runs it again;
# then a short libFuzzer run of every harness. Exits non-zero on any failure.
#   TEST_FAST=1 scripts/test.sh   skips the sanitizer and fuzz passes
#   TEST_BOOT=0 scripts/test.sh   skips the boot test (says so)
# The boot test (tests/boot/boot_test.py: the .deb in a booted bookworm
# container under systemd-nspawn) runs once, after the gcc suite, not in the
# sanitizer pass; its long mode is DDMA_BOOT_LONG=1 tests/boot/boot_test.py.
#   FUZZ_SECONDS=N                seconds per fuzz target (default 20)
# Build dirs (build-test, build-asan) are configured with the options below
# every time: reconfigured when they exist, wiped and set up again when that
# fails or when build-asan was made with another compiler.
# Both suites run with --num-processes 8: the integration tests that mostly
# wait run side by side, those that load the machine alone, and `package`
# only in the gcc pass (tests/integration/meson.build).
# The quick subset by hand: meson test -C build-test --setup quick
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
if [ -f tests/clients/package.json ] && [ ! -d tests/clients/node_modules/hot-shots ]; then
	(cd tests/clients && npm install --no-audit --no-fund --silent >/dev/null 2>&1) ||
		echo "test.sh: npm install hot-shots failed; the hot-shots tests will report it"
fi

step() { printf '\n=== %s ===\n' "$*"; }

# configure DIR OPTIONS...: DIR set up with exactly these options.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null ||
			meson setup --wipe "$dir" "$@" >/dev/null
	else
		rm -rf "$dir"
		meson setup "$dir" "$@" >/dev/null
	fi
}

step "gcc build (-Dwerror=true)"
configure build-test -Dwerror=true -Dtests=enabled
ninja -C build-test
jobs=8
step "test suite (gcc)"
meson test -C build-test --print-errorlogs --num-processes "$jobs"

step "boot test: the .deb under systemd in a container"
if [ "${TEST_BOOT:-1}" = 0 ]; then
	echo "test.sh: boot test NOT run (TEST_BOOT=0)"
else
	rc=0
	python3 tests/boot/boot_test.py || rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "test.sh: boot test SKIPPED (reason above)"
	elif [ "$rc" -ne 0 ]; then
		echo "test.sh: boot test FAILED ($rc)"
		exit "$rc"
	fi
fi

if [ -z "${TEST_FAST:-}" ]; then
	step "clang build with ASan/UBSan (-Dwerror=true)"
	if [ -f build-asan/build.ninja ] &&
		! grep -q "^C compiler for the host machine: clang" build-asan/meson-logs/meson-log.txt; then
		rm -rf build-asan
	fi
	CC=clang configure build-asan -Dwerror=true -Dtests=enabled \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	# DDMA_TEST_PIPELINES=2 would run every integration test with two receive
	# pipelines; not in CI: a few tests' exact expectations (per-pipeline caps,
	# same-second gauges from several sockets) depend on how the kernel hashes
	# senders, so they pin one pipeline. test_pipelines covers two in every pass.
	step "test suite (clang, ASan/UBSan, LeakSanitizer)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --print-errorlogs --num-processes "$jobs" --timeout-multiplier 3
	if [ -x tests/fuzz/short_fuzz.sh ] || [ -f tests/fuzz/short_fuzz.sh ]; then
		step "short fuzz run"
		bash tests/fuzz/short_fuzz.sh build-fuzz "${FUZZ_SECONDS:-20}"
	fi
fi
step "all test passes done"
