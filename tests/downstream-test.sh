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

[ $# -eq 1 ] || { echo "usage: $0 SOURCE_DIR" >&2; exit 1; }
# shellcheck source=prefix-lib.sh
. "$(dirname "$0")/prefix-lib.sh"
zc_prefix_setup "$1" downstream false make
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
