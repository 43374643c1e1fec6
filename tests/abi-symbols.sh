#!/bin/bash
# SPDX-License-Identifier: MIT
#
# abi-symbols.sh SOURCE_DIR LIBRARY
#
# The ABI as four lists that must agree: the symbols LIBRARY (the built
# libzcnotify.so.0) exports, the global: list of src/libzcnotify.map, the
# functions include/zcnotify.h declares and debian/libzcnotify0.symbols
# (else dpkg-gensymbols fails the package build, late); and each has
# man/<name>.3.
#
# Exit: 0 pass, 1 fail, 77 nm is missing.

set -u

if [ $# -ne 2 ] || [ ! -f "$1/src/libzcnotify.map" ] || [ ! -e "$2" ]; then
	echo "usage: $0 SOURCE_DIR LIBRARY" >&2
	exit 1
fi
src=$1
lib=$2
if ! command -v nm >/dev/null 2>&1; then
	echo "SKIP: nm not found" >&2
	exit 77
fi
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# The global: section of the version script (up to local:).
mapped=$(sed -n '/global:/,/local:/s/^[[:space:]]*\(zc_[a-z_0-9]*\);.*/\1/p' \
	 "$src/src/libzcnotify.map" | sort -u)
# Every zc_name( in the header that is not inside a comment.
declared=$(sed -e 's,/\*.*\*/,,g' -e '/\/\*/,/\*\//d' "$src/include/zcnotify.h" |
	   grep -o 'zc_[a-z_]*(' | tr -d '(' | sort -u)
# Defined dynamic symbols, without version suffix or the version node.
exported=$(nm -D --defined-only "$lib" |
	   awk '$2 ~ /^[TDBRVWiu]$/ { sub(/@.*/, "", $3); print $3 }' |
	   grep -v '^LIBZCNOTIFY_' | sort -u)

if [ -z "$mapped" ] || [ -z "$declared" ] || [ -z "$exported" ]; then
	fail "an empty list: map '$mapped', header '$declared', library '$exported'"
fi
if [ "$exported" != "$mapped" ]; then
	fail "$lib exports (>) other than src/libzcnotify.map (<):" \
	     "$(diff <(echo "$mapped") <(echo "$exported") | grep '^[<>]' | tr '\n' ' ')"
fi
if [ "$declared" != "$mapped" ]; then
	fail "include/zcnotify.h declares (>) other than src/libzcnotify.map (<):" \
	     "$(diff <(echo "$mapped") <(echo "$declared") | grep '^[<>]' | tr '\n' ' ')"
fi
# debian/libzcnotify0.symbols: " name@NODE version" lines.
debsyms=$(sed -n 's/^ \(zc_[a-z_0-9]*\)@.*/\1/p' \
	  "$src/debian/libzcnotify0.symbols" 2>/dev/null | sort -u)
if [ "$debsyms" != "$mapped" ]; then
	fail "debian/libzcnotify0.symbols lists (>) other than src/libzcnotify.map (<):" \
	     "$(diff <(echo "$mapped") <(echo "$debsyms") | grep '^[<>]' | tr '\n' ' ')"
fi
for f in $(echo "$mapped $declared $exported" | tr ' ' '\n' | sort -u); do
	[ -s "$src/man/$f.3" ] || fail "no man/$f.3 for $f"
done

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed" >&2
	exit 1
fi
echo "ABI: $(echo "$mapped" | wc -l) functions, exported = mapped = declared = debian/libzcnotify0.symbols, each with a man page"
exit 0
