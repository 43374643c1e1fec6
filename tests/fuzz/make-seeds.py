#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz harnesses (run from tests/fuzz)."""
import os
import struct

SOL_IP, IP_RECVERR, SOL_IPV6, IPV6_RECVERR = 0, 11, 41, 25
SOL_SOCKET, SCM_TIMESTAMPING = 1, 37


def cmsg(level, type_, data):
    hdr = struct.pack("=QiI", 16 + len(data), level, type_)
    pad = (-len(data)) % 8
    return hdr + data + b"\0" * pad


def ee(errno, origin, type_, code, info, data):
    return struct.pack("=IBBBBII", errno, origin, type_, code, 0, info, data)


def write(d, name, blob):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


win = struct.pack("=II", 0, 16)
wrapwin = struct.pack("=II", 0xfffffffe, 8)
sin = b"\0" * 16
sin6 = b"\0" * 28
d = "corpus-errqueue"
write(d, "zc-range", win + cmsg(SOL_IP, IP_RECVERR, ee(0, 5, 0, 0, 0, 3) + sin))
write(d, "zc-copied-v6", win + cmsg(SOL_IPV6, IPV6_RECVERR, ee(0, 5, 0, 1, 2, 9) + sin6))
write(d, "zc-wrap", wrapwin + cmsg(SOL_IP, IP_RECVERR, ee(0, 5, 0, 0, 0xfffffffe, 3) + sin))
write(d, "zc-huge", win + cmsg(SOL_IP, IP_RECVERR, ee(0, 5, 0, 0, 5, 4) + sin))
write(d, "icmp", win + cmsg(SOL_IP, IP_RECVERR, ee(111, 2, 3, 3, 0, 0) +
                          struct.pack("=HH4s8s", 2, 0, b"\x7f\0\0\1", b"")))
ts = struct.pack("=qqqqqq", 1, 2, 3, 4, 5, 6)
write(d, "timestamp", win + cmsg(SOL_SOCKET, SCM_TIMESTAMPING, ts) +
      cmsg(SOL_IP, IP_RECVERR, ee(42, 4, 0, 0, 7, 0) + sin))
write(d, "truncated", win + cmsg(SOL_IP, IP_RECVERR, ee(0, 5, 0, 0, 0, 1) + sin)[:24])

d = "corpus-scm"


def elems(*rs):
    return b"".join(struct.pack("=IIB3s", lo, hi, zc, b"\xaa\xaa\xaa") for lo, hi, zc in rs)


write(d, "one", b"\x00" + cmsg(SOL_SOCKET, 78, elems((0, 0, 1))))
write(d, "three", b"\x0f" + cmsg(SOL_SOCKET, 78, elems((0, 4, 1), (9, 9, 0), (5, 8, 1))))
write(d, "wrap", b"\x03" + cmsg(SOL_SOCKET, 78, elems((0xfffffff0, 3, 0))))
write(d, "sentinel", b"\x00" + struct.pack("=QiI", 28, SOL_SOCKET, 78) + b"\0" * 8 + b"\xff\0\0\0")
write(d, "bad-byte", b"\x01" + cmsg(SOL_SOCKET, 78, elems((0, 0, 7))))

# fuzz-model: 8 bytes of configuration, then operations (fuzz-model.c).
d = "corpus-model"


def cfg(scm=0, udp=0, v6=0, recverr=0, inflight=10, copy_below=0,
        no_adapt=1, base=0, every=0, fake=0):
    b0 = scm | udp << 1 | v6 << 2 | recverr << 3
    return bytes([b0, inflight, copy_below, no_adapt, base, every, fake, 0])


def send(size=16384, how=0, fault=0, extra=b""):
    return bytes([0]) + struct.pack("<HBB", size, how, fault) + extra


def release(sel=0, n=1, copied=0, v6=0, ctrunc=0):
    b = (n - 1) % 16 | copied << 4 | v6 << 5 | (0xc0 if ctrunc else 0)
    return bytes([3, sel, b])


def reap(mx=16, wait=0):
    return bytes([4, (mx << 2) | wait])


def foreign(how=0):
    return bytes([5, how])


def zc_foreign(mx=8):
    return bytes([6, mx])


seeds = {
    "tcp-in-order": cfg() + send() * 4 + release(0, 4) + reap(),
    "tcp-out-of-order": cfg(fake=1) + send() * 5 + release(3, 2) +
    release(1, 1, 1) + reap() + release(0, 2) + reap(),
    "tcp-partial-enobufs": cfg() + send(40000, 1, 4, struct.pack("<H", 1000)) +
    send(20000, 1, 3 | 0 << 6, bytes([1])) + release(0, 2) + reap(),
    "tcp-blocking-enobufs": cfg() + send() * 2 + send(16384, 4, 3 | 1 << 6, bytes([1, 1]) + bytes([0, 1])) +
    reap() + release(0, 8) + reap(),
    "tcp-ctrunc-foreign": cfg(v6=1) + send() * 3 + foreign(1) + release(0, 2, 0, 1, 1) +
    foreign(6) + reap() + reap() + zc_foreign() + release(0, 1) + reap(),
    "tcp-wrap": cfg(base=9) + send() * 8 + release(0, 8) + reap(),
    "tcp-small-ring": cfg(inflight=1) + send() * 3 + release(0, 1) + reap(1) + send(),
    "tcp-alloc": cfg() + send(16384, 0, 7, bytes([3])) + send() + release(2, 1) +
    bytes([4, 0x80 | (5 << 2)]) + release(0, 4) + reap(),
    "udp-recverr-drop": cfg(udp=1, recverr=1) + send() + send(16384, 0, 5 | 5 << 5) +
    send() + reap() + send() + release(0, 8) + reap(),
    "udp-eperm-drop": cfg(udp=1) + send() + send(16384, 0, 5) + reap() + send() +
    send(16384, 0, 3, bytes([3])) + reap() + release(0, 8) + reap(),
    "udp-copy-reap": cfg(udp=1, recverr=1) + send() + send(16384, 0, 6) +
    send(16384, 0, 5 | 5 << 5 | 1 << 4) + reap() + release(0, 8) + reap(),
    "scm-tcp": cfg(scm=1, fake=1) + send() * 4 + release(0, 2) + send() +
    release(0, 2) + send(16384, 0x20, 0, bytes([1])) + reap() + release(0, 8) + reap(),
    "scm-tcp-errors": cfg(scm=1, fake=2) + send() * 2 + release(0, 1) +
    send(16384, 0, 3 | 1 << 6, bytes([3, 2])) + send(16384, 0x18, 0, bytes([0])) + reap() +
    release(0, 8) + reap(),
    "scm-udp-drop-einval": cfg(scm=1, udp=1, every=1) + send() +
    send(16384, 0, 5 | 2 << 5) + send() + reap() + release(0, 8) + reap(),
    "scm-udp-v6": cfg(scm=1, udp=1, v6=1, recverr=1, fake=5) + send() * 6 +
    release(2, 3, 1, 1) + foreign(0) + send() * 2 + reap(3, 1) + release(0, 8) + reap(),
    "udp-read-fails": cfg(udp=1, recverr=1) + send() + send(16384, 0, 5 | 5 << 5) +
    foreign(0xe0) + reap() + send() + reap() + release(0, 8) + reap(),
    "scm-udp-read-fails": cfg(scm=1, udp=1, every=1) + send() + release(0, 1) +
    send(16384, 0, 5) + foreign(0xe0) + reap() + send() + reap() + reap() +
    release(0, 8) + reap(),
}
for name, blob in seeds.items():
    write(d, name, blob)

# Inputs fuzz-model found bugs with, kept as seeds (fixed in a793cf2,
# 0575385 and ba47de1; tests in test-scm.c).
found = {
    # scm TCP: the ENOBUFS harvest's send fails after taking a record.
    "found-scm-enobufs-harvest-fails":
    "410a000000cbcc000000a2a3a2a3a303830000000023a323bfde00a3a3a3a3bfde"
    "0000000006a30000000001",
    # scm UDP: EINVAL after the datagram's id, twice, with our cmsg.
    "found-scm-udp-einval-twice":
    "07440000000100080100f45000000000000000000100f5000000f4fffeff005800"
    "00000000cccc00580000000000cccccccccccccc",
    # scm UDP: a reap settles a dropped datagram's id, its queue read
    # failing (no memory) after a harvested range.
    "found-scm-udp-settle-unread":
    "0744002800016c84000000000101000000000000050002336c40f00da77b751084"
    "000000000001000010847a8484848484845b25840091a4bf545454545454545454"
    "545454545454bfffcc",
}
for name, hexd in found.items():
    write(d, name, bytes.fromhex(hexd))
