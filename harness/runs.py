"""Run ids, the on-disk record of what a run owns, and the reaper.

Every namespace a run creates is named `fth-<runid>-<role>`; every process it
starts is recorded (pid + kernel start time, so a reused pid is never killed)
in /run/fth/<runid>/. A run is alive while its owner process (pid + start
time) is. `harness gc` removes what dead runs left and never touches a live
run's objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from harness import netns

PREFIX = "fth-"
STATE_ROOT = Path(os.environ.get("FTH_STATE_DIR", "/run/fth"))


def new_run_id() -> str:
    return secrets.token_hex(3)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the comm field (from the state on), or None if gone;
    comm may contain spaces and parentheses: split after the last ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def proc_start_time(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of pid, or None if gone.

    A zombie counts as gone: it runs nothing, and its parent may be a pid 1
    that never reaps it.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def proc_session(pid: int) -> int | None:
    """The session id of pid (the pid of its session's leader), or None if gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[3])


def alive(pid: int, start: int | None) -> bool:
    now = proc_start_time(pid)
    return now is not None and (start is None or now == start)


@dataclass(frozen=True)
class ProcRecord:
    pid: int
    start: int
    what: str


class RunState:
    """The files under /run/fth/<runid>/ that say what this run owns."""

    def __init__(self, run_id: str, root: Path = STATE_ROOT) -> None:
        self.run_id = run_id
        self.dir = root / run_id

    # -- ownership -------------------------------------------------------
    def claim(self) -> RunState:
        """Mark this process as the owner (the run is alive while it lives)."""
        self.dir.mkdir(parents=True, exist_ok=False)
        pid = os.getpid()
        owner = {"pid": pid, "start": proc_start_time(pid), "created": time.time()}
        (self.dir / "owner.json").write_text(json.dumps(owner))
        return self

    def take_over(self) -> RunState:
        """Make this process the owner of a run another process claimed: a lab
        supervisor taking over from `harness up`, or from a failed test kept
        running (--keep-on-failure). The run is alive while the new owner is."""
        o = self.owner()
        if o is None:
            raise FileNotFoundError(f"run {self.run_id} has no owner record in {self.dir}")
        pid = os.getpid()
        o.update(pid=pid, start=proc_start_time(pid))
        o.pop("kept", None)
        tmp = self.dir / "owner.json.tmp"
        tmp.write_text(json.dumps(o))
        tmp.replace(self.dir / "owner.json")
        return self

    def owner(self) -> dict | None:
        try:
            return json.loads((self.dir / "owner.json").read_text())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        o = self.owner()
        if not o:
            return False
        return bool(o.get("kept")) or alive(int(o["pid"]), o.get("start"))

    def mark_kept(self) -> None:
        """Keep this run past its owner's exit (--keep-on-failure); gc --force removes it."""
        o = self.owner() or {}
        o["kept"] = True
        (self.dir / "owner.json").write_text(json.dumps(o))

    def is_kept(self) -> bool:
        return bool((self.owner() or {}).get("kept"))

    # -- names -------------------------------------------------------------
    def ns_name(self, role: str) -> str:
        return f"{PREFIX}{self.run_id}-{role}"

    def namespaces(self) -> list[str]:
        return netns.list_netns(f"{PREFIX}{self.run_id}-")

    # -- processes -----------------------------------------------------------
    def record_process(self, pid: int, what: str) -> ProcRecord:
        start = proc_start_time(pid)
        rec = ProcRecord(pid, start or 0, what)
        with open(self.dir / "procs.jsonl", "a") as f:
            f.write(json.dumps(rec.__dict__) + "\n")
        return rec

    def processes(self) -> list[ProcRecord]:
        try:
            lines = (self.dir / "procs.jsonl").read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                out.append(ProcRecord(**json.loads(line)))
        return out

    def live_processes(self) -> list[ProcRecord]:
        return [p for p in self.processes() if alive(p.pid, p.start)]

    def mounts(self) -> list[str]:
        """Mount points (in our mount namespace) under this run's directory."""
        base = str(self.dir) + "/"
        out = []
        with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                if mp.startswith(base):
                    out.append(mp)
        return out

    # -- removal -------------------------------------------------------------
    def kill_everything(self, grace: float = 1.0) -> None:
        """Stop recorded processes and any process inside our namespaces, by pid."""
        targets: dict[int, int | None] = {p.pid: p.start for p in self.processes()}
        for pid in netns.pids_in_netns(self.namespaces()):
            targets.setdefault(pid, proc_start_time(pid))
        targets.pop(os.getpid(), None)
        live = {p: s for p, s in targets.items() if alive(p, s)}
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while live and time.monotonic() < deadline:
            live = {p: s for p, s in live.items() if alive(p, s)}
            if live:
                time.sleep(0.02)
        for pid, start in live.items():
            if alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for pid in live:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def remove(self) -> list[str]:
        """Remove everything this run owns; returns what was removed."""
        removed = []
        self.kill_everything()
        for mp in sorted(self.mounts(), reverse=True):
            with contextlib.suppress(OSError):
                netns._check(netns._libc.umount2(mp.encode(), netns.MNT_DETACH), mp)
                removed.append(f"mount {mp}")
        for name in self.namespaces():
            if netns.remove_netns(name):
                removed.append(f"netns {name}")
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
            removed.append(f"dir {self.dir}")
        return removed


def known_run_ids(root: Path = STATE_ROOT) -> set[str]:
    ids = set()
    for name in netns.list_netns(PREFIX):
        rest = name[len(PREFIX):]
        if "-" in rest:
            ids.add(rest.split("-", 1)[0])
    with contextlib.suppress(OSError):
        ids.update(p.name for p in root.iterdir() if p.is_dir())
    return ids


def kept_run_ids(root: Path = STATE_ROOT) -> list[str]:
    """Runs kept by --keep-on-failure: `harness gc` leaves them, so `ls` and
    `gc` name them (a run kept before its cluster was up is no lab)."""
    return sorted(rid for rid in known_run_ids(root) if RunState(rid, root).is_kept())


def reap(root: Path = STATE_ROOT, force: tuple[str, ...] = (), kept: bool = False,
         only: tuple[str, ...] | None = None) -> list[str]:
    """Remove the leftovers of every dead run (`harness gc`), or of the runs
    in `only` (`harness down` of a lab whose supervisor died).

    Live runs are never touched. Runs kept by --keep-on-failure stay unless
    named in `force` or `kept` is set.
    """
    removed = []
    for rid in sorted(known_run_ids(root)):
        if only is not None and rid not in only:
            continue
        state = RunState(rid, root)
        if state.is_kept():
            if rid not in force and not kept:
                continue
        elif state.is_alive():
            continue
        # a run whose owner record is still being written is less than a
        # moment old: leave it unless its namespaces are older than 10 s
        if state.owner() is None and state.dir.exists():
            age = time.time() - state.dir.stat().st_mtime
            if age < 10:
                continue
        removed.extend(state.remove())
    return removed
