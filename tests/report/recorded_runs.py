"""Recorded timelines of real runs (tests/report/data/*/timeline.jsonl with
their run.json), replayed into reports: drawing needs no cluster, so these
tests cost seconds. They were recorded by runs of the seed's experiment on
the native implementation (MonitorInterval 3): a passing 3-node run, a
5-node run of 60 s, and an 8-node run checked against bounds deliberately
too tight, so it failed."""

from __future__ import annotations

from pathlib import Path

from harness.record import Timeline
from harness.report.model import RunInfo
from harness.report.runinfo import load_info

DATA = Path(__file__).parent / "data"
RUNS = ("n3-passed", "n5-60s", "n8-failed")


def recorded(name: str) -> tuple[Timeline, RunInfo]:
    return Timeline.load(DATA / name / "timeline.jsonl"), load_info(DATA / name / "run.json")
