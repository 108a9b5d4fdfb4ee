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
    # Never set by a daemon: the 4.17 `ctdb` tool shows other nodes as
    # UNKNOWN while the queried node's runstate is at most FIRST_RECOVERY,
    # because their flags are not trustworthy yet.  It is not part of INACTIVE.
    UNKNOWN = 0x40
    DISABLED = UNHEALTHY | PERMANENTLY_DISABLED
    INACTIVE = DELETED | DISCONNECTED | BANNED | STOPPED


# Order in which `ctdb status` prints flag names, joined with "|" (the table
# in ctdb/tools/ctdb.c pretty_print_flags, checked against the 4.17 binary).
# A name is printed when any of its bits is set, so INACTIVE follows the
# DISCONNECTED/BANNED/DELETED/STOPPED bits and DISABLED means only the
# administrative PERMANENTLY_DISABLED bit.
STATUS_ORDER: tuple[tuple[str, NodeFlags], ...] = (
    ("DISCONNECTED", NodeFlags.DISCONNECTED),
    ("UNKNOWN", NodeFlags.UNKNOWN),
    ("DISABLED", NodeFlags.PERMANENTLY_DISABLED),
    ("BANNED", NodeFlags.BANNED),
    ("UNHEALTHY", NodeFlags.UNHEALTHY),
    ("DELETED", NodeFlags.DELETED),
    ("STOPPED", NodeFlags.STOPPED),
    ("INACTIVE", NodeFlags.INACTIVE),
)
