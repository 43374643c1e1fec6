#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-suites.sh BUILD_DIR [--variant both|bench|all] - the library's suites
# on the patched and the unpatched Linux 6.1 of rig.sh, then (own boot) the
# loopback, threaded and fault suites on the bench kernel, in one go.
#
# Patched kernel (SCM_ZC_NOTIFICATION v5): the probe must say supported and
# AUTO must pick SCM; the unit, loopback and threaded suites pass with AUTO,
# with SCM forced and with the error queue forced; real zero-copy over the
# guest's NIC pair comes back through the cmsg; test-faults' optmem, memlock
# and peer modes hold on each backend (SCM forced, error queue, io_uring).
# Unpatched kernel: the probe must say unsupported, AUTO falls back to the
# error queue, the same suites pass, forcing SCM is skipped (test-probe
# checks that it fails cleanly).
# The kernel patch itself is checked by the rig's own abi_test.
# Bench kernel (patched, and loopback keeps MSG_ZEROCOPY pages: 0002 patch):
# the only place where a completion handed out too early corrupts what a
# loopback receiver reads. The loopback suite (error queue and SCM forced),
# the threaded suite and the fault modes optmem, memlock, peer and drops,
# on each backend, in their own boot.
#
# --variant both: patched and unpatched only; bench: the bench boot only;
# all (default): both, then bench.
#
# Ends with the line "N passed, N failed, N skipped" over all boots; exits
# non-zero if any test failed.
set -euo pipefail

usage="usage: run-suites.sh BUILD_DIR [--variant both|bench|all]"
build=$(cd "${1:?$usage}" && pwd)
shift
which=all
while (($#)); do
	case $1 in
	--variant)
		case ${2:-} in
		both | bench | all) which=$2 ;;
		*) echo "run-suites: $usage" >&2; exit 2 ;;
		esac
		shift 2
		;;
	*) echo "run-suites: $usage" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
t=$build/tests
# TCG emulates every instruction: scale the loopback suites down.
sends=${ZC_RIG_SENDS:-10000}
# test-faults streams 5 x this many sends of up to 64 KiB per mode.
fault_sends=${ZC_RIG_FAULT_SENDS:-2000}

for f in tests/test-unit tests/test-scm tests/test-probe tests/test-loopback \
	tests/test-threads tests/test-nic tests/test-uring tests/test-faults; do
	[[ -x $build/$f ]] || { echo "run-suites: $build/$f missing: build first" >&2; exit 2; }
done

list=$(mktemp)
bench_list=$(mktemp)
out=$(mktemp)
trap 'rm -f "$list" "$bench_list" "$out"' EXIT
# the patched and the bench kernel have SCM_ZC_NOTIFICATION
patched_only='case "$ZC_RIG_VARIANT" in patched|bench) ;; *) echo "SKIP: SCM forced needs the patched kernel"; exit 77;; esac;'
# nftables and tc drops and holds: nft and tc (and their libraries) are
# copied into the guest by naming them; busybox's tc is not it.
tools="ZC_NFT=$(command -v nft || echo /usr/sbin/nft) ZC_TC=$(command -v tc || echo /sbin/tc)"
{
	printf 'abi\t@RIG_BIN@/abi_test\n'
	printf 'nic-raw\t@RIG_BIN@/zc_nic_test\n'
	printf 'unit\t%s\n' "$t/test-unit"
	printf 'unit-scm\t%s\n' "$t/test-scm"
	printf 'probe\t%s\n' "$t/test-probe"
	for run in tcp4-zc tcp6-zc udp4-zc udp6-zc tcp4-default udp4-default; do
		printf 'loopback-auto-%s\tZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$sends" "$t/test-loopback" "$run"
	done
	for run in tcp4-zc tcp6-zc udp4-zc udp6-zc; do
		printf 'loopback-scm-%s\t%s ZCNOTIFY_BACKEND=scm ZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$patched_only" "$sends" "$t/test-loopback" "$run"
		printf 'loopback-errqueue-%s\tZCNOTIFY_BACKEND=errqueue ZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$sends" "$t/test-loopback" "$run"
	done
	printf 'threads-auto\tZC_TEST_SENDS=%s %s phases\n' "$sends" "$t/test-threads"
	printf 'threads-scm\t%s ZCNOTIFY_BACKEND=scm ZC_TEST_SENDS=%s %s phases\n' \
		"$patched_only" "$sends" "$t/test-threads"
	# io_uring on 6.1: SEND_ZC without REPORT_USAGE (6.2).
	for run in basics stream-tcp4 stream-udp6 eagain-nonblock no-usage \
		threads-tcp4; do
		printf 'uring-%s\tZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$sends" "$t/test-uring" "$run"
	done
	# Faults (test-faults.c) on each backend. optmem: 6.1 has no per-netns
	# optmem_max; the test sees ZC_RIG_VARIANT, lowers the VM's global
	# value and restores it.
	for mode in optmem memlock peer; do
		printf 'faults-%s-errqueue\tZC_TEST_SENDS=%s %s %s errqueue\n' \
			"$mode" "$fault_sends" "$t/test-faults" "$mode"
		printf 'faults-%s-scm\t%s ZC_TEST_SENDS=%s %s %s scm\n' \
			"$mode" "$patched_only" "$fault_sends" "$t/test-faults" "$mode"
	done
	for mode in optmem memlock peer; do
		printf 'faults-%s-uring\tZC_TEST_SENDS=%s %s %s uring\n' \
			"$mode" "$fault_sends" "$t/test-faults" "$mode"
	done
	for b in errqueue uring; do
		printf 'faults-drops-%s\t%s %s drops %s\n' "$b" "$tools" \
			"$t/test-faults" "$b"
	done
	printf 'faults-drops-scm\t%s %s %s drops scm\n' "$patched_only" \
		"$tools" "$t/test-faults"
	printf 'faults-probe-blocked\t%s %s probe-blocked\n' "$tools" \
		"$t/test-faults"
	# Contexts: zc_ctx_sendmmsg() on the ring (6.1's SEND_ZC) and on
	# the error queue; the ring's senders and reaper in threads.
	for b in errqueue uring; do
		printf 'ctx-sendmmsg-%s\tZCNOTIFY_BACKEND=%s %s sendmmsg\n' \
			"$b" "$b" "$t/test-ctx"
	done
	printf 'ctx-ring-threads\t%s uring-threads\n' "$t/test-ctx"
	# scm members: their harvests take records the reaper was told of,
	# and a send is news only when its harvest took some; one closed
	# behind the library's back leaves its fd number's new member be.
	for run in quiet sendmmsg threads fd-reuse; do
		printf 'ctx-%s-scm\t%s ZCNOTIFY_BACKEND=scm %s %s\n' \
			"$run" "$patched_only" "$t/test-ctx" "$run"
	done
	printf 'nic-auto\t%s\n' "$t/test-nic"
	printf 'nic-errqueue\tZCNOTIFY_BACKEND=errqueue %s\n' "$t/test-nic"
	printf 'nic-scm\t%s ZCNOTIFY_BACKEND=scm %s\n' "$patched_only" "$t/test-nic"
	printf 'nic-uring\tZCNOTIFY_BACKEND=uring %s\n' "$t/test-nic"
	# zcbench's every mode, briefly: on the patched kernel scm must run.
	# (Built with the examples: -Dexamples=false has no zcbench.)
	if [[ -x $build/bench/zcbench ]]; then
		printf 'zcbench-smoke\t%s -q -m all -t tcp,udp -s 16K -n 200 -r 1 >/tmp/zb.out 2>&1; rc=$?; cat /tmp/zb.out; [ $rc -eq 0 ] || exit $rc; [ "$ZC_RIG_VARIANT" != patched ] || grep -q "scm vs errqueue" /tmp/zb.out\n' \
			"$build/bench/zcbench"
	fi
} >"$list"

# The bench kernel (ZC_RIG_LOOPBACK_ZC=1 in the guest): test-loopback then
# expects completions that are not COPIED, and its receiver reads the
# sender's own pages, which it overwrites with garbage on completion.
{
	for run in tcp4-zc tcp6-zc udp4-zc udp6-zc tcp4-default udp4-default; do
		printf 'loopback-errqueue-%s\tZCNOTIFY_BACKEND=errqueue ZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$sends" "$t/test-loopback" "$run"
		printf 'loopback-scm-%s\t%s ZCNOTIFY_BACKEND=scm ZC_TEST_SENDS=%s %s %s\n' \
			"$run" "$patched_only" "$sends" "$t/test-loopback" "$run"
	done
	for b in errqueue scm; do
		printf 'threads-%s\tZCNOTIFY_BACKEND=%s ZC_TEST_SENDS=%s %s phases\n' \
			"$b" "$b" "$sends" "$t/test-threads"
	done
	for mode in optmem memlock peer; do
		for b in errqueue scm uring; do
			printf 'faults-%s-%s\tZC_TEST_SENDS=%s %s %s %s\n' \
				"$mode" "$b" "$fault_sends" "$t/test-faults" "$mode" "$b"
		done
	done
	for b in errqueue scm uring; do
		printf 'faults-drops-%s\t%s %s drops %s\n' "$b" "$tools" \
			"$t/test-faults" "$b"
	done
	# zc_ctx_sendmmsg(): each buffer overwritten on its completion.
	for b in errqueue uring; do
		printf 'ctx-sendmmsg-%s\tZCNOTIFY_BACKEND=%s %s sendmmsg\n' \
			"$b" "$b" "$t/test-ctx"
	done
	printf 'ctx-sendmmsg-scm\t%s ZCNOTIFY_BACKEND=scm %s sendmmsg\n' \
		"$patched_only" "$t/test-ctx"
} >"$bench_list"

# Each boot's results, then the sum of their "N passed, ..." lines.
rc=0
boot() {
	local r=0
	bash "$here/rig.sh" "$@" 2>&1 | tee -a "$out" || r=$?
	((r == 0)) || rc=1
}
case $which in
both) boot --variant both "$list" ;;
bench) boot --variant bench "$bench_list" ;;
all)
	boot --variant both "$list"
	boot --variant bench "$bench_list"
	;;
esac
grep '^RIG SUMMARY ' "$out" || true
awk '/^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ {
	p += $1; f += $3; s += $5; n++ }
     END { if (!n) f = 1; printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$out"
exit $rc
