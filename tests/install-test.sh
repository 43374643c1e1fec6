#!/bin/bash
# SPDX-License-Identifier: MIT
#
# install-test.sh SOURCE_DIR
#
# Configure a fresh build of SOURCE_DIR into a temporary directory, install
# it into a prefix there, and check what a user gets: the header, the man
# pages, the pkg-config file, a library that exports only the API, and a
# program that builds with nothing but `pkg-config --cflags --libs
# libzcnotify` and runs against the installed library.
#
# Exit: 0 pass, 1 fail, 77 a tool is missing.

set -u

[ $# -eq 1 ] || { echo "usage: $0 SOURCE_DIR" >&2; exit 1; }
# shellcheck source=prefix-lib.sh
. "$(dirname "$0")/prefix-lib.sh"
zc_prefix_setup "$1" install true

# --- the header and the pkg-config file
if ! cmp -s "$src/include/zcnotify.h" "$prefix/include/zcnotify.h"; then
	fail "include/zcnotify.h not installed as $prefix/include/zcnotify.h"
fi
version=$(meson introspect --projectinfo "$tmp/build" |
	  sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')
if [ "$(pkg-config --modversion libzcnotify)" != "$version" ]; then
	fail "pkg-config says version $(pkg-config --modversion libzcnotify), the project $version"
fi
cflags=$(pkg-config --cflags libzcnotify | xargs)
libs=$(pkg-config --libs libzcnotify | xargs)
if [ "$cflags" != "-I$prefix/include" ]; then
	fail "Cflags should carry only -I$prefix/include, not: $cflags"
fi
if [ ! -e "$libdir/libzcnotify.so" ] || [ ! -e "$libdir/libzcnotify.so.0" ]; then
	fail "libzcnotify.so and .so.0 not both in $libdir"
fi
[ -e "$libdir/libzcnotify.a" ] || fail "libzcnotify.a not in $libdir (-Ddefault_library=both)"
# Relocatable: no path but prefix= names the prefix.
if grep -v '^prefix=' "$pcdir/libzcnotify.pc" | grep -qF "$prefix"; then
	fail "libzcnotify.pc has absolute paths; want \${prefix}-relative ones:" \
	     "$(grep -v '^prefix=' "$pcdir/libzcnotify.pc" | grep -F "$prefix" | tr '\n' ' ')"
fi

# --- the man pages: one per exported function, and zcnotify(7)
funcs=$(sed -n 's/^[[:space:]]*\(zc_[a-z_0-9]*\);.*/\1/p' "$src/src/libzcnotify.map")
mandir=$prefix/share/man
for page in $(for f in $funcs; do echo "man3/$f.3"; done) man7/zcnotify.7; do
	if [ ! -s "$mandir/$page" ] && [ ! -s "$mandir/$page.gz" ]; then
		fail "man page $page not installed (in $mandir)"
	fi
done

# --- the tools: zcbench, its scripts and zcbench(1), runnable as installed
for tool in zcbench zcbench-plot zcbench-callgrind; do
	[ -x "$prefix/bin/$tool" ] || fail "$tool not installed in $prefix/bin"
	if [ ! -s "$mandir/man1/$tool.1" ] && [ ! -s "$mandir/man1/$tool.1.gz" ]; then
		fail "man page man1/$tool.1 not installed"
	fi
done
# The examples: sources under the doc directory, no programs in bin.
for c in "$src"/examples/*.c; do
	name=$(basename "$c" .c)
	[ -e "$prefix/bin/$name" ] && fail "example $name installed in $prefix/bin"
	cmp -s "$c" "$prefix/share/doc/libzcnotify/examples/$name.c" ||
		fail "examples/$name.c not installed in $prefix/share/doc/libzcnotify/examples"
done
if [ -x "$prefix/bin/zcbench" ] &&
   ! out=$(LD_LIBRARY_PATH=$libdir "$prefix/bin/zcbench" -q -m raw-copy,copy \
	   -n 50 -r 1 -s 4K 2>&1); then
	echo "$out" >&2
	fail "the installed zcbench does not run"
fi

# --- the header declares, the version script lists and the library
# exports the same functions
declared=$(sed -n 's/^[a-z][^(]*[ *]\(zc_[a-z_0-9]*\)(.*/\1/p' "$prefix/include/zcnotify.h" | sort -u)
if [ "$declared" != "$(echo "$funcs" | sort -u)" ]; then
	fail "zcnotify.h and src/libzcnotify.map differ:" \
	     "$(diff <(echo "$funcs" | sort -u) <(echo "$declared") | grep '^[<>]' | tr '\n' ' ')"
fi
if command -v nm >/dev/null 2>&1; then
	so=$(readlink -f "$libdir/libzcnotify.so")
	exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ { sub(/@.*/, "", $3); print $3 }' |
		   grep -v '^LIBZCNOTIFY_' | sort -u)
	if [ "$exported" != "$(echo "$funcs" | sort -u)" ]; then
		fail "exported symbols differ from src/libzcnotify.map:" \
		     "$(diff <(echo "$funcs" | sort -u) <(echo "$exported") | grep '^[<>]' | tr '\n' ' ')"
	fi
fi

# --- the static archive: the API, and internal names a program cannot
# clash with (zc__*), nothing else global
if command -v nm >/dev/null 2>&1 && [ -e "$libdir/libzcnotify.a" ]; then
	stray=$(nm -g --defined-only "$libdir/libzcnotify.a" 2>/dev/null |
		awk 'NF == 3 { print $3 }' | sort -u | grep -v '^zc__' |
		grep -vxF -f <(echo "$funcs"))
	if [ -n "$stray" ]; then
		fail "libzcnotify.a defines globals that are neither API nor zc__*:" \
		     "$(echo "$stray" | tr '\n' ' ')"
	fi
fi

# --- a consumer built with pkg-config only
# shellcheck disable=SC2086 # word splitting of the flags is wanted
if ! "${CC:-cc}" -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags \
	-o "$tmp/consumer" "$src/tests/install/consumer.c" $libs \
	>"$tmp/cc.log" 2>&1; then
	cat "$tmp/cc.log" >&2
	fail "the consumer does not build with: $cflags ... $libs"
else
	if command -v ldd >/dev/null 2>&1; then
		where=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer" | awk '/libzcnotify/ { print $3 }')
		case $where in
		"$libdir"/*) ;;
		*) fail "the consumer loads libzcnotify from '$where', not $libdir" ;;
		esac
	fi
	if out=$(LD_LIBRARY_PATH=$libdir "$tmp/consumer" 2>&1); then
		echo "$out"
	else
		echo "$out" >&2
		fail "the consumer failed"
	fi
fi

# --- a static program, linked with pkg-config --static alone
scflags=$(pkg-config --static --cflags libzcnotify)
slibs=$(pkg-config --static --libs libzcnotify)
# shellcheck disable=SC2086
if ! "${CC:-cc}" -std=c11 -Wall -Wextra -Werror -static $scflags \
	-o "$tmp/consumer-static" "$src/tests/install/consumer.c" $slibs \
	>"$tmp/cc-static.log" 2>&1; then
	cat "$tmp/cc-static.log" >&2
	fail "the consumer does not link statically with: $scflags ... $slibs"
elif command -v ldd >/dev/null 2>&1 && ldd "$tmp/consumer-static" >/dev/null 2>&1; then
	fail "consumer-static is dynamically linked"
elif out=$("$tmp/consumer-static" 2>&1); then
	echo "static ($slibs): $out"
else
	echo "$out" >&2
	fail "the static consumer failed"
fi

# --- the header is C++-clean too (extern "C")
if command -v "${CXX:-c++}" >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	if ! echo '#include <zcnotify.h>
int main() { return zc_backend_name(0) == nullptr; }' |
	     "${CXX:-c++}" -x c++ -std=c++11 -Wall -Wextra -Werror $cflags \
		-o "$tmp/consumer-cxx" - $libs >"$tmp/cxx.log" 2>&1; then
		cat "$tmp/cxx.log" >&2
		fail "zcnotify.h does not build as C++"
	fi
fi

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed" >&2
	exit 1
fi
echo "installed and used from $prefix: OK"
exit 0
