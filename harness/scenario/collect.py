"""Scenario files as pytest tests: every `scenario_*.toml` under a `tests`
directory is collected as one item per implementation, so a field bug
written down as a file is a regression test. A pytest plugin of its own
(entry point `harness.scenario.collect`, next to harness.pytest_plugin, whose
options and artifacts directory it uses).

Items honour --backend and the file's `implementations` (an event-mode file
runs on native only); a topology with bonds marks them needs_bonding (skipped
without the driver, run in the VM by `make test-vm`), and every item is
marked `scenario` (`pytest -m scenario`). A malformed file is a collection
error of one line; a failing step fails the item with the step and the
timeline window, the whole timeline as a report section, and - with
--artifacts - the timeline, logs and summary.json on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import backends, pytest_plugin
from harness.backends.base import Backend
from harness.cluster import Cluster
from harness.lab import BackendUnavailable, backend_class
from harness.labs.handover import hand_over
from harness.scenario.loader import load_scenario
from harness.scenario.model import Scenario
from harness.scenario.runner import run_scenario
from harness.scenario.values import ScenarioError


def is_scenario_file(path: Path) -> bool:
    return path.suffix == ".toml" and path.name.startswith("scenario_") and "tests" in path.parts


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario: a scenario file (scenario_*.toml) run on one implementation")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(AssertionError):
    """A step or the invariant check failed; the message is the whole story."""


class ScenarioFile(pytest.File):
    """A scenario file: checked at collection, one item per implementation."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        try:
            names = backends.selected(self.config.getoption("--backend"))
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        allowed = scenario.implementations
        for name in names:
            if allowed is not None and name not in allowed:
                continue
            item = ScenarioItem.from_parent(self, name=f"{scenario.name}[{name}]",
                                            scenario=scenario, implementation=name)
            item.add_marker(pytest.mark.scenario)
            if scenario.topology.has_bonds:
                item.add_marker(pytest.mark.needs_bonding)
            yield item


class ScenarioItem(pytest.Item):
    """One scenario on one implementation."""

    def __init__(self, *, scenario: Scenario, implementation: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario
        self.implementation = implementation

    def runtest(self) -> None:
        why = backend_class(self.implementation).unavailable()
        if why:
            pytest.skip(f"{self.implementation} backend: {why}")
        keep = bool(self.config.getoption("--keep-on-failure"))
        try:
            result = run_scenario(self.scenario, self.implementation,
                                  out=pytest_plugin.artifacts_path(self.config, self.nodeid),
                                  save_always=False, keep=lambda: keep,
                                  hand_over=self._hand_over)
        except BackendUnavailable as e:
            pytest.skip(str(e))
        if not result.passed:
            if result.timeline_table:
                self.add_report_section("call", "timeline", result.timeline_table)
            raise ScenarioFailed(result.failure_text())

    def _hand_over(self, cluster: Cluster, backend: Backend) -> str:
        """A failed scenario's cluster runs on as a lab (--keep-on-failure)."""
        return hand_over(cluster, backend, self.nodeid)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario {self.scenario.name} on {self.implementation}"
