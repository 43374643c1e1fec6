#!/bin/bash
# SPDX-License-Identifier: MIT
#
# header-std.sh SOURCE_DIR
#
# include/zcnotify.h must compile on its own, warning-free with -pedantic
# -Werror, as C89, C99, C11 and C17 and as C++11, 14, 17 and 20: a user's
# -std is not ours to choose. A program that uses every public type and
# takes the address of every function is compiled in each mode.
#
# Exit: 0 pass, 1 fail, 77 no C or no C++ compiler.

set -u

if [ $# -ne 1 ] || [ ! -f "$1/include/zcnotify.h" ]; then
	echo "usage: $0 SOURCE_DIR" >&2
	exit 1
fi
inc=$1/include
cc=${CC:-cc}
cxx=${CXX:-c++}
for t in "$cc" "$cxx"; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t not found (apt-get install g++)" >&2
		exit 77
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zcnotify-header.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# C89 wants declarations first and no // comments; C++ no implicit casts.
cat >"$tmp/use.c" <<'PROG'
#include <zcnotify.h>

int main(void)
{
	struct zc_opts o;
	struct zc_completion c;
	struct zc_errrec r;
	struct zc_stats st;
	void (*fns[15])(void);
	unsigned int i;

	fns[0] = (void (*)(void))zc_open;
	fns[1] = (void (*)(void))zc_close;
	fns[2] = (void (*)(void))zc_sendmsg;
	fns[3] = (void (*)(void))zc_send;
	fns[4] = (void (*)(void))zc_completions;
	fns[5] = (void (*)(void))zc_wait;
	fns[6] = (void (*)(void))zc_inflight;
	fns[7] = (void (*)(void))zc_backend;
	fns[8] = (void (*)(void))zc_backend_name;
	fns[9] = (void (*)(void))zc_foreign;
	fns[10] = (void (*)(void))zc_get_stats;
	fns[11] = (void (*)(void))zc_last_error;
	fns[12] = (void (*)(void))zc_version;
	fns[13] = (void (*)(void))0;
	fns[14] = (void (*)(void))0;
	o.sz = sizeof(o);
	o.backend = ZC_BACKEND_COPY;
	c.flags = ZC_COPIED | ZC_LIB_COPY;
	r.flags = ZC_ERRREC_OFFENDER | ZC_ERRREC_TIMESTAMP;
	r.ts[0].tv_sec = 0;
	st.sz = sizeof(st);
	for (i = 0; i < 13; i++)
		if (!fns[i])
			return 1;
	return (int)(o.sz + c.flags + r.flags + st.sz) == 0 ||
	       ZCNOTIFY_VERSION_CODE <
	       ZCNOTIFY_VERSION(ZCNOTIFY_VERSION_MAJOR,
				ZCNOTIFY_VERSION_MINOR,
				ZCNOTIFY_VERSION_PATCH);
}
PROG
cp "$tmp/use.c" "$tmp/use.cc"

fails=0
try() {
	local what=$1

	shift
	if "$@" -I"$inc" -pedantic -Wall -Wextra -Werror -c \
		-o "$tmp/out.o" >"$tmp/log" 2>&1; then
		echo "ok:   $what"
	else
		cat "$tmp/log" >&2
		echo "FAIL: $what: $*" >&2
		fails=$((fails + 1))
	fi
}
for std in c89 c99 c11 c17; do
	try "$std" "$cc" -std="$std" "$tmp/use.c"
done
for std in c++11 c++14 c++17 c++20; do
	try "$std" "$cxx" -std="$std" "$tmp/use.cc"
done

if [ "$fails" -ne 0 ]; then
	echo "zcnotify.h: $fails mode(s) failed" >&2
	exit 1
fi
echo "zcnotify.h: clean in every mode"
exit 0
