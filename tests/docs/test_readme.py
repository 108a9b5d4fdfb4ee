"""README.md's code is executed, so the documentation cannot drift from the code.

Every ```python block of the README is run as a new user would run it: a
block that defines tests is saved to a file and run with `pytest FILE` (so on
every installed implementation, each collected as its own test); any other
block is run as a script with `python`. Every ```toml block with [[steps]]
is a scenario file, run with `harness run FILE --backend native`. A block
that fails shows its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import registry

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def scenario_blocks() -> list[str]:
    return [b for b in TOML_BLOCK.findall(README.read_text()) if "[[steps]]" in b]


def test_readme_has_both_kinds_of_example():
    blocks = python_blocks()
    assert any("def test_" in b for b in blocks), "README shows no test"
    assert any("def test_" not in b for b in blocks), "README shows no script"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_block_runs(index: int, tmp_path: Path):
    code = python_blocks()[index]
    is_test = "def test_" in code
    path = tmp_path / (f"test_readme_{index}.py" if is_test else f"readme_{index}.py")
    path.write_text(code)
    argv = ([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(path)]
            if is_test else [sys.executable, str(path)])
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=540,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"README block {index} failed ({' '.join(argv)}):\n{out}"
    if is_test:
        # it ran once per installed implementation, and nothing was skipped
        installed = [n for n, cls in registry().items() if cls.unavailable() is None]
        tests = code.count("\ndef test_")
        assert f"{tests * len(installed)} passed" in out and "skipped" not in out, out


def test_readme_shows_a_scenario_file():
    assert scenario_blocks(), "README shows no scenario file"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("index", range(len(scenario_blocks())))
def test_readme_scenario_runs(index: int, tmp_path: Path):
    path = tmp_path / f"scenario_readme_{index}.toml"
    path.write_text(scenario_blocks()[index])
    argv = [sys.executable, "-m", "harness", "run", str(path), "--backend", "native",
            "--out", str(tmp_path / "out")]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=540,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"README scenario {index} failed ({' '.join(argv)}):\n{out}"
    assert "native: PASSED" in out, out
