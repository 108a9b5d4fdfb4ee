"""Delta debugging (Zeller's ddmin) over a failing plan's rounds: the
shortest sequence found that still fails, each candidate run on a fresh
cluster. Timing makes a failure flaky, so a candidate counts as failing if
any of `tries` runs fails, and the budget of runs is capped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from harness.chaos.plan import Plan, Round


def ddmin(rounds: list[Round], fails: Callable[[list[Round]], bool],
          budget: int = 20) -> list[Round]:
    """A 1-minimal-ish subsequence of `rounds` for which fails() holds (rounds
    assumed failing), trying at most `budget` candidates."""
    n, runs = 2, 0
    while len(rounds) >= 2 and runs < budget:
        chunk = max(1, len(rounds) // n)
        parts = [rounds[i:i + chunk] for i in range(0, len(rounds), chunk)]
        reduced = False
        for k in range(len(parts)):
            if runs >= budget:
                break
            rest = [r for j, p in enumerate(parts) if j != k for r in p]
            for cand in (parts[k], rest):
                if not cand or len(cand) == len(rounds):
                    continue
                runs += 1
                if fails(cand):
                    rounds, n, reduced = cand, max(2, n - 1 if cand is rest else 2), True
                    break
            if reduced:
                break
        if not reduced:
            if n >= len(rounds):
                break
            n = min(len(rounds), 2 * n)
    return rounds


def sub_plan(plan: Plan, rounds: list[Round]) -> Plan:
    return replace(plan, rounds=tuple(rounds))
