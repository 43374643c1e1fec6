#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the Debian packages from a source tree or tarball, lint them and
# run their autopkgtest, as CI does (scripts/test.sh):
#   scripts/deb.sh [--nocheck] SOURCE OUTDIR
# SOURCE is a source directory or a meson dist tarball (.tar.xz); the
# tree is copied into OUTDIR, so nothing is written next to SOURCE.
#  0. debian/changelog's version is the project's;
#  1. dpkg-buildpackage -us -uc -b (--nocheck: DEB_BUILD_OPTIONS=nocheck
#     and the nocheck profile, for when the suites already ran);
#  2. lintian on the .changes: any error or warning fails;
#  3. autopkgtest with the null runner: debian/tests against the built
#     packages, installed on this machine (needs root). Packages it
#     installs that were not installed before are purged afterwards.
# Ends with "deb: N passed, N failed". Exit 0 when all passed.
set -uo pipefail

nocheck=0
if [ "${1:-}" = --nocheck ]; then
	nocheck=1
	shift
fi
if [ $# -ne 2 ] || [ ! -e "$1" ]; then
	echo "usage: $0 [--nocheck] SOURCE_DIR|TARBALL OUTDIR" >&2
	exit 2
fi
src=$(realpath "$1")
out=$2
passed=0 failed=0
ok() { echo "ok:   $*"; passed=$((passed + 1)); }
ko() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
	echo "deb: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

# OUTDIR is removed and made anew: only one this script made (its
# marker), or a new or empty one; never the source, nor a directory that
# holds it.
abs_out=$(realpath -m "$out")
case $src/ in
"$abs_out"/*)
	echo "deb.sh: OUTDIR $out is or holds the source $1: it would be" \
		"removed" >&2
	exit 2 ;;
esac
if [ -e "$out" ] && [ ! -e "$out/.deb-sh-out" ] &&
   [ ! -f "$out/src/debian/control" ] &&	# one made before the marker
   [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
	echo "deb.sh: OUTDIR $out exists and is not one deb.sh made: give" \
		"a new or empty directory" >&2
	exit 2
fi
rm -rf "$out"
mkdir -p "$out/src"
touch "$out/.deb-sh-out"
out=$(realpath "$out")
if [ -d "$src" ] && git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1; then
	# The files git tracks, as they are in the work tree.
	(cd "$src" && git ls-files -z | tar --null -cf - -T -) | tar -xf - -C "$out/src"
elif [ -d "$src" ]; then
	tar -C "$src" --exclude=./build --exclude=./build-ci --exclude=./.git \
		-cf - . | tar -xf - -C "$out/src"
else
	tar -xf "$src" -C "$out/src" --strip-components=1
fi
[ -f "$out/src/debian/control" ] || { ko "no debian/control in $1"; finish; }

# debian/changelog follows the project's version (native package).
pv=$(sed -n "s/^[[:space:]]*version: '\([^']*\)'.*/\1/p" "$out/src/meson.build" | head -n 1)
dv=$(dpkg-parsechangelog -l "$out/src/debian/changelog" -S Version)
case $dv in
"$pv" | "$pv"[+~]*) ok "debian/changelog $dv for project version $pv" ;;
*) ko "debian/changelog says $dv, meson.build $pv: add a changelog entry (dch -v $pv)" ;;
esac

# 1. build
opts=(-us -uc -b)
if [ $nocheck -eq 1 ]; then
	export DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
	opts+=(-Pnocheck)
fi
if (cd "$out/src" && dpkg-buildpackage "${opts[@]}") >"$out/build.log" 2>&1; then
	debs=()
	for d in "$out"/*.deb; do
		case $d in *-dbgsym_*) ;; *) debs+=("$d") ;; esac
	done
	ok "dpkg-buildpackage ${opts[*]}: ${debs[*]##*/}"
else
	tail -n 40 "$out/build.log"
	ko "dpkg-buildpackage ${opts[*]} (log: $out/build.log)"
	finish
fi
changes=$(ls "$out"/*.changes)

# 2. lintian at its default level (errors and warnings)
if lintian --fail-on error,warning "$changes" >"$out/lintian.log" 2>&1; then
	ok "lintian: $(grep -c '^[EW]:' "$out/lintian.log") errors or warnings"
else
	grep -v 'root privileges' "$out/lintian.log"
	ko "lintian $(basename "$changes")"
fi

# 3. autopkgtest against the built packages
if ! command -v autopkgtest >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
	ko "autopkgtest: needs autopkgtest and root (the null runner installs the packages)"
	finish
fi
before=$(dpkg-query -W -f='${Package} ${Status}\n' 'libzcnotify*' 2>/dev/null |
	 awk '/ installed$/ { print $1 }')
if autopkgtest --output-dir "$out/autopkgtest" "$out/src" "${debs[@]}" -- null \
	>"$out/autopkgtest.log" 2>&1; then
	ok "autopkgtest: $(grep -E '^[a-z-]+ +PASS' "$out/autopkgtest.log" | sort -u | xargs)"
else
	tail -n 40 "$out/autopkgtest.log"
	ko "autopkgtest (log: $out/autopkgtest.log)"
fi
after=$(dpkg-query -W -f='${Package} ${Status}\n' 'libzcnotify*' 2>/dev/null |
	awk '/ installed$/ { print $1 }')
new=$(comm -13 <(echo "$before" | sort) <(echo "$after" | sort) | xargs)
if [ -n "$new" ]; then
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
		purge -y -q $new >"$out/purge.log" 2>&1 ||
		ko "could not purge $new (log: $out/purge.log)"
fi
finish
