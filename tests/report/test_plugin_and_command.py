"""The report's plumbing, on recorded real runs: pytest's --report writes a
failed test's page and prints its path, its delays go into JUnit XML as
properties and its chart into pytest-html's report; `harness report`
rebuilds a page and a Chrome trace from a saved timeline, and bad input is
one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from recorded_runs import DATA

from harness.cli import main

INNER = """
from harness.record import Timeline

def test_replayed_run_fails(timeline):
    for e in Timeline.load({path!r}):
        timeline.add(e)
    assert False, "the replayed run counts as failed"
"""


def test_failed_test_gets_a_report_and_junit_delays(tmp_path: Path) -> None:
    test = tmp_path / "test_inner.py"
    test.write_text(INNER.format(path=str(DATA / "n3-passed" / "timeline.jsonl")))
    reports, junit = tmp_path / "reports", tmp_path / "junit.xml"
    html = tmp_path / "pytest-html.html"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
         str(test), "--report", str(reports), f"--junitxml={junit}", "--rootdir", str(tmp_path),
         f"--html={html}", "--self-contained-html"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    pages = list(reports.glob("*/report.html"))
    assert len(pages) == 1, proc.stdout
    # the failure summary names the page, and so does the list after it
    lines = proc.stdout.splitlines()
    heads = [k for k, line in enumerate(lines) if " run reports " in line]
    assert heads and lines[heads[0] + 1] == str(pages[0]), proc.stdout
    assert str(pages[0]) in lines[:heads[0]]  # in the failure's own section too
    assert (pages[0].parent / "report.trace.json").is_file()
    assert (pages[0].parent / "timeline.jsonl").is_file()
    props = {p.get("name"): float(p.get("value", "nan"))
             for p in ET.parse(junit).iter("property")}
    detection = props["delay f1 fault -> UNHEALTHY"]
    assert 0 < detection <= props["delay f1 fault -> UNHEALTHY bound"]
    # pytest-html's page carries the swimlane chart (escaped in its data blob) and a link
    page = html.read_text()
    assert "n1 flags" in page and "run report" in page


def harness(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS` in this process (an interpreter start costs seconds on a loaded
    machine): exit status, stdout, stderr."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_harness_report_rebuilds_page_and_trace(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    rc, stdout, stderr = harness(capsys, "report", str(DATA / "n8-failed" / "timeline.jsonl"),
                                 "--out", str(out), "--check")
    assert rc == 0, stderr
    assert "self-contained" in stdout
    assert "8-node seed run" in out.read_text()  # run.json beside the timeline was read
    trace = json.loads((tmp_path / "r.trace.json").read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    # one track per node, per public IP and per link
    assert {f"n{k} flags" for k in range(8)} <= names
    assert {"203.0.113.201", "n0 eth1"} <= names
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "fault"]
    assert spans and all(e["dur"] > 0 for e in spans)


def test_harness_report_bad_input_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "timeline.jsonl"
    bad.write_text("not json\n")
    side = tmp_path / "other" / "timeline.jsonl"
    side.parent.mkdir()
    side.write_text((DATA / "n3-passed" / "timeline.jsonl").read_text())
    (side.parent / "run.json").write_text("[]")
    odd = tmp_path / "odd" / "timeline.jsonl"
    odd.parent.mkdir()
    odd.write_text(side.read_text())
    (odd.parent / "run.json").write_text('{"title": "t", "tunables": {"MonitorInterval": "x"}}')
    for args in ([str(tmp_path / "nope.jsonl")], [str(bad)], [str(side)], [str(odd)],
                 [str(side), "--info", str(DATA / "n3-passed" / "run.json"),
                  "--tunable", "MonitorInterval"]):
        rc, _, err = harness(capsys, "report", *args)
        assert rc == 2, args
        assert err.count("\n") == 1 and err.startswith("harness report: "), err
