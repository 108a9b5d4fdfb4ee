"""The invariant check refuses a timeline whose recorders were not looking:
a status poller's heartbeats missing or reporting long gaps between polls,
or a recorder.error, is a violation of its own - otherwise every other
invariant would pass for want of events."""

from harness.assertions import RECORDER_START_S, find_violations
from harness.record import Event, Timeline

IP = "203.0.113.201"
EVERY, BOUND = 1.0, 2.5  # as a StatusPoller's status.beat says


def recorded(beats: list[tuple[float, float]], stop: float = 20.0) -> Timeline:
    """A recording of one status poller (node 0) from 0 s to `stop`; beats as (t, max_gap)."""
    tl = Timeline(t0=0.0)
    tl.add(Event(0.0, "recorder", "recorder.start", None, {"components": ["n0", "status:0"]}))
    for t, gap in beats:
        tl.add(Event(t, "status", "status.beat", 0,
                     {"polls": int(t * 10), "max_gap": gap, "bound": BOUND, "every": EVERY}))
    tl.add(Event(stop, "recorder", "recorder.stop", None, {}))
    return tl


def problems(tl: Timeline, until: float = 30.0) -> list[str]:
    return [v.what for v in find_violations(tl, [IP], takeover_bound=5.0, until=until)]


def test_steady_heartbeats_pass() -> None:
    assert problems(recorded([(t + 0.1, 0.11) for t in range(20)])) == []


def test_a_long_gap_between_polls_is_refused() -> None:
    beats = [(t + 0.1, 0.11) for t in range(20)]
    beats[7] = (7.1, BOUND + 0.5)  # the poller's own report: one pass took too long
    found = problems(recorded(beats))
    assert len(found) == 1 and "polls stopped for 3.00 s" in found[0]


def test_missing_heartbeats_are_refused() -> None:
    beats = [(t + 0.1, 0.11) for t in range(20) if not 5 <= t < 10]  # 5 s without a beat
    found = problems(recorded(beats))
    assert len(found) == 1 and "status:0's polls stopped" in found[0]


def test_heartbeats_that_end_early_are_refused() -> None:
    found = problems(recorded([(t + 0.1, 0.11) for t in range(8)]))
    assert len(found) == 1 and "no heartbeat for the last" in found[0]


def test_a_poller_that_never_beat_is_refused() -> None:
    assert problems(recorded([])) == ["status:0 never sent a heartbeat"]
    # a recording shorter than the recorders' start-up promises nothing yet
    assert problems(recorded([], stop=RECORDER_START_S / 2), until=RECORDER_START_S / 2) == []


def test_a_recorder_error_is_refused() -> None:
    tl = recorded([(t + 0.1, 0.11) for t in range(20)])
    tl.add(Event(3.0, "recorder", "recorder.error", None,
                 {"component": "probe:public", "error": "OSError: gone"}))
    assert problems(tl) == ["recorder probe:public failed: OSError: gone"]


def test_a_timeline_without_pollers_promises_nothing_about_them() -> None:
    tl = Timeline(t0=0.0)
    tl.add(Event(0.0, "recorder", "recorder.start", None, {"components": ["n0", "n1"]}))
    assert problems(tl) == []
