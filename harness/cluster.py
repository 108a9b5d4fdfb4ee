"""Handles on a built cluster: nodes, clients, the switch, and the processes
the run started. A test talks to the kernel through these and harness.faults.

Commands run under `ip netns exec`, which gives them the namespace's own
/sys (a plain setns() would see the host's /sys/class/net). Link state is
read through netlink from a thread inside the namespace. Links are changed
only by faults (harness.faults: AdminDown, PullCable, ...), so every change
has a timeline mark and an undo.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import builder, lockservice, netns
from harness.netns import NsRoute
from harness.rtnl import LinkView, link_view
from harness.runs import ProcRecord, RunState, alive, new_run_id
from harness.topology import Network, Topology
from harness.wait import time_scale

IP = shutil.which("ip") or "/usr/sbin/ip"


@dataclass(frozen=True)
class LinkState:
    """One interface of a namespace, as a test asks about it (name, state, MAC)."""

    name: str
    index: int
    admin_up: bool
    carrier: bool
    operstate: str
    kind: str | None
    master: int | None
    mac: str | None

    @classmethod
    def of(cls, view: LinkView) -> LinkState:
        """From the shared rtnetlink view, so tests and recorders read links alike."""
        return cls(name=view.ifname, index=view.index, admin_up=view.admin,
                   carrier=view.carrier, operstate=view.operstate, kind=view.kind,
                   master=view.master, mac=view.mac)


@dataclass(frozen=True)
class BondState:
    """Kernel view of a bond: the active slave and each slave's MII status."""

    name: str
    active_slave: str | None
    slaves: dict[str, bool]
    carrier: bool


@dataclass
class ManagedProcess:
    """A process the run started, stopped by its pid (never by name)."""

    popen: subprocess.Popen[bytes]
    record: ProcRecord
    log: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None and alive(self.record.pid, self.record.start)

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code. Both waits are
        scaled by the machine's measured slowness (harness.wait.time_scale): in
        the emulated VM a daemon's shutdown, and even a killed process's exit,
        were seen to take longer than the host's 10 s and 5 s."""
        scale = time_scale()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout * scale)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5 * scale)
        return self.popen.returncode


@dataclass
class Host:
    """A namespace the run owns (a node or a client)."""

    netns: str
    cluster: Cluster = field(repr=False)

    # -- commands ------------------------------------------------------------
    def argv(self, argv: Sequence[str]) -> list[str]:
        return [IP, "netns", "exec", self.netns, *argv]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in this namespace (with its own /sys) and wait."""
        return subprocess.run(self.argv(argv), capture_output=True, text=True,
                              check=check, timeout=timeout, input=input)

    def spawn(self, argv: Sequence[str], what: str, log: Path | None = None,
              env: dict[str, str] | None = None, wrap: Sequence[str] = ()) -> ManagedProcess:
        """Start a background process here; it is recorded for teardown."""
        out = open(log, "ab") if log else None  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                [*wrap, *self.argv(argv)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if out is None else out,
                stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )
        finally:
            if out is not None:
                out.close()
        proc = ManagedProcess(popen, self.cluster.state.record_process(popen.pid, what), log)
        self.cluster.processes.append(proc)
        return proc

    # -- netlink reads ------------------------------------------------------
    def netlink(self, fn: Any) -> Any:
        return netns.in_netns(self.netns, fn)

    def links(self) -> dict[str, LinkState]:
        return self.netlink(
            lambda r: {s.name: s for s in (LinkState.of(link_view(m)) for m in r.link("dump"))})

    def link(self, name: str) -> LinkState:
        return self.links()[name]

    def carrier(self, name: str) -> bool:
        return self.link(name).carrier

    def addresses(self, name: str | None = None) -> list[ipaddress.IPv4Interface]:
        def read(r: NsRoute) -> list[ipaddress.IPv4Interface]:
            kw = {"index": r.link_lookup(ifname=name)[0]} if name else {}
            return [
                ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                for a in r.addr("dump", family=2, **kw)
            ]
        return self.netlink(read)

    def bond_state(self, bond: str) -> BondState:
        def read(r: NsRoute) -> BondState:
            views = [link_view(m) for m in r.link("dump")]
            by_index = {v.index: v for v in views}
            master = next(v for v in views if v.ifname == bond)
            active = by_index.get(master.active_slave) if master.active_slave is not None \
                else None
            return BondState(
                name=bond,
                active_slave=active.ifname if active is not None else None,
                slaves={v.ifname: bool(v.mii_up) for v in views if v.master == master.index},
                carrier=master.carrier,
            )
        return self.netlink(read)


@dataclass
class Node(Host):
    pnn: int = 0

    def address(self, network: str | None = None) -> ipaddress.IPv4Interface:
        top = self.cluster.topology
        net = top.network(network) if network else top.private
        return net.node_address(self.pnn)


@dataclass
class Client(Host):
    network: Network | None = None

    @property
    def address(self) -> ipaddress.IPv4Interface:
        assert self.network is not None
        return self.network.client_address()


class Cluster:
    """A built cluster. Use `Cluster.create(topology)` as a context manager."""

    def __init__(self, topology: Topology, state: RunState) -> None:
        self.topology = topology
        self.state = state
        self.plan = builder.BuildPlan(topology, state)
        self.processes: list[ManagedProcess] = []
        self.nodes = [Node(self.plan.node(p), self, pnn=p) for p in range(topology.nodes)]
        self.clients = {
            n.name: Client(self.plan.client(n.name), self, network=n)
            for n in topology.public_networks
        }
        self.switch = Host(self.plan.switch, self)
        self.workdir = state.dir / "work"
        self.build_seconds = 0.0
        # cluster_lock = "etcd": the lock host's etcd, started with the cluster
        self.lock_service = None if self.plan.lock is None else \
            lockservice.EtcdService(self, Host(self.plan.lock, self))

    @classmethod
    def create(cls, topology: Topology, state: RunState | None = None) -> Cluster:
        """Claim a run (if not given), build everything; on error remove it all."""
        if state is None:
            state = RunState(new_run_id()).claim()
        cluster = cls(topology, state)
        t0 = time.monotonic()
        try:
            cluster.workdir.mkdir(parents=True, exist_ok=True)
            builder.build(cluster.plan)
            if cluster.lock_service is not None:
                cluster.lock_service.start()
        except BaseException:
            cluster.destroy()
            raise
        cluster.build_seconds = time.monotonic() - t0
        return cluster

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def client(self, network: str = "public") -> Client:
        return self.clients[network]

    def add_client(self, network: str) -> Client:
        """A client namespace on `network` (built on first call), e.g. a
        host on the private network that is not a node."""
        if network not in self.clients:
            builder.add_client(self.plan, network)
            self.clients[network] = Client(self.plan.client(network), self,
                                           network=self.topology.network(network))
        return self.clients[network]

    def stop_processes(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def destroy(self) -> None:
        """Stop every process of the run, then remove its namespaces."""
        self.stop_processes()
        self.state.kill_everything()
        builder.teardown(self.plan)

    def leftovers(self) -> list[str]:
        """What of this run still exists after destroy() (for the leak audit)."""
        out = [f"netns {n}" for n in self.state.namespaces()]
        out += [f"process {p.pid} ({p.what})" for p in self.state.live_processes()]
        out += [f"mount {m}" for m in self.state.mounts()]
        return out

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def how_to_enter(self) -> str:
        lines = [f"cluster run {self.run_id} left up (--keep-on-failure):"]
        for n in self.nodes:
            lines.append(f"  node {n.pnn}: ip netns exec {n.netns} bash")
        for name, c in self.clients.items():
            lines.append(f"  client {name}: ip netns exec {c.netns} bash")
        lines.append(f"  switch: ip netns exec {self.plan.switch} bash")
        if self.plan.lock is not None:
            lines.append(f"  lock host (etcd): ip netns exec {self.plan.lock} bash")
        lines.append("  remove it with: harness gc --force " + self.run_id)
        return "\n".join(lines)
