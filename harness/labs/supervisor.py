"""The process that owns a lab, and starting one.

`start(files)` launches `python -m harness.labs.supervisor RUN --ready-fd N`
detached (its own session, stdin /dev/null, output to the lab's
supervisor.log) and blocks on a pipe until the supervisor writes one line:
`ready` once the cluster converged (or was adopted), or `error MESSAGE`.

The supervisor takes over the run's ownership (so the reaper treats the lab
as live exactly while it lives), enters `running_cluster` with its own
timeline followed by the journal, publishes how to reach each node
(access.json), answers fault/undo/stop requests on its socket, and on stop
(`harness down`, SIGTERM) leaves its `with` block: faults undone, daemons
stopped, namespaces and the run's directory removed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import harness
from harness import runs
from harness.faults import Fault, FaultCancelled, FaultError, FaultSpecError, build_fault
from harness.faults.kinds import fault_kind
from harness.lab import Lab, deferred_interrupts, running_cluster
from harness.labs.control import ControlServer, Reply, Request
from harness.labs.journal import Journal, Timeline
from harness.labs.state import LabAccess, LabFiles, LabSpec, NodeAccess

# Status polls per node: the time resolution of the flags on the timeline.
# ctdbd's CLI is two processes per poll (nsenter, ctdb): every 0.1 s on 3
# nodes that is two thirds of a core here, for as long as the lab lives.
POLL_INTERVAL = {"native": 0.1, "ctdb": 0.5}
# ctdbd logs two lines per CLI connection: the status polls alone would make
# them nearly all of a lab's timeline (the daemon's log file keeps them).
LOG_PATTERN = r"^(?!.*(?:Connected client with pid|Registered message handler for srvid))"
PROBE_PERIOD = 0.05  # client probes: the outages' resolution, for as long as the lab lives
READY_TIMEOUT = 600.0  # a supervisor silent this long is stuck: stopped, run removed
STOP_TIMEOUT = 120.0  # ctdbd's shutdown takes up to 15 s a node (in parallel)

log = logging.getLogger("harness.labs.supervisor")


class SupervisorFailed(RuntimeError):
    """The supervisor did not get the lab running; str() is its one-line reason."""


# -- the parent side -----------------------------------------------------------------

def _code_root() -> str:
    """The directory holding this `harness` package: the supervisor (and the
    daemons it starts) must run this very code, wherever the user stands."""
    return str(Path(harness.__file__).resolve().parent.parent)


def start(files: LabFiles, timeout: float = READY_TIMEOUT) -> float:
    """Start the lab's supervisor and wait for its readiness line; returns the
    seconds it took. On error, Ctrl-C or timeout the supervisor is stopped (by
    its pid) and nothing of the run is left; then SupervisorFailed (or
    KeyboardInterrupt) is raised."""
    t0 = time.monotonic()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (_code_root(), env.get("PYTHONPATH")) if x)
    proc: subprocess.Popen[bytes] | None = None
    r, w = os.pipe()
    try:
        with open(files.log_path, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.labs.supervisor", files.run_id,
                 "--ready-fd", str(w)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, pass_fds=(w,),
                start_new_session=True, cwd="/", env=env)
        os.close(w)
        w = -1
        line = _read_line(r, timeout)
    except BaseException:
        with deferred_interrupts():
            if proc is not None:
                _stop_child(proc)
            files.run.remove()
        raise
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if line.startswith("ready"):
        return time.monotonic() - t0
    with deferred_interrupts():
        _stop_child(proc)
        last = _last_log_line(files)
        files.run.remove()
    if line.startswith("error "):
        raise SupervisorFailed(line[len("error "):])
    if line == "":
        raise SupervisorFailed(f"the supervisor exited without a word ({last})")
    raise SupervisorFailed(f"no readiness within {timeout:g} s ({last})")


def _read_line(fd: int, timeout: float) -> str:
    """One line from the pipe; '' at EOF; '\\0' after the timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return "\0"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\n", 1)[0].strip()


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the supervisor tears down on it), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _last_log_line(files: LabFiles) -> str:
    with contextlib.suppress(OSError):
        lines = [x for x in files.log_path.read_text(errors="replace").splitlines() if x.strip()]
        if lines:
            return f"last log line: {lines[-1].strip()[:300]}"
    return "no log"


# -- the supervisor ------------------------------------------------------------------

class Supervisor:
    """Owns one lab from take-over to removal."""

    def __init__(self, files: LabFiles, ready_fd: int | None) -> None:
        self.files = files
        self.spec: LabSpec = files.spec()
        self.ready_fd = ready_fd
        self.phase = "starting"  # -> running -> stopping
        self.stop = threading.Event()
        self.lab: Lab | None = None
        self.lock = threading.Lock()  # one fault operation at a time
        self.faults: dict[str, Fault] = {}  # the faults made through `harness fault`
        self.timers: list[threading.Thread] = []
        self.publishing = threading.Lock()
        self.poll_interval = POLL_INTERVAL.get(self.spec.implementation, 0.5)

    # -- lifecycle ---------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        state = runs.RunState(self.spec.run_id)
        journal: Journal | None = None
        failure = None
        try:
            state.take_over()
            journal = Journal(self.files.journal_path, Timeline(self.spec.name))
            self._run(state, journal.timeline)
        except KeyboardInterrupt:
            failure = "stopped by a signal before it was ready"
            log.info("lab %s: %s", self.spec.name, failure)
        except BaseException as e:  # noqa: BLE001 - reported, after everything is removed
            failure = _one_line(e)
            log.exception("lab %s failed", self.spec.name)
        finally:
            self.phase = "stopping"
            if journal is not None:
                journal.close()
            with deferred_interrupts():
                state.remove()  # whatever the `with` block could not (a failed build)
        log.info("lab %s: run %s removed", self.spec.name, self.spec.run_id)
        if failure is not None:
            self._report(f"error {failure}")
            return 1
        return 0

    def _run(self, state: runs.RunState, timeline: Timeline) -> None:
        spec = self.spec
        log.info("lab %s: %s %s, run %s", spec.name, "adopting" if spec.adopt else "building",
                 spec.implementation, spec.run_id)
        with running_cluster(spec.build_topology(), spec.implementation, spec.tunables,
                             spec.script_options, event_mode=spec.event_mode, name=spec.name,
                             state=state, adopt=spec.adopt, timeline=timeline,
                             poll_interval=self.poll_interval, probe=True,
                             probe_period=PROBE_PERIOD, probe_max_s=float("inf"),
                             log_pattern=LOG_PATTERN) as lab:
            self.lab = lab
            self.publish_access()
            server = ControlServer(self.files.socket_path, self.handle).start()
            try:
                self.phase = "running"
                self._report("ready")
                log.info("lab %s: ready", spec.name)
                self.stop.wait()
                log.info("lab %s: stopping", spec.name)
            finally:
                self.phase = "stopping"
                server.close()
                self._cancel_timers()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """While starting, abort the setup (its teardown runs); while running, stop;
        while stopping, nothing can hurry the teardown."""
        if self.phase == "starting":
            self.phase = "stopping"
            raise KeyboardInterrupt
        if self.phase == "running":
            self.stop.set()

    def _report(self, line: str) -> None:
        """The readiness line to `start()` (once)."""
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, (line.replace("\n", " ") + "\n").encode())
            os.close(self.ready_fd)
        self.ready_fd = None

    # -- what the CLI reads directly -----------------------------------------------
    def publish_access(self) -> None:
        """access.json: each node's daemon, how to enter it and run its CLI."""
        lab = self.lab
        if lab is None:
            return
        with self.publishing:
            self.files.write_access(self._access(lab))

    def _access(self, lab: Lab) -> LabAccess:
        cluster, backend = lab.cluster, lab.backend
        nodes = []
        for node in cluster.nodes:
            pid = start = None
            enter = cli = None
            with contextlib.suppress(Exception):
                pid = backend.daemon_pid(node.pnn)
                start = runs.proc_start_time(pid)
            if start is not None:
                with contextlib.suppress(Exception):
                    enter = backend.enter_argv(node.pnn)
                with contextlib.suppress(Exception):
                    cli = backend.cli_argv(node.pnn)
            nodes.append(NodeAccess(
                pnn=node.pnn, address=str(node.address().ip), netns=node.netns,
                daemon_pid=pid if start is not None else None, daemon_start=start,
                enter=enter, cli=cli, log=str(backend.log_path(node.pnn)),
                config=[str(p) for p in backend.config_files(node.pnn)]))
        return LabAccess(
            nodes=nodes, clients={name: c.netns for name, c in cluster.clients.items()},
            switch=cluster.switch.netns, t0=lab.timeline.t0, ready_at=lab.ready_at,
            poll_interval=self.poll_interval)

    # -- requests ----------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        if req.op == "ping":
            return Reply(True, {"phase": self.phase, "faults": self._fault_list()})
        if req.op == "stop":
            self.stop.set()
            return Reply(True)
        if self.phase != "running" or self.lab is None:
            return Reply(False, error=f"lab {self.spec.name} is {self.phase}")
        if req.op == "fault":
            return self._fault(req.args)
        if req.op == "undo":
            return self._undo(str(req.args.get("target", "")))
        return Reply(False, error=f"unknown request {req.op!r}", usage=True)

    def _fault_list(self) -> list[dict[str, Any]]:
        return [{"id": f.id, "desc": f.describe(), "applied": f.applied}
                for f in self.faults.values()]

    def _fault(self, args: dict[str, Any]) -> Reply:
        assert self.lab is not None
        kind, params = str(args.get("kind", "")), [str(x) for x in args.get("params", [])]
        for_s, in_s = args.get("for_s"), args.get("in_s")
        try:
            check_fault(kind, params, self.lab.cluster.topology.nodes)
            with self.lock:
                fault = build_fault(self.lab.faults, kind, params)
        except (FaultSpecError, FaultError) as e:
            return Reply(False, error=str(e), usage=True)
        except Exception as e:  # noqa: BLE001 - e.g. a catalogue method not in this build
            return Reply(False, error=f"{kind}: {_one_line(e)}")
        self.faults[fault.id] = fault
        if in_s is None:
            try:
                with self.lock:
                    fault.apply()
            except Exception as e:  # noqa: BLE001 - marked fault.error on the timeline
                return Reply(False, error=f"{fault.id} {fault.describe()}: {_one_line(e)}")
            finally:
                self.publish_access()
        if in_s is not None or for_s is not None:
            at = None if in_s is None else time.monotonic() + float(in_s)
            t = threading.Thread(target=self._schedule, args=(fault, at, for_s),
                                 name=f"fault-{fault.id}", daemon=True)
            self.timers.append(t)
            t.start()
        log.info("fault %s: %s (in %s, for %s)", fault.id, fault.describe(), in_s, for_s)
        return Reply(True, {"id": fault.id, "desc": fault.describe(), "in_s": in_s,
                            "for_s": for_s})

    def _schedule(self, fault: Fault, at: float | None, for_s: float | None) -> None:
        """Apply at `at` (prepared now, acting on time), undo `for_s` after the act."""
        try:
            if at is not None:
                fault.apply(at=at)
                self.publish_access()
            if for_s is not None and fault.t_applied is not None:
                end = fault.t_applied[0] + float(for_s)
                if self.stop.wait(max(0.0, end - time.monotonic())):
                    return  # stopping: the catalogue undoes it
                with self.lock:
                    fault.undo()
                self.publish_access()
        except FaultCancelled:
            log.info("fault %s: cancelled before acting", fault.id)
        except Exception:  # noqa: BLE001 - on the timeline as fault.error, and logged
            log.exception("fault %s", fault.id)

    def _undo(self, target: str) -> Reply:
        chosen = list(self.faults.values()) if target == "all" else [self.faults.get(target)]
        if chosen == [None]:
            known = ", ".join(self.faults) or "none yet"
            return Reply(False, error=f"no fault {target!r} in lab {self.spec.name} (faults: "
                                      f"{known}); give an id or 'all'", usage=True)
        done, errors = [], []
        for f in reversed([f for f in chosen if f is not None]):
            f.abort.set()  # a scheduled apply that has not acted gives up
            try:
                with self.lock:
                    was = f.applied
                    f.undo()
                if was:
                    done.append(f.id)
            except Exception as e:  # noqa: BLE001 - collected, the others still undone
                errors.append(f"{f.id}: {_one_line(e)}")
        self.publish_access()
        if errors:
            return Reply(False, {"undone": done}, error="; ".join(errors))
        return Reply(True, {"undone": done})

    def _cancel_timers(self) -> None:
        for f in self.faults.values():
            f.abort.set()
        for t in self.timers:
            t.join(10)


def check_fault(kind: str, params: Sequence[str], nodes: int) -> None:
    """The kind and its arguments parse, and every node number is one of the lab's."""
    values = fault_kind(kind).parse(list(params))
    pnns: list[int] = []
    for key, value in values.items():
        if key == "node":
            pnns.append(value)
        elif key in ("src", "dst"):
            pnns.extend(value)
        elif key == "groups":
            pnns.extend(p for group in value for p in group)
    bad = sorted({p for p in pnns if p >= nodes})
    if bad:
        raise FaultSpecError(f"{kind}: no node {bad[0]} in this lab (nodes 0-{nodes - 1})")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, RuntimeError | ValueError | OSError) else \
        f"{type(e).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.labs.supervisor",
                                description="owns one lab (started by `harness up`)")
    p.add_argument("run_id")
    p.add_argument("--ready-fd", type=int, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    files = LabFiles(args.run_id)
    return Supervisor(files, args.ready_fd).run()


if __name__ == "__main__":
    sys.exit(main())
