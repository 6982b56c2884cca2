#!/usr/bin/env bash
# Quick start: install what building needs (no test tools), build the agent
# without its tests, and run it in the foreground with the shipped
# configuration (conf.d/agent.yaml). With no intake configured, every flushed
# batch is printed as JSON lines on stdout.
# Try it from another terminal:
#   echo -n "demo.requests:1|c|#env:dev" > /dev/udp/127.0.0.1/8125
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# An existing build dir (perhaps with tests) is kept as configured; one that
# no longer builds (set up by an older tree) is set up again without tests.
if [ ! -f build/build.ninja ] || ! ninja -C build >/dev/null; then
	meson setup --wipe build --buildtype=release -Dtests=disabled >/dev/null 2>&1 ||
		{ rm -rf build && meson setup build --buildtype=release -Dtests=disabled >/dev/null; }
	ninja -C build
fi
exec ./build/agent/dd-mini-agent --config conf.d/agent.yaml "$@"
