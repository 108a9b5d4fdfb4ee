"""The cluster lock's service (topology cluster_lock = "etcd"): an etcd in the
run's `lock` namespace on the private switch, healthy when the cluster is
built, cut off by partitions like any host of the private network (it stays
with the largest group), its log on the timeline, gone after teardown."""

from __future__ import annotations

import dataclasses
import http.client

import pytest

from harness import netns
from harness.faults import Partition
from harness.lockservice import CLIENT_PORT, EtcdService
from harness.record import Recorder, Timeline
from harness.topology import Topology, TopologyError, topology_from_dict, topology_to_dict
from harness.wait import wait_until

pytestmark = pytest.mark.skipif(EtcdService.unavailable() is not None,
                                reason=str(EtcdService.unavailable()))


@pytest.fixture
def topology(topology: Topology) -> Topology:
    return dataclasses.replace(topology, cluster_lock="etcd").validated()


def reaches_etcd(cluster, pnn: int, timeout: float = 3.0) -> bool:
    """An HTTP answer from etcd's /health, asked from inside node pnn (a loaded
    machine was seen to need more than 1 s; a cut-off node never answers)."""
    def ask(_route: object) -> bool:
        conn = http.client.HTTPConnection(cluster.lock_service.address, CLIENT_PORT,
                                          timeout=timeout)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()
    return bool(netns.in_netns(cluster.nodes[pnn].netns, ask))


def reached(cluster, pnns: list[int], timeout: float = 10.0) -> None:
    """Every node in pnns gets an answer from etcd within the deadline (a
    loaded machine was seen to miss a first 1 s attempt)."""
    wait_until(lambda: all(reaches_etcd(cluster, p) for p in pnns), timeout,
               f"nodes {pnns} reach etcd")


def test_etcd_runs_in_the_lock_namespace_with_the_run_id(cluster):
    service = cluster.lock_service
    assert service is not None and service.healthy()
    assert cluster.plan.lock in cluster.state.namespaces()
    assert cluster.run_id in cluster.plan.lock
    recorded = {p.pid for p in cluster.state.processes()}
    assert service.proc.pid in recorded, "etcd is not in the run's process record (reaper)"
    assert list(netns.pids_in_netns([cluster.plan.lock])) == [service.proc.pid]
    reached(cluster, [n.pnn for n in cluster.nodes])
    # one cluster for the three checks (each build + etcd start costs ~1.5 s)
    partition_keeps_the_lock_host_with_the_majority(cluster)
    restart_logs_on_the_timeline(cluster)


def partition_keeps_the_lock_host_with_the_majority(cluster):
    with Partition.isolate(cluster, 0) as cut:
        assert cut.lock_group == 1
        assert not reaches_etcd(cluster, 0)
        reached(cluster, [1, 2])
    reached(cluster, [0])


def restart_logs_on_the_timeline(cluster):
    timeline = Timeline("lock")
    with Recorder(cluster, timeline, netlink=False):
        t0, _ = cluster.lock_service.kill()
        assert not cluster.lock_service.healthy()
        cluster.lock_service.start()
        assert cluster.lock_service.healthy()
        timeline.wait_for("log", after=t0, node=None, timeout=5,
                          where=lambda e: e.data["path"].endswith("etcd.log"))


def test_teardown_stops_etcd(topology):
    from harness.cluster import Cluster
    c = Cluster.create(topology)
    pid = c.lock_service.proc.pid
    c.destroy()
    assert c.leftovers() == []
    assert not c.lock_service.running(), f"etcd pid {pid} still runs"


def test_cluster_lock_key_is_checked():
    top = topology_from_dict({"cluster_lock": "etcd"})
    assert top.cluster_lock == "etcd" and topology_from_dict(topology_to_dict(top)) == top
    assert "cluster_lock" not in topology_to_dict(topology_from_dict({}))  # old files stay equal
    with pytest.raises(TopologyError, match=r"^t.toml: cluster_lock = 'zk'; use one of"):
        topology_from_dict({"cluster_lock": "zk"}, "t.toml")
