#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Lint the man pages: man-lint.sh SRCDIR
#
# - every man/*.1, man/*.3 and man/*.7 must be clean under `mandoc -Tlint -Wwarning`
#   and `groff -man -ww -z` (groff is skipped if it is not installed);
# - every .3 page has the sections NAME, SYNOPSIS, DESCRIPTION,
#   RETURN VALUE, ERRORS, SEE ALSO, and a .TH that matches its file name;
# - every page's .TH names the release of meson.build ("libzcnotify 0.2");
# - every symbol in the global list of src/libzcnotify.map has man/<sym>.3;
# - man/meson.build installs every page, and only pages that exist.
# A page that is a one-line `.so` alias stub is only checked for its target.
#
# Exit status: 0 clean, 1 problems found, 77 (skip) if mandoc is missing.

set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 SRCDIR" >&2
	exit 2
fi
srcdir=$1
mandir=$srcdir/man
mapfile=$srcdir/src/libzcnotify.map

if ! command -v mandoc >/dev/null 2>&1; then
	echo "SKIP: mandoc not found (apt-get install mandoc)"
	exit 77
fi
have_groff=1
if ! command -v groff >/dev/null 2>&1; then
	echo "note: groff not found, skipping the groff check"
	have_groff=0
fi

problems=0
problem() {
	echo "FAIL: $*"
	problems=$((problems + 1))
}

# The release the pages describe: .TH says "libzcnotify MAJOR.MINOR".
version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([0-9]*\.[0-9]*\)\.[0-9]*'.*/\1/p" \
	"$srcdir/meson.build" | head -n 1)
if [ -z "$version" ]; then
	problem "meson.build: no project version found"
fi

shopt -s nullglob
pages=("$mandir"/*.1 "$mandir"/*.3 "$mandir"/*.7)
if [ ${#pages[@]} -eq 0 ]; then
	problem "no man pages found in $mandir"
fi

# The .so target of an alias stub, or nothing for a real page.
so_target() {
	awk 'NF && !/^\.\\"/ { n++; line = $0 }
	     END { if (n == 1 && line ~ /^\.so[ \t]/) { sub(/^\.so[ \t]+/, "", line); print line } }' "$1"
}

for page in "${pages[@]}"; do
	name=$(basename "$page")
	rel=man/$name

	target=$(so_target "$page")
	if [ -n "$target" ]; then
		if [ ! -f "$mandir/$(basename "$target")" ]; then
			problem "$rel: .so target '$target' does not exist"
		fi
		continue
	fi

	# mandoc: any message at level warning or above is a problem.
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	if [ -n "$out" ]; then
		while IFS= read -r line; do
			problem "$rel: $line"
		done <<<"$out"
	fi

	# groff: any warning (-ww enables all) is a problem.
	if [ $have_groff -eq 1 ]; then
		out=$(groff -man -ww -z "$page" 2>&1)
		if [ -n "$out" ]; then
			while IFS= read -r line; do
				problem "$rel: groff: $line"
			done <<<"$out"
		fi
	fi

	# .TH must name the page as its file does.
	base=${name%.*}
	sect=${name##*.}
	read -r th_name th_sect _ < <(awk '/^\.TH[ \t]/ { $1 = ""; print; exit }' "$page" | tr -d '"')
	if [ "${th_name:-}" != "$base" ] || [ "${th_sect:-}" != "$sect" ]; then
		problem "$rel: .TH says '${th_name:-} ${th_sect:-}', want '$base $sect'"
	fi
	# Its footer names the release: a 0.2 library's pages say 0.2.
	th_src=$(awk '/^\.TH[ \t]/ { n = split($0, q, "\""); if (n >= 3) print q[2]; exit }' "$page")
	if [ -n "$version" ] && [ "$th_src" != "libzcnotify $version" ]; then
		problem "$rel: .TH says '$th_src', want 'libzcnotify $version' (meson.build)"
	fi

	# Required sections of a function page.
	if [ "$sect" = 3 ]; then
		sections=$(awk '/^\.SH[ \t]/ { sub(/^\.SH[ \t]+/, ""); gsub(/"/, ""); print }' "$page")
		for want in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS "SEE ALSO"; do
			if ! grep -qxF "$want" <<<"$sections"; then
				problem "$rel: missing section '$want'"
			fi
		done
	fi
done

# Every exported symbol has its page.
if [ ! -f "$mapfile" ]; then
	problem "src/libzcnotify.map not found"
else
	symbols=$(awk '
		{ sub(/#.*/, "") }
		/global:/ { g = 1; sub(/.*global:/, "") }
		/local:/ || /}/ { g = 0 }
		g {
			gsub(/[;[:space:]]+/, " ")
			n = split($0, w, " ")
			for (i = 1; i <= n; i++)
				if (w[i] != "" && w[i] !~ /[*?]/)
					print w[i]
		}' "$mapfile")
	if [ -z "$symbols" ]; then
		problem "src/libzcnotify.map: no global symbols found"
	fi
	for sym in $symbols; do
		if [ ! -f "$mandir/$sym.3" ]; then
			problem "man/$sym.3 is missing (exported by src/libzcnotify.map)"
		fi
	done
fi

# man/meson.build installs exactly the pages there are.
if [ -f "$mandir/meson.build" ]; then
	listed=$(grep -oE "'[^']+\.[137]'" "$mandir/meson.build" | tr -d "'" | sort -u)
	for page in "${pages[@]}"; do
		name=$(basename "$page")
		if ! grep -qxF "$name" <<<"$listed"; then
			problem "man/$name is not installed by man/meson.build"
		fi
	done
	for name in $listed; do
		if [ ! -f "$mandir/$name" ]; then
			problem "man/meson.build installs man/$name, which does not exist"
		fi
	done
else
	problem "man/meson.build not found"
fi

if [ $problems -ne 0 ]; then
	echo "man-lint: $problems problem(s)"
	exit 1
fi
echo "man-lint: ${#pages[@]} pages clean"
exit 0
