"""A node's whole CTDB configuration, read at start-up from its directory.

The native daemon's view of the files the harness writes for both
implementations (the per-file readers are nodes_file, public_addresses_file,
tunables_file and script_options_file): one NodeConfig, or one ConfigError
line naming the file, the line and the fix.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.ctdb.configfile import ConfigError, IPAddress, decode_utf8
from harness.ctdb.nodes_file import parse_nodes
from harness.ctdb.public_addresses_file import PublicAddress, parse_public_addresses
from harness.ctdb.script_options_file import parse_script_options, truthy
from harness.ctdb.tunables import Tunables
from harness.ctdb.tunables_file import parse_tunables


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node's daemon reads at startup from its directory."""

    directory: Path
    pnn: int
    nodes: tuple[IPAddress, ...]
    """Address by pnn; a deleted node has 0.0.0.0, as in ctdbd."""
    deleted: frozenset[int] = frozenset()
    public_addresses: tuple[PublicAddress, ...] = ()
    tunables: Tunables = field(default_factory=Tunables)
    options: Mapping[str, str] = field(default_factory=dict)
    events_dir: Path | None = None
    cluster_lock: Path | None = None
    leader_capable: bool = True  # ctdb.conf `leader capability`: may take the lock

    @property
    def address(self) -> IPAddress:
        """This node's private address (its line of the nodes file)."""
        return self.nodes[self.pnn]

    @property
    def live_pnns(self) -> tuple[int, ...]:
        """Every pnn but the deleted ones: the nodes that can ever be members."""
        return tuple(p for p in range(len(self.nodes)) if p not in self.deleted)

    def options_bool(self, name: str, default: bool = False) -> bool:
        """A script option as CTDB's scripts test it (only "yes" is true)."""
        return truthy(self.options.get(name), default)


def _read(path: Path, required: bool) -> str | None:
    try:
        return decode_utf8(path.read_bytes(), str(path))
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), None, "missing",
                              "create it (one private node address per line)") from None
        return None
    except OSError as e:
        raise ConfigError(str(path), None, f"cannot read it ({e.strerror})",
                          "check the path and its permissions") from None


def _is_local(addr: IPAddress) -> bool:
    """Whether this network namespace has `addr`: bind to it, as ctdbd does."""
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((str(addr), 0))
        except OSError as e:
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
                return False
            raise
    return True


def load_node_config(directory: str | Path, pnn: int | None = None,
                     cluster_lock: str | Path | None = None,
                     leader_capable: bool = True) -> NodeConfig:
    """Read a node directory: nodes, public_addresses, ctdb.tunables, script.options, events/.

    Only ``nodes`` is required.  Script options are ``script.options`` then,
    overriding it, ``events/legacy/10.interface.options`` (the order CTDB's
    load_script_options sources them for 10.interface).  Without `pnn` the
    node is the first live nodes line whose address is local here.
    """
    d = Path(directory)
    nodes_path = d / "nodes"
    entries = parse_nodes(_read(nodes_path, True) or "", str(nodes_path))
    pa_path = d / "public_addresses"
    pa_text = _read(pa_path, False)
    public = parse_public_addresses(pa_text, str(pa_path)) if pa_text is not None else ()
    tun_path = d / "ctdb.tunables"
    tun_text = _read(tun_path, False)
    tunables = parse_tunables(tun_text, None, str(tun_path)) if tun_text else Tunables()
    options: dict[str, str] = {}
    for opt_path in (d / "script.options", d / "events" / "legacy" / "10.interface.options"):
        opt_text = _read(opt_path, False)
        if opt_text is not None:
            options.update(parse_script_options(opt_text, str(opt_path)))
    events_dir = next((p for p in (d / "events" / "legacy", d / "events") if p.is_dir()), None)
    deleted = frozenset(e.pnn for e in entries if e.deleted)
    if pnn is None:
        pnn = next((e.pnn for e in entries if not e.deleted and _is_local(e.address)), None)
        if pnn is None:
            raise ConfigError(str(nodes_path), None,
                              "none of its addresses is configured on this host",
                              "add this node's private address to the file or pass its pnn")
    elif not 0 <= pnn < len(entries):
        raise ConfigError(str(nodes_path), None, f"has no node {pnn} (it lists {len(entries)})",
                          f"use a pnn from 0 to {len(entries) - 1}")
    elif pnn in deleted:
        raise ConfigError(str(nodes_path), None, f"node {pnn} is deleted (a '#' line)",
                          "uncomment its line or use another pnn")
    return NodeConfig(
        directory=d, pnn=pnn, nodes=tuple(e.address for e in entries), deleted=deleted,
        public_addresses=public, tunables=tunables, options=options, events_dir=events_dir,
        cluster_lock=Path(cluster_lock) if cluster_lock is not None else None,
        leader_capable=leader_capable)
