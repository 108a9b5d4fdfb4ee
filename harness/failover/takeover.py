"""Takeover runs and the recovery loop, as ctdb_recoverd and ctdb_takeover.c
run them.

The leader's takeover run: collect every connected node's IPs, allocate
(LCP2 by default; harness.failover.ipalloc), release on old holders, then
take on new ones, then `ipreallocated` everywhere with the new assignment.
Something sets `takeover_needed` (a flag change, a peer joining or leaving,
a node's request, a new leader); when the run follows depends on the mode:
- poll mode (as CTDB): requests are queued and served once per pass of the
  recovery loop, at the pass's end (ctdb_recoverd.c main_loop:
  `takeover_run_checks` -> process_ipreallocate_requests), so every request
  that arrived during a pass is answered by one run, a request waits for the
  pass boundary (0-RecoverInterval s), and a failed run is retried at the
  next pass (need_takeover_run);
- event mode (beyond CTDB): a run starts as soon as it is needed, a failed
  one is retried after a second.

The recovery loop starts a pass every RecoverInterval on every node (start
to start, as ctdb_recoverd's loop waits out what is left of the interval):
the election's step (harness.failover.leader), then a check that the kernel
holds exactly the IPs assigned here and that no link changed; if not, it
asks the leader for a run. The leader checks its own links and IPs too.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable

from harness.ctdb import NodeFlags
from harness.failover.banning import Banning
from harness.failover.events import run_node_event
from harness.failover.ipalloc import Algorithm, AllocRequest, IPAddress, NodeAlloc, allocate
from harness.failover.ipowner import IpOwner
from harness.failover.leader import Leadership
from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.state import IPv4, NodeState

MAX_INTERNAL_FAILURES = 3
"""Takeover runs in a row that may raise before the leader gives up the lock."""


class Deferred(Exception):
    """A takeover run put off for a moment: the leader's view is about to change."""


class Takeover:
    """The leader's takeover runs, and every node's recovery loop."""

    def __init__(self, state: NodeState, mesh: Membership, leadership: Leadership,
                 ips: IpOwner, batched: bool = True) -> None:
        self.state = state
        self.mesh = mesh
        self.leadership = leadership
        self.ips = ips
        self.batched = batched  # poll mode: runs at recovery-loop pass ends, as CTDB
        self.serve = asyncio.Event()  # poll mode: a pass end handed queued requests to a run
        self.running = False  # a takeover run is under way
        self.links_at_last_request: dict[str, bool] = {}
        self.internal_failures = 0  # takeover runs in a row that raised
        self.waited_for: dict[int, float] = {}  # pnn -> when a run was first put off for it
        self.banning: Banning | None = None  # set by the daemon; None: nobody is blamed

    # -- the recovery loop ---------------------------------------------------------------
    async def recovery_loop(self, eager: bool = False) -> None:
        """Every RecoverInterval: the election's step, then the IP check. eager
        (event mode): the first step at once, not one interval after start-up."""
        self.leadership.start()
        if not eager:
            await asyncio.sleep(float(self.state.tun["RecoverInterval"]))
        while True:
            started = time.monotonic()
            await self.recovery_pass(started)
            interval = float(self.state.tun["RecoverInterval"])
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def recovery_pass(self, now: float) -> None:
        """One pass of ctdb_recoverd's main_loop: on the leader the ban check
        first (ban_misbehaving_nodes), then the election step, the IP check,
        and at its end the queued takeover requests (serve_pending). The ban
        check comes before the pass serves the retry of a failed run, as in
        ctdbd: a node that reached the limit with the second failed run is
        banned before a third run starts (a ban check on its own timer let
        a third run fail first, about every other time)."""
        try:
            if self.banning is not None and self.state.is_leader():
                await self.banning.ban_misbehaving()
            if not await self.leadership.step(now):
                await self.verify_local_ips()  # the leader's own links and IPs too
        finally:
            self.serve_pending()

    def serve_pending(self) -> None:
        """Poll mode, at a pass's end: every request queued so far is answered by
        one run (process_ipreallocate_requests). Not while a run is under way:
        ctdbd's pass contains its run, so requests that came during it wait for
        the end of a pass after it."""
        st = self.state
        if self.batched and st.takeover_needed.is_set() and not self.running:
            st.takeover_needed.clear()
            self.serve.set()

    async def verify_local_ips(self) -> None:
        """Ask for a takeover run if the kernel or links disagree with the assignment."""
        st = self.state
        if st.leader is None or not st.running:
            return
        held = await self.ips.held()
        reasons = []
        for ip, owner in st.assignment.items():
            if owner == st.pnn and ip not in held:
                reasons.append(f"{ip} assigned here but missing")
            if owner != st.pnn and ip in held:
                reasons.append(f"{ip} present here but assigned to {owner}")
        if st.iface_link != self.links_at_last_request:
            reasons.append("interface link states changed")
            self.links_at_last_request = dict(st.iface_link)
        if reasons:
            await self.leadership.request_takeover("; ".join(reasons))

    # -- the leader's takeover run ---------------------------------------------------------
    def crashed(self, error: BaseException) -> None:
        """The takeover machinery cannot run here: hand the lock to another node."""
        self.internal_failures = 0
        if self.state.is_leader():
            self.leadership.resign(f"takeover runs fail here ({error!r})")

    async def next_run(self) -> None:
        """Wait until a run is due: in poll mode a pass end handed it the queued
        requests (serve_pending), in event mode any request. Requests arriving
        from here on are for the next run, as process_ipreallocate_requests
        takes only those already pending."""
        if self.batched:
            await self.serve.wait()
            self.serve.clear()
        else:
            await self.state.takeover_needed.wait()
            self.state.takeover_needed.clear()

    async def takeover_loop(self) -> None:
        st = self.state
        while True:
            await self.next_run()
            if not st.is_leader():
                continue
            self.running = True
            try:
                await self.one_run()
            finally:
                self.running = False

    async def one_run(self) -> None:
        """A takeover run with its deadline; a failed one is retried, and a
        leader whose runs keep raising hands the lock on."""
        st = self.state
        try:
            ok = await asyncio.wait_for(self.takeover_run(),
                                        3 * st.tun["TakeoverTimeout"])
        except TimeoutError:
            ok = False
        except Deferred as e:
            log.info("takeover run put off: %s", e)
            await self.retry_deferred()
            return
        except Exception as e:  # noqa: BLE001 - a run that cannot work must not hold the lock
            self.internal_failures += 1
            log.error("takeover run failed with an internal error (%d in a row): %r",
                      self.internal_failures, e, exc_info=e)
            if self.internal_failures >= MAX_INTERNAL_FAILURES:
                self.crashed(e)
                return
            ok = False
        else:
            self.internal_failures = 0
        if not ok:
            await self.retry_failed_run()

    async def retry_failed_run(self) -> None:
        """A failed run is run again: at the next pass in poll mode (ctdbd's
        need_takeover_run), a second later in event mode."""
        if self.batched:
            log.error("takeover run failed; retrying at the next recovery-loop pass")
        else:
            log.error("takeover run failed; retrying in 1 s")
            await asyncio.sleep(1)
        self.state.takeover_needed.set()

    async def retry_deferred(self) -> None:
        """A put-off run is asked again: at the next pass in poll mode, a moment
        later in event mode."""
        if not self.batched:
            await asyncio.sleep(0.2)
        self.state.takeover_needed.set()

    def check_view(self, info: dict[int, Message]) -> None:
        """Raise Deferred while a node that is not connected here was heard
        within the last keepalive interval or so by a node that answered: it
        is alive and about to connect here too (a healed partition reaches the
        leader one node at a time, each once it has spoken on our connection).

        A run on that partial view hands the node's IPs to others while it
        still holds them: an isolated leader keeps its fcntl lock, and healed,
        it gave node 0's IP to node 1 while node 0 held it (chaos seed 901,
        rounds 48 and 103). A hung or cut-off node is not waited for: its
        peers stopped hearing it when it stopped talking, two keepalives
        before anyone declares it gone. Each node is waited for once, at most
        the keepalive bound, so a lasting one-way loss delays runs only once.
        """
        st = self.state
        now = time.monotonic()
        bound = float(st.tun["KeepaliveInterval"] * st.tun["KeepaliveLimit"])
        unseen = {x for r in info.values() for x in r["hears"]
                  if x in st.peers and not st.peers[x].connected}
        self.waited_for = {x: self.waited_for.get(x, now) for x in unseen}
        waiting = sorted(x for x, since in self.waited_for.items() if now - since < bound)
        if waiting:
            seen_by = sorted(p for p, r in info.items() if set(waiting) & set(r["hears"]))
            raise Deferred(f"node(s) {','.join(map(str, waiting))} alive to node(s) "
                           f"{','.join(map(str, seen_by))} but not connected here; waiting "
                           f"up to {bound:.0f} s for them")

    async def takeover_run(self) -> bool:
        st = self.state
        t0 = time.monotonic()
        log.log(NOTICE, "Takeover run starting")  # as ctdbd's recovery daemon logs it
        frozen = self.mesh.stalled()
        if frozen is not None:
            # a leader that stood still (SIGSTOP) wakes to every peer gone at
            # once: allocating on that view handed it every IP while the
            # others still held theirs. Its view is stale, so it steps down
            # and a node that kept running leads the next run.
            self.leadership.resign(f"this node stood still for {frozen:.1f} s; "
                                   "its view of the cluster is stale")
            return True
        timeout = float(st.tun["TakeoverTimeout"])
        pnns = st.connected_pnns()
        replies = await asyncio.gather(
            *(self.mesh.request(p, {"type": "get_ips"}, timeout) for p in pnns))
        info = {p: r for p, r in zip(pnns, replies, strict=True) if r is not None}
        silent = [p for p in pnns if p not in info]
        if silent:
            # as ctdb_takeover_run: a connected node whose IPs cannot be read
            # fails the run. Taken as disconnected, its IPs would be handed to
            # others while it still holds them (a split brain between healthy
            # nodes whenever a reply is lost or late); it is retried instead,
            # until the node answers or the keepalive declares it gone.
            log.error("takeover run: no `ips` reply from connected node(s) %s; retrying",
                      ",".join(map(str, silent)))
            self.blame(silent)
            return False
        self.check_view(info)
        # in the allocator's address type: its answer comes back keyed by it
        current: dict[IPAddress, int] = {ip: -1 for ip in st.assignment}
        holders: dict[IPAddress, list[int]] = {ip: [] for ip in st.assignment}
        for p, r in info.items():
            for s in r["held"]:
                ip = IPv4(s)
                if ip in current:
                    holders[ip].append(p)
                    current[ip] = p  # as CTDB: the highest pnn's claim wins
        nodes = []
        for p in range(len(st.cfg.nodes)):
            got = info.get(p)
            flags = st.node_flags(p) | (NodeFlags.NONE if got else NodeFlags.DISCONNECTED)
            nodes.append(NodeAlloc(
                pnn=p, flags=NodeFlags(flags),
                known=frozenset(IPv4(s) for s in got["known"]) if got else frozenset(),
                available=frozenset(IPv4(s) for s in got["available"]) if got else frozenset(),
                running=bool(got and got["running"])))
        new = allocate(AllocRequest(
            nodes=tuple(nodes), current=current,
            algorithm=Algorithm.from_tunable(st.tun["IPAllocAlgorithm"]),
            no_ip_failback=bool(st.tun["NoIPFailback"]),
            no_ip_takeover=bool(st.tun["NoIPTakeover"])))
        # As ctdb_takeover_run: first every connected node releases every IP it
        # is not to hold - not only the holders the `ips` replies named, which
        # may be stale (a take still under way from an earlier, timed-out run) -
        # and only once all of them confirmed does any node take an IP. A
        # release that failed or timed out fails the run before any take, or
        # the new holder would add the address while the old one still has it.
        releases = [(p, ip) for ip in new for p in info if p != new[ip]]
        res = await asyncio.gather(
            *(self.mesh.request(p, {"type": "release_ip", "ip": str(ip)}, timeout)
              for p, ip in releases))
        failed = [f"{ip} on node {p}" for (p, ip), r in zip(releases, res, strict=True)
                  if r is None or not r["ok"]]
        if failed:
            log.error("takeover run: release failed (%s); no IP taken in this run",
                      ", ".join(failed))
            self.blame(p for (p, _), r in zip(releases, res, strict=True)
                       if r is None or not r["ok"])
            return False
        takes = [(p, ip) for ip, p in new.items() if p >= 0 and p not in holders[ip]]
        res = await asyncio.gather(
            *(self.mesh.request(p, {"type": "take_ip", "ip": str(ip)}, timeout)
              for p, ip in takes))
        ok = all(r is not None and r["ok"] for r in res)
        self.blame(p for (p, _), r in zip(takes, res, strict=True) if r is None or not r["ok"])
        assignment = {str(ip): p for ip, p in new.items()}
        await asyncio.gather(*(self.mesh.request(p, {"type": "ipreallocated",
                                                     "assignment": assignment}, timeout)
                               for p in st.connected_pnns()))
        log.info("takeover run finished in %.3f s (%d releases asked, %d taken)",
                 time.monotonic() - t0, len(releases), len(takes))
        if ok:
            log.log(NOTICE, "Takeover run completed successfully")
        return ok

    def blame(self, failed: Iterable[int]) -> None:
        """As ctdb_takeover_helper: one banning credit per node per failed step
        (an `ips` query, a release, a take); the node with the most is blamed."""
        credits = Counter(failed)
        if credits and self.banning is not None:
            self.banning.blame_run(credits)

    # -- messages ------------------------------------------------------------------------
    async def on_request(self, src: int, msg: Message) -> Message | None:
        """`takeover_request`: a node asks the leader for a run."""
        if self.state.is_leader():
            log.info("takeover run requested by node %d: %s", msg["pnn"], msg["reason"])
            self.state.takeover_needed.set()
        return None

    async def on_ipreallocated(self, src: int, msg: Message) -> Message | None:
        """`ipreallocated`: the run's new assignment; run the event and confirm."""
        st = self.state
        told = {IPv4(k): v for k, v in msg["assignment"].items()}
        # only this node's own public IPs: any other is not ours to hold or release
        st.assignment = {ip: told.get(ip, -1) for ip in st.publics}
        await run_node_event(self.state.cfg, "ipreallocated", [])
        return {"type": "done", "id": msg["id"], "ok": True}
