"""Native against ctdbd, directly: seeded random walks of disable/enable and
pull/plug on 5 nodes and 10 IPs (harness.crossdiff), both implementations
from the same common layout, compared after every step - node flags as every
node reports them, and the settled IP layout.

Replay one walk: `pytest tests/differential/test_cross.py -k seed7`. Each
walk's comparisons are written to artifacts/crossdiff/seed-N.json (how many
steps moved IPs, both observations per step). make test runs one short walk;
make test-slow the 20 seeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import registry
from harness.crossdiff import describe, run_walk

pytestmark = pytest.mark.timeout(900)

SEEDS = range(1, 21)
LONG_STEPS = 10
CI_SEED, CI_STEPS = 1, 3
OUT = Path("artifacts/crossdiff")


def check_walk(seed: int, steps: int) -> None:
    for name in ("native", "ctdb"):
        missing = registry()[name].unavailable()
        if missing:
            pytest.skip(f"{name} backend: {missing}")
    res = run_walk(seed, steps)
    res.save(OUT / f"seed-{seed}.json")
    bad = res.disagreements()
    assert not bad, f"seed {seed} ({res.steps}):\n" + "\n".join(map(describe, bad))
    # not vacuous: IPs moved in most steps (a pull of a node holding none moves nothing)
    assert res.moved() >= len(res.comparisons) // 2, \
        f"seed {seed}: only {res.moved()} of {len(res.comparisons)} steps moved an IP"


def test_short_walk_agrees():
    """One short walk (make test): both implementations, step by step."""
    check_walk(CI_SEED, CI_STEPS)


@pytest.mark.long
@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in SEEDS])
def test_walk_agrees(seed):
    """The 20 seeded walks (make test-slow)."""
    check_walk(seed, LONG_STEPS)
