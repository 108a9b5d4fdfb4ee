"""Time-shaped faults: an inner fault flapping on a fixed grid (Flap), or
applied at an offset from an event on the timeline (Triggered).

Both schedule the inner fault with apply(at=T) / undo(at=T), so its setup
(socket, `nft` process, pid lookup) happens before T and the act lands on T.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from harness.faults.base import Fault, FaultCancelled, FaultError, Span
from harness.record import Event, Predicate, Timeline


class Flap(Fault):
    """Apply and undo an inner fault `count` times, one cycle every `period` s
    (applied for duty*period of it), in a background thread. Each cycle's
    apply/undo is marked by the inner fault; this one marks start and end.
    undo()/stop() ends it early and leaves the inner fault undone.
    """

    def __init__(self, inner: Fault, period: float, count: int, duty: float = 0.5,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline if timeline is not None else inner.timeline, inner.node)
        if inner.timeline is None:
            inner.timeline = self.timeline
        if not 0 < duty < 1 or period <= 0 or count < 1:
            raise FaultError("Flap needs period > 0, count >= 1 and 0 < duty < 1")
        self.inner, self.period, self.count, self.duty = inner, period, count, duty
        self.cycles = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def describe(self) -> str:
        return f"flap [{self.inner.describe()}] x{self.count} every {self.period:g} s"

    def params(self) -> dict[str, Any]:
        return {"inner": self.inner.id, "period": self.period, "count": self.count,
                "duty": self.duty}

    def _run(self, t0: float) -> None:
        """Each apply/undo is scheduled (apply(at=...)) on the cycle's grid, so
        setup time does not accumulate into the period."""
        try:
            for i in range(self.count):
                start = t0 + i * self.period
                if self._stop.is_set():
                    break
                self.inner.apply(at=start)
                self.inner.undo(at=start + self.duty * self.period)
                self.cycles += 1
        except FaultCancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - kept for wait()/undo()
            self.error = e
        finally:
            self.inner.abort.clear()
            with contextlib.suppress(Exception):
                self.inner.undo()
            self._done.set()

    def _apply(self) -> Span:
        self._stop.clear()
        self._done.clear()
        self.inner.abort.clear()
        t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(t0,), name="flap", daemon=True)
        self._thread.start()
        return t0, time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every cycle ran (True) or the timeout passed (False)."""
        if timeout is None:
            timeout = self.count * self.period + 10
        done = self._done.wait(timeout)
        if self.error is not None:
            raise FaultError(f"flapping failed: {self.error}") from self.error
        return done

    def _undo(self) -> Span:
        t0 = time.monotonic()
        self._stop.set()
        self.inner.abort.set()
        if self._thread is not None:
            self._thread.join(10)
        return t0, time.monotonic()

    stop = Fault.undo


class Triggered(Fault):
    """Apply `inner` when an event matching (kind, node, where, data) appears on
    the timeline, `offset` seconds after that event's time, to hit race
    windows reproducibly. apply() arms it (marks `fault.arm`); the inner fault
    marks its own apply, and `fault.trigger` records the triggering event and
    how late the apply was versus the target time (lag_ms).
    undo() disarms it and undoes the inner fault if it fired.
    """

    def __init__(self, inner: Fault, timeline: Timeline, kind: str | Iterable[str],
                 where: Predicate | None = None, node: Any = ..., offset: float = 0.0,
                 after: float | Event | None = None, timeout: float = 120.0,
                 **data: Any) -> None:
        super().__init__(timeline, inner.node)
        if inner.timeline is None:
            inner.timeline = timeline
        self.inner, self.kind_spec, self.where, self.match_node = inner, kind, where, node
        self.offset, self.after, self.timeout, self.data = offset, after, timeout, data
        self.trigger: Event | None = None
        self.fired = threading.Event()
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return f"on {self.kind_spec}{'+' if self.offset >= 0 else ''}{self.offset:g}s: " \
               f"{self.inner.describe()}"

    def params(self) -> dict[str, Any]:
        return {"inner": self.inner.id, "on": self.kind_spec, "offset": self.offset}

    def apply(self, at: float | None = None) -> Fault:
        """Arm (now; `at` is accepted for the Fault protocol and ignored)."""
        with self._lock:
            if self.applied:
                raise FaultError(f"{self.describe()}: already armed")
            self._cancel.clear()
            self.inner.abort.clear()
            after = self.after if self.after is not None else time.monotonic()
            self.applied = True
            self.apply_event = self._mark("fault.arm", None)
            self._thread = threading.Thread(target=self._run, args=(after,), daemon=True,
                                            name="trigger")
            self._thread.start()
            return self

    def _run(self, after: float | Event) -> None:
        assert self.timeline is not None
        try:
            ev = self.timeline.wait_for(self.kind_spec, node=self.match_node, after=after,
                                        where=self.where, timeout=self.timeout,
                                        cancel=self._cancel, **self.data)
        except AssertionError:
            return  # cancelled or timed out: nothing happened
        self.trigger = ev
        target = ev.t + self.offset
        try:
            self.inner.apply(at=target)  # prepared now, acting at the target time
        except FaultCancelled:
            return
        except BaseException as e:  # noqa: BLE001 - kept for wait_fired()
            self.error = e
            self.fired.set()
            return
        assert self.inner.t_applied is not None
        lag = (self.inner.t_applied[0] - target) * 1000
        self.timeline.mark("fault", "fault.trigger", self.node, t=self.inner.t_applied[0],
                           fault=type(self.inner).__name__, id=self.id, inner=self.inner.id,
                           trigger_seq=ev.seq, trigger_kind=ev.kind, trigger_t=ev.t,
                           offset=self.offset, lag_ms=round(lag, 3))
        self.fired.set()

    def wait_fired(self, timeout: float = 10.0) -> bool:
        ok = self.fired.wait(timeout)
        if self.error is not None:
            raise FaultError(f"triggered fault failed: {self.error}") from self.error
        return ok

    def undo(self, at: float | None = None) -> None:
        """Disarm, and undo the inner fault if it fired."""
        with self._lock:
            if not self.applied:
                return
            self._cancel.set()
            self.inner.abort.set()
            if self.timeline is not None:
                self.timeline.wake()
            if self._thread is not None:
                self._thread.join(10)
            self.inner.abort.clear()
            self.inner.undo()
            self.applied = False
            self.undo_event = self._mark("fault.disarm", None)
