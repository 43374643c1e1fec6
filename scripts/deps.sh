#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what building and testing libzcnotify needs, if it is missing
# (Debian 12). Safe to run again: does nothing when all is there.
set -euo pipefail

pkgs=(gcc meson ninja-build pkg-config libcmocka-dev liburing-dev mandoc groff-base
      python3)
[ "${1:-}" = "--test" ] && pkgs+=(clang libclang-rt-14-dev valgrind gnuplot-nox)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
