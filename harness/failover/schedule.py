"""CTDB's monitor timing (ctdb/server/ctdb_monitor.c, 4.17) as a pure state machine.

Failure-detection latency is set by this schedule, not by the check itself,
so the native daemon reproduces it exactly and tests can predict run times
without sleeping.  The rules, from the source:

* A node starts UNHEALTHY.  When the "startup" event succeeds the interval
  is set to 2 and the first monitor is armed 2 s later.
* After every monitor run the timer is armed with the current interval,
  then the interval doubles, capped at MonitorInterval.  The timer is armed
  when the run *finishes*, so the real period is interval + run time.
* When the health flag flips (either way) the interval is first reset to 5.
  Because the node starts UNHEALTHY, a healthy node's first OK run is such a
  flip: gaps are 2, 5, 10, 15, 15 ...; a node that stays unhealthy from the
  start sees 2, 2, 4, 8, 15 ...
* A timeout counts as OK (no flag change) until MonitorTimeoutCount
  consecutive ones; from then on it is a failure.  Any finished run that is
  not a timeout resets the count; a cancelled run leaves it alone.
* A cancelled run changes nothing but still re-arms and doubles.
* While in recovery, inactive or not RUNNING the run is skipped: re-armed
  with the current interval, no doubling.
* If the event cannot be launched the interval becomes 5 and the timer is
  armed 5 s later, without doubling.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

STARTUP_INTERVAL = 2
CHANGE_INTERVAL = 5


class MonitorStatus(enum.Enum):
    """How a monitor event ended."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class Health(enum.Enum):
    """What one run says about health; UNCHANGED when it says nothing."""

    OK = "ok"
    UNHEALTHY = "unhealthy"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Decision:
    """Result of feeding one monitor outcome to the schedule.

    ``changed`` means the node's UNHEALTHY flag flipped, which is when CTDB
    pushes its flags and asks for a takeover run.  ``messages`` are the lines
    ctdbd logs for the outcome, so a native daemon's log reads like CTDB's.
    """

    health: Health
    changed: bool
    next_delay: float
    healthy: bool
    messages: tuple[str, ...] = ()


class MonitorSchedule:
    """Interval and health bookkeeping of one node's monitor loop."""

    def __init__(
        self,
        monitor_interval: int = 15,
        timeout_count: int = 20,
        *,
        healthy: bool = False,
    ) -> None:
        self.monitor_interval = monitor_interval
        self.timeout_count = timeout_count
        self.healthy = healthy  # CTDB starts every node UNHEALTHY
        self.next_interval = CHANGE_INTERVAL
        self.timeouts = 0

    def first_delay(self) -> float:
        """Delay from a successful "startup" event to the first monitor run."""
        self.next_interval = STARTUP_INTERVAL
        return float(self.next_interval)

    def on_result(self, status: MonitorStatus) -> Decision:
        """Account for a finished monitor run and say when to run the next."""
        health, first = self._judge(status)
        messages = [first] if first else []
        changed = False
        if health is Health.UNHEALTHY and self.healthy:
            self.healthy, changed = False, True
            messages.append("monitor event failed - disabling node")
        elif health is Health.OK and not self.healthy:
            self.healthy, changed = True, True
            messages.append("monitor event OK - node re-enabled")
        if changed:
            self.next_interval = CHANGE_INTERVAL

        delay = self.next_interval
        self.next_interval = min(self.next_interval * 2, self.monitor_interval)
        if changed:
            state = "HEALTHY" if self.healthy else "UNHEALTHY"
            messages.append(f"Node became {state}. Ask recovery master to reallocate IPs")
        return Decision(health, changed, float(delay), self.healthy, tuple(messages))

    def _judge(self, status: MonitorStatus) -> tuple[Health, str | None]:
        if status is MonitorStatus.CANCELLED:
            return Health.UNCHANGED, "Monitoring event was cancelled"
        if status is MonitorStatus.TIMEOUT:
            self.timeouts += 1
            if self.timeouts < self.timeout_count:
                return Health.UNCHANGED, None  # pretend it was OK
            return Health.UNHEALTHY, (
                f"Maximum monitor timeout count {self.timeout_count} reached. Making node unhealthy"
            )
        self.timeouts = 0
        if status is MonitorStatus.OK:
            return Health.OK, None
        return Health.UNHEALTHY, None

    def on_skipped(self) -> float:
        """Monitoring skipped (recovery, inactive, not running): re-arm as is."""
        return float(self.next_interval)

    def on_launch_failed(self) -> float:
        """The monitor event could not be started: retry in 5 s."""
        self.next_interval = CHANGE_INTERVAL
        return float(CHANGE_INTERVAL)


def simulate(
    schedule: MonitorSchedule,
    outcomes: Iterable[MonitorStatus | tuple[MonitorStatus, float]],
    *,
    start: float = 0.0,
) -> list[tuple[float, Decision]]:
    """Replay outcomes on a virtual clock; return (run start time, decision).

    ``start`` is when the startup event succeeded.  An outcome may carry the
    run's duration, which delays every later run because the timer is armed
    only when a run has finished.
    """
    now = start + schedule.first_delay()
    runs: list[tuple[float, Decision]] = []
    for outcome in outcomes:
        status, duration = outcome if isinstance(outcome, tuple) else (outcome, 0.0)
        decision = schedule.on_result(status)
        runs.append((now, decision))
        now += duration + decision.next_delay
    return runs
