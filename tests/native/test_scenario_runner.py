"""The scenario runner on the native implementation: `harness run` end to end
(exit 0 and 1, artifacts), timed and triggered faults with their references,
and a failing scenario as a pytest item with its step, window and artifacts.
(The shipped files themselves run as collected items: tests/scenarios/files.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import hostcheck
from harness.scenario.loader import load_scenario
from harness.scenario.runner import run_scenario

FILES = Path(__file__).resolve().parents[1] / "scenarios" / "files"
HEAD = f"""name = "t"
description = "a test"
topology = {{file = "{FILES}/seed-plain.toml"}}
implementations = ["native"]
"""
TUNABLES = "[tunables]\nMonitorInterval = 3\nRerecoveryTimeout = 1\n"

pytestmark = pytest.mark.skipif(hostcheck.why_cannot_run() is not None,
                                reason=f"harness: {hostcheck.why_cannot_run()}")


def harness_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", *args], capture_output=True,
                          text=True, timeout=240, cwd=cwd)


def test_harness_run_passes_and_writes_artifacts(tmp_path):
    r = harness_run(str(FILES / "scenario_seed.toml"), "--backend", "native", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.strip().startswith("step 3 (bad)") and " OK " in line
               and "within [0, detection] = [0.00, " in line for line in lines), r.stdout
    assert lines[-1].startswith("native: PASSED (7 steps) in ")
    out = tmp_path / "artifacts" / "scenarios" / "seed" / "native"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["invariants"] == "OK"
    assert [s["status"] for s in summary["steps"]] == ["OK"] * 7
    assert summary["steps"][2]["bound"] == "0, detection" and summary["steps"][2]["delay_s"] > 0
    assert (out / "timeline.jsonl").exists() and (out / "timeline.txt").exists()
    assert (out / "native-node2.log").exists()
    assert "passed" in (out / "report.html").read_text()  # the run report, its verdict
    assert (out / "report.trace.json").exists()


def test_harness_run_failing_step_exits_1_with_the_window(tmp_path):
    path = tmp_path / "scenario_fail.toml"
    path.write_text(HEAD + TUNABLES + """
[[steps]]
expect = "flag"
id = "never"
node = 2
flag = "UNHEALTHY"
after = "start"
within = [0, 1]

[[steps]]
expect = "converged"
after = "start"
within = [0, 5]
""")
    r = harness_run(str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "step 1 (never)" in r.stdout and "FAILED" in r.stdout
    assert "expected flags (node 2) within 1.00 s" in r.stdout
    assert "timeline t:" in r.stdout and "scenario start" in r.stdout  # the window
    assert "NOT RUN" in r.stdout and r.stdout.splitlines()[-1].startswith(
        "native: FAILED at step 1 (never) in ")
    summary = json.loads((tmp_path / "out" / "native" / "summary.json").read_text())
    assert not summary["passed"]
    assert [s["status"] for s in summary["steps"]] == ["FAILED", "NOT RUN"]
    assert summary["invariants"] == "NOT RUN (a step failed)"


def test_timed_and_triggered_faults_and_their_references(tmp_path):
    """`at` acts on time, `for` undoes in the background (and `ID.undo` waits for it), `on` fires
    a fault offset after an event (and `ID` is the moment it fired), an undo
    step disarms/undoes, `wait` lets time pass, `none` watches a window."""
    path = tmp_path / "scenario_timing.toml"
    path.write_text(HEAD + TUNABLES + """
[[steps]]
fault = "pull-cable"
id = "short"
node = 1
port = "eth1"
at = 0.5
for = 1.0

[[steps]]
expect = "event"
kind = "fault.undo"
node = 1
after = "short"
within = [0.95, 1.3]

[[steps]]
expect = "event"
kind = "link.carrier"
node = 1
match = {ifname = "eth1", up = true}
after = "short.undo"
within = [0, 0.5]

[[steps]]
fault = "pull-cable"
id = "chained"
node = 2
port = "eth1"
on = {kind = "link.carrier", node = 0, match = {up = false}, offset = 0.3}

[[steps]]
fault = "pull-cable"
id = "trigger"
node = 0
port = "eth1"
for = 0.6

[[steps]]
expect = "event"
kind = "link.carrier"
node = 2
match = {up = false}
after = "trigger"
within = [0.3, 0.6]

[[steps]]
expect = "event"
kind = "link.carrier"
node = 2
match = {up = false}
after = "chained"
within = [0, 0.1]

[[steps]]
undo = "chained"

[[steps]]
wait = 0.2

[[steps]]
expect = "none"
kind = "fault.error"
after = "chained.undo"
for = 0.5
""")
    lines: list[str] = []
    result = run_scenario(load_scenario(path), "native", echo=lines.append)
    assert result.passed, "\n".join(lines) + result.failure_text()
    by_number = {s.number: s for s in result.steps}
    assert by_number[1].note.startswith("applied at +0.5") and "late" not in by_number[1].note
    assert 0.95 <= (by_number[2].delay or 0) <= 1.3
    assert 0.3 <= (by_number[6].delay or 0) <= 0.6
    assert by_number[4].note == "armed" and by_number[8].note.startswith("undone at +")
    assert by_number[9].note == "waited 0.20 s" and by_number[10].note == "none for 0.50 s"


def test_a_trigger_that_never_fires_fails_the_step_that_needs_it(tmp_path):
    path = tmp_path / "scenario_never.toml"
    path.write_text(HEAD + """
[[steps]]
fault = "kill"
id = "late"
node = 2
on = {kind = "bond.active", timeout = 1}

[[steps]]
expect = "flag"
node = 2
flag = "DISCONNECTED"
after = "late"
within = [0, "keepalive"]
""")
    result = run_scenario(load_scenario(path), "native", echo=lambda line: None)
    assert not result.passed and result.steps[1].status == "FAILED"
    assert result.steps[1].message.startswith('fault "late" never fired: no on bond.active +0 s '
                                              "within 1 s of arming\n"), result.steps[1].message


def test_failing_item_in_pytest_shows_the_step_and_saves_artifacts(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "scenario_fail.toml").write_text(HEAD + """
[[steps]]
fault = "pull-cable"
id = "cut"
node = 2
port = "eth1"

[[steps]]
expect = "ok"
id = "impossible"
node = 2
after = "cut"
within = [0, 0.5]
""")
    art = tmp_path / "art"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        str(tests), "--artifacts", str(art)], capture_output=True, text=True,
                       timeout=240, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "t on native: step 2 (impossible) FAILED: node 2 OK after cut" in r.stdout
    assert "expected flags (node 2) within 0.50 s" in r.stdout
    assert "timeline t:" in r.stdout  # the window around the failure
    assert "Captured timeline call" in r.stdout  # the whole timeline as a report section
    assert "Traceback" not in r.stdout and "runner.py" not in r.stdout
    saved = list(art.glob("*/summary.json"))
    assert len(saved) == 1 and (saved[0].parent / "timeline.jsonl").exists()
    assert "step 2 (impossible) FAILED" in (saved[0].parent / "report.html").read_text()
