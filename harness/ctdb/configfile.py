"""What every reader of CTDB's configuration files shares: the error and the syntax of
addresses and lines.

The harness writes the same files for Samba's ctdbd and for the native
daemon, and the native daemon reads them back with these parsers, so both
implementations see one configuration.  The parsers follow CTDB 4.17 where a
file is valid for it (comment rules, whitespace, number syntax) and are
stricter where CTDB would silently accept a probable mistake; each such place
says so.  Every problem is a ConfigError whose text is one line:
``FILE:LINE: what is wrong; how to fix``.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class ConfigError(ValueError):
    """A configuration file problem, rendered as one line ``FILE:LINE: what; fix``."""

    def __init__(self, source: str, line: int | None, problem: str, fix: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        self.fix = fix
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}; {fix}")


def decode_utf8(data: bytes, source: str) -> str:
    """A file's bytes as text; a byte that is not UTF-8 is a ConfigError at its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise ConfigError(source, data.count(b"\n", 0, e.start) + 1,
                          f"byte {data[e.start]:#04x} at column {e.start - line_start + 1} "
                          "is not UTF-8", "save the file as UTF-8 (or plain ASCII)") from None


def parse_address(text: str) -> IPAddress:
    """An address as CTDB parses one (inet_pton); IPv4-mapped IPv6 becomes IPv4.

    Raises ValueError.  Scope ids (``fe80::1%eth0``) are refused like
    inet_pton refuses them.
    """
    if "%" in text or not text.isascii():
        raise ValueError(text)
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def physical_lines(text: str) -> list[str]:
    """Physical lines as CTDB's file_lines_load gives them: split on \\n only.

    Not str.splitlines(): a stray CR or form feed stays part of its line, as
    it does for ctdbd, so the readers can refuse it where CTDB would choke.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
