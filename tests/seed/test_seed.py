"""The seed's experiment with CTDB's default tunables (MonitorInterval 15),
on each implementation: node 2 loses its public link; it must turn UNHEALTHY
at its next monitor run (0..15 s, or 5 s after a recent health change, plus
the run's own time) and its IPs must appear on healthy nodes about 2 s later.

Where the kernel has bonding (the VM), the fault is the seed's own: bond0's
only slave set down inside the node. Elsewhere the plain variant, where an
admin-down is healed by 10.interface, so the fault is a pulled cable.
The timeline and a summary are written to the test's artifacts.
"""

from __future__ import annotations

import json

import pytest

from harness.assertions import Bounds, assert_invariants, expect, expect_moved, has_flag
from harness.probe import outages
from harness.pytest_plugin import artifacts_dir
from harness.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
FAULTY = 2
SEED_TUNABLES: dict[str, int] = {}  # CTDB 4.17 defaults, as in the seed


@pytest.fixture
def default_tunables() -> dict[str, int]:
    return dict(SEED_TUNABLES)


def run_seed(request, cluster, backend, faults, timeline, recorder, tmp_path, bonded: bool):
    b = Bounds.of(backend, slack=2.0)  # the run time of a full CTDB monitor event
    ips = sorted(str(ip) for ip, p in backend.ips(0).items() if p == FAULTY)
    due = backend.monitor_due(FAULTY)
    fault = (faults.admin_down(FAULTY, "eth1") if bonded
             else faults.pull_cable(FAULTY, "eth1")).apply()
    bad = expect(timeline, "flags", node=FAULTY, after=fault.apply_event,
                 within=(0, b.detection(due)), where=has_flag("UNHEALTHY"))
    moved = expect_moved(timeline, ips, off=FAULTY, after=fault.apply_event, ref=bad,
                         within=b.detection(due) + b.takeover, takeover=b.takeover)
    # the client reaches every moved IP again (gratuitous ARP updated its cache)
    for ip in ips:
        wait_until(lambda ip=ip: any(o.end for o in outages(timeline, ip, since=fault.apply_event)),
                   b.takeover + 3, f"client reaches {ip} again")
    recorder.stop()
    assert_invariants(timeline, [str(p.address.ip) for p in cluster.topology.public_addresses],
                      takeover_bound=b.takeover)
    t0 = fault.apply_event.t
    summary = {
        "implementation": backend.name, "fault": fault.describe(),
        "MonitorInterval": backend.tunable("MonitorInterval"),
        "next_monitor_due_s": due,
        "detection_delay_s": round(bad.t - t0, 3),
        "takeover_delay_s": round(max(m.t for m in moved) - bad.t, 3),
        "end_to_end_s": round(max(m.t for m in moved) - t0, 3),
        "client_outage_s": {ip: round(max((o.duration for o in outages(timeline, ip, since=t0)
                                           if o.end), default=-1), 3) for ip in ips},
    }
    out = artifacts_dir(request) or tmp_path
    timeline.save(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\nseed summary:", json.dumps(summary))


def test_seed_pulled_cable_default_tunables(request, cluster, backend, faults, timeline,
                                            recorder, tmp_path):
    if cluster.topology.has_bonds:
        pytest.skip("plain-interface variant; the bond variant is test_seed_bond_slave_down")
    run_seed(request, cluster, backend, faults, timeline, recorder, tmp_path, bonded=False)


@pytest.mark.needs_bonding
def test_seed_bond_slave_down_default_tunables(request, cluster, backend, faults, timeline,
                                               recorder, tmp_path):
    run_seed(request, cluster, backend, faults, timeline, recorder, tmp_path, bonded=True)
