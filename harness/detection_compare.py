"""Is the native poll-mode detection distributed like real ctdbd's?

`harness stats --compare` measures the pulled-cable detection delay (fault
-> UNHEALTHY) on both implementations at uniformly random fault phases and
asks two questions of the samples:

* native vs ctdbd: the two-sample Kolmogorov-Smirnov test (exact p-value for
  these small samples); the native must not be distinguishable at 5 %;
* each vs the seed's model: a fault at a uniformly random moment of a
  steady monitor gap is detected at the next monitor run, so the delay is
  uniform on [0, gap] (plus the run's own duration and the status poll,
  tens of ms: the one-sample KS test is against uniform(offset, gap), with
  offset the smallest delay CTDB's schedule allows, given by the caller).

scipy.stats does the tests: well-kept, and the exact two-sample
distribution is easy to get subtly wrong by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """The tests' results for one pair of detection samples (seconds)."""

    n_native: int
    n_ctdb: int
    gap: float
    offset: float
    ks: float
    """Two-sample KS statistic: the largest distance of the two empirical CDFs."""
    p: float
    native_model_p: float
    ctdb_model_p: float
    alpha: float = ALPHA

    @property
    def distinguishable(self) -> bool:
        """The two samples differ at level alpha (the native fails the comparison)."""
        return self.p < self.alpha

    def lines(self) -> list[str]:
        """The report, one finding per line."""
        verdict = ("DISTINGUISHABLE: the native differs from ctdbd" if self.distinguishable
                   else "not distinguishable")
        model = f"uniform({self.offset:.2f}, {self.gap + self.offset:.2f}) s"
        return [
            f"native vs ctdbd ({self.n_native} / {self.n_ctdb} trials): two-sample KS "
            f"D = {self.ks:.3f}, p = {self.p:.3f} -> {verdict} at {self.alpha:.0%}",
            f"native vs the seed's model {model}: KS p = {self.native_model_p:.3f}",
            f"ctdbd  vs the seed's model {model}: KS p = {self.ctdb_model_p:.3f}",
        ]


def compare(native: Sequence[float], ctdb: Sequence[float], gap: float,
            offset: float = 0.0, alpha: float = ALPHA) -> Comparison:
    """Test the two detection samples against each other and against the model."""
    if len(native) < 2 or len(ctdb) < 2:
        raise ValueError(f"need at least 2 trials per implementation, got {len(native)} "
                         f"native and {len(ctdb)} ctdbd")
    if gap <= 0:
        raise ValueError(f"monitor gap {gap} must be positive")
    two = stats.ks_2samp(native, ctdb, method="exact")
    model = (offset, gap)  # scipy's uniform(loc, scale): [loc, loc + scale]
    return Comparison(
        n_native=len(native), n_ctdb=len(ctdb), gap=gap, offset=offset,
        ks=float(two.statistic), p=float(two.pvalue),
        native_model_p=float(stats.kstest(native, "uniform", args=model).pvalue),
        ctdb_model_p=float(stats.kstest(ctdb, "uniform", args=model).pvalue),
        alpha=alpha)
