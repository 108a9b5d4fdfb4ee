"""Bonds, which /etc/ctdb does not hold: the ``--bond`` and ``[bonds]`` syntax."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.ctdb import check_iface_name
from harness.ctdb_import.model import CtdbImportError
from harness.topology import BOND_MODES, Bond


def parse_bond_spec(text: str, where: str = "--bond") -> tuple[str, Bond]:
    """``NAME=MODE:SLAVE[,SLAVE...][:miimon=N]`` -> (NAME, Bond).

    E.g. ``bond0=active-backup:eth1,eth2`` or ``bond1=802.3ad:eth3,eth4:miimon=200``;
    modes are topology.BOND_MODES.  Scenario files' ``[bonds]`` tables hold the
    part after ``NAME=`` (see `bonds_from_table`), so there is one syntax.
    """
    example = "write e.g. bond0=active-backup:eth1,eth2 or bond0=802.3ad:eth1,eth2:miimon=100"

    def bad(problem: str, fix: str = example) -> CtdbImportError:
        return CtdbImportError(where, None, f"{text!r}: {problem}", fix)

    name, eq, rest = text.partition("=")
    if not eq:
        raise bad("no '=' after the bond's name")
    try:
        check_iface_name(name)
    except ValueError as e:
        raise bad(str(e), "name the bond as the public_addresses file does") from None
    fields = rest.split(":")
    if len(fields) < 2:
        raise bad("needs MODE:SLAVES")
    mode, slave_text, options = fields[0], fields[1], fields[2:]
    if mode not in BOND_MODES:
        raise bad(f"mode {mode!r} is not one of {', '.join(BOND_MODES)}")
    slaves = tuple(slave_text.split(","))
    for s in slaves:
        try:
            check_iface_name(s)
        except ValueError as e:
            raise bad(f"slave: {e}", "separate slave names with commas, no spaces") from None
    if len(set(slaves)) != len(slaves):
        raise bad("a slave is listed twice", "list each slave once")
    if name in slaves:
        raise bad(f"{name} is its own slave", "give the bond a name of its own")
    miimon = Bond().miimon
    for opt in options:
        key, eq, value = opt.partition("=")
        if key != "miimon" or not eq:
            raise bad(f"unknown option {opt!r}", "the only option is miimon=N")
        if not value.isascii() or not value.isdigit():
            raise bad(f"miimon {value!r} is not a whole number of ms", "write e.g. miimon=100")
        miimon = int(value)
    return name, Bond(mode=mode, miimon=miimon, slaves=slaves)


def bonds_from_table(table: Mapping[str, Any], where: str) -> dict[str, Bond]:
    """A scenario file's ``[bonds]`` table: ``bond0 = "active-backup:eth1,eth2"``."""
    out: dict[str, Bond] = {}
    for name, spec in table.items():
        if not isinstance(spec, str):
            raise CtdbImportError(where, None, f"bonds.{name} = {spec!r} is not a string",
                                  'write e.g. bond0 = "active-backup:eth1,eth2"')
        bond_name, bond = parse_bond_spec(f"{name}={spec}", f"{where}: bonds.{name}")
        out[bond_name] = bond
    return out
