"""Tests of the VM runner itself: they boot real qemu VMs on the host (about 15-40 s each).

Kept to three: the exit status of a failing test comes back, a hung guest is
killed at the hard timeout with nothing left running, and a good command
returns 0 with the time scale exported and an artifact written back.
Deselect with `-m "not vm_runner"`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.vm.runner import QEMU, RC_TIMEOUT, REPO

pytestmark = [
    pytest.mark.vm_runner,
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.environ.get("HARNESS_IN_VM") == "1", reason="no VMs inside the VM"),
    pytest.mark.skipif(shutil.which(QEMU) is None, reason=f"{QEMU} missing: `make vm-deps`"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the VM runner is run as root (make test)"),
]


def runner(*args: str, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run `python -m harness.vm ARGS`; the subprocess timeout backs up the runner's own."""
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "harness.vm", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout + 60, check=False,
    )  # fmt: skip
    out = res.stdout + res.stderr
    print(out)
    return res.returncode, out, time.monotonic() - t0


def qemu_pids(out: str) -> list[int]:
    """All qemu pids the runner started, from its summary line."""
    m = re.search(r"summary: .*qemu pids (\d+(?:,\d+)*)", out)
    return [int(p) for p in m.group(1).split(",")] if m else []


def test_failing_test_in_vm_fails_the_run() -> None:
    rc, out, _ = runner(
        "pytest", "--timeout", "400", "--no-calibrate", "--",
        "-m", "vm_selftest", "tests/vm/test_guest_bonding.py",
        timeout=400, env={"HARNESS_VM_SELFTEST_FAIL": "1"},
    )  # fmt: skip
    assert "deliberate failure requested" in out  # the guest's pytest output streamed back
    assert rc == 1, out


def test_hung_guest_is_killed_at_the_timeout() -> None:
    rc, out, took = runner("run", "--timeout", "30", "--no-calibrate", "--", "sleep", "1000",
                           timeout=30)
    assert rc == RC_TIMEOUT, out
    assert "TIMEOUT: hard timeout of 30 s reached" in out
    assert took < 30 + 25, f"runner took {took:.1f} s for a 30 s timeout"
    pids = qemu_pids(out)
    assert pids, out
    for pid in pids:
        comm = Path(f"/proc/{pid}/comm")
        alive = comm.exists() and comm.read_text().startswith("qemu")
        assert not alive, f"qemu pid {pid} survived the runner"


# make test's own VM run shows the same (exit 0, scale exported, artifacts back);
# this boot on its own is for make test-slow
@pytest.mark.long
def test_good_command_returns_zero_with_scale_and_artifact(tmp_path: Path) -> None:
    script = 'echo "$HARNESS_TIME_SCALE" >"$HARNESS_VM_ARTIFACTS/scale"; echo guest-says-hello'
    rc, out, _ = runner("run", "--timeout", "300", "--artifacts", str(tmp_path), "--",
                        "sh", "-c", script, timeout=300)
    assert rc == 0, out
    assert "guest-says-hello" in out
    scale = float((tmp_path / "scale").read_text())
    assert scale >= 1.0
    assert f"time scale {scale}" in out  # reported on the host as well
