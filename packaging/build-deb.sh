#!/bin/sh
# build-deb.sh - build the dd-mini-agent .deb from this source tree.
#
# Usage: packaging/build-deb.sh [OUTDIR]
#
# Copies the working tree (without .git and build directories) into a
# scratch directory, puts packaging/debian there as ./debian, runs
# dpkg-buildpackage -us -uc -b and moves the resulting .deb into OUTDIR
# (default: the current directory). The last line on stdout is the path of
# the .deb; the build log goes to stderr. Leaves the source tree untouched.
#
# Needs the build dependencies listed in packaging/debian/control
# (dpkg-checkbuilddeps runs first and names any that are missing).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
outdir=${1:-.}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# The Debian upstream version must follow meson's project version.
meson_version=$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n 1)
deb_version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
if [ "${deb_version%-*}" != "$meson_version" ]; then
	echo "build-deb.sh: debian/changelog says $deb_version but meson.build says $meson_version" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dd-mini-agent-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

mkdir "$work/src"
# Everything but version control, build trees and stale debian/ leftovers.
tar -C "$src" -cf - \
	--exclude=./.git --exclude='./build*' --exclude='./obj-*' \
	--exclude=./debian --exclude=./packaging/debian/.debhelper \
	--exclude=./packaging/debian/dd-mini-agent --exclude='__pycache__' . |
	tar -C "$work/src" -xf -
cp -R "$here/debian" "$work/src/debian"

jobs=$(nproc 2>/dev/null || echo 1)
(
	cd "$work/src"
	dpkg-buildpackage -us -uc -b "-j$jobs"
) >&2

n=0
for deb in "$work"/dd-mini-agent_*.deb; do
	[ -e "$deb" ] || continue
	mv "$deb" "$outdir/"
	n=$((n + 1))
	last="$outdir/$(basename "$deb")"
done
if [ "$n" -ne 1 ]; then
	echo "build-deb.sh: expected one dd-mini-agent .deb, found $n" >&2
	exit 1
fi
echo "$last"
