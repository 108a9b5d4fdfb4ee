"""MonitorSchedule reproduces ctdb_monitor.c's run times on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.failover.schedule import (
    Decision,
    Health,
    MonitorSchedule,
    MonitorStatus,
    simulate,
)

OK = MonitorStatus.OK
FAILED = MonitorStatus.FAILED
TIMEOUT = MonitorStatus.TIMEOUT
CANCELLED = MonitorStatus.CANCELLED


@dataclass
class FakeDaemon:
    """Drives a schedule like ctdbd's timer loop; records when runs happen."""

    schedule: MonitorSchedule
    now: float = 0.0
    runs: list[float] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def startup_ok(self) -> None:
        self.now += self.schedule.first_delay()

    def run(self, status: MonitorStatus, duration: float = 0.0) -> Decision:
        self.runs.append(self.now)
        self.now += duration  # the timer is armed only when the run finishes
        decision = self.schedule.on_result(status)
        self.decisions.append(decision)
        self.now += decision.next_delay
        return decision

    def skip(self) -> None:
        self.now += self.schedule.on_skipped()


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def run_times(schedule: MonitorSchedule, outcomes: list) -> list[float]:
    return [t for t, _ in simulate(schedule, outcomes)]


def test_healthy_startup_first_ok_is_a_change() -> None:
    # Nodes start UNHEALTHY, so the first OK flips the flag and resets to 5.
    times = run_times(MonitorSchedule(), [OK] * 6)
    assert times == [2, 7, 17, 32, 47, 62]
    assert gaps([0.0, *times]) == [2, 5, 10, 15, 15, 15]


def test_first_decision_reports_node_re_enabled() -> None:
    schedule = MonitorSchedule()
    schedule.first_delay()
    decision = schedule.on_result(OK)
    assert decision == Decision(
        health=Health.OK,
        changed=True,
        next_delay=5.0,
        healthy=True,
        messages=(
            "monitor event OK - node re-enabled",
            "Node became HEALTHY. Ask recovery master to reallocate IPs",
        ),
    )


def test_node_unhealthy_from_the_start_doubles_from_two() -> None:
    times = run_times(MonitorSchedule(), [FAILED] * 7)
    assert gaps([0.0, *times]) == [2, 2, 4, 8, 15, 15, 15]


def test_node_that_starts_healthy_gets_the_notes_sequence() -> None:
    times = run_times(MonitorSchedule(healthy=True), [OK] * 6)
    assert gaps([0.0, *times]) == [2, 2, 4, 8, 15, 15]


def test_failure_in_steady_state_resets_to_five() -> None:
    daemon = FakeDaemon(MonitorSchedule())
    daemon.startup_ok()
    for _ in range(5):
        daemon.run(OK)
    assert gaps(daemon.runs[-2:]) == [15]
    decision = daemon.run(FAILED)
    assert decision.changed and decision.health is Health.UNHEALTHY and not decision.healthy
    assert decision.messages == (
        "monitor event failed - disabling node",
        "Node became UNHEALTHY. Ask recovery master to reallocate IPs",
    )
    for _ in range(4):
        d = daemon.run(FAILED)
        assert not d.changed and d.health is Health.UNHEALTHY
    assert gaps(daemon.runs[-5:]) == [5, 10, 15, 15]
    daemon.run(OK)  # recovery resets again
    daemon.run(OK)
    daemon.run(OK)
    assert gaps(daemon.runs[-3:]) == [5, 10]


def test_run_time_adds_to_every_gap() -> None:
    schedule = MonitorSchedule()
    runs = simulate(schedule, [(OK, 1.5)] * 5, start=100.0)
    assert [t for t, _ in runs] == [102, 108.5, 120, 136.5, 153]


def test_monitor_interval_caps_the_doubling() -> None:
    times = run_times(MonitorSchedule(monitor_interval=6), [OK] * 5)
    assert gaps([0.0, *times]) == [2, 5, 6, 6, 6]
    times = run_times(MonitorSchedule(monitor_interval=60), [OK] * 6)
    assert gaps([0.0, *times]) == [2, 5, 10, 20, 40, 60]


def test_seed_detection_latency_is_bounded_by_the_interval() -> None:
    # Steady state runs every 15 s; a fault at any moment is seen by the next run.
    schedule = MonitorSchedule()
    times = run_times(schedule, [OK] * 10)
    steady = [t for t in times if t >= 32]
    for fault in (32.0, 33.0, 40.0, 46.9):
        detect = min(t for t in steady if t >= fault)
        assert 0 <= detect - fault <= 15


def test_timeouts_count_as_ok_until_the_limit() -> None:
    daemon = FakeDaemon(MonitorSchedule(timeout_count=3))
    daemon.startup_ok()
    daemon.run(OK)
    d1 = daemon.run(TIMEOUT)
    d2 = daemon.run(TIMEOUT)
    assert (d1.health, d1.changed, d2.health, d2.changed) == (
        Health.UNCHANGED,
        False,
        Health.UNCHANGED,
        False,
    )
    assert daemon.schedule.healthy
    d3 = daemon.run(TIMEOUT)
    assert d3.health is Health.UNHEALTHY and d3.changed and d3.next_delay == 5
    assert d3.messages[0] == "Maximum monitor timeout count 3 reached. Making node unhealthy"
    d4 = daemon.run(TIMEOUT)  # still over the limit: a failure, but no new change
    assert d4.health is Health.UNHEALTHY and not d4.changed
    d5 = daemon.run(OK)
    assert d5.changed and d5.healthy and daemon.schedule.timeouts == 0


def test_default_limit_is_twenty_consecutive_timeouts() -> None:
    schedule = MonitorSchedule(healthy=True)
    schedule.first_delay()
    decisions = [schedule.on_result(TIMEOUT) for _ in range(20)]
    assert all(d.health is Health.UNCHANGED for d in decisions[:19])
    assert decisions[19].health is Health.UNHEALTHY and decisions[19].changed


def test_any_finished_run_resets_the_timeout_count_but_cancel_does_not() -> None:
    schedule = MonitorSchedule(timeout_count=2, healthy=True)
    schedule.first_delay()
    schedule.on_result(TIMEOUT)
    schedule.on_result(CANCELLED)
    assert schedule.timeouts == 1
    assert schedule.on_result(TIMEOUT).health is Health.UNHEALTHY

    schedule = MonitorSchedule(timeout_count=2, healthy=True)
    schedule.first_delay()
    schedule.on_result(TIMEOUT)
    schedule.on_result(FAILED)  # not a timeout: resets the count
    assert schedule.timeouts == 0


def test_timeout_does_not_make_an_unhealthy_node_healthy() -> None:
    schedule = MonitorSchedule()
    schedule.first_delay()
    decision = schedule.on_result(TIMEOUT)
    assert decision.health is Health.UNCHANGED
    assert not decision.healthy and not decision.changed


def test_cancelled_run_changes_nothing_but_still_doubles() -> None:
    daemon = FakeDaemon(MonitorSchedule())
    daemon.startup_ok()
    daemon.run(FAILED)
    decision = daemon.run(CANCELLED)
    assert decision.health is Health.UNCHANGED and not decision.changed
    assert decision.messages == ("Monitoring event was cancelled",)
    daemon.run(FAILED)
    assert gaps([0.0, *daemon.runs]) == [2, 2, 4]


def test_skipped_runs_re_arm_without_doubling() -> None:
    daemon = FakeDaemon(MonitorSchedule())
    daemon.startup_ok()
    daemon.run(FAILED)  # next gap 2, then 4
    daemon.skip()  # in recovery at t=4: re-armed for t=8 with the 4 s interval
    daemon.skip()  # still in recovery at t=8: re-armed for t=12
    daemon.run(FAILED)  # runs with 4, then doubles to 8
    daemon.run(FAILED)
    daemon.run(FAILED)
    assert daemon.runs == [2, 12, 16, 24]


def test_skip_right_after_startup_uses_the_startup_interval() -> None:
    schedule = MonitorSchedule()
    assert schedule.first_delay() == 2
    assert [schedule.on_skipped() for _ in range(3)] == [2, 2, 2]
    assert schedule.on_result(FAILED).next_delay == 2


def test_launch_failure_retries_in_five_and_resets_interval() -> None:
    schedule = MonitorSchedule(healthy=True)
    schedule.first_delay()
    for _ in range(6):
        schedule.on_result(OK)
    assert schedule.on_launch_failed() == 5
    assert [schedule.on_result(OK).next_delay for _ in range(3)] == [5, 10, 15]


@pytest.mark.parametrize("status", list(MonitorStatus))
def test_every_status_gives_a_positive_delay(status: MonitorStatus) -> None:
    schedule = MonitorSchedule()
    schedule.first_delay()
    assert schedule.on_result(status).next_delay > 0
