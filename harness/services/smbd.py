"""A stand-in for smbd: what a clustered file server's clients talk to.

One process per node, in the node's network namespace. It listens on every
public address the node may ever hold (IP_FREEBIND: the bind succeeds while
the address is elsewhere, and the socket answers as soon as the address
arrives), answers each line a client sends with the same line, and - as
smbd does through ctdbd's client interface - registers every accepted
connection with its node's failover implementation
(`REGISTER... addtickle CLIENT:PORT SERVER:PORT`) and unregisters it on
close (`deltickle`). REGISTER is that implementation's own CLI on the node
(`ctdb`, `failoverctl --socket ...`); without --register nothing is
registered (a CTDB whose smbd never registered its clients).

    python -m harness.services.smbd --ip 203.0.113.201 --ip ... [--port 445]
        [--register JSON-ARGV]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import Sequence

IP_FREEBIND = 15
PORT = 445
MAX_LINE = 4096


class Standin:
    """The listeners, the open connections and their (un)registration."""

    def __init__(self, ips: Sequence[str], port: int, register: Sequence[str] | None) -> None:
        self.ips, self.port = list(ips), port
        self.register = list(register) if register else None
        self.tasks: set[asyncio.Task] = set()

    async def _ctl(self, *args: str) -> None:
        if self.register is None:
            return
        proc = await asyncio.create_subprocess_exec(
            *self.register, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode:
            print(f"smbd: {' '.join(args)} failed ({proc.returncode}): "
                  f"{err.decode(errors='replace').strip()}", file=sys.stderr, flush=True)

    def _later(self, *args: str) -> None:
        t = asyncio.get_running_loop().create_task(self._ctl(*args))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        client, server = f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}"
        self._later("addtickle", client, server)
        try:
            while line := await reader.readline():
                writer.write(line[:MAX_LINE])
                await writer.drain()
        except (ConnectionError, OSError, ValueError):
            pass  # reset, timed out, or a line past the stream's limit
        finally:
            self._later("deltickle", client, server)
            writer.close()

    def listener(self, ip: str) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        s.bind((ip, self.port))
        s.listen(64)
        return s

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        servers = [await asyncio.start_server(self.serve, sock=self.listener(ip))
                   for ip in self.ips]
        print(f"smbd: listening on {', '.join(self.ips)} port {self.port}", flush=True)
        await stop.wait()
        for srv in servers:
            srv.close()
        for t in list(self.tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 2)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="smbd-standin", description=__doc__.splitlines()[0])
    p.add_argument("--ip", action="append", required=True, help="public address to serve")
    p.add_argument("--port", type=int, default=PORT)
    p.add_argument("--register", default=None,
                   help="JSON list: the node's CLI, to which `addtickle|deltickle SRC DST` "
                        "is appended")
    args = p.parse_args(argv)
    register = None
    if args.register:
        try:
            register = json.loads(args.register)
            if not isinstance(register, list) or not all(isinstance(a, str) for a in register):
                raise ValueError
        except ValueError:
            print("smbd: --register must be a JSON list of strings, e.g. '[\"ctdb\"]'",
                  file=sys.stderr)
            return 2
    try:
        asyncio.run(Standin(args.ip, args.port, register).run())
    except OSError as e:
        print(f"smbd: cannot listen on port {args.port}: {e.strerror}; is another service "
              "bound there?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
