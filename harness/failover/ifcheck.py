"""CTDB's public-interface health check (10.interface ``monitor``), natively.

Mirrors ``monitor_interfaces`` in events/legacy/10.interface.script and
``interface_monitor``/``interface_get_real`` in ctdb/config/functions as
shipped in Samba 4.17, decision for decision and message for message, so that
the native daemon and real CTDB turn the same faults into the same verdicts.
All system access goes through a :class:`LinkProbe`, which keeps the logic
testable without bonding in the kernel.

Differences from older CTDB worth knowing (the 2017 seed shows the old code):
a missing interface is an error that marks it down (older versions warned
and skipped it), and there is no virtio_net shortcut any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from harness.failover.bondinfo import parse_bonding


class LinkProbe(Protocol):
    """The few facts about links that 10.interface looks at."""

    def exists(self, iface: str) -> bool:
        """``ip link show IFACE`` succeeds."""
        ...

    def bonding_text(self, iface: str) -> str | None:
        """Contents of /proc/net/bonding/IFACE, or None if it is no bond."""
        ...

    def link_detected(self, iface: str) -> bool:
        """Carrier, as ethtool's ``Link detected: yes``."""
        ...

    def set_up(self, iface: str) -> None:
        """``ip link set IFACE up``."""
        ...


@dataclass(frozen=True)
class IfaceCheck:
    """Outcome of one monitor pass over all public interfaces.

    ``link`` holds every interface's verdict (what CTDB records with
    ``ctdb setifacelink``); ``messages`` are the script's output lines in
    order.  ``partially_online`` is set only when some but not all
    interfaces are down and that was allowed, i.e. the node stays OK.
    """

    ok: bool
    link: dict[str, bool] = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    partially_online: bool = False

    @property
    def down(self) -> tuple[str, ...]:
        """Interfaces found down, in check order."""
        return tuple(name for name, up in self.link.items() if not up)


def real_interface(iface: str) -> str:
    """Map a VLAN name to the interface whose bonding file CTDB reads.

    ``a@b`` (as ``ip link`` names VLANs) gives ``b``; otherwise everything
    from the first dot on is dropped, CTDB's fallback for ``eth0.10``.
    """
    if "@" in iface:
        return iface.rsplit("@", 1)[1]
    return iface.split(".", 1)[0]


def _check_bond(real: str, text: str) -> str | None:
    """Return the error message for a bond, or None if CTDB counts it up."""
    bond = parse_bonding(text)
    if bond.no_active_slave:
        return f"ERROR: No active slaves for bond device {real}"
    if not bond.any_mii_up:
        return f"ERROR: public network interface {real} is down"
    if bond.is_8023ad and not bond.slaves_up:
        # The driver can report the bond up while no port has a link.
        return f"ERROR: No active slaves for 802.ad bond device {real}"
    return None


def check_interface(iface: str, probe: LinkProbe, *, bring_up: bool = True) -> str | None:
    """Check one interface; return its error message, or None when it is up."""
    if not probe.exists(iface):
        return f"ERROR: Monitored interface {iface} does not exist"

    real = real_interface(iface)
    text = probe.bonding_text(real)
    if text is not None:
        return _check_bond(real, text)

    # Not a bond.  These name tests use the configured name, not the real one.
    if iface.startswith(("lo", "ib")):
        return None  # loopback always works; InfiniBand links cannot be tested
    if probe.link_detected(iface):
        return None
    if bring_up:
        # An admin-down interface reports no link even with a cable in, so
        # CTDB brings it up and looks again: an admin-down is healed here.
        probe.set_up(iface)
        if probe.link_detected(iface):
            return None
    return f"ERROR: No link on the public network interface {iface}"


def check_interfaces(
    ifaces: Iterable[str],
    probe: LinkProbe,
    *,
    bring_up: bool = True,
    partially_online_allowed: bool = False,
) -> IfaceCheck:
    """Run CTDB's monitor decision over every public interface.

    Interfaces are de-duplicated and sorted, as the script's ``sort -u``
    does.  Every interface is checked even after a failure, because CTDB
    must record each one's link state.  Verdict: OK if none is down; not OK
    if all are down; otherwise OK only if partially online is allowed
    (CTDB_PARTIALLY_ONLINE_INTERFACES=yes).
    """
    link: dict[str, bool] = {}
    messages: list[str] = []
    for iface in sorted({i for i in ifaces if i}):
        error = check_interface(iface, probe, bring_up=bring_up)
        link[iface] = error is None
        if error is not None:
            messages.append(error)

    any_down = not all(link.values())
    any_up = any(link.values())
    if not any_down:
        ok = True
    elif not any_up:
        ok = False
    else:
        ok = partially_online_allowed
    return IfaceCheck(
        ok=ok,
        link=link,
        messages=tuple(messages),
        partially_online=ok and any_down,
    )
