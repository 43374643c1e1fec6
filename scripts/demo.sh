#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, step 1: install what is missing, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
[ -d build ] || meson setup build
ninja -C build
exec ./build/examples/zcstream "$@"
