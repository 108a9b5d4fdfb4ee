"""Markers of the VM runner's tests (pyproject.toml belongs to the whole suite)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "vm_runner: boots qemu VMs to test harness.vm itself (deselect: -m 'not vm_runner')",
    )
    config.addinivalue_line(
        "markers",
        "vm_selftest: fails on purpose, only when the VM runner's own tests ask for it",
    )
