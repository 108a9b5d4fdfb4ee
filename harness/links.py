"""One class per link kind, each mapping its options to netlink attributes.

The builder creates links only through these, so what a topology option
means in the kernel is written down in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.netns import NsRoute
from harness.topology import Bond

BOND_MODE_NUMBERS = {"balance-rr": 0, "active-backup": 1, "802.3ad": 4}


@dataclass(frozen=True)
class Veth:
    """A veth pair: `name` here, `peer` created directly in `peer_netns_fd`.

    `up` brings the local end up in the same request (a bond slave must stay
    down until enslaved). The peer always starts down; whoever owns its
    namespace brings it up. No alias: both ends live in namespaces named
    with the run id, and one request less per link keeps 64-node builds fast.
    """

    name: str
    peer: str
    peer_netns_fd: int
    up: bool = False

    def create(self, ipr: NsRoute) -> None:
        ipr.link("add", ifname=self.name, kind="veth",
                 peer={"ifname": self.peer, "net_ns_fd": self.peer_netns_fd},
                 **({"state": "up"} if self.up else {}))


@dataclass(frozen=True)
class Bridge:
    """A learning switch: STP off and forward delay 0 so ports pass at once."""

    name: str
    alias: str = ""

    def create(self, ipr: NsRoute) -> int:
        ipr.link("add", ifname=self.name, kind="bridge", br_stp_state=0,
                 br_forward_delay=0, br_ageing_time=30000)
        idx = ipr.link_lookup(ifname=self.name)[0]
        ipr.link("set", index=idx, state="up", **({"ifalias": self.alias} if self.alias else {}))
        return idx


@dataclass(frozen=True)
class BondDevice:
    """A kernel bonding device over existing (down) slave links."""

    name: str
    spec: Bond
    alias: str = ""

    def attrs(self) -> dict[str, Any]:
        return {
            "bond_mode": BOND_MODE_NUMBERS[self.spec.mode],
            "bond_miimon": self.spec.miimon,
            "bond_updelay": self.spec.updelay,
            "bond_downdelay": self.spec.downdelay,
        }

    def create(self, ipr: NsRoute) -> int:
        ipr.link("add", ifname=self.name, kind="bond", **self.attrs())
        idx = ipr.link_lookup(ifname=self.name)[0]
        for slave in self.spec.slaves:
            # the kernel refuses to enslave a link that is up
            ipr.link("set", ifname=slave, state="down")
            ipr.link("set", ifname=slave, master=idx)
        if self.spec.primary:
            prim = ipr.link_lookup(ifname=self.spec.primary)[0]
            ipr.link("set", index=idx, kind="bond", bond_primary=prim)
        for slave in self.spec.slaves:
            ipr.link("set", ifname=slave, state="up")
        ipr.link("set", index=idx, state="up", **({"ifalias": self.alias} if self.alias else {}))
        return idx
