"""A lab from `harness up` to `harness down`, as a user drives it; a killed
supervisor; ctdbd in a lab; bad input; a failed test kept running.

End to end: the lab commands run as a user types them, `python -m harness
...` in subprocesses; every lab a test starts is taken down afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import hostcheck, netns, runs
from harness.assertions import Bounds
from harness.backends.ctdb import CtdbBackend
from harness.ctdb import DEFAULTS
from harness.seed import seed_topology
from harness.wait import time_scale

MONITOR_INTERVAL = 3
ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    """This checkout first on the path, whatever is installed."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), e.get("PYTHONPATH")) if x)
    return e


def harness(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, env=env(), stdin=subprocess.DEVNULL)


@dataclass
class LabInfo:
    """A lab as the tests see it from outside: its name, run, supervisor."""

    name: str
    run_id: str

    @property
    def dir(self) -> Path:
        return runs.STATE_ROOT / self.run_id

    def owner(self) -> tuple[int, int | None]:
        o = json.loads((self.dir / "owner.json").read_text())
        return int(o["pid"]), o.get("start")

    def daemons(self) -> list[tuple[int, int | None]]:
        acc = json.loads((self.dir / "lab" / "access.json").read_text())
        return [(n["daemon_pid"], n["daemon_start"]) for n in acc["nodes"] if n["daemon_pid"]]

    def leftovers(self, pids: list[tuple[int, int | None]]) -> list[str]:
        """What of the run still exists: namespaces, its directory, live processes."""
        out = [f"netns {n}" for n in netns.list_netns(f"{runs.PREFIX}{self.run_id}-")]
        if self.dir.exists():
            out.append(f"dir {self.dir}")
        out += [f"pid {p}" for p, s in pids if runs.alive(p, s)]
        return out


def lab_of(name: str) -> LabInfo:
    for d in runs.STATE_ROOT.iterdir():
        spec = d / "lab" / "lab.json"
        if spec.exists() and json.loads(spec.read_text())["name"] == name:
            return LabInfo(name, d.name)
    raise AssertionError(f"no lab {name} under {runs.STATE_ROOT}")


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    why = hostcheck.why_cannot_run()
    if why:
        pytest.skip(f"harness: {why}")


@pytest.fixture
def labs() -> Iterator[list[str]]:
    """Names of the labs a test starts: whatever happens, they go down after it."""
    names: list[str] = []
    yield names
    for name in names:
        harness("down", name)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A lab name no other test (or person) uses at the same time."""
    return f"t{os.getpid()}-{request.node.name[:20].replace('[', '-').rstrip(']')}"



def bounds() -> Bounds:
    """The bounds `Bounds.of(backend)` gives for a lab with MonitorInterval 3."""
    t = {**DEFAULTS, "MonitorInterval": MONITOR_INTERVAL}
    return Bounds(monitor_interval=t["MonitorInterval"], recover_interval=t["RecoverInterval"],
                  keepalive_interval=t["KeepaliveInterval"],
                  keepalive_limit=t["KeepaliveLimit"], takeover_timeout=t["TakeoverTimeout"],
                  slack=2.0, scale=time_scale())


def ctrl_c(proc: subprocess.Popen[str], timeout: float) -> int:
    """SIGINT, then its exit status; one that outlives `timeout` fails with
    what it was doing (kernel state, wait channel, kernel stack): one such hang
    was seen once in CI, beside a loaded machine, and not again."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        where = {}
        for name in ("wchan", "stack", "status"):
            try:
                where[name] = Path(f"/proc/{proc.pid}/{name}").read_text()
            except OSError as e:
                where[name] = str(e)
        state = next((x for x in where["status"].splitlines() if x.startswith("State")), "?")
        raise AssertionError(f"{proc.args} still running {timeout} s after SIGINT: {state}, "
                             f"wchan {where['wchan']!r}\n{where['stack']}") from None


def up(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    r = harness("up", "--name", name, "--tunable", f"MonitorInterval={MONITOR_INTERVAL}",
                *extra)
    assert r.returncode == 0, r.stderr
    return r


class Lines:
    """A command's stdout read line by line in the background, waited on with
    a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)

    def wait_for(self, pattern: str, timeout: float) -> str:
        rx = re.compile(pattern)
        for line in self.seen:
            if rx.search(line):
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n"
                             + "".join(self.seen))


def test_a_lab_from_up_to_down(labs, unique, tmp_path: Path):
    labs.append(unique)
    r = up(unique)
    assert r.stdout.startswith(f"{unique} is up: native, 3 nodes")
    assert f"harness down {unique}" in r.stdout
    lab = lab_of(unique)
    daemons, supervisor = lab.daemons(), lab.owner()

    ls = harness("ls")
    row = next(x for x in ls.stdout.splitlines() if x.startswith(unique))
    assert row.split()[1:3] == ["native", "3"] and row.endswith("0:OK 1:OK 2:OK"), ls.stdout

    # --since: what happened while watch itself was starting is shown too
    watch = subprocess.Popen([sys.executable, "-m", "harness", "watch", unique, "--since", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env())
    try:
        watched = Lines(watch)
        port = next(i for i in seed_topology().interfaces if i.network == "public").ports[0]
        b = bounds()
        t_fault = time.monotonic()
        f = harness("fault", unique, "pull-cable", "2", port)
        assert f.returncode == 0, f.stderr
        fid = f.stdout.split()[0]
        assert re.fullmatch(r"f\d+", fid), f.stdout
        # the implementation's own CLI says so within the bound (plus this CLI's start-up)
        deadline = t_fault + b.detection() + 3.0
        while True:
            st = harness("ctdb", unique, "0", "status")
            assert st.returncode == 0, st.stderr
            if re.search(r"^pnn:2 \S+\s+UNHEALTHY", st.stdout, re.M):
                break
            assert time.monotonic() < deadline, f"node 2 not UNHEALTHY in time:\n{st.stdout}"
            time.sleep(0.2)
        watched.wait_for(rf"FAULT {fid}: node 2 cable {port} pulled", 10)
        watched.wait_for(r"node 2 +flags OK -> UNHEALTHY", 10)
        watched.wait_for(r"client +outage \S+ over after", b.takeover + 5)
        assert ctrl_c(watch, 30) == 0
        assert watch.stderr is not None
        assert "Traceback" not in watch.stderr.read()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()

    saved = harness("save", unique, str(tmp_path / "out"))
    assert saved.returncode == 0, saved.stderr
    out = tmp_path / "out"
    for name in ("timeline.jsonl", "timeline.txt", "summary.json", "lab.json", "report.html",
                 "report.trace.json",
                 "logs/supervisor.log", "logs/node2.log", "config/node2/ctdb.tunables"):
        assert (out / name).is_file(), name
    assert "MonitorInterval=3" in (out / "config/node2/ctdb.tunables").read_text()
    (fault,) = json.loads((out / "summary.json").read_text())["faults"]
    assert fault["id"] == fid and fault["node"] == 2 and fault["undone_at_s"] is None
    assert 0 <= fault["detection_s"] <= b.detection()
    assert fault["ips"] and all(fault["moved_s"][ip] is not None for ip in fault["ips"])
    assert fault["takeover_s"] is not None and fault["takeover_s"] <= b.takeover
    assert all(0 < fault["client_outage_s"][ip] <= b.detection() + b.takeover + 1
               for ip in fault["ips"])

    down = harness("down", unique)
    assert down.returncode == 0 and down.stdout.strip() == f"{unique} is down", down
    assert lab.leftovers([*daemons, supervisor]) == []


def test_a_lab_from_a_field_etc_ctdb(labs, unique):
    labs.append(unique)
    sample = ROOT / "tests" / "unit" / "data" / "etc-ctdb" / "four-nodes"
    r = up(unique, "--from-ctdb", str(sample))
    assert r.stdout.startswith(f"{unique} is up: native, 4 nodes")
    assert re.search(r"^  10\.10\.1\.11 +-> 198\.18\.0\.1$", r.stdout, re.M), r.stdout
    lab = lab_of(unique)
    spec = json.loads((lab.dir / "lab" / "lab.json").read_text())
    assert spec["mapping"]["10.10.1.14"] == "198.18.0.4"
    assert spec["tunables"]["MonitorInterval"] == MONITOR_INTERVAL  # the command line wins
    row = next(x for x in harness("ls").stdout.splitlines() if x.startswith(unique + " "))
    assert row.endswith("0:OK 1:OK 2:OK 3:OK"), row
    daemons, supervisor = lab.daemons(), lab.owner()
    assert harness("down", unique).returncode == 0
    assert lab.leftovers([*daemons, supervisor]) == []


@pytest.mark.parametrize("remover", [("down",), ("gc",)], ids=["down", "gc"])
def test_a_killed_supervisor_leaves_nothing_once_removed(labs, unique, remover):
    labs.append(unique)
    up(unique)
    lab = lab_of(unique)
    daemons, (pid, start) = lab.daemons(), lab.owner()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(x.startswith(unique) and not x.endswith("dead")
              for x in harness("ls").stdout.splitlines()):
        assert time.monotonic() < deadline, "ls does not show the lab dead"
        time.sleep(0.1)
    # the daemons outlive their supervisor until the lab is removed
    assert lab.leftovers(daemons) != []
    # gc by run id: a bare `harness gc` beside the other tests would also
    # reap theirs (and a killed lab of a parallel test before it looked)
    r = harness(*remover, unique if remover == ("down",) else lab.run_id)
    assert r.returncode == 0, r.stderr
    assert lab.leftovers([*daemons, (pid, start)]) == []
    assert unique not in harness("ls").stdout


@pytest.mark.skipif(CtdbBackend.unavailable() is not None,
                    reason=f"ctdb backend: {CtdbBackend.unavailable()}")
def test_a_ctdbd_lab(labs, unique):
    labs.append(unique)
    up(unique, "--backend", "ctdb", "--tunable", "RerecoveryTimeout=1")
    lab = lab_of(unique)
    daemons, supervisor = lab.daemons(), lab.owner()
    st = harness("ctdb", unique, "status")
    assert st.returncode == 0 and re.search(r"^pnn:0 .*OK \(THIS NODE\)$", st.stdout, re.M), st
    # entering node 1 as its ctdbd sees it: its own /etc/ctdb and socket
    pnn = harness("exec", unique, "1", "--", "ctdb", "pnn")
    assert (pnn.returncode, pnn.stdout.strip()) == (0, "1"), pnn.stderr
    bad = harness("ctdb", unique, "1", "getvar", "NoSuchTunable")
    assert bad.returncode != 0  # ctdb's own status, passed through
    assert harness("down", unique).returncode == 0
    assert lab.leftovers([*daemons, supervisor]) == []


@pytest.fixture(scope="module")
def live_lab() -> Iterator[str]:
    name = f"t{os.getpid()}-bad-input"
    r = harness("up", "--name", name, "--tunable", f"MonitorInterval={MONITOR_INTERVAL}")
    assert r.returncode == 0, r.stderr
    yield name
    harness("down", name)


BAD = [
    ("ctdb", "no-such-lab", "status"),
    ("up", "--tunable", "NoSuchTunable=1"),
    ("up", "--tunable", "MonitorInterval"),
    ("up", "--script-option", "not a name=1"),
    ("up", "--name", "has space"),
    ("up", "--backend", "vms"),
    ("up", "--topology", "/nonexistent.toml"),
    ("up", "--from-ctdb", "/nonexistent"),
    ("up", "--bond", "bond0=active-backup:eth1"),
    ("exec", "{lab}", "7", "--", "true"),
    ("shell", "{lab}", "client:nope"),
    ("onnode", "{lab}", "0,5", "--", "true"),
    ("fault", "{lab}", "unplug", "2"),
    ("fault", "{lab}", "pull-cable", "9", "eth1"),
    ("fault", "{lab}", "pull-cable", "2"),
    ("fault", "{lab}", "kill", "1", "--for", "soon"),
    ("undo", "{lab}", "f999"),
    ("watch", "{lab}", "--since", "-3"),
    ("up", "--name", "{lab}"),
    ("gc", "nosuchrun"),
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_is_one_line_and_exit_2(live_lab, argv):
    r = harness(*(a.format(lab=live_lab) for a in argv))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"harness {argv[0]}: "), \
        r.stderr
    assert r.stdout == ""


def test_commands_run_in_nodes_with_their_exit_status(live_lab):
    r = harness("exec", live_lab, "1", "--", "sh", "-c", "ip -br addr show eth0; exit 3")
    assert r.returncode == 3 and "198.18.0.2/24" in r.stdout, r
    r = harness("exec", live_lab, "client", "--", "ip", "-br", "addr", "show", "eth0")
    assert r.returncode == 0 and "203.0.113.254/24" in r.stdout, r
    # a shell reads its commands from stdin like any shell
    r = subprocess.run([sys.executable, "-m", "harness", "shell", live_lab, "switch"],
                       input="ip -br link | grep -c UP; exit 5\n", capture_output=True,
                       text=True, timeout=60, env=env())
    assert r.returncode == 5 and int(r.stdout) >= 2, r
    # onnode's shape: each node's output after `>> NODE: <address> <<`; the last failure
    r = harness("onnode", live_lab, "0,2", "--", "ip -br addr show eth0 | cut -c1-4; exit 4")
    assert r.returncode == 4, r
    assert r.stdout.split() == ["eth0", "eth0"]
    assert r.stderr.split("\n") == ["", ">> NODE: 198.18.0.1 <<", "", ">> NODE: 198.18.0.3 <<", ""]
    r = harness("onnode", live_lab, "1", "--", "true")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_ctrl_c_during_up_leaves_nothing(labs, unique):
    # the Ctrl-C must land while the supervisor builds the lab; on a loaded
    # machine the up can finish first (exit 0, seen once in CI): that lab goes
    # down and the test tries again with a new one
    for attempt in range(3):
        name = f"{unique}-{attempt}"
        labs.append(name)
        up_ = subprocess.Popen([sys.executable, "-m", "harness", "up", "--name", name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env())
        try:
            deadline = time.monotonic() + 30
            while True:  # the supervisor is building the lab
                with contextlib.suppress(AssertionError, OSError, ValueError):
                    lab = lab_of(name)
                    break
                assert up_.poll() is None and time.monotonic() < deadline, up_.communicate()
                time.sleep(0.05)
            up_.send_signal(signal.SIGINT)
            out, err = up_.communicate(timeout=120)
        finally:
            if up_.poll() is None:
                up_.kill()
                up_.communicate()
        if up_.returncode == 0 and f"{name} is up" in out:
            assert harness("down", name).returncode == 0
            continue
        assert up_.returncode == 130 and "Traceback" not in err, err
        assert lab.leftovers([]) == []
        assert name not in harness("ls").stdout
        return
    raise AssertionError("every up finished before its Ctrl-C arrived")


FAILING = {
    "tests/test_fails.py": """
        def test_deliberately_fails(backend):
            assert False, "deliberately"
    """,
    "tests/scenario_fails.toml": """
        name = "fails-on-purpose"
        description = "A flag that never comes."
        implementations = ["native"]
        topology = {file = "plain.toml"}
        [tunables]
        MonitorInterval = 3
        [[steps]]
        fault = "pull-cable"
        id = "cut"
        node = 2
        port = "eth1"
        [[steps]]
        expect = "flag"
        node = 2
        flag = "BANNED"
        after = "cut"
        within = [0, 1]
    """,
}


@pytest.mark.parametrize("failing", list(FAILING), ids=["python", "scenario"])
def test_a_failed_test_keeps_running_as_a_lab(labs, tmp_path: Path, failing: str):
    path = tmp_path / failing
    path.parent.mkdir()
    path.write_text(textwrap.dedent(FAILING[failing]))
    (path.parent / "plain.toml").write_text(  # the scenario's topology file
        (ROOT / "tests" / "scenarios" / "files" / "seed-plain.toml").read_text())
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        "--keep-on-failure", "--backend", "native", failing],
                       cwd=tmp_path, capture_output=True, text=True, timeout=240, env=env())
    assert r.returncode == 1, r.stdout + r.stderr
    m = re.search(r"its cluster runs on as lab (\S+) \(run (\w+), native\)", r.stdout)
    assert m, r.stdout
    name = m.group(1)
    labs.append(name)
    assert f"harness down {name}" in r.stdout
    lab = lab_of(name)
    assert lab.run_id == m.group(2)
    row = next(x for x in harness("ls").stdout.splitlines() if x.startswith(name + " "))
    assert row.endswith("0:OK 1:OK 2:OK"), row  # the test's daemons, still running
    assert harness("ctdb", name, "1", "status").returncode == 0
    daemons, supervisor = lab.daemons(), lab.owner()
    assert harness("down", name).returncode == 0
    assert lab.leftovers([*daemons, supervisor]) == []
