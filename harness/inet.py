"""The Internet checksum (RFC 1071), shared by the packets the harness and
the native daemon build by hand: the prober's ICMP echo and the daemon's
tickle ACKs and resets."""

from __future__ import annotations

import struct


def checksum(data: bytes) -> int:
    """One's complement of the one's complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
