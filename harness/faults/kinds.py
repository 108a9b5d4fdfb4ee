"""The fault catalogue by name, for people: `harness fault LAB pull-cable 2 eth1`
on the command line and `fault = "pull-cable"` in a scenario file build the
same Fault through the same table.

Each kind lists its parameters in order (the command line gives them
positionally, a scenario file by name) with a parser that turns the text
into the value the catalogue wants, so bad input is one line naming the
kind, the parameter and what would be right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.faults.base import Fault
from harness.faults.catalogue import Faults
from harness.faults.daemons import FAILABLE_EVENTS

REQUIRED: Any = object()


class FaultSpecError(ValueError):
    """A fault named or parametrized wrongly; str() is one line with the fix."""


def _pnn(text: Any) -> int:
    if isinstance(text, bool):
        raise ValueError("a node number")
    value = int(text)
    if value < 0:
        raise ValueError("a node number (0 or more)")
    return value


def _pnns(text: Any) -> tuple[int, ...]:
    """`0,1` (command line) or [0, 1] (scenario file) -> (0, 1)."""
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    out = tuple(_pnn(x) for x in items if str(x).strip() != "")
    if not out:
        raise ValueError("a comma-separated list of node numbers")
    return out


def _names(text: Any) -> tuple[str, ...]:
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    out = tuple(str(x).strip() for x in items if str(x).strip())
    if not out:
        raise ValueError("one or more interface names, comma-separated")
    return out


def _name(text: Any) -> str:
    value = str(text).strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError("a name without spaces")
    return value


def _event(text: Any) -> str:
    value = str(text).strip()
    if value not in FAILABLE_EVENTS:
        raise ValueError(" or ".join(FAILABLE_EVENTS))
    return value


def _percent(text: Any) -> int:
    value = int(text)
    if not 0 < value <= 100:
        raise ValueError("a percentage from 1 to 100")
    return value


def _positive(text: Any) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("a number of seconds above 0")
    return value


def _count(text: Any) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("a count of 1 or more")
    return value


def _yes_no(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).lower()
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise ValueError("yes or no")


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[Any], Any]
    help: str
    default: Any = REQUIRED


@dataclass(frozen=True)
class FaultKind:
    name: str
    summary: str
    params: tuple[Param, ...]
    make: Callable[[Faults, dict[str, Any]], Fault]

    def usage(self) -> str:
        parts = [p.name.upper() if p.default is REQUIRED else f"[{p.name.upper()}]"
                 for p in self.params]
        return " ".join([self.name, *parts])

    def parse(self, args: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
        """Positional (command line) or named (scenario file) arguments -> values."""
        if isinstance(args, Mapping):
            unknown = sorted(set(args) - {p.name for p in self.params})
            if unknown:
                raise FaultSpecError(f"{self.name}: unknown parameter {unknown[0]!r}; "
                                     f"usage: {self.usage()}")
            given = dict(args)
        else:
            if len(args) > len(self.params):
                raise FaultSpecError(f"{self.name}: too many arguments {list(args)}; "
                                     f"usage: {self.usage()}")
            given = {p.name: a for p, a in zip(self.params, args, strict=False)}
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name not in given:
                if p.default is REQUIRED:
                    raise FaultSpecError(f"{self.name}: missing {p.name.upper()} ({p.help}); "
                                         f"usage: {self.usage()}")
                out[p.name] = p.default
                continue
            try:
                out[p.name] = p.parse(given[p.name])
            except (TypeError, ValueError) as e:
                raise FaultSpecError(f"{self.name}: {p.name.upper()} {given[p.name]!r} is not "
                                     f"{e or p.help}; usage: {self.usage()}") from None
        return out


def _kinds() -> dict[str, FaultKind]:
    node = Param("node", _pnn, "the node's pnn")
    port = Param("port", _names, "the node-side interface(s) whose cable it is")
    iface = Param("iface", _name, "an interface inside the node")
    network = Param("network", _name, "a network of the topology (default: the private one)",
                    None)
    kinds = [
        FaultKind("public-link", "the seed's fault: a bond slave down (bonded), else a pulled "
                  "cable", (node,), lambda f, a: f.public_link(a["node"])),
        FaultKind("pull-cable", "the switch end of the node's veth(s) down: carrier loss",
                  (node, port), lambda f, a: f.pull_cable(a["node"], a["port"])),
        FaultKind("plug", "the switch end up again (the cable of an earlier pull-cable)",
                  (node, port), lambda f, a: f.plug_cable(a["node"], a["port"])),
        FaultKind("admin-down", "`ip link set IFACE down` inside the node", (node, iface),
                  lambda f, a: f.admin_down(a["node"], a["iface"])),
        FaultKind("bond-slave-lost", "one bond slave's cable pulled (the active one by default)",
                  (node, Param("bond", _name, "the bond", "bond0"),
                   Param("slave", _name, "the slave (default: the active one)", None)),
                  lambda f, a: f.bond_slave_lost(a["node"], a["bond"], a["slave"])),
        FaultKind("all-slaves-lost", "every slave's cable of a bond pulled at once",
                  (node, Param("bond", _name, "the bond", "bond0")),
                  lambda f, a: f.all_bond_slaves_lost(a["node"], a["bond"])),
        FaultKind("delete-interface", "an interface deleted inside the node", (node, iface),
                  lambda f, a: f.delete_interface(a["node"], a["iface"])),
        FaultKind("isolate", "the node cut off from a network (switch rules)", (node, network),
                  lambda f, a: f.isolate(a["node"], a["network"])),
        FaultKind("partition", "groups of nodes cut off from each other on a network",
                  (Param("groups", lambda v: tuple(_pnns(g) for g in (
                      v if isinstance(v, list | tuple) else str(v).split("/"))),
                      "groups of pnns, e.g. 0,1/2 (scenario: [[0, 1], [2]])"), network),
                  lambda f, a: f.partition(*a["groups"], network=a["network"])),
        FaultKind("one-way-loss", "frames from SRC nodes to DST nodes dropped",
                  (Param("src", _pnns, "sending nodes, e.g. 0,1"),
                   Param("dst", _pnns, "receiving nodes"), network),
                  lambda f, a: f.one_way_loss(a["src"], a["dst"], a["network"])),
        FaultKind("packet-loss", "a share of the frames on one of the node's cables dropped",
                  (node, Param("port", _name, "the node-side interface"),
                   Param("percent", _percent, "the share dropped, 1-100")),
                  lambda f, a: f.packet_loss(a["node"], a["port"], a["percent"])),
        FaultKind("kill", "the node's daemon killed with SIGKILL (restarted on undo)",
                  (node, Param("restart", _yes_no, "restart it on undo", True)),
                  lambda f, a: f.kill_daemon(a["node"], a["restart"])),
        FaultKind("hang", "the node's daemon frozen with SIGSTOP (SIGCONT on undo)", (node,),
                  lambda f, a: f.hang_daemon(a["node"])),
        FaultKind("stop", "the node's daemon shut down (started again on undo)", (node,),
                  lambda f, a: f.stop_daemon(a["node"])),
        FaultKind("restart", "the node's daemon restarted", (node,),
                  lambda f, a: f.restart_daemon(a["node"])),
        FaultKind("hang-monitor", "an event script that hangs the node's monitor event",
                  (node, Param("seconds", _count, "how long it hangs", 3600)),
                  lambda f, a: f.hang_monitor(a["node"], a["seconds"])),
        FaultKind("fail-event", "an event script that fails the node's takeip or releaseip",
                  (node, Param("event", _event, "takeip or releaseip", "takeip")),
                  lambda f, a: f.fail_event(a["node"], a["event"])),
        FaultKind("flap", "a cable pulled and plugged COUNT times, one cycle every PERIOD s",
                  (node, port, Param("period", _positive, "seconds per cycle", 1.0),
                   Param("count", _count, "cycles", 5)),
                  lambda f, a: f.flap(f.pull_cable(a["node"], a["port"]), a["period"],
                                      a["count"])),
    ]
    return {k.name: k for k in kinds}


KINDS: dict[str, FaultKind] = _kinds()


def fault_kind(name: str) -> FaultKind:
    try:
        return KINDS[name]
    except KeyError:
        raise FaultSpecError(f"unknown fault {name!r}; one of: {', '.join(KINDS)}") from None


def build_fault(faults: Faults, name: str, args: Sequence[Any] | Mapping[str, Any]) -> Fault:
    """The catalogue's fault for `name` with `args`, made (not yet applied)."""
    kind = fault_kind(name)
    return kind.make(faults, kind.parse(args))


def describe_kinds() -> str:
    """One line per kind: usage and what it does (for --help and README)."""
    width = max(len(k.usage()) for k in KINDS.values())
    return "\n".join(f"  {k.usage():<{width}}  {k.summary}" for k in KINDS.values())
