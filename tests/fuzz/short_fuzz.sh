#!/usr/bin/env bash
# short_fuzz.sh - CI's short libFuzzer pass over every harness.
#
#   tests/fuzz/short_fuzz.sh [BUILD_DIR] [SECONDS]
#
# Configures BUILD_DIR (default build-fuzz) with clang and -Dfuzz=true (or
# reconfigures it if it exists), builds every tests/fuzz/fuzz_<name> target
# whose source exists, and runs each for SECONDS (default 30) over a temporary
# copy of tests/fuzz/corpus/<name>/ (the committed corpus is never modified).
# Crash/leak/timeout inputs are kept in BUILD_DIR/fuzz-artifacts/.
# Exits non-zero if any harness fails to build, finds a problem, or starts
# with less than FUZZ_MIN_COV (default 100) coverage edges over its seed corpus:
# a harness-only instrumentation (the module libraries not compiled with
# -fsanitize=fuzzer-no-link) gives a few dozen, the real build hundreds+.
# Environment: FUZZ_JOBS (parallel runs, default 1), FUZZ_ARGS (extra libFuzzer
# flags), FUZZ_MIN_COV.
set -euo pipefail

src_root=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-build-fuzz}
seconds=${2:-30}
jobs=${FUZZ_JOBS:-1}
min_cov=${FUZZ_MIN_COV:-100}

case $seconds in
'' | *[!0-9]*)
	echo "short_fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2
	exit 2
	;;
esac
command -v clang >/dev/null || { echo "short_fuzz.sh: clang not found" >&2; exit 2; }

cd "$src_root"
if [ -f "$build_dir/build.ninja" ]; then
	meson configure "$build_dir" -Dfuzz=true >/dev/null
else
	CC=clang meson setup "$build_dir" -Dfuzz=true >/dev/null
fi
if ! grep -q "^C compiler for the host machine: clang" "$build_dir/meson-logs/meson-log.txt"; then
	echo "short_fuzz.sh: $build_dir was not configured with clang; use a fresh directory" >&2
	exit 2
fi

names=()
for f in tests/fuzz/fuzz_*.c; do
	[ -e "$f" ] || continue
	n=${f#tests/fuzz/fuzz_}
	names+=("${n%.c}")
done
if [ ${#names[@]} -eq 0 ]; then
	echo "short_fuzz.sh: no harnesses in tests/fuzz/" >&2
	exit 2
fi

targets=()
for n in "${names[@]}"; do
	targets+=("tests/fuzz/fuzz_$n")
done
ninja -C "$build_dir" "${targets[@]}"

build_abs=$(cd "$build_dir" && pwd)
artifacts="$build_abs/fuzz-artifacts"
mkdir -p "$artifacts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()
for n in "${names[@]}"; do
	bin="$build_abs/tests/fuzz/fuzz_$n"
	corpus="$tmp/$n"
	mkdir -p "$corpus"
	if [ -d "tests/fuzz/corpus/$n" ]; then
		cp -R "tests/fuzz/corpus/$n/." "$corpus/"
	fi
	echo "=== fuzz_$n: ${seconds}s over $(find "$corpus" -type f | wc -l) seed inputs"
	par=()
	if [ "$jobs" -gt 1 ]; then
		par=(-jobs="$jobs" -workers="$jobs")
	fi
	# shellcheck disable=SC2086
	if (cd "$tmp" && "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
		-print_final_stats=1 "${par[@]}" -artifact_prefix="$artifacts/${n}-" \
		${FUZZ_ARGS:-} "$corpus") >"$tmp/$n.log" 2>&1; then
		tail -n 12 "$tmp/$n.log" | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' || true
		cov0=$(grep -m1 -o 'INITED cov: [0-9]*' "$tmp/$n.log" | grep -o '[0-9]*$' || echo 0)
		cov1=$(grep -o ' cov: [0-9]*' "$tmp/$n.log" | tail -n 1 | grep -o '[0-9]*$' || echo 0)
		if [ "${cov0:-0}" -lt "$min_cov" ]; then
			echo "fuzz_$n: FAILED: only ${cov0:-0} coverage edges over the seed corpus (< $min_cov):" \
				"are the module libraries instrumented? (tests/fuzz/meson.build)"
			failed+=("$n")
		else
			echo "fuzz_$n: ok (coverage edges: $cov0 at start, $cov1 at end)"
		fi
	else
		tail -n 40 "$tmp/$n.log"
		echo "fuzz_$n: FAILED (artifacts in $artifacts)"
		failed+=("$n")
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "short_fuzz.sh: failing harnesses: ${failed[*]}" >&2
	exit 1
fi
echo "short_fuzz.sh: all ${#names[@]} harnesses ran ${seconds}s without findings"
