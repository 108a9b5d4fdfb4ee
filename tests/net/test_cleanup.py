"""Runs never collide, dead runs are reaped, live ones never are, the host is untouched."""

import os
import signal
import subprocess
import sys
import textwrap

from tenacity import retry, stop_after_delay, wait_fixed

from harness import hostcheck, netns, runs
from harness.cluster import Cluster
from harness.faults import AdminDown, PullCable
from harness.topology import default_topology

CHILD = textwrap.dedent("""
    import sys, time
    from harness import runs
    from harness.cluster import Cluster
    from harness.topology import default_topology
    state = runs.RunState(runs.new_run_id()).claim()
    c = Cluster.create(default_topology().plain(), state)
    c.nodes[0].spawn(["sleep", "600"], "sleeper")
    print(state.run_id, flush=True)
    time.sleep(600)
""")


def test_kill_9_mid_run_then_reaper_leaves_nothing(cluster):
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        rid = child.stdout.readline().strip()
        dead = runs.RunState(rid)
        assert len(dead.namespaces()) == 5 and dead.live_processes()
        sleeper = dead.live_processes()[0]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    removed = runs.reap()
    assert f"netns fth-{rid}-n0" in removed
    assert dead.namespaces() == [] and not dead.dir.exists()
    assert not runs.alive(sleeper.pid, sleeper.start)
    # the live run (this test's cluster) was not touched
    assert len(cluster.state.namespaces()) == 5 and cluster.state.dir.exists()
    cluster.nodes[0].run(["true"])


def test_reaper_keeps_kept_runs_until_forced():
    state = runs.RunState(runs.new_run_id()).claim()
    c = Cluster.create(default_topology(2).plain(), state)
    state.mark_kept()
    os_owner = state.owner()
    assert os_owner["kept"]
    assert not any(x.startswith(f"netns fth-{state.run_id}") for x in runs.reap())
    removed = runs.reap(force=(state.run_id,))
    assert f"netns {c.plan.switch}" in removed and state.namespaces() == []


def test_leak_audit_sees_what_teardown_missed():
    state = runs.RunState(runs.new_run_id()).claim()
    c = Cluster.create(default_topology(1).plain(), state)
    c.destroy()
    assert c.leftovers() == []
    netns.create_netns(state.ns_name("stray"))
    assert c.leftovers() == [f"netns fth-{state.run_id}-stray"]
    state.remove()
    assert c.leftovers() == []


def test_host_links_addresses_routes_unchanged_by_a_cluster_and_faults():
    before = hostcheck.host_snapshot()
    state = runs.RunState(runs.new_run_id()).claim()
    with Cluster.create(default_topology().plain(), state) as c:
        PullCable(c, 0, "eth1").apply()
        AdminDown(c, 1, "eth1").apply()
        c.nodes[2].run(["ip", "addr", "add", "203.0.113.201/24", "dev", "eth1"])
    state.remove()
    assert hostcheck.diff_snapshots(before, hostcheck.host_snapshot()) == []


def test_two_clusters_at_once_under_xdist(tmp_path):
    case = tmp_path / "test_pair.py"
    case.write_text(textwrap.dedent("""
        import pytest
        from tenacity import retry, stop_after_delay, wait_fixed
        from harness import netns

        @pytest.mark.parametrize("k", [0, 1])
        def test_overlap(cluster, k, tmp_path_factory):
            mine = set(netns.list_netns(f"fth-{cluster.run_id}-"))
            @retry(stop=stop_after_delay(60), wait=wait_fixed(0.05), reraise=True)
            def other_cluster_exists():
                others = {n for n in netns.list_netns("fth-") if n.endswith("-sw")}
                others.discard(f"fth-{cluster.run_id}-sw")
                assert others
            other_cluster_exists()
            assert len(mine) == 5
    """))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(case)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert "2 passed" in r.stdout, r.stdout + r.stderr


@retry(stop=stop_after_delay(5), wait=wait_fixed(0.05), reraise=True)
def _gone(pid, start):
    assert not runs.alive(pid, start)


def test_teardown_stops_processes_by_pid(cluster):
    proc = cluster.nodes[1].spawn(["sleep", "300"], "sleeper")
    rec = proc.record
    cluster.stop_processes()
    _gone(rec.pid, rec.start)
