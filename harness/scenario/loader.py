"""Scenario files (TOML) -> harness.scenario.model.Scenario, checked before any
cluster is built.

A malformed file is ONE line (ScenarioError): the file, the step (its number
in file order and its id) and the key, what is wrong and how to fix it -
never a traceback, because the person writing the file is describing a field
bug, not debugging Python. Everything that can be checked without a cluster
is checked before one is built: here the top-level keys, the topology, the
tunables and script options; in harness.scenario.steps the steps (fault
kinds and their parameters by the catalogue's own parsers, ports and nodes
against the topology, bound names, and that every `after` names an earlier
step).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.backends import registry
from harness.ctdb import tunables as ctdb_tunables
from harness.ctdb_import import CtdbImportError, import_ctdb_dir, parse_bond_spec
from harness.scenario.model import Scenario
from harness.scenario.steps import StepReader
from harness.scenario.values import (
    ScenarioError,
    Where,
    boolean,
    duration,
    node_ref,
    quote,
    show,
    string,
)
from harness.topology import Topology, TopologyError, load_topology, topology_from_dict

TOP_KEYS = ("name", "description", "topology", "implementations", "event_mode", "tunables",
            "script_options", "slack", "invariants", "invariants_reason",
            "duplicates_allowed_on", "duplicates_reason", "steps")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
OPTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    where = Where(path)
    for key in data:
        if key not in TOP_KEYS:
            raise where.error(key, "unknown key", f"a scenario file has {', '.join(TOP_KEYS)}")
    name = string(data.get("name"), where, "name",
                   'name the scenario, e.g. name = "flap" (letters, digits, ., - and _)')
    if not NAME_RE.fullmatch(name):
        raise where.error("name", f"{quote(name)} is not a plain name",
                          "use letters, digits, ., - and _ (it names the artifacts directory)")
    description = string(data.get("description"), where, "description",
                          "say in a sentence what the scenario reproduces")
    topology, source, tunables, options = _topology(data.get("topology"), where)
    implementations = _implementations(data.get("implementations"), where)
    event_mode = boolean(data.get("event_mode", False), where, "event_mode")
    if event_mode:
        if implementations is not None and implementations != ("native",):
            raise where.error("event_mode", "only the native implementation has an event-driven "
                                            "monitor", 'set implementations = ["native"]')
        implementations = ("native",)
    tunables = {**tunables, **_tunables(data.get("tunables", {}), where)}
    options = {**options, **_script_options(data.get("script_options", {}), where)}
    slack = duration(data.get("slack", 1.0), where, "slack")
    invariants = boolean(data.get("invariants", True), where, "invariants")
    invariants_reason = _reason(data, "invariants_reason", not invariants, where,
                                "invariants = false")
    duplicates = data.get("duplicates_allowed_on", [])
    if not isinstance(duplicates, list):
        raise where.error("duplicates_allowed_on", f"{show(duplicates)} is not a list of nodes",
                          "write e.g. duplicates_allowed_on = [2]")
    allowed = tuple(node_ref(v, where, "duplicates_allowed_on", topology) for v in duplicates)
    duplicates_reason = _reason(data, "duplicates_reason", bool(allowed), where,
                                "duplicates_allowed_on")
    steps = StepReader(where, topology).read(data.get("steps"))
    return Scenario(name=name, description=description, path=path, topology=topology,
                    topology_source=source, steps=steps, implementations=implementations,
                    event_mode=event_mode, tunables=tunables, script_options=options,
                    slack=slack, invariants=invariants, invariants_reason=invariants_reason,
                    duplicates_allowed_on=allowed, duplicates_reason=duplicates_reason)


def _reason(data: Mapping[str, Any], key: str, needed: bool, where: Where, what: str) -> str:
    """A check switched off or weakened must say why; a reason for nothing is a mistake."""
    if key not in data:
        if needed:
            raise where.error(key, f"missing: {what} needs a reason",
                              f'say why, e.g. {key} = "the daemon is killed on purpose"')
        return ""
    if not needed:
        raise where.error(key, f"given, but nothing needs it (it explains {what})",
                          f"drop it, or set {what}")
    return string(data[key], where, key, "say why in a sentence")


def _implementations(value: Any, where: Where) -> tuple[str, ...] | None:
    if value is None:
        return None
    known = list(registry())
    fix = f"use a list of {', '.join(known)}, e.g. implementations = [\"native\"]"
    if not isinstance(value, list) or not value:
        raise where.error("implementations", f"{show(value)} is not a list of implementations",
                          fix)
    for v in value:
        if v not in known:
            raise where.error("implementations", f"{show(v)} is not an implementation", fix)
    if len(set(value)) != len(value):
        raise where.error("implementations", "names an implementation twice", fix)
    return tuple(value)


def _tunables(value: Any, where: Where) -> dict[str, int]:
    if not isinstance(value, dict):
        raise where.error("tunables", f"{show(value)} is not a table",
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
            raise where.error(f"tunables.{name}", f"{show(v)} is not a tunable value",
                              f"write a whole number from 0 to {ctdb_tunables.UINT32_MAX}"
                              ) from None
    return out


def _script_options(value: Any, where: Where) -> dict[str, str]:
    if not isinstance(value, dict):
        raise where.error("script_options", f"{show(value)} is not a table",
                          'write [script_options] with lines like '
                          'CTDB_PARTIALLY_ONLINE_INTERFACES = "yes"')
    out: dict[str, str] = {}
    for name, v in value.items():
        if not OPTION_RE.fullmatch(name):
            raise where.error(f"script_options.{name}", "not a shell variable name",
                              "use letters, digits and _, e.g. CTDB_PARTIALLY_ONLINE_INTERFACES")
        if not isinstance(v, str):
            raise where.error(f"script_options.{name}", f"{show(v)} is not a text",
                              f'write it in quotes as script.options has it, e.g. {name} = "yes"')
        out[name] = v
    return out


# -- the topology --------------------------------------------------------------------

TOPOLOGY_HELP = ('describe the cluster: a [topology] table (the keys of a topology file), '
                 'topology = {file = "cluster.toml"}, or '
                 'topology = {ctdb = "etc-ctdb", bonds = ["bond0=active-backup:eth1,eth2"]}')


def _topology(value: Any, where: Where
              ) -> tuple[Topology, str, dict[str, int], dict[str, str]]:
    """The cluster, where it came from, and the tunables and script options
    that came with it (only an imported /etc/ctdb has any)."""
    if value is None:
        raise where.error("topology", "missing", TOPOLOGY_HELP)
    if not isinstance(value, dict):
        raise where.error("topology", f"{show(value)} is not a table", TOPOLOGY_HELP)
    if "file" in value:
        for key in value:
            if key != "file":
                raise where.error(f"topology.{key}", "cannot be combined with topology.file",
                                  "put the whole cluster in the file, or write it inline")
        rel = string(value["file"], where, "topology.file",
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
        rel = string(value["ctdb"], where, "topology.ctdb",
                      "give the path of a copy of the cluster's /etc/ctdb")
        directory = where.path.parent / rel
        if not directory.is_dir():
            raise where.error("topology.ctdb", f"{quote(rel)} is not a directory (paths are "
                                               "relative to the scenario file)",
                              "give the path of a copy of the cluster's /etc/ctdb")
        bonds = value.get("bonds", [])
        if not isinstance(bonds, list) or not all(isinstance(b, str) and b for b in bonds):
            raise where.error("topology.bonds", f"{show(bonds)} is not a list of bond specs",
                              'write e.g. bonds = ["bond0=active-backup:eth1,eth2"]')
        top, tunables, options = _import_ctdb(directory, bonds, where)
        return top, f"ctdb {rel}", tunables, options
    try:
        return topology_from_dict(value, f"{where.path}: topology"), "inline", {}, {}
    except TopologyError as e:
        raise ScenarioError(" ".join(str(e).split())) from None


def _import_ctdb(directory: Path, bonds: list[str], where: Where
                 ) -> tuple[Topology, dict[str, int], dict[str, str]]:
    """A field cluster's /etc/ctdb, rebuilt as a harness topology (harness.ctdb_import);
    the file's own [tunables] and [script_options] are laid over the imported ones
    by scenario_from_dict."""
    try:
        spec = dict(parse_bond_spec(b, where.at("topology.bonds")) for b in bonds)
    except CtdbImportError as e:
        raise ScenarioError(str(e)) from None
    try:
        imported = import_ctdb_dir(directory, spec)
    except CtdbImportError as e:
        raise where.wrap("topology.ctdb", str(e)) from None
    return imported.topology, dict(imported.tunables), dict(imported.script_options)
