"""Preconditions and the host-integrity check.

The suite snapshots the host namespace's links, addresses and routes at the
start and compares at the end; any difference fails the run. Reading is all
this module does in the host namespace.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyroute2 import IPRoute

from harness import netns


def why_cannot_run() -> str | None:
    """None if namespaces can be built here, else one line saying why not."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (run under sudo, or `make test`)"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    if not os.access("/run", os.W_OK):
        return "/run is not writable; cannot create /run/netns"
    return None


def host_snapshot() -> dict[str, list[tuple]]:
    """Links, addresses and routes of the harness's own (host) namespace."""
    here = os.stat(f"/proc/{os.getpid()}/ns/net").st_ino
    if here != netns.host_netns_ino():
        raise RuntimeError("host_snapshot called from a thread inside another namespace")
    with IPRoute() as ipr:
        links = sorted(
            (m.get_attr("IFLA_IFNAME"), m["flags"] & 0x1, m.get_attr("IFLA_MTU"),
             m.get_attr("IFLA_ADDRESS"), m.get_attr("IFLA_MASTER"))
            for m in ipr.link("dump")
        )
        addrs = sorted(
            (m["index"], m.get_attr("IFA_ADDRESS"), m["prefixlen"])
            for m in ipr.addr("dump")
        )
        routes = sorted(
            (m["family"], m.get_attr("RTA_TABLE"), m.get_attr("RTA_DST") or "",
             m["dst_len"], m.get_attr("RTA_GATEWAY") or "", m.get_attr("RTA_OIF") or 0)
            for m in ipr.route("dump")
        )
    return {"links": links, "addresses": addrs, "routes": routes}


def diff_snapshots(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    out = []
    for key in before:
        gone = set(before[key]) - set(after[key])
        new = set(after[key]) - set(before[key])
        out += [f"{key}: removed {x}" for x in sorted(gone)]
        out += [f"{key}: added {x}" for x in sorted(new)]
    return out
