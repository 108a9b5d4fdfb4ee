"""The nodes' interfaces: the private one and the public ones, bonded per ``--bond``."""

from __future__ import annotations

from collections.abc import Mapping

from harness.builder import switch_port
from harness.ctdb import check_iface_name
from harness.ctdb_import.addresses import PRIVATE_NETWORK, Publics
from harness.ctdb_import.model import CtdbImportError
from harness.topology import Bond, Interface


def node_interfaces(private_iface: str, publics: Publics, bonds: Mapping[str, Bond],
                    nodes: int, pa_src: str, warnings: list[str]) -> tuple[Interface, ...]:
    """The private interface and the public ones, bonded where --bond says so."""
    try:
        check_iface_name(private_iface)
    except ValueError as e:
        raise CtdbImportError("private_iface", None, str(e),
                              "name the field's private interface, e.g. eth0") from None
    # name, network, and where the name comes from (file, line) for messages
    named: list[tuple[str, str, str, int | None]] = [
        (private_iface, PRIVATE_NETWORK.name, "private_iface", None)]
    named += [(n, net, pa_src, line) for n, net, line in publics.interfaces]
    names = {n for n, _, _, _ in named}
    owner: dict[str, str] = {}
    for bond_name, field_bond in bonds.items():
        if bond_name not in names:
            raise CtdbImportError(f"--bond {bond_name}", None,
                                  f"no interface {bond_name} in {pa_src} and it is not the "
                                  f"private interface {private_iface}",
                                  "bond an interface the cluster uses")
        for s in field_bond.slaves:
            if s in names:
                raise CtdbImportError(f"--bond {bond_name}", None,
                                      f"slave {s} is also an interface of the cluster",
                                      "give the bond slaves names of their own")
            if s in owner:
                raise CtdbImportError(f"--bond {bond_name}", None,
                                      f"slave {s} is also a slave of {owner[s]}",
                                      "give each bond its own slaves")
            owner[s] = bond_name
    out = []
    for name, net, src, line in named:
        where = src if line is None else f"{src}:{line}"
        bond = bonds.get(name)
        if bond is None and name.startswith("bond"):
            warnings.append(f"{where}: {name} is built as a plain interface (bonds are not in "
                            f"/etc/ctdb); pass --bond {name}=MODE:SLAVES to make it a bond")
        if "." in name or "@" in name:
            warnings.append(f"{where}: {name} looks like a VLAN; the harness builds it as a "
                            "plain interface")
        if bond is not None:
            src, line = f"--bond {name}", None
        for port in bond.slaves if bond else (name,):
            sw = switch_port(nodes - 1, port)
            if len(sw) > 15:
                raise CtdbImportError(src, line,
                                      f"interface name {port!r} is too long for the harness "
                                      f"(its switch port {sw!r} is over 15 characters)",
                                      "rename it in a copy of the files (or in --bond or "
                                      "--private-iface)")
        out.append(Interface(name, net, bond))
    return tuple(out)
