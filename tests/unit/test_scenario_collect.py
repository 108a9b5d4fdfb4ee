"""pytest collects scenario_*.toml under tests/: one item per implementation
chosen by --backend and allowed by the file, markers for bonds, and a
malformed file as a one-line collection error. Collection only: no cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[1] / "scenarios" / "files"


def collect(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--collect-only", "-q", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def items(out: str) -> list[str]:
    return sorted(line.split("::", 1)[1] for line in out.splitlines() if "::" in line)


@pytest.mark.parametrize("backend, expected", [
    ("native", ["bond[native]", "event-mode[native]", "flap[native]",
                "partially-online[native]", "partition[native]", "seed[native]"]),
    ("ctdb", ["bond[ctdb]", "flap[ctdb]", "partially-online[ctdb]", "partition[ctdb]",
              "seed[ctdb]"]),
    ("all", ["bond[ctdb]", "bond[native]", "event-mode[native]", "flap[ctdb]", "flap[native]",
             "partially-online[ctdb]", "partially-online[native]", "partition[ctdb]",
             "partition[native]", "seed[ctdb]", "seed[native]"]),
])
def test_one_item_per_chosen_implementation(backend, expected):
    r = collect(str(FILES), "--backend", backend)
    assert r.returncode == 0, r.stdout + r.stderr
    assert items(r.stdout) == expected


def test_markers_select_scenarios_and_bond_files():
    r = collect(str(FILES), "--backend", "native", "-m", "needs_bonding")
    assert items(r.stdout) == ["bond[native]"]
    r = collect(str(FILES.parents[1]), "--backend", "native", "-m", "scenario")
    assert items(r.stdout) == ["bond[native]", "event-mode[native]", "flap[native]",
                               "partially-online[native]", "partition[native]", "seed[native]"]


def test_implementations_key_limits_the_items(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    text = (FILES / "scenario_seed.toml").read_text().replace(
        'topology = {file = "seed-plain.toml"}',
        f'topology = {{file = "{FILES}/seed-plain.toml"}}\nimplementations = ["ctdb"]')
    (tests / "scenario_only_ctdb.toml").write_text(text)
    (tests / "not_a_scenario.toml").write_text("x = [\n")  # not collected: no scenario_ prefix
    r = collect(str(tests), "--backend", "all", cwd=tmp_path)
    assert items(r.stdout) == ["seed[ctdb]"], r.stdout + r.stderr
    r = collect(str(tests), "--backend", "native", cwd=tmp_path)
    assert items(r.stdout) == []


def test_malformed_file_is_a_one_line_collection_error(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    bad = tests / "scenario_bad.toml"
    bad.write_text('name = "bad"\ndescription = "d"\n')
    r = collect(str(tests), cwd=tmp_path)
    assert r.returncode != 0
    assert f"{bad}: topology: missing; describe the cluster" in r.stdout
    assert "Traceback" not in r.stdout and "scenario/loader.py" not in r.stdout
