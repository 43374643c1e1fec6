#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# rig.sh - boot a Linux 6.1 kernel with (or without) the SCM_ZC_NOTIFICATION
# patch in qemu (TCG) and run test programs in it. See README.md.
#
# usage: rig.sh [options] [LIST-FILE]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patch_file=$here/0001-net-scm-zc-notification-v5.patch
# the "bench" variant only: loopback keeps MSG_ZEROCOPY pages
bench_patch_file=$here/0002-bench-loopback-keeps-zerocopy-pages.patch
fragment=$here/config.fragment
default_list=$here/guest-tests.list
tarball=/usr/src/linux-source-6.1.tar.xz
# Bump when the way the kernel is built changes: invalidates the cache.
recipe_rev=1

variants=()
run_timeout=900
test_timeout=300
keep=0
build_only=0
verbose=0
nic=e1000
icount=0
list=

usage() {
	cat <<EOF
usage: $0 [options] [LIST-FILE]

Builds (or takes from the cache) a tinyconfig Linux 6.1 kernel, patched
with SCM_ZC_NOTIFICATION or not, boots it in qemu (TCG) with a busybox
initramfs and runs the tests of LIST-FILE (default: guest-tests.list).
Variants: patched (SCM_ZC_NOTIFICATION), unpatched (Debian's 6.1), bench
(patched, and loopback keeps MSG_ZEROCOPY pages: benchmarks and the
"never early" checks only; see README.md).
LIST-FILE: one test per line, NAME<TAB>COMMAND LINE; blank lines and
lines starting with # are ignored; @RIG_BIN@ is replaced by the directory
of the rig's own test programs.

options:
  --variant patched|unpatched|bench|both|all
                          kernel(s) to run (default patched; both =
                          patched and unpatched; all = the three; may be
                          given more than once)
  --timeout SECONDS       limit for one boot and all its tests (default $run_timeout)
  --test-timeout SECONDS  limit for one test in the guest (default $test_timeout)
  --nic MODEL             qemu NIC model of the two-NIC pair: e1000 (default)
                          or virtio-net-pci (see README.md)
  --icount                deterministic guest time: qemu -icount
                          shift=0,sleep=on,align=off and one vCPU (-smp 1);
                          slower in wall time
  --keep                  keep the work directory (initramfs, serial logs)
  --build-only            build kernels and helpers, boot nothing
  -v, --verbose           print the whole guest console
  -h, --help              this text

environment: ZC_RIG_CACHE (cache directory, default
\${XDG_CACHE_HOME:-\$HOME/.cache}/libzcnotify-rig)
EOF
}

die() {
	echo "rig: error: $*" >&2
	exit 2
}

log() {
	echo "rig: $*"
}

now() {
	echo "${EPOCHREALTIME/,/.}"
}

elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

while (($#)); do
	case $1 in
	--variant)
		[[ $# -ge 2 ]] || die "--variant needs an argument"
		case $2 in
		patched | unpatched | bench) variants+=("$2") ;;
		both) variants+=(patched unpatched) ;;
		all) variants+=(patched unpatched bench) ;;
		*) die "unknown variant '$2'" ;;
		esac
		shift 2
		;;
	--timeout)
		[[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
		run_timeout=$2
		shift 2
		;;
	--test-timeout)
		[[ ${2:-} =~ ^[0-9]+$ ]] || die "--test-timeout needs a number of seconds"
		test_timeout=$2
		shift 2
		;;
	--nic)
		[[ $# -ge 2 ]] || die "--nic needs an argument"
		nic=$2
		shift 2
		;;
	--icount) icount=1; shift ;;
	--keep) keep=1; shift ;;
	--build-only) build_only=1; shift ;;
	-v | --verbose) verbose=1; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*)
		[[ -z $list ]] || die "only one LIST-FILE"
		list=$1
		shift
		;;
	esac
done
((${#variants[@]})) || variants=(patched)
icount_note=
if ((icount)); then
	icount_note=", icount, 1 vCPU"
fi
list=${list:-$default_list}
if ((!build_only)); then
	[[ -f $list ]] || die "no such list file: $list"
	list=$(realpath "$list")
fi

cleanup_paths=()
cleanup() {
	local p
	for p in "${cleanup_paths[@]}"; do
		rm -rf "$p"
	done
}
trap cleanup EXIT

# ---- 1. packages ----------------------------------------------------------

t0=$(now)
missing=()
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd gcc gcc
need_cmd make make
need_cmd bc bc
need_cmd flex flex
need_cmd bison bison
need_cmd xz xz-utils
need_cmd patch patch
need_cmd cpio cpio
need_cmd gzip gzip
[[ -f /usr/include/stdio.h ]] || missing+=(libc6-dev)
[[ -f /usr/include/gelf.h ]] || missing+=(libelf-dev)
[[ -f $tarball ]] || missing+=(linux-source-6.1)
# busybox-static: a dynamically linked /bin/busybox would do too (its
# libraries are copied like any others), but Debian's busybox package may
# lack applets the guest needs (ip, nsenter, unshare).
if [[ ! -x /bin/busybox ]] ||
	! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	missing+=(busybox-static)
fi
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "missing packages: ${missing[*]} (run as root or install them)"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	log "packages installed in $(elapsed "$t0" "$(now)") s"
fi

# ---- 2. kernels -----------------------------------------------------------

cache=${ZC_RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/libzcnotify-rig}
mkdir -p "$cache"
cache=$(realpath "$cache")
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
key=$({
	echo "libzcnotify-rig kernel recipe $recipe_rev"
	echo "linux-source-6.1 $src_version"
	gcc -dumpfullversion
	# the diff only: editing the patch's description rebuilds nothing
	sed -n '/^diff --git /,$p' "$patch_file" | sha256sum
	sha256sum <"$fragment"
} | sha256sum | cut -c1-64)
# The bench kernel: the same inputs plus the second patch's diff, so that
# patched and unpatched keep their key (and their cached kernels).
bench_key=$({
	echo "$key"
	echo "bench variant"
	sed -n '/^diff --git /,$p' "$bench_patch_file" | sha256sum
} | sha256sum | cut -c1-64)
kernel_dir() {
	case $1 in
	bench) echo "$cache/$bench_key-$1" ;;
	*) echo "$cache/$key-$1" ;;
	esac
}

declare -A build_secs
build_kernel() {
	local variant=$1 out tmp src obj line lock t
	out=$(kernel_dir "$variant")
	build_secs[$variant]="kernel cached"
	exec {lock}>"$cache/.lock-${out##*/}"
	flock "$lock"
	if [[ -f $out/bzImage ]]; then
		log "kernel $variant: cached in $out"
		exec {lock}>&-
		return
	fi
	t=$(now)
	log "kernel $variant: building in $out (takes minutes)"
	tmp=$(mktemp -d "$cache/.build-$variant.XXXXXX")
	cleanup_paths+=("$tmp")
	tar -xf "$tarball" -C "$tmp"
	src=$tmp/linux-source-6.1
	obj=$tmp/obj
	[[ -d $src ]] || die "unexpected layout of $tarball"
	if [[ $variant == patched || $variant == bench ]]; then
		patch -d "$src" -p1 -s -N <"$patch_file" ||
			die "$patch_file does not apply to linux-source-6.1 $src_version"
	fi
	if [[ $variant == bench ]]; then
		patch -d "$src" -p1 -s -N <"$bench_patch_file" ||
			die "$bench_patch_file does not apply on top of $patch_file"
	fi
	mkdir -p "$obj" "$tmp/out"
	(
		cd "$src"
		make -s O="$obj" tinyconfig
		scripts/kconfig/merge_config.sh -m -O "$obj" "$obj/.config" "$fragment"
		make -s O="$obj" olddefconfig
	) >"$tmp/out/config.log" 2>&1 || {
		cat "$tmp/out/config.log" >&2
		die "kernel configuration failed"
	}
	while read -r line; do
		grep -qxF "$line" "$obj/.config" ||
			die "config.fragment: '$line' did not survive olddefconfig (missing dependency?)"
	done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$fragment")
	if ! make -C "$src" O="$obj" -j"$(nproc)" \
		KBUILD_BUILD_USER=zc-rig KBUILD_BUILD_HOST=zc-rig \
		bzImage >"$tmp/out/build.log" 2>&1; then
		tail -n 40 "$tmp/out/build.log" >&2
		die "kernel build failed ($variant)"
	fi
	cp "$obj/arch/x86/boot/bzImage" "$obj/.config" "$obj/usr/gen_init_cpio" \
		"$tmp/out/"
	rm -rf "$out"
	mv "$tmp/out" "$out"
	rm -rf "$tmp"
	exec {lock}>&-
	t=$(elapsed "$t" "$(now)")
	build_secs[$variant]="kernel built in $t s"
	log "kernel $variant: built in $t s"
}

for v in "${variants[@]}"; do
	build_kernel "$v"
done

# ---- the rig's own guest programs ------------------------------------------

helpers=(abi_test zc_nic_test)
# raw.h: what the helpers share
hkey=$({
	gcc -dumpfullversion
	for h in "${helpers[@]}"; do sha256sum <"$here/$h.c"; done
	sha256sum <"$here/raw.h"
} | sha256sum | cut -c1-16)
rig_bin=$cache/bin-$hkey
if [[ ! -x $rig_bin/${helpers[-1]} ]]; then
	tmp=$(mktemp -d "$cache/.bin.XXXXXX")
	cleanup_paths+=("$tmp")
	for h in "${helpers[@]}"; do
		gcc -O2 -g -Wall -Wextra -I"$here" -o "$tmp/$h" "$here/$h.c" ||
			die "cannot build $h"
	done
	rm -rf "$rig_bin"
	mv "$tmp" "$rig_bin"
fi
log "guest helpers in $rig_bin"

if ((build_only)); then
	log "build only: done in $(elapsed "$t0" "$(now)") s"
	exit 0
fi

# ---- 3. initramfs -----------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/zc-rig.XXXXXX")
((keep)) || cleanup_paths+=("$work")

tab=$'\t'
: >"$work/tests.list"
declare -A files=()
add_file() {
	local f=$1 dep
	if [[ -n ${files[$f]:-} ]]; then
		return 0
	fi
	files[$f]=1
	if [[ ! -x $f ]]; then
		return 0
	fi
	# shared libraries and the dynamic loader, as ldd resolves them
	while read -r dep; do
		if [[ $dep == "not found "* ]]; then
			echo "rig: warning: $f: ldd cannot find ${dep#not found }" >&2
		elif [[ -n $dep && -f $dep ]]; then
			files[$dep]=1
		fi
	done < <(ldd "$f" 2>/dev/null |
		awk '$2 == "=>" && $3 == "not" { print "not found " $1; next }
		     $2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
	return 0
}

ntests=0
while IFS= read -r line || [[ -n $line ]]; do
	[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
	[[ $line == *"$tab"* ]] || die "$list: no TAB in line: $line"
	name=${line%%"$tab"*}
	cmd=${line#*"$tab"}
	cmd=${cmd//@RIG_BIN@/$rig_bin}
	[[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || die "$list: bad test name '$name'"
	read -ra words <<<"$cmd"
	for w in "${words[@]}"; do
		if [[ $w =~ ^[A-Za-z_][A-Za-z0-9_]*=(.*)$ ]]; then
			w=${BASH_REMATCH[1]}
		fi
		w=${w#[\"\']}
		w=${w%[\"\']}
		if [[ $w == /* && -f $w ]]; then
			add_file "$w"
		fi
	done
	printf '%s\t%s\n' "$name" "$cmd" >>"$work/tests.list"
	ntests=$((ntests + 1))
done <"$list"
((ntests)) || die "$list: no tests"

cat >"$work/init" <<'EOF'
#!/bin/busybox sh
# Guest side of rig.sh: set up, run the tests of /rig/tests.list, report.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The rootfs is writable; mount a tmpfs only if nothing lives under /tmp.
[ -n "$(ls -A /tmp)" ] || mount -t tmpfs tmpfs /tmp
for kv in $(cat /proc/cmdline); do
	case $kv in
	zc_rig.*=*) kv=${kv#zc_rig.}; eval "rig_${kv%%=*}=\${kv#*=}" ;;
	esac
done
export ZC_RIG_VARIANT=$rig_variant ZC_RIG_NIC=$rig_nic ZC_RIG_ICOUNT=$rig_icount
# bench kernel: loopback keeps MSG_ZEROCOPY pages (0002 patch)
ZC_RIG_LOOPBACK_ZC=0
[ "$rig_variant" = bench ] && ZC_RIG_LOOPBACK_ZC=1
export ZC_RIG_LOOPBACK_ZC
echo "RIG: guest up: kernel $(uname -r), variant $ZC_RIG_VARIANT"

setup_net() {
	ip link set lo up || return 1
	[ -e /sys/class/net/eth0 ] && [ -e /sys/class/net/eth1 ] || {
		echo "RIG: need eth0 and eth1, have: $(ls /sys/class/net)"
		return 1
	}
	unshare -n sleep 999999 &
	peer=$!
	i=0
	while [ "$(readlink /proc/$peer/ns/net)" = "$(readlink /proc/1/ns/net)" ]; do
		i=$((i + 1))
		[ $i -lt 500 ] || return 1
		usleep 10000
	done
	ip link set eth1 netns "$peer" || return 1
	nsenter -t "$peer" -n sh -c "ip link set lo up &&
		ip addr add 10.199.0.2/24 dev eth1 && ip link set eth1 up" || return 1
	ip addr add 10.199.0.1/24 dev eth0 && ip link set eth0 up || return 1
	i=0
	until ping -c 1 -W 1 10.199.0.2 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 20 ] || { echo "RIG: peer 10.199.0.2 unreachable"; return 1; }
	done
	export ZC_RIG_PEER_NETNS_PID=$peer ZC_RIG_LOCAL_ADDR=10.199.0.1 \
		ZC_RIG_PEER_ADDR=10.199.0.2 ZC_RIG_LOCAL_IF=eth0 ZC_RIG_PEER_IF=eth1
	echo "RIG: network: eth0 10.199.0.1 <-> eth1 10.199.0.2 in netns of pid $peer ($ZC_RIG_NIC)"
}

failed=0
if ! setup_net; then
	echo "RIG: FAIL rig-network (two-NIC setup failed)"
	failed=1
fi

tab=$(printf '\t')
while IFS="$tab" read -r name cmd; do
	echo "RIG: BEGIN $name: $cmd"
	start=$(date +%s)
	timeout -s KILL "$rig_test_timeout" sh -c "$cmd" </dev/null 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc = 0 ]; then
		echo "RIG: PASS $name (${secs}s)"
	elif [ $rc = 77 ]; then
		echo "RIG: SKIP $name (${secs}s)"
	elif [ $secs -ge "$rig_test_timeout" ]; then
		echo "RIG: FAIL $name (timeout after ${secs}s)"
		failed=1
	else
		echo "RIG: FAIL $name (exit $rc)"
		failed=1
	fi
done </rig/tests.list

echo "RIG: DONE"
# isa-debug-exit: qemu exits with status (value << 1) | 1.
printf "\\00$failed" | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
echo "RIG: could not write to the isa-debug-exit port"
sleep 5
poweroff -f
EOF

make_initramfs() {
	local variant=$1 spec=$work/initramfs-$1.spec f d
	local -A dirs=()
	{
		echo "dir /dev 0755 0 0"
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "dir /bin 0755 0 0"
		echo "file /bin/busybox /bin/busybox 0755 0 0"
		echo "file /init $work/init 0755 0 0"
		echo "dir /rig 0755 0 0"
		echo "file /rig/tests.list $work/tests.list 0644 0 0"
		dirs[/dev]=1 dirs[/bin]=1 dirs[/rig]=1
		for f in $(printf '%s\n' "${!files[@]}" | sort); do
			d=$(dirname "$f")
			local parts=() p=
			while [[ $d != / && -z ${dirs[$d]:-} ]]; do
				dirs[$d]=1
				parts=("$d" "${parts[@]}")
				d=$(dirname "$d")
			done
			for p in "${parts[@]}"; do
				echo "dir $p 0755 0 0"
			done
			echo "file $f $(realpath "$f") $(stat -L -c %a "$f") 0 0"
		done
	} >"$spec"
	"$(kernel_dir "$variant")/gen_init_cpio" "$spec" | gzip -1 >"$work/initramfs-$variant.gz"
}

# ---- 4. boot ------------------------------------------------------------------

total_pass=0 total_fail=0 total_skip=0
summaries=()
strip_log() {
	# firmware escape sequences and CRs
	sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[()][0-9A-Za-z]//g' \
		-e 's/\x1b[c78=>]//g' -e 's/\r//g' "$1"
}

run_variant() {
	local variant=$1 kdir raw=$work/serial-$1.raw out=$work/serial-$1.log
	local t rc secs pass fail skip status=finished netargs=() i cpuargs=(-smp 2)
	kdir=$(kernel_dir "$variant")
	# qemu 7.2 hangs bringing up a second vCPU under -icount: one vCPU.
	# shift=0: one instruction is one ns of guest time, whatever the host
	# load; sleep=on: while the vCPU idles, guest time runs at real speed
	# (so timers and timeouts behave); align=off: qemu does not throttle
	# the guest to keep its clock near the host's.
	if ((icount)); then
		cpuargs=(-icount shift=0,sleep=on,align=off -smp 1)
	fi
	make_initramfs "$variant"
	for i in 0 1; do
		netargs+=(-netdev "hubport,id=n$i,hubid=0"
			-device "$nic,netdev=n$i,mac=52:54:00:c0:99:0$((i + 1)),romfile=")
	done
	log "booting $variant kernel ($nic pair$icount_note, timeout ${run_timeout}s)"
	t=$(now)
	rc=0
	timeout -k 10 "$run_timeout" qemu-system-x86_64 \
		-accel "${ZC_RIG_ACCEL:-tcg}" -cpu "${ZC_RIG_CPU:-max}" -m 1G "${cpuargs[@]}" \
		-nographic -vga none -no-reboot \
		-kernel "$kdir/bzImage" -initrd "$work/initramfs-$variant.gz" \
		-append "console=ttyS0 panic=-1 oops=panic quiet zc_rig.variant=$variant zc_rig.nic=$nic zc_rig.test_timeout=$test_timeout zc_rig.icount=$icount" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		"${netargs[@]}" \
		</dev/null >"$raw" 2>&1 || rc=$?
	secs=$(elapsed "$t" "$(now)")
	strip_log "$raw" >"$out"
	if ((verbose)); then
		sed 's/^/  | /' "$out"
	fi

	# per-test lines; the output of failed tests
	grep -o 'RIG: .*' "$out" | grep -v '^RIG: BEGIN' || true
	if ! ((verbose)); then
		awk '/RIG: BEGIN / { name = $3; sub(/:$/, "", name); buf = ""; on = 1; next }
		     /RIG: (PASS|SKIP) / { on = 0; next }
		     /RIG: FAIL / {
			if (on) printf "rig: output of %s:\n%s", name, buf
			on = 0; next
		     }
		     on { buf = buf "  | " $0 "\n" }' "$out"
	fi
	pass=$(grep -c 'RIG: PASS ' "$out" || true)
	fail=$(grep -c 'RIG: FAIL ' "$out" || true)
	skip=$(grep -c 'RIG: SKIP ' "$out" || true)
	if grep -qE 'Kernel panic|BUG:|WARNING:|Oops|general protection fault' "$out"; then
		echo "rig: $variant: the kernel reported a problem:"
		grep -E -A 20 'Kernel panic|BUG:|WARNING:|Oops|general protection fault' "$out" |
			sed 's/^/  | /' | head -n 60
		status=kernel-problem
		fail=$((fail + 1))
	fi
	if ! grep -q 'RIG: DONE' "$out" || [[ $rc != 1 && $rc != 3 ]]; then
		case $rc in
		124 | 137) echo "rig: $variant: guest timed out after ${run_timeout}s" ;;
		*) echo "rig: $variant: guest did not finish (qemu exit $rc)" ;;
		esac
		((verbose)) || tail -n 30 "$out" | sed 's/^/  | /'
		status=unfinished
		fail=$((fail + 1))
	fi
	echo "rig: serial log: $out$( ((keep)) || echo ' (removed at exit; --keep keeps it)')"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	summaries+=("RIG SUMMARY $variant${icount_note:+ (icount)}: $pass passed, $fail failed, $skip skipped ($status; ${build_secs[$variant]}, boot+run $secs s)")
}

for v in "${variants[@]}"; do
	run_variant "$v"
done
printf '%s\n' "${summaries[@]}"
log "total time $(elapsed "$t0" "$(now)") s"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
((total_fail == 0))
