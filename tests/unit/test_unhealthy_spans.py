"""The rule "no IP on a node UNHEALTHY for longer than the takeover bound" on
recorded timelines. The status poller records flags only when they change, so
a node that stayed UNHEALTHY with an IP shows one `flags` event at the start
of its span and one when it recovered; the check must look at the whole span
between them (it once looked only at the first event, so an IP kept on an
UNHEALTHY node for minutes passed), less one poll gap at its end: a node that
turned healthy and took an IP back between two polls is no violation."""

from harness.assertions import find_violations
from harness.record import Event, Timeline

IP = "203.0.113.201"
GAP = 0.1  # the poller's longest gap between polls, as its status.beat says
BOUND = 2.0  # the takeover bound given to the check


def recorded(flags: list[tuple[float, list[str]]], moves: list[tuple[float, str]],
             stop: float = 20.0) -> Timeline:
    """Node 2's own status poll (flags changes at the given times, a beat every
    second) and IP's adds/dels on node 2 ('+'/'-'), recorded from 0 to stop."""
    tl = Timeline(t0=0.0)
    tl.add(Event(0.0, "recorder", "recorder.start", None, {"components": ["n2", "status:2"]}))
    for k in range(int(stop)):
        tl.add(Event(k + 0.5, "status", "status.beat", 2,
                     {"polls": k * 10, "max_gap": GAP, "bound": 2.5, "every": 1.0}))
    for t, names in flags:
        tl.add(Event(t, "status", "flags", 2, {"flags": names, "by": 2}))
    for t, sign in moves:
        tl.add(Event(t, "netlink", "addr.add" if sign == "+" else "addr.del", 2,
                     {"ns": "n2", "ip": IP}))
    tl.add(Event(stop, "recorder", "recorder.stop", None, {}))
    return tl


def unhealthy_holders(tl: Timeline, until: float = 20.0) -> list[str]:
    return [v.what for v in find_violations(tl, [IP], takeover_bound=BOUND, until=until)
            if "UNHEALTHY" in v.what]


def test_ip_kept_through_a_span_closed_mid_recording_is_caught() -> None:
    tl = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"]), (10.0, ["OK"])], [(0.1, "+")])
    found = unhealthy_holders(tl)
    assert len(found) == 1 and "still on node 2" in found[0], found


def test_ip_added_late_in_a_closed_span_is_caught() -> None:
    tl = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"]), (10.0, ["OK"])],
                  [(0.1, "+"), (1.5, "-"), (6.0, "+")])
    found = unhealthy_holders(tl)
    assert len(found) == 1 and "UNHEALTHY since 5.00 s" in found[0], found


def test_ip_released_within_the_bound_is_fine() -> None:
    tl = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"]), (10.0, ["OK"])],
                  [(0.1, "+"), (1.0 + BOUND / 2, "-")])
    assert unhealthy_holders(tl) == []


def test_ip_taken_back_between_the_last_two_polls_is_fine() -> None:
    tl = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"]), (10.0, ["OK"])],
                  [(0.1, "+"), (1.5, "-"), (10.0 - GAP / 2, "+")])
    assert unhealthy_holders(tl) == []


def test_span_open_at_the_end_counts_up_to_the_last_poll() -> None:
    # taken back just before recording stopped, before a poll could show it: fine
    fine = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"])],
                    [(0.1, "+"), (1.5, "-"), (20.0 - GAP / 2, "+")])
    assert unhealthy_holders(fine) == []
    # taken a second before the end, while polls kept saying UNHEALTHY: caught
    late = recorded([(0.2, ["OK"]), (1.0, ["UNHEALTHY"])],
                    [(0.1, "+"), (1.5, "-"), (19.0, "+")])
    assert len(unhealthy_holders(late)) == 1
