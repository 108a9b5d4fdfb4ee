"""Reports of runs of every kind from what they have at hand: a timeline, the
backend that ran (its tunables and cluster) and a verdict. The pytest
plugin, the demo, scenario runs, stats and lab saves call these, so each
writes the same files: timeline.jsonl, run.json, report.html and
report.trace.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.record import Timeline
from harness.report import ReportFiles, write_report
from harness.report.model import Delay, RunInfo, build


def info_for(title: str, backend: Any = None, verdict: str = "") -> RunInfo:
    """RunInfo from a Backend (name, tunables, its cluster's topology), if any."""
    if backend is None:
        return RunInfo(title, verdict=verdict)
    cluster = getattr(backend, "cluster", None)
    return RunInfo(title, backend.name, dict(backend.tunables),
                   getattr(cluster, "topology", None), verdict)


def save_run(timeline: Timeline, info: RunInfo, directory: Path | str) -> ReportFiles:
    """The timeline (JSON Lines + table) and its report, in `directory`."""
    timeline.save(directory, "timeline")
    return write_report(timeline, info, directory)


def measured_delays(timeline: Timeline, info: RunInfo) -> list[Delay]:
    """The delays a report would show, without drawing (for JUnit properties)."""
    return build(timeline, info).delays


def junit_properties(delays: list[Delay]) -> list[tuple[str, str]]:
    """(name, value) pairs for record_property: one per measured delay, plus its
    bound, named so a CI dashboard can chart each over time."""
    out: list[tuple[str, str]] = []
    for d in delays:
        if d.seconds is None:
            continue
        key = f"delay {d.fault.split(' ')[0]} {d.what}"
        out.append((key, f"{d.seconds:.4f}"))
        if d.bound is not None:
            out.append((f"{key} bound", f"{d.bound:.4f}"))
    return out
