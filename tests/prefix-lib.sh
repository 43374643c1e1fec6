# SPDX-License-Identifier: MIT
# Sourced by install-test.sh and downstream-test.sh: what a user gets from
# `meson install` into a temporary prefix.
#
#   zc_prefix_setup SOURCE_DIR NAME MAN TOOL...
#
# Checks the usage and the tools (exit 77 if one is missing), makes $tmp
# (removed at exit), builds SOURCE_DIR there with -Dman=MAN, shared and
# static (-Ddefault_library=both), installs it
# into $prefix and points pkg-config at it alone, then the system's
# directories (for Requires.private: liburing); MAN=true also builds and
# installs the examples and zcbench. Sets src, tmp, prefix,
# pcdir, libdir, fails; defines fail() and run().

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

zc_prefix_setup() {
	local name=$2 man=$3 tool pc sys_pc

	if [ ! -f "$1/meson.build" ]; then
		echo "usage: $0 SOURCE_DIR" >&2
		exit 1
	fi
	src=$(cd "$1" && pwd)
	shift 3
	for tool in meson ninja pkg-config "${CC:-cc}" "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "SKIP: $tool not found" >&2
			exit 77
		fi
	done

	tmp=$(mktemp -d "${TMPDIR:-/tmp}/zcnotify-$name.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
	prefix=$tmp/prefix
	fails=0

	# Start from a clean environment: nothing from an outer (sanitizer) build.
	unset LD_PRELOAD PKG_CONFIG_LIBDIR
	export PKG_CONFIG_PATH=
	# MAN=true (the install test): everything a user gets, man pages and
	# the installed tools (zcbench); false: the library alone.
	run setup meson setup "$tmp/build" "$src" --prefix="$prefix" \
		-Dtests=disabled -Dexamples="$man" -Dman="$man" \
		-Ddefault_library=both
	run build ninja -C "$tmp/build"
	run install meson install -C "$tmp/build"

	pc=$(find "$prefix" -name libzcnotify.pc -path '*/pkgconfig/*' | head -n 1)
	if [ -z "$pc" ]; then
		echo "FAIL: no libzcnotify.pc under $prefix" >&2
		exit 1
	fi
	pcdir=$(dirname "$pc")
	libdir=$(dirname "$pcdir")
	# pkg-config must not find another copy first.
	sys_pc=$(PKG_CONFIG_PATH='' pkg-config --variable pc_path pkg-config)
	export PKG_CONFIG_PATH=$pcdir
	export PKG_CONFIG_LIBDIR=$pcdir${sys_pc:+:$sys_pc}
}
