"""Runs never collide, dead runs are reaped, live ones never are, the host is untouched."""

import json
import os
import signal
import subprocess
import sys
import textwrap

from tenacity import retry, stop_after_delay, wait_fixed

from harness import hostcheck, netns, runs
from harness.cluster import Cluster
from harness.faults import AdminDown, Partition, PullCable
from harness.topology import default_topology

VICTIM = textwrap.dedent("""
    import json, os, threading
    from pathlib import Path

    def test_victim(lab):
        pids = [lab.backend.daemon_pid(n.pnn) for n in lab.cluster.nodes]
        out = Path(os.environ["VICTIM_OUT"])
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"run": lab.cluster.run_id, "pid": os.getpid(),
                                   "daemons": pids}))
        tmp.rename(out)
        threading.Event().wait(600)  # mid-test: the outer test kills this process here
""")


def test_pytest_killed_mid_test_then_reaper_leaves_nothing(cluster, tmp_path):
    """A real pytest session, in the middle of a test with a running native
    cluster (daemons, recorders, faults), SIGKILLed: its teardown never
    runs. The reaper, scoped to that run, removes all of it."""
    case = tmp_path / "test_victim.py"
    case.write_text(VICTIM)
    out = tmp_path / "victim.json"
    victim = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend", "native",
         "--rootdir", str(tmp_path), str(case)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.getcwd(), "VICTIM_OUT": str(out)})
    try:
        @retry(stop=stop_after_delay(120), wait=wait_fixed(0.1), reraise=True)
        def mid_test() -> dict:
            assert victim.poll() is None, "the victim session ended by itself"
            return json.loads(out.read_text())
        seen = mid_test()
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    assert seen["pid"] == victim.pid  # the test ran in the pytest process that was killed
    rid = seen["run"]
    dead = runs.RunState(rid)
    assert not dead.is_alive()
    assert dead.namespaces() and dead.live_processes()  # left behind, daemons still running
    daemons = [p for p in dead.processes() if p.pid in seen["daemons"]]
    assert len(daemons) == len(seen["daemons"])
    removed = runs.reap(only=(rid,))
    assert f"netns fth-{rid}-n0" in removed
    assert dead.namespaces() == [] and netns.list_netns(f"fth-{rid}-") == []
    assert dead.mounts() == [] and not dead.dir.exists()
    assert not any(runs.alive(p.pid, p.start) for p in daemons)
    # the live run (this test's cluster) was not touched
    assert len(cluster.state.namespaces()) == 5 and cluster.state.dir.exists()
    cluster.nodes[0].run(["true"])


def test_reaper_keeps_kept_runs_until_forced():
    state = runs.RunState(runs.new_run_id()).claim()
    c = Cluster.create(default_topology(2).plain(), state)
    state.mark_kept()
    os_owner = state.owner()
    assert os_owner["kept"]
    # named, not forced: kept (a bare reap() would take other tests' dead runs)
    assert not any(x.startswith(f"netns fth-{state.run_id}")
                   for x in runs.reap(only=(state.run_id,)))
    removed = runs.reap(force=(state.run_id,))
    assert f"netns {c.plan.switch}" in removed and state.namespaces() == []


def test_a_kept_run_that_is_no_lab_is_listed_and_named_by_gc():
    # kept before a lab supervisor took it over (a test's setup failed): no
    # lab spec, so `harness ls` lists it as a run and `harness gc` says it stays
    state = runs.RunState(runs.new_run_id()).claim()
    Cluster.create(default_topology(2).plain(), state)
    state.mark_kept()
    rid = state.run_id
    try:
        def harness(*args: str) -> str:
            r = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return r.stdout

        listed = [ln for ln in harness("ls").splitlines() if rid in ln]
        assert listed == [f"kept run {rid} (--keep-on-failure, no lab): 4 namespace(s) "
                          f"{' '.join(state.namespaces())}; `harness gc --force {rid}` "
                          "removes it"]
        assert harness("gc", rid).splitlines() == [
            "nothing to remove", f"left kept run(s) {rid} (--keep-on-failure); "
            "`harness gc --force RUNID` or `harness gc --kept` removes them"]
        assert len(state.namespaces()) == 4  # n0, n1, the switch, the client
    finally:
        runs.reap(force=(rid,))
    assert state.namespaces() == []


def test_leak_audit_sees_what_teardown_missed():
    state = runs.RunState(runs.new_run_id()).claim()
    c = Cluster.create(default_topology(1).plain(), state)
    c.destroy()
    assert c.leftovers() == []
    netns.create_netns(state.ns_name("stray"))
    assert c.leftovers() == [f"netns fth-{state.run_id}-stray"]
    state.remove()
    assert c.leftovers() == []


def test_host_check_unchanged_by_a_cluster_and_faults():
    """Links, addresses, routes, nft ruleset, net sysctls and mounts of the host:
    a cluster's own rules, sysctls and namespace mounts stay out of them."""
    before = hostcheck.host_snapshot()
    assert before["sysctls"] and before["mounts"] and "nft" in before
    state = runs.RunState(runs.new_run_id()).claim()
    with Cluster.create(default_topology().plain(), state) as c:
        PullCable(c, 0, "eth1").apply()
        AdminDown(c, 1, "eth1").apply()
        c.nodes[2].run(["ip", "addr", "add", "203.0.113.201/24", "dev", "eth1"])
        Partition(c, [[0], [1, 2]]).apply()  # nftables rules, in the switch's namespace
        c.nodes[1].run(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=2"])
        c.nodes[1].run(["nft", "add", "table", "inet", "fth_probe"])
        assert hostcheck.diff_snapshots(before, hostcheck.host_snapshot()) == []
    state.remove()
    assert hostcheck.diff_snapshots(before, hostcheck.host_snapshot()) == []


def test_host_check_names_what_changed():
    before = hostcheck.host_snapshot()
    after = {k: list(v) for k, v in before.items()}
    after["nft"] = [*after["nft"], ("table inet stray {",)]
    after["sysctls"] = [(p, "1" if p == "ipv4/ip_forward" and v == "0" else
                         "0" if p == "ipv4/ip_forward" else v) for p, v in after["sysctls"]]
    after["mounts"] = [*after["mounts"], ("/mnt/stray", "tmpfs", "tmpfs")]
    diff = hostcheck.diff_snapshots(before, after)
    assert "nft: added ('table inet stray {',)" in diff
    assert "mounts: added ('/mnt/stray', 'tmpfs', 'tmpfs')" in diff
    assert any(d.startswith("sysctls: added ('ipv4/ip_forward'") for d in diff)


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
