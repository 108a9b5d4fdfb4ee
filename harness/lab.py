"""One context that owns a running cluster, from claiming the run to removing it.

Every user of a cluster - the pytest fixtures, `harness demo`, `harness
stats`, the differential test and the lab commands - goes through these
context managers, so setup and teardown are written once:

    with running_cluster(default_topology(), "native", {"MonitorInterval": 3}) as lab:
        fault = lab.faults.public_link(2).apply()
        ...

Each layer is its own context manager (one resource each, as pytest
fixtures want them) and `running_cluster` stacks them on one ExitStack:

    built_cluster     claim a run id, build namespaces/links; destroy, leak audit
    started_backend   start the implementation, wait for convergence; stop it
    recording         netlink/status/log recorders and the client prober
    fault_catalogue   faults bound to the cluster; undo what is still applied

Teardown runs in every case, KeyboardInterrupt included; a second Ctrl-C
while it runs is held back until it has finished (in the main thread), so an
impatient user cannot leave namespaces and daemons behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from harness import runs
from harness.backends import registry
from harness.backends.base import Backend
from harness.cluster import Cluster
from harness.faults import FaultError, Faults
from harness.record import Recorder, Timeline
from harness.topology import Topology


class LeakError(RuntimeError):
    """Teardown left something of the run behind (namespaces, processes, mounts)."""


class BackendUnavailable(RuntimeError):
    """The implementation cannot run on this machine; the message says how to fix it."""


@dataclass
class Lab:
    """A running cluster and everything bound to it."""

    cluster: Cluster
    backend: Backend
    timeline: Timeline
    faults: Faults
    recorder: Recorder | None = None
    ready_at: float = 0.0  # monotonic time the cluster was first seen converged


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT back while the block runs (main thread only); re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    old = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def built_cluster(topology: Topology, *, keep: Callable[[], bool] = lambda: False,
                  state: runs.RunState | None = None, adopt: bool = False,
                  hand_over: Callable[[Cluster], str | None] | None = None
                  ) -> Iterator[Cluster]:
    """A freshly built cluster under a new run id, removed afterwards.

    `state`: a run this process already owns (a lab supervisor's) instead of
    a new one; with `adopt` its namespaces exist already (built by another
    process of the run, e.g. a failed test kept running) and are taken over
    rather than built.

    `keep()` is asked at the end: if true the cluster stays. `hand_over`, if
    given, is offered it first (a lab supervisor keeps it running); it
    returns what to print, or None when there is nothing to hand over. Else
    the namespaces stay with their processes stopped, the run is marked kept
    so the reaper leaves it, and how to enter them is printed. Otherwise
    everything is removed and a leftover raises LeakError.
    """
    if state is None:
        state = runs.RunState(runs.new_run_id()).claim()
    cluster = Cluster(topology, state) if adopt else Cluster.create(topology, state)
    try:
        yield cluster
    finally:
        with deferred_interrupts():
            if keep():
                told = hand_over(cluster) if hand_over is not None else None
                if told is None:
                    cluster.stop_processes()
                    state.mark_kept()
                    told = cluster.how_to_enter()
                print("\n" + told)
            else:
                cluster.destroy()
                leftovers = cluster.leftovers()
                state.remove()
                if leftovers:
                    raise LeakError(f"leak audit: run {state.run_id} left {leftovers}")


def backend_class(backend: str | type[Backend]) -> type[Backend]:
    """A backend class by name (native, ctdb) or as given."""
    if isinstance(backend, str):
        try:
            return registry()[backend]
        except KeyError:
            raise ValueError(f"unknown implementation {backend!r}; use one of "
                             f"{', '.join(registry())}") from None
    return backend


@contextlib.contextmanager
def started_backend(cluster: Cluster, backend: str | type[Backend],
                    tunables: Mapping[str, int] | None = None,
                    options: Mapping[str, str] | None = None, *, event_mode: bool = False,
                    tickles: bool = True, settle: float | None = None, attach: bool = False,
                    keep: Callable[[], bool] = lambda: False) -> Iterator[Backend]:
    """The implementation running on `cluster` and converged (all OK, every IP
    held once); stopped afterwards unless `keep()` says the daemons are to
    outlive this process (handed to a lab supervisor). With `attach` the
    daemons run already (an adopted cluster): they are taken over as they
    are, converged or not. Raises BackendUnavailable if it cannot run here,
    ValueError for an event mode it does not have. tickles=False: the native
    daemons run with --no-tickles."""
    cls = backend_class(backend)
    why = cls.unavailable()
    if why:
        raise BackendUnavailable(f"{cls.name} backend: {why}")
    kw: dict[str, Any] = {}
    if event_mode:
        if cls.name != "native":
            raise ValueError(f"{cls.name}: CTDB has no event-driven monitor; --event-mode is "
                             "the native implementation's")
        kw["event_mode"] = True
    if not tickles and cls.name == "native":
        kw["tickles"] = False  # ctdbd has no such switch: its clients simply do not register
    impl = cls(cluster, tunables, options, **kw)
    try:
        if attach:
            impl.attach()
        else:
            impl.start()
            impl.wait_converged(impl.convergence_timeout(), settle=settle)
        yield impl
    finally:
        if not keep():
            with deferred_interrupts():
                impl.stop()


@contextlib.contextmanager
def recording(cluster: Cluster, timeline: Timeline, backend: Backend | None,
              **recorder_kw: Any) -> Iterator[Recorder]:
    """Every recorder of the cluster writing to `timeline`, stopped afterwards.
    Keywords go to Recorder (poll_interval, probe, probe_period, ...).
    A recorder that died or missed its heartbeat raises RecorderError at the
    end (unless the block already failed): its timeline proves nothing."""
    rec = Recorder(cluster, timeline, backend, **recorder_kw)
    rec.start()
    try:
        yield rec
    except BaseException:
        rec.stop()
        raise
    rec.stop()
    rec.check()


@contextlib.contextmanager
def fault_catalogue(cluster: Cluster, timeline: Timeline | None,
                    backend: Backend | None) -> Iterator[Faults]:
    """The fault catalogue bound to the cluster; at the end whatever is still
    applied is undone, and an undo that failed raises FaultError (a fault
    left in place would silently change what the next check sees)."""
    faults = Faults(cluster, timeline, backend)
    failed = False
    try:
        yield faults
    except BaseException:
        failed = True
        raise
    finally:
        with deferred_interrupts():
            errors = faults.undo_all()
        if errors and not failed:
            raise FaultError("could not undo: " + "; ".join(errors))


@contextlib.contextmanager
def running_cluster(topology: Topology, backend: str | type[Backend],
                    tunables: Mapping[str, int] | None = None,
                    options: Mapping[str, str] | None = None, *, event_mode: bool = False,
                    tickles: bool = True, name: str = "lab", record: bool = True,
                    settle: float | None = None,
                    keep: Callable[[], bool] = lambda: False,
                    state: runs.RunState | None = None, adopt: bool = False,
                    timeline: Timeline | None = None,
                    hand_over: Callable[[Cluster, Backend], str | None] | None = None,
                    **recorder_kw: Any) -> Iterator[Lab]:
    """Build `topology`, start `backend` on it with `tunables`/`options`, wait
    for convergence, start the recorders (unless record=False) and yield the
    Lab; stop and remove everything afterwards, whatever happens.

    `keep()` true at the end keeps the cluster: with `hand_over` running (its
    daemons are not stopped, and hand_over(cluster, backend) passes it to a
    lab supervisor: harness.labs.handover), else as built_cluster keeps it.

    A lab supervisor passes the run it owns (`state`), `adopt` to take over a
    cluster that already runs (see built_cluster, started_backend), and its
    own `timeline` (already followed by its journal, so no event is missed)."""
    started: list[Backend] = []  # the backend once it runs: what hand_over passes on

    def keep_running(cluster: Cluster) -> str | None:
        return hand_over(cluster, started[0]) if hand_over is not None and started else None

    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(built_cluster(
            topology, keep=keep, state=state, adopt=adopt,
            hand_over=keep_running if hand_over is not None else None))
        impl = stack.enter_context(started_backend(
            cluster, backend, tunables, options, event_mode=event_mode, tickles=tickles,
            settle=settle, attach=adopt, keep=keep if hand_over is not None else lambda: False))
        started.append(impl)
        timeline = Timeline(name) if timeline is None else timeline
        rec = stack.enter_context(recording(cluster, timeline, impl, **recorder_kw)) \
            if record else None
        faults = stack.enter_context(fault_catalogue(cluster, timeline, impl))
        yield Lab(cluster, impl, timeline, faults, rec, impl.ready_at or time.monotonic())


