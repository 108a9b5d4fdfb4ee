"""The Recorder: every recorder of one test, wired to a cluster and a backend,
started and stopped together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.cluster import Cluster
from harness.record.component import RecorderStats, RecorderThread
from harness.record.events import Timeline
from harness.record.logs import LogFollower, LogSpec
from harness.record.netlink import NetlinkListener
from harness.record.probe import ClientProber
from harness.record.status import CtlFn, StatusPoller
from harness.wait import time_scale


class RecorderError(AssertionError):
    """A recorder died or missed its heartbeat during the test: what the
    timeline says (and the invariants checked on it) cannot be trusted."""


class Recorder:
    """All recorders of one test, started and stopped together.

        tl = Timeline("test_x")
        with Recorder(cluster, tl, backend, poll_interval=0.1, probe=True):
            ...

    `backend` is a Backend (its ctl, and its log files are followed) or a
    callable `ctl(pnn, *args) -> str`; None polls nothing. netlink listeners
    run in every node and client namespace (and the switch's with switch=True).

    Cost of polling: every node (or `poll_nodes`) is asked `-X status` and
    `-X ip` every poll_interval. With a CLI run as a subprocess that is
    2 x nodes x 10 processes a second at 100 ms: fine for a C binary
    (ctdb), far too much for a Python CLI (about 55 ms CPU per start here);
    give such a backend an in-process callable instead.
    """

    def __init__(self, cluster: Cluster, timeline: Timeline, backend: Any = None,
                 poll_interval: float = 0.1, *, netlink: bool = True, switch: bool = False,
                 poll_ips: bool = True, poll_nodes: Iterable[int] | None = None,
                 ctl_timeout: float = 3.0,
                 logs: Iterable[LogSpec] = (), log_pattern: str | None = None,
                 follow_backend_logs: bool = True, probe: bool = False,
                 probe_period: float = 0.03, probe_max_s: float = 900.0,
                 log_interval: float = 0.02) -> None:
        # periods are host seconds: under emulation (the VM) they stretch with the
        # time scale like every bound does, or the pollers alone (a `ctdb`
        # process per node twice every 100 ms, each spawn ~35x dearer there)
        # would keep the guest's CPU busy and slow everything they observe
        poll_interval *= time_scale()
        probe_period *= time_scale()
        self.cluster, self.timeline = cluster, timeline
        self.stop_flag = threading.Event()
        self.components: list[RecorderThread] = []
        self.probers: list[ClientProber] = []
        self._started = False
        stop = self.stop_flag
        if netlink:
            for n in cluster.nodes:
                self.components.append(NetlinkListener(n.netns, f"n{n.pnn}", n.pnn, timeline,
                                                       stop))
            for name, c in cluster.clients.items():
                self.components.append(NetlinkListener(c.netns, f"c-{name}", None, timeline,
                                                       stop))
            if switch:
                self.components.append(NetlinkListener(cluster.switch.netns, "sw", None,
                                                       timeline, stop))
        ctl: CtlFn | None = None
        if backend is not None:
            if hasattr(backend, "ctl"):
                def ctl(pnn: int, *args: str) -> str:
                    return backend.ctl(pnn, *args, timeout=ctl_timeout)
            elif callable(backend):
                ctl = backend
            else:
                raise TypeError(f"backend must be a Backend or a callable, not {backend!r}")
        if ctl is not None:
            pnns = [n.pnn for n in cluster.nodes] if poll_nodes is None else list(poll_nodes)
            for pnn in pnns:
                self.components.append(StatusPoller(pnn, ctl, timeline, stop, poll_interval,
                                                    ips=poll_ips, ctl_timeout=ctl_timeout))
        specs = list(logs)
        if backend is not None and hasattr(backend, "log_path") and follow_backend_logs:
            specs += [LogSpec(Path(backend.log_path(n.pnn)), n.pnn, log_pattern)
                      for n in cluster.nodes]
        service = getattr(cluster, "lock_service", None)
        if service is not None and follow_backend_logs:  # etcd's log: no node's
            specs.append(LogSpec(service.log_path, None, log_pattern))
        for spec in specs:
            self.components.append(LogFollower(spec, timeline, stop, log_interval))
        if probe:
            for c in cluster.clients.values():
                self.probers.append(ClientProber(cluster, timeline, client=c,
                                                 period=probe_period, duration=probe_max_s))
        self.t_start = self.t_stop = 0.0
        self.problems: list[str] = []  # set by stop(): recorders that were not watching

    def start(self, timeout: float = 10.0) -> Recorder:
        """Start every recorder; return once each has its initial state."""
        self.t_start = time.monotonic()
        self.timeline.mark("recorder", "recorder.start", None,
                           components=[c.name for c in self.components])
        self._started = True
        for c in self.components:
            c.start()
        deadline = time.monotonic() + timeout
        for c in self.components:
            c.ready.wait(max(0.0, deadline - time.monotonic()))
        for p in self.probers:
            p.start()
        for p in self.probers:
            p.wait_ready(max(0.1, deadline - time.monotonic()))
        not_ready = [c.name for c in self.components if not c.ready.is_set()]
        if not_ready:
            self.stop()
            raise TimeoutError(f"recorders not ready after {timeout} s: {not_ready}")
        failed = [f"{s.name}: {s.errors[0]}" for s in self.stats() if s.errors]
        if failed:
            self.stop()
            raise RuntimeError(f"recorders failed to start: {failed}")
        return self

    def stop(self) -> None:
        """Stop and join every recorder (sockets closed, so namespaces can go)."""
        if not self._started:
            return
        self._started = False
        for p in self.probers:
            p.stop()
        self.stop_flag.set()
        for c in self.components:
            c.wake()
        for c in self.components:
            c.join(5.0)
        self.t_stop = time.monotonic()
        stuck = [c.name for c in self.components if c.running()]
        self.problems = [why for c in [*self.components, *self.probers]
                         if (why := c.heartbeat_problem(until=self.t_stop)) is not None]
        self.problems += [f"{name} did not stop" for name in stuck]
        self.timeline.mark("recorder", "recorder.stop", None, events=len(self.timeline),
                           cpu_s=round(self.cpu_seconds(), 4), stuck=stuck)

    def check(self) -> None:
        """Raise RecorderError if a recorder died, fell silent or hung (after stop())."""
        if self.problems:
            raise RecorderError("the recorders were not watching all along, so the timeline "
                                "cannot be trusted: " + "; ".join(self.problems))

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    # -- overhead -----------------------------------------------------------------
    def stats(self) -> list[RecorderStats]:
        out = [c.stats for c in self.components]
        out += [p.stats for p in self.probers]
        return out

    def cpu_seconds(self) -> float:
        """CPU time all recorder threads used (complete once stopped)."""
        return sum(s.cpu_s for s in self.stats())

    def summary(self) -> str:
        wall = (self.t_stop or time.monotonic()) - self.t_start
        lines = [f"recorder: {wall:.2f} s, {self.cpu_seconds():.3f} s CPU "
                 f"({100 * self.cpu_seconds() / wall if wall else 0:.1f}% of one core)"]
        for s in self.stats():
            lines.append(f"  {s.name:<20} events={s.events:<6} msgs={s.messages:<6} "
                         f"cpu={s.cpu_s:.3f}s overruns={s.overruns}"
                         + (f" errors={s.errors}" if s.errors else ""))
        return "\n".join(lines)
