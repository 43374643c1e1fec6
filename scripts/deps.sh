#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what building (and with --test, testing) libzcnotify needs, if
# it is missing (Debian 12). The list is debian/control's Build-Depends:
#   deps.sh         the library, the tools and the demo (profile nocheck)
#   deps.sh --test  everything scripts/test.sh runs (profile
#                   pkg.libzcnotify.ci: the test suites and CI's tools)
# Safe to run again: does nothing when all is there. The kernel rig
# (tests/kernel/rig.sh) installs its own packages.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
'') profiles=nocheck ;;
--test) profiles=pkg.libzcnotify.ci ;;
*) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

# dpkg-checkbuilddeps (dpkg-dev, which build-essential brings) checks
# Build-Depends and build-essential under the same profiles.
if command -v dpkg-checkbuilddeps >/dev/null 2>&1 &&
   dpkg-checkbuilddeps -P "$profiles" >/dev/null 2>&1; then
	exit 0
fi

echo "deps: installing debian/control's Build-Depends (profile $profiles)"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -q
$sudo apt-get -o DPkg::Lock::Timeout=600 build-dep -y -q --no-install-recommends -P "$profiles" ./
