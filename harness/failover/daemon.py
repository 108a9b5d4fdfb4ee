"""failoverd: CTDB's public-IP failover, natively, one process per node.

What it does, in CTDB's terms:
- monitor: 10.interface's checks plus user event scripts, on CTDB's
  schedule (first run 2 s after startup, gaps doubling to MonitorInterval,
  5 s after a health change); a failure makes the node UNHEALTHY;
- membership: a TCP mesh on the private network with keepalives
  (KeepaliveInterval x KeepaliveLimit); EOF marks a node DISCONNECTED at once;
- leader ("recovery master"): whoever holds the cluster lock (taken through
  ctdbd's cluster mutex helpers: an fcntl lock on a file all nodes share, or
  ctdb_etcd_lock) broadcasts every second;
- takeover runs on the leader: collect every node's IPs, allocate (LCP2 by
  default), release on old holders, then take on new ones, then
  `ipreallocated` everywhere; every node checks each RecoverInterval that
  the kernel matches the assignment and asks for a run if not; requests are
  queued and served once per recovery-loop pass, as ctdb_recoverd does;
- event-driven mode (--event-mode, beyond CTDB): a netlink link event runs
  the monitor at once instead of waiting for the next scheduled run, and a
  takeover run starts as soon as it is requested.

Each job has its own module, as ctdbd's sources split them: log, state
(what the node knows), membership, leader, ipowner, monitor, takeover,
events and control. This module composes them: it builds the parts, routes
each message type to the part that owns it, and runs startup, the tasks,
and shutdown on SIGTERM/SIGINT or `failoverctl shutdown`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from harness.ctdb import ConfigError, NodeConfig, NodeFlags, load_node_config
from harness.failover.banning import Banning
from harness.failover.control import serve_control
from harness.failover.events import run_node_event
from harness.failover.ipowner import IpOwner
from harness.failover.leader import Leadership
from harness.failover.log import LEVELS, NOTICE, log, setup_logging
from harness.failover.membership import Membership, Message
from harness.failover.monitor import Monitor
from harness.failover.netops import KernelOps, refuse_host_namespace
from harness.failover.state import IPv4, NodeState
from harness.failover.supervisor import supervise
from harness.failover.takeover import Takeover
from harness.failover.tcppackets import Connection
from harness.failover.tickles import Tickles

Handler = Callable[[int, Message], Awaitable[Message | None]]
"""A message handler: (sender's pnn, message) -> the reply to send back, if any."""


class Daemon:
    """One node's failoverd: the parts, wired together."""

    def __init__(self, cfg: NodeConfig, event_mode: bool = False, key: bytes = b"",
                 tickles: bool = True) -> None:
        self.event_mode = event_mode
        self.kernel = KernelOps()
        self.state = NodeState(cfg)
        self.mesh = Membership(self.state, key, self)
        self.leadership = Leadership(self.state, self.mesh)
        self.tickles = Tickles(self.state, self.mesh, enabled=tickles)
        self.ips = IpOwner(self.state, self.kernel, self.tickles)
        self.monitor = Monitor(self.state, self.mesh, self.leadership, self.kernel)
        self.takeover = Takeover(self.state, self.mesh, self.leadership, self.ips,
                                 batched=not event_mode)
        if event_mode:
            self.mesh.connect_retry = 0.05
        self.banning = Banning(self.state, self.mesh, self.leadership, self.ips,
                               self.monitor.set_flag)
        self.takeover.banning = self.banning
        self.routes: dict[str, Handler] = {
            "keepalive": self.mesh.on_keepalive,
            "ips": self.mesh.on_reply,
            "done": self.mesh.on_reply,
            "leader": self.leadership.on_leader,
            "flags": self.monitor.on_flags,
            "get_ips": self.ips.on_get_ips,
            "release_ip": self.ips.on_release_ip,
            "take_ip": self.ips.on_take_ip,
            "takeover_request": self.takeover.on_request,
            "ipreallocated": self.takeover.on_ipreallocated,
            "tickles": self.tickles.on_tickles,
            "tickle": self.tickles.on_tickle,
            "ban": self.banning.on_ban,
        }

    # -- what the mesh reports (membership.MeshEvents) -------------------------------
    async def deliver(self, src: int, msg: Message) -> None:
        """Route a message to the part that owns its type; send back its reply."""
        handler = self.routes.get(msg["type"])
        if handler is None:
            return
        reply = await handler(src, msg)
        if reply is not None and not await self.mesh.send(src, reply):
            # asked on a connection the asker opened a moment before ours to
            # it is up: the reply waits for ours instead of being lost (the
            # asker would wait its whole timeout, 9 s in a takeover run)
            self.state.spawn(self.mesh.send_when_connected(src, reply), f"reply-{src}")

    async def connected(self, pnn: int) -> None:
        self.banning.reset()  # ctdbd forgives after the recovery a join causes
        await self.mesh.send(pnn, self.monitor.flags_msg())
        await self.leadership.greet(pnn)
        await self.tickles.greet(pnn)

    def disconnected(self, pnn: int) -> None:
        self.banning.reset()  # and after the one a departure causes
        self.leadership.peer_lost(pnn)

    # -- what the control socket drives (control.ControlledNode) ---------------------
    async def held(self) -> dict[IPv4, str]:
        return await self.ips.held()

    async def set_flag(self, flag: NodeFlags, on: bool) -> None:
        await self.monitor.set_flag(flag, on)

    async def set_ban(self, seconds: int) -> bool:
        return await self.banning.set_ban(seconds)

    def tunables_changed(self) -> None:
        self.monitor.retune()

    def monitor_timing(self) -> tuple[float, float]:
        return self.monitor.gap, self.monitor.due

    def counters(self) -> dict[str, int]:
        return {**{f"rejected {k}": v for k, v in self.mesh.rejected.items()},
                **{f"restarts {k}": v for k, v in self.state.crashes.items()},
                "tickles sent": self.tickles.sent, "tickles killed": self.tickles.killed}

    def tickle_list(self, ip: IPv4) -> list[Connection]:
        return self.tickles.of(ip)

    async def add_tickle(self, conn: Connection) -> None:
        await self.tickles.add(conn)

    async def del_tickle(self, conn: Connection) -> None:
        await self.tickles.remove(conn)

    # -- lifecycle -------------------------------------------------------------------
    async def startup(self) -> None:
        """CTDB's init: clear leftover public IPs, run `startup`, then RUNNING
        (the monitor skips its runs until then)."""
        st = self.state
        await self.ips.remove_leftovers()
        await run_node_event(st.cfg, "startup", [])
        st.running = True
        log.log(NOTICE, "Runstate RUNNING; node %d of %d, %s", st.pnn, len(st.cfg.nodes),
                "event-driven interface monitor" if self.event_mode
                else f"MonitorInterval {st.tun['MonitorInterval']} s")

    async def run(self, control_path: Path | None) -> int:
        st = self.state
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, st.stopping.set)
        await self.startup()
        if self.event_mode:
            self.monitor.start_watching()
        supervise(st, self.mesh.serve_peers, "serve")
        for peer in st.peers.values():
            supervise(st, functools.partial(self.mesh.connect_loop, peer), f"connect-{peer.pnn}")
        supervise(st, self.mesh.keepalive_loop, "keepalive")
        supervise(st, self.monitor.monitor_loop, "monitor")
        supervise(st, functools.partial(self.takeover.recovery_loop, eager=self.event_mode),
                  "recovery")
        supervise(st, self.takeover.takeover_loop, "takeover", self.takeover.crashed)
        if control_path is not None:
            supervise(st, functools.partial(serve_control, self, control_path), "control")
        await st.stopping.wait()
        log.log(NOTICE, "Shutting down: releasing public IPs")
        await self.ips.release_all()
        pending = [*st.tasks, *self.mesh.conn_tasks]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.mesh.close()
        self.monitor.stop_watching()
        self.banning.stop()
        self.leadership.lock.drop()
        self.kernel.close()
        log.log(NOTICE, "Shutdown complete")
        return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="failoverd", description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, type=Path,
                   help="node directory with nodes, public_addresses, ctdb.tunables, "
                        "script.options, events/")
    p.add_argument("--pnn", type=int, default=None,
                   help="this node's number (default: the nodes line whose address is local)")
    p.add_argument("--cluster-lock", type=Path, default=None,
                   help="as ctdb.conf's `cluster lock`: a file on storage all nodes share "
                        "(locked by ctdb_mutex_fcntl_helper), or !HELPER ARGS (a cluster "
                        "mutex helper such as ctdb_etcd_lock); its holder is the leader")
    p.add_argument("--no-leader-capability", action="store_true",
                   help="as ctdb.conf's `leader capability = false`: never take the "
                        "cluster lock, so never lead")
    p.add_argument("--socket", type=Path, default=None, help="control socket (mode 0600)")
    p.add_argument("--log", type=Path, default=None, help="log file (default: stderr)")
    p.add_argument("--log-level", default="NOTICE", choices=list(LEVELS))
    p.add_argument("--event-mode", action="store_true",
                   help="run the monitor at once on netlink link events (beyond CTDB)")
    p.add_argument("--no-tickles", action="store_true",
                   help="send no tickle ACKs on takeip and no resets on releaseip (clients "
                        "then wait out TCP retransmission backoff); lists are still kept")
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--key-file", type=Path, default=None,
                      help="cluster key (mode 0600, >= 16 bytes): every private-network "
                           "frame is signed with it (HMAC-SHA256 over a per-connection "
                           "challenge and sequence number)")
    auth.add_argument("--no-auth", action="store_true",
                      help="no cluster key: any host on the private network can forge "
                           "messages (only for experiments)")
    return p.parse_args(argv)


def read_key(path: Path) -> bytes:
    """The cluster key: private to its owner, and long enough to be a key."""
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            key = f.read().strip()
    except OSError as e:
        raise ConfigError(str(path), None, f"cannot read cluster key ({e.strerror})",
                          "check --key-file") from None
    if mode & 0o077:
        raise ConfigError(str(path), None, f"cluster key has mode {mode & 0o777:04o}, "
                          "readable by others", f"chmod 600 {path}")
    if len(key) < 16:
        raise ConfigError(str(path), None, "cluster key shorter than 16 bytes",
                          "use a longer random key")
    return key


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        refuse_host_namespace()
        cfg = load_node_config(args.dir, pnn=args.pnn, cluster_lock=args.cluster_lock,
                               leader_capable=not args.no_leader_capability)
        key = b"" if args.no_auth else read_key(args.key_file)
        daemon = Daemon(cfg, event_mode=args.event_mode, key=key,
                        tickles=not args.no_tickles)  # NodeState refuses IPv6
    except ConfigError as e:
        print(f"failoverd: {e}", file=sys.stderr)
        return 2
    setup_logging(args.log, args.log_level)
    return asyncio.run(daemon.run(args.socket))


if __name__ == "__main__":
    sys.exit(main())
