"""The monitor and this node's flags, as ctdb_monitor.c runs them.

The monitor runs 10.interface's checks plus the user event scripts on CTDB's
schedule (first run 2 s after startup, gaps doubling to MonitorInterval, 5 s
after a health change; see harness.failover.schedule); a failure makes the
node UNHEALTHY. In event-driven mode (beyond CTDB) a netlink link event runs
it at once instead of waiting for the next scheduled run.

A change of this node's flags is broadcast to every node and the leader is
asked for a takeover run; a change of a peer's flags makes the leader run
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from harness.ctdb import NodeFlags
from harness.failover.eventscripts import EventStatus, run_event
from harness.failover.ifcheck import IfaceCheck, check_interfaces
from harness.failover.leader import Leadership
from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.netops import KernelOps, LinkWatcher
from harness.failover.schedule import MonitorSchedule, MonitorStatus
from harness.failover.state import NodeState


class Monitor:
    """The monitor loop, its schedule, and the node flags it decides."""

    def __init__(self, state: NodeState, mesh: Membership, leadership: Leadership,
                 kernel: KernelOps) -> None:
        self.state = state
        self.mesh = mesh
        self.leadership = leadership
        self.kernel = kernel
        self.schedule = MonitorSchedule(state.tun["MonitorInterval"],
                                        state.tun["MonitorTimeoutCount"])
        self.wake = asyncio.Event()
        self.gap, self.due = 0.0, 0.0  # the gap in force; monotonic time of the next run
        self.loop: asyncio.AbstractEventLoop | None = None
        self.watcher: LinkWatcher | None = None

    def retune(self) -> None:
        """The tunables changed (setvar): the schedule follows them."""
        self.schedule.monitor_interval = self.state.tun["MonitorInterval"]
        self.schedule.timeout_count = self.state.tun["MonitorTimeoutCount"]

    # -- one monitor run -------------------------------------------------------------
    def interface_check(self) -> IfaceCheck:
        """Runs on the kernel worker thread."""
        cfg = self.state.cfg
        return check_interfaces(
            self.state.monitored, self.kernel,
            bring_up=cfg.options_bool("CTDB_IFACE_BRING_UP", True),
            partially_online_allowed=cfg.options_bool("CTDB_PARTIALLY_ONLINE_INTERFACES",
                                                      False))

    async def run_monitor(self) -> MonitorStatus:
        st = self.state
        chk = await self.kernel.call(self.interface_check)
        for line in chk.messages:
            log.error("10.interface: %s", line)
        for iface, up in chk.link.items():
            old = st.iface_link.get(iface)
            if old is not None and old != up:
                log.log(NOTICE, "iface[%s] has changed it's link status %s => %s", iface,
                        "up" if old else "down", "up" if up else "down")
            st.iface_link[iface] = up
        if chk.partially_online != st.partial:
            st.partial = chk.partially_online
            await self.mesh.broadcast(self.flags_msg())
        d = st.cfg.events_dir
        if d is not None and d.is_dir():
            res = await run_event(d, "monitor", [], st.tun["EventScriptTimeout"])
            for line in res.log_lines():
                log.log(NOTICE, "%s", line)
            if res.status is EventStatus.TIMEOUT:
                log.error("monitor event timed out (%s)", res.script)
                return MonitorStatus.TIMEOUT
            if not res.ok:
                return MonitorStatus.FAILED
        return MonitorStatus.OK if chk.ok else MonitorStatus.FAILED

    def skipped(self) -> bool:
        return not self.state.running or bool(self.state.flags & NodeFlags.INACTIVE)

    async def monitor_loop(self) -> None:
        delay = self.schedule.first_delay()
        if self.watcher is not None:
            # event mode: the first run at once (CTDB waits 2 s after start-up);
            # link events, not the schedule, decide when the next ones come
            delay = 0.0
        while True:
            self.gap, self.due = delay, time.monotonic() + delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), delay)
            self.wake.clear()
            if self.skipped():
                delay = self.schedule.on_skipped()
                continue
            status = await self.run_monitor()
            dec = self.schedule.on_result(status)
            for line in dec.messages:
                if not line.startswith("Node became"):
                    log.log(NOTICE, "%s", line)
            delay = dec.next_delay
            # one line per run: the run report draws monitor runs from it
            log.info("monitor event %s; next in %g s", status.name, delay)
            if dec.changed:
                await self.set_flag(NodeFlags.UNHEALTHY, not dec.healthy,
                                    "UNHEALTHY" if not dec.healthy else "HEALTHY")

    # -- event-driven mode -------------------------------------------------------------
    def start_watching(self) -> None:
        """Event mode: netlink link events wake the monitor loop."""
        self.loop = asyncio.get_running_loop()
        self.watcher = LinkWatcher(self.link_event)
        self.watcher.start()

    def stop_watching(self) -> None:
        if self.watcher:
            self.watcher.stop()

    def link_event(self, ifname: str) -> None:
        """From the watcher thread: a link we monitor (or a port of it) changed."""
        assert self.loop is not None  # set before the watcher starts
        self.loop.call_soon_threadsafe(self.wake.set)

    # -- node flags ------------------------------------------------------------------------
    def flags_msg(self) -> Message:
        st = self.state
        return {"type": "flags", "pnn": st.pnn, "flags": int(st.flags), "partial": st.partial}

    async def set_flag(self, flag: NodeFlags, on: bool, state: str | None = None) -> None:
        st = self.state
        new = (st.flags | flag) if on else (st.flags & ~flag)
        if new == st.flags:
            return
        st.flags = NodeFlags(new)
        await self.mesh.broadcast(self.flags_msg())
        leader = st.leader if st.leader is not None else -1
        if state:
            log.log(NOTICE, "Node became %s. Ask recovery master %d to perform ip reallocation",
                    state, leader)
        await self.leadership.request_takeover(f"flags now 0x{int(st.flags):x}")

    async def on_flags(self, src: int, msg: Message) -> Message | None:
        """`flags`: a peer announces its flags; a change needs a takeover run."""
        st = self.state
        if src != st.pnn and msg["pnn"] == src:
            peer = st.peers[src]
            old = peer.flags
            peer.flags, peer.partial = NodeFlags(msg["flags"]), msg["partial"]
            if old != peer.flags:
                log.log(NOTICE, "node %d flags changed 0x%x -> 0x%x", src, old, peer.flags)
                if st.is_leader():
                    st.takeover_needed.set()
        return None
