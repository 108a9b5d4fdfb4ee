"""CTDB's ``ctdb.tunables`` file: tunable values a daemon starts with.

As ctdbd 4.17 reads it (tunable.c via lib/util/tini.c): ``Name=Value`` with
any whitespace around the parts, names in any case, values decimal/0x/0
octal, ``#`` or ``;`` comment lines, ``\\`` continuation lines; unknown and
obsolete names, empty or non-numeric values and sections are errors and
ctdbd refuses to start.  The table of names and defaults is
harness.ctdb.tunables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harness.ctdb.configfile import ConfigError
from harness.ctdb.tunables import Tunables, check_value, find, lookup, strtoul

_TINI_SPACE = " \t\r\v\f"


def _tini_lines(text: str) -> Iterable[tuple[int, str]]:
    """Logical lines as lib/util/tini.c builds them, with their first line number.

    Leading whitespace is dropped, runs of whitespace become one space,
    ``#``/``;`` lines and blank lines vanish, a trailing backslash joins the
    next line.
    """
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        if not buf:
            body = raw.lstrip(_TINI_SPACE)
            if not body:
                continue
            if body[0] in "#;":
                continue
            start = lineno
        else:
            body = raw
        for c in body:
            if c in _TINI_SPACE:
                if buf and buf[-1] == " ":
                    continue
                c = " "
            buf.append(c)
        if buf and buf[-1] == "\\":
            buf.pop()
            continue
        if len(buf) > 1 and buf[-2] == "\\" and buf[-1] == " ":
            del buf[-2:]
            continue
        yield start, "".join(buf)
        buf = []
    if buf:
        yield start, "".join(buf)


def parse_tunables(text: str, tunables: Tunables | None = None,
                   source: str = "ctdb.tunables") -> Tunables:
    """Apply a ctdb.tunables file onto `tunables` (default: CTDB's defaults).

    Accepts exactly what ctdbd 4.17 accepts.  ctdbd reports every bad line and
    then refuses to start; this raises on the first one, before changing
    anything.  Values above 2**32-1 are refused here (ctdbd would truncate
    them).
    """
    tun = tunables if tunables is not None else Tunables()
    pending: dict[str, int] = {}
    for lineno, line in _tini_lines(text):
        if line.startswith("["):
            if "]" not in line:
                raise ConfigError(source, lineno, f"syntax error in {line!r}",
                                  "write Name=Value lines only")
            raise ConfigError(source, lineno,
                              f"section {line[:line.index(']') + 1]} is not supported",
                              "write Name=Value lines only, no [sections]")
        name, eq, value = line.partition("=")
        name = name.strip(" ")
        value = value.strip(" ")
        if eq and not name:
            raise ConfigError(source, lineno, f"syntax error: nothing before '=' in {line!r}",
                              "write Name=Value, e.g. MonitorInterval=15")
        if not eq or not value:
            raise ConfigError(source, lineno, f"line {name!r} has no value",
                              "write Name=Value, e.g. MonitorInterval=15")
        t = find(name)
        if t is None:
            raise ConfigError(source, lineno, f"unknown tunable {name!r}",
                              "`ctdb listvars` (harness.ctdb.tunables.NAMES) lists the "
                              "valid names")
        if t.obsolete:
            raise ConfigError(source, lineno,
                              f"obsolete tunable {t.name!r} (ctdbd 4.17 refuses to start)",
                              "remove the line")
        try:
            number = strtoul(value)
        except ValueError:
            raise ConfigError(source, lineno, f"invalid value {value!r} for tunable {t.name}",
                              "write a non-negative integer (decimal, 0x hex or 0 octal) "
                              "and nothing after it") from None
        if number > t.maximum:
            raise ConfigError(source, lineno, f"value {value} for {t.name} exceeds {t.maximum}",
                              "use a smaller value")
        pending[t.name] = number
    for name, number in pending.items():
        tun.set(name, number)
    return tun


def write_tunables(values: Tunables | Mapping[str, int]) -> str:
    """ctdb.tunables text, canonical names in CTDB's order.

    From a Tunables only the values that differ from CTDB's defaults are
    written; from a mapping every given name (validated: unknown, obsolete
    or out-of-range values raise TunableError, since ctdbd would refuse to
    start on the file).
    """
    if isinstance(values, Tunables):
        chosen = values.changed()
    else:
        tun = Tunables()
        for name, value in values.items():
            tun.set(name, value)
        wanted = {lookup(n).name for n in values}
        chosen = {n: v for n, v in tun.as_dict().items() if n in wanted}
    return "".join(f"{n}={check_value(v, n)}\n" for n, v in chosen.items())
