"""Which tests `make test-vm` hands the guest, checked on the host (no VM is booted).

The runner collects the marked tests here and passes their node ids on. In
the guest (HARNESS_IN_VM=1) a test's vm_backends marker then deselects the
implementations it does not name; everywhere else every implementation runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.vm.__main__ import host_collected
from harness.vm.runner import REPO

SELFTEST = "tests/vm/test_guest_bonding.py::test_selftest_fails_on_request"
ONE_OF_TWO = "tests/scenarios/test_link_faults.py::test_one_of_two_bond_slaves_lost_node_stays_ok"
VM_NATIVE_ONLY = (ONE_OF_TWO,
                  "tests/scenarios/test_link_faults.py::test_all_bond_slaves_lost_node_unhealthy",
                  "tests/scenarios/test_link_faults.py::test_8023ad_all_slaves_down_bond_up_is_unhealthy",
                  "tests/seed/test_seed.py::test_seed_bond_slave_down_default_tunables",
                  "tests/scenarios/files/scenario_bond.toml::bond")

pytestmark = pytest.mark.skipif(os.environ.get("HARNESS_IN_VM") == "1",
                                reason="about what the host hands the VM")


def test_host_collection_gives_node_ids_whatever_the_verbosity() -> None:
    for extra in ([], ["-v"], ["-vv", "-q"]):
        args = ["-m", "vm_selftest", "tests/vm/test_guest_bonding.py", *extra]
        assert host_collected(args) == [SELFTEST], extra


def test_host_collection_of_nothing_leaves_the_choice_to_the_guest() -> None:
    assert host_collected(["-m", "vm_selftest", "-k", "no_such_test_anywhere"]) == []


LINK_FAULTS = "tests/scenarios/test_link_faults.py"
VM_COVERED = (ONE_OF_TWO,  # covered in the VM by scenario_bond[native] or the seed test
              "tests/scenarios/test_link_faults.py::test_all_bond_slaves_lost_node_unhealthy",
              "tests/scenarios/test_link_faults.py::test_seed_bond_slave_admin_down")
FILES = (LINK_FAULTS, "tests/seed/test_seed.py", "tests/scenarios/files/scenario_bond.toml")


def collected(env_in_vm: bool, all_backends: bool = False, files: tuple[str, ...] = FILES
              ) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HARNESS_IN_VM", "HARNESS_VM_ALL_BACKENDS")}
    if env_in_vm:
        env["HARNESS_IN_VM"] = "1"
    if all_backends:
        env["HARNESS_VM_ALL_BACKENDS"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "needs_bonding", *files],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return [line for line in res.stdout.splitlines() if "::" in line]


def test_vm_backends_narrows_the_implementations_in_the_vm_only() -> None:
    host, vm = collected(env_in_vm=False), collected(env_in_vm=True)
    if f"{ONE_OF_TWO}[ctdb]" not in host:
        pytest.skip("the ctdb backend is not selected here")
    assert f"{ONE_OF_TWO}[native]" not in vm  # covered by scenario_bond[native]
    assert f"{ONE_OF_TWO}[ctdb]" not in vm
    assert set(host) - set(vm) == {f"{t}[ctdb]" for t in VM_NATIVE_ONLY} | \
        {f"{t}[native]" for t in VM_COVERED}
    assert "tests/scenarios/files/scenario_bond.toml::bond[native]" in vm
    assert f"{LINK_FAULTS}::test_seed_bond_slave_admin_down[ctdb]" in vm  # ctdbd's bond path
    everything = collected(env_in_vm=True, all_backends=True)
    assert set(everything) == set(host)


def test_a_covered_test_stays_when_its_cover_is_not_selected() -> None:
    vm = collected(env_in_vm=True, files=(LINK_FAULTS,))
    assert f"{ONE_OF_TWO}[native]" in vm
    assert f"{ONE_OF_TWO}[ctdb]" not in vm
