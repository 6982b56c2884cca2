#!/usr/bin/env bash
# bench/tagrules.sh - the cost per line of dogstatsd_tags_exclude: bench/run.sh
# (agent and receive-only baseline in the same run, the agent/baseline
# CPU-per-line ratio) with 0 and with 10 rules, on the seen-line fast path
# (warm) and on the new-context path (cold).
#
#   warm   CONTEXTS (10000) contexts: after their second sighting every line
#          is taken by the seen-line cache, which the rules never touch; the
#          10 rules match no tag of loadgen's (ctx, t1, t2), so the result is
#          the same context: the ratio must stay the same.
#   cold   run.sh's 200k scenario (200,000 lines/s for DURATION s: a rate the
#          agent keeps up with while creating contexts) over COLD_CONTEXTS
#          (2000000) contexts: most lines are new (full parse, rules applied, context
#          created); the tag value limit is off (run.sh's TAG_VALUE_LIMIT=0,
#          in warm too) so only the rules differ.
#          The 10 rules include one that matches (t2 on loadgen.metric.1*):
#          its lines lose t2.
#
# usage: bench/tagrules.sh [--build DIR] [warm] [cold]   (default: both)
# Knobs: REPEAT=3 (pairs per variant, median ratio), BURST_LINES, CONTEXTS,
#   COLD_CONTEXTS, RCVBUF=8388608, and run.sh's.
# Prints run.sh's rows and median ratio per variant, each line prefixed with
# the variant (the pairs' spread says how noisy the machine was).
# Results: bench/RESULTS.md, "Tag rules and tag limits".
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=./build
MODES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	warm|cold) MODES+=("$1"); shift ;;
	-h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
	*) echo "tagrules.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#MODES[@]} -gt 0 ] || MODES=(warm cold)
export REPEAT=${REPEAT:-3} RCVBUF=${RCVBUF:-8388608}

# ten rules; none matches loadgen's tags but the last (cold only)
NOMATCH='dogstatsd_tags_exclude: [instance_id, "request_*", "user_id|checkout.*", "pod_?uid",
  "*_trace", "span*", "session|web.*", "k8s.*|loadgen.other.*", "build_sha", "x?y*z"]'
MATCH='dogstatsd_tags_exclude: [instance_id, "request_*", "user_id|checkout.*", "pod_?uid",
  "*_trace", "span*", "session|web.*", "k8s.*|loadgen.other.*", "build_sha", "t2|loadgen.metric.1*"]'

run() { # $1 = label, $2 = run.sh scenario, $3 = extra yaml, then env for run.sh
	local label=$1 scen=$2 extra=$3 out
	shift 3
	out=$(env "$@" EXTRA_YAML="$extra" "$HERE/run.sh" --build "$BUILD" "$scen" 2>&1)
	echo "$out" | grep -E '^(scenario|burst|200k|ratio)' | sed "s/^/[$label] /"
}

for m in "${MODES[@]}"; do
	case $m in
	warm)
		run "warm, 0 rules" burst "" CONTEXTS="${CONTEXTS:-10000}"
		run "warm, 10 rules" burst "$NOMATCH" CONTEXTS="${CONTEXTS:-10000}"
		;;
	cold)
		run "cold, 0 rules" 200k "" CONTEXTS="${COLD_CONTEXTS:-2000000}" TAG_VALUE_LIMIT=0
		run "cold, 10 rules" 200k "$MATCH" CONTEXTS="${COLD_CONTEXTS:-2000000}" TAG_VALUE_LIMIT=0
		;;
	esac
done
