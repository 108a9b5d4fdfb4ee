"""The [[steps]] of a scenario file, read in file order: each step is checked
on its own (keys, types, the fault catalogue's parameters, the topology's
ports and nodes) and against the steps before it (ids, `after` references,
what is undone), so a later step can only name what already exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.faults.kinds import KINDS, REQUIRED, FaultKind
from harness.scenario.model import (
    EXPECTATIONS,
    START,
    UNDO_SUFFIX,
    Bound,
    ExpectStep,
    FaultStep,
    Step,
    Trigger,
    UndoStep,
    WaitStep,
)
from harness.scenario.values import (
    BOUND_HELP,
    Where,
    bound,
    duration,
    event_kind,
    flag_name,
    match_table,
    node_ref,
    observers,
    quote,
    show,
    unknown_keys,
)
from harness.topology import Topology

STEP_KINDS = ("fault", "undo", "expect", "wait")
FAULT_STEP_KEYS = ("fault", "id", "at", "on", "for")
TRIGGER_KEYS = ("kind", "node", "has", "offset", "timeout", "match")
# per expectation: the keys it takes besides expect/id/after/within (or for)
EXPECT_KEYS: dict[str, tuple[str, ...]] = {
    "flag": ("node", "flag", "by"),
    "ok": ("node", "by"),
    "moved": ("node", "ips", "flagged"),
    "reachable": ("node", "ips"),
    "converged": (),
    "event": ("kind", "node", "match"),
    "none": ("flag", "kind", "node", "match", "by"),
}
EXPECT_REQUIRED: dict[str, tuple[str, ...]] = {
    "flag": ("node", "flag"), "ok": ("node",), "moved": ("node",), "reachable": ("node",),
    "event": ("kind",),
}
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass
class StepReader:
    """Reads steps in file order, remembering what later steps may refer to."""

    where: Where
    topology: Topology
    ids: dict[str, int] = field(default_factory=dict)  # id -> step number
    faults: dict[str, FaultStep] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # ids of `flag` expectations
    undone: set[str] = field(default_factory=set)  # faults undone by an undo step
    last_at: tuple[int, float] | None = None

    def read(self, value: Any) -> tuple[Step, ...]:
        if not isinstance(value, list) or not value:
            raise self.where.error("steps", "missing or empty",
                                   'add [[steps]] tables: fault = "...", expect = "...", '
                                   'undo = "ID" or wait = SECONDS')
        return tuple(self.step(n, raw) for n, raw in enumerate(value, 1))

    def step(self, number: int, raw: Any) -> Step:
        where = Where(self.where.path, number)
        if not isinstance(raw, dict):
            raise where.error("", f"{show(raw)} is not a table", "write it as [[steps]]")
        step_id = raw.get("id")
        if step_id is not None:
            if not isinstance(step_id, str) or not ID_RE.fullmatch(step_id) \
                    or step_id == START:
                raise where.error("id", f"{show(step_id)} is not a usable id",
                                  "start with a letter; use letters, digits, - and _ "
                                  f"(not {quote(START)})")
            where = Where(self.where.path, number, step_id)
            if step_id in self.ids:
                raise where.error("id", f"already names step {self.ids[step_id]}",
                                  "give every step its own id")
        kinds = [k for k in STEP_KINDS if k in raw]
        if len(kinds) != 1:
            raise where.error("/".join(kinds), "a step is exactly one of fault, undo, expect, "
                                               "wait", "split it into one step each"
                              if kinds else "add the one it is")
        step: Step
        if kinds[0] == "fault":
            step = self.fault(number, step_id, raw, where)
        elif kinds[0] == "undo":
            step = self.undo(number, raw, where)
        elif kinds[0] == "wait":
            unknown_keys(raw, ("wait",), where, "a wait step")
            step = WaitStep(number, bound(raw["wait"], where, "wait"))
        else:
            step = self.expectation(number, step_id, raw, where)
        if step_id is not None:
            self.ids[step_id] = number
        return step

    # -- faults ----------------------------------------------------------------------
    def fault(self, number: int, step_id: str | None, raw: dict[str, Any],
              where: Where) -> FaultStep:
        name = raw["fault"]
        if not isinstance(name, str) or name not in KINDS:
            raise where.error("fault", f"{show(name)} is not a fault kind",
                              f"use one of {', '.join(KINDS)}")
        kind = KINDS[name]
        keys = (*FAULT_STEP_KEYS, *(p.name for p in kind.params))
        for key in raw:
            if key not in keys:
                raise where.error(key, f"not a parameter of {name}",
                                  f"a {name} step takes {', '.join(keys)}")
        self._fault_params(kind, raw, where)
        args = {p.name: raw[p.name] for p in kind.params if p.name in raw}
        if "at" in raw and "on" in raw:
            raise where.error("on", "a fault has `at` or `on`, not both",
                              "drop one: `at` is a time, `on` an event")
        at = duration(raw["at"], where, "at") if "at" in raw else None
        if at is not None:
            if self.last_at is not None and at < self.last_at[1]:
                raise where.error("at", f"{at:g} is earlier than step {self.last_at[0]}'s "
                                        f"at = {self.last_at[1]:g}",
                                  "steps run in file order: order the faults by `at`")
            self.last_at = (number, at)
        on = self._trigger(raw["on"], where) if "on" in raw else None
        for_s = duration(raw["for"], where, "for", positive=True) if "for" in raw else None
        if for_s is not None and name == "flap":
            raise where.error("for", "a flap ends by itself after `count` cycles",
                              "drop `for` (an undo step stops a flap early)")
        step = FaultStep(number, step_id, name, args, at, on, for_s)
        if step_id is not None:
            self.faults[step_id] = step
        return step

    def _fault_params(self, kind: FaultKind, raw: dict[str, Any], where: Where) -> None:
        """Each parameter through the catalogue's own parser, then against the topology."""
        parsed: dict[str, Any] = {}
        for p in kind.params:
            if p.name not in raw:
                if p.default is REQUIRED:
                    raise where.error(p.name, "missing", f"{kind.name} needs {p.name} ({p.help})")
                parsed[p.name] = p.default
                continue
            value = raw[p.name]
            if p.name == "node" and not isinstance(value, int):
                node_ref(value, where, "node", self.topology)
                continue
            try:
                parsed[p.name] = p.parse(value)
            except (TypeError, ValueError) as e:
                why = str(e) if str(e).startswith(("a ", "an ", "one ", "yes")) else p.help
                raise where.error(p.name, f"{show(value)} is not {why}",
                                  f"give {p.help}") from None
        self._against_topology(parsed, where)

    def _against_topology(self, parsed: dict[str, Any], where: Where) -> None:
        top = self.topology
        if isinstance(parsed.get("node"), int):
            node_ref(parsed["node"], where, "node", top)
        for key in ("groups", "src", "dst"):
            if key in parsed:
                groups = parsed[key] if key == "groups" else (parsed[key],)
                for pnn in (p for g in groups for p in g):
                    node_ref(pnn, where, key, top)
        ports = sorted({p for i in top.interfaces for p in i.ports})
        if "port" in parsed:
            given = parsed["port"] if isinstance(parsed["port"], tuple) else (parsed["port"],)
            for port in given:
                if port not in ports:
                    raise where.error("port", f"{quote(port)} is not a port of this topology",
                                      f"use one of {', '.join(ports)} (a bond's cables are "
                                      "its slaves)")
        if "iface" in parsed:
            names = sorted({i.name for i in top.interfaces} | set(ports))
            if parsed["iface"] not in names:
                raise where.error("iface", f"{quote(parsed['iface'])} is not an interface of this "
                                           "topology", f"use one of {', '.join(names)}")
        if parsed.get("network") is not None:
            nets = [n.name for n in top.networks]
            if parsed["network"] not in nets:
                raise where.error("network", f"{quote(parsed['network'])} is not a network of this "
                                             "topology", f"use one of {', '.join(nets)}")
        if "bond" in parsed:
            bonds = {i.name: i.bond for i in top.interfaces if i.bond is not None}
            bond = bonds.get(parsed["bond"])
            if bond is None:
                raise where.error("bond", f"{quote(parsed['bond'])} is not a bond of this topology",
                                  f"use one of {', '.join(bonds) or '(none: add a bond)'}")
            if parsed.get("slave") is not None and parsed["slave"] not in bond.slaves:
                raise where.error("slave", f"{quote(parsed['slave'])} is not a slave of "
                                           f"{parsed['bond']}",
                                  f"use one of {', '.join(bond.slaves)}")

    def _trigger(self, value: Any, where: Where) -> Trigger:
        example = 'write on = {kind = "flags", node = 1, has = "UNHEALTHY", offset = 0.5}'
        if not isinstance(value, dict):
            raise where.error("on", f"{show(value)} is not a table", example)
        for key in value:
            if key not in TRIGGER_KEYS:
                raise where.error(f"on.{key}", "unknown key", f"on takes {', '.join(TRIGGER_KEYS)}")
        if "kind" not in value:
            raise where.error("on.kind", "missing", example)
        kind = event_kind(value["kind"], where, "on.kind")
        node = node_ref(value["node"], where, "on.node", self.topology) \
            if "node" in value else None
        has = None
        if "has" in value:
            if kind != "flags":
                raise where.error("on.has", f"only a flags event has flags (kind is {quote(kind)})",
                                  'use kind = "flags", or match = {...} for other data')
            has = flag_name(value["has"], where, "on.has", ok=True)
        offset = duration(value.get("offset", 0.0), where, "on.offset")
        timeout = duration(value.get("timeout", 60.0), where, "on.timeout", positive=True)
        match = match_table(value["match"], where, "on.match") if "match" in value else {}
        return Trigger(kind, node, has, offset, timeout, match)

    def undo(self, number: int, raw: dict[str, Any], where: Where) -> UndoStep:
        unknown_keys(raw, ("undo",), where, "an undo step")
        target = raw["undo"]
        if not isinstance(target, str) or target not in self.faults:
            known = ", ".join(self.faults) or "(none: give the fault an id)"
            raise where.error("undo", f"{show(target)} is not the id of an earlier fault",
                              f"use one of {known}")
        if self.faults[target].for_s is not None:
            raise where.error("undo", f"fault {quote(target)} is undone by itself "
                                      f"(for = {self.faults[target].for_s:g})",
                              "drop this step or the fault's `for`")
        if target in self.undone:
            raise where.error("undo", f"fault {quote(target)} is already undone", "drop this step")
        self.undone.add(target)
        return UndoStep(number, target)

    # -- expectations ----------------------------------------------------------------
    def references(self) -> list[str]:
        out = [START]
        for step_id in self.ids:
            out.append(step_id)
            fault = self.faults.get(step_id)
            if fault is not None and self._undoable(step_id):
                out.append(step_id + UNDO_SUFFIX)
        return out

    def _undoable(self, fault_id: str) -> bool:
        fault = self.faults[fault_id]
        return fault.for_s is not None or fault.fault == "flap" or fault_id in self.undone

    def _after(self, value: Any, where: Where) -> str:
        fix = f"use {', '.join(self.references())}"
        if not isinstance(value, str):
            raise where.error("after", f"{show(value)} is not a step id", fix)
        base, undo, rest = value.partition(UNDO_SUFFIX)
        if value == START:
            return value
        if base in self.faults and undo and not rest:
            if not self._undoable(base):
                raise where.error("after", f"fault {quote(base)} is not undone before this step",
                                  f"give it for = SECONDS, or add an undo = {quote(base)} step "
                                  "before this one")
            return value
        if value in self.ids:
            return value
        raise where.error("after", f"{quote(value)} is not the id of an earlier step", fix)

    def expectation(self, number: int, step_id: str | None, raw: dict[str, Any],
                    where: Where) -> ExpectStep:
        what = raw["expect"]
        if not isinstance(what, str) or what not in EXPECTATIONS:
            raise where.error("expect", f"{show(what)} is not an expectation",
                              f"use one of {', '.join(EXPECTATIONS)}")
        span = "for" if what == "none" else "within"
        keys = ("expect", "id", "after", span, *EXPECT_KEYS[what])
        for key in raw:
            if key not in keys:
                fix = (f"expect = {quote(what)} takes {', '.join(keys)}"
                       + ("; how long nothing may happen is `for`" if key == "within" else "")
                       + ("; `for` belongs to expect = \"none\"" if key == "for" else ""))
                raise where.error(key, f"not a key of expect = {quote(what)}", fix)
        for key in ("after", span, *EXPECT_REQUIRED.get(what, ())):
            if key not in raw:
                raise where.error(key, "missing", f"expect = {quote(what)} needs {key}"
                                  + (f" ({BOUND_HELP})" if key in ("within", "for") else ""))
        after = self._after(raw["after"], where)
        node = node_ref(raw["node"], where, "node", self.topology) if "node" in raw else None
        within = self._within(raw["within"], where) if span == "within" else None
        for_ = bound(raw["for"], where, "for") if span == "for" else None
        flag = kind = None
        if what == "none":
            if ("flag" in raw) == ("kind" in raw):
                raise where.error("flag", "expect = \"none\" needs one of flag or kind",
                                  'say what must not happen: flag = "UNHEALTHY" or '
                                  'kind = "addr.add"')
            if "match" in raw and "kind" not in raw:
                raise where.error("match", "goes with kind", 'use kind = "..." with match')
            if "by" in raw and "flag" not in raw:
                raise where.error("by", "goes with flag", "use flag = \"...\" with by")
        if "flag" in raw:
            flag = flag_name(raw["flag"], where, "flag")
        if "kind" in raw:
            kind = event_kind(raw["kind"], where, "kind")
        by = observers(raw["by"], where, "by", self.topology) if "by" in raw else None
        match = match_table(raw["match"], where, "match") if "match" in raw else {}
        ips = self._ips(raw["ips"], where) if "ips" in raw else ()
        flagged = None
        if "flagged" in raw:
            flagged = raw["flagged"]
            if flagged not in self.flags:
                raise where.error("flagged", f"{show(flagged)} is not the id of an earlier "
                                             "flag expectation",
                                  "use one of " + (", ".join(sorted(self.flags))
                                                   or "(none yet: give a flag expectation an id)"))
        if what == "flag" and step_id is not None:
            self.flags.add(step_id)
        return ExpectStep(number, step_id, what, after, within, for_, node, flag, kind, by,
                          match, ips, flagged)

    def _within(self, value: Any, where: Where) -> tuple[Bound, Bound]:
        if not isinstance(value, list) or len(value) != 2:
            raise where.error("within", f"{show(value)} is not [lo, hi]",
                              'write within = [lo, hi], e.g. [0, "detection"]; ' + BOUND_HELP)
        lo, hi = bound(value[0], where, "within"), bound(value[1], where, "within")
        if not lo.names and not hi.names and lo.seconds > hi.seconds:
            raise where.error("within", f"[{lo}, {hi}] is empty", "write [lo, hi] with lo <= hi")
        return lo, hi

    def _ips(self, value: Any, where: Where) -> tuple[str, ...]:
        public = [str(p.address.ip) for p in self.topology.public_addresses]
        fix = f"list public addresses of the topology: {', '.join(public)}"
        if not isinstance(value, list) or not value:
            raise where.error("ips", f"{show(value)} is not a list of addresses", fix)
        for ip in value:
            if ip not in public:
                raise where.error("ips", f"{show(ip)} is not a public address", fix)
        return tuple(value)
