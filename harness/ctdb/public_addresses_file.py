"""CTDB's ``public_addresses`` file: the addresses that fail over, and their interfaces.

As ctdbd 4.17 reads it (ctdb_set_public_addresses): ``IP/bits
iface[,iface]`` per line; ``#`` lines and blank lines are skipped; a repeated
IP is refused; anything after the interface list is ignored.  `PublicAddress`
is also the harness's own type for a cluster's public addresses
(harness.topology uses it), so a topology and the file agree by construction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from harness.ctdb.configfile import (
    ConfigError,
    IPAddress,
    IPInterface,
    parse_address,
    physical_lines,
)

IFNAMSIZ = 16
"""Linux interface names are at most IFNAMSIZ-1 characters."""


@dataclass(frozen=True)
class PublicAddress:
    """One line of public_addresses: an address with its netmask and interfaces."""

    address: IPInterface
    ifaces: tuple[str, ...]

    @property
    def ip(self) -> IPAddress:
        """The address without its netmask: what nodes take and clients reach."""
        return self.address.ip

    def line(self) -> str:
        """The line of public_addresses for this address (no newline)."""
        return f"{self.address.ip}/{self.address.network.prefixlen} {','.join(self.ifaces)}"


def _parse_ip_mask(text: str) -> IPInterface:
    """``IP/bits`` as ctdb_sock_addr_mask_from_string reads it (decimal bits)."""
    ip_text, slash, bits = text.rpartition("/")
    if not slash or not bits.isascii() or not bits.isdigit():
        raise ValueError("form")
    addr = parse_address(ip_text)
    prefix = int(bits)
    if prefix > addr.max_prefixlen:
        raise ValueError("range")
    return ipaddress.ip_interface(f"{addr}/{prefix}")


def check_iface_name(name: str) -> str:
    """Refuse names Linux cannot have (CTDB only checks the length)."""
    if len(name) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} characters")
    if not name or any(c in name for c in "/ \t\n:") or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid interface name")
    return name


def parse_public_addresses(text: str, source: str = "public_addresses"
                           ) -> tuple[PublicAddress, ...]:
    """Parse public_addresses: ``IP/bits iface[,iface]`` per line.

    As CTDB: ``#`` lines and blank lines are skipped, an IPv4-mapped IPv6
    address means the IPv4 address, a repeated IP is an error, empty items in
    the interface list are skipped.  Stricter than CTDB, which would accept
    them: a netmask beyond /32 (/128), anything after the interface list other
    than a ``#`` comment (CTDB silently ignores it, so ``eth1, eth2`` would
    quietly mean only eth1), an interface named twice, and a name Linux cannot
    have.
    """
    out: list[PublicAddress] = []
    seen: dict[IPAddress, int] = {}
    for lineno, raw in enumerate(physical_lines(text), 1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if not words:
            continue
        if len(words) < 2 or words[1].startswith("#"):
            raise ConfigError(source, lineno, f"no interface given for {words[0]!r}",
                              "write 'IP/bits iface[,iface]', e.g. '203.0.113.10/24 eth1'")
        if len(words) > 2 and not words[2].startswith("#"):
            raise ConfigError(
                source, lineno, f"unexpected {' '.join(words[2:])!r} after the interface list",
                "separate interfaces with commas and no spaces, e.g. 'eth1,eth2'")
        try:
            addr = _parse_ip_mask(words[0])
        except ValueError as e:
            problem = (f"netmask of {words[0]!r} is out of range" if str(e) == "range"
                       else f"{words[0]!r} is not an IP address with /bits")
            raise ConfigError(source, lineno, problem,
                              "write e.g. 203.0.113.10/24 or 2001:db8::10/64") from None
        ifaces: list[str] = []
        for name in words[1].split(","):
            if not name:
                continue
            try:
                check_iface_name(name)
            except ValueError as e:
                raise ConfigError(source, lineno, str(e),
                                  "use the name of an existing network interface") from None
            if name in ifaces:
                raise ConfigError(source, lineno, f"interface {name} is listed twice",
                                  "list each interface once")
            ifaces.append(name)
        if not ifaces:
            raise ConfigError(source, lineno, f"no interface given for {words[0]!r}",
                              "write 'IP/bits iface[,iface]', e.g. '203.0.113.10/24 eth1'")
        if addr.ip in seen:
            raise ConfigError(source, lineno,
                              f"duplicate public IP address {addr.ip} (also line {seen[addr.ip]})",
                              "list each public address once")
        seen[addr.ip] = lineno
        out.append(PublicAddress(addr, tuple(ifaces)))
    return tuple(out)


def write_public_addresses(entries: Iterable[PublicAddress]) -> str:
    """public_addresses text; refuses what parse_public_addresses would refuse."""
    text = "".join(e.line() + "\n" for e in entries)
    parse_public_addresses(text, "<write_public_addresses>")
    return text
