"""Daemon faults: signals to a node's daemon (killed, hung), a stop or restart
through the backend, a hung monitor event script, and a failing takeip or
releaseip event script.

Signals go only to pids that are inside the node's namespace, checked before
apply, and re-checked by kernel start time before undo, so a reused pid is
never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

from harness import netns
from harness.faults.base import DaemonControl, Fault, FaultCancelled, FaultError, Span
from harness.record import Timeline
from harness.runs import proc_start_time


def _checked_pid(backend: DaemonControl, pnn: int) -> tuple[int, int]:
    """The daemon's pid and start time, after checking it runs inside node pnn."""
    pid = int(backend.daemon_pid(pnn))
    if pid <= 1 or pid == os.getpid():
        raise FaultError(f"refusing to signal pid {pid}")
    ns = backend.cluster.nodes[pnn].netns
    try:
        ino = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError as e:
        raise FaultError(f"node {pnn}: daemon pid {pid} is not running ({e})") from None
    if ino != netns.netns_ino(ns) or ino == netns.host_netns_ino():
        raise FaultError(f"pid {pid} is not inside {ns}; refusing to signal it")
    start = proc_start_time(pid)
    if start is None:
        raise FaultError(f"node {pnn}: daemon pid {pid} has exited")
    return pid, start


def process_state(pid: int) -> str | None:
    """One-letter state from /proc/PID/stat (R, S, T, Z...), None if gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()[0]


class SignalDaemon(Fault):
    """A signal to node pnn's daemon (by pid, checked to be inside the node).

    undo sends `undo_signal` to the same process (checked by start time), or
    restarts the node through the backend when `restart` is set.
    """

    def __init__(self, backend: DaemonControl, pnn: int, sig: int,
                 undo_signal: int | None = None, restart: bool = False, group: bool = False,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend, self.sig, self.undo_signal = backend, sig, undo_signal
        self.restart, self.group = restart, group
        self.pid: int | None = None
        self.start: int | None = None

    def describe(self) -> str:
        return f"node {self.node} daemon {signal.Signals(self.sig).name}"

    def params(self) -> dict[str, Any]:
        return {"pid": self.pid, "signal": signal.Signals(self.sig).name, "group": self.group}

    def _send(self, pid: int, sig: int) -> Span:
        if self.group:
            if os.getpgid(pid) != pid:
                raise FaultError(f"pid {pid} does not lead its process group; not signalling it")
            return self._timed(lambda: os.killpg(pid, sig))
        return self._timed(lambda: os.kill(pid, sig))

    def _apply(self) -> Span:
        assert self.node is not None
        self.pid, self.start = _checked_pid(self.backend, self.node)
        return self._send(self.pid, self.sig)

    def _undo(self) -> Span:
        assert self.node is not None and self.pid is not None
        if self.restart:
            return self._timed(lambda: self.backend.start_node(self.node or 0))
        if self.undo_signal is None:
            return self._timed(lambda: None)
        if proc_start_time(self.pid) != self.start:
            raise FaultError(f"daemon pid {self.pid} is gone; cannot send "
                             f"{signal.Signals(self.undo_signal).name}")
        return self._send(self.pid, self.undo_signal)


def kill_daemon(backend: DaemonControl, pnn: int, restart: bool = True,
                timeline: Timeline | None = None) -> SignalDaemon:
    """SIGKILL; undo restarts the node's daemon (restart=False: undo does nothing)."""
    return SignalDaemon(backend, pnn, signal.SIGKILL, restart=restart, timeline=timeline)


def hang_daemon(backend: DaemonControl, pnn: int, group: bool = False,
                timeline: Timeline | None = None) -> SignalDaemon:
    """SIGSTOP (a hung daemon, state T); undo is SIGCONT to the same process."""
    return SignalDaemon(backend, pnn, signal.SIGSTOP, undo_signal=signal.SIGCONT, group=group,
                        timeline=timeline)


class StopDaemon(Fault):
    """A graceful stop through the backend; undo starts it again."""

    def __init__(self, backend: DaemonControl, pnn: int,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend = backend

    def describe(self) -> str:
        return f"node {self.node} daemon stopped"

    def _apply(self) -> Span:
        return self._timed(lambda: self.backend.stop_node(self.node or 0))

    def _undo(self) -> Span:
        return self._timed(lambda: self.backend.start_node(self.node or 0))


class RestartDaemon(Fault):
    """Stop and start a node's daemon in one go (apply); undo has nothing to do.
    The mark's t is before the stop, t_after after the start; t_stopped between."""

    def __init__(self, backend: DaemonControl, pnn: int,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend = backend
        self.t_stopped: float | None = None

    def describe(self) -> str:
        return f"node {self.node} daemon restarted"

    def params(self) -> dict[str, Any]:
        return {"t_stopped": self.t_stopped}

    def _apply(self) -> Span:
        self._wait_at()
        t0 = time.monotonic()
        self.backend.stop_node(self.node or 0)
        self.t_stopped = time.monotonic()
        self.backend.start_node(self.node or 0)
        return t0, time.monotonic()

    def _undo(self) -> Span:
        return self._timed(lambda: None)


HANG_SCRIPT = """#!/bin/sh
# Written by the failover harness (run {run}): the monitor event hangs.
if [ "$1" = "monitor" ]; then
    echo "hang-monitor pid=$$ start=$(cut -d' ' -f22 /proc/$$/stat)" >> "${{0%/*}}/{trace}"
    exec sleep {seconds}
fi
exit 0
"""


class EventScriptFault(Fault):
    """A fault that is one executable event script in
    backend.event_script_dir(pnn), plus a trace file beside it that the script
    appends a line to on every invocation that misbehaves (ctdbd runs scripts
    in a mount namespace where the run's workdir is hidden, but its event
    directory is this one, bind-mounted). Appearing is one rename(); undo
    removes the script."""

    template = ""
    """The script, formatted with run, trace (the trace file's name) and params()."""

    def __init__(self, backend: DaemonControl, pnn: int, script: str, trace: str,
                 timeline: Timeline | None) -> None:
        super().__init__(timeline, pnn)
        self.backend = backend
        self.dir = Path(backend.event_script_dir(pnn))
        self.path = self.dir / script
        self.trace_path = self.dir / f".{trace}-{self.id}.trace"

    def _apply(self) -> Span:
        if self.path.exists():
            raise FaultError(f"{self.path} exists already")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{self.path.name}.tmp"
        tmp.write_text(self.template.format(run=self.backend.cluster.run_id,
                                            trace=self.trace_path.name, **self.params()))
        tmp.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        try:
            return self._timed(lambda: os.rename(tmp, self.path))
        except FaultCancelled:
            tmp.unlink(missing_ok=True)
            raise

    def trace(self) -> list[list[str]]:
        """The trace file's lines so far, split into words."""
        with contextlib.suppress(FileNotFoundError):
            return [line.split() for line in self.trace_path.read_text().splitlines()]
        return []

    def _undo(self) -> Span:
        return self._timed(lambda: self.path.unlink(missing_ok=True))


class HangMonitor(EventScriptFault):
    """An event script that sleeps on `monitor` (a hung monitor check).

    Each invocation traces `hang-monitor pid=N start=S` (follow trace_path
    with a LogSpec to see invocations on the timeline). undo removes the
    script and kills the sleeps still running, by those pids.
    """

    template = HANG_SCRIPT

    def __init__(self, backend: DaemonControl, pnn: int, seconds: int = 3600,
                 name: str = "99.hang.script", timeline: Timeline | None = None) -> None:
        super().__init__(backend, pnn, name, "hang-monitor", timeline)
        self.seconds = seconds

    def describe(self) -> str:
        return f"node {self.node} monitor hangs ({self.path.name})"

    def params(self) -> dict[str, Any]:
        return {"script": str(self.path), "seconds": self.seconds}

    def invocations(self) -> list[tuple[int, int]]:
        """(pid, start time) of every monitor run that hung so far."""
        out = []
        for words in self.trace():
            kv = dict(x.split("=", 1) for x in words[1:] if "=" in x)
            with contextlib.suppress(KeyError, ValueError):
                out.append((int(kv["pid"]), int(kv["start"])))
        return out

    def _undo(self) -> Span:
        span = super()._undo()
        for pid, start in self.invocations():
            if proc_start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return span


FAIL_SCRIPT = """#!/bin/sh
# Written by the failover harness (run {run}): the {event} event fails.
if [ "$1" = "{event}" ]; then
    read -r up _ < /proc/uptime
    echo "fail-{event} $2 $3 $up" >> "${{0%/*}}/{trace}"
    echo "fail-{event}: failing {event} of $3 on $2 (harness fault)"
    exit 1
fi
exit 0
"""

FAILABLE_EVENTS = ("takeip", "releaseip")
"""The events FailEvent can fail: the two a takeover run blames a node for."""


class FailEvent(EventScriptFault):
    """An event script that exits 1 on `takeip` or `releaseip`; a takeover run
    then fails on this node and the leader blames it (banning credits, as
    ctdb_takeover_helper assigns).

    The script is named 01.*, so on ctdbd it runs after 00.ctdb and before
    10.interface: a failed takeip never adds the address and a failed
    releaseip never removes it, which is what the native daemon does on a
    failed event too. Each invocation traces `fail-EVENT IFACE IP UPTIME`, so
    a test can time the first failing event.
    """

    template = FAIL_SCRIPT

    def __init__(self, backend: DaemonControl, pnn: int, event: str = "takeip",
                 timeline: Timeline | None = None) -> None:
        if event not in FAILABLE_EVENTS:
            raise FaultError(f"fail-event: cannot fail {event!r}; "
                             f"one of {', '.join(FAILABLE_EVENTS)}")
        super().__init__(backend, pnn, f"01.fail-{event}.script", f"fail-{event}", timeline)
        self.event = event

    def describe(self) -> str:
        return f"node {self.node} {self.event} event fails ({self.path.name})"

    def params(self) -> dict[str, Any]:
        return {"script": str(self.path), "event": self.event}

    def failures(self) -> list[tuple[float, str]]:
        """(time, IP) of every failed invocation so far. The time is the
        script's /proc/uptime (CLOCK_BOOTTIME, 10 ms steps), which is the
        timeline's monotonic clock on a machine that never suspends."""
        out = []
        for words in self.trace():
            with contextlib.suppress(IndexError, ValueError):
                out.append((float(words[3]), words[2]))
        return out
