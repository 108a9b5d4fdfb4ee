"""CTDB 4.17 tunables: names, defaults, and the `ctdb getvar/setvar/listvars` behaviour.

The table is CTDB's own (ctdb/common/tunable.c), in CTDB's order, checked
against the tunable table compiled into Debian's ctdbd 4.17.12 and against
`ctdb listvars` of a running 4.17 daemon.  Obsolete tunables stay in the
table because ctdbd still knows them: `ctdb listvars` omits them, `ctdb
getvar/setvar` answer "No such tunable", and a ctdb.tunables file that names
one makes ctdbd refuse to start.  Both implementations read their values from
here, so a default can only ever differ between them on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

UINT32_MAX = 0xFFFFFFFF
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]*")
_DECIMAL = re.compile(r"[1-9][0-9]*")


@dataclass(frozen=True)
class Tunable:
    """One entry of CTDB's tunable table."""

    name: str
    default: int
    obsolete: bool = False
    maximum: int = UINT32_MAX
    """CTDB reads every tunable as a uint32_t; a few have a narrower range in
    the code that uses them, recorded here so both daemons refuse the same."""


TUNABLES: tuple[Tunable, ...] = (
    Tunable("MaxRedirectCount", 3, obsolete=True),
    Tunable("SeqnumInterval", 1000),
    Tunable("ControlTimeout", 60),
    Tunable("TraverseTimeout", 20),
    Tunable("KeepaliveInterval", 5),
    Tunable("KeepaliveLimit", 5),
    Tunable("RecoverTimeout", 30),
    Tunable("RecoverInterval", 1),
    Tunable("ElectionTimeout", 3),
    Tunable("TakeoverTimeout", 9),
    Tunable("MonitorInterval", 15),
    Tunable("TickleUpdateInterval", 20),
    Tunable("EventScriptTimeout", 30),
    Tunable("MonitorTimeoutCount", 20),
    Tunable("EventScriptUnhealthyOnTimeout", 0, obsolete=True),
    Tunable("RecoveryGracePeriod", 120),
    Tunable("RecoveryBanPeriod", 300),
    Tunable("DatabaseHashSize", 100001),
    Tunable("DatabaseMaxDead", 5),
    Tunable("RerecoveryTimeout", 10),
    Tunable("EnableBans", 1),
    Tunable("DeterministicIPs", 0, obsolete=True),
    Tunable("LCP2PublicIPs", 1, obsolete=True),
    Tunable("ReclockPingPeriod", 60, obsolete=True),
    Tunable("NoIPFailback", 0),
    Tunable("DisableIPFailover", 0, obsolete=True),
    Tunable("VerboseMemoryNames", 0),
    Tunable("RecdPingTimeout", 60),
    Tunable("RecdFailCount", 10),
    Tunable("LogLatencyMs", 0),
    Tunable("RecLockLatencyMs", 1000),
    Tunable("RecoveryDropAllIPs", 120),
    Tunable("VerifyRecoveryLock", 1, obsolete=True),
    Tunable("VacuumInterval", 10),
    Tunable("VacuumMaxRunTime", 120),
    Tunable("RepackLimit", 10000),
    Tunable("VacuumLimit", 5000, obsolete=True),
    Tunable("VacuumFastPathCount", 60),
    Tunable("MaxQueueDropMsg", 1000000),
    Tunable("AllowUnhealthyDBRead", 0),
    Tunable("StatHistoryInterval", 1),
    Tunable("DeferredAttachTO", 120),
    Tunable("AllowClientDBAttach", 1),
    Tunable("RecoverPDBBySeqNum", 1, obsolete=True),
    Tunable("DeferredRebalanceOnNodeAdd", 300, obsolete=True),
    Tunable("FetchCollapse", 1),
    Tunable("HopcountMakeSticky", 50),
    Tunable("StickyDuration", 600),
    Tunable("StickyPindown", 200),
    Tunable("NoIPTakeover", 0),
    Tunable("DBRecordCountWarn", 100000),
    Tunable("DBRecordSizeWarn", 10000000),
    Tunable("DBSizeWarn", 100000000),
    Tunable("PullDBPreallocation", 10485760),
    Tunable("NoIPHostOnAllDisabled", 1, obsolete=True),
    Tunable("Samba3AvoidDeadlocks", 0, obsolete=True),
    Tunable("TDBMutexEnabled", 1, obsolete=True),
    Tunable("LockProcessesPerDB", 200),
    Tunable("RecBufferSizeLimit", 1000000),
    Tunable("QueueBufferSize", 1024),
    # Only 0, 1 and 2 name an algorithm; ctdbd accepts any uint32 and its
    # takeover helper (ctdb_takeover.c, determine_algorithm) quietly runs LCP2
    # for the rest. A test that sets 3 is mistaken, so it is refused where it
    # is set (file, setvar), as values above 2**32-1 are; the daemon's read
    # side maps as ctdbd does (ipalloc.Algorithm.from_tunable).
    Tunable("IPAllocAlgorithm", 2, maximum=2),
    Tunable("AllowMixedVersions", 0),
)

_BY_LOWER: dict[str, Tunable] = {t.name.lower(): t for t in TUNABLES}

DEFAULTS: Mapping[str, int] = MappingProxyType({t.name: t.default for t in TUNABLES})
"""Every tunable ctdbd 4.17 knows (obsolete ones included) -> its default."""

NAMES: tuple[str, ...] = tuple(t.name for t in TUNABLES if not t.obsolete)
"""The names `ctdb listvars` prints, in its order."""

GETVAR_WIDTH = 26
"""ctdb.c prints tunables with "%-26s = %u"."""


class TunableError(ValueError):
    """A tunable name or value CTDB would refuse; the message says how to fix it."""


def find(name: str) -> Tunable | None:
    """The table entry for `name` (any case), or None if ctdbd does not know it."""
    return _BY_LOWER.get(name.lower())


def lookup(name: str) -> Tunable:
    """The table entry for `name` (any case), obsolete or not."""
    try:
        return _BY_LOWER[name.lower()]
    except KeyError:
        raise TunableError(
            f"No such tunable {name}; `ctdb listvars` (or harness.ctdb.tunables.NAMES) "
            "lists the valid names") from None


def current(name: str) -> Tunable:
    """The entry for a tunable the CLI accepts: not obsolete."""
    t = lookup(name)
    if t.obsolete:
        raise TunableError(
            f"No such tunable {name}; {t.name} is obsolete in CTDB 4.17 (ctdbd ignores it), "
            "`ctdb listvars` lists the valid names")
    return t


def strtoul(text: str) -> int:
    """An unsigned number as CTDB reads one (strtoul, base 0): decimal, 0x hex or 0 octal.

    Unlike strtoul, nothing may follow the digits (raises ValueError), and
    there is no range check: the callers each say how a value above 2**32-1
    is refused.
    """
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _OCTAL.fullmatch(text):
        return int(text, 8)
    if _DECIMAL.fullmatch(text):
        return int(text, 10)
    raise ValueError(f"{text!r} is not a decimal, 0x hex or 0 octal number")


def parse_value(text: str, name: str = "value") -> int:
    """A tunable value as CTDB reads one: unsigned, decimal, 0x hex or 0 octal.

    ctdbd would silently truncate a value above 2**32-1; we refuse it instead,
    because a test asking for such a value is certainly mistaken.
    """
    try:
        value = strtoul(text.strip())
    except ValueError:
        raise TunableError(f"Invalid value {text!r} for tunable {name}; "
                           "write a non-negative integer (decimal, 0x hex or 0 octal)") from None
    return check_value(value, name)


def check_value(value: int, name: str = "value") -> int:
    """Refuse anything that is not an unsigned 32-bit int (tunables are uint32_t)
    or is above the tunable's own maximum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TunableError(f"Invalid value {value!r} for tunable {name}; it must be an int")
    t = find(name)
    top = UINT32_MAX if t is None else t.maximum
    if not 0 <= value <= top:
        raise TunableError(f"Invalid value {value} for tunable {name}; "
                           f"it must be between 0 and {top}")
    return value


def format_getvar(name: str, value: int) -> str:
    """One line of `ctdb getvar`/`listvars`; CTDB echoes the name as typed."""
    return f"{name:<{GETVAR_WIDTH}} = {value}\n"


class Tunables:
    """The tunables of one daemon, looked up case-insensitively like ctdbd does.

    Mutable because `ctdb setvar` changes them at run time.  Item access
    (`tun["MonitorInterval"]`) works for every name ctdbd knows, obsolete ones
    too, since the daemon side still holds their values; the CLI methods
    (`getvar`, `setvar`, `listvars`) reject obsolete names as 4.17's tool does.
    """

    def __init__(self, values: Mapping[str, int] | None = None) -> None:
        self._values: dict[str, int] = dict(DEFAULTS)
        for name, value in (values or {}).items():
            self.set(name, value)

    # -- programmatic access ------------------------------------------------
    def __getitem__(self, name: str) -> int:
        return self._values[lookup(name).name]

    def get(self, name: str) -> int:
        return self[name]

    def set(self, name: str, value: int) -> None:
        """Set a current (non-obsolete) tunable; value must be an unsigned 32-bit int."""
        t = current(name)
        self._values[t.name] = check_value(value, t.name)

    def __setitem__(self, name: str, value: int) -> None:
        self.set(name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in _BY_LOWER

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tunables):
            return NotImplemented
        return self._values == other._values

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Tunables({self.changed()!r})"

    def as_dict(self) -> dict[str, int]:
        """Current tunables by canonical name, in listvars order."""
        return {n: self._values[n] for n in NAMES}

    def changed(self) -> dict[str, int]:
        """Only the tunables that differ from CTDB's defaults."""
        return {n: v for n, v in self.as_dict().items() if v != DEFAULTS[n]}

    def copy(self) -> Tunables:
        new = Tunables()
        new._values = dict(self._values)
        return new

    # -- the CLI ------------------------------------------------------------
    def setvar(self, name: str, value: str | int) -> None:
        """`ctdb setvar NAME VALUE`: VALUE as typed (decimal, 0x hex, 0 octal) or an int."""
        t = current(name)
        v = parse_value(value, t.name) if isinstance(value, str) else check_value(value, t.name)
        self._values[t.name] = v

    def getvar(self, name: str) -> str:
        """`ctdb getvar NAME` output (name echoed as typed, as ctdb.c does)."""
        t = current(name)
        return format_getvar(name, self._values[t.name])

    def listvars(self) -> str:
        """`ctdb listvars` output: every current tunable, CTDB's order, "%-26s = %u"."""
        return "".join(format_getvar(n, self._values[n]) for n in NAMES)


def parse_listvars(text: str) -> dict[str, int]:
    """Read `ctdb listvars`/`getvar` output back into name -> value."""
    out: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(" = ")
        name = name.rstrip()
        if not sep or not name or not value.isdigit():
            raise ValueError(f"listvars line {lineno}: {line!r} is not 'Name = value'")
        out[lookup(name).name] = int(value)
    return out
