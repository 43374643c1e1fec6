#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-fuzz.sh HARNESS SEED_DIR SECONDS: run a libFuzzer harness for SECONDS
# from the seed corpus, writing new inputs to a scratch directory (never
# into the source tree). A crash, a leak or a timeout fails; libFuzzer
# writes the input that caused it to the current directory.
set -euo pipefail
harness=$1 seeds=$2 secs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# libFuzzer exits 77 on a crash by default: meson would call that a skip.
"$harness" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 \
	"$scratch" "$seeds"
