#!/usr/bin/env bash
# Quick start: install build dependencies, build, and run the agent in the
# foreground with the shipped configuration (conf.d/agent.yaml). With no intake
# configured, every flushed batch is printed as JSON lines on stdout.
# Try it from another terminal:
#   echo -n "demo.requests:1|c|#env:dev" > /dev/udp/127.0.0.1/8125
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build --buildtype=release -Dtests=false >/dev/null
ninja -C build >/dev/null
exec ./build/agent/dd-mini-agent --config conf.d/agent.yaml "$@"
