"""Native against ctdbd, directly: seeded random walks of disable/enable,
pull/plug, isolate/heal and a failing takeip (then unban) on 5 nodes and 10
IPs (harness.crossdiff), both implementations from the same common layout,
compared after every step - node flags as every node reports them (the
majority's nodes while one is cut off), the settled IP layout, and what a
cut-off node still holds.

Replay one walk: `pytest tests/differential/test_cross.py -k seed7`. Each
walk's comparisons are written to artifacts/crossdiff/seed-N-Ksteps.json (the kind
of every step, how many moved IPs, both observations per step). make test
runs one short walk (seed 2: failtakeip 4, unban 4, disable 0); make
test-slow the 20 seeds, whose plans hold every kind of step
(test_long_walks_hold_every_kind checks that without a cluster).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.backends import registry
from harness.crossdiff import Comparison, describe, lock_for, run_walk, walk

pytestmark = pytest.mark.timeout(900)

SEEDS = range(1, 21)
LONG_STEPS = 10
CI_SEED, CI_STEPS = 2, 3  # failtakeip 4, unban 4, disable 0: 58 s on one worker
OUT = Path("artifacts/crossdiff")


def unmet(c: Comparison) -> list[str]:
    """What a step's kind promises, on each implementation: a banned node
    (failtakeip) and a cut-off one (isolate) hold no IP in the majority's
    layout, and the cut-off node still holds the IPs it had."""
    action, p = c.step
    out = []
    for name, o in (("native", c.native), ("ctdb", c.ctdb)):
        if action in ("failtakeip", "isolate") and p in o.layout.values():
            out.append(f"step {c.index} {action} {p}: {name} still assigns it "
                       f"{sorted(ip for ip, q in o.layout.items() if q == p)}")
        if action == "isolate" and not o.isolated_holds:
            out.append(f"step {c.index} isolate {p}: {name}'s cut-off node holds no IP")
        if action == "failtakeip" and o.failed_takeips == 0:
            out.append(f"step {c.index} failtakeip {p}: no takeip failed on {name}")
    return out


def check_walk(seed: int, steps: int) -> None:
    for name in ("native", "ctdb"):
        missing = registry()[name].unavailable()
        if missing:
            pytest.skip(f"{name} backend: {missing}")
    res = run_walk(seed, steps)
    res.save(OUT / f"seed-{seed}-{steps}steps.json")  # the short walk's seed is a long one
    bad = res.disagreements()
    assert not bad, f"seed {seed} ({res.steps}):\n" + "\n".join(map(describe, bad))
    broken = [m for c in res.comparisons for m in unmet(c)]
    assert not broken, f"seed {seed}:\n" + "\n".join(broken)
    # not vacuous: IPs moved in most steps (a pull of a node holding none moves nothing)
    assert res.moved() >= len(res.comparisons) // 2, \
        f"seed {seed}: only {res.moved()} of {len(res.comparisons)} steps moved an IP"


def test_short_walk_agrees():
    """One short walk (make test): both implementations, step by step."""
    check_walk(CI_SEED, CI_STEPS)


def test_long_walks_hold_every_kind():
    """The 20 long walks are replayable plans that between them isolate,
    heal, fail a takeip and unban (several times each), and those that
    isolate use the lock on the network. No cluster: the plans only."""
    kinds = Counter(a for s in SEEDS for a, _ in walk(s, LONG_STEPS))
    assert all(kinds[k] >= 4 for k in ("isolate", "heal", "failtakeip", "unban")), kinds
    assert walk(7, LONG_STEPS) == walk(7, LONG_STEPS)
    assert all(lock_for(walk(s, LONG_STEPS)) == "etcd"
               for s in SEEDS if any(a == "isolate" for a, _ in walk(s, LONG_STEPS)))
    assert "failtakeip" in {a for a, _ in walk(CI_SEED, CI_STEPS)}


@pytest.mark.long
@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in SEEDS])
def test_walk_agrees(seed):
    """The 20 seeded walks (make test-slow)."""
    check_walk(seed, LONG_STEPS)
