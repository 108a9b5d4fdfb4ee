"""run_event with real scripts in a temporary directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from harness.failover.eventscripts import (
    EXEC_FAILED,
    EventResult,
    EventStatus,
    ScriptStatus,
    list_scripts,
    run_event,
)


def script(directory: Path, name: str, body: str, *, executable: bool = True) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def run(directory: Path, event: str, args: tuple[str, ...] = (), timeout: float = 10.0, **kw):
    return asyncio.run(run_event(directory, event, args, timeout, **kw))


def alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (reparented zombies may linger)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_dead(pid: int, within: float = 2.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_runs_in_name_order_with_event_args(tmp_path: Path) -> None:
    log = tmp_path / "log"
    for name in ("50.last", "01.first", "10.middle"):
        script(tmp_path, name, f'echo "{name} $*" >> {log}')
    result = run(tmp_path, "takeip", ("eth1", "198.51.100.7", "24"))
    assert result.ok and result.describe() == "OK"
    assert log.read_text().splitlines() == [
        "01.first takeip eth1 198.51.100.7 24",
        "10.middle takeip eth1 198.51.100.7 24",
        "50.last takeip eth1 198.51.100.7 24",
    ]
    assert [r.name for r in result.scripts] == ["01.first", "10.middle", "50.last"]
    assert result.script is None and result.returncode is None


def test_only_two_digit_dot_names_count(tmp_path: Path) -> None:
    log = tmp_path / "log"
    for name in ("README", "1.short", "abc.10", "100.three", "10.", "10.backup~", "10-dash"):
        script(tmp_path, name, f"echo {name} >> {log}")
    script(tmp_path, "20.real", f"echo 20.real >> {log}")
    result = run(tmp_path, "monitor")
    assert result.ok
    assert log.read_text().split() == ["20.real"]
    # A directory with a valid name cannot run: it counts as disabled, like CTDB.
    (tmp_path / "30.dir").mkdir()
    assert [(n, e) for n, _, e in list_scripts(tmp_path)] == [("20.real", True), ("30.dir", False)]


def test_script_suffix_is_dropped_from_the_log_name(tmp_path: Path) -> None:
    message = "ERROR: No link on the public network interface eth1"
    script(tmp_path, "10.interface.script", f"echo '{message}'; exit 1")
    result = run(tmp_path, "monitor")
    assert result.script == "10.interface"
    assert result.log_lines() == [
        "10.interface: ERROR: No link on the public network interface eth1"
    ]


def test_non_executable_scripts_are_disabled_not_failed(tmp_path: Path) -> None:
    log = tmp_path / "log"
    script(tmp_path, "10.off", f"echo off >> {log}; exit 1", executable=False)
    script(tmp_path, "20.on", f"echo on >> {log}")
    result = run(tmp_path, "monitor")
    assert result.ok
    assert log.read_text().split() == ["on"]
    assert [(r.name, r.status) for r in result.scripts] == [
        ("10.off", ScriptStatus.DISABLED),
        ("20.on", ScriptStatus.OK),
    ]


def test_first_failure_stops_the_event(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script(tmp_path, "10.ok", "echo fine")
    script(tmp_path, "20.bad", "echo 'to stdout'; echo 'ERROR: to stderr' >&2; exit 3")
    script(tmp_path, "30.never", f"touch {marker}")
    result = run(tmp_path, "monitor")
    assert result.status is EventStatus.FAILED
    assert result.describe() == "FAILED(3)"
    assert (result.script, result.returncode) == ("20.bad", 3)
    assert result.output == "to stdout\nERROR: to stderr\n"
    assert [r.name for r in result.scripts] == ["10.ok", "20.bad"]
    assert not marker.exists()
    assert result.log_lines() == [
        "10.ok: fine",
        "20.bad: to stdout",
        "20.bad: ERROR: to stderr",
    ]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    marker = tmp_path / "ran"
    script(tmp_path, "10.hang", f"echo started; sleep 60 & echo $! > {pidfile}; wait")
    script(tmp_path, "20.never", f"touch {marker}")
    started = time.monotonic()
    result = run(tmp_path, "monitor", timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.status is EventStatus.TIMEOUT
    assert result.describe() == "TIMEOUT"
    assert result.script == "10.hang" and result.returncode is None
    assert result.output == "started\n"
    assert 0.5 <= elapsed < 3.0
    assert wait_dead(int(pidfile.read_text()))
    assert not marker.exists()


def test_timeout_is_one_deadline_for_the_whole_event(tmp_path: Path) -> None:
    script(tmp_path, "10.slow", "sleep 0.4")
    script(tmp_path, "20.slow", "sleep 0.4")
    result = run(tmp_path, "monitor", timeout=0.6)
    assert result.status is EventStatus.TIMEOUT
    assert result.script == "20.slow"
    assert [r.status for r in result.scripts] == [ScriptStatus.OK, ScriptStatus.TIMEOUT]
    assert result.duration < 2.0


def test_background_child_holding_output_does_not_delay_the_event(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    script(tmp_path, "10.spawn", f"(sleep 30; echo late) & echo $! > {pidfile}; echo early")
    try:
        started = time.monotonic()
        result = run(tmp_path, "startup", timeout=10)
        assert result.ok
        assert result.scripts[0].output == "early\n"
        assert time.monotonic() - started < 3.0
    finally:
        # The subshell and its sleep share the script's process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(int(pidfile.read_text())), signal.SIGKILL)


def test_cancelling_the_event_kills_the_running_script(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script(tmp_path, "10.hang", f"sleep 60 & echo $! > {pidfile}; wait")

    async def cancel_midway() -> None:
        task = asyncio.create_task(run_event(tmp_path, "monitor", (), 30))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if pidfile.exists() and pidfile.read_text().strip():
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert wait_dead(int(pidfile.read_text()))


def test_empty_directory_is_ok(tmp_path: Path) -> None:
    result = run(tmp_path, "ipreallocated")
    assert isinstance(result, EventResult)
    assert (result.status, result.scripts, result.script) == (EventStatus.OK, (), None)


def test_releaseip_args_and_environment(tmp_path: Path) -> None:
    script(tmp_path, "10.env", 'echo "$1 $2 $3 $4 $CTDB_BASE"')
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CTDB_BASE": "/tmp/node1"}
    result = run(tmp_path, "releaseip", ("eth1", "198.51.100.7", "24"), env=env)
    assert result.scripts[0].output == "releaseip eth1 198.51.100.7 24 /tmp/node1\n"
    assert result.args == ("eth1", "198.51.100.7", "24")


def test_killed_by_a_signal_is_a_failure(tmp_path: Path) -> None:
    script(tmp_path, "10.suicide", "kill -TERM $$")
    result = run(tmp_path, "monitor")
    assert result.status is EventStatus.FAILED
    assert result.returncode == -signal.SIGTERM


def test_unexecutable_script_fails_the_event(tmp_path: Path) -> None:
    path = tmp_path / "10.noshebang"
    path.write_bytes(b"\x7fELF garbage")
    path.chmod(0o755)
    result = run(tmp_path, "monitor")
    assert result.describe() == f"FAILED({EXEC_FAILED})"
    assert result.script == "10.noshebang"
    assert result.output.startswith("cannot execute:")


@pytest.mark.parametrize(
    ("event", "args"),
    [("bogus", ()), ("takeip", ("eth1", "198.51.100.7")), ("monitor", ("extra",))],
)
def test_bad_event_or_arguments_are_rejected(tmp_path: Path, event: str, args: tuple) -> None:
    with pytest.raises(ValueError):
        run(tmp_path, event, args)


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run(tmp_path / "nope", "monitor")
