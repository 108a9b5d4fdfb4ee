"""Preconditions and the host-integrity check.

The suite snapshots the host namespace at the start and compares at the end;
any difference fails the run. The snapshot holds what a harness bug could
change there: links, addresses, routes, the nftables ruleset, every net
sysctl (/proc/sys/net, as the host namespace sees it) and the mount table.
Mounts of runs (namespace handles under /run/netns/fth-*, anything under the
runs' state root) come and go with concurrent sessions and are left out:
each run's own leak audit (harness.cluster) checks those. So is /run/netns
itself: iproute2 mounts it (once per boot, for good) the first time any
namespace is created, as on a fresh CI machine or in the test VM. Reading is
all this module does in the host namespace.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pyroute2 import IPRoute

from harness import netns
from harness.runs import STATE_ROOT

VOLATILE_SYSCTLS = frozenset({"nf_conntrack_count"})
"""Counters the kernel changes by itself."""


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
    return {"links": links, "addresses": addrs, "routes": routes, "nft": nft_ruleset(),
            "sysctls": net_sysctls(), "mounts": host_mounts()}


def nft_ruleset() -> list[tuple]:
    """The host's nftables ruleset, one line each (nft runs in our own namespace)."""
    try:
        out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except FileNotFoundError:
        return [("nft not installed",)]
    return [(line.strip(),) for line in out.splitlines() if line.strip()]


def net_sysctls(root: Path = Path("/proc/sys/net")) -> list[tuple]:
    """(path, value) of every readable net sysctl (write-only ones are skipped)."""
    out = []
    for d, _, files in os.walk(root):
        for name in files:
            if name in VOLATILE_SYSCTLS:
                continue
            path = Path(d, name)
            try:
                out.append((str(path.relative_to(root)), path.read_text().strip()))
            except OSError:
                continue
    return sorted(out)


def host_mounts() -> list[tuple]:
    """(mount point, fs type, source) of our mount namespace, runs' own mounts left out."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mp, fstype, source = fields[4], fields[sep + 1], fields[sep + 2]
            if mp == "/run/netns" or mp.startswith("/run/netns/fth-") \
                    or mp.startswith(str(STATE_ROOT) + "/"):
                continue
            out.append((mp, fstype, source))
    return sorted(out)


def diff_snapshots(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    out = []
    for key in before:
        gone = set(before[key]) - set(after.get(key, []))
        new = set(after.get(key, [])) - set(before[key])
        out += [f"{key}: removed {x}" for x in sorted(gone)]
        out += [f"{key}: added {x}" for x in sorted(new)]
    return out
