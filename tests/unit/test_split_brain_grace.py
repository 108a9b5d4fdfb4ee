"""The split-brain rule on recorded timelines: an overlap of two holders
shorter than the listeners' dating grace is not a split brain, one that
outlasts it is, and an overlap still open at the end counts up to the end."""

from harness.assertions import DATING_GRACE, find_violations
from harness.record import Event, Timeline

IP = "203.0.113.201"


def timeline(*moves: tuple[float, str, str]) -> Timeline:
    tl = Timeline(t0=0.0)
    for t, kind, ns in moves:
        tl.add(Event(t, "netlink", kind, int(ns[1:]), {"ns": ns, "ip": IP}))
    return tl


def split_brains(tl: Timeline, until: float) -> list[str]:
    return [v.what for v in find_violations(tl, [IP], takeover_bound=5.0, until=until)
            if "split brain" in v.what]


def test_overlap_within_the_dating_grace_is_not_split_brain() -> None:
    tl = timeline((1.0, "addr.add", "n2"), (5.0, "addr.add", "n0"),
                  (5.0 + DATING_GRACE / 2, "addr.del", "n2"))
    assert split_brains(tl, until=10.0) == []


def test_overlap_past_the_dating_grace_is_split_brain() -> None:
    tl = timeline((1.0, "addr.add", "n2"), (5.0, "addr.add", "n0"),
                  (5.0 + 3 * DATING_GRACE, "addr.del", "n2"))
    found = split_brains(tl, until=10.0)
    assert len(found) == 1 and "['n0', 'n2']" in found[0]


def test_overlap_open_at_the_end_counts_to_the_end() -> None:
    tl = timeline((1.0, "addr.add", "n2"), (5.0, "addr.add", "n0"))
    assert split_brains(tl, until=5.0 + DATING_GRACE / 2) == []
    assert len(split_brains(tl, until=6.0)) == 1


def test_allowed_node_does_not_count_as_a_holder() -> None:
    tl = timeline((1.0, "addr.add", "n2"), (5.0, "addr.add", "n0"))
    found = find_violations(tl, [IP], takeover_bound=5.0, until=9.0, allow_duplicates_on=[2])
    assert [v for v in found if "split brain" in v.what] == []


def arp_answers(tl: Timeline, t: float, node: int, until: float = 10.0) -> list[str]:
    tl.add(Event(t, "probe", "probe.arp", node, {"ip": IP, "answered": True, "nodes": [node]}))
    return [v.what for v in find_violations(tl, [IP], takeover_bound=5.0, until=until)
            if "answered ARP" in v.what]


def test_arp_answer_from_a_node_holding_the_ip_within_the_grace_is_fine() -> None:
    # the listener dated the add 4 ms after the answer, and the node released it
    # again 73 ms later (a ban by hand): held inside the grace, not at its ends
    tl = timeline((1.0, "addr.add", "n0"), (5.0, "addr.del", "n0"),
                  (5.004, "addr.add", "n2"), (5.077, "addr.del", "n2"))
    assert arp_answers(tl, 5.0, node=2) == []


def test_arp_answer_from_a_node_that_never_held_the_ip_is_caught() -> None:
    tl = timeline((1.0, "addr.add", "n0"))
    found = arp_answers(tl, 5.0, node=2)
    assert len(found) == 1 and "node 2 answered ARP" in found[0], found
