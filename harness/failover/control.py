"""The daemon's control socket: CTDB's CLI commands, answered in CTDB 4.17's
exact output (via harness.ctdb), so one parser reads both implementations.

Protocol: the client writes one JSON line {"argv": [...]}, the daemon answers
{"rc": N, "out": "...", "err": "..."} and closes. The socket is mode 0600.

It sees the daemon only through `ControlledNode` (the shared node state and
four actions), so this module needs none of the daemon's parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from harness import ctdb
from harness.ctdb import NodeFlags, TunableError
from harness.ctdb.tunables import UINT32_MAX
from harness.failover.log import LEVELS, log
from harness.failover.state import IPv4, NodeState
from harness.failover.tcppackets import Connection, Endpoint

USAGE = """Usage: failoverctl [-X] COMMAND [ARGS]
  status             node flags and leader, as `ctdb status`
  ip [all]           public IPs and their holders, as `ctdb ip`
  ifaces             public interfaces and link state, as `ctdb ifaces`
  pnn | leader       this node's number | the leader's
  setvar NAME VALUE | getvar NAME | listvars
  disable | enable   administratively disable this node (DISABLED)
  ban SECONDS | unban     ban this node (BANNED: no IPs, not leader) | lift the ban
  nodestatus         this node's status line; exit status: its flags
  stop | continue    stop this node (STOPPED: it holds no IPs)
  setdebug LEVEL | getdebug     ERROR WARNING NOTICE INFO DEBUG
  shutdown           release public IPs and exit
  gettickles IP [PORT]    the IP's registered client connections, as `ctdb gettickles`
  addtickle SRC DST | deltickle SRC DST    register | unregister a connection
                     (CLIENT-IP:PORT SERVER-IP:PORT), as smbd does
  monitorinfo        (not in CTDB) current monitor gap and seconds until the next run
  counters           (not in CTDB) messages dropped per peer and field, task restarts
"""


class ControlledNode(Protocol):
    """What the control socket reads and drives in a running daemon: its
    state, plus the few actions that belong to one of the daemon's parts."""

    state: NodeState

    async def held(self) -> dict[IPv4, str]:
        """Public IPs in this node's kernel -> interface."""

    async def set_flag(self, flag: NodeFlags, on: bool) -> None:
        """Set or clear one of this node's flags, as the monitor does."""

    async def set_ban(self, seconds: int) -> bool:
        """Ban this node for seconds (0: lift the ban); False if bans are disabled."""

    def tunables_changed(self) -> None:
        """setvar changed the tunables: let the parts that cache them follow."""

    def monitor_timing(self) -> tuple[float, float]:
        """(gap in force, monotonic time the next monitor run is due)."""

    def counters(self) -> dict[str, int]:
        """What the daemon refused or survived: "rejected <peer> <field>" and
        "restarts <task>" -> how many times."""

    def tickle_list(self, ip: IPv4) -> list[Connection]:
        """The registered client connections to public IP ip."""

    async def add_tickle(self, conn: Connection) -> None:
        """Register a connection (ValueError: not to a public IP of this node)."""

    async def del_tickle(self, conn: Connection) -> None:
        """Unregister a connection."""


class CommandError(Exception):
    """One line for stderr; exit status 1 (or 2 for usage errors)."""

    def __init__(self, msg: str, rc: int = 1, out: str = "") -> None:
        super().__init__(msg)
        self.rc = rc
        self.out = out  # what stdout still gets (nodestatus: the line, rc its flags)


def cluster_status(st: NodeState) -> ctdb.ClusterStatus:
    nodes = []
    for pnn, addr in enumerate(st.cfg.nodes):
        if pnn in st.cfg.deleted:
            continue
        flags = st.node_flags(pnn)
        nodes.append(ctdb.NodeStatus(
            pnn=pnn, address=addr, flags=flags,
            partially_online=st.node_partial(pnn) and flags == NodeFlags.NONE,
            this_node=pnn == st.pnn))
    active = tuple(n.pnn for n in nodes if not n.flags & NodeFlags.INACTIVE)
    generation, normal = st.generation, True
    if st.flags & NodeFlags.BANNED:
        # as ctdbd's ctdb_local_node_got_banned: generation INVALID, recovery
        # mode active, and the vnn map left as it was, this node still in it
        generation, normal = ctdb.INVALID_GENERATION, False
        active = tuple(sorted({*active, st.pnn}))
    return ctdb.ClusterStatus(
        nodes=tuple(nodes), generation=generation, recovery_mode_normal=normal,
        leader=st.leader, vnn_map=active, deleted=tuple(sorted(st.cfg.deleted)))


async def ifaces(node: ControlledNode) -> list[ctdb.IfaceInfo]:
    st = node.state
    held = await node.held()
    # 4.17's daemon puts each newly seen interface at the front of its list
    return [ctdb.IfaceInfo(name, st.iface_link.get(name, False),
                              sum(1 for dev in held.values() if dev == name))
            for name in reversed(st.monitored)]


async def dispatch(node: ControlledNode, argv: list[str]) -> str:
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
    st = node.state
    handlers: dict[str, Callable[[], Awaitable[str]]] = {
        "help": lambda: _const(USAGE),
        "status": lambda: _status(st, x),
        "ip": lambda: _ip(st, x, args),
        "ifaces": lambda: _ifaces(node, x),
        "pnn": lambda: _const(f"{st.pnn}\n"),
        "leader": lambda: _leader(st),
        "recmaster": lambda: _leader(st),
        "setvar": lambda: _setvar(node, args),
        "getvar": lambda: _getvar(st, args),
        "listvars": lambda: _const(st.tun.listvars()),
        "disable": lambda: _flag(node, NodeFlags.PERMANENTLY_DISABLED, True),
        "enable": lambda: _flag(node, NodeFlags.PERMANENTLY_DISABLED, False),
        "ban": lambda: _ban(node, args),
        "unban": lambda: _unban(node, args),
        "nodestatus": lambda: _nodestatus(st, x, args),
        "stop": lambda: _flag(node, NodeFlags.STOPPED, True),
        "continue": lambda: _flag(node, NodeFlags.STOPPED, False),
        "setdebug": lambda: _setdebug(args),
        "getdebug": lambda: _const(logging.getLevelName(logging.getLogger().level) + "\n"),
        "shutdown": lambda: _shutdown(st),
        "monitorinfo": lambda: _monitorinfo(node),
        "gettickles": lambda: _gettickles(node, x, args),
        "addtickle": lambda: _tickle(node, "addtickle", args),
        "deltickle": lambda: _tickle(node, "deltickle", args),
        "counters": lambda: _const("".join(f"{k} {v}\n"
                                           for k, v in sorted(node.counters().items()))),
    }
    if cmd not in handlers:
        raise CommandError(f"unknown command {cmd!r}; run `failoverctl help` for the list", 2)
    return await handlers[cmd]()


async def _const(text: str) -> str:
    return text


async def _status(st: NodeState, x: bool) -> str:
    status = cluster_status(st)
    return ctdb.format_status_x(status) if x else ctdb.format_status(status)


async def _ip(st: NodeState, x: bool, args: list[str]) -> str:
    if args not in ([], ["all"]):
        raise CommandError(f"ip: unexpected arguments {args}; use `ip` or `ip all`", 2)
    mapping = dict(st.assignment)
    return ctdb.format_ip_x(mapping) if x else ctdb.format_ip(
        None if args else st.pnn, mapping)


async def _ifaces(node: ControlledNode, x: bool) -> str:
    infos = await ifaces(node)
    pnn = node.state.pnn
    return ctdb.format_ifaces_x(infos, pnn=pnn) if x else ctdb.format_ifaces(pnn, infos)


async def _leader(st: NodeState) -> str:
    if st.leader is None:
        raise CommandError("no leader elected yet")
    return f"{st.leader}\n"


async def _setvar(node: ControlledNode, args: list[str]) -> str:
    if len(args) != 2:
        raise CommandError("setvar: usage: setvar NAME VALUE", 2)
    try:
        node.state.tun.setvar(args[0], args[1])
    except TunableError as e:
        raise CommandError(str(e)) from None
    node.tunables_changed()
    return ""


async def _getvar(st: NodeState, args: list[str]) -> str:
    if len(args) != 1:
        raise CommandError("getvar: usage: getvar NAME", 2)
    try:
        return st.tun.getvar(args[0])
    except TunableError as e:
        raise CommandError(str(e)) from None


async def _flag(node: ControlledNode, flag: NodeFlags, on: bool) -> str:
    await node.set_flag(flag, on)
    return ""


async def _ban(node: ControlledNode, args: list[str]) -> str:
    """`ctdb ban SECONDS` on this node, with 4.17's messages and exit statuses."""
    if len(args) != 1:
        raise CommandError("ban: usage: ban SECONDS (a whole number of seconds)", 2)
    try:
        seconds = int(args[0], 0)
    except ValueError:
        raise CommandError(f"ban: {args[0]!r} is not a number of seconds; "
                           "give a whole number, e.g. ban 300", 2) from None
    if not 0 <= seconds <= UINT32_MAX:
        raise CommandError(f"ban: {seconds} is outside 0..{UINT32_MAX}", 2)
    st = node.state
    if st.flags & NodeFlags.BANNED:
        raise CommandError(f"Node {st.pnn} is already banned", 0)
    if seconds == 0:
        raise CommandError("Ban time cannot be zero", 22)  # EINVAL, as ctdb
    if not await node.set_ban(seconds):
        raise CommandError(f"Failed to ban node {st.pnn} (EnableBans is 0)")
    return ""


async def _unban(node: ControlledNode, args: list[str]) -> str:
    if args:
        raise CommandError("unban: usage: unban (no arguments)", 2)
    st = node.state
    if not st.flags & NodeFlags.BANNED:
        raise CommandError(f"Node {st.pnn} is not banned", 0)
    await node.set_ban(0)
    return ""


async def _nodestatus(st: NodeState, x: bool, args: list[str]) -> str:
    """`ctdb nodestatus` for this node; as ctdb, the exit status is its flags."""
    if args:
        raise CommandError("nodestatus: only this node's status is supported here "
                           "(no arguments)", 2)
    this = [n for n in cluster_status(st).nodes if n.this_node]
    out = ctdb.format_status_x(this) if x else ctdb.format_nodestatus(this)
    flags = int(this[0].flags) if this else 0
    if flags:
        raise CommandError("", flags & 0xFF, out)
    return out


async def _setdebug(args: list[str]) -> str:
    if len(args) != 1 or args[0].upper() not in LEVELS:
        raise CommandError(f"setdebug: give one of {' '.join(LEVELS)}", 2)
    logging.getLogger().setLevel(LEVELS[args[0].upper()])
    return ""


async def _monitorinfo(node: ControlledNode) -> str:
    """Not in CTDB: the gap in force and when the next monitor run is due."""
    gap, due = node.monitor_timing()
    return f"gap:{gap:g} due_in:{max(0.0, due - time.monotonic()):.3f}\n"


async def _gettickles(node: ControlledNode, x: bool, args: list[str]) -> str:
    """4.17's `ctdb gettickles IP [PORT]` output (its -X header has CTDB's typo)."""
    if len(args) not in (1, 2) or (len(args) == 2 and not args[1].isdigit()):
        raise CommandError("gettickles: usage: gettickles IP [PORT]", 2)
    try:
        ip = IPv4(args[0])
    except ValueError:
        raise CommandError(f"Invalid IP address {args[0]}") from None
    port = int(args[1]) if len(args) == 2 else 0
    conns = [c for c in node.tickle_list(ip) if not port or c.dst.port == port]
    if x:
        return "|Source IP|Port|Destiation IP|Port|\n" + "".join(
            f"|{c.src.ip}|{c.src.port}|{c.dst.ip}|{c.dst.port}|\n" for c in conns)
    return (f"Connections for IP: {ip}\nNum connections: {len(conns)}\n"
            + "".join(f"SRC: {c.src}   DST: {c.dst}\n" for c in conns))


async def _tickle(node: ControlledNode, cmd: str, args: list[str]) -> str:
    if len(args) != 2:
        raise CommandError(f"{cmd}: usage: {cmd} SRC-IP:PORT DST-IP:PORT", 2)
    try:
        conn = Connection(Endpoint.parse(args[0]), Endpoint.parse(args[1]))
    except ValueError as e:
        raise CommandError(f"Invalid IP address: {e}") from None
    try:
        await (node.add_tickle(conn) if cmd == "addtickle" else node.del_tickle(conn))
    except ValueError as e:
        what = "register" if cmd == "addtickle" else "unregister"
        raise CommandError(f"Failed to {what} connection: {e}") from None
    return ""


async def _shutdown(st: NodeState) -> str:
    st.stopping.set()
    return ""


class BadRequest(ValueError):
    """A control request that is not {"argv": [strings]}; the message says which part."""


MAX_ARGS, MAX_ARG_LEN = 64, 4096


def parse_request(line: bytes) -> list[str]:
    """The argv of one control request line, each field checked; else BadRequest."""
    try:
        req = json.loads(line)
    except (ValueError, RecursionError):
        raise BadRequest("not a JSON line") from None
    if not isinstance(req, dict) or set(req) != {"argv"}:
        raise BadRequest('not an object with exactly the field "argv"')
    argv = req["argv"]
    if not isinstance(argv, list) or len(argv) > MAX_ARGS:
        raise BadRequest(f"argv is not a list of at most {MAX_ARGS} strings")
    for i, a in enumerate(argv):
        if not isinstance(a, str) or len(a) > MAX_ARG_LEN or "\0" in a:
            raise BadRequest(f"argv[{i}] is not a string of at most {MAX_ARG_LEN} chars "
                             "without NUL")
    return argv


async def handle_client(node: ControlledNode, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    try:
        try:
            argv = parse_request(await asyncio.wait_for(reader.readline(), 10))
        except BadRequest as e:
            reply = {"rc": 2, "out": "", "err": f"failoverd: malformed control request: {e}\n"}
        else:
            try:
                reply = {"rc": 0, "out": await dispatch(node, list(argv)), "err": ""}
            except CommandError as e:
                reply = {"rc": e.rc, "out": e.out, "err": f"{e}\n" if str(e) else ""}
            except Exception as e:  # noqa: BLE001 - one bad command must not end the server
                log.error("internal error in control command %s: %r", argv[:1], e, exc_info=e)
                reply = {"rc": 1, "out": "", "err": f"failoverd: internal error: {e!r}\n"}
        writer.write(json.dumps(reply).encode())
        await writer.drain()
    except (TimeoutError, ConnectionError, OSError, ValueError, asyncio.LimitOverrunError):
        pass  # ValueError: a line beyond the stream's limit (64 KiB)
    finally:
        writer.close()


async def serve_control(node: ControlledNode, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(lambda r, w: handle_client(node, r, w), str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    try:
        async with server:
            await node.state.stopping.wait()
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
