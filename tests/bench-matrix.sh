#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-matrix.sh ZCBENCH PLOT CALLGRIND OUTDIR - the whole zcbench matrix
# over loopback (suite 'slow': meson test --suite slow bench-matrix): TCP
# and UDP, IPv4 and IPv6, 1 KiB to 60 KiB, k = 1 and 16, every mode, three
# rounds; CSV, JSON and a PNG per protocol in OUTDIR; then the library's
# instructions per send under callgrind for every library mode that runs.
# Prints figures; asserts only that every run succeeded and every file was
# written (speed is for people to read, not for tests to time).
set -u
zcbench=${1:?usage: bench-matrix.sh ZCBENCH PLOT CALLGRIND OUTDIR}
plot=${2:?} callgrind=${3:?} out=${4:?}
mkdir -p "$out"
fails=0

"$zcbench" -q -t tcp,udp -F 4,6 -s 1K,4K,16K,32K,60K -k 1,16 -d 0.5 -r 3 \
	--csv "$out/matrix.csv" --json "$out/matrix.json" || fails=$((fails + 1))
if command -v gnuplot >/dev/null 2>&1; then
	for p in tcp4 tcp6 udp4 udp6; do
		for k in 1 16; do
			sh "$plot" -p $p -k $k "$out/matrix.csv" \
				"$out/$p-k$k.png" || fails=$((fails + 1))
		done
	done
else
	echo "note: gnuplot not found: no plots"
fi
if command -v valgrind >/dev/null 2>&1; then
	for m in errqueue copy uring scm; do
		for k in 1 16; do
			sh "$callgrind" -b "$zcbench" -m $m -n 20000 -- -k $k
			st=$?
			[ $st -eq 0 ] || [ $st -eq 77 ] || fails=$((fails + 1))
		done
	done
else
	echo "note: valgrind not found: no instruction counts"
fi
ls -l "$out"
[ $fails -eq 0 ] || { echo "bench-matrix: $fails failure(s)"; exit 1; }
