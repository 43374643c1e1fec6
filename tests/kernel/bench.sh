#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh [--variant V] [--icount|--no-icount] BUILD_DIR [ZCBENCH OPTIONS...]
#
# zcbench in a rig.sh guest, where the scm mode runs: the error queue and
# SCM_ZC_NOTIFICATION side by side with the raw-syscall baseline.
#
# By default the guest is the bench kernel (--variant bench: patched, and
# loopback keeps MSG_ZEROCOPY pages, as the series' authors measured it)
# under qemu -icount with one vCPU (--icount): guest time counts
# instructions, so a figure does not depend on how busy the host is.
# --variant patched --no-icount is what this script ran before (loopback
# copies; two vCPUs; TCG wall-clock time).
#
#  1. over the guest's loopback: TCP and UDP, 4 KiB to 60 KiB, k = 1;
#  2. over the e1000 NIC pair to the peer namespace, where the pages really
#     go out zero-copy: TCP 64 KiB, UDP 60 KiB with GSO at the MTU. TCG's
#     emulated NIC, not the sender's CPU, bounds throughput there: read the
#     CPU per byte.
#
# Extra arguments replace the defaults of every run (e.g. -r 3 -d 1); a
# -m/--mode among them replaces the default modes (raw-zc,errqueue,scm), so
# any mode zcbench knows can be asked for. TCG emulates every instruction:
# absolute figures say nothing about real hardware; the ratios between
# modes of one run are what to read.
set -euo pipefail

usage="usage: bench.sh [--variant patched|unpatched|bench] [--icount|--no-icount] BUILD_DIR [ZCBENCH OPTIONS...]"
variant=${ZC_BENCH_VARIANT:-bench}
icount=${ZC_BENCH_ICOUNT:-1}
while (($#)); do
	case $1 in
	--variant)
		case ${2:-} in
		patched | unpatched | bench) variant=$2 ;;
		*) echo "bench.sh: $usage" >&2; exit 2 ;;
		esac
		shift 2
		;;
	--icount) icount=1; shift ;;
	--no-icount) icount=0; shift ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) break ;;
	esac
done
build=$(cd "${1:?$usage}" && pwd)
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
zcbench=$build/bench/zcbench
[[ -x $zcbench ]] || { echo "bench.sh: $zcbench missing: build first" >&2; exit 2; }
opts=("$@")
if ((${#opts[@]} == 0)); then
	# One vCPU under icount: sender and receiver share it, no pinning.
	# A count, not a duration: the same work every time, so the same
	# guest time, and a bounded wall time (TCG under -icount runs the
	# guest several times slower than real time).
	if ((icount)); then
		opts=(-n 10000 -r 5)
	else
		opts=(-C 0,1 -d 2 -r 7)
	fi
fi
# The default modes, unless the options name some (zcbench -m).
mode_opt=(-m raw-zc,errqueue,scm)
for o in "${opts[@]}"; do
	case $o in
	-m | -m?* | --mode | --mode=*) mode_opt=() ;;
	esac
done
peer='-a $ZC_RIG_PEER_ADDR -N /proc/$ZC_RIG_PEER_NETNS_PID/ns/net'
rig_opts=(--variant "$variant" --verbose --test-timeout 3000 --timeout 14000)
((icount)) && rig_opts+=(--icount)

list=$(mktemp)
trap 'rm -f "$list"' EXIT
{
	printf 'bench-lo-tcp\t%s -q %s -t tcp -s 4K,16K,64K -k 1 %s\n' \
		"$zcbench" "${mode_opt[*]}" "${opts[*]}"
	printf 'bench-lo-udp\t%s -q %s -t udp -s 4K,16K,60K -k 1 %s\n' \
		"$zcbench" "${mode_opt[*]}" "${opts[*]}"
	printf 'bench-nic-tcp\t%s -q %s %s -t tcp -s 64K -k 1 %s\n' \
		"$zcbench" "$peer" "${mode_opt[*]}" "${opts[*]}"
	printf 'bench-nic-udp-gso\t%s -q %s %s -t udp -s 60K -g 1472 -k 1 %s\n' \
		"$zcbench" "$peer" "${mode_opt[*]}" "${opts[*]}"
} >"$list"
exec bash "$here/rig.sh" "${rig_opts[@]}" "$list"
