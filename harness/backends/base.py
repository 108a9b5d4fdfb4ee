"""The interface every failover implementation offers the harness.

Scenario tests are written against `Backend` only, so the native
implementation and Samba's ctdbd run the same tests. A backend runs one
daemon per node namespace and exposes CTDB's CLI (`-X` forms parsed by
harness.ctdb, the one parser for both implementations) and is configured
through the same files, written by harness.ctdb's checked writers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness import netns, runs
from harness.cluster import Cluster
from harness.ctdb import (
    DEFAULTS,
    ClusterStatus,
    parse_ip,
    parse_status,
    write_nodes,
    write_public_addresses,
    write_script_options,
    write_tunables,
)
from harness.ctdb.output import IPAddress
from harness.wait import time_scale


class NotConverged(AssertionError):
    """The cluster did not reach all-OK with every IP held once in time."""


@dataclass
class Daemon:
    """A daemon known by pid and kernel start time (never by name) that is not
    this process's child: ctdbd after its fork, or any implementation's daemon
    taken over by a lab supervisor (Backend.attach).

    It is watched through /proc, and it is in the run's process record for
    the reaper.
    """

    pid: int
    record: runs.ProcRecord

    def running(self) -> bool:
        return runs.alive(self.pid, self.record.start)

    def wait(self, timeout: float) -> bool:
        """True once the daemon has exited (within timeout)."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def signal(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait, then SIGKILL."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            self.signal(signal.SIGKILL)
            self.wait(timeout)


class Backend(ABC):
    """One failover implementation running on a built Cluster."""

    name: ClassVar[str]
    ready_at: float | None = None  # monotonic time wait_converged() first saw the final layout
    # How much longer an IP may stay on a node that lost its public link while
    # clients hold TCP connections to it: releaseip's killtcp waits for clients
    # it cannot reach. Added to the takeover bound in that case.
    killtcp_release_delay: ClassVar[float] = 0.0

    def __init__(self, cluster: Cluster, tunables: Mapping[str, int] | None = None,
                 options: Mapping[str, str] | None = None) -> None:
        self.cluster = cluster
        self.tunables: dict[str, int] = dict(tunables or {})
        self.options: dict[str, str] = dict(options or {})
        self.dir = cluster.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- what the machine has ---------------------------------------------
    @classmethod
    def unavailable(cls) -> str | None:
        """None when this backend can run here, else how to make it runnable."""
        return None

    # -- lifecycle -----------------------------------------------------------
    @abstractmethod
    def start(self) -> None:
        """Start the daemon on every node (returns once they are launched)."""

    @abstractmethod
    def start_node(self, pnn: int) -> None: ...

    @abstractmethod
    def stop_node(self, pnn: int) -> None:
        """Graceful shutdown of one node's daemon."""

    @abstractmethod
    def daemon_pid(self, pnn: int) -> int: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop every daemon and leave nothing behind."""

    def attach(self) -> None:
        """Take over the daemons already running on this cluster, started by
        another process of the same run (a failed test whose lab a supervisor
        keeps running). Afterwards stop(), the CLI and daemon faults work as if
        this object had started them."""
        raise NotImplementedError(f"{self.name}: cannot take over running daemons")

    def recorded_daemon(self, pnn: int, what: str) -> Daemon:
        """Node pnn's daemon from the run's process record (`what` as recorded
        at its start), checked to be alive and inside the node's namespace."""
        node = self.cluster.nodes[pnn]
        for rec in reversed(self.cluster.state.processes()):
            if rec.what != what or not runs.alive(rec.pid, rec.start):
                continue
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{rec.pid}/ns/net").st_ino == netns.netns_ino(node.netns):
                    return Daemon(rec.pid, rec)
        raise RuntimeError(f"{self.name}: no live {what!r} in the record of run "
                           f"{self.cluster.run_id}")

    # -- the CLI -----------------------------------------------------------
    @abstractmethod
    def ctl(self, pnn: int, *args: str, check: bool = True, timeout: float = 10) -> str:
        """Run the CTDB-style CLI on node `pnn` and return its stdout."""

    def cli_argv(self, pnn: int, *args: str) -> list[str]:
        """The implementation's own CLI on node pnn (`ctdb ARGS` / `failoverctl
        ARGS`) as a command that runs from the host, output untouched."""
        raise NotImplementedError(f"{self.name}: no command-line client")

    def enter_argv(self, pnn: int) -> list[str]:
        """Prefix that runs a command in node pnn as its daemon sees the node
        (by default the node's network namespace, with the namespace's /sys)."""
        return self.cluster.nodes[pnn].argv([])

    def status(self, pnn: int = 0) -> ClusterStatus:
        return parse_status(self.ctl(pnn, "-X", "status"))

    def ips(self, pnn: int = 0) -> dict[IPAddress, int]:
        """Public address -> pnn holding it (-1 unassigned), as node `pnn` reports it."""
        return parse_ip(self.ctl(pnn, "-X", "ip"))

    def setvar(self, name: str, value: int, pnn: int | None = None) -> None:
        targets = range(len(self.cluster.nodes)) if pnn is None else (pnn,)
        for p in targets:
            self.ctl(p, "setvar", name, str(value))
        self.tunables[name] = value

    # -- files ---------------------------------------------------------------
    def write_ctdb_files(self, directory: Path) -> None:
        """Write nodes, public_addresses, ctdb.tunables and script.options into `directory`.

        Both implementations read these four files, so both backends write
        them here, from the topology and the test's settings, through
        harness.ctdb's checked writers: an unknown or obsolete tunable
        raises TunableError and an impossible option ConfigError before any
        daemon starts (ctdbd would refuse to start, the native daemon too),
        and an option value with spaces or quotes comes out quoted as the
        event scripts' shell needs.
        """
        top = self.cluster.topology
        (directory / "nodes").write_text(write_nodes(top.node_addresses()))
        (directory / "public_addresses").write_text(
            write_public_addresses(top.public_addresses))
        (directory / "ctdb.tunables").write_text(write_tunables(self.tunables))
        (directory / "script.options").write_text(write_script_options(self.options))

    @abstractmethod
    def log_path(self, pnn: int) -> Path: ...

    @abstractmethod
    def event_script_dir(self, pnn: int) -> Path:
        """Where extra `NN.name` event scripts for node pnn go (e.g. a hung monitor)."""

    def config_files(self, pnn: int) -> list[Path]:
        """Node pnn's configuration files as the daemon reads them (to save a lab)."""
        return []

    def tunable(self, name: str) -> int:
        """Value in force (the test's setting, else CTDB's 4.17 default)."""
        return self.tunables.get(name, DEFAULTS[name])

    def collect(self, dest: Path) -> None:
        """Copy every node's log into dest (artifacts)."""
        dest.mkdir(parents=True, exist_ok=True)
        for pnn in range(len(self.cluster.nodes)):
            src = self.log_path(pnn)
            if src.exists():
                shutil.copy(src, dest / f"{self.name}-node{pnn}.log")

    # -- convergence -----------------------------------------------------------
    def kernel_holders(self) -> dict[IPAddress, list[int]]:
        """Which nodes hold each public IP in the kernel (not the CLI's word).

        Keyed by the topology's public addresses, in CTDB's address type; the
        kernel is read for IPv4 only, as the harness builds IPv4 networks.
        """
        public = {p.address.ip for p in self.cluster.topology.public_addresses}
        held: dict[IPAddress, list[int]] = {ip: [] for ip in public}
        for node in self.cluster.nodes:
            for a in node.addresses():
                if a.ip in held:
                    held[a.ip].append(node.pnn)
        return held

    def converged(self) -> str | None:
        """None if all nodes are OK and every IP sits on exactly one node, else why not."""
        st = self.status(0)
        bad = [n for n in st.nodes if not n.ok]
        if bad:
            return f"nodes not OK: {[(n.pnn, n.flags_text) for n in bad]}"
        held = self.kernel_holders()
        wrong = {str(ip): pnns for ip, pnns in held.items() if len(pnns) != 1}
        if wrong:
            return f"IPs not held by exactly one node in the kernel: {wrong}"
        said = self.ips(0)
        for ip, pnns in held.items():
            if said.get(ip) != pnns[0]:
                return f"`ip` says {ip} is on {said.get(ip)}, kernel says {pnns[0]}"
        return None

    def agreed_leader(self, timeout: float = 10.0) -> int:
        """The leader once every node names the same one (views can lag)."""
        deadline = time.monotonic() + timeout
        seen: set[int | None] = set()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                # plain `status`: the -X form has no Leader line
                seen = {parse_status(self.ctl(p, "status")).leader
                        for p in range(len(self.cluster.nodes))}
                if len(seen) == 1:
                    (leader,) = seen
                    if leader is not None:
                        return leader
            time.sleep(0.05)
        raise NotConverged(f"{self.name}: nodes disagree on the leader: {seen}")

    def monitor_due(self, pnn: int) -> float | None:
        """Seconds until node pnn's next monitor run, if the implementation says."""
        return None

    def max_monitor_gap(self) -> float:
        """Longest gap between monitor runs once running: 5 s after a change, else the cap."""
        return float(max(5, self.tunable("MonitorInterval")))

    def convergence_timeout(self) -> float:
        """How long start-up may take: first monitor, one gap, takeover, plus slack
        (times the emulation scale inside the test VM)."""
        return (2 + 5 + self.tunable("TakeoverTimeout") + 10) * time_scale()

    def wait_converged(self, timeout: float, settle: float | None = None) -> float:
        """Wait until converged and the layout stays the same for `settle` seconds.

        A node that just turned OK triggers one more (rebalancing) takeover run,
        so "converged" is only trusted once it held for a RecoverInterval.
        Returns the monotonic time convergence was first seen (of the final layout).
        """
        settle = float(self.tunable("RecoverInterval")) if settle is None else settle
        deadline = time.monotonic() + timeout + settle
        first: tuple[float, dict] | None = None
        why = "never checked"
        while time.monotonic() < deadline:
            try:
                why = self.converged() or ""
            except (OSError, ValueError, RuntimeError) as e:
                why = f"{type(e).__name__}: {e}"
            if not why:
                layout = self.ips(0)
                if first is None or first[1] != layout:
                    first = (time.monotonic(), layout)
                if time.monotonic() - first[0] >= settle:
                    self.ready_at = first[0]
                    return first[0]
            else:
                first = None
            time.sleep(0.05)
        raise NotConverged(f"{self.name}: not converged within {timeout} s: {why}")
