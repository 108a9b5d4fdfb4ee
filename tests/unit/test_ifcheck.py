"""check_interfaces against CTDB 4.17's 10.interface decisions, over a fake probe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.failover.ifcheck import (
    IfaceCheck,
    LinkProbe,
    check_interface,
    check_interfaces,
    real_interface,
)

DATA = Path(__file__).parent / "data" / "bonding"


def bond_text(name: str) -> str:
    return (DATA / name).read_text()


@dataclass
class FakeProbe:
    """Links by name; ``carrier`` is the cable, ``admin_up`` the `ip link` state."""

    links: set[str] = field(default_factory=set)
    bonds: dict[str, str] = field(default_factory=dict)
    carrier: set[str] = field(default_factory=set)
    admin_down: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def exists(self, iface: str) -> bool:
        self.calls.append(("exists", iface))
        return iface in self.links

    def bonding_text(self, iface: str) -> str | None:
        self.calls.append(("bonding_text", iface))
        return self.bonds.get(iface)

    def link_detected(self, iface: str) -> bool:
        self.calls.append(("link_detected", iface))
        return iface in self.carrier and iface not in self.admin_down

    def set_up(self, iface: str) -> None:
        self.calls.append(("set_up", iface))
        self.admin_down.discard(iface)


def probe_with_bond(fixture: str, name: str = "bond0") -> FakeProbe:
    return FakeProbe(links={name}, bonds={name: bond_text(fixture)})


def test_fake_probe_satisfies_protocol() -> None:
    probe: LinkProbe = FakeProbe()
    assert not probe.exists("eth0")


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("active-backup.txt", None),
        ("seed-2011.txt", None),
        ("balance-rr.txt", None),
        ("8023ad.txt", None),
        ("active-backup-none.txt", "ERROR: No active slaves for bond device bond0"),
        ("8023ad-slaves-down.txt", "ERROR: No active slaves for 802.ad bond device bond0"),
    ],
)
def test_bond_fixtures(fixture: str, message: str | None) -> None:
    result = check_interfaces(["bond0"], probe_with_bond(fixture))
    assert result.link == {"bond0": message is None}
    assert result.messages == (() if message is None else (message,))
    assert result.ok is (message is None)


def test_bond_whose_every_mii_line_is_down() -> None:
    text = bond_text("balance-rr.txt").replace("MII Status: up", "MII Status: down")
    probe = FakeProbe(links={"bond0"}, bonds={"bond0": text})
    result = check_interfaces(["bond0"], probe)
    assert result.messages == ("ERROR: public network interface bond0 is down",)
    assert not result.ok


def test_bond_down_but_a_slave_line_up_passes_like_ctdb() -> None:
    # CTDB greps for any line "^MII Status: up", so a slave's line satisfies it.
    text = bond_text("balance-rr.txt").replace("MII Status: up", "MII Status: down", 1)
    probe = FakeProbe(links={"bond0"}, bonds={"bond0": text})
    assert check_interfaces(["bond0"], probe).ok


def test_no_active_slave_is_checked_before_mii() -> None:
    # active-backup-none has both "None" and a down bond MII: the first check wins.
    result = check_interfaces(["bond0"], probe_with_bond("active-backup-none.txt"))
    assert result.messages == ("ERROR: No active slaves for bond device bond0",)


def test_bond_checks_never_look_at_carrier_or_bring_up() -> None:
    probe = probe_with_bond("active-backup-none.txt")
    check_interfaces(["bond0"], probe)
    assert [c for c in probe.calls if c[0] in ("link_detected", "set_up")] == []


@pytest.mark.parametrize(
    ("iface", "real"),
    [("bond0", "bond0"), ("bond0.100", "bond0"), ("vlan7@bond1", "bond1"), ("eth0.1.2", "eth0")],
)
def test_real_interface(iface: str, real: str) -> None:
    assert real_interface(iface) == real


def test_vlan_on_bond_reads_the_real_bond_and_names_it() -> None:
    probe = FakeProbe(links={"bond0.100"}, bonds={"bond0": bond_text("active-backup-none.txt")})
    result = check_interfaces(["bond0.100"], probe)
    assert ("bonding_text", "bond0") in probe.calls
    # Messages name the real device; the link is recorded for the configured name.
    assert result.messages == ("ERROR: No active slaves for bond device bond0",)
    assert result.link == {"bond0.100": False}


def test_vlan_on_plain_interface_checks_carrier_of_the_vlan_name() -> None:
    probe = FakeProbe(links={"eth1.5"}, carrier={"eth1.5"})
    assert check_interfaces(["eth1.5"], probe).ok
    assert ("link_detected", "eth1.5") in probe.calls


def test_missing_interface_is_an_error_and_down_in_417() -> None:
    probe = FakeProbe(links={"eth1"}, carrier={"eth1"})
    result = check_interfaces(["eth1", "eth9"], probe)
    assert result.messages == ("ERROR: Monitored interface eth9 does not exist",)
    assert result.link == {"eth1": True, "eth9": False}
    assert not result.ok


@pytest.mark.parametrize("iface", ["lo", "lo0", "ib0", "ibp1s0"])
def test_loopback_and_infiniband_always_up(iface: str) -> None:
    probe = FakeProbe(links={iface})
    result = check_interfaces([iface], probe)
    assert result.ok and result.link == {iface: True}
    assert ("link_detected", iface) not in probe.calls


def test_lo_named_bond_is_still_checked_as_a_bond() -> None:
    probe = FakeProbe(links={"lobond"}, bonds={"lobond": bond_text("active-backup-none.txt")})
    assert not check_interfaces(["lobond"], probe).ok


def test_missing_loopback_is_still_missing() -> None:
    result = check_interfaces(["lo"], FakeProbe())
    assert result.messages == ("ERROR: Monitored interface lo does not exist",)


def test_plain_interface_with_carrier() -> None:
    probe = FakeProbe(links={"eth1"}, carrier={"eth1"})
    result = check_interfaces(["eth1"], probe)
    assert result == IfaceCheck(ok=True, link={"eth1": True}, messages=(), partially_online=False)
    assert ("set_up", "eth1") not in probe.calls


def test_admin_down_is_healed_by_bring_up() -> None:
    probe = FakeProbe(links={"eth1"}, carrier={"eth1"}, admin_down={"eth1"})
    result = check_interfaces(["eth1"], probe)
    assert result.ok
    assert probe.calls[-2:] == [("set_up", "eth1"), ("link_detected", "eth1")]
    assert "eth1" not in probe.admin_down


def test_admin_down_without_bring_up_is_down() -> None:
    probe = FakeProbe(links={"eth1"}, carrier={"eth1"}, admin_down={"eth1"})
    result = check_interfaces(["eth1"], probe, bring_up=False)
    assert result.messages == ("ERROR: No link on the public network interface eth1",)
    assert ("set_up", "eth1") not in probe.calls


def test_carrier_loss_survives_bring_up() -> None:
    probe = FakeProbe(links={"eth1"})
    result = check_interfaces(["eth1"], probe)
    assert not result.ok
    assert result.messages == ("ERROR: No link on the public network interface eth1",)
    assert ("set_up", "eth1") in probe.calls


def test_every_interface_is_checked_and_recorded_in_sorted_order() -> None:
    probe = FakeProbe(links={"eth1", "eth2", "eth3"}, carrier={"eth3"})
    result = check_interfaces(["eth3", "eth1", "eth2", "eth1", ""], probe)
    assert list(result.link) == ["eth1", "eth2", "eth3"]
    assert result.link == {"eth1": False, "eth2": False, "eth3": True}
    assert result.messages == (
        "ERROR: No link on the public network interface eth1",
        "ERROR: No link on the public network interface eth2",
    )
    assert result.down == ("eth1", "eth2")


def test_all_down_is_unhealthy_even_if_partial_allowed() -> None:
    probe = FakeProbe(links={"eth1", "eth2"})
    result = check_interfaces(["eth1", "eth2"], probe, partially_online_allowed=True)
    assert not result.ok
    assert not result.partially_online


def test_some_down_is_unhealthy_by_default() -> None:
    probe = FakeProbe(links={"eth1", "eth2"}, carrier={"eth2"})
    result = check_interfaces(["eth1", "eth2"], probe)
    assert not result.ok
    assert not result.partially_online


def test_some_down_allowed_is_partially_online() -> None:
    probe = FakeProbe(links={"eth1", "eth2"}, carrier={"eth2"})
    result = check_interfaces(["eth1", "eth2"], probe, partially_online_allowed=True)
    assert result.ok
    assert result.partially_online
    assert result.link == {"eth1": False, "eth2": True}


def test_no_interfaces_is_ok() -> None:
    result = check_interfaces([], FakeProbe())
    assert result.ok and result.link == {} and not result.partially_online


def test_check_interface_single() -> None:
    assert check_interface("bond0", probe_with_bond("active-backup.txt")) is None
