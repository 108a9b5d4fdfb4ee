"""parse_bonding against /proc/net/bonding texts as 6.x and 3.x kernels print them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.failover.bondinfo import BondInfo, SlaveInfo, parse_bonding

DATA = Path(__file__).parent / "data" / "bonding"


def load(name: str) -> BondInfo:
    return parse_bonding((DATA / name).read_text())


def test_active_backup_with_active_slave() -> None:
    bond = load("active-backup.txt")
    assert bond.mode == "fault-tolerance (active-backup)"
    assert bond.active_slave == "eth0"
    assert bond.reports_active_slave
    assert not bond.no_active_slave
    assert bond.mii_up
    assert bond.slaves == (
        SlaveInfo("eth0", True, "up"),
        SlaveInfo("eth1", True, "up"),
    )
    assert not bond.is_8023ad


def test_active_backup_without_active_slave() -> None:
    bond = load("active-backup-none.txt")
    assert bond.active_slave is None
    assert bond.reports_active_slave
    assert bond.no_active_slave
    assert not bond.mii_up
    assert bond.slaves == (SlaveInfo("eth0", False, "down"),)
    assert not bond.any_mii_up


def test_8023ad_bond_up_but_every_slave_down() -> None:
    bond = load("8023ad-slaves-down.txt")
    assert bond.is_8023ad
    assert bond.mode == "IEEE 802.3ad Dynamic link aggregation"
    # The bond's own MII line is the first one; slave lines must not leak into it.
    assert bond.mii_up
    assert [s.name for s in bond.slaves] == ["eth2", "eth3"]
    assert bond.slaves_up == ()
    # 802.3ad prints no "Currently Active Slave" line at all.
    assert not bond.reports_active_slave
    assert not bond.no_active_slave


def test_8023ad_healthy() -> None:
    bond = load("8023ad.txt")
    assert bond.is_8023ad
    assert bond.slaves_up == ("eth2", "eth3")


def test_balance_rr_has_no_active_slave_line() -> None:
    bond = load("balance-rr.txt")
    assert bond.mode == "load balancing (round-robin)"
    assert bond.active_slave is None
    assert not bond.reports_active_slave
    assert bond.mii_up
    assert bond.slaves_up == ("eth0",)


def test_seed_2011_text_without_blank_lines() -> None:
    bond = load("seed-2011.txt")
    assert bond.mode == "fault-tolerance (active-backup)"
    assert bond.active_slave == "eth0"
    assert bond.mii_up
    assert bond.slaves == (SlaveInfo("eth0", True, "up"),)


def test_first_mii_line_is_the_bond_even_if_a_slave_is_up() -> None:
    text = (
        "Bonding Mode: IEEE 802.3ad Dynamic link aggregation\n"
        "MII Status: down\n"
        "\n"
        "Slave Interface: eth0\n"
        "MII Status: up\n"
    )
    bond = parse_bonding(text)
    assert not bond.mii_up
    assert bond.slaves_up == ("eth0",)
    assert bond.any_mii_up  # what CTDB's unanchored-by-section grep sees


@pytest.mark.parametrize("status", ["fail", "going back", "down"])
def test_slave_states_other_than_up_are_down(status: str) -> None:
    bond = parse_bonding(f"MII Status: up\nSlave Interface: eth9\nMII Status: {status}\n")
    assert bond.slaves == (SlaveInfo("eth9", False, status),)


def test_tolerates_unknown_lines_crlf_and_garbage() -> None:
    text = (
        "Ethernet Channel Bonding Driver: v9.9.9\r\n"
        "Some Future Field: 42\r\n"
        "Bonding Mode: fault-tolerance (active-backup) (fail_over_mac active)\r\n"
        "Currently Active Slave: eth1\r\n"
        "MII Status: up\r\n"
        "no colon here\r\n"
        "\tAggregator ID: 7\r\n"
        "Slave Interface: eth1\r\n"
        "Slave Future Field: x\r\n"
        "MII Status: up\r\n"
    )
    bond = parse_bonding(text)
    assert bond.mode.startswith("fault-tolerance (active-backup)")
    assert bond.active_slave == "eth1"
    assert bond.slaves == (SlaveInfo("eth1", True, "up"),)


def test_empty_text_parses_to_a_down_bond() -> None:
    bond = parse_bonding("")
    assert bond == BondInfo(mode="", active_slave=None, mii_up=False)
    assert not bond.any_mii_up
