"""Parse the text the Linux bonding driver prints in /proc/net/bonding/BOND.

CTDB's 10.interface decides a bond's health from this text alone (it greps
it), so the native monitor reads the same file rather than netlink, to fail
and succeed in exactly the same situations.  The format (drivers/net/bonding/
bond_procfs.c) is a header block for the bond, then one block per slave that
starts with ``Slave Interface: NAME``.  Lines we do not know are ignored, so
texts from 2011 (3.x, no blank lines) and from 6.x kernels (extra delay,
802.3ad and LACP detail lines) parse alike.
"""

from __future__ import annotations

from dataclasses import dataclass

MODE_8023AD = "IEEE 802.3ad Dynamic link aggregation"

_MODE = "Bonding Mode"
_ACTIVE = "Currently Active Slave"
_MII = "MII Status"
_SLAVE = "Slave Interface"


@dataclass(frozen=True)
class SlaveInfo:
    """One ``Slave Interface:`` block; only the link state matters to CTDB."""

    name: str
    mii_up: bool
    # Raw value: "up", "down", "fail" or "going back" (bond_slave_link_status).
    mii_status: str = ""


@dataclass(frozen=True)
class BondInfo:
    """What CTDB's checks need from one bonding text.

    ``mii_up`` is the bond's own carrier: the first ``MII Status:`` line.
    ``active_slave`` is None both for ``Currently Active Slave: None`` and when
    the mode prints no such line; ``reports_active_slave`` tells the two apart
    because only the former makes CTDB fail the bond.
    """

    mode: str
    active_slave: str | None
    mii_up: bool
    slaves: tuple[SlaveInfo, ...] = ()
    reports_active_slave: bool = False

    @property
    def is_8023ad(self) -> bool:
        """CTDB anchors its grep at the line start only, so compare a prefix."""
        return self.mode.startswith(MODE_8023AD)

    @property
    def no_active_slave(self) -> bool:
        """True when the driver explicitly says ``Currently Active Slave: None``."""
        return self.reports_active_slave and self.active_slave is None

    @property
    def any_mii_up(self) -> bool:
        """Any line ``MII Status: up``, the bond's or a slave's.

        This is what CTDB's ``grep -q '^MII Status: up'`` really tests: a bond
        whose own carrier is down still passes if one slave reports up.
        """
        return self.mii_up or any(s.mii_up for s in self.slaves)

    @property
    def slaves_up(self) -> tuple[str, ...]:
        """Names of the slaves whose MII status is up, in driver order."""
        return tuple(s.name for s in self.slaves if s.mii_up)


def _split(line: str) -> tuple[str, str] | None:
    """Split an unindented ``Key: value`` line; indented lines are details."""
    if not line or line[0] in " \t":
        return None
    key, sep, value = line.partition(":")
    if not sep:
        return None
    return key.strip(), value.strip()


def parse_bonding(text: str) -> BondInfo:
    """Parse /proc/net/bonding text; never raises on unexpected content."""
    mode = ""
    active: str | None = None
    reports_active = False
    bond_mii: bool | None = None
    slaves: list[SlaveInfo] = []
    slave_name: str | None = None
    slave_mii: str | None = None

    def flush() -> None:
        if slave_name is not None:
            status = slave_mii or ""
            slaves.append(SlaveInfo(slave_name, status == "up", status))

    for raw in text.splitlines():
        kv = _split(raw.rstrip("\r"))
        if kv is None:
            continue
        key, value = kv
        if key == _SLAVE:
            flush()
            slave_name, slave_mii = value, None
        elif key == _MII:
            if slave_name is not None:
                if slave_mii is None:
                    slave_mii = value
            elif bond_mii is None:
                bond_mii = value == "up"
        elif slave_name is not None:
            continue
        elif key == _MODE and not mode:
            mode = value
        elif key == _ACTIVE:
            reports_active = True
            active = None if value in ("", "None") else value
    flush()

    return BondInfo(
        mode=mode,
        active_slave=active,
        mii_up=bool(bond_mii),
        slaves=tuple(slaves),
        reports_active_slave=reports_active,
    )
