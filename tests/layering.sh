#!/bin/sh
# SPDX-License-Identifier: MIT
#
# layering.sh SRCDIR [ARCHIVE]: the library's files depend on each other
# one way, down the layers below (docs: STYLE.md, "Layering"; README.md,
# "Layout"), as the #include "..." lines of SRCDIR/src/ say:
# - every file of src/ is in a layer (a new file must be put in one);
# - a file includes only headers of its own layer or of lower ones;
# - the include graph has no cycle.
# With ARCHIVE (the internal static library), the same for calls: the
# zc__/zc_ symbols an object uses are defined in its own layer or below
# (nm), so a declaration written by hand cannot climb back up either.
# Prints each offending edge; exit status 0 if none, 1 if some, 2 on
# bad usage.
set -eu

# The layers, lowest first: one line each, "name: files".
layers='
base: zcnotify.h compat.h sock.h
sys: sys.h sys.c
ring: ring.h ring.c
errqueue: errqueue.h errqueue.c
backends: backend.h backend_errqueue.c backend_copy.c backend_scm.h backend_scm.c backend_uring.h backend_uring.c
entry: internal.h zcnotify.c ctx.c version.c
'

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1/src" ]; then
	echo "usage: layering.sh SRCDIR [ARCHIVE]" >&2
	exit 2
fi
src=$1/src
archive=${2-}

# "layer-number layer-name file" for every listed file.
table=$(printf '%s\n' "$layers" | awk -F': *' 'NF == 2 {
	n++; k = split($2, f, " ");
	for (i = 1; i <= k; i++) print n, $1, f[i] }')

# "file included" for every #include "..." of src/.
edges=$(cd "$src" && for f in *.c *.h; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' \
		"$f" | sed "s|^|$f |"
done)

files=$(cd "$src" && ls -- *.c *.h)

status=0
out=$(printf '%s\n' "$table" "--" "$files" "--" "$edges" | awk '
	$0 == "--" { part++; next }
	part == 0 { num[$3] = $1; name[$3] = $2; next }
	part == 1 {
		if (!($1 in num)) {
			print "src/" $1 ": in no layer: add it to tests/layering.sh"
			bad = 1
		}
		next
	}
	part == 2 && NF == 2 {
		from = $1; to = $2
		if (!(to in num)) {
			print from " -> " to ": " to " is in no layer"
			bad = 1
		} else if ((from in num) && num[to] > num[from]) {
			print from " -> " to ": up from layer " name[from] \
			      " to layer " name[to]
			bad = 1
		}
		adj[from] = adj[from] " " to
		nodes[from] = 1; nodes[to] = 1
	}
	# Depth-first: an edge to a file on the current path closes a cycle.
	function visit(v,    k, i, j, w, s) {
		state[v] = 1
		path[++depth] = v
		k = split(adj[v], w, " ")
		for (i = 1; i <= k; i++) {
			if (state[w[i]] == 1) {
				s = w[i]
				for (j = depth; j >= 1 && path[j] != w[i]; j--)
					;
				for (j++; j <= depth; j++)
					s = s " -> " path[j]
				print v " -> " w[i] ": closes the cycle " s " -> " w[i]
				bad = 1
			} else if (!state[w[i]]) {
				visit(w[i])
			}
		}
		depth--
		state[v] = 2
	}
	END {
		for (v in nodes)
			if (!state[v])
				visit(v)
		exit bad
	}') || status=1
[ -z "$out" ] || printf '%s\n' "$out"

# Calls: which object defines each symbol, which objects use it.
if [ -n "$archive" ]; then
	if ! command -v nm >/dev/null 2>&1; then
		echo "layering.sh: nm not found: calls not checked" >&2
	else
		# "file kind symbol": members are named src_ring.c.o (meson).
		syms=$(nm -A "$archive" 2>/dev/null | awk -F: '{
			m = $(NF - 1); k = split($NF, w, " ")
			if (k < 2 || w[k] !~ /^zc_/) next
			sub(/.*\//, "", m); sub(/^src_/, "", m); sub(/\.o$/, "", m)
			print m, w[k - 1], w[k] }')
		out=$(printf '%s\n' "$table" "--" "$syms" | awk '
			$0 == "--" { part++; next }
			part == 0 { num[$3] = $1; name[$3] = $2; next }
			$2 == "U" { use[++n] = $1 " " $3; next }
			$2 ~ /[TDBRV]/ { def[$3] = $1 }
			END {
				for (i = 1; i <= n; i++) {
					split(use[i], u, " ")
					d = def[u[2]]
					if (d == "" || !(d in num) || !(u[1] in num))
						continue
					if (num[d] > num[u[1]]) {
						print u[1] " calls " u[2] "() of " d \
						      ": up from layer " name[u[1]] \
						      " to layer " name[d]
						bad = 1
					}
				}
				exit bad
			}') || status=1
		[ -z "$out" ] || printf '%s\n' "$out"
	fi
fi

[ $status -eq 0 ] && echo "layering: every include and call goes down"
exit $status
