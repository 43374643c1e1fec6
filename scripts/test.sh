#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, step 2: build and run the whole test suite, as CI does:
#   1. the default build (-Werror): unit, real-socket, stress, install, man
#   2. the same suites under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the unit and threaded suites under ThreadSanitizer
#   4. the build without liburing (-Dliburing=disabled, -Werror) and its
#      suites (the uring tests skip); then the libFuzzer harnesses
#      (clang), 60 s each
#   5. the release: `meson dist` (the tarball builds and passes the
#      default suite), then from that tarball the Debian packages,
#      lintian and the autopkgtest (scripts/deb.sh; DEB_BUILD_OPTIONS=
#      nocheck there, as step 1 ran the same suites)
#   6. the patched-kernel rig: Linux 6.1 + SCM_ZC_NOTIFICATION under qemu,
#      the library's suites in the patched and the unpatched kernel
# Ends with one line "N passed, N failed, N skipped" over all of them.
# Options: --no-rig (skip step 6), --quick (step 1 only).
set -uo pipefail
cd "$(dirname "$0")/.."
src=$PWD
rig=1 quick=0
for a in "$@"; do
	case $a in
	--no-rig) rig=0 ;;
	--quick) quick=1; rig=0 ;;
	*) echo "usage: $0 [--no-rig] [--quick]" >&2; exit 2 ;;
	esac
done

./scripts/deps.sh --test || exit 1

status=0
summaries=()

# meson test in build dir $1 with setup dir options $2, suites $3...
stage() {
	local name=$1 dir=$2 opts=$3; shift 3
	echo "=== $name"
	if [ ! -f "$dir/build.ninja" ]; then
		# shellcheck disable=SC2086
		env ${STAGE_ENV:-} meson setup "$dir" $opts >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; status=1; summaries+=("$name: setup failed"); return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		cat "$dir.build.log"; status=1
		summaries+=("$name: build failed"); return
	fi
	meson test -C "$dir" --print-errorlogs "$@" || status=1
	summaries+=("$(python3 "$src/scripts/testlog-summary.py" "$name" \
		"$dir/meson-logs/testlog.json")")
}

# Step 5: the dist tarball of HEAD (committed files only), built and
# tested by meson dist; then the packages from it.
release() {
	local dist log=build-ci/dist.log

	echo "=== dist"
	rm -rf build-ci/default/meson-dist
	if meson dist -C build-ci/default --formats xztar --allow-dirty \
		>"$log" 2>&1; then
		# meson dist removes its build: count from its meson test output.
		summaries+=("$(awk -F: '
			/^Ok:/ { p = $2 + 0 }
			/^(Fail|Unexpected Pass|Timeout):/ { f += $2 }
			/^Skipped:/ { s = $2 + 0 }
			END { printf "dist: %d passed, %d failed, %d skipped", p, f, s }' "$log")")
	else
		tail -n 60 "$log"; status=1
		summaries+=("dist: failed (build-ci/dist.log)")
		return
	fi
	dist=$(ls build-ci/default/meson-dist/libzcnotify-*.tar.xz)
	echo "=== deb ($dist)"
	./scripts/deb.sh --nocheck "$dist" build-ci/deb | tee build-ci/deb.log
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	summaries+=("$(grep -E '^deb: ' build-ci/deb.log | tail -n 1)")
}

mkdir -p build-ci
stage default build-ci/default "-Dwerror=true -Dtests=enabled"
if [ $quick -eq 0 ]; then
	stage asan+ubsan build-ci/asan \
		"-Dwerror=true -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug" \
		--no-suite install --no-suite valgrind
	stage tsan build-ci/tsan \
		"-Dwerror=true -Dtests=enabled -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug" \
		--suite unit --suite stress
	# liburing is optional (meson option liburing=auto): the build
	# without it, warnings as errors, and its suites.
	stage no-liburing build-ci/nouring \
		"-Dwerror=true -Dtests=enabled -Dliburing=disabled"
	STAGE_ENV=CC=clang stage fuzz build-ci/fuzz \
		"-Dwerror=true -Dtests=enabled -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false" \
		--suite fuzz
	release
fi
if [ $rig -eq 1 ]; then
	echo "=== kernel rig"
	out=build-ci/rig.log
	bash tests/kernel/run-suites.sh "$src/build-ci/default" 2>&1 | tee "$out"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	summaries+=("rig: ${line:-no result}")
fi

echo "=== summary"
printf '%s\n' "${summaries[@]}"
printf '%s\n' "${summaries[@]}" | python3 -c '
import re, sys
p = f = s = 0
for l in sys.stdin:
    m = re.search(r"(\d+) passed, (\d+) failed(?:, (\d+) skipped)?", l)
    if m:
        p += int(m[1]); f += int(m[2]); s += int(m[3] or 0)
    elif "failed" in l:
        f += 1
print(f"{p} passed, {f} failed, {s} skipped")
'
exit $status
