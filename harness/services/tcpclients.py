"""TCP clients of a running cluster in one piece: the smbd stand-in on every
node (harness.services.standins) and a TcpProber in the client namespace,
ready once every connection is up and registered where it should be."""

from __future__ import annotations

from harness.backends.base import Backend
from harness.record.events import Timeline
from harness.record.tcpprobe import TcpProber
from harness.services.standins import SmbdStandins
from harness.wait import WaitTimeout, time_scale, wait_until

READY_TIMEOUT = 10.0


class TcpClients:
    """Stand-ins plus a prober with `per_ip` busy and `idle_per_ip` idle
    connections per public IP.

    register=False: the stand-ins register nothing (no tickles possible).
    everywhere=True waits until every node lists every connection (the lists
    are synced, so any node taking an IP over knows its clients); False only
    until the node holding each IP lists them (what a CTDB with the default
    TickleUpdateInterval of 20 s offers right after the connections open).
    """

    def __init__(self, backend: Backend, timeline: Timeline, *, register: bool = True,
                 per_ip: int = 2, idle_per_ip: int = 0, everywhere: bool = True) -> None:
        self.backend, self.register, self.everywhere = backend, register, everywhere
        self.standins = SmbdStandins(backend, register=register)
        self.prober = TcpProber(backend.cluster, timeline, per_ip=per_ip,
                                idle_per_ip=idle_per_ip)
        self.per_ip = per_ip + idle_per_ip

    def registered(self, pnn: int, ip: str) -> int:
        """How many connections to ip node pnn lists (`gettickles`)."""
        return len(self.backend.ctl(pnn, "-X", "gettickles", ip).splitlines()) - 1

    def missing(self) -> list[str]:
        """What keeps the clients from being ready, one item per IP or node
        (empty once every connection is up, answering and registered)."""
        out = []
        per_ip = {ip: self.prober.up(ip) for ip in list(self.prober.ips)}
        for ip, up in per_ip.items():
            if up != self.per_ip:
                out.append(f"{ip}: {up} of {self.per_ip} connections up")
            elif not self.prober.answering(ip):
                out.append(f"{ip}: not answering")
        if out or not self.register:
            return out
        held = {str(ip): pnn for ip, pnn in self.backend.ips(0).items()}
        nodes = range(len(self.backend.cluster.nodes))
        for ip in per_ip:
            for p in (nodes if self.everywhere else [held[ip]]):
                n = self.registered(p, ip)
                if n < self.per_ip:
                    out.append(f"{ip}: node {p} lists {n} of {self.per_ip} connections")
        return out

    def ready(self) -> bool:
        return not self.missing()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        try:
            wait_until(self.ready, timeout * time_scale(),
                       "every TCP connection up and registered")
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}: {'; '.join(self.missing()) or 'ready just now'}") from None

    def __enter__(self) -> TcpProber:
        self.standins.start()
        try:
            self.prober.__enter__()
            self.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self.prober

    def __exit__(self, *exc: object) -> None:
        self.prober.stop()
        self.standins.stop()
