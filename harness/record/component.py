"""What every recorder shares: a stoppable thread that counts its own work.

Each recorder (netlink listener, status poller, log follower, client prober)
is a thread that owns its sockets or files and ends when its stop flag is
set. They measure their own CPU, so the overhead of recording is known per
test. A recorder that fails says so on the timeline instead of raising: the
test goes on, and the Recorder refuses to start when one failed to get going.

A check that reads a timeline cannot tell "nothing happened" from "nobody
was looking". So each recorder also beats once per pass of its loop and
knows how long a pass may take (`beat_bound`); one that died, never beat, or
fell silent for longer than its bound plus HEARTBEAT_SLACK is named by
heartbeat_problem(), and the Recorder turns that into a RecorderError at the
end: a test whose recorders were not watching fails instead of passing.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

from harness.record.events import Event, Timeline
from harness.wait import time_scale

HEARTBEAT_SLACK = 2.0
"""Seconds (times the VM's time scale) a pass may overrun its bound: a thread
on a loaded 2-core machine waits for the GIL and the scheduler."""


@dataclass
class RecorderStats:
    """What one recorder thread did: events emitted, CPU it used, overruns."""

    name: str
    events: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    messages: int = 0
    overruns: int = 0
    errors: list[str] = field(default_factory=list)
    beats: int = 0
    max_gap_s: float = 0.0  # longest silence between two beats


class RecorderThread:
    """A recorder's thread: start, readiness, stop, and accounting.

    Subclasses implement run(), set `ready` once they hold their initial
    state, and leave when `stop_flag` is set. The flag may be shared by many
    recorders (the Recorder stops them all at once) or be the recorder's own
    (the default). A recorder that blocks in select() asks for a wake pipe
    (`wake_pipe=True`) and watches `wake_fd`, so stop() does not wait out its
    select timeout.
    """

    beat_bound: float = 1.0
    """Longest a pass of run()'s loop may take here (host seconds); subclasses set it."""

    def __init__(self, name: str, timeline: Timeline, stop: threading.Event | None = None, *,
                 wake_pipe: bool = False) -> None:
        self.name = name
        self.last_beat: float | None = None
        self.ended_at: float | None = None
        self.timeline = timeline
        self.stop_flag = stop if stop is not None else threading.Event()
        self.stats = RecorderStats(name)
        self.ready = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._wants_wake_pipe = wake_pipe
        # (read, write); opened by start(), closed when the thread ends. Guarded by a
        # lock so a late wake() never writes to a descriptor number already reused.
        self._wake_fds: tuple[int, int] | None = None
        self._wake_lock = threading.Lock()

    # -- what subclasses use ---------------------------------------------------------
    def run(self) -> None:
        raise NotImplementedError

    def emit(self, source: str, kind: str, node: int | None, t: float, **data: Any) -> Event:
        """Record an event dated `t` and count it as this recorder's."""
        self.stats.events += 1
        return self.timeline.add(Event(t, source, kind, node, data))

    def beat(self) -> None:
        """One pass of the loop done: the recorder is alive and looking."""
        now = time.monotonic()
        if self.last_beat is not None:
            self.stats.max_gap_s = max(self.stats.max_gap_s, now - self.last_beat)
        self.last_beat = now
        self.stats.beats += 1

    def heartbeat_problem(self, until: float | None = None) -> str | None:
        """None if the recorder looked all along (up to `until`, or its end), else why not."""
        if self.error is not None:
            return f"{self.name} died: {type(self.error).__name__}: {self.error}"
        if self.thread is None:
            return None
        if self.last_beat is None:
            return f"{self.name} never beat"
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        end = min(end, until) if until is not None else end
        gap = max(self.stats.max_gap_s, end - self.last_beat)
        bound = self.beat_bound + HEARTBEAT_SLACK * time_scale()
        if gap > bound:
            return f"{self.name} missed its heartbeat: silent for {gap:.2f} s (bound {bound:.2f} s)"
        return None

    @property
    def wake_fd(self) -> int:
        """Readable once wake() was called (only while the thread runs)."""
        assert self._wake_fds is not None, f"{self.name} has no wake pipe"
        return self._wake_fds[0]

    @contextlib.contextmanager
    def counting_cpu(self) -> Iterator[None]:
        """Add the CPU the calling thread spends in the block to stats.cpu_s.

        Used around the work itself, not in start(): a recorder that enters a
        namespace works in the thread netns.in_netns starts, not in `thread`.
        """
        t0 = time.thread_time()
        try:
            yield
        finally:
            self.stats.cpu_s += time.thread_time() - t0

    def report_error(self, e: BaseException) -> None:
        """Put the error that ended run() on the timeline."""
        self.timeline.mark("recorder", "recorder.error", None, component=self.name,
                           error=f"{type(e).__name__}: {e}")

    # -- control --------------------------------------------------------------------------
    def start(self) -> Self:
        if self._wants_wake_pipe:
            self._wake_fds = os.pipe()
        self.thread = threading.Thread(target=self._main, name=f"rec-{self.name}", daemon=True)
        self.thread.start()
        return self

    def _main(self) -> None:
        w0 = time.monotonic()
        try:
            self.run()
        except BaseException as e:  # noqa: BLE001 - recorded, the test goes on
            self.error = e
            self.stats.errors.append(f"{type(e).__name__}: {e}")
            self.report_error(e)
        finally:
            self.ended_at = time.monotonic()
            self.stats.wall_s = self.ended_at - w0
            with self._wake_lock:
                fds, self._wake_fds = self._wake_fds, None
            for fd in fds or ():
                os.close(fd)
            self.ready.set()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        return self.ready.wait(timeout)

    def wake(self) -> None:
        """Interrupt a blocking wait so the thread sees the stop flag."""
        with self._wake_lock:
            if self._wake_fds is not None:
                with contextlib.suppress(OSError):
                    os.write(self._wake_fds[1], b"x")

    def stop(self, timeout: float = 5.0) -> None:
        """Set the stop flag (every recorder sharing it stops too), wake, join."""
        self.stop_flag.set()
        self.wake()
        self.join(timeout)

    def join(self, timeout: float | None = 5.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()
