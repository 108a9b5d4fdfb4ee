"""Mesh messages are checked field by field: each case is a message that once
reached a handler and raised there (issue 14), now refused naming its field."""

from __future__ import annotations

import os
import stat

import pytest

from harness.failover import schema
from harness.failover.schema import BadMessage, Context, validate

CTX = Context(pnns=frozenset({0, 1, 2}), ips=frozenset({"203.0.113.201", "203.0.113.202"}))
IPS = {"type": "ips", "id": 1, "known": ["203.0.113.201"], "available": [], "held": [],
       "running": True, "hears": [0, 2]}

REFUSED = [  # (message, field named)
    ({**IPS, "held": ["not-an-ip"]}, "held"),  # killed the takeover task
    ({**IPS, "known": ["203.0.113.201", "203.0.113.201"]}, "known"),
    ({**IPS, "available": "203.0.113.201"}, "available"),
    ({**IPS, "running": 1}, "running"),
    ({**IPS, "hears": [0, 7]}, "hears"),  # no node 7
    ({"type": "take_ip", "id": 2, "ip": "203.0.113.999"}, "ip"),  # a traceback in take_ip
    ({"type": "take_ip", "id": 2, "ip": "203.0.113.9"}, "ip"),  # known to no node here
    ({"type": "release_ip", "id": 2, "ip": "::1"}, "ip"),
    ({"type": "release_ip", "id": 0, "ip": "203.0.113.201"}, "id"),
    ({"type": "leader", "pnn": 7, "generation": 1}, "pnn"),  # no such node
    ({"type": "leader", "pnn": True, "generation": 1}, "pnn"),
    ({"type": "leader", "pnn": 0, "generation": 2**32}, "generation"),
    ({"type": "flags", "pnn": 1, "flags": 0x80, "partial": False}, "flags"),
    ({"type": "ipreallocated", "id": 3, "assignment": {"203.0.113.201": 5}}, "assignment"),
    ({"type": "ipreallocated", "id": 3, "assignment": {"x": 0}}, "assignment"),
    ({"type": "takeover_request", "pnn": 0, "reason": "x" * 5000}, "reason"),
    ({"type": "keepalive", "extra": 1}, "unknown-field"),
    ({"type": "done", "id": 4}, "ok"),
    ({"type": "nope"}, "type"),
    (["type", "hello"], "body"),
]


@pytest.mark.parametrize("msg,field", REFUSED)
def test_bad_field_is_refused_by_name(msg, field):
    with pytest.raises(BadMessage) as e:
        validate(msg, CTX)
    assert e.value.field == field


def test_every_message_the_daemons_send_is_valid():
    for msg in [IPS, {"type": "hello", "pnn": 2}, {"type": "keepalive"},
                {"type": "flags", "pnn": 0, "flags": 0x22, "partial": True},
                {"type": "leader", "pnn": 1, "generation": 2**31 - 1},
                {"type": "takeover_request", "pnn": 1, "reason": "link changed"},
                {"type": "get_ips", "id": 9}, {"type": "take_ip", "id": 9, "ip": "203.0.113.202"},
                {"type": "ipreallocated", "id": 9, "assignment": {"203.0.113.201": -1}},
                {"type": "done", "id": 9, "ok": False}]:
        assert validate(msg, CTX) is msg


def test_a_new_message_type_adds_its_own_row(monkeypatch):
    monkeypatch.setattr(schema, "SCHEMA", dict(schema.SCHEMA))
    schema.register("probe-example", {"ip": schema.public_ip, "port": schema.integer(1, 65535)})
    assert validate({"type": "probe-example", "ip": "203.0.113.201", "port": 445}, CTX)
    with pytest.raises(BadMessage) as e:
        validate({"type": "probe-example", "ip": "203.0.113.201", "port": 0}, CTX)
    assert e.value.field == "port"
    with pytest.raises(ValueError, match="already registered"):
        schema.register("probe-example", {})


def test_backend_cluster_key_is_private_from_creation(tmp_path, monkeypatch):
    from harness.backends.native import write_key
    seen = []
    real_open = os.open

    def spy(path, flags, mode=0o777, **kw):  # noqa: ANN001
        fd = real_open(path, flags, mode, **kw)
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return fd

    monkeypatch.setattr(os, "open", spy)
    key = write_key(tmp_path / "cluster.key")
    assert seen == [0o600]  # the file never existed with wider permissions
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.key"]
