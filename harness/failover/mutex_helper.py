"""The cluster lock as ctdbd takes it: through a cluster mutex helper
(ctdb/doc/cluster_mutex_helper.txt), so failoverd and ctdbd run the very
same helpers (ctdb_mutex_fcntl_helper FILE, ctdb_etcd_lock) the same way.

A helper is started, writes one status character ('0' taken and held, '1'
contention, '2' timeout, '3' error), holds the mutex until SIGTERM, and its
exit means the mutex is lost. ctdbd ignores the exit code, reads only the
first character, and treats a helper that exits before writing one as an
error ('3'); so does this module.

The lock setting reads like ctdb.conf's `cluster lock`: a path means the
fcntl helper on that file; `!CMD ARGS` runs CMD with ARGS (split like a
shell would, without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shlex
import signal
from collections.abc import Callable, Mapping

from harness.ctdb.cluster_lock import FCNTL_HELPER

TAKEN, CONTENTION, TIMEOUT, ERROR = "0", "1", "2", "3"
# How long a helper may take to answer; past it the attempt counts as a
# timeout ('2') and the helper is stopped. ctdb_etcd_lock needs ~1-2 s here
# (a Python start, testparm, `ctdb pnn`, two HTTP requests) and up to
# ~4 x read_timeout against an unreachable etcd.
TAKE_TIMEOUT = 15.0


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the helper before exec: SIGTERM when failoverd dies. ctdbd's helpers
    notice a dead parent only at their next check (up to 5 s for the fcntl
    helper, lock_refresh for ctdb_etcd_lock), which would hold the lock of a
    killed leader that long; failoverd's go at once, as its in-process fcntl
    lock did before, so the kill-the-leader bounds stay what they were."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def helper_argv(setting: str) -> list[str]:
    """ctdb.conf's `cluster lock` value as the helper's argv."""
    if setting.startswith("!"):
        argv = shlex.split(setting[1:])
        if not argv:
            raise ValueError(f"cluster lock {setting!r}: no command after '!'")
        return argv
    return [FCNTL_HELPER, setting]


class MutexHelper:
    """One node's hold on the cluster lock, through a helper process."""

    def __init__(self, setting: str | None, env: Mapping[str, str] | None = None,
                 take_timeout: float = TAKE_TIMEOUT,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.on_lost = on_lost  # called (in the loop) when a held helper exits
        self.argv = helper_argv(setting) if setting is not None else None
        self.env = dict(env) if env is not None else None
        self.take_timeout = take_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.watch: asyncio.Task[None] | None = None
        self.dying: list[asyncio.subprocess.Process] = []  # signalled, not yet reaped
        self.lost = asyncio.Event()  # set when a held helper exits
        self.last_status: str | None = None

    @property
    def held(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self.lost.is_set()

    async def take(self) -> str:
        """Start the helper and return its status character; '0' means held
        (until release() or the helper's exit, which sets `lost`)."""
        if self.argv is None:
            return ERROR
        if self.held:
            return TAKEN
        await self.release()
        self.lost = asyncio.Event()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=None, env=self.env, preexec_fn=_die_with_parent)
        except OSError:
            self.last_status = ERROR
            return ERROR
        self.proc = proc
        assert proc.stdout is not None
        try:
            first = await asyncio.wait_for(proc.stdout.read(1), self.take_timeout)
        except TimeoutError:
            first = TIMEOUT.encode()
        status = first.decode(errors="replace") if first else ERROR
        self.last_status = status
        if status != TAKEN:
            await self.release()
            return status
        self.watch = asyncio.create_task(self._watch(proc))
        return TAKEN

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Drain what the helper writes (ctdb_etcd_lock writes '0' on every
        refresh) until it exits: then the mutex is lost."""
        assert proc.stdout is not None
        while await proc.stdout.read(4096):
            pass
        await proc.wait()
        if self.proc is proc:
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost()

    async def release(self) -> None:
        """SIGTERM the helper (it releases the mutex) and reap it, and any
        helper drop() signalled before."""
        self._stop()
        dying, self.dying = self.dying, []
        for proc in dying:
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    def drop(self) -> None:
        """Signal the helper to release, without waiting (for synchronous
        callers and shutdown); a later release() reaps it."""
        self._stop()

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
        if proc is not None:
            self.dying.append(proc)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
