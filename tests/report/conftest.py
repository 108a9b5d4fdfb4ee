"""Fixtures of the report tests (the recorded runs: recorded_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def report_artifacts(request: pytest.FixtureRequest) -> Path:
    """artifacts/report/ (under --artifacts DIR when given): screenshots and pages."""
    base = request.config.getoption("--artifacts") or request.config.rootpath / "artifacts"
    out = Path(base) / "report"
    out.mkdir(parents=True, exist_ok=True)
    return out
