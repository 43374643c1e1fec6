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
