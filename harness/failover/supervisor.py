"""Long-lived daemon tasks that an unexpected error cannot end.

A monitor loop or takeover loop that dies on an exception nobody foresaw
would leave the node looking alive while one of its jobs has silently
stopped (a leader that can no longer run takeovers keeps the cluster lock,
and no node fails over again). So each loop runs under `supervise`: the
error is logged once with its traceback, counted, the part that owns the
loop is told (`crashed`), and the loop starts afresh after RESTART_DELAY.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from harness.failover.log import log
from harness.failover.state import NodeState

RESTART_DELAY = 0.5

Loop = Callable[[], Coroutine[Any, Any, None]]


async def _run(state: NodeState, loop: Loop, name: str,
               crashed: Callable[[BaseException], None] | None) -> None:
    while not state.stopping.is_set():
        try:
            await loop()
            return
        except Exception as e:  # noqa: BLE001 - the point: no error ends the loop
            state.crashes[name] += 1
            log.error("internal error in %s (restart %d in %.1f s): %r", name,
                      state.crashes[name], RESTART_DELAY, e, exc_info=e)
            if crashed is not None:
                crashed(e)
        await asyncio.sleep(RESTART_DELAY)


def supervise(state: NodeState, loop: Loop, name: str,
              crashed: Callable[[BaseException], None] | None = None) -> asyncio.Task:
    """Run loop() as a daemon task, restarting it after any unexpected error."""
    return state.spawn(_run(state, loop, name, crashed), name)
