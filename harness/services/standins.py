"""The smbd stand-in (harness.services.smbd) in every node of a running
backend: started after the implementation, stopped before it, its pids in
the run's process record like the daemons'."""

from __future__ import annotations

import json
import sys
import time

from harness.backends.base import Backend
from harness.cluster import ManagedProcess
from harness.services.smbd import PORT
from harness.wait import time_scale

READY_TIMEOUT = 10.0


class SmbdStandins:
    """One stand-in per node, serving every public address of the topology.

    register=False: no connection is registered with the implementation (a
    CTDB whose smbd does not tell it about its clients: no tickles possible).
    """

    def __init__(self, backend: Backend, register: bool = True, port: int = PORT) -> None:
        self.backend, self.register, self.port = backend, register, port
        self.procs: dict[int, ManagedProcess] = {}

    def start(self) -> SmbdStandins:
        top = self.backend.cluster.topology
        ips = sorted({str(p.address.ip) for p in top.public_addresses})
        for node in self.backend.cluster.nodes:
            argv = [sys.executable, "-m", "harness.services.smbd", "--port", str(self.port)]
            for ip in ips:
                argv += ["--ip", ip]
            if self.register:
                argv += ["--register", json.dumps(self.backend.cli_argv(node.pnn))]
            log = self.backend.dir / f"smbd-node{node.pnn}.log"
            self.procs[node.pnn] = node.spawn(argv, f"smbd node {node.pnn}", log=log)
        deadline = time.monotonic() + READY_TIMEOUT * time_scale()
        for pnn, proc in self.procs.items():
            while "listening" not in self.log(pnn):
                if not proc.running() or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"smbd stand-in on node {pnn} did not start: "
                                       f"{self.log(pnn).strip()[-300:]}")
                time.sleep(0.02)
        return self

    def log(self, pnn: int) -> str:
        p = self.procs[pnn].log
        return p.read_text(errors="replace") if p and p.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        self.procs.clear()

    def __enter__(self) -> SmbdStandins:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
