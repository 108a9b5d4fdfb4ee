"""Failover implementations the harness can run, by name."""

from __future__ import annotations

from harness.backends.base import Backend
from harness.backends.ctdb import CtdbBackend
from harness.backends.native import NativeBackend


def registry() -> dict[str, type[Backend]]:
    """Every backend by name."""
    return {"native": NativeBackend, "ctdb": CtdbBackend}


def selected(option: str) -> list[str]:
    """Names chosen by --backend (native, ctdb, all, or a comma list)."""
    names = list(registry()) if option == "all" else [n.strip() for n in option.split(",")]
    unknown = [n for n in names if n not in registry()]
    if unknown:
        raise ValueError(f"--backend: unknown {unknown}; use native, ctdb or all")
    return names
