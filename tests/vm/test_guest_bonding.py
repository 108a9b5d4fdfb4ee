"""Smoke test of a real bonding device: runs in the VM (`make test-vm`) or on a host with bonding.

An active-backup bond with one veth slave, inside a throwaway namespace:
the slave going admin-down must leave the bond with no active slave, which
is exactly what CTDB's 10.interface checks in /proc/net/bonding/bond0.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from harness.builder import probe_bonding
from harness.wait import time_scale

TIME_SCALE = time_scale()


@pytest.fixture(scope="module")
def bonding_kernel() -> None:
    probe = probe_bonding()
    if not probe.ok:
        pytest.skip(f"{probe.why}; run the bond tests in a VM with `make test-vm`")


def ip(*args: str) -> str:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"ip {' '.join(args)}: {res.stderr.strip()}"
    return res.stdout


@pytest.fixture
def ns(bonding_kernel: None) -> Iterator[str]:
    name = f"fth-devvm-smoke-{os.getpid()}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        ip("netns", "del", name)


def bond_state(ns: str) -> str:
    return ip("netns", "exec", ns, "cat", "/proc/net/bonding/bond0")


def wait_for(ns: str, text: str, timeout: float) -> tuple[float, str]:
    """Poll /proc/net/bonding/bond0 until `text` appears; return the time it took."""
    t0 = time.monotonic()
    while True:
        state = bond_state(ns)
        if text in state:
            return time.monotonic() - t0, state
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"no {text!r} within {timeout:.1f} s; /proc/net/bonding/bond0:\n{state}")
        time.sleep(0.05)


@pytest.mark.needs_bonding
def test_active_backup_bond_loses_its_only_slave(ns: str) -> None:
    ip("-n", ns, "link", "add", "bond0", "type", "bond", "mode", "active-backup", "miimon", "100")
    ip("-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0p")
    ip("-n", ns, "link", "set", "veth0", "master", "bond0")  # veth0 is still down: enslavable
    for dev in ("veth0p", "veth0", "bond0"):
        ip("-n", ns, "link", "set", dev, "up")
    limit = 5.0 * TIME_SCALE  # miimon is 100 ms; the slack is scaled under emulation
    took_up, state = wait_for(ns, "Currently Active Slave: veth0", limit)
    assert "Bonding Mode: fault-tolerance (active-backup)" in state

    ip("-n", ns, "link", "set", "veth0", "down")
    took_down, state = wait_for(ns, "Currently Active Slave: None", limit)
    print(
        f"bond0 active after {took_up:.2f} s, no active slave {took_down:.2f} s after "
        f"the slave went down (HARNESS_TIME_SCALE={TIME_SCALE}, limit {limit:.1f} s)"
    )


@pytest.mark.vm_selftest
def test_selftest_fails_on_request() -> None:
    """The VM runner's own test runs this to see a failing test fail `make test-vm`."""
    if os.environ.get("HARNESS_VM_SELFTEST_FAIL") != "1":
        pytest.skip("fails only for the VM runner's self-test (HARNESS_VM_SELFTEST_FAIL=1)")
    pytest.fail("deliberate failure requested by HARNESS_VM_SELFTEST_FAIL=1")
