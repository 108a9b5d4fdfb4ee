"""Scenario files (TOML) -> harness.scenario.model.Scenario, checked before any
cluster is built.

A malformed file is ONE line (ScenarioError): the file, the step (its number
in file order and its id) and the key, what is wrong and how to fix it -
never a traceback, because the person writing the file is describing a field
bug, not debugging Python. Everything that can be checked without a cluster
is checked here: unknown keys, types, fault kinds and their parameters (by
the catalogue's own parsers), ports and networks against the topology,
node numbers, bound names, and that every `after` names an earlier step.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import registry
from harness.ctdb import tunables as ctdb_tunables
from harness.fault_kinds import KINDS, REQUIRED, FaultKind
from harness.scenario.model import (
    BOUND_NAMES,
    EVENT_KINDS,
    EXPECTATIONS,
    FLAG_NAMES,
    HOLDER,
    ROLES,
    START,
    UNDO_SUFFIX,
    Bound,
    ExpectStep,
    FaultStep,
    NodeRef,
    Scenario,
    Step,
    Trigger,
    UndoStep,
    WaitStep,
)
from harness.topology import Topology, TopologyError, load_topology, topology_from_dict


class ScenarioError(ValueError):
    """A malformed scenario file; str() is one line: file, step, key, the fix."""


TOP_KEYS = ("name", "description", "topology", "implementations", "event_mode", "tunables",
            "script_options", "slack", "invariants", "invariants_reason",
            "duplicates_allowed_on", "duplicates_reason", "steps")
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
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
OPTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BOUND_HELP = (f"a bound is seconds or {', '.join(BOUND_NAMES)}, joined with + "
              "(e.g. \"detection+takeover\")")


def _show(value: Any) -> str:
    """A value as the file wrote it, short enough for one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = _q(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class _Where:
    """Where in the file a problem is: the file, optionally a step, then a key."""

    path: Path
    step: int | None = None
    step_id: str | None = None

    def at(self, key: str) -> str:
        text = str(self.path)
        if self.step is not None:
            text += f": step {self.step}" + (f" (id {_q(self.step_id)})" if self.step_id else "")
        return f"{text}: {key}" if key else text

    def error(self, key: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(" ".join(f"{self.at(key)}: {problem}; {fix}".split()))

    def wrap(self, key: str, message: str) -> ScenarioError:
        """Another module's one-line error (topology, fault catalogue) under this key."""
        return ScenarioError(" ".join(f"{self.at(key)}: {message}".split()))


# -- values --------------------------------------------------------------------------


def _q(text: str) -> str:
    """A text quoted as TOML writes it."""
    return json.dumps(text)


def _string(value: Any, where: _Where, key: str, fix: str) -> str:
    if value is None:
        raise where.error(key, "missing", fix)
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"{_show(value)} is not a text", fix)
    return value


def _boolean(value: Any, where: _Where, key: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(key, f"{_show(value)} is not true or false", "write true or false")
    return value


def _seconds(value: Any, where: _Where, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or (positive and value == 0):
        above = "above 0" if positive else "0 or more"
        raise where.error(key, f"{_show(value)} is not a number of seconds {above}",
                          "write e.g. 2 or 0.5")
    return float(value)


def _bound(value: Any, where: _Where, key: str) -> Bound:
    """Seconds, or a sum of named bounds and seconds: "detection+takeover+2"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Bound((), _seconds(value, where, key), f"{value:g}")
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"{_show(value)} is not a bound", BOUND_HELP)
    names: list[str] = []
    seconds = 0.0
    for term in (t.strip() for t in value.split("+")):
        if term in BOUND_NAMES:
            names.append(term)
            continue
        try:
            number = float(term)
        except ValueError:
            raise where.error(key, f"{_q(term)} is not a bound", BOUND_HELP) from None
        if number < 0:
            raise where.error(key, f"{_q(term)} is negative", BOUND_HELP)
        seconds += number
    return Bound(tuple(names), seconds, "+".join(t.strip() for t in value.split("+")))


def _node(value: Any, where: _Where, key: str, topology: Topology) -> NodeRef:
    nodes = topology.nodes
    fix = (f"use a pnn from 0 to {nodes - 1}, leader, non-leader or holder:IP "
           "(IP a public address)")
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < nodes:
            raise where.error(key, f"{value} is not a node of this topology "
                                   f"({nodes} nodes)", fix)
        return value
    if isinstance(value, str) and value in ROLES:
        if value == "non-leader" and nodes < 2:
            raise where.error(key, "a 1-node cluster has no non-leader", "use 0")
        return value
    if isinstance(value, str) and value.startswith(HOLDER):
        public = [str(p.address.ip) for p in topology.public_addresses]
        if value[len(HOLDER):] not in public:
            raise where.error(key, f"{_q(value[len(HOLDER):])} is not a public address",
                              f"use holder: with one of {', '.join(public)}")
        return value
    raise where.error(key, f"{_show(value)} is not a node", fix)


def _observers(value: Any, where: _Where, key: str, topology: Topology
               ) -> tuple[NodeRef, ...] | str:
    """`by`: whose status poll saw it: a node, a list of nodes, or "others"."""
    if value == "others":
        return "others"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise where.error(key, "is empty", 'give nodes, e.g. by = [0, 1], or by = "others"')
    return tuple(_node(v, where, key, topology) for v in items)


def _match(value: Any, where: _Where, key: str) -> dict[str, Any]:
    """Event data that must be equal: {ifname = "eth1", up = false}."""
    if not isinstance(value, dict) or not value:
        raise where.error(key, f"{_show(value)} is not a table of event data",
                          'write e.g. match = {ifname = "eth1", up = false}')
    for k, v in value.items():
        scalar = (str, int, float, bool)
        if not (isinstance(v, scalar) or (isinstance(v, list)
                                          and all(isinstance(x, scalar) for x in v))):
            raise where.error(f"{key}.{k}", f"{_show(v)} is not a plain value",
                              "compare with a text, number, true/false or a list of them")
    return dict(value)


def _event_kind(value: Any, where: _Where, key: str) -> str:
    if not isinstance(value, str) or value not in EVENT_KINDS:
        raise where.error(key, f"{_show(value)} is not a timeline event kind",
                          f"use one of {', '.join(EVENT_KINDS)}")
    return value


def _flag(value: Any, where: _Where, key: str, *, ok: bool = False) -> str:
    names = (*FLAG_NAMES, "OK") if ok else FLAG_NAMES
    if not isinstance(value, str) or value not in names:
        extra = "" if ok else ' (a node back to OK is expect = "ok")'
        raise where.error(key, f"{_show(value)} is not a node flag",
                          f"use one of {', '.join(names)}{extra}")
    return value


def _unknown_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: _Where,
                  what: str) -> None:
    for key in raw:
        if key not in allowed:
            raise where.error(key, f"unknown key in {what}", f"it takes {', '.join(allowed)}")


# -- the top level -------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; any problem is one ScenarioError line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read ({e.strerror}); check the path") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p}: not valid TOML ({e}); fix the syntax") from None
    return scenario_from_dict(data, p)


def scenario_from_dict(data: Mapping[str, Any], path: Path) -> Scenario:
    """Check parsed TOML; `path` names the file in errors and anchors relative paths."""
    where = _Where(path)
    for key in data:
        if key not in TOP_KEYS:
            raise where.error(key, "unknown key", f"a scenario file has {', '.join(TOP_KEYS)}")
    name = _string(data.get("name"), where, "name",
                   'name the scenario, e.g. name = "flap" (letters, digits, ., - and _)')
    if not NAME_RE.fullmatch(name):
        raise where.error("name", f"{_q(name)} is not a plain name",
                          "use letters, digits, ., - and _ (it names the artifacts directory)")
    description = _string(data.get("description"), where, "description",
                          "say in a sentence what the scenario reproduces")
    topology, source, tunables, options = _topology(data.get("topology"), where)
    implementations = _implementations(data.get("implementations"), where)
    event_mode = _boolean(data.get("event_mode", False), where, "event_mode")
    if event_mode:
        if implementations is not None and implementations != ("native",):
            raise where.error("event_mode", "only the native implementation has an event-driven "
                                            "monitor", 'set implementations = ["native"]')
        implementations = ("native",)
    tunables = {**tunables, **_tunables(data.get("tunables", {}), where)}
    options = {**options, **_script_options(data.get("script_options", {}), where)}
    slack = _seconds(data.get("slack", 1.0), where, "slack")
    invariants = _boolean(data.get("invariants", True), where, "invariants")
    invariants_reason = _reason(data, "invariants_reason", not invariants, where,
                                "invariants = false")
    duplicates = data.get("duplicates_allowed_on", [])
    if not isinstance(duplicates, list):
        raise where.error("duplicates_allowed_on", f"{_show(duplicates)} is not a list of nodes",
                          "write e.g. duplicates_allowed_on = [2]")
    allowed = tuple(_node(v, where, "duplicates_allowed_on", topology) for v in duplicates)
    duplicates_reason = _reason(data, "duplicates_reason", bool(allowed), where,
                                "duplicates_allowed_on")
    steps = _StepReader(where, topology).read(data.get("steps"))
    return Scenario(name=name, description=description, path=path, topology=topology,
                    topology_source=source, steps=steps, implementations=implementations,
                    event_mode=event_mode, tunables=tunables, script_options=options,
                    slack=slack, invariants=invariants, invariants_reason=invariants_reason,
                    duplicates_allowed_on=allowed, duplicates_reason=duplicates_reason)


def _reason(data: Mapping[str, Any], key: str, needed: bool, where: _Where, what: str) -> str:
    """A check switched off or weakened must say why; a reason for nothing is a mistake."""
    if key not in data:
        if needed:
            raise where.error(key, f"missing: {what} needs a reason",
                              f'say why, e.g. {key} = "the daemon is killed on purpose"')
        return ""
    if not needed:
        raise where.error(key, f"given, but nothing needs it (it explains {what})",
                          f"drop it, or set {what}")
    return _string(data[key], where, key, "say why in a sentence")


def _implementations(value: Any, where: _Where) -> tuple[str, ...] | None:
    if value is None:
        return None
    known = list(registry())
    fix = f"use a list of {', '.join(known)}, e.g. implementations = [\"native\"]"
    if not isinstance(value, list) or not value:
        raise where.error("implementations", f"{_show(value)} is not a list of implementations",
                          fix)
    for v in value:
        if v not in known:
            raise where.error("implementations", f"{_show(v)} is not an implementation", fix)
    if len(set(value)) != len(value):
        raise where.error("implementations", "names an implementation twice", fix)
    return tuple(value)


def _tunables(value: Any, where: _Where) -> dict[str, int]:
    if not isinstance(value, dict):
        raise where.error("tunables", f"{_show(value)} is not a table",
                          "write [tunables] with lines like MonitorInterval = 3")
    out: dict[str, int] = {}
    for name, v in value.items():
        try:
            tunable = ctdb_tunables.current(name)
        except ctdb_tunables.TunableError:
            raise where.error(f"tunables.{name}", "not a CTDB 4.17 tunable (or obsolete)",
                              "`ctdb listvars` names them, e.g. MonitorInterval") from None
        try:
            out[tunable.name] = ctdb_tunables.check_value(v, tunable.name)
        except ctdb_tunables.TunableError:
            raise where.error(f"tunables.{name}", f"{_show(v)} is not a tunable value",
                              f"write a whole number from 0 to {ctdb_tunables.UINT32_MAX}"
                              ) from None
    return out


def _script_options(value: Any, where: _Where) -> dict[str, str]:
    if not isinstance(value, dict):
        raise where.error("script_options", f"{_show(value)} is not a table",
                          'write [script_options] with lines like '
                          'CTDB_PARTIALLY_ONLINE_INTERFACES = "yes"')
    out: dict[str, str] = {}
    for name, v in value.items():
        if not OPTION_RE.fullmatch(name):
            raise where.error(f"script_options.{name}", "not a shell variable name",
                              "use letters, digits and _, e.g. CTDB_PARTIALLY_ONLINE_INTERFACES")
        if not isinstance(v, str):
            raise where.error(f"script_options.{name}", f"{_show(v)} is not a text",
                              f'write it in quotes as script.options has it, e.g. {name} = "yes"')
        out[name] = v
    return out


# -- the topology --------------------------------------------------------------------

TOPOLOGY_HELP = ('describe the cluster: a [topology] table (the keys of a topology file), '
                 'topology = {file = "cluster.toml"}, or '
                 'topology = {ctdb = "etc-ctdb", bonds = ["bond0=active-backup:eth1,eth2"]}')


def _topology(value: Any, where: _Where
              ) -> tuple[Topology, str, dict[str, int], dict[str, str]]:
    """The cluster, where it came from, and the tunables and script options
    that came with it (only an imported /etc/ctdb has any)."""
    if value is None:
        raise where.error("topology", "missing", TOPOLOGY_HELP)
    if not isinstance(value, dict):
        raise where.error("topology", f"{_show(value)} is not a table", TOPOLOGY_HELP)
    if "file" in value:
        for key in value:
            if key != "file":
                raise where.error(f"topology.{key}", "cannot be combined with topology.file",
                                  "put the whole cluster in the file, or write it inline")
        rel = _string(value["file"], where, "topology.file",
                      "give a topology file's path, relative to this file")
        try:
            top = load_topology(where.path.parent / rel)
        except TopologyError as e:
            raise where.wrap("topology.file", str(e)) from None
        return top, f"file {rel}", {}, {}
    if "ctdb" in value:
        for key in value:
            if key not in ("ctdb", "bonds"):
                raise where.error(f"topology.{key}", "cannot be combined with topology.ctdb",
                                  "an imported cluster takes ctdb and bonds only")
        rel = _string(value["ctdb"], where, "topology.ctdb",
                      "give the path of a copy of the cluster's /etc/ctdb")
        directory = where.path.parent / rel
        if not directory.is_dir():
            raise where.error("topology.ctdb", f"{_q(rel)} is not a directory (paths are "
                                               "relative to the scenario file)",
                              "give the path of a copy of the cluster's /etc/ctdb")
        bonds = value.get("bonds", [])
        if not isinstance(bonds, list) or not all(isinstance(b, str) and b for b in bonds):
            raise where.error("topology.bonds", f"{_show(bonds)} is not a list of bond specs",
                              'write e.g. bonds = ["bond0=active-backup:eth1,eth2"]')
        top, tunables, options = _import_ctdb(directory, bonds, where)
        return top, f"ctdb {rel}", tunables, options
    try:
        return topology_from_dict(value, f"{where.path}: topology"), "inline", {}, {}
    except TopologyError as e:
        raise ScenarioError(" ".join(str(e).split())) from None


def _import_ctdb(directory: Path, bonds: list[str], where: _Where
                 ) -> tuple[Topology, dict[str, int], dict[str, str]]:
    """A field cluster's /etc/ctdb, rebuilt as a harness topology.

    MERGE(h9): harness.ctdb_import arrives with branch h9; the lead replaces
    the raise below with:

        from harness.ctdb_import import CtdbImportError, import_ctdb_dir, parse_bond_spec
        try:
            imported = import_ctdb_dir(directory, dict(parse_bond_spec(b) for b in bonds))
        except CtdbImportError as e:
            raise where.wrap("topology.ctdb", str(e)) from None
        return imported.topology, dict(imported.tunables), dict(imported.script_options)

    (the file's own [tunables] and [script_options] are laid over the imported
    ones by scenario_from_dict) and drops the MERGE(h9) test in
    tests/unit/test_scenario_loader.py.
    """
    raise where.error("topology.ctdb", "importing a /etc/ctdb directory is not in this build "
                                       "(harness.ctdb_import)",
                      'describe the cluster inline or with topology = {file = "..."}')


# -- steps ---------------------------------------------------------------------------


@dataclass
class _StepReader:
    """Reads steps in file order, remembering what later steps may refer to."""

    where: _Where
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
        where = _Where(self.where.path, number)
        if not isinstance(raw, dict):
            raise where.error("", f"{_show(raw)} is not a table", "write it as [[steps]]")
        step_id = raw.get("id")
        if step_id is not None:
            if not isinstance(step_id, str) or not ID_RE.fullmatch(step_id) \
                    or step_id == START:
                raise where.error("id", f"{_show(step_id)} is not a usable id",
                                  "start with a letter; use letters, digits, - and _ "
                                  f"(not {_q(START)})")
            where = _Where(self.where.path, number, step_id)
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
            _unknown_keys(raw, ("wait",), where, "a wait step")
            step = WaitStep(number, _bound(raw["wait"], where, "wait"))
        else:
            step = self.expectation(number, step_id, raw, where)
        if step_id is not None:
            self.ids[step_id] = number
        return step

    # -- faults ----------------------------------------------------------------------
    def fault(self, number: int, step_id: str | None, raw: dict[str, Any],
              where: _Where) -> FaultStep:
        name = raw["fault"]
        if not isinstance(name, str) or name not in KINDS:
            raise where.error("fault", f"{_show(name)} is not a fault kind",
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
        at = _seconds(raw["at"], where, "at") if "at" in raw else None
        if at is not None:
            if self.last_at is not None and at < self.last_at[1]:
                raise where.error("at", f"{at:g} is earlier than step {self.last_at[0]}'s "
                                        f"at = {self.last_at[1]:g}",
                                  "steps run in file order: order the faults by `at`")
            self.last_at = (number, at)
        on = self._trigger(raw["on"], where) if "on" in raw else None
        for_s = _seconds(raw["for"], where, "for", positive=True) if "for" in raw else None
        if for_s is not None and name == "flap":
            raise where.error("for", "a flap ends by itself after `count` cycles",
                              "drop `for` (an undo step stops a flap early)")
        step = FaultStep(number, step_id, name, args, at, on, for_s)
        if step_id is not None:
            self.faults[step_id] = step
        return step

    def _fault_params(self, kind: FaultKind, raw: dict[str, Any], where: _Where) -> None:
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
                _node(value, where, "node", self.topology)
                continue
            try:
                parsed[p.name] = p.parse(value)
            except (TypeError, ValueError) as e:
                why = str(e) if str(e).startswith(("a ", "an ", "one ", "yes")) else p.help
                raise where.error(p.name, f"{_show(value)} is not {why}",
                                  f"give {p.help}") from None
        self._against_topology(parsed, where)

    def _against_topology(self, parsed: dict[str, Any], where: _Where) -> None:
        top = self.topology
        if isinstance(parsed.get("node"), int):
            _node(parsed["node"], where, "node", top)
        for key in ("groups", "src", "dst"):
            if key in parsed:
                groups = parsed[key] if key == "groups" else (parsed[key],)
                for pnn in (p for g in groups for p in g):
                    _node(pnn, where, key, top)
        ports = sorted({p for i in top.interfaces for p in i.ports})
        if "port" in parsed:
            given = parsed["port"] if isinstance(parsed["port"], tuple) else (parsed["port"],)
            for port in given:
                if port not in ports:
                    raise where.error("port", f"{_q(port)} is not a port of this topology",
                                      f"use one of {', '.join(ports)} (a bond's cables are "
                                      "its slaves)")
        if "iface" in parsed:
            names = sorted({i.name for i in top.interfaces} | set(ports))
            if parsed["iface"] not in names:
                raise where.error("iface", f"{_q(parsed['iface'])} is not an interface of this "
                                           "topology", f"use one of {', '.join(names)}")
        if parsed.get("network") is not None:
            nets = [n.name for n in top.networks]
            if parsed["network"] not in nets:
                raise where.error("network", f"{_q(parsed['network'])} is not a network of this "
                                             "topology", f"use one of {', '.join(nets)}")
        if "bond" in parsed:
            bonds = {i.name: i.bond for i in top.interfaces if i.bond is not None}
            bond = bonds.get(parsed["bond"])
            if bond is None:
                raise where.error("bond", f"{_q(parsed['bond'])} is not a bond of this topology",
                                  f"use one of {', '.join(bonds) or '(none: add a bond)'}")
            if parsed.get("slave") is not None and parsed["slave"] not in bond.slaves:
                raise where.error("slave", f"{_q(parsed['slave'])} is not a slave of "
                                           f"{parsed['bond']}",
                                  f"use one of {', '.join(bond.slaves)}")

    def _trigger(self, value: Any, where: _Where) -> Trigger:
        example = 'write on = {kind = "flags", node = 1, has = "UNHEALTHY", offset = 0.5}'
        if not isinstance(value, dict):
            raise where.error("on", f"{_show(value)} is not a table", example)
        for key in value:
            if key not in TRIGGER_KEYS:
                raise where.error(f"on.{key}", "unknown key", f"on takes {', '.join(TRIGGER_KEYS)}")
        if "kind" not in value:
            raise where.error("on.kind", "missing", example)
        kind = _event_kind(value["kind"], where, "on.kind")
        node = _node(value["node"], where, "on.node", self.topology) \
            if "node" in value else None
        has = None
        if "has" in value:
            if kind != "flags":
                raise where.error("on.has", f"only a flags event has flags (kind is {_q(kind)})",
                                  'use kind = "flags", or match = {...} for other data')
            has = _flag(value["has"], where, "on.has", ok=True)
        offset = _seconds(value.get("offset", 0.0), where, "on.offset")
        timeout = _seconds(value.get("timeout", 60.0), where, "on.timeout", positive=True)
        match = _match(value["match"], where, "on.match") if "match" in value else {}
        return Trigger(kind, node, has, offset, timeout, match)

    def undo(self, number: int, raw: dict[str, Any], where: _Where) -> UndoStep:
        _unknown_keys(raw, ("undo",), where, "an undo step")
        target = raw["undo"]
        if not isinstance(target, str) or target not in self.faults:
            known = ", ".join(self.faults) or "(none: give the fault an id)"
            raise where.error("undo", f"{_show(target)} is not the id of an earlier fault",
                              f"use one of {known}")
        if self.faults[target].for_s is not None:
            raise where.error("undo", f"fault {_q(target)} is undone by itself "
                                      f"(for = {self.faults[target].for_s:g})",
                              "drop this step or the fault's `for`")
        if target in self.undone:
            raise where.error("undo", f"fault {_q(target)} is already undone", "drop this step")
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

    def _after(self, value: Any, where: _Where) -> str:
        fix = f"use {', '.join(self.references())}"
        if not isinstance(value, str):
            raise where.error("after", f"{_show(value)} is not a step id", fix)
        base, undo, rest = value.partition(UNDO_SUFFIX)
        if value == START:
            return value
        if base in self.faults and undo and not rest:
            if not self._undoable(base):
                raise where.error("after", f"fault {_q(base)} is not undone before this step",
                                  f"give it for = SECONDS, or add an undo = {_q(base)} step "
                                  "before this one")
            return value
        if value in self.ids:
            return value
        raise where.error("after", f"{_q(value)} is not the id of an earlier step", fix)

    def expectation(self, number: int, step_id: str | None, raw: dict[str, Any],
                    where: _Where) -> ExpectStep:
        what = raw["expect"]
        if not isinstance(what, str) or what not in EXPECTATIONS:
            raise where.error("expect", f"{_show(what)} is not an expectation",
                              f"use one of {', '.join(EXPECTATIONS)}")
        span = "for" if what == "none" else "within"
        keys = ("expect", "id", "after", span, *EXPECT_KEYS[what])
        for key in raw:
            if key not in keys:
                fix = (f"expect = {_q(what)} takes {', '.join(keys)}"
                       + ("; how long nothing may happen is `for`" if key == "within" else "")
                       + ("; `for` belongs to expect = \"none\"" if key == "for" else ""))
                raise where.error(key, f"not a key of expect = {_q(what)}", fix)
        for key in ("after", span, *EXPECT_REQUIRED.get(what, ())):
            if key not in raw:
                raise where.error(key, "missing", f"expect = {_q(what)} needs {key}"
                                  + (f" ({BOUND_HELP})" if key in ("within", "for") else ""))
        after = self._after(raw["after"], where)
        node = _node(raw["node"], where, "node", self.topology) if "node" in raw else None
        within = self._within(raw["within"], where) if span == "within" else None
        for_ = _bound(raw["for"], where, "for") if span == "for" else None
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
            flag = _flag(raw["flag"], where, "flag")
        if "kind" in raw:
            kind = _event_kind(raw["kind"], where, "kind")
        by = _observers(raw["by"], where, "by", self.topology) if "by" in raw else None
        match = _match(raw["match"], where, "match") if "match" in raw else {}
        ips = self._ips(raw["ips"], where) if "ips" in raw else ()
        flagged = None
        if "flagged" in raw:
            flagged = raw["flagged"]
            if flagged not in self.flags:
                raise where.error("flagged", f"{_show(flagged)} is not the id of an earlier "
                                             "flag expectation",
                                  "use one of " + (", ".join(sorted(self.flags))
                                                   or "(none yet: give a flag expectation an id)"))
        if what == "flag" and step_id is not None:
            self.flags.add(step_id)
        return ExpectStep(number, step_id, what, after, within, for_, node, flag, kind, by,
                          match, ips, flagged)

    def _within(self, value: Any, where: _Where) -> tuple[Bound, Bound]:
        if not isinstance(value, list) or len(value) != 2:
            raise where.error("within", f"{_show(value)} is not [lo, hi]",
                              'write within = [lo, hi], e.g. [0, "detection"]; ' + BOUND_HELP)
        lo, hi = _bound(value[0], where, "within"), _bound(value[1], where, "within")
        if not lo.names and not hi.names and lo.seconds > hi.seconds:
            raise where.error("within", f"[{lo}, {hi}] is empty", "write [lo, hi] with lo <= hi")
        return lo, hi

    def _ips(self, value: Any, where: _Where) -> tuple[str, ...]:
        public = [str(p.address.ip) for p in self.topology.public_addresses]
        fix = f"list public addresses of the topology: {', '.join(public)}"
        if not isinstance(value, list) or not value:
            raise where.error("ips", f"{_show(value)} is not a list of addresses", fix)
        for ip in value:
            if ip not in public:
                raise where.error("ips", f"{_show(ip)} is not a public address", fix)
        return tuple(value)
