"""A stand-in Backend for fault and recorder tests: each node's "daemon" is a
`sleep` in the node's namespace (real signals to a real process), and the
CLI answers from a table the test edits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from harness.backends.base import Backend
from harness.cluster import Cluster, ManagedProcess

COLS = ["Disconnected", "Unknown", "Banned", "Disabled", "Unhealthy", "Stopped", "Inactive",
        "PartiallyOnline"]


class SleepBackend(Backend):
    name = "standin"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self.procs: dict[int, ManagedProcess] = {}
        n = len(cluster.nodes)
        self.flags: dict[int, set[str]] = {p: set() for p in range(n)}
        self.holders: dict[str, int] = {str(a.address.ip): i % n for i, a in
                                        enumerate(cluster.topology.public_addresses)}
        self.broken: set[int] = set()
        self.calls = 0

    def start(self) -> None:
        for p in range(len(self.cluster.nodes)):
            self.start_node(p)

    def start_node(self, pnn: int) -> None:
        node = self.cluster.nodes[pnn]
        proc = node.spawn(["sleep", "1000"], f"standin daemon {pnn}", log=self.log_path(pnn))
        self.procs[pnn] = proc

        # like a real backend, return once the daemon runs (`ip netns exec` has
        # entered the namespace and exec'd it)
        @retry(stop=stop_after_delay(5), wait=wait_fixed(0.005), reraise=True)
        def running() -> None:
            assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"
        running()

    def stop_node(self, pnn: int) -> None:
        self.procs.pop(pnn).stop()

    def daemon_pid(self, pnn: int) -> int:
        return self.procs[pnn].pid

    def stop(self) -> None:
        for p in list(self.procs):
            self.stop_node(p)

    def ctl(self, pnn: int, *args: str, check: bool = True, timeout: float = 10) -> str:
        self.calls += 1
        if pnn in self.broken:
            raise OSError(f"node {pnn}: connection refused")
        if list(args) == ["-X", "status"]:
            lines = ["|Node|IP|" + "|".join(COLS) + "|ThisNode|"]
            for p in range(len(self.cluster.nodes)):
                vals = ["1" if c.upper() in self.flags[p] else "0" for c in COLS]
                ip = self.cluster.topology.private.node_address(p).ip
                lines.append(f"|{p}|{ip}|" + "|".join(vals) + f"|{'Y' if p == pnn else 'N'}|")
            return "\n".join(lines) + "\n"
        if list(args) == ["-X", "ip"]:
            return "|Public IP|Node|\n" + "".join(f"|{ip}|{h}|\n"
                                                  for ip, h in self.holders.items())
        raise ValueError(f"unexpected ctl {args}")

    def log_path(self, pnn: int) -> Path:
        return self.dir / f"node{pnn}.log"

    def event_script_dir(self, pnn: int) -> Path:
        return self.dir / f"events-n{pnn}"


@pytest.fixture
def standin(cluster: Cluster) -> Iterator[SleepBackend]:
    """SleepBackend running on the test's cluster."""
    b = SleepBackend(cluster)
    b.start()
    try:
        yield b
    finally:
        b.stop()
