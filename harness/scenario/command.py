"""`harness run FILE [--backend NAME] [--out DIR]`: a scenario file, once per
implementation, with a line per step and a verdict per implementation.

Exit status: 0 every run passed, 1 a step (or the invariant check, or the
run itself) failed, 2 the file or the command line is wrong - one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import backends, builder, hostcheck
from harness.lab import BackendUnavailable, backend_class
from harness.scenario.loader import load_scenario
from harness.scenario.model import Scenario
from harness.scenario.report import RunResult
from harness.scenario.runner import run_scenario
from harness.scenario.values import ScenarioError

DEFAULT_OUT = Path("artifacts/scenarios")


class RunUsageError(Exception):
    """The implementations asked for cannot run this file here; one line, exit 2."""


def chosen_implementations(scenario: Scenario, option: str | None) -> list[str]:
    """--backend if given (it must be one the file allows), else the file's
    `implementations`, else every installed one."""
    allowed = scenario.implementations
    if option is None:
        if allowed is not None:
            return list(allowed)
        names = [n for n, cls in backends.registry().items() if cls.unavailable() is None]
        if not names:
            raise RunUsageError("no implementation is installed here; run `make deps`")
        return names
    try:
        names = backends.selected(option)
    except ValueError as e:
        raise RunUsageError(str(e)) from None
    if allowed is not None:
        if option == "all":
            return [n for n in names if n in allowed]
        outside = [n for n in names if n not in allowed]
        if outside:
            raise RunUsageError(f"{scenario.path} runs on {', '.join(allowed)} only "
                                f"(implementations = {list(allowed)}); drop --backend "
                                f"{','.join(outside)}")
    return names


def run_file(path: str, backend: str | None, out: Path | None) -> int:
    try:
        scenario = load_scenario(path)
        names = chosen_implementations(scenario, backend)
    except (ScenarioError, RunUsageError) as e:
        print(f"harness run: {e}", file=sys.stderr)
        return 2
    why = hostcheck.why_cannot_run()
    if why is None and scenario.topology.has_bonds and not builder.kernel_has_bonding():
        why = (f"{path}: the topology has bonds and this kernel has no bonding driver; run it "
               f"in a VM: python -m harness.vm run -- python -m harness run {path}")
    if why:
        print(f"harness run: {why}", file=sys.stderr)
        return 2
    print(f"{scenario.name}: {scenario.description}")
    results: list[RunResult] = []
    for name in names:
        unavailable = backend_class(name).unavailable()
        if unavailable:
            if backend not in (None, "all") or scenario.implementations is not None:
                print(f"harness run: {name} backend: {unavailable}", file=sys.stderr)
                return 2
            print(f"\n{name}: skipped ({unavailable})")
            continue
        directory = (out or DEFAULT_OUT / scenario.name) / name
        print()
        try:
            result = run_scenario(scenario, name, out=directory)
        except BackendUnavailable as e:
            print(f"harness run: {e}", file=sys.stderr)
            return 2
        print(result.verdict())
        results.append(result)
    if len(results) > 1:
        print("\nsummary: " + "; ".join(r.verdict().split(";")[0] for r in results))
    return 0 if all(r.passed for r in results) else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a scenario file (TOML) once per implementation",
                       description=__doc__)
    p.add_argument("file", help="a scenario file (README.md, section \"Scenario files\")")
    p.add_argument("--backend", default=None, metavar="NAME",
                   help="native, ctdb, all or a comma list (default: the file's "
                        "`implementations`, else every installed one)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write each implementation's timeline, logs and summary.json under "
                        f"DIR/<implementation>/ (default {DEFAULT_OUT}/<name>/<implementation>/)")
    p.set_defaults(fn=lambda a: run_file(a.file, a.backend, a.out))
