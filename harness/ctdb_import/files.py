"""Reading /etc/ctdb's files: nodes, tunables, script options and ctdb.conf.

harness.ctdb's parsers read each format; this module finds the files,
decodes them, turns ConfigError into CtdbImportError, and merges what
several files set (see the package docstring for the precedence).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from harness.ctdb import (
    DEFAULTS,
    NAMES,
    ConfigError,
    NodeEntry,
    TunableError,
    Tunables,
    parse_nodes,
    parse_script_options,
    parse_tunables,
    parse_value,
)
from harness.ctdb.tunables import find, lookup
from harness.ctdb_import.model import CtdbImportError
from harness.topology import MAX_NODES

_SET_PREFIX = "CTDB_SET_"

_P = ParamSpec("_P")
_T = TypeVar("_T")


def read_file(path: Path, required: bool = False) -> str | None:
    """A file's text; None if it is absent and optional.  Not UTF-8 is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise CtdbImportError(str(path), None, "missing",
                                  "copy the field's nodes file (one private address a line) "
                                  "into the directory") from None
        return None
    except OSError as e:
        raise CtdbImportError(str(path), None, f"cannot read it ({e.strerror})",
                              "check the path and its permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise CtdbImportError(str(path), line, f"not UTF-8 (byte 0x{raw[e.start]:02x})",
                              "save the file as UTF-8 (or plain ASCII)") from None


def parsed(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call one of harness.ctdb's parsers, its ConfigError becoming ours.

    Typed by `fn`, so a parser's result keeps its type through the call.
    """
    try:
        return fn(*args, **kwargs)
    except ConfigError as e:
        raise CtdbImportError.from_config(e) from None


# -- nodes -----------------------------------------------------------------------------

def entry_lines(text: str, public: bool) -> list[int]:
    """Line numbers of the entries harness.ctdb's parsers return, in their order.

    The parsers return entries without lines; errors about an entry need its line.

    nodes: every non-blank line is an entry (a '#' line a deleted node);
    public_addresses: blank and '#' lines are skipped.
    """
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        body = raw.lstrip(" \t") if public else raw.strip(" \t")
        if not body or (public and (body.startswith("#") or not body.split())):
            continue
        out.append(lineno)
    return out


def read_nodes(path: Path, warnings: list[str]) -> list[NodeEntry]:
    """The nodes to build: trailing deleted ones dropped, inner ones kept."""
    text = read_file(path, required=True) or ""
    src = str(path)
    entries = list(parsed(parse_nodes, text, src))
    lines = entry_lines(text, public=False)
    for e in entries:
        if not e.deleted and e.address.version != 4:
            raise CtdbImportError(src, lines[e.pnn],
                                  f"{e.address} is IPv6, and the harness builds IPv4 only",
                                  "import a copy with the nodes' IPv4 addresses")
    keep = len(entries)
    while entries[keep - 1].deleted:  # parse_nodes refuses a file without a live node
        keep -= 1
    if keep > MAX_NODES:
        raise CtdbImportError(src, lines[MAX_NODES],
                              f"{keep} nodes, more than the harness's {MAX_NODES}",
                              f"import a copy that lists at most {MAX_NODES} (pnns are line "
                              "positions: cut from the end)")
    for e in entries:
        if e.deleted and e.pnn < keep:
            warnings.append(
                f"{src}:{lines[e.pnn]}: node {e.pnn} is deleted; the harness builds it as a "
                "live node to keep the later nodes' pnns (stop its daemon to mimic the field)")
        elif e.deleted:
            warnings.append(f"{src}:{lines[e.pnn]}: node {e.pnn} is deleted and last; "
                            "dropped (it shifts no pnn)")
    return entries[:keep]


# -- script options and tunables --------------------------------------------------------

def _assignment_lines(text: str) -> dict[str, int]:
    """Shell file: name -> line of its last assignment (the one that counts)."""
    out: dict[str, int] = {}
    for lineno, raw in enumerate(text.split("\n"), 1):
        m = re.match(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", raw)
        if m:
            out[m.group(1)] = lineno
    return out


@dataclass
class _ShellFile:
    """A shell-style options file: its settings and where each is set."""

    path: str
    values: dict[str, str]
    lines: dict[str, int]


def _shell_file(path: Path) -> _ShellFile | None:
    """The file's settings as the event scripts' shell reads them; None if it is absent."""
    text = read_file(path)
    if text is None:
        return None
    values = parsed(parse_script_options, text, str(path))
    return _ShellFile(str(path), values, _assignment_lines(text))


def _set_tunables(f: _ShellFile) -> dict[str, int]:
    """The ``CTDB_SET_Name=Value`` settings of a shell file, checked as ctdb would."""
    out: dict[str, int] = {}
    for key, value in f.values.items():
        if not key.startswith(_SET_PREFIX):
            continue
        name, line = key[len(_SET_PREFIX):], f.lines.get(key)
        t = find(name)
        if t is None:
            raise CtdbImportError(f.path, line, f"{key}: unknown tunable {name!r}",
                                  "`ctdb listvars` (harness.ctdb.tunables.NAMES) lists the "
                                  "valid names")
        if t.obsolete:
            raise CtdbImportError(f.path, line,
                                  f"{key}: obsolete tunable {t.name!r} (ctdbd 4.17 refuses it)",
                                  "remove the line")
        try:
            out[t.name] = parse_value(value, t.name)
        except TunableError:
            raise CtdbImportError(f.path, line, f"{key}: invalid value {value!r}",
                                  "write an integer from 0 to 4294967295 (decimal, 0x hex "
                                  "or 0 octal)") from None
    return out


def _other(name: str) -> int:
    """A valid value of tunable `name` that is not its default."""
    d = DEFAULTS[name]
    return d ^ 1 if d ^ 1 <= lookup(name).maximum else d - 1


def _tunables_file(path: Path) -> dict[str, int]:
    """The tunables a ctdb.tunables file sets, explicit defaults included.

    parse_tunables applies the file onto a base; applied onto two bases that
    differ everywhere, exactly the names the file sets come out equal.
    """
    text = read_file(path)
    if text is None:
        return {}
    low = parsed(parse_tunables, text, Tunables(), str(path))
    high = parsed(parse_tunables, text, Tunables({n: _other(n) for n in NAMES}), str(path))
    return {n: low[n] for n in NAMES if low[n] == high[n]}


# -- ctdb.conf -----------------------------------------------------------------------

_CONF_USED = {("cluster", "cluster lock"), ("cluster", "recovery lock")}
_CONF_IGNORED = {
    ("cluster", "node address"),
    ("database", "volatile database directory"),
    ("database", "persistent database directory"),
    ("database", "state database directory"),
    ("database", "tdb mutexes"),
    ("database", "lock debug script"),
    ("event", "debug script"),
    ("legacy", "realtime scheduling"),
    ("legacy", "lmaster capability"),
    ("legacy", "script log level"),
    ("logging", "location"),
    ("logging", "log level"),
}
"""Options with no bearing on public-IP failover: read and left alone."""
_CONF_NOT_REPRODUCED = {
    ("cluster", "transport"): "tcp",
    ("cluster", "leader capability"): "true",
    ("cluster", "leader timeout"): "5",
    ("failover", "disabled"): "false",
    ("legacy", "recmaster capability"): "true",
    ("legacy", "start as stopped"): "false",
    ("legacy", "start as disabled"): "false",
}
"""Options that change failover behaviour, with the value the harness runs with."""
_CONF_SECTIONS = {s for s, _ in _CONF_USED | _CONF_IGNORED | set(_CONF_NOT_REPRODUCED)}


def _read_ctdb_conf(path: Path, warnings: list[str]) -> str | None:
    """ctdb.conf's cluster lock; warnings for what the harness leaves out."""
    text = read_file(path)
    if text is None:
        return None
    src = str(path)
    section: str | None = None
    lock: str | None = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = " ".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CtdbImportError(src, lineno, f"{line!r} is not a [section] line",
                                      "write e.g. [cluster]")
            section = " ".join(line[1:-1].lower().split())
            if section not in _CONF_SECTIONS:
                warnings.append(f"{src}:{lineno}: unknown section [{section}] ignored")
            continue
        key, eq, value = line.partition("=")
        key, value = " ".join(key.lower().split()), value.strip()
        if not eq or not key:
            raise CtdbImportError(src, lineno, f"{line!r} is not 'key = value'",
                                  "write e.g. 'cluster lock = /clusterfs/.ctdb/reclock'")
        if section is None:
            raise CtdbImportError(src, lineno, f"{key!r} is outside any [section]",
                                  "put it under its section, e.g. [cluster]")
        if section not in _CONF_SECTIONS or (section, key) in _CONF_IGNORED:
            continue
        if (section, key) in _CONF_USED:
            lock = value or None
        elif (section, key) in _CONF_NOT_REPRODUCED:
            runs_with = _CONF_NOT_REPRODUCED[(section, key)]
            if value.lower() != runs_with:
                warnings.append(f"{src}:{lineno}: [{section}] {key} = {value} is not "
                                f"reproduced; the harness runs with {runs_with}")
        else:
            warnings.append(f"{src}:{lineno}: unknown option [{section}] {key} ignored")
    return lock


# -- every setting ----------------------------------------------------------------------

_LEGACY_NOT_OPTIONS = ("CTDB_RECOVERY_LOCK", "CTDB_NODES", "CTDB_PUBLIC_ADDRESSES")
"""Legacy ctdbd.conf settings that are the daemon's, not the event scripts'."""


@dataclass
class Settings:
    """What the daemon and its event scripts are configured with, from every file."""

    tunables: dict[str, int]
    """Canonical name -> value, in CTDB's order; only the names the files set."""
    script_options: dict[str, str]
    cluster_lock: str | None


def read_settings(d: Path, warnings: list[str]) -> Settings:
    """Tunables, script options and cluster lock from every file that holds them."""
    legacy = _shell_file(d / "ctdbd.conf")
    options_files = [f for f in (_shell_file(d / "script.options"),
                                 _shell_file(d / "events" / "legacy" / "10.interface.options"))
                     if f is not None]
    tunable_sources: list[tuple[str, dict[str, int]]] = []
    script_options: dict[str, str] = {}
    cluster_lock: str | None = None
    if legacy is not None:
        tunable_sources.append((legacy.path, _set_tunables(legacy)))
        cluster_lock = legacy.values.get("CTDB_RECOVERY_LOCK") or None
        for key, base in (("CTDB_NODES", "nodes"), ("CTDB_PUBLIC_ADDRESSES", "public_addresses")):
            configured = legacy.values.get(key)
            if configured and Path(configured).name != base:
                warnings.append(f"{legacy.path}:{legacy.lines[key]}: {key}={configured}; this "
                                f"import reads {d / base} - copy that file there")
        script_options.update({k: v for k, v in legacy.values.items()
                               if not k.startswith(_SET_PREFIX) and k not in _LEGACY_NOT_OPTIONS})
    for f in options_files:
        tunable_sources.append((f.path, _set_tunables(f)))
        script_options.update({k: v for k, v in f.values.items()
                               if not k.startswith(_SET_PREFIX)})
    tunable_sources.append((str(d / "ctdb.tunables"), _tunables_file(d / "ctdb.tunables")))
    tunables: dict[str, int] = {}
    set_in: dict[str, str] = {}
    for src, values in tunable_sources:
        for name, value in values.items():
            if name in tunables and tunables[name] != value:
                warnings.append(f"{src}: {name}={value} overrides {tunables[name]} "
                                f"from {set_in[name]}")
            tunables[name], set_in[name] = value, src
    conf_lock = _read_ctdb_conf(d / "ctdb.conf", warnings)
    return Settings({n: tunables[n] for n in NAMES if n in tunables}, script_options,
                    conf_lock if conf_lock is not None else cluster_lock)
