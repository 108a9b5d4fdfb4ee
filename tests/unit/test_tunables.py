"""CTDB 4.17 tunables: the table, the container and the CLI text formats."""

from __future__ import annotations

import pytest

from harness import ctdb
from harness.ctdb import DEFAULTS, NAMES, TunableError, Tunables

# `ctdb listvars` of Debian's ctdbd 4.17.12 (3 daemons in CTDB_TEST_MODE on this
# kind of machine, default configuration), byte for byte.
LISTVARS_4_17 = """\
SeqnumInterval             = 1000
ControlTimeout             = 60
TraverseTimeout            = 20
KeepaliveInterval          = 5
KeepaliveLimit             = 5
RecoverTimeout             = 30
RecoverInterval            = 1
ElectionTimeout            = 3
TakeoverTimeout            = 9
MonitorInterval            = 15
TickleUpdateInterval       = 20
EventScriptTimeout         = 30
MonitorTimeoutCount        = 20
RecoveryGracePeriod        = 120
RecoveryBanPeriod          = 300
DatabaseHashSize           = 100001
DatabaseMaxDead            = 5
RerecoveryTimeout          = 10
EnableBans                 = 1
NoIPFailback               = 0
VerboseMemoryNames         = 0
RecdPingTimeout            = 60
RecdFailCount              = 10
LogLatencyMs               = 0
RecLockLatencyMs           = 1000
RecoveryDropAllIPs         = 120
VacuumInterval             = 10
VacuumMaxRunTime           = 120
RepackLimit                = 10000
VacuumFastPathCount        = 60
MaxQueueDropMsg            = 1000000
AllowUnhealthyDBRead       = 0
StatHistoryInterval        = 1
DeferredAttachTO           = 120
AllowClientDBAttach        = 1
FetchCollapse              = 1
HopcountMakeSticky         = 50
StickyDuration             = 600
StickyPindown              = 200
NoIPTakeover               = 0
DBRecordCountWarn          = 100000
DBRecordSizeWarn           = 10000000
DBSizeWarn                 = 100000000
PullDBPreallocation        = 10485760
LockProcessesPerDB         = 200
RecBufferSizeLimit         = 1000000
QueueBufferSize            = 1024
IPAllocAlgorithm           = 2
AllowMixedVersions         = 0
"""

# Obsolete entries of the 4.17 table (flag read from the table in ctdbd 4.17.12).
OBSOLETE_4_17 = {
    "MaxRedirectCount": 3, "EventScriptUnhealthyOnTimeout": 0, "DeterministicIPs": 0,
    "LCP2PublicIPs": 1, "ReclockPingPeriod": 60, "DisableIPFailover": 0,
    "VerifyRecoveryLock": 1, "VacuumLimit": 5000, "RecoverPDBBySeqNum": 1,
    "DeferredRebalanceOnNodeAdd": 300, "NoIPHostOnAllDisabled": 1,
    "Samba3AvoidDeadlocks": 0, "TDBMutexEnabled": 1,
}


def test_listvars_is_byte_exact_4_17():
    assert Tunables().listvars() == LISTVARS_4_17


def test_failover_relevant_defaults():
    want = {
        "MonitorInterval": 15, "MonitorTimeoutCount": 20, "EventScriptTimeout": 30,
        "KeepaliveInterval": 5, "KeepaliveLimit": 5, "RecoverInterval": 1,
        "RerecoveryTimeout": 10, "TakeoverTimeout": 9, "ElectionTimeout": 3,
        "NoIPFailback": 0, "NoIPTakeover": 0, "IPAllocAlgorithm": 2,
        "NoIPHostOnAllDisabled": 1,
    }
    assert {k: DEFAULTS[k] for k in want} == want


def test_table_shape():
    assert len(ctdb.TUNABLES) == 62
    assert {x.name: x.default for x in ctdb.TUNABLES if x.obsolete} == OBSOLETE_4_17
    assert len(NAMES) == 49 and not set(NAMES) & set(OBSOLETE_4_17)
    assert list(DEFAULTS) == [x.name for x in ctdb.TUNABLES]
    with pytest.raises(TypeError):
        DEFAULTS["MonitorInterval"] = 1  # type: ignore[index]


def test_case_insensitive_get_and_set():
    tun = Tunables()
    tun.set("monitorinterval", 5)
    assert tun["MonitorInterval"] == 5 == tun.get("MONITORINTERVAL")
    tun["noipfailback"] = 1
    assert tun.as_dict()["NoIPFailback"] == 1
    assert tun.changed() == {"MonitorInterval": 5, "NoIPFailback": 1}
    assert "keepaliveLIMIT" in tun and "Bogus" not in tun
    assert list(tun) == list(NAMES)


def test_obsolete_readable_but_not_settable():
    tun = Tunables()
    assert tun["NoIPHostOnAllDisabled"] == 1
    with pytest.raises(TunableError, match="obsolete"):
        tun.set("NoIPHostOnAllDisabled", 0)
    with pytest.raises(TunableError, match="No such tunable MaxRedirectCount"):
        tun.setvar("MaxRedirectCount", "3")
    with pytest.raises(TunableError):
        tun.getvar("TDBMutexEnabled")


def test_unknown_name_says_how_to_list_names():
    tun = Tunables()
    for call in (lambda: tun["NoSuch"], lambda: tun.set("NoSuch", 1),
                 lambda: tun.setvar("NoSuch", "1"), lambda: tun.getvar("NoSuch")):
        with pytest.raises(TunableError) as e:
            call()
        assert "No such tunable NoSuch" in str(e.value)
        assert "listvars" in str(e.value)


@pytest.mark.parametrize("text,value", [
    ("16", 16), ("0x10", 16), ("0X1f", 31), ("010", 8), ("0", 0), (" 7 ", 7),
    ("4294967295", 4294967295),
])
def test_setvar_accepts_strtoul_base0(text, value):
    tun = Tunables()
    tun.setvar("MonitorInterval", text)
    assert tun["MonitorInterval"] == value


@pytest.mark.parametrize("text", ["abc", "-1", "+1", "", "1.5", "08", "0x", "1_000",
                                  "4294967296", "15 # c", "\u0661"])
def test_setvar_refuses_non_uint32(text):
    tun = Tunables()
    with pytest.raises(TunableError):
        tun.setvar("MonitorInterval", text)
    assert tun["MonitorInterval"] == 15


@pytest.mark.parametrize("value", [-1, 2**32, True, 1.0, "5"])
def test_set_refuses_bad_values(value):
    with pytest.raises(TunableError):
        Tunables().set("MonitorInterval", value)  # type: ignore[arg-type]


def test_getvar_echoes_name_as_typed():
    # Observed with ctdb 4.17.12: `ctdb getvar monitorinterval`
    tun = Tunables()
    assert tun.getvar("monitorinterval") == "monitorinterval            = 15\n"
    assert tun.getvar("MonitorInterval") == "MonitorInterval            = 15\n"
    tun.setvar("MonitorInterval", "0x10")
    assert tun.getvar("MonitorInterval") == "MonitorInterval            = 16\n"


def test_listvars_round_trip_and_copy():
    tun = Tunables({"MonitorInterval": 3, "ElectionTimeout": 1})
    back = ctdb.parse_listvars(tun.listvars())
    assert back == tun.as_dict()
    other = tun.copy()
    other.set("MonitorInterval", 4)
    assert tun["MonitorInterval"] == 3 and other != tun
    assert Tunables({"MonitorInterval": 3, "ElectionTimeout": 1}) == tun
    assert "MonitorInterval" in repr(tun)


def test_parse_listvars_rejects_garbage():
    with pytest.raises(ValueError, match="line 2"):
        ctdb.parse_listvars("MonitorInterval            = 15\nMonitorInterval = x\n")
    with pytest.raises(TunableError):
        ctdb.parse_listvars("Bogus = 1\n")


def test_format_getvar_width():
    assert ctdb.format_getvar("A", 1) == "A" + " " * 25 + " = 1\n"
    long = "X" * 30
    assert ctdb.format_getvar(long, 2) == long + " = 2\n"
