"""CTDB's ``script.options``: settings for the event scripts, such as
CTDB_PARTIALLY_ONLINE_INTERFACES.

The event scripts' shell sources the file, so it holds plain shell
assignments with optional quotes and ``#`` comments.  The reader accepts what
the shell would assign without running anything and refuses the rest; the
writer quotes a value exactly when the shell needs it to.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from harness.ctdb.configfile import ConfigError, physical_lines

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_SPECIAL = set("$`;&|<>()")


def _shell_word(s: str, pos: int, source: str, lineno: int) -> tuple[str, int]:
    """Read one shell word without expansions from s[pos:]; return it and the end."""
    out: list[str] = []
    n = len(s)
    while pos < n:
        c = s[pos]
        if c in " \t":
            break
        if c == "'":
            end = s.find("'", pos + 1)
            if end < 0:
                raise ConfigError(source, lineno, "unterminated ' quote",
                                  "close the quote on the same line")
            out.append(s[pos + 1:end])
            pos = end + 1
        elif c == '"':
            pos += 1
            while True:
                if pos >= n:
                    raise ConfigError(source, lineno, 'unterminated " quote',
                                      "close the quote on the same line")
                c = s[pos]
                if c == '"':
                    pos += 1
                    break
                if c == "\\" and pos + 1 < n and s[pos + 1] in '"\\$`':
                    out.append(s[pos + 1])
                    pos += 2
                    continue
                if c in "$`":
                    raise ConfigError(source, lineno, f"shell expansion {c!r} in a value",
                                      "write the literal value, or use single quotes")
                out.append(c)
                pos += 1
        elif c == "\\":
            if pos + 1 >= n:
                raise ConfigError(source, lineno, "line continuation is not supported",
                                  "put each assignment on one line")
            out.append(s[pos + 1])
            pos += 2
        elif c in _SHELL_SPECIAL:
            raise ConfigError(source, lineno, f"shell syntax {c!r} in a value",
                              "write the literal value, quoted if it has special characters")
        else:
            out.append(c)
            pos += 1
    return "".join(out), pos


def parse_script_options(text: str, source: str = "script.options") -> dict[str, str]:
    """Parse shell-style ``NAME=value`` lines, as the event scripts' shell would.

    Values may be quoted ('...', "...") or bare; ``#`` starts a comment at the
    start of a line or after whitespace; ``export`` is allowed; the last
    assignment of a name wins.  Anything needing a shell to evaluate
    (``$VAR``, backquotes, commands, several words) is refused rather than
    guessed.
    """
    out: dict[str, str] = {}
    for lineno, raw in enumerate(physical_lines(text), 1):
        line = raw.lstrip(" \t")
        if line.endswith("\r"):
            raise ConfigError(source, lineno, "the line ends in CR (a DOS line ending), which "
                              "the shell would keep in the value",
                              "save the file with Unix (LF) line endings")
        if not line.strip(" \t") or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip(" \t")
        m = _NAME.match(line)
        if not m:
            raise ConfigError(source, lineno, f"{line!r} is not a NAME=value assignment",
                              "write e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
        name = m.group()
        rest = line[m.end():]
        if not rest.startswith("="):
            if rest.lstrip(" \t").startswith("="):
                raise ConfigError(source, lineno, f"space before '=' after {name}",
                                  f"write {name}=value with no spaces around '='")
            raise ConfigError(source, lineno, f"{line!r} is not a NAME=value assignment",
                              "write e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
        value, pos = _shell_word(line, m.end() + 1, source, lineno)
        tail = line[pos:].lstrip(" \t")
        if tail and not tail.startswith("#"):
            raise ConfigError(source, lineno, f"unexpected {tail!r} after {name}={value}",
                              "quote values that contain spaces")
        out[name] = value
    return out


def write_script_options(options: Mapping[str, str]) -> str:
    """script.options text: one NAME=value line each, quoted only when needed.

    The quoting is the shell's own (shlex.quote), so parse_script_options
    and the scripts' shell both read back exactly the given values.  A name
    the shell cannot assign or a value with a newline (the reader takes one
    line per assignment) is a ConfigError.
    """
    source = "<write_script_options>"
    lines = []
    for name, value in options.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(source, None, f"{name!r} is not a shell variable name",
                              "use letters, digits and '_', not starting with a digit")
        if "\n" in value:
            raise ConfigError(source, None, f"value of {name} has a newline",
                              "give a one-line value")
        lines.append(f"{name}={shlex.quote(value) if value else ''}\n")
    return "".join(lines)


def truthy(value: str | None, default: bool) -> bool:
    """CTDB's scripts test options with ``= yes``: only "yes" is true, unset is the default."""
    if value is None or value == "":
        return default
    return value == "yes"
