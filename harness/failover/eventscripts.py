"""Run a directory of CTDB-style event scripts for one event.

The native daemon keeps CTDB's extension point: site hooks are executables
named ``NN.name`` run in name order with the event and its arguments, as
ctdb-eventd runs events/legacy/ (ctdb/common/run_event.c, 4.17):

* only names of two digits, a dot and a name count (4.17 also wants a
  ``.script`` suffix; such names match too, and the suffix is dropped from
  the name used in the log, as CTDB does); editor backups ending in ``~``
  are ignored;
* a script without the owner's execute bit is disabled: skipped, not failed;
* the first failing script ends the event and decides its result;
* the timeout (EventScriptTimeout) is one deadline for the whole event; a
  script still running then has its process group killed and the event
  reports TIMEOUT;
* stdout and stderr are captured together, for the log.

When a script exits, what it wrote so far is collected and the event moves
on; like CTDB we do not wait for background children that keep the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Events the native daemon raises, with their argument counts.
EVENT_ARGS: dict[str, int] = {
    "init": 0,
    "setup": 0,
    "startup": 0,
    "monitor": 0,
    "startrecovery": 0,
    "recovered": 0,
    "takeip": 3,  # IFACE IP BITS
    "releaseip": 3,  # IFACE IP BITS
    "updateip": 4,  # OLDIFACE NEWIFACE IP BITS
    "ipreallocated": 0,
    "shutdown": 0,
}

# Return code reported when a script cannot be executed at all (as a shell does).
EXEC_FAILED = 126

_SCRIPT_NAME = re.compile(r"[0-9]{2}\..+")
_READ_SIZE = 65536
_POLL = 0.05
_REAP_GRACE = 5.0


class EventStatus(enum.Enum):
    """Overall outcome of an event."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"


class ScriptStatus(enum.Enum):
    """Outcome of one script."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ScriptRun:
    """One script's part in an event; ``returncode`` is negative for a signal."""

    name: str
    status: ScriptStatus
    returncode: int | None = None
    output: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class EventResult:
    """Result of an event.

    ``script`` and ``output`` name the script that failed or timed out, the
    one an operator needs; ``scripts`` keeps every script's part, in order.
    """

    event: str
    args: tuple[str, ...]
    status: EventStatus
    returncode: int | None = None
    script: str | None = None
    output: str = ""
    scripts: tuple[ScriptRun, ...] = ()
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is EventStatus.OK

    def describe(self) -> str:
        """Short form for logs: ``OK``, ``FAILED(rc)`` or ``TIMEOUT``."""
        if self.status is EventStatus.FAILED:
            return f"FAILED({self.returncode})"
        return self.status.name

    def log_lines(self) -> list[str]:
        """Every output line prefixed with its script's name, as ctdbd logs it."""
        return [
            f"{run.name}: {line}"
            for run in self.scripts
            for line in run.output.splitlines()
            if line
        ]


def list_scripts(directory: Path) -> list[tuple[str, Path, bool]]:
    """Return (log name, path, enabled) for each event script, in run order."""
    found: list[tuple[str, Path, bool]] = []
    for entry in sorted(os.listdir(directory)):
        if not _SCRIPT_NAME.fullmatch(entry) or entry.endswith("~"):
            continue
        path = Path(directory) / entry
        try:
            st = path.stat()
        except OSError:  # dangling symlink or just removed: not executable
            enabled = False
        else:
            enabled = stat.S_ISREG(st.st_mode) and bool(st.st_mode & stat.S_IXUSR)
        stem = entry.removesuffix(".script")
        found.append((stem if _SCRIPT_NAME.fullmatch(stem) else entry, path, enabled))
    return found


def _check_args(event: str, args: Sequence[str]) -> None:
    if event not in EVENT_ARGS:
        raise ValueError(f"unknown event {event!r}")
    if len(args) != EVENT_ARGS[event]:
        raise ValueError(f"event {event!r} takes {EVENT_ARGS[event]} arguments, got {len(args)}")


async def _wait_exit(proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
    """Wait until the process exits (without reaping it); False on deadline.

    Exit is watched through a pidfd, because waiting on asyncio's process
    object would also wait for every holder of the output pipe.
    """
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        if pidfd >= 0:
            exited: asyncio.Future[None] = loop.create_future()

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(pidfd, on_exit)
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                await asyncio.wait_for(exited, timeout)
                return True
            except TimeoutError:
                return False
            finally:
                loop.remove_reader(pidfd)
        while proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _drain(fd: int, chunks: list[bytes]) -> None:
    """Read whatever is buffered in the pipe now, without blocking."""
    with contextlib.suppress(BlockingIOError, OSError):
        while data := os.read(fd, _READ_SIZE):
            chunks.append(data)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _kill_and_reap(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the script's process group and collect the script's status."""
    _kill_group(proc.pid)
    await _wait_exit(proc, time.monotonic() + _REAP_GRACE)
    proc.wait()


async def _run_script(
    name: str,
    path: Path,
    argv: Sequence[str],
    deadline: float | None,
    env: Mapping[str, str] | None,
) -> ScriptRun:
    """Run one script in its own process group, killing the group on deadline."""
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        proc = subprocess.Popen(
            [str(path), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            env=None if env is None else dict(env),
        )
    except OSError as exc:  # e.g. no "#!" line: a broken script fails the event
        return ScriptRun(name, ScriptStatus.FAILED, EXEC_FAILED, f"cannot execute: {exc}\n")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []

    def readable() -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            chunks.append(data)
        else:
            loop.remove_reader(fd)

    loop.add_reader(fd, readable)
    timed_out = False
    try:
        if await _wait_exit(proc, deadline):
            proc.wait()  # already exited: only reaps
        else:
            timed_out = True
            await _kill_and_reap(proc)
    except asyncio.CancelledError:
        # The caller gave up (e.g. a monitor pre-empted): leave nothing behind.
        await _kill_and_reap(proc)
        raise
    finally:
        loop.remove_reader(fd)
        _drain(fd, chunks)
        proc.stdout.close()

    output = b"".join(chunks).decode(errors="replace")
    duration = time.monotonic() - started
    if timed_out:
        return ScriptRun(name, ScriptStatus.TIMEOUT, None, output, duration)
    rc = proc.returncode
    status = ScriptStatus.OK if rc == 0 else ScriptStatus.FAILED
    return ScriptRun(name, status, rc, output, duration)


async def run_event(
    directory: Path,
    event: str,
    args: Sequence[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    only: Callable[[str], bool] | None = None,
) -> EventResult:
    """Run ``event`` with ``args`` through every enabled script in ``directory``.

    ``timeout`` is the whole event's budget in seconds; 0 or less means no
    limit (as EventScriptTimeout=0).  An empty directory is a success.
    ``only`` selects scripts by log name (the daemon runs takeip in two
    parts around adding the address, as 10.interface sits among them).
    """
    _check_args(event, args)
    argv = (event, *args)
    started = time.monotonic()
    deadline = started + timeout if timeout > 0 else None
    runs: list[ScriptRun] = []

    for name, path, enabled in list_scripts(Path(directory)):
        if only is not None and not only(name):
            continue
        if not enabled:
            runs.append(ScriptRun(name, ScriptStatus.DISABLED))
            continue
        run = await _run_script(name, path, argv, deadline, env)
        runs.append(run)
        if run.status is not ScriptStatus.OK:
            status = (
                EventStatus.TIMEOUT if run.status is ScriptStatus.TIMEOUT else EventStatus.FAILED
            )
            return EventResult(
                event=event,
                args=tuple(args),
                status=status,
                returncode=run.returncode,
                script=run.name,
                output=run.output,
                scripts=tuple(runs),
                duration=time.monotonic() - started,
            )

    return EventResult(
        event=event,
        args=tuple(args),
        status=EventStatus.OK,
        scripts=tuple(runs),
        duration=time.monotonic() - started,
    )
