"""What each mesh message may hold, field by field.

A message that passed the frame's authentication is still only trusted as far
as its fields check out here: a type we know, exactly the fields its schema
names, each of the right JSON type and in range, pnns of nodes that exist,
addresses that parse, list members each checked. One bad field refuses the
whole message with `BadMessage`, which names the field, so the daemon can
drop it with one log line instead of letting a ValueError kill a task.

The table is data: a part of the daemon that adds a message type adds its
row to `SCHEMA` (`register`), with checks built from the ones below.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.ctdb import NodeFlags

UINT32_MAX = 0xFFFFFFFF
MAX_ID = 2**63 - 1
MAX_TEXT = 1024
_ALL_FLAGS = int(NodeFlags.DISCONNECTED | NodeFlags.UNHEALTHY | NodeFlags.PERMANENTLY_DISABLED
                 | NodeFlags.BANNED | NodeFlags.DELETED | NodeFlags.STOPPED | NodeFlags.UNKNOWN)


@dataclass(frozen=True)
class Context:
    """What a check needs to know about the cluster: which pnns exist, and
    which public IPs this node serves."""

    pnns: frozenset[int]
    ips: frozenset[str]


class BadMessage(ValueError):
    """An authenticated message whose content is not valid; `field` names where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}")
        self.field = field


Check = Callable[[Any, Context], str | None]
"""A field check: None when the value is fine, else what is wrong with it."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo: int, hi: int) -> Check:
    def check(v: Any, ctx: Context) -> str | None:
        if not _is_int(v):
            return f"{type(v).__name__} is not an integer"
        return None if lo <= v <= hi else f"{v} is outside {lo}..{hi}"
    return check


def boolean(v: Any, ctx: Context) -> str | None:
    return None if isinstance(v, bool) else f"{type(v).__name__} is not a boolean"


def text(v: Any, ctx: Context) -> str | None:
    if not isinstance(v, str):
        return f"{type(v).__name__} is not a string"
    return None if len(v) <= MAX_TEXT else f"string of {len(v)} chars exceeds {MAX_TEXT}"


def pnn(v: Any, ctx: Context) -> str | None:
    if not _is_int(v):
        return f"{type(v).__name__} is not a pnn"
    return None if v in ctx.pnns else f"no node {v} in this cluster"


def pnn_or_unassigned(v: Any, ctx: Context) -> str | None:
    return None if _is_int(v) and v == -1 else pnn(v, ctx)


def flags(v: Any, ctx: Context) -> str | None:
    if not _is_int(v):
        return f"{type(v).__name__} is not a flags word"
    return None if v >= 0 and not v & ~_ALL_FLAGS else f"{v:#x} has unknown flag bits"


def ipv4(v: Any, ctx: Context) -> str | None:
    """A dotted-quad IPv4 address in canonical form (the form the daemons send)."""
    if not isinstance(v, str):
        return f"{type(v).__name__} is not an address"
    try:
        ok = str(ipaddress.IPv4Address(v)) == v
    except ValueError:
        ok = False
    return None if ok else f"{v[:64]!r} is not an IPv4 address"


def public_ip(v: Any, ctx: Context) -> str | None:
    """An IPv4 address that is one of this node's public IPs."""
    problem = ipv4(v, ctx)
    if problem is None and v not in ctx.ips:
        problem = f"{v} is not a public IP of this node"
    return problem


def list_of(member: Check, max_len: int = 4096) -> Check:
    def check(v: Any, ctx: Context) -> str | None:
        if not isinstance(v, list):
            return f"{type(v).__name__} is not a list"
        if len(v) > max_len:
            return f"list of {len(v)} exceeds {max_len}"
        if len(set(map(repr, v))) != len(v):
            return "list has duplicate members"
        for i, m in enumerate(v):
            problem = member(m, ctx)
            if problem is not None:
                return f"member {i}: {problem}"
        return None
    return check


def mapping(key: Check, value: Check, max_len: int = 4096) -> Check:
    def check(v: Any, ctx: Context) -> str | None:
        if not isinstance(v, dict):
            return f"{type(v).__name__} is not an object"
        if len(v) > max_len:
            return f"object of {len(v)} entries exceeds {max_len}"
        for k, m in v.items():
            problem = key(k, ctx) or value(m, ctx)
            if problem is not None:
                return f"entry {str(k)[:64]!r}: {problem}"
        return None
    return check


REQUEST_ID = integer(1, MAX_ID)

SCHEMA: dict[str, Mapping[str, Check]] = {
    "hello": {"pnn": pnn},
    "keepalive": {},
    "flags": {"pnn": pnn, "flags": flags, "partial": boolean},
    "leader": {"pnn": pnn, "generation": integer(0, UINT32_MAX)},
    "takeover_request": {"pnn": pnn, "reason": text},
    "get_ips": {"id": REQUEST_ID},
    "ips": {"id": REQUEST_ID, "known": list_of(ipv4), "available": list_of(ipv4),
            "held": list_of(ipv4), "running": boolean, "hears": list_of(pnn)},
    "release_ip": {"id": REQUEST_ID, "ip": public_ip},
    "take_ip": {"id": REQUEST_ID, "ip": public_ip},
    "ipreallocated": {"id": REQUEST_ID, "assignment": mapping(ipv4, pnn_or_unassigned)},
    "done": {"id": REQUEST_ID, "ok": boolean},
}


def register(kind: str, fields: Mapping[str, Check]) -> None:
    """Add a message type (a part of the daemon that owns it calls this)."""
    if kind in SCHEMA:
        raise ValueError(f"message type {kind!r} is already registered")
    SCHEMA[kind] = dict(fields)


def validate(msg: Any, ctx: Context) -> dict[str, Any]:
    """msg itself if every field checks out; else BadMessage naming the field."""
    if not isinstance(msg, dict):
        raise BadMessage("body", f"{type(msg).__name__} is not a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in SCHEMA:
        raise BadMessage("type", f"unknown message type {str(kind)[:64]!r}")
    fields = SCHEMA[kind]
    for name in msg:
        if name != "type" and name not in fields:  # named by us: it goes into counter keys
            raise BadMessage("unknown-field", f"{str(name)[:64]!r} is not a field of {kind}")
    for name, check in fields.items():
        if name not in msg:
            raise BadMessage(name, f"missing from {kind}")
        problem = check(msg[name], ctx)
        if problem is not None:
            raise BadMessage(name, f"{kind}: {problem}")
    return msg
