"""Fixtures for the backend tests: timings collected across tests and printed
at the end of the session, so the measured numbers land in the CI log."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_timings: list[tuple[str, str, float]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ctdb_default_startup: the `ctdb` fixture starts with 4.17's default "
        "RerecoveryTimeout instead of FAST_START",
    )


@pytest.fixture
def timing(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """record(what, seconds): a measured number for the end-of-session summary."""
    def record(what: str, seconds: float) -> None:
        _timings.append((request.node.name, what, seconds))
    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _timings:
        return
    terminalreporter.section("backend timings (measured)")
    for test, what, secs in _timings:
        terminalreporter.write_line(f"{test}: {what}: {secs:.2f} s")
