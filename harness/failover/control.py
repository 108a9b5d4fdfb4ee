"""The daemon's control socket: CTDB's CLI commands, answered in CTDB 4.17's
exact output (via harness.ctdb.output), so one parser reads both implementations.

Protocol: the client writes one JSON line {"argv": [...]}, the daemon answers
{"rc": N, "out": "...", "err": "..."} and closes. The socket is mode 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.ctdb import output as ctdbout
from harness.ctdb.flags import NodeFlags
from harness.ctdb.tunables import TunableError

if TYPE_CHECKING:
    from harness.failover.daemon import Daemon

USAGE = """Usage: failoverctl [-X] COMMAND [ARGS]
  status             node flags and leader, as `ctdb status`
  ip [all]           public IPs and their holders, as `ctdb ip`
  ifaces             public interfaces and link state, as `ctdb ifaces`
  pnn | leader       this node's number | the leader's
  setvar NAME VALUE | getvar NAME | listvars
  disable | enable   administratively disable this node (DISABLED)
  stop | continue    stop this node (STOPPED: it holds no IPs)
  setdebug LEVEL | getdebug     ERROR WARNING NOTICE INFO DEBUG
  shutdown           release public IPs and exit
  monitorinfo        (not in CTDB) current monitor gap and seconds until the next run
"""


class CommandError(Exception):
    """One line for stderr; exit status 1 (or 2 for usage errors)."""

    def __init__(self, msg: str, rc: int = 1) -> None:
        super().__init__(msg)
        self.rc = rc


def cluster_status(d: Daemon) -> ctdbout.ClusterStatus:
    nodes = []
    for pnn, addr in enumerate(d.cfg.nodes):
        if pnn in d.cfg.deleted:
            continue
        flags = d.node_flags(pnn)
        nodes.append(ctdbout.NodeStatus(
            pnn=pnn, address=addr, flags=flags,
            partially_online=d.node_partial(pnn) and flags == NodeFlags.NONE,
            this_node=pnn == d.pnn))
    active = tuple(n.pnn for n in nodes if not n.flags & NodeFlags.INACTIVE)
    return ctdbout.ClusterStatus(
        nodes=tuple(nodes), generation=d.generation, recovery_mode_normal=True,
        leader=d.leader, vnn_map=active, deleted=tuple(sorted(d.cfg.deleted)))


async def ifaces(d: Daemon) -> list[ctdbout.IfaceInfo]:
    held = await d.held()
    # 4.17's daemon puts each newly seen interface at the front of its list
    return [ctdbout.IfaceInfo(name, d.iface_link.get(name, False),
                              sum(1 for dev in held.values() if dev == name))
            for name in reversed(d.monitored)]


async def dispatch(d: Daemon, argv: list[str]) -> str:
    x = False
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt == "-X":
            x = True
        elif opt in ("-h", "--help"):
            return USAGE
        else:
            raise CommandError(f"unknown option {opt!r}; only -X is supported here", 2)
    if not argv:
        return USAGE
    cmd, args = argv[0], argv[1:]
    handlers: dict[str, Callable[[], Awaitable[str]]] = {
        "help": lambda: _const(USAGE),
        "status": lambda: _status(d, x),
        "ip": lambda: _ip(d, x, args),
        "ifaces": lambda: _ifaces(d, x),
        "pnn": lambda: _const(f"{d.pnn}\n"),
        "leader": lambda: _leader(d),
        "recmaster": lambda: _leader(d),
        "setvar": lambda: _setvar(d, args),
        "getvar": lambda: _getvar(d, args),
        "listvars": lambda: _const(d.tun.listvars()),
        "disable": lambda: _flag(d, NodeFlags.PERMANENTLY_DISABLED, True),
        "enable": lambda: _flag(d, NodeFlags.PERMANENTLY_DISABLED, False),
        "stop": lambda: _flag(d, NodeFlags.STOPPED, True),
        "continue": lambda: _flag(d, NodeFlags.STOPPED, False),
        "setdebug": lambda: _setdebug(args),
        "getdebug": lambda: _const(logging.getLevelName(logging.getLogger().level) + "\n"),
        "shutdown": lambda: _shutdown(d),
        "monitorinfo": lambda: _monitorinfo(d),
    }
    if cmd not in handlers:
        raise CommandError(f"unknown command {cmd!r}; run `failoverctl help` for the list", 2)
    return await handlers[cmd]()


async def _const(text: str) -> str:
    return text


async def _status(d: Daemon, x: bool) -> str:
    st = cluster_status(d)
    return ctdbout.format_status_x(st) if x else ctdbout.format_status(st)


async def _ip(d: Daemon, x: bool, args: list[str]) -> str:
    if args not in ([], ["all"]):
        raise CommandError(f"ip: unexpected arguments {args}; use `ip` or `ip all`", 2)
    mapping = dict(d.assignment)
    return ctdbout.format_ip_x(mapping) if x else ctdbout.format_ip(
        None if args else d.pnn, mapping)


async def _ifaces(d: Daemon, x: bool) -> str:
    infos = await ifaces(d)
    return ctdbout.format_ifaces_x(infos, pnn=d.pnn) if x else ctdbout.format_ifaces(d.pnn, infos)


async def _leader(d: Daemon) -> str:
    if d.leader is None:
        raise CommandError("no leader elected yet")
    return f"{d.leader}\n"


async def _setvar(d: Daemon, args: list[str]) -> str:
    if len(args) != 2:
        raise CommandError("setvar: usage: setvar NAME VALUE", 2)
    try:
        d.tun.setvar(args[0], args[1])
    except TunableError as e:
        raise CommandError(str(e)) from None
    d.schedule.monitor_interval = d.tun["MonitorInterval"]
    d.schedule.timeout_count = d.tun["MonitorTimeoutCount"]
    return ""


async def _getvar(d: Daemon, args: list[str]) -> str:
    if len(args) != 1:
        raise CommandError("getvar: usage: getvar NAME", 2)
    try:
        return d.tun.getvar(args[0])
    except TunableError as e:
        raise CommandError(str(e)) from None


async def _flag(d: Daemon, flag: NodeFlags, on: bool) -> str:
    await d.set_flag(flag, on)
    return ""


async def _setdebug(args: list[str]) -> str:
    from harness.failover.daemon import LEVELS
    if len(args) != 1 or args[0].upper() not in LEVELS:
        raise CommandError(f"setdebug: give one of {' '.join(LEVELS)}", 2)
    logging.getLogger().setLevel(LEVELS[args[0].upper()])
    return ""


async def _monitorinfo(d: Daemon) -> str:
    """Not in CTDB: the gap in force and when the next monitor run is due."""
    import time
    return f"gap:{d.monitor_gap:g} due_in:{max(0.0, d.monitor_due - time.monotonic()):.3f}\n"


async def _shutdown(d: Daemon) -> str:
    d.stopping.set()
    return ""


async def handle_client(d: Daemon, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
        try:
            req = json.loads(line)
            argv = req["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            reply = {"rc": 2, "out": "", "err": "failoverd: malformed control request\n"}
        else:
            try:
                reply = {"rc": 0, "out": await dispatch(d, list(argv)), "err": ""}
            except CommandError as e:
                reply = {"rc": e.rc, "out": "", "err": f"{e}\n"}
        writer.write(json.dumps(reply).encode())
        await writer.drain()
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve_control(d: Daemon, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(lambda r, w: handle_client(d, r, w), str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    try:
        async with server:
            await d.stopping.wait()
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
