"""Reaching into a lab from the command line: a node as its daemon sees it, a
client or the switch, and the implementation's CLI on a node.

Everything here works from access.json (published by the supervisor), not
through the supervisor, so a shell or `ctdb status` works while it is busy.
A node's entry may go through its daemon's pid (ctdbd's mount namespace), so
it is used only once that very process (pid and start time) is checked to
be alive and inside the node's network namespace: a reused pid is never
entered.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from harness import netns, runs
from harness.cluster import IP
from harness.labs.state import LabAccess, LabError, LabUnavailable, NodeAccess


@dataclass(frozen=True)
class Target:
    """Where a command runs: an argv prefix, and what to call it in messages."""

    label: str
    prefix: list[str]
    note: str = ""  # said on stderr before entering (e.g. the daemon is down)


def daemon_running(node: NodeAccess) -> bool:
    """The daemon access.json names is alive and inside the node's namespace."""
    if node.daemon_pid is None or not runs.alive(node.daemon_pid, node.daemon_start):
        return False
    try:
        return os.stat(f"/proc/{node.daemon_pid}/ns/net").st_ino == netns.netns_ino(node.netns)
    except OSError:
        return False


def node_of(access: LabAccess, text: str, lab: str) -> NodeAccess:
    """A node by pnn; bad input is a LabError naming the lab's nodes."""
    n = len(access.nodes)
    if not text.isdigit() or int(text) >= n:
        raise LabError(f"{lab}: no node {text!r}; nodes are 0-{n - 1} (or client, switch)")
    return access.nodes[int(text)]


def enter_node(node: NodeAccess, lab: str) -> Target:
    """Node `node` as its daemon sees it, or its network namespace alone when the
    daemon is not running (say, stopped by a fault)."""
    label = f"{lab} node {node.pnn}"
    if node.enter is not None and daemon_running(node):
        return Target(label, list(node.enter))
    return Target(label, [IP, "netns", "exec", node.netns],
                  note=f"{label}: its daemon is not running; entering the node's network "
                       "namespace only")


def target(access: LabAccess, text: str, lab: str) -> Target:
    """NODE as the lab commands take it: a pnn, `client`, `client:NETWORK` or `switch`."""
    if text == "switch":
        return Target(f"{lab} switch", [IP, "netns", "exec", access.switch])
    if text == "client" or text.startswith("client:"):
        network = text.partition(":")[2]
        if not network:
            if len(access.clients) != 1:
                raise LabError(f"{lab}: several clients ({', '.join(access.clients)}); say "
                               "client:NETWORK")
            network = next(iter(access.clients))
        if network not in access.clients:
            raise LabError(f"{lab}: no client on network {network!r}; clients: "
                           f"{', '.join('client:' + c for c in access.clients)}")
        return Target(f"{lab} client {network}",
                      [IP, "netns", "exec", access.clients[network]])
    return enter_node(node_of(access, text, lab), lab)


def nodes_spec(access: LabAccess, text: str, lab: str) -> list[NodeAccess]:
    """onnode's NODES: `all`, a pnn, a comma list, ranges `N-M` (in the given order)."""
    if text == "all":
        return list(access.nodes)
    out: list[NodeAccess] = []
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if dash:
            a, b = node_of(access, lo, lab).pnn, node_of(access, hi, lab).pnn
            out.extend(access.nodes[p] for p in range(a, b + 1))
        else:
            out.append(node_of(access, part, lab))
    return out


def cli(node: NodeAccess, lab: str) -> list[str]:
    """The implementation's CLI on `node` (argv prefix). LabUnavailable when its
    daemon is not running, since `ctdb` would only fail to connect."""
    if node.cli is None or not daemon_running(node):
        raise LabUnavailable(f"{lab} node {node.pnn}: its daemon is not running (stopped or killed "
                       "by a fault?); `harness watch` shows what happened")
    return list(node.cli)


def shell() -> list[str]:
    """An interactive shell: bash where there is one."""
    return [shutil.which("bash") or "/bin/sh"]
