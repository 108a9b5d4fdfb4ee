"""The comparison behind `harness stats --backend all`, on samples of known shape.

The samples are drawn with a fixed seed so the verdicts are reproducible:
two samples from the seed's model (uniform over the monitor gap) are not
distinguishable, a sample detected half a gap later is, and the model test
tells a uniform sample from one that always waits a whole gap.
"""

from __future__ import annotations

import random

import pytest

from harness.detection_compare import compare

GAP = 3.0
N = 30  # as `harness stats --trials 30`


def uniform(seed: int, lo: float = 0.0, hi: float = GAP) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(lo, hi) for _ in range(N)]


def test_same_model_is_not_distinguishable() -> None:
    c = compare(uniform(1), uniform(2), GAP)
    assert not c.distinguishable, c
    assert c.native_model_p > 0.05 and c.ctdb_model_p > 0.05
    assert "not distinguishable at 5%" in c.lines()[0]


def test_half_a_gap_later_is_distinguishable() -> None:
    late = [x + GAP / 2 for x in uniform(1)]
    c = compare(late, uniform(2), GAP)
    assert c.distinguishable and c.ks >= 0.4, c
    assert c.native_model_p < 0.05  # and it no longer fits uniform(0, gap)
    assert "DISTINGUISHABLE" in c.lines()[0]


def test_model_offset_shifts_the_uniform() -> None:
    shifted = uniform(3, 0.2, GAP + 0.2)
    assert compare(shifted, shifted, GAP, offset=0.2).native_model_p > 0.05
    assert compare(shifted, shifted, GAP, offset=0.0).native_model_p < \
        compare(shifted, shifted, GAP, offset=0.2).native_model_p


def test_too_few_trials_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 trials"):
        compare([1.0], uniform(1), GAP)
