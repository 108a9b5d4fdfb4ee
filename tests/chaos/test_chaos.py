"""The chaos soak's parts: a seed gives one fault sequence (so a failure
replays), drawn from the whole catalogue; ddmin shrinks a failing sequence;
bad input is one line; and a tiny soak on the native implementation runs
clean, its faults measured against their bounds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.assertions import Bounds
from harness.chaos.audit import invariant_problems, measure
from harness.chaos.command import soak
from harness.chaos.plan import BOND_ONLY, KINDS, MOVERS, Step, make_plan
from harness.chaos.runner import banned
from harness.chaos.shrink import ddmin
from harness.faults.kinds import KINDS as CATALOGUE
from harness.record import Event, Timeline
from harness.topology import default_topology

PLAIN = default_topology(5).plain()


def test_a_seed_gives_one_sequence() -> None:
    a = make_plan(42, PLAIN, 60, longest=10.0)
    assert a == make_plan(42, PLAIN, 60, longest=10.0)
    assert a.rounds != make_plan(43, PLAIN, 60, longest=10.0).rounds
    assert a.faults == 60


def test_sequences_draw_the_whole_catalogue_sometimes_overlapping() -> None:
    # every kind of the catalogue but `plug` (the undo of pull-cable, not a fault of its own)
    assert set(KINDS) == set(CATALOGUE) - {"plug"}
    plan = make_plan(7, PLAIN, 400, longest=10.0)
    used = {s.kind for r in plan.rounds for s in r.steps}
    assert used == set(KINDS) - BOND_ONLY  # no bonds on a plain topology
    wide = [r for r in plan.rounds if len(r.steps) > 1]
    assert wide and all(len(r.steps) <= PLAIN.nodes // 2 for r in wide)
    for r in wide:  # several at once, each on its own node
        nodes = [s.args.get("node", s.args.get("src", (None,))[0]) for s in r.steps]
        assert len(set(nodes)) == len(nodes)
    assert all(1.0 <= s.duration <= 10.0 for r in plan.rounds for s in r.steps)


def test_ddmin_shrinks_to_the_rounds_that_fail_together() -> None:
    tried = []

    def fails(rounds: list[int]) -> bool:
        tried.append(rounds)
        return 13 in rounds and 31 in rounds

    assert ddmin(list(range(40)), fails, budget=100) == [13, 31]
    assert len(tried) <= 100


@pytest.mark.parametrize(("args", "line"), [
    (["--kinds", "kill,unplug"],
     f"harness chaos: --kinds: unknown kind 'unplug'; one of: {', '.join(KINDS)}"),
    # argparse's own errors too: one line, not the usage block above it
    (["--overlap", "2"],
     "harness chaos: argument --overlap: 2.0 must be from 0 to 1 (see harness chaos --help)"),
    (["--nodes", "0"],
     "harness chaos: argument --nodes: 0 must be >= 1 (see harness chaos --help)"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    r = subprocess.run([sys.executable, "-m", "harness", "chaos", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [line]
    assert r.stdout == ""


def test_a_failing_releaseip_excuses_its_node_a_failing_takeip_does_not() -> None:
    # banned with a releaseip that fails, the node keeps its IPs while the leader
    # places them elsewhere (two holders, as with ctdbd); a failed takeip adds nothing
    plan = make_plan(7, PLAIN, 400, longest=10.0)
    fails = [s for r in plan.rounds for s in r.steps if s.kind == "fail-event"]
    assert {s.args["event"] for s in fails} == {"takeip", "releaseip"}
    for s in fails:
        assert s.excuse == ((s.node,) if s.args["event"] == "releaseip" else ())
    # never alone: a fault on another node moves IPs (and a takeover run with them)
    with_it = [r for r in plan.rounds if any(s.kind == "fail-event" for s in r.steps)]
    assert with_it
    for r in with_it:
        assert {s.kind for s in r.steps} & set(MOVERS), r.describe()


def test_tiny_native_soak_runs_clean() -> None:
    top = default_topology(3).plain()
    # the kinds whose detection and takeover are measured: one link fault, one dead daemon
    # (seed 1770: both outlast their detection and takeover bounds, so both are measured)
    plan = make_plan(1770, top, 2, longest=9.0, only=("public-link", "kill"))
    assert [s.kind for r in plan.rounds for s in r.steps] == ["public-link", "kill"]
    res = soak(plan, top, "native", quiet=True)
    assert res.failed is None, res.failed.problems
    assert res.crashes == []
    measured = [m for r in res.rounds for m in r.measures]
    assert {m.what for m in measured} == {"detection(unhealthy)", "detection(disconnected)",
                                         "takeover"}, measured
    assert all(m.ok for m in measured)


def test_one_way_loss_excuses_both_sides() -> None:
    """TCP needs both directions: src and dst lose each other, and a leader on
    either side moves the other side's IPs while they are still held there
    (seed 902, round 30: leader 4's packets to 0, 2, 3 dropped; it gave node
    0's IP to node 1)."""
    plan = make_plan(902, PLAIN, 30, longest=10.0, only=("one-way-loss",))
    for s in (s for r in plan.rounds for s in r.steps):
        assert s.excuse == (*s.args["src"], *s.args["dst"])


def test_a_ban_during_a_round_is_reported() -> None:
    tl = Timeline()
    tl.add(Event(1.0, "status", "flags", 2, {"flags": ["UNHEALTHY"], "by": 2}))
    tl.add(Event(2.0, "status", "flags", 2, {"flags": ["BANNED", "INACTIVE"], "by": 4}))
    assert banned(tl, 0.0, 3.0) == []  # only a node's own account counts
    tl.add(Event(2.1, "status", "flags", 2, {"flags": ["BANNED", "INACTIVE"], "by": 2}))
    tl.add(Event(2.5, "status", "flags", 2, {"flags": ["BANNED", "UNHEALTHY"], "by": 2}))
    assert banned(tl, 0.0, 3.0) == ["node 2"]
    assert banned(tl, 2.6, 3.0) == []


def test_a_node_banned_before_its_monitor_counts_as_detected() -> None:
    """Seed 901, round 60: eth1 deleted on node 2; the leader gave its IP back
    twice, both takeips failed, and node 2 was banned before its monitor ran
    (as ctdbd bans). Banned, it is out: detection, not "never UNHEALTHY"."""
    b = Bounds(3, 1, 1, 3, 9)
    step = Step("delete-interface", {"node": 2, "iface": "eth1"}, 0.0, 7.8, "unhealthy", ())
    tl = Timeline()
    applied = tl.add(Event(10.0, "fault", "fault.apply", 2, {}))
    tl.add(Event(12.1, "status", "flags", 2, {"flags": ["BANNED", "INACTIVE"], "by": 2}))
    measures, problems = measure(tl, step, applied, 17.8, b, ["203.0.113.201"])
    assert problems == []
    assert [(m.what, round(m.took, 2)) for m in measures] == [("detection(banned)", 2.1)]


def test_a_cut_off_node_lets_a_takeover_wait_for_the_keepalive() -> None:
    """Seed 901, round 183: node 2 isolated and node 3's cable pulled at once.
    The leader's takeover run asked node 2 for its IPs, still connected but
    silent, until the keepalive declared it gone (3 s); node 3's IP moved
    2.76 s after its UNHEALTHY flag. Alone, the cable is held to the takeover
    bound; beside a cut private network, to takeover + keepalive."""
    b = Bounds(3, 1, 1, 3, 9)
    ip = "203.0.113.201"
    tl = Timeline()
    tl.add(Event(0.5, "netlink", "addr.add", 3, {"ns": "n3", "ip": ip}))
    tl.add(Event(1.0, "status", "flags", 3, {"flags": ["UNHEALTHY"], "by": 3}))
    tl.add(Event(3.76, "netlink", "addr.del", 3, {"ns": "n3", "ip": ip}))
    tl.add(Event(3.77, "netlink", "addr.add", 4, {"ns": "n4", "ip": ip}))
    alone = invariant_problems(tl, [ip], b, 0.0, 10.0, set(), frozenset({"pull-cable"}))
    assert len(alone) == 1 and "after it became UNHEALTHY" in alone[0], alone
    for cut in ("isolate", "partition", "hang", "one-way-loss"):
        assert invariant_problems(tl, [ip], b, 0.0, 10.0, set(),
                                  frozenset({"pull-cable", cut})) == [], cut
