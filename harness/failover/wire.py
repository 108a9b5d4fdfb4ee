"""Frames between daemons on the private network, authenticated per connection.

Each mesh connection is one-way: the node that opened it writes, the node
that accepted it reads. On accept the reader first sends a fresh random
CHALLENGE (16 bytes); the writer then sends frames

    length (4 bytes, big-endian) | MAC (32) | sequence number (8) | body

where MAC = HMAC-SHA256(cluster key, challenge | sequence | body), the
sequence starts at 0 and goes up by one per frame, and the body is one JSON
object. The reader accepts only the next sequence number. So a frame made
without the key is refused; a frame captured from one connection and
replayed on another fails its MAC (other challenge); replayed or reordered
within one, it fails the sequence check.

Any of these is `BadFrame`: the stream can no longer be trusted and the
connection is dropped. A frame that authenticates but whose content is not a
valid message is `schema.BadMessage`: that message alone is dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import struct
from typing import Any

from harness.failover.schema import BadMessage, Context, validate

MAX_FRAME = 1 << 20
MAC_LEN = 32
SEQ_LEN = 8
CHALLENGE_LEN = 16


class BadFrame(ValueError):
    """A frame that is oversized, unauthenticated, replayed or out of order."""


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_LEN)


def _mac(key: bytes, challenge: bytes, seq: int, body: bytes) -> bytes:
    return hmac.new(key, challenge + struct.pack("!Q", seq) + body, hashlib.sha256).digest()


class Sender:
    """The writing end of one connection: numbers and signs each frame."""

    def __init__(self, key: bytes, challenge: bytes) -> None:
        self.key = key
        self.challenge = challenge
        self.seq = 0

    def encode(self, msg: dict[str, Any]) -> bytes:
        return self.seal(json.dumps(msg, separators=(",", ":")).encode())

    def seal(self, body: bytes) -> bytes:
        """The next frame carrying body, whatever it holds."""
        seq = self.seq
        self.seq += 1
        frame = _mac(self.key, self.challenge, seq, body) + struct.pack("!Q", seq) + body
        return struct.pack("!I", len(frame)) + frame


class Receiver:
    """The reading end of one connection: checks each frame's MAC and number."""

    def __init__(self, key: bytes, challenge: bytes) -> None:
        self.key = key
        self.challenge = challenge
        self.seq = 0

    def open(self, frame: bytes) -> bytes:
        """The body of the next frame (length prefix removed); else BadFrame."""
        if len(frame) < MAC_LEN + SEQ_LEN:
            raise BadFrame(f"frame of {len(frame)} bytes is too short for MAC and sequence")
        mac, (seq,), body = (frame[:MAC_LEN], struct.unpack("!Q", frame[MAC_LEN:MAC_LEN + SEQ_LEN]),
                             frame[MAC_LEN + SEQ_LEN:])
        if not hmac.compare_digest(mac, _mac(self.key, self.challenge, seq, body)):
            raise BadFrame("MAC mismatch (no or wrong cluster key, or a frame replayed "
                           "from another connection)")
        if seq != self.seq:
            raise BadFrame(f"sequence number {seq}, expected {self.seq} (replayed or reordered)")
        self.seq += 1
        return body

    async def read_body(self, reader: asyncio.StreamReader) -> bytes:
        """Next authenticated body; BadFrame, or IncompleteReadError at EOF."""
        (size,) = struct.unpack("!I", await reader.readexactly(4))
        if size > MAX_FRAME:
            raise BadFrame(f"frame of {size} bytes exceeds {MAX_FRAME}")
        return self.open(await reader.readexactly(size))


def decode(body: bytes, ctx: Context) -> dict[str, Any]:
    """An authenticated body as a valid message; else BadMessage."""
    try:
        msg = json.loads(body)
    except (ValueError, RecursionError) as e:  # JSON, UTF-8, or a huge int literal
        raise BadMessage("body", f"not JSON: {str(e)[:80]}") from None
    return validate(msg, ctx)
