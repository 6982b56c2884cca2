#!/usr/bin/env bash
# soak.sh - the long mode of docs/RELIABILITY.md S1 (and optionally S2/S3), by hand.
#
#   scripts/soak.sh [SECONDS]            default 3600 (one hour)
#
# Builds build-soak (gcc, debugoptimized) unless DDMA_BIN points at a binary,
# then runs tests/integration/test_rel_soak.py with SOAK_SECONDS=SECONDS and
# intake faults every SOAK_FAULT_PERIOD seconds (default 120: two minutes
# healthy/faulty cycles through 503 outage, 429 + Retry-After, connection
# resets, 1 s answers). SOAK_RATE sets lines/s (default 2000). The test prints
# its RSS/descriptor figures and exits non-zero on any failed bound; CI runs
# the same test with SOAK_SECONDS=60 and faults every 8 s (meson test rel_soak).
# Output also goes to soak-<date>.log in the current directory.
set -euo pipefail
src_root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-3600}
case $seconds in
'' | *[!0-9]*) echo "soak.sh: SECONDS must be a positive integer" >&2; exit 2 ;;
esac
if [ -z "${DDMA_BIN:-}" ]; then
	[ -f "$src_root/build-soak/build.ninja" ] || meson setup "$src_root/build-soak" "$src_root" >/dev/null
	ninja -C "$src_root/build-soak" agent/dd-mini-agent
	export DDMA_BIN="$src_root/build-soak/agent/dd-mini-agent"
fi
export SOAK_SECONDS=$seconds
export SOAK_FAULT_PERIOD=${SOAK_FAULT_PERIOD:-120}
export DDMA_SOURCE_ROOT=$src_root
log="soak-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "soak.sh: ${seconds}s, faults every ${SOAK_FAULT_PERIOD}s, binary $DDMA_BIN, log $log"
python3 "$src_root/tests/integration/test_rel_soak.py" 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
