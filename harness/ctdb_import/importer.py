"""`import_ctdb_dir`: a copy of a field cluster's /etc/ctdb read, step by step."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from harness.ctdb_import.addresses import PRIVATE_NETWORK, read_publics
from harness.ctdb_import.files import read_nodes, read_settings
from harness.ctdb_import.interfaces import node_interfaces
from harness.ctdb_import.model import CtdbImportError, ImportedCluster
from harness.topology import Bond, Topology, TopologyError

_NO_BONDS: Mapping[str, Bond] = MappingProxyType({})


def import_ctdb_dir(path: str | Path, bonds: Mapping[str, Bond] = _NO_BONDS,
                    private_iface: str = "eth0") -> ImportedCluster:
    """Read a copy of a field cluster's /etc/ctdb; raise CtdbImportError on bad input.

    `bonds` maps interface names to the bonds they are in the field (see
    `parse_bond_spec`); `private_iface` is the field's private interface,
    which /etc/ctdb does not name.
    """
    d = Path(path)
    if not d.is_dir():
        raise CtdbImportError(str(d), None, "not a directory",
                              "give the path of a copy of the field's /etc/ctdb")
    warnings: list[str] = []

    entries = read_nodes(d / "nodes", warnings)
    nodes = len(entries)
    mapping: dict[str, str] = {}
    node_ips: dict[str, int] = {}
    for e in entries:
        if not e.deleted:
            mapping[str(e.address)] = str(PRIVATE_NETWORK.node_address(e.pnn).ip)
            node_ips[str(e.address)] = e.pnn
    publics = read_publics(d / "public_addresses", nodes, node_ips, private_iface, warnings)
    mapping.update(publics.mapping)
    interfaces = node_interfaces(private_iface, publics, bonds, nodes,
                                 str(d / "public_addresses"), warnings)

    settings = read_settings(d, warnings)

    top = Topology(
        nodes=nodes,
        networks=(PRIVATE_NETWORK, *publics.networks),
        interfaces=interfaces,
        public_addresses=tuple(publics.addresses),
        private_network=PRIVATE_NETWORK.name,
        source=str(d),
    )
    try:
        top = top.validated()
    except TopologyError as e:
        raise CtdbImportError(str(d), None, f"the imported topology is invalid ({e})",
                              "report this: the import should have refused the input") from None
    return ImportedCluster(
        topology=top, tunables=settings.tunables, script_options=settings.script_options,
        mapping=mapping, cluster_lock=settings.cluster_lock, warnings=warnings,
        deleted_nodes=tuple(e.pnn for e in entries if e.deleted))
