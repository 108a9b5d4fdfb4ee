"""Messages between daemons on the private network.

A frame is a 4-byte big-endian length, then (with a cluster key) a 32-byte
HMAC-SHA256 of the body, then the body: one JSON object with a "type".
Anything malformed, oversized, unauthenticated or of an unknown type raises
`BadMessage`; the daemon logs it and drops the connection, and keeps running.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import struct
from typing import Any

MAX_FRAME = 1 << 20
MAC_LEN = 32

# type -> required fields (and their JSON types)
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"pnn": int},
    "keepalive": {},
    "flags": {"pnn": int, "flags": int, "partial": bool},
    "leader": {"pnn": int, "generation": int},
    "takeover_request": {"pnn": int, "reason": str},
    "get_ips": {"id": int},
    "ips": {"id": int, "known": list, "available": list, "held": list, "running": bool},
    "release_ip": {"id": int, "ip": str},
    "take_ip": {"id": int, "ip": str},
    "ipreallocated": {"id": int, "assignment": dict},
    "done": {"id": int, "ok": bool},
}


class BadMessage(ValueError):
    """A frame that is not a valid, authenticated message of a known type."""


def validate(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        raise BadMessage("message is not a JSON object")
    kind = msg.get("type")
    if kind not in SCHEMA:
        raise BadMessage(f"unknown message type {kind!r}")
    for field, typ in SCHEMA[kind].items():
        val = msg.get(field)
        if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
            want = getattr(typ, "__name__", str(typ))
            raise BadMessage(f"{kind}: field {field!r} missing or not {want}")
    return msg


def encode(msg: dict[str, Any], key: bytes | None) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    if key:
        body = hmac.new(key, body, hashlib.sha256).digest() + body
    return struct.pack("!I", len(body)) + body


async def read_message(reader: asyncio.StreamReader, key: bytes | None) -> dict[str, Any]:
    """Next valid message; raises BadMessage, or IncompleteReadError at EOF."""
    (size,) = struct.unpack("!I", await reader.readexactly(4))
    if size > MAX_FRAME:
        raise BadMessage(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = await reader.readexactly(size)
    if key:
        if size < MAC_LEN:
            raise BadMessage("frame too short for its HMAC")
        mac, body = body[:MAC_LEN], body[MAC_LEN:]
        if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
            raise BadMessage("HMAC mismatch (wrong or missing cluster key)")
    try:
        msg = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadMessage(f"not JSON: {e}") from None
    return validate(msg)
