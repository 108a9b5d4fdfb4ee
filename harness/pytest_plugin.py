"""pytest plugin: `topology` and `cluster` fixtures, markers, options, reaper,
leak audit and the host-integrity check. Registered through the `pytest11`
entry point; a user's conftest needs nothing.

    def test_pulled_cable(backend, faults, timeline, recorder):
        fault = faults.pull_cable(1, "eth1").apply()
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from harness import backends, builder, hostcheck, lab, runs
from harness.backends import ctdb_install
from harness.backends.base import Backend
from harness.cluster import Cluster
from harness.faults import Faults
from harness.labs.handover import hand_over
from harness.record import Recorder, Timeline
from harness.topology import Topology, TopologyError, default_topology

VM_HINT = "the kernel has no bonding driver; run the bond tests in a VM with `make test-vm`"
_report_key = pytest.StashKey[dict[str, pytest.TestReport]]()
_snapshot_key = pytest.StashKey[dict]()
_backend_key = pytest.StashKey[Backend]()
_html_key = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "failover test harness")
    group.addoption("--keep-on-failure", action="store_true",
                    help="keep a failed test's cluster running as a lab (`harness ls`) and "
                         "print how to use it")
    group.addoption("--artifacts", metavar="DIR", default=None,
                    help="write logs and timelines of failed tests under DIR")
    group.addoption("--report", metavar="DIR", default=None,
                    help="write a run report (one HTML page and a Chrome trace) of every "
                         "failed test, and of tests marked `report`, under DIR")
    group.addoption("--backend", default="all", metavar="NAME",
                    help="failover implementation(s): native, ctdb or all (default: all "
                         "that are installed)")
    group.addoption("--ctdb-prefix", metavar="DIR", default=None,
                    help="run the ctdb backend on a Samba installed under DIR (`./configure "
                         "--prefix=DIR && make install`) instead of Debian's ctdb "
                         "(also: FTH_CTDB_PREFIX)")


def pytest_configure(config: pytest.Config) -> None:
    try:  # before the workers start: they inherit the choice through the environment
        ctdb_install.choose(config.getoption("--ctdb-prefix"))
    except ctdb_install.CtdbInstallError as e:
        raise pytest.UsageError(str(e)) from None
    for line in (
        "cluster(nodes=, bond=, slaves=, plain=, miimon=): topology overrides for `cluster`",
        "tunables(**NAME_VALUE): CTDB tunables for the `backend` fixture "
        "(default MonitorInterval=3)",
        "script_options(**NAME_VALUE): event-script options, e.g. "
        "CTDB_PARTIALLY_ONLINE_INTERFACES='yes'",
        "event_mode: the native implementation's event-driven monitor (CTDB has none)",
        "no_tickles: native daemons run with --no-tickles (no tickle ACKs, no killtcp); "
        "on ctdbd the smbd stand-ins register no connections",
        "backends(*names): restrict a test to these implementations",
        "breaks_invariants: the test breaks the cluster on purpose and checks invariants itself",
        "needs_bonding: needs a kernel with the bonding driver (elsewhere: `make test-vm`)",
        "needs_full_kernel: uses kernel features this CI kernel lacks (netem); also run in "
        "the VM by `make test-vm`",
        "slow: long-running test (still part of `make test`)",
        "report: write this test's run report even when it passes (with --report or "
        "--artifacts)",
        "long: soaks, many-seed differentials, 64-node trials: only `make test-slow` runs them",
        "vm_backends(*names): inside the emulated test VM (HARNESS_IN_VM=1), run only these "
        "implementations (HARNESS_VM_ALL_BACKENDS=1: all); everywhere else all of them",
        "vm_covered_by(nodeid_prefix): inside the emulated test VM, leave this test out when "
        "a selected test with that node id prefix runs on the same implementation "
        "(HARNESS_VM_ALL_BACKENDS=1: keep it); everywhere else it runs",
    ):
        config.addinivalue_line("markers", line)


OUTER_SESSION_ENV = "FTH_OUTER_SESSION"
"""Set by the outermost test session (its pid), inherited by any session it starts."""


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if hostcheck.why_cannot_run() is not None:
        return
    if not _is_worker(session.config):
        # A session started by a test of another one (a victim to kill, a
        # scenario run, a collection check) leaves the reaping to the outer
        # one: its reap of every dead run took a lab whose killed supervisor
        # a parallel test was still looking at.
        if os.environ.get(OUTER_SESSION_ENV) is None:
            os.environ[OUTER_SESSION_ENV] = str(os.getpid())
            removed = runs.reap()
            if removed:
                print(f"harness: reaped leftovers of dead runs: {len(removed)} objects")
        session.stash[_snapshot_key] = hostcheck.host_snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.stash.get(_snapshot_key, None)
    if before is None:
        return
    diff = hostcheck.diff_snapshots(before, hostcheck.host_snapshot())
    if diff:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "harness: the host namespace changed during the run:\n  " + "\n  ".join(diff)
        if tr:
            tr.write_line(msg, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _vm_backends(config, items)
    reason = hostcheck.why_cannot_run()
    for item in items:
        needs_ns = "cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker(
            "needs_bonding") or item.get_closest_marker("scenario")
        if reason and needs_ns:
            item.add_marker(pytest.mark.skip(reason=f"harness: {reason}"))
        elif item.get_closest_marker("needs_bonding") and not reason \
                and not builder.kernel_has_bonding():
            item.add_marker(pytest.mark.skip(reason=VM_HINT))


def _vm_backends(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect, in the test VM only, the implementations a test's vm_backends
    leaves out, and the tests whose path a test that does run there covers.

    Under emulation real ctdbd takes minutes per test, and every cluster's
    start-up about a minute; where the 10.interface path a test exercises is
    run by another bond test in the VM (vm_backends: on ctdbd; vm_covered_by:
    on the same implementation, e.g. scenario_bond's second slave lost covers
    all slaves lost), that other test alone covers it there, so `make test`
    stays within its time. A covered test stays if its cover is not selected
    in this session (it is never dropped for a test that does not run). A
    host with a bonding driver (CI runners) runs everything, and so does
    `make test-slow`'s VM run (HARNESS_VM_ALL_BACKENDS=1).
    """
    if os.environ.get("HARNESS_IN_VM") != "1" or \
            os.environ.get("HARNESS_VM_ALL_BACKENDS") == "1":
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        only = item.get_closest_marker("vm_backends")
        (drop if only and _implementation(item) not in (None, *only.args) else keep).append(item)
    covered = [i for i in keep if i.get_closest_marker("vm_covered_by")]
    for item in covered:
        cover = item.get_closest_marker("vm_covered_by").args[0]  # type: ignore[union-attr]
        impl = _implementation(item)
        if any(o.nodeid.startswith(cover) and _implementation(o) == impl
               for o in keep if o not in covered):
            keep.remove(item)
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _implementation(item: pytest.Item) -> str | None:
    """A parametrised test's backend_name, or a scenario file's item's implementation."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        return callspec.params.get("backend_name")
    return getattr(item, "implementation", None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo
                               ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    item.stash.setdefault(_report_key, {})[rep.when] = rep
    html = item.stash.get(_html_key, None)
    if rep.when == "teardown" and html is not None:
        _attach_to_pytest_html(item, rep, html)
    return rep


def _attach_to_pytest_html(item: pytest.Item, rep: pytest.TestReport, html: Path) -> None:
    """With pytest-html installed, the run report's chart goes into its report."""
    plugin = item.config.pluginmanager.getplugin("html")
    if plugin is None:
        return
    try:
        import pytest_html
    except ImportError:
        return
    extras = [pytest_html.extras.url(str(html), name="run report")]
    chart = html.with_suffix(".chart.svg")
    if chart.is_file():
        extras.append(pytest_html.extras.html(chart.read_text()))
    rep.extras = [*getattr(rep, "extras", []), *extras]  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every run report written, one path a line, after the failures."""
    paths = [content for reps in terminalreporter.stats.values() for rep in reps
             for name, content in getattr(rep, "sections", [])
             if name == "Captured run report teardown"]
    if paths:
        terminalreporter.write_sep("-", "run reports")
        for p in paths:
            terminalreporter.write_line(p.splitlines()[0])


def test_failed(request: pytest.FixtureRequest) -> bool:
    reps = request.node.stash.get(_report_key, {})
    return any(r.failed for r in reps.values())


def artifacts_path(config: pytest.Config, nodeid: str) -> Path | None:
    """Where a test's artifacts go (only with --artifacts); not created here."""
    base = config.getoption("--artifacts")
    if not base:
        return None
    return Path(base) / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)


def artifacts_dir(request: pytest.FixtureRequest) -> Path | None:
    """Per-test artifacts directory (only with --artifacts), created."""
    path = artifacts_path(request.config, request.node.nodeid)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    return path


def apply_marker(topology: Topology, marker: pytest.Mark | None) -> Topology:
    """Apply @pytest.mark.cluster(nodes=, bond=, slaves=, plain=, miimon=...)."""
    if marker is None:
        return topology
    kw = dict(marker.kwargs)
    if kw.pop("plain", False):
        topology = topology.plain()
    if "nodes" in kw:
        topology = topology.resized(int(kw.pop("nodes")))
    if "bond" in kw:
        mode = kw.pop("bond")
        bond_kw = {k: kw.pop(k) for k in ("miimon", "updelay", "downdelay") if k in kw}
        topology = topology.with_bond(mode, int(kw.pop("slaves", 1)), **bond_kw)
    if kw:
        raise TopologyError(f"@pytest.mark.cluster: unknown arguments {sorted(kw)}")
    return topology


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Topology:
    """The seed's 3-node cluster; without bonding in the kernel, its plain variant.

    Override per module by defining a `topology` fixture of your own.
    """
    base = default_topology()
    bonds_wanted = request.node.get_closest_marker("needs_bonding") is not None
    if not bonds_wanted and not builder.kernel_has_bonding():
        base = base.plain()
    return base


def _keeping(request: pytest.FixtureRequest) -> Callable[[], bool]:
    """Asked at teardown: keep this test's cluster (--keep-on-failure and it failed)?"""
    keep = request.config.getoption("--keep-on-failure")
    return lambda: keep and test_failed(request)


def _hand_over(request: pytest.FixtureRequest, cluster: Cluster) -> str | None:
    """A failed test's running cluster to a lab supervisor (None: no daemons ran,
    so there is nothing to keep running)."""
    impl = request.node.stash.get(_backend_key, None)
    if impl is None:
        return None
    return hand_over(cluster, impl, request.node.nodeid)


@pytest.fixture
def cluster(request: pytest.FixtureRequest, topology: Topology) -> Iterator[Cluster]:
    """A freshly built cluster (harness.lab.built_cluster), removed afterwards
    whatever happens; a leak fails the test. With --keep-on-failure a failed
    test's cluster runs on as a lab if a backend ran on it, else its
    namespaces stay. Scope: function; depends on `topology` and
    @pytest.mark.cluster."""
    top = apply_marker(topology, request.node.get_closest_marker("cluster"))
    try:
        with lab.built_cluster(top, keep=_keeping(request),
                               hand_over=lambda c: _hand_over(request, c)) as c:
            yield c
    except lab.LeakError as e:
        pytest.fail(str(e), pytrace=False)


# -- failover implementations ------------------------------------------------

DEFAULT_TUNABLES = {"MonitorInterval": 3}  # CTDB's 15 makes every test slow


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" not in metafunc.fixturenames:
        return
    try:
        names = backends.selected(metafunc.config.getoption("--backend"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    only = metafunc.definition.get_closest_marker("backends")
    if only:
        names = [n for n in names if n in only.args]
    metafunc.parametrize("backend_name", names, scope="function")


@pytest.fixture
def backend_name() -> str:
    return "native"


@pytest.fixture
def default_tunables() -> dict[str, int]:
    """Tunables under every test's own @pytest.mark.tunables; override per directory."""
    return dict(DEFAULT_TUNABLES)


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict:
    out: dict = {}
    for mark in reversed(list(request.node.iter_markers(name))):
        out.update(mark.kwargs)
    return out


@pytest.fixture
def backend(request: pytest.FixtureRequest, cluster: Cluster, backend_name: str,
            default_tunables: dict[str, int]) -> Iterator[Backend]:
    """The chosen implementation running on `cluster`, converged (all OK, IPs
    placed), via harness.lab.started_backend. Scope: function; depends on
    `cluster`, `backend_name` (parametrized by --backend) and
    `default_tunables`. Tunables come from @pytest.mark.tunables (default
    MonitorInterval=3), script options from @pytest.mark.script_options;
    on failure the daemons' logs go under --artifacts, and with
    --keep-on-failure the daemons keep running (see `cluster`)."""
    tunables = {**default_tunables, **_marker_kwargs(request, "tunables")}
    options = {k: str(v) for k, v in _marker_kwargs(request, "script_options").items()}
    event_mode = request.node.get_closest_marker("event_mode") is not None
    if event_mode and backend_name != "native":
        pytest.skip(f"{backend_name}: CTDB has no event-driven monitor; this test is about "
                    "the native implementation's --event-mode")
    try:
        tickles = request.node.get_closest_marker("no_tickles") is None
        with lab.started_backend(cluster, backend_name, tunables, options,
                                 event_mode=event_mode, tickles=tickles,
                                 keep=_keeping(request)) as impl:
            request.node.stash[_backend_key] = impl
            yield impl
    except lab.BackendUnavailable as e:
        pytest.skip(str(e))
    out = artifacts_dir(request)
    if out is not None and test_failed(request):
        impl.collect(out)


# -- timeline, recorder, faults ------------------------------------------------


@pytest.fixture
def timeline(request: pytest.FixtureRequest) -> Iterator[Timeline]:
    """One timeline per test (CLOCK_MONOTONIC). Scope: function; no
    dependencies. On failure it is saved under --artifacts (JSON Lines +
    table) with its run report, and its table is added to the report; its
    delays become JUnit properties (harness.report)."""
    tl = Timeline(request.node.name)
    yield tl
    _report_timeline(request, tl)


def _report_timeline(request: pytest.FixtureRequest, tl: Timeline) -> None:
    """At the end of a test: its delays as JUnit properties; when it failed
    the table in the report and the timeline under --artifacts; the run
    report under --report (failed or marked `report`) or --artifacts (failed)."""
    from harness.report import write_report
    from harness.report.runs import info_for, junit_properties, measured_delays, save_run

    failed = test_failed(request)
    backend = request.node.stash.get(_backend_key, None)
    info = info_for(request.node.nodeid, backend, "failed" if failed else "passed")
    if failed:
        request.node.add_report_section("teardown", "timeline", tl.table())
    wanted = failed or request.node.get_closest_marker("report") is not None
    out = report_path(request.config, request.node.nodeid) if wanted else None
    artifacts = artifacts_dir(request) if failed else None
    if artifacts is not None:
        tl.save(artifacts)
    try:  # a broken report must not hide why the test failed
        if tl.first("fault.apply") is not None:
            request.node.user_properties.extend(junit_properties(measured_delays(tl, info)))
        files = None
        if out is not None:
            files = save_run(tl, info, out)
        elif artifacts is not None:  # beside the timeline saved just above
            files = write_report(tl, info, artifacts)
        if files is not None:
            request.node.stash[_html_key] = files.html
            request.node.add_report_section("teardown", "run report",
                                            f"{files.html}\ntrace: {files.trace}")
    except Exception as e:  # noqa: BLE001 - reported, never raised
        request.node.add_report_section("teardown", "run report error",
                                        f"no run report: {type(e).__name__}: {e}")


def report_path(config: pytest.Config, nodeid: str) -> Path | None:
    """Where --report puts a test's run report (None without --report)."""
    base = config.getoption("--report")
    if not base:
        return None
    return Path(base) / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)


@pytest.fixture
def recorder(cluster: Cluster, timeline: Timeline, backend: Backend) -> Iterator[Recorder]:
    """Netlink listeners in every namespace, a status poller of every node
    (100 ms), the daemons' logs and a client prober of every public IP
    (harness.lab.recording). Scope: function; depends on `cluster`,
    `timeline` and `backend`."""
    with lab.recording(cluster, timeline, backend, poll_interval=0.1, probe=True) as rec:
        yield rec


@pytest.fixture
def faults(cluster: Cluster, timeline: Timeline, backend: Backend) -> Iterator[Faults]:
    """The fault catalogue bound to this test's cluster, timeline and backend
    (harness.lab.fault_catalogue): whatever is still applied at the end is
    undone, and an undo that fails fails the test. Scope: function; depends
    on `cluster`, `timeline` and `backend`."""
    with lab.fault_catalogue(cluster, timeline, backend) as f:
        yield f


@pytest.fixture(name="lab")
def lab_fixture(cluster: Cluster, backend: Backend, timeline: Timeline, recorder: Recorder,
         faults: Faults) -> lab.Lab:
    """All of the above as one harness.lab.Lab (what `running_cluster` yields),
    for code shared with the CLI such as harness.seed.run_seed."""
    return lab.Lab(cluster, backend, timeline, faults, recorder, backend.ready_at or 0.0)
