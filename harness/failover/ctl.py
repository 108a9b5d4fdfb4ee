"""failoverctl: the native daemon's CLI, speaking CTDB's commands and output.

A thin client: it sends its argv to the node's control socket and prints
what the daemon answers, so the daemon holds the one implementation of each
command (see harness.failover.control). The harness calls `call()` directly.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

ENV_SOCKET = "FAILOVER_SOCKET"


def call(path: str | Path, argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str, str]:
    """Run one command on the daemon behind `path`: (exit status, stdout, stderr)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"argv": list(argv)}).encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks) or b"{}")
    return int(reply.get("rc", 1)), reply.get("out", ""), reply.get("err", "")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="failoverctl", add_help=False,
        description="CTDB-style control of one failoverd node (status, ip, ifaces, setvar, ...)")
    p.add_argument("--socket", default=os.environ.get(ENV_SOCKET),
                   help=f"the node's control socket (or ${ENV_SOCKET})")
    p.add_argument("--timeout", type=float, default=10.0)
    ns, rest = p.parse_known_args(argv)
    if not ns.socket:
        print(f"failoverctl: no control socket; pass --socket PATH or set {ENV_SOCKET}",
              file=sys.stderr)
        return 2
    try:
        rc, out, err = call(ns.socket, rest or ["help"], ns.timeout)
    except FileNotFoundError:
        print(f"failoverctl: {ns.socket}: no such socket; is failoverd running on this node?",
              file=sys.stderr)
        return 1
    except (ConnectionRefusedError, TimeoutError, OSError) as e:
        print(f"failoverctl: {ns.socket}: cannot talk to failoverd ({e}); is it running?",
              file=sys.stderr)
        return 1
    except ValueError:
        print(f"failoverctl: {ns.socket}: garbled reply from failoverd", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main())
