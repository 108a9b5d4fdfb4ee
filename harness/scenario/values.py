"""Checked values of a scenario file: each check returns the value or raises
ScenarioError, one line naming where (file, step, key), what is wrong and
how to fix it. Shared by the loader (top-level keys, topology) and the step
reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.model import (
    BOUND_NAMES,
    EVENT_KINDS,
    FLAG_NAMES,
    HOLDER,
    ROLES,
    Bound,
    NodeRef,
)
from harness.topology import Topology


class ScenarioError(ValueError):
    """A malformed scenario file; str() is one line: file, step, key, the fix."""


BOUND_HELP = (f"a bound is seconds or {', '.join(BOUND_NAMES)}, joined with + "
              "(e.g. \"detection+takeover\")")


def show(value: Any) -> str:
    """A value as the file wrote it, short enough for one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = quote(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Where:
    """Where in the file a problem is: the file, optionally a step, then a key."""

    path: Path
    step: int | None = None
    step_id: str | None = None

    def at(self, key: str) -> str:
        text = str(self.path)
        if self.step is not None:
            text += f": step {self.step}" + (f" (id {quote(self.step_id)})" if self.step_id else "")
        return f"{text}: {key}" if key else text

    def error(self, key: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(" ".join(f"{self.at(key)}: {problem}; {fix}".split()))

    def wrap(self, key: str, message: str) -> ScenarioError:
        """Another module's one-line error (topology, fault catalogue) under this key."""
        return ScenarioError(" ".join(f"{self.at(key)}: {message}".split()))


def quote(text: str) -> str:
    """A text quoted as TOML writes it."""
    return json.dumps(text)


def string(value: Any, where: Where, key: str, fix: str) -> str:
    if value is None:
        raise where.error(key, "missing", fix)
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"{show(value)} is not a text", fix)
    return value


def boolean(value: Any, where: Where, key: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(key, f"{show(value)} is not true or false", "write true or false")
    return value


def duration(value: Any, where: Where, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or (positive and value == 0):
        above = "above 0" if positive else "0 or more"
        raise where.error(key, f"{show(value)} is not a number of seconds {above}",
                          "write e.g. 2 or 0.5")
    return float(value)


def bound(value: Any, where: Where, key: str) -> Bound:
    """Seconds, or a sum of named bounds and seconds: "detection+takeover+2"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Bound((), duration(value, where, key), f"{value:g}")
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"{show(value)} is not a bound", BOUND_HELP)
    names: list[str] = []
    seconds = 0.0
    for term in (t.strip() for t in value.split("+")):
        if term in BOUND_NAMES:
            names.append(term)
            continue
        try:
            number = float(term)
        except ValueError:
            raise where.error(key, f"{quote(term)} is not a bound", BOUND_HELP) from None
        if number < 0:
            raise where.error(key, f"{quote(term)} is negative", BOUND_HELP)
        seconds += number
    return Bound(tuple(names), seconds, "+".join(t.strip() for t in value.split("+")))


def node_ref(value: Any, where: Where, key: str, topology: Topology) -> NodeRef:
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
            raise where.error(key, f"{quote(value[len(HOLDER):])} is not a public address",
                              f"use holder: with one of {', '.join(public)}")
        return value
    raise where.error(key, f"{show(value)} is not a node", fix)


def observers(value: Any, where: Where, key: str, topology: Topology
               ) -> tuple[NodeRef, ...] | str:
    """`by`: whose status poll saw it: a node, a list of nodes, or "others"."""
    if value == "others":
        return "others"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise where.error(key, "is empty", 'give nodes, e.g. by = [0, 1], or by = "others"')
    return tuple(node_ref(v, where, key, topology) for v in items)


def match_table(value: Any, where: Where, key: str) -> dict[str, Any]:
    """Event data that must be equal: {ifname = "eth1", up = false}."""
    if not isinstance(value, dict) or not value:
        raise where.error(key, f"{show(value)} is not a table of event data",
                          'write e.g. match = {ifname = "eth1", up = false}')
    for k, v in value.items():
        scalar = (str, int, float, bool)
        if not (isinstance(v, scalar) or (isinstance(v, list)
                                          and all(isinstance(x, scalar) for x in v))):
            raise where.error(f"{key}.{k}", f"{show(v)} is not a plain value",
                              "compare with a text, number, true/false or a list of them")
    return dict(value)


def event_kind(value: Any, where: Where, key: str) -> str:
    if not isinstance(value, str) or value not in EVENT_KINDS:
        raise where.error(key, f"{show(value)} is not a timeline event kind",
                          f"use one of {', '.join(EVENT_KINDS)}")
    return value


def flag_name(value: Any, where: Where, key: str, *, ok: bool = False) -> str:
    names = (*FLAG_NAMES, "OK") if ok else FLAG_NAMES
    if not isinstance(value, str) or value not in names:
        extra = "" if ok else ' (a node back to OK is expect = "ok")'
        raise where.error(key, f"{show(value)} is not a node flag",
                          f"use one of {', '.join(names)}{extra}")
    return value


def unknown_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: Where,
                  what: str) -> None:
    for key in raw:
        if key not in allowed:
            raise where.error(key, f"unknown key in {what}", f"it takes {', '.join(allowed)}")
