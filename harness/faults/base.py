"""What every fault is: apply()/undo() with timeline marks, scheduled acting,
and the errors a fault raises.

Marks: `fault.apply` / `fault.undo` events dated time.monotonic() just before
the acting syscall (netlink request, nft commit, kill(), rename()), with
`t_after` just after it, so the moment of the fault is known to within the
syscall's duration. `fault.error` marks a failed apply or undo.

Data of the marks: fault (class name), id (pairs apply with undo), desc,
t_after, dur_ms, and the fault's parameters. `node` is the target pnn (None
for faults on several nodes; then data["nodes"]).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.record import Event, Timeline

if TYPE_CHECKING:
    from harness.cluster import Cluster

_ids = itertools.count(1)

# (before, after): monotonic times around the syscall that made a fault happen.
Span = tuple[float, float]


class FaultError(RuntimeError):
    """A fault could not be applied or undone as asked."""


class FaultCancelled(FaultError):
    """A scheduled apply was called off (a triggered fault disarmed) before acting."""


class DaemonControl(Protocol):
    """What daemon faults need of a backend (harness.backends.base.Backend has it)."""

    cluster: Cluster

    def daemon_pid(self, pnn: int) -> int: ...
    def start_node(self, pnn: int) -> None: ...
    def stop_node(self, pnn: int) -> None: ...
    def event_script_dir(self, pnn: int) -> Path: ...


class Fault:
    """Base: apply()/undo() with timeline marks; subclasses implement _apply/_undo,
    each returning the (before, after) monotonic times of the acting syscall.

    apply(at=T) / undo(at=T) prepare first (open sockets, start `nft`, look up
    pids) and act at monotonic time T, so a scheduled fault (Triggered, Flap)
    lands on time instead of after its setup. Subclasses call self._wait_at()
    (or self._timed(fn)) just before they act.
    """

    def __init__(self, timeline: Timeline | None = None, node: int | None = None) -> None:
        self.timeline = timeline
        self.node = node
        self.id = f"f{next(_ids)}"
        self.applied = False
        self.apply_event: Event | None = None
        self.undo_event: Event | None = None
        self.t_applied: Span | None = None
        self.t_undone: Span | None = None
        self._lock = threading.RLock()
        self._at: float | None = None
        self.abort = threading.Event()  # set: a pending scheduled apply gives up

    # -- what subclasses provide ------------------------------------------------------
    def describe(self) -> str:
        """One line for humans: the timeline's `desc` and error messages."""
        return type(self).__name__

    def params(self) -> dict[str, Any]:
        """The fault's parameters, added to its marks' data."""
        return {}

    def _apply(self) -> Span:
        raise NotImplementedError

    def _undo(self) -> Span:
        raise NotImplementedError

    def _wait_at(self) -> None:
        """Wait until the scheduled time, if any (interruptible through `abort`)."""
        if self._at is not None:
            delay = self._at - time.monotonic()
            if (delay > 0 and self.abort.wait(delay)) or self.abort.is_set():
                raise FaultCancelled(f"{self.describe()}: cancelled before acting")

    def _timed(self, fn: Callable[[], Any]) -> Span:
        """Wait for the scheduled time, then time fn() (the acting call)."""
        self._wait_at()
        t0 = time.monotonic()
        fn()
        return t0, time.monotonic()

    # -- the public protocol ---------------------------------------------------------
    def apply(self, at: float | None = None) -> Fault:
        """Apply now, or at monotonic time `at` (prepared beforehand); mark it."""
        with self._lock:
            if self.applied:
                raise FaultError(f"{self.describe()}: already applied")
            self._at = at
            try:
                span = self._apply()
            except FaultCancelled:
                raise
            except BaseException as e:
                self._mark("fault.error", None, phase="apply", error=f"{type(e).__name__}: {e}")
                raise
            finally:
                self._at = None
            self.applied = True
            self.t_applied = span
            self.apply_event = self._mark("fault.apply", span)
            return self

    def undo(self, at: float | None = None) -> None:
        """Undo if applied (a no-op otherwise, so teardown can always call it)."""
        with self._lock:
            if not self.applied:
                return
            self._at = at
            try:
                span = self._undo()
            except FaultCancelled:
                raise
            except BaseException as e:
                self._mark("fault.error", None, phase="undo", error=f"{type(e).__name__}: {e}")
                raise
            finally:
                self._at = None
            self.applied = False
            self.t_undone = span
            self.undo_event = self._mark("fault.undo", span)

    def __enter__(self) -> Fault:
        return self.apply()

    def __exit__(self, *exc: object) -> None:
        self.undo()

    def _mark(self, kind: str, span: Span | None, **extra: Any) -> Event | None:
        if self.timeline is None:
            return None
        t = time.monotonic() if span is None else span[0]
        data: dict[str, Any] = {"fault": type(self).__name__, "id": self.id,
                                "desc": self.describe()}
        if span is not None:
            data["t_after"] = span[1]
            data["dur_ms"] = round((span[1] - span[0]) * 1000, 3)
        data.update(self.params())
        data.update(extra)
        return self.timeline.mark("fault", kind, self.node, t=t, **data)

    def __repr__(self) -> str:
        return f"<{self.describe()} {self.id}{' applied' if self.applied else ''}>"


__all__ = ["DaemonControl", "Fault", "FaultCancelled", "FaultError", "Span"]
