"""CTDB node flags (ctdb/protocol/protocol.h), shared by the native daemon,
the allocator and the output formatter so that all three agree bit for bit."""

from __future__ import annotations

import enum


class NodeFlags(enum.IntFlag):
    """Bit values as in CTDB 4.17; combined names as CTDB defines them."""

    NONE = 0
    DISCONNECTED = 0x01
    UNHEALTHY = 0x02
    PERMANENTLY_DISABLED = 0x04
    BANNED = 0x08
    DELETED = 0x10
    STOPPED = 0x20
    DISABLED = UNHEALTHY | PERMANENTLY_DISABLED
    INACTIVE = DELETED | DISCONNECTED | BANNED | STOPPED


# Order in which `ctdb status` prints flag names, joined with "|".
STATUS_ORDER: tuple[tuple[str, NodeFlags], ...] = (
    ("DISCONNECTED", NodeFlags.DISCONNECTED),
    ("UNKNOWN", NodeFlags.NONE),  # runtime-only in CTDB; never set by us
    ("DISABLED", NodeFlags.PERMANENTLY_DISABLED),
    ("BANNED", NodeFlags.BANNED),
    ("UNHEALTHY", NodeFlags.UNHEALTHY),
    ("DELETED", NodeFlags.DELETED),
    ("STOPPED", NodeFlags.STOPPED),
    ("INACTIVE", NodeFlags.INACTIVE),
)
