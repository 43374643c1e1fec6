#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-smoke.sh ZCBENCH PLOT CALLGRIND - seconds-long runs of every zcbench
# mode (TCP and UDP, IPv4 and IPv6, two sizes, two k) over loopback, so the
# tool cannot rot. Checks what the figures must be whatever the machine's
# speed: exact send counts, syscalls per send of the raw modes and of the
# copy backend, every TCP byte received, ratios to the reference, CSV and
# JSON that agree; bad usage refused; the receiver's byte check (-V); the
# SCM_ZC_NOTIFICATION parser (--self-test), and raw-scm run over an
# emulation of the ABI (libscm-emu.so beside zcbench) where the kernel
# lacks it, as raw-scm and scm are skipped then; many connections a run
# (-c 1,100: the memory and fd figures there and plausible, limits that
# skip a count or a mode without failing); the plot and callgrind
# scripts work when gnuplot and valgrind are there. No timing is asserted.
set -u
zcbench=${1:?usage: bench-smoke.sh ZCBENCH PLOT CALLGRIND}
plot=${2:?} callgrind=${3:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# --- raw-scm's parser ------------------------------------------------------
"$zcbench" --self-test || fail "zcbench --self-test"

# --- every mode --------------------------------------------------------
n=300
"$zcbench" -q -m all -t tcp,udp -F 4,6 -s 4K,32K -k 1,4 -n $n -r 2 \
	--csv "$tmp/o.csv" --json "$tmp/o.json" >"$tmp/out" 2>"$tmp/err"
st=$?
cat "$tmp/out" "$tmp/err"
[ $st -eq 0 ] || fail "zcbench exited $st"
# Modes that must run anywhere; raw-scm when the kernel has
# SCM_ZC_NOTIFICATION, scm and uring when the library says so, raw-uring
# when zcbench has liburing and the kernel IORING_OP_SEND_ZC.
modes="raw-copy raw-zc copy errqueue"
for m in raw-scm scm uring raw-uring; do
	if grep -q "zcbench: $m: skipped:" "$tmp/err"; then
		echo "note: $m skipped here (see its reason above)"
	else
		modes="$modes $m"
	fi
done
# 2 protocols x 2 families x 2 sizes x 2 k = 16 configurations.
for m in $modes; do
	runs=$(awk -F, -v m="$m" '$1 == m && $5 != "median"' "$tmp/o.csv" | wc -l)
	meds=$(awk -F, -v m="$m" '$1 == m && $5 == "median"' "$tmp/o.csv" | wc -l)
	[ "$runs" -eq 32 ] || fail "$m: $runs runs in the CSV, not 32"
	[ "$meds" -eq 16 ] || fail "$m: $meds median rows, not 16"
done
# Per run: exactly n sends, n * size bytes (at most, on TCP), throughput
# above 0; raw-copy
# and the copy backend make one syscall per send; the error-queue modes
# at least one; TCP: the receiver got every byte; the reference's ratio
# to itself is 1.
awk -F, -v n=$n '
	NR == 1 || $5 == "median" { next }
	function bad(what) { printf "FAIL: %s %s %s k=%s round %s: %s\n", $1, $2, $3, $4, $5, what; errs++ }
	$8 != n { bad("sends " $8) }
	# A blocking TCP send may return short (a signal, task work): the
	# bench counts what was sent and goes on.
	!($7 > 0 && $7 <= n * $3) || ($2 ~ /^udp/ && $7 != n * $3) { bad("bytes " $7) }
	!($9 > 0) { bad("MB/s " $9) }
	($1 == "raw-copy" || $1 == "copy") && $14 != "1.0000" { bad("syscalls/send " $14) }
	($1 == "raw-zc" || $1 == "raw-scm" || $1 == "errqueue" || $1 == "raw-uring") && !($14 >= 1) { bad("syscalls/send " $14) }
	# raw-uring: one submit a send (no --batch), a wait at most for each
	# result and notification besides.
	$1 == "raw-uring" && !($14 <= 3) { bad("syscalls/send " $14) }
	$2 ~ /^tcp/ && $17 != "1.0000" { bad("received share " $17) }
	$1 == "raw-zc" && ($18 != "1.0000" || $19 != "1.0000") { bad("ratios to itself " $18 " " $19) }
	$1 != "raw-zc" && $18 == "" { bad("no ratio") }
	END { exit errs ? 1 : 0 }' "$tmp/o.csv" || fails=$((fails + 1))
pairs="'errqueue vs raw-zc' 'copy vs raw-copy'"
case " $modes " in *" raw-uring "*) pairs="$pairs 'raw-uring vs raw-zc'" ;; esac
case " $modes " in *" uring "*" raw-uring "*) pairs="$pairs 'uring vs raw-uring'" ;; esac
eval "set -- $pairs"
for pair; do
	grep -q "$pair: throughput" "$tmp/out" || fail "no '$pair' line"
done
# The JSON holds the same runs.
python3 - "$tmp/o.json" "$tmp/o.csv" <<'PY' || fails=$((fails + 1))
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["round"] != "median"]
if len(j["runs"]) != len(rows):
    sys.exit("FAIL: JSON has %d runs, CSV %d" % (len(j["runs"]), len(rows)))
for a, b in zip(j["runs"], rows):
    if (a["mode"], a["proto"], str(a["size"]), str(a["k"]), str(a["round"]),
            str(a["bytes"])) != (b["mode"], b["proto"], b["size"], b["k"],
                                 b["round"], b["bytes"]):
        sys.exit("FAIL: JSON and CSV disagree: %r / %r" % (a, b))
print("JSON: %d runs, %d medians, reference %s" %
      (len(j["runs"]), len(j["summary"]), j["reference"]))
PY

# --- raw-scm over an emulated SCM_ZC_NOTIFICATION -----------------------
# Where the kernel lacks the ABI, raw-scm was skipped above: run its loop
# over libscm-emu.so (bench/scm-emu.c), which takes the records from the
# error queue inside sendmsg. Its timing means nothing; the counts do.
emu=$(dirname "$zcbench")/libscm-emu.so
if ! grep -q "zcbench: raw-scm: skipped:" "$tmp/err"; then
	echo "note: raw-scm ran on this kernel: no emulation needed"
elif [ ! -f "$emu" ]; then
	echo "note: $emu not built: raw-scm not exercised"
elif ldd "$zcbench" 2>/dev/null | grep -q 'lib[at]san'; then
	echo "note: a sanitizer build: no preloaded emulation"
else
	LD_PRELOAD=$emu "$zcbench" -q -m raw-zc,raw-scm -t tcp,udp -F 4,6 \
		-s 4K,32K -k 1,4 -n $n -r 1 --csv "$tmp/e.csv" \
		>"$tmp/e.out" 2>"$tmp/e.err"
	st=$?
	cat "$tmp/e.err"
	[ $st -eq 0 ] || fail "raw-scm over the emulation exited $st"
	grep -q "skipped" "$tmp/e.err" && fail "raw-scm skipped over the emulation"
	grep -q "raw-scm vs raw-zc: throughput" "$tmp/e.out" ||
		fail "no 'raw-scm vs raw-zc' line"
	# The cmsg path took records (not only the error queue at the end).
	awk '/^scm-emu:/ && $2 > 0 { ok = 1 } END { exit !ok }' "$tmp/e.err" ||
		fail "raw-scm: no record came back through the cmsg"
	# Exact sends; completions were checked exactly by zcbench itself;
	# a sendmsg per k-th send at least; some range per harvest.
	awk -F, -v n=$n '
		NR == 1 || $5 == "median" || $1 != "raw-scm" { next }
		function bad(what) { printf "FAIL: raw-scm (emulated) %s %s k=%s: %s\n", $2, $3, $4, what; errs++ }
		{ runs++ }
		$8 != n { bad("sends " $8) }
		!($14 >= 1) { bad("syscalls/send " $14) }
		!($15 >= 1) { bad("completions per harvest " $15) }
		$2 ~ /^tcp/ && $17 != "1.0000" { bad("received share " $17) }
		END { if (runs != 16) { print "FAIL: raw-scm (emulated): " runs " runs, not 16"; errs++ }
		      exit errs ? 1 : 0 }' "$tmp/e.csv" || fails=$((fails + 1))
	# Per socket over many connections: zcbench checks that the
	# completions add up to the zero-copy sends, or fails.
	LD_PRELOAD=$emu "$zcbench" -q -m raw-scm -t tcp,udp -s 4K -k 4 -c 10 \
		-n 200 -r 1 >"$tmp/ec.out" 2>&1 ||
		fail "raw-scm (emulated) -c 10: $(cat "$tmp/ec.out")"
fi

# --- many connections (-c) ----------------------------------------------
# Without -c, no column of it (the CSV of the first run).
head -n 1 "$tmp/o.csv" | grep -q conns && fail "a conns column without -c"
# Every mode at 1 and 100 connections: exact sends, every TCP byte; the
# figures of -c in the table, the CSV and the JSON, plausible whatever
# the speed: fds per connection at least 1 (the socket; exactly 1 for
# the raw modes), the memory figures numbers, and a library mode's idle
# memory above 0 at 100 (a zc_sock is more than 40 pages / 100).
nc=400
"$zcbench" -q -m all -t tcp,udp -s 4K -k 4 -c 1,100 -n $nc -r 1 \
	--csv "$tmp/c.csv" --json "$tmp/c.json" >"$tmp/c.out" 2>"$tmp/c.err"
st=$?
cat "$tmp/c.err"
[ $st -eq 0 ] || fail "zcbench -c exited $st"
grep -q "idle B/c" "$tmp/c.out" || fail "-c: no memory columns in the table"
grep -q "100 connections" "$tmp/c.out" || fail "-c: no '100 connections' table"
for m in $modes; do
	want=4
	# A limit of this machine may stop a mode at 100 (uring: 3 fds each).
	if grep -q "zcbench: $m .*c=100 skipped" "$tmp/c.err"; then
		echo "note: $m skipped at c=100 here (see its reason above)"
		want=2
	else
		grep -q "  $m: c=100 vs c=1: throughput" "$tmp/c.out" ||
			fail "-c: no '$m: c=100 vs c=1' line"
	fi
	runs=$(awk -F, -v m="$m" '$1 == m && $5 != "median"' "$tmp/c.csv" | wc -l)
	[ "$runs" -eq $want ] || fail "-c: $m: $runs runs in the CSV, not $want"
done
awk -F, -v n=$nc '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$5 == "median" { next }
	function bad(what) { printf "FAIL: -c %s %s c=%s: %s\n", $1, $2, $(col["conns"]), what; errs++ }
	function num(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?$/ }
	{ c = $(col["conns"]); raw = $1 ~ /^raw-/ }
	c != 1 && c != 100 { bad("conns " c) }
	$(col["sends"]) != n { bad("sends " $(col["sends"])) }
	$2 ~ /^tcp/ && $(col["rx_share"]) != "1.0000" { bad("received share " $(col["rx_share"])) }
	!num($(col["fds_per_conn"])) || $(col["fds_per_conn"]) < 1 { bad("fds per connection " $(col["fds_per_conn"])) }
	!num($(col["fds_stream_per_conn"])) || $(col["fds_stream_per_conn"]) < 1 { bad("fds per connection streaming " $(col["fds_stream_per_conn"])) }
	raw && ($(col["fds_per_conn"]) != "1.0000" || $(col["fds_stream_per_conn"]) != "1.0000") { bad("a raw mode with more than its sockets") }
	!num($(col["rss_idle_per_conn"])) { bad("idle memory per connection " $(col["rss_idle_per_conn"])) }
	!num($(col["rss_stream_per_conn"])) { bad("streaming memory per connection " $(col["rss_stream_per_conn"])) }
	!raw && c == 100 && !($(col["rss_idle_per_conn"]) > 0) { bad("no library memory " $(col["rss_idle_per_conn"])) }
	END { if (!col["conns"]) { print "FAIL: -c: no conns column"; errs++ }
	      exit errs ? 1 : 0 }' "$tmp/c.csv" || fails=$((fails + 1))
python3 - "$tmp/c.json" "$tmp/c.csv" <<'PY' || fails=$((fails + 1))
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["round"] != "median"]
keys = ("conns", "rss_idle_per_conn", "rss_stream_per_conn", "fds_per_conn",
        "fds_stream_per_conn")
if len(j["runs"]) != len(rows):
    sys.exit("FAIL: -c: JSON has %d runs, CSV %d" % (len(j["runs"]), len(rows)))
for a, b in zip(j["runs"], rows):
    if any(k not in a for k in keys) or str(a["conns"]) != b["conns"]:
        sys.exit("FAIL: -c: JSON run %r against CSV %r" % (a, b))
if any(k not in s for s in j["summary"] for k in keys):
    sys.exit("FAIL: -c: a JSON median without the connection figures")
PY
# The receiver's byte check over many connections.
"$zcbench" -q -V -m raw-copy,errqueue -t tcp,udp -s 16K -c 20 -n 200 -r 1 \
	>"$tmp/cv.out" 2>&1 || fail "-V -c 20: $(cat "$tmp/cv.out")"
# ... with the sends in zc_ctx_sendmmsg() calls (--batch; the uring mode
# when this machine has it), every send reaped (zcbench waits until
# zc_inflight() is 0), every byte checked; --batch alone refused.
bm=errqueue,copy
"$zcbench" -q -m uring -n 10 -r 1 >/dev/null 2>&1 && bm=$bm,uring
# raw-uring: 16 SQEs an io_uring_enter(), none of one connection twice.
"$zcbench" -q -m raw-uring -n 10 -r 1 >/dev/null 2>&1 && bm=$bm,raw-uring
"$zcbench" -q -V -x --batch 16 -m $bm -t tcp,udp -s 16K -k 1,8 -c 20 \
	-n 400 -r 1 --csv "$tmp/cb.csv" >"$tmp/cb.out" 2>&1 ||
	fail "-V -x --batch 16 -c 20: $(cat "$tmp/cb.out")"
# raw-uring batched: every send made, an io_uring_enter() for many (UDP:
# nothing to wait for but the batch's own results).
case $bm in *raw-uring*)
	awk -F, 'NR > 1 && $1 == "raw-uring" && $5 != "median" {
		runs++
		if ($8 != 400 || ($2 ~ /^udp/ && !($14 <= 0.5))) {
			printf "FAIL: raw-uring --batch 16 %s k=%s: sends %s, syscalls/send %s\n", $2, $4, $8, $14; errs++ }
	}
	END { if (runs != 4) { print "FAIL: raw-uring --batch 16: " runs " runs, not 4"; errs++ }
	      exit errs ? 1 : 0 }' "$tmp/cb.csv" || fails=$((fails + 1)) ;;
esac
"$zcbench" -q --batch 4 -m errqueue -n 10 -r 1 >/dev/null 2>&1 &&
	fail "--batch without -x accepted"
# Limits, in a subshell with a low RLIMIT_NOFILE: a count whose sockets
# cannot fit is skipped (nothing left to run: 77); a mode that runs out of
# fds while opening (uring: a ring and an eventfd a socket) is skipped at
# that count, said where, and the others run (0).
(ulimit -n 64 && exec "$zcbench" -q -m raw-copy -c 100 -n 100 -r 1) \
	>"$tmp/l1.out" 2>&1
st=$?
[ $st -eq 77 ] && grep -q "c=100: skipped: 100 connections need" "$tmp/l1.out" ||
	fail "-c over RLIMIT_NOFILE: exit $st, '$(head -c 300 "$tmp/l1.out")'"
if grep -q "zcbench: uring: skipped:" "$tmp/err"; then
	echo "note: uring skipped here: its fd limit not exercised"
else
	(ulimit -n 180 && exec "$zcbench" -q -m uring,errqueue -c 100 -n 200 -r 1 \
		--csv "$tmp/l2.csv") >"$tmp/l2.out" 2>&1
	st=$?
	[ $st -eq 0 ] || fail "-c, uring out of fds: exit $st: $(cat "$tmp/l2.out")"
	grep -q "uring tcp4 [0-9]* B k=1: c=100 skipped: zc_open failed at connection [0-9]* of 100 ([0-9]* opened): .*Too many open files" \
		"$tmp/l2.out" ||
		fail "-c, uring out of fds: no clear message: $(cat "$tmp/l2.out")"
	awk -F, '$1 == "errqueue" && $5 == "1"' "$tmp/l2.csv" | grep -q . ||
		fail "-c, uring out of fds: errqueue did not run"
fi

# --- the receiver checks every byte (-V) --------------------------------
"$zcbench" -q -V -m raw-copy,raw-zc -t tcp,udp -s 16K -n 100 -r 1 \
	>"$tmp/v.out" 2>&1 || fail "-V run: $(cat "$tmp/v.out")"
grep -q "receiver checks every byte" "$tmp/v.out" ||
	fail "-V run: the header does not say the receiver checks"

# --- a remote receiver (zcbench -l) on loopback ------------------------
port=$((20000 + RANDOM % 20000))
"$zcbench" -l -V -a 127.0.0.1 -p $port >"$tmp/l.out" 2>&1 &
lpid=$!
# It says "receiving" once it listens; a loaded machine may take seconds.
for _ in $(seq 600); do
	grep -q receiving "$tmp/l.out" && break
	kill -0 $lpid 2>/dev/null || break
	sleep 0.1
done
grep -q receiving "$tmp/l.out" ||
	fail "zcbench -l: not listening after 60 s: $(cat "$tmp/l.out")"
if "$zcbench" -q -a 127.0.0.1 -p $port -m raw-copy,errqueue -t tcp,udp \
	-s 16K -n 100 -r 1 --csv "$tmp/r.csv" >/dev/null 2>"$tmp/r.err"; then
	rows=$(awk -F, '$5 == "1"' "$tmp/r.csv" | wc -l)
	[ "$rows" -eq 4 ] || fail "remote: $rows runs, not 4"
else
	fail "remote run: $(cat "$tmp/r.err")"
fi
kill -INT $lpid
# ^C must stop it: give it 5 s, then fail rather than hang.
for _ in $(seq 50); do kill -0 $lpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $lpid 2>/dev/null; then
	kill -9 $lpid
	fail "zcbench -l did not stop on SIGINT"
fi
wait $lpid
grep -q "bytes received" "$tmp/l.out" || fail "zcbench -l: $(cat "$tmp/l.out")"
grep -q "checking every byte" "$tmp/l.out" || fail "zcbench -l -V: $(cat "$tmp/l.out")"
grep -q "not the bytes sent" "$tmp/l.out" && fail "zcbench -l -V: $(cat "$tmp/l.out")"

# --- bad usage: exit 2 and say why -------------------------------------
bad_usage() {
	local want=$1; shift
	"$zcbench" "$@" >"$tmp/b.out" 2>&1
	local st=$?
	if [ $st -ne 2 ] || ! grep -q -- "$want" "$tmp/b.out"; then
		fail "zcbench $*: exit $st, '$(head -c 200 "$tmp/b.out")'"
	fi
}
bad_usage "do not fit in a UDP/IPv4 datagram" -t udp -s 70000
bad_usage "unknown mode 'bogus'" -m bogus
bad_usage "is not one of the modes run" -m copy --ref scm
bad_usage "is not a number" -n 0
bad_usage "is not a number of seconds" -d -1
bad_usage "needs the receiver's address" -N /proc/self/ns/net
# -m picks the backends: the library's override would mislabel the rows.
ZCNOTIFY_BACKEND=copy bad_usage "ZCNOTIFY_BACKEND=\"copy\" would replace" \
	-m errqueue -n 10 -r 1
ZCNOTIFY_BACKEND=copy "$zcbench" -q -m raw-copy -n 10 -r 1 >"$tmp/b.out" 2>&1 ||
	fail "ZCNOTIFY_BACKEND with bare modes alone: $(head -c 200 "$tmp/b.out")"
bad_usage "unexpected argument" extra
bad_usage "is for UDP alone" -t tcp -g 1400
bad_usage "is not two CPU numbers" -C 0
bad_usage "is not a number" -c 0
bad_usage "is not a number" -c 1,x

# --- UDP GSO: one send of 32 KiB leaves as 1400-byte datagrams ----------
if "$zcbench" -q -t udp -s 32K -g 1400 -m raw-zc,errqueue -n 200 -r 1 \
	--csv "$tmp/g.csv" >"$tmp/g.out" 2>&1; then
	grep -q "UDP GSO 1400" "$tmp/g.out" || fail "GSO run: no GSO in the header"
	rows=$(awk -F, '$5 == "1" && $7 == 200 * 32768' "$tmp/g.csv" | wc -l)
	[ "$rows" -eq 2 ] || fail "GSO run: $rows complete runs, not 2"
else
	fail "GSO run: $(cat "$tmp/g.out")"
fi

# --- plot ----------------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
	if sh "$plot" -p udp6 -k 4 "$tmp/o.csv" "$tmp/p.png"; then
		[ "$(head -c 4 "$tmp/p.png" | od -An -c | tr -d ' ')" = '211PNG' ] ||
			fail "zcbench-plot wrote no PNG"
	else
		fail "zcbench-plot failed"
	fi
	sh "$plot" -p sctp4 "$tmp/o.csv" "$tmp/q.png" 2>/dev/null &&
		fail "zcbench-plot drew a protocol that is not there"
else
	echo "note: gnuplot not found: zcbench-plot not exercised"
fi

# --- callgrind -----------------------------------------------------------
if ldd "$zcbench" 2>/dev/null | grep -q 'lib[at]san'; then
	echo "note: a sanitizer build: zcbench-callgrind not exercised"
elif command -v valgrind >/dev/null 2>&1; then
	sh "$callgrind" -b "$zcbench" -n 2000 >"$tmp/cg" 2>&1
	st=$?
	cat "$tmp/cg"
	if [ $st -ne 0 ] || ! awk '/library:/ && $2 > 0 { ok = 1 } END { exit !ok }' "$tmp/cg"; then
		fail "zcbench-callgrind ($st)"
	fi
	# Its default conditions (UDP 4K k=1: one record a send, queued
	# before send() returns) make the count repeat to the instruction.
	sh "$callgrind" -b "$zcbench" -n 2000 >"$tmp/cg2" 2>&1
	a=$(awk '/library:/ { print $2 }' "$tmp/cg")
	b=$(awk '/library:/ { print $2 }' "$tmp/cg2")
	[ -n "$a" ] && [ "$a" = "$b" ] ||
		fail "zcbench-callgrind: two runs counted '$a' and '$b'"
	# -p: the whole sending process, for a bare mode too; it holds the
	# library's own instructions and zcbench's loop besides them.
	sh "$callgrind" -p -b "$zcbench" -n 2000 >"$tmp/cg3" 2>&1
	p=$(awk '/process:/ { print $2 }' "$tmp/cg3")
	awk -v p="$p" -v l="$a" 'BEGIN { exit !(p > l && l > 0) }' ||
		fail "zcbench-callgrind -p: process '$p', library '$a': $(cat "$tmp/cg3")"
	sh "$callgrind" -p -m raw-zc -b "$zcbench" -n 2000 >"$tmp/cg4" 2>&1
	cat "$tmp/cg4"
	awk '/process:/ && $2 > 0 { ok = 1 } /library:/ { ok = 0; exit } END { exit !ok }' "$tmp/cg4" ||
		fail "zcbench-callgrind -p -m raw-zc: $(cat "$tmp/cg4")"
	sh "$callgrind" -m raw-zc -b "$zcbench" -n 10 >/dev/null 2>&1
	[ $? -eq 2 ] || fail "zcbench-callgrind -m raw-zc without -p not refused"
else
	echo "note: valgrind not found: zcbench-callgrind not exercised"
fi

if [ $fails -ne 0 ]; then
	echo "bench-smoke: $fails failure(s)"
	exit 1
fi
echo "bench-smoke: every mode ran and its figures hold together"
