"""Scenario suite: every test runs on each implementation (--backend) with a
recorder on one timeline, and ends with the invariant check.

Tunables: MonitorInterval 3 keeps tests short; RerecoveryTimeout 1 lets real
ctdbd finish start-up in ~13 s instead of ~23 s. A test's own
@pytest.mark.tunables adds to these.
"""

from __future__ import annotations

import pytest

from harness.assertions import Bounds, assert_invariants

SCENARIO_TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1}


# Scenario files that run on the native implementation only in the emulated
# VM (make test's time): scenario_bond waits a whole scaled monitor gap for
# nothing to happen, which takes real ctdbd there over 3 minutes. ctdbd's
# bond path runs in the VM in test_seed_bond_slave_admin_down[ctdb]; hosts
# that bond, and make test-slow's VM run, run scenario_bond on both.
VM_NATIVE_ONLY = {"bond"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        scenario = getattr(item, "scenario", None)
        if scenario is not None and scenario.name in VM_NATIVE_ONLY:
            item.add_marker(pytest.mark.vm_backends("native"))


@pytest.fixture
def default_tunables() -> dict[str, int]:
    return dict(SCENARIO_TUNABLES)


@pytest.fixture
def bounds(backend) -> Bounds:
    return Bounds.of(backend)


@pytest.fixture
def public_ips(cluster) -> list[str]:
    return [str(p.address.ip) for p in cluster.topology.public_addresses]


@pytest.fixture
def duplicates_allowed_on() -> set[int]:
    """Nodes whose daemon the test kills or hangs: they cannot give up their IPs."""
    return set()


@pytest.fixture(autouse=True)
def invariants(request, timeline, recorder, backend, public_ips, duplicates_allowed_on):
    """After the test body: no split brain, no IP left on an UNHEALTHY node past
    the takeover bound, every ARP answer from a holder."""
    yield
    if request.node.get_closest_marker("breaks_invariants"):
        return
    recorder.stop()
    assert_invariants(timeline, public_ips, takeover_bound=Bounds.of(backend).takeover,
                      allow_duplicates_on=duplicates_allowed_on)

