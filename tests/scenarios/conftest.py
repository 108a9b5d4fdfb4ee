"""Scenario suite: every test runs on each implementation (--backend) with a
recorder on one timeline, and ends with the invariant check.

Tunables: MonitorInterval 3 keeps tests short; RerecoveryTimeout 1 lets real
ctdbd finish start-up in ~13 s instead of ~23 s. A test's own
@pytest.mark.tunables adds to these.
"""

from __future__ import annotations

import os

import pytest

from harness.assertions import Bounds, assert_invariants

SCENARIO_TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vm_backends(*names): inside the emulated test VM (HARNESS_IN_VM=1), run only "
        "these implementations; everywhere else all of them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect, in the test VM only, the implementations a test's vm_backends leaves out.

    For a test whose real-ctdbd variant takes minutes under emulation while
    the 10.interface path it exercises is run on ctdbd by the other bond
    tests in the VM, the native implementation alone covers it there. On a
    host with a bonding driver every implementation still runs.
    """
    if os.environ.get("HARNESS_IN_VM") != "1":
        return
    keep, drop = [], []
    for item in items:
        only = item.get_closest_marker("vm_backends")
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend_name") if callspec else None
        (drop if only and name is not None and name not in only.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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

