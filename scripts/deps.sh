#!/usr/bin/env bash
# Installs what building dd-mini-agent needs, from Debian's archive; with
# --test also what its tests need (Criterion, clang for the sanitizer and fuzz
# builds, VictoriaMetrics, valgrind, packaging and container tools; hot-shots
# comes from the npm registry in scripts/test.sh). Idempotent: skips apt
# entirely when everything is already there.
#   scripts/deps.sh          build and run (scripts/run.sh)
#   scripts/deps.sh --test   build and test (scripts/test.sh)
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

BUILD_PKGS="gcc meson ninja-build pkg-config libevent-dev libyaml-dev libcurl4-openssl-dev
  libxxhash-dev zlib1g-dev libdeflate-dev libzstd-dev libprotobuf-c-dev
  protobuf-c-compiler libsystemd-dev libsnappy-dev"
TEST_PKGS="clang libcriterion-dev python3 victoria-metrics python3-statsd openssl zstd libclang-rt-14-dev valgrind
  systemd dpkg-dev debhelper fakeroot adduser faketime debootstrap systemd-container prometheus"

want="$BUILD_PKGS"
[ "${1:-}" = "--test" ] && want="$BUILD_PKGS $TEST_PKGS"
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm (for the hot-shots client tests): the machine image ships
# them; Debian's packages only when they are absent (they conflict otherwise).
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then
	missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
