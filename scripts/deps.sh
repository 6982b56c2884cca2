#!/usr/bin/env bash
# Installs what building and testing dd-mini-agent needs, from Debian's archive
# (and hot-shots from the npm registry for the client tests). Idempotent: skips
# apt entirely when everything is already there.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

BUILD_PKGS="gcc clang meson ninja-build pkg-config libevent-dev libyaml-dev libcurl4-openssl-dev
  libcriterion-dev libxxhash-dev zlib1g-dev libdeflate-dev libzstd-dev libprotobuf-c-dev
  protobuf-c-compiler libsystemd-dev libsnappy-dev"
TEST_PKGS="python3 victoria-metrics python3-statsd openssl zstd libclang-rt-14-dev valgrind
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
