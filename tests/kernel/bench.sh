#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh BUILD_DIR [ZCBENCH OPTIONS...] - zcbench in the patched-kernel
# guest (rig.sh), where the scm mode runs: the error queue and
# SCM_ZC_NOTIFICATION side by side with the raw-syscall baseline.
#
#  1. over the guest's loopback, as the series' cover letter measured it
#     (msg_zerocopy over veth: the receive side copies; the sender is
#     CPU-bound): TCP and UDP, 4 KiB to 60 KiB, k = 1;
#  2. over the e1000 NIC pair to the peer namespace, where the pages really
#     go out zero-copy: TCP 64 KiB, UDP 60 KiB with GSO at the MTU. TCG's
#     emulated NIC, not the sender's CPU, bounds throughput there: read the
#     CPU per byte.
#
# Extra arguments replace the defaults of every run (e.g. -r 3 -d 1).
# TCG emulates every instruction: absolute figures say nothing about real
# hardware; the ratios between modes of one run are what to read.
set -euo pipefail

build=$(cd "${1:?usage: bench.sh BUILD_DIR [ZCBENCH OPTIONS...]}" && pwd)
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
zcbench=$build/bench/zcbench
[[ -x $zcbench ]] || { echo "bench.sh: $zcbench missing: build first" >&2; exit 2; }
opts=("$@")
[[ ${#opts[@]} -gt 0 ]] || opts=(-C 0,1 -d 2 -r 7)
modes=raw-zc,errqueue,scm
peer='-a $ZC_RIG_PEER_ADDR -N /proc/$ZC_RIG_PEER_NETNS_PID/ns/net'

list=$(mktemp)
trap 'rm -f "$list"' EXIT
{
	printf 'bench-lo-tcp\t%s -q -m %s -t tcp -s 4K,16K,64K -k 1 %s\n' \
		"$zcbench" "$modes" "${opts[*]}"
	printf 'bench-lo-udp\t%s -q -m %s -t udp -s 4K,16K,60K -k 1 %s\n' \
		"$zcbench" "$modes" "${opts[*]}"
	printf 'bench-nic-tcp\t%s -q %s -m %s -t tcp -s 64K -k 1 %s\n' \
		"$zcbench" "$peer" "$modes" "${opts[*]}"
	printf 'bench-nic-udp-gso\t%s -q %s -m %s -t udp -s 60K -g 1472 -k 1 %s\n' \
		"$zcbench" "$peer" "$modes" "${opts[*]}"
} >"$list"
exec bash "$here/rig.sh" --variant patched --verbose --test-timeout 1200 \
	--timeout 3000 "$list"
