"""failoverd's node state: what it accepts from a node's configuration."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.ctdb import ConfigError, NodeConfig, PublicAddress
from harness.failover.state import NodeState


def _config(*addresses: str) -> NodeConfig:
    return NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=(ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")),
        public_addresses=tuple(PublicAddress(ipaddress.ip_interface(a), ("eth1",))
                               for a in addresses))


def test_public_addresses_by_ip_in_file_order_all_unassigned() -> None:
    st = NodeState(_config("203.0.113.12/24", "203.0.113.11/24"))
    v4 = ipaddress.IPv4Address
    assert list(st.publics) == [v4("203.0.113.12"), v4("203.0.113.11")]
    assert st.assignment == {v4("203.0.113.12"): -1, v4("203.0.113.11"): -1}
    assert st.public(v4("203.0.113.11")).ifaces == ("eth1",)


def test_ipv6_public_address_is_a_config_error() -> None:
    # the daemon's kernel side (AF_INET dumps, ARP) could never see it held
    with pytest.raises(ConfigError) as e:
        NodeState(_config("203.0.113.11/24", "2001:db8::11/64"))
    assert str(e.value) == ("/nonexistent/node0/public_addresses: 2001:db8::11/64 is IPv6, and "
                            "failoverd handles IPv4 only; use Samba's ctdbd for IPv6 public "
                            "addresses")
