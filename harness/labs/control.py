"""The supervisor's socket protocol, both ends.

One request per connection on the lab's unix socket (mode 0600): the client
writes one JSON line {"op": ..., "args": {...}} and shuts down its writing
side; the supervisor answers one JSON line {"ok": ..., "data": {...},
"error": ..., "usage": ...} and closes. `usage` marks bad input (the command
exits 2), any other failure exits 1.

Only what needs the supervisor's state goes this way (faults: it holds the
catalogue and their undo state; stop). Shells and the implementation's CLI
run directly from what the supervisor published, so they work while it is
busy.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_REQUEST = 1 << 20


class LabUnreachable(ConnectionError):
    """Nobody answers on the lab's socket (the supervisor is gone or stuck)."""


@dataclass
class Request:
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    usage: bool = False  # the request itself was wrong (exit 2), not the lab


def call(path: Path, op: str, timeout: float = 120.0, **args: Any) -> Reply:
    """Send one request to the supervisor behind `path` and return its reply."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps(asdict(Request(op, args))).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise LabUnreachable(f"no supervisor listens on {path} ({e.strerror})") from None
    except TimeoutError:
        raise LabUnreachable(f"the supervisor on {path} did not answer within "
                             f"{timeout:g} s") from None
    try:
        return Reply(**json.loads(b"".join(chunks)))
    except (ValueError, TypeError):
        raise LabUnreachable(f"garbled or no reply on {path}") from None


class ControlServer:
    """Accepts requests on `path` and answers each with handle(request), one
    thread per connection so that a slow fault does not hold up `down`."""

    def __init__(self, path: Path, handle: Callable[[Request], Reply]) -> None:
        self.path = path
        self.handle = handle
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.thread: threading.Thread | None = None

    def start(self) -> ControlServer:
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._accept, name="control", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop accepting (shutdown wakes the blocked accept) and remove the socket."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.thread is not None:
            self.thread.join(5)
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), name="control-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while len(data) < MAX_REQUEST and (chunk := conn.recv(65536)):
                    data += chunk
                raw = json.loads(data)
                req = Request(str(raw["op"]), dict(raw.get("args") or {}))
            except (OSError, ValueError, TypeError, KeyError) as e:
                reply = Reply(False, error=f"bad request: {e}", usage=True)
            else:
                try:
                    reply = self.handle(req)
                except Exception as e:  # noqa: BLE001 - the client gets it, the lab goes on
                    reply = Reply(False, error=f"{type(e).__name__}: {e}")
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(asdict(reply)).encode() + b"\n")
