"""Waiting with monotonic deadlines (tenacity), returning *when* it happened.

Tests measure timing, so a wait reports the monotonic time at which its
condition was first seen true; the poll period bounds the error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

T = TypeVar("T")
SCALE_ENV = "HARNESS_TIME_SCALE"


def time_scale() -> float:
    """Slowdown factor the VM runner measured under emulation (1 on bare metal):
    every timing bound and start-up deadline is multiplied by it, and says so."""
    try:
        return max(1.0, float(os.environ.get(SCALE_ENV, "1")))
    except ValueError:
        return 1.0


class WaitTimeout(AssertionError):
    """A condition did not become true by its deadline."""


class _NotYet(Exception):
    pass


def wait_until(cond: Callable[[], T], timeout: float, what: str,
               period: float = 0.05) -> tuple[float, T]:
    """Poll cond() until truthy; return (monotonic time seen, value).

    Exceptions from cond count as "not yet" only if they are OSError or
    ValueError (a daemon still starting); others propagate.
    """
    last: list[str] = []

    @retry(stop=stop_after_delay(timeout), wait=wait_fixed(period),
           retry=retry_if_exception_type((_NotYet, OSError, ValueError, RuntimeError)))
    def attempt() -> tuple[float, T]:
        try:
            value = cond()
        except (OSError, ValueError, RuntimeError) as e:
            last[:] = [f"{type(e).__name__}: {e}"]
            raise
        if not value:
            last[:] = [f"last value {value!r}"]
            raise _NotYet
        return time.monotonic(), value

    try:
        return attempt()
    except RetryError:
        detail = f" ({last[0]})" if last else ""
        raise WaitTimeout(f"{what}: not within {timeout:.2f} s{detail}") from None


async def wait_until_async(cond: Callable[[], T], timeout: float, what: str,
                           period: float = 0.02) -> tuple[float, T]:
    """wait_until for a test that runs the code under test in its own event
    loop: the polls yield to that loop (asyncio.sleep), so its tasks go on
    meanwhile. Returns (monotonic time seen, value); WaitTimeout if not."""
    try:
        async for attempt in AsyncRetrying(stop=stop_after_delay(timeout),
                                           wait=wait_fixed(period),
                                           retry=retry_if_exception_type(_NotYet)):
            with attempt:
                value = cond()
                if not value:
                    raise _NotYet
                return time.monotonic(), value
    except RetryError:
        pass
    raise WaitTimeout(f"{what}: not within {timeout:.2f} s")
