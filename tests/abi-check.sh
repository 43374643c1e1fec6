#!/bin/bash
# SPDX-License-Identifier: MIT
#
# abi-check.sh SOURCE_DIR LIBRARY
# abi-check.sh --update SOURCE_DIR LIBRARY
#
# Compare the ABI of LIBRARY (the built libzcnotify.so.0.x.y) with the
# committed baseline abi/<soname>.abi (libabigail's abidw; functions,
# variables and the public types they reach, from include/ only; the
# internals behind struct zc_sock are not part of it). Any difference
# fails:
#  - a break (a public struct's layout, a signature, a removed symbol):
#    move the soname (soversion in meson.build) and commit a baseline
#    for the new soname;
#  - an added function: put it in a new version node of
#    src/libzcnotify.map and commit the updated baseline,
# both with --update, which writes abi/<soname>.abi from LIBRARY.
#
# Exit: 0 same ABI, 1 changed, 77 abidw/abidiff missing, LIBRARY built
# without debug info, or the baseline is for another architecture.

set -u

update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
if [ $# -ne 2 ] || [ ! -f "$1/include/zcnotify.h" ] || [ ! -e "$2" ]; then
	echo "usage: $0 [--update] SOURCE_DIR LIBRARY" >&2
	exit 1
fi
src=$1
lib=$2
for t in abidw abidiff readelf; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t not found (apt-get install abigail-tools binutils)" >&2
		exit 77
	fi
done
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
	echo "SKIP: $lib has no debug info (build with -g)" >&2
	exit 77
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ -n "$soname" ] || { echo "FAIL: $lib has no SONAME" >&2; exit 1; }
baseline=$src/abi/$soname.abi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zcnotify-abi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# Nothing that depends on where or how it was built: no paths, no source
# lines, no DT_NEEDED (liburing is optional), no undefined symbols.
if ! abidw --headers-dir "$src/include" --drop-private-types \
	--exported-interfaces-only --no-corpus-path --no-comp-dir-path \
	--no-show-locs --no-elf-needed --drop-undefined-syms \
	--out-file "$tmp/current.abi" "$lib"; then
	echo "FAIL: abidw $lib" >&2
	exit 1
fi

if [ $update -eq 1 ]; then
	mkdir -p "$src/abi"
	cp "$tmp/current.abi" "$baseline"
	echo "wrote $baseline"
	exit 0
fi

if [ ! -f "$baseline" ]; then
	echo "FAIL: no baseline abi/$soname.abi for $soname: after an" \
	     "incompatible change moved the soname, commit one with" \
	     "$0 --update SOURCE_DIR LIBRARY" >&2
	exit 1
fi
arch() { sed -n "s/.*<abi-corpus[^>]* architecture='\([^']*\)'.*/\1/p" "$1" | head -n 1; }
if [ "$(arch "$baseline")" != "$(arch "$tmp/current.abi")" ]; then
	echo "SKIP: abi/$soname.abi is for $(arch "$baseline"), this build" \
	     "for $(arch "$tmp/current.abi")" >&2
	exit 77
fi

abidiff "$baseline" "$tmp/current.abi" >"$tmp/diff" 2>&1
rc=$?
# abidiff's exit status is a bit set: 1 error, 2 usage, 4 change,
# 8 incompatible change.
if [ $rc -eq 0 ]; then
	echo "ABI of $soname: same as abi/$soname.abi"
	exit 0
fi
cat "$tmp/diff" >&2
if [ $((rc & 3)) -ne 0 ]; then
	echo "FAIL: abidiff failed ($rc)" >&2
elif [ $((rc & 8)) -ne 0 ]; then
	echo "FAIL: an incompatible ABI change against abi/$soname.abi" \
	     "(a symbol removed or changed): undo it, or move the soname" \
	     "(soversion in meson.build) and commit a baseline for it with" \
	     "$0 --update" >&2
else
	# abidiff calls a changed struct behind a pointer a change, not an
	# incompatible one; for callers who allocate it, it is a break.
	echo "FAIL: the ABI differs from abi/$soname.abi (report above)." \
	     "A changed public type or signature breaks callers: undo it," \
	     "or move the soname and commit a new baseline. Only added" \
	     "functions (in a new version node of src/libzcnotify.map):" \
	     "commit the updated baseline with $0 --update" >&2
fi
exit 1
