#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind-run.sh PROGRAM ARGS...: PROGRAM under memcheck; any error or
# definite/indirect leak fails (exit 1). Exits 77 without valgrind.
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: no valgrind"; exit 77; }
exec valgrind --quiet --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--track-fds=no "$@"
