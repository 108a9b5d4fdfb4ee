"""Public IPs in this node's kernel, as ctdb_takeover.c's node-local half
handles them: which are held and which could be, taking one (on the
link-up interface holding fewest, then takeip and gratuitous ARP) and
releasing one (releaseip, then removing it).

The leader's takeover run drives these through `get_ips`, `release_ip` and
`take_ip` requests, answered here; the answers are the replies to send.
"""

from __future__ import annotations

import asyncio

from harness.failover.events import run_node_event
from harness.failover.log import NOTICE, log
from harness.failover.membership import Message
from harness.failover.netops import KernelOps
from harness.failover.state import IPv4, NodeState
from harness.failover.tickles import Tickles

GARP_ROUNDS, GARP_GAP = 3, 1.1
INTERFACE_SCRIPT = "10.interface"
"""The place of ctdbd's script that adds and removes public addresses."""


def before_interface(name: str) -> bool:
    """An event script that runs before 10.interface in ctdbd's order."""
    return name < INTERFACE_SCRIPT


class IpOwner:
    """This node's public IPs in the kernel."""

    def __init__(self, state: NodeState, kernel: KernelOps, tickles: Tickles | None = None
                 ) -> None:
        self.state = state
        self.kernel = kernel
        self.tickles = tickles
        # takes and releases one at a time: a release that arrives while a take
        # (of an earlier, timed-out run) is still adding the address must see it
        self.lock = asyncio.Lock()

    async def held(self) -> dict[IPv4, str]:
        """Public IPs present in this node's kernel -> interface."""
        addrs = await self.kernel.call(self.kernel.addresses)
        return {ip: dev for ip, dev in addrs.items() if ip in self.state.assignment}

    def available(self) -> list[IPv4]:
        """Known IPs with at least one link-up interface (as the monitor recorded)."""
        st = self.state
        return [ip for ip, pa in st.publics.items()
                if any(st.iface_link.get(i, False) for i in pa.ifaces)]

    async def ips_msg(self, rid: int) -> Message:
        st = self.state
        return {"type": "ips", "id": rid,
                "known": [str(pa.address.ip) for pa in st.cfg.public_addresses],
                "available": [str(ip) for ip in self.available()],
                "held": [str(ip) for ip in await self.held()],
                "running": st.running,
                "hears": st.hears()}

    async def choose_iface(self, ip: IPv4) -> str | None:
        held = await self.held()
        ups = [i for i in self.state.public(ip).ifaces if self.state.iface_link.get(i, False)]
        if not ups:
            return None
        return min(ups, key=lambda i: sum(1 for dev in held.values() if dev == i))

    async def take_ip(self, ip: IPv4) -> bool:
        async with self.lock:
            return await self._take_ip(ip)

    async def _take_ip(self, ip: IPv4) -> bool:
        held = await self.held()
        if ip in held:
            return True
        iface = await self.choose_iface(ip)
        if iface is None:
            log.error("cannot take %s: no link-up interface among %s", ip,
                      ",".join(self.state.public(ip).ifaces))
            return False
        addr = self.state.public(ip).address
        log.log(NOTICE, "Takeover of IP %s on interface %s", addr.with_prefixlen, iface)
        args = [iface, str(ip), str(addr.network.prefixlen)]
        # ctdbd's 10.interface adds the address in the middle of the takeip
        # event: scripts named before it run first, and if one fails the IP is
        # never added (nor answered for); the rest run with the address there
        if not await run_node_event(self.state.cfg, "takeip", args, only=before_interface):
            log.error("Failed to takeover IP %s on interface %s", ip, iface)
            return False
        try:
            await self.kernel.call(self.kernel.add_address, iface, addr)
        except Exception as e:  # noqa: BLE001 - the kernel's refusal is logged and reported
            log.error("failed to add %s on %s: %s", addr, iface, e)
            return False
        res = await run_node_event(self.state.cfg, "takeip", args,
                                   only=lambda name: not before_interface(name))
        if not res:  # as ctdbd: the address stays, the take fails, no announcement
            log.error("Failed to takeover IP %s on interface %s", ip, iface)
            return False
        self.state.spawn(self.garp(iface, ip), f"garp-{ip}")
        return True

    async def garp(self, iface: str, ip: IPv4) -> None:
        """Gratuitous ARP request + unsolicited reply, 3 rounds 1.1 s apart;
        each round also tickles the IP's known clients, as ctdbd's
        ctdb_control_send_arp does (the list as it was at the takeover)."""
        conns = self.tickles.of(ip) if self.tickles else []
        for k in range(GARP_ROUNDS):
            # the first round at once (the address was added a moment ago): each
            # kernel call is a hop to the worker thread, and the clients wait
            if k:
                await asyncio.sleep(GARP_GAP)
                if ip not in await self.held():
                    return
            try:
                if not await self.kernel.call(self.kernel.announce, iface, ip):
                    return
                if self.tickles:
                    await self.kernel.call(self.tickles.tickle, ip, conns)
            except OSError as e:
                log.warning("gratuitous ARP or tickles for %s on %s failed: %s", ip, iface, e)
                return
        if self.tickles:
            await self.tickles.taken_over(ip, conns)

    async def release_ip(self, ip: IPv4) -> bool:
        async with self.lock:
            return await self._release_ip(ip)

    async def _release_ip(self, ip: IPv4) -> bool:
        held = await self.held()
        if ip not in held:
            return True
        iface = held[ip]
        addr = self.state.public(ip).address
        log.log(NOTICE, "Release of IP %s on interface %s  node:%d", addr.with_prefixlen, iface,
                self.state.assignment.get(ip, -1))
        args = [iface, str(ip), str(addr.network.prefixlen)]
        # as takeip: scripts before 10.interface's place run with the address
        # still there; one failing keeps it (the leader blames this node)
        if not await run_node_event(self.state.cfg, "releaseip", args, only=before_interface):
            log.error("IP address %s not released", ip)
            return False
        if self.tickles:
            await self.tickles.releasing(ip, link_up=self.state.iface_link.get(iface, True))
        try:
            await self.kernel.call(self.kernel.del_address, iface, addr)
        except Exception as e:  # noqa: BLE001
            log.error("failed to delete %s from %s: %s", addr, iface, e)
            return False
        return await run_node_event(self.state.cfg, "releaseip", args,
                                    only=lambda name: not before_interface(name))

    async def release_all(self) -> None:
        for ip in list(await self.held()):
            await self.release_ip(ip)

    async def remove_leftovers(self) -> None:
        """CTDB's init: no public IP may survive from an earlier run."""
        held = await self.held()
        for ip, dev in held.items():
            log.log(NOTICE, "Removing public address %s from %s at startup", ip, dev)
            await self.kernel.call(self.kernel.del_address, dev, self.state.public(ip).address)

    # -- requests from the leader's takeover run ------------------------------------
    async def on_get_ips(self, src: int, msg: Message) -> Message | None:
        return await self.ips_msg(msg["id"])

    async def on_release_ip(self, src: int, msg: Message) -> Message | None:
        ok = await self.release_ip(IPv4(msg["ip"]))
        return {"type": "done", "id": msg["id"], "ok": ok}

    async def on_take_ip(self, src: int, msg: Message) -> Message | None:
        ok = await self.take_ip(IPv4(msg["ip"]))
        return {"type": "done", "id": msg["id"], "ok": ok}
