#!/bin/bash
# SPDX-License-Identifier: MIT
#
# downstream-test.sh SOURCE_DIR
#
# What a downstream user does in the first hour, against a `meson install`
# into a temporary prefix (set up as install-test.sh does):
#  - build every examples/*.c with `cc $(pkg-config --cflags --libs
#    libzcnotify)` alone, and run each in its small test mode over loopback;
#  - build and run tests/downstream/meson (dependency('libzcnotify'));
#  - build and run tests/downstream/make (a plain Makefile with pkg-config).
#
# Exit: 0 pass, 1 fail, 77 a tool is missing.

set -u

if [ $# -ne 1 ] || [ ! -f "$1/meson.build" ]; then
	echo "usage: $0 SOURCE_DIR" >&2
	exit 1
fi
src=$(cd "$1" && pwd)

for tool in meson ninja pkg-config make "${CC:-cc}"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found" >&2
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zcnotify-downstream.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# run NAME CMD...: run CMD, its output in $tmp/NAME.log; show it on failure.
run() {
	local log=$tmp/$1.log

	shift
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		echo "FAIL: $*" >&2
		exit 1
	fi
}

# --- the installed prefix (as install-test.sh makes it)
unset LD_PRELOAD PKG_CONFIG_LIBDIR
export PKG_CONFIG_PATH=
run setup meson setup "$tmp/build" "$src" --prefix="$prefix" \
	-Dtests=false -Dexamples=false -Dman=false
run build ninja -C "$tmp/build"
run install meson install -C "$tmp/build"

pc=$(find "$prefix" -name libzcnotify.pc -path '*/pkgconfig/*' | head -n 1)
if [ -z "$pc" ]; then
	echo "FAIL: no libzcnotify.pc under $prefix" >&2
	exit 1
fi
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
sys_pc=$(PKG_CONFIG_PATH='' pkg-config --variable pc_path pkg-config)
export PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_LIBDIR=$pcdir${sys_pc:+:$sys_pc}
export LD_LIBRARY_PATH=$libdir
cflags=$(pkg-config --cflags libzcnotify)
libs=$(pkg-config --libs libzcnotify)

# check NAME CMD...: run a built program; 77 from it is a skip, not a failure.
check() {
	local name=$1 out rc

	shift
	out=$(timeout 120 "$@" 2>&1)
	rc=$?
	case $rc in
	0) echo "ok:   $name: $(echo "$out" | tail -n 1)" ;;
	77) echo "skip: $name: $(echo "$out" | tail -n 1)" ;;
	*) echo "$out" >&2
	   fail "$name exited $rc: $*" ;;
	esac
}

# --- every example, built with pkg-config alone, in its test mode
declare -A args=(
	[zcstream]="-n 4 -c"
	[epoll-server]="-t 4"
	[udp-gso]="-n 50"
	[two-threads]="-n 4"
)
for c in "$src"/examples/*.c; do
	name=$(basename "$c" .c)
	# shellcheck disable=SC2086 # word splitting of the flags is wanted
	if ! "${CC:-cc}" -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/$name" \
		"$c" $libs >"$tmp/cc-$name.log" 2>&1; then
		cat "$tmp/cc-$name.log" >&2
		fail "examples/$name.c does not build with: cc $cflags ... $libs"
		continue
	fi
	if [ -z "${args[$name]+set}" ]; then
		fail "examples/$name.c: no test-mode arguments in $0"
		continue
	fi
	# shellcheck disable=SC2086
	check "examples/$name ${args[$name]}" "$tmp/$name" ${args[$name]}
done

# --- a meson project: dependency('libzcnotify')
if meson setup "$tmp/ds-meson" "$src/tests/downstream/meson" \
	>"$tmp/ds-meson.log" 2>&1 && ninja -C "$tmp/ds-meson" \
	>>"$tmp/ds-meson.log" 2>&1; then
	check "downstream/meson" "$tmp/ds-meson/downstream"
else
	cat "$tmp/ds-meson.log" >&2
	fail "tests/downstream/meson does not build"
fi

# --- a plain Makefile with pkg-config
mkdir -p "$tmp/ds-make"
if make -C "$src/tests/downstream/make" O="$tmp/ds-make" \
	>"$tmp/ds-make.log" 2>&1; then
	check "downstream/make" "$tmp/ds-make/downstream"
else
	cat "$tmp/ds-make.log" >&2
	fail "tests/downstream/make does not build"
fi

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed" >&2
	exit 1
fi
echo "downstream builds against $prefix: OK"
exit 0
