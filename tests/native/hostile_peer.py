"""A hostile host on the private network, run by the tests in its own namespace.

    python hostile_peer.py capture IFACE SECONDS OUT.json   (in the switch namespace)
    python hostile_peer.py attack CONFIG.json OUT.json      (on the rogue host)
    python hostile_peer.py fuzz CONFIG.json OUT.json        (on the rogue host or a node)

capture: the TCP payloads to the mesh port seen on one switch port (AF_PACKET),
as hex, in order. attack: for every target, again and again until `seconds`
have passed, the three ways in: frames signed with a wrong key, frames
signed with the right key from an address that is no node's, and captured
frames replayed; each carries forged `leader`, `take_ip`, `release_ip`,
`takeover_request` and `ipreallocated` messages. fuzz: `count` frames,
random or mutated, to one target. Both write what they did (per target:
connections made, and how many the daemon closed on us), so a test can
check the daemons' own counters against it.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import time
from pathlib import Path

from harness.failover import schema, wire

PORT = 4380


def capture(iface: str, seconds: float, out: Path) -> None:
    # ETH_P_ALL: a tap that sees a bridge port's frames before the bridge takes them
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(0.2)
    payloads: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            pkt, addr = s.recvfrom(65535)
        except TimeoutError:
            continue
        if addr[2] == socket.PACKET_OUTGOING or pkt[12:14] != b"\x08\x00":
            continue  # only what the node on this port sent, and only IPv4
        ip = pkt[14:]
        if len(ip) < 20 or ip[9] != socket.IPPROTO_TCP:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20 or struct.unpack("!H", tcp[2:4])[0] != PORT:
            continue
        data = tcp[(tcp[12] >> 4) * 4:]
        if data:
            payloads.append(data.hex())
    out.write_text(json.dumps(payloads))


def _session(target: str, frames: list[bytes] | None, key: bytes, claim: int,
             forged: list[dict], timeout: float = 2.0) -> bool | None:
    """One connection: take the challenge, send frames (or sign `forged` with key
    after a hello claiming `claim`); True if the daemon closed it on us, None if
    we never got a connection."""
    try:
        s = socket.create_connection((target, PORT), timeout)
    except OSError:
        return None
    with s:
        s.settimeout(timeout)
        try:
            challenge = b""
            while len(challenge) < wire.CHALLENGE_LEN:
                chunk = s.recv(wire.CHALLENGE_LEN - len(challenge))
                if not chunk:
                    return True
                challenge += chunk
            if frames is None:
                tx = wire.Sender(key, challenge)
                frames = [tx.encode(m) for m in [{"type": "hello", "pnn": claim}, *forged]]
            for f in frames:
                s.sendall(f)
            return s.recv(1) == b""  # the daemon writes nothing more: EOF = it closed us
        except TimeoutError:
            return False
        except OSError:  # reset: closed on us with data unread
            return True


def forged_messages(ips: list[str], claim: int) -> list[dict]:
    return [{"type": "leader", "pnn": claim, "generation": 7},
            {"type": "takeover_request", "pnn": claim, "reason": "forged"},
            *({"type": "release_ip", "id": 1000 + i, "ip": ip} for i, ip in enumerate(ips)),
            *({"type": "take_ip", "id": 2000 + i, "ip": ip} for i, ip in enumerate(ips)),
            {"type": "ipreallocated", "id": 3000, "assignment": {ip: claim for ip in ips}},
            {"type": "flags", "pnn": claim, "flags": 2, "partial": False}]


def attack(cfg: dict, out: Path) -> None:
    key = bytes.fromhex(cfg["key"])
    replay = [bytes.fromhex(h) for h in cfg["frames"]]
    results = {t: {"wrong_key": [0, 0], "wrong_address": [0, 0], "replay": [0, 0]}
               for t in cfg["targets"]}
    end = time.monotonic() + cfg["seconds"]
    while True:
        for target, claim in zip(cfg["targets"], cfg["claims"], strict=True):
            forged = forged_messages(cfg["ips"], claim)
            for kind, frames, k in (("wrong_key", None, b"not the cluster key at all!"),
                                    ("wrong_address", None, key),
                                    ("replay", replay, key)):
                closed = _session(target, frames, k, claim, forged)
                if closed is not None:
                    results[target][kind][0] += 1
                    results[target][kind][1] += int(closed)
        if time.monotonic() >= end:
            break
    out.write_text(json.dumps(results))


def fuzz(cfg: dict, out: Path) -> None:
    """`count` frames: random bytes (own connection each, as the first bad frame
    ends a connection) and, with a key, mutated messages signed properly on one
    long connection (each must be dropped alone, the connection kept)."""
    rnd = random.Random(cfg["seed"])
    key = bytes.fromhex(cfg["key"]) if cfg.get("key") else b""
    sent = {"random": 0, "random_closed": 0, "signed": 0, "signed_closed": 0}
    target = cfg["target"]
    if not key:
        for _ in range(cfg["count"]):
            n = rnd.choice([0, 1, 3, 4, 8, 40, 41, 300])
            frame = struct.pack("!I", rnd.choice([n, n, 2**32 - 1])) + rnd.randbytes(n)
            closed = _session(target, [frame], b"", 0, [], timeout=1.0)
            if closed is not None:
                sent["random"] += 1
                sent["random_closed"] += int(bool(closed))
    else:
        s = socket.create_connection((target, PORT), 2)
        s.settimeout(2)
        challenge = b""
        while len(challenge) < wire.CHALLENGE_LEN:
            challenge += s.recv(wire.CHALLENGE_LEN - len(challenge))
        tx = wire.Sender(key, challenge)
        s.sendall(tx.encode({"type": "hello", "pnn": cfg["claim"]}))
        ctx = schema.Context(frozenset(cfg["pnns"]), frozenset(cfg["ips"]))
        for body in mutated_bodies(rnd, cfg["ips"], cfg["count"], ctx):
            s.sendall(tx.seal(body))
            sent["signed"] += 1
        s.setblocking(False)
        try:
            sent["signed_closed"] = int(s.recv(1) == b"")
        except BlockingIOError:
            sent["signed_closed"] = 0
        s.close()
    out.write_text(json.dumps(sent))


def mutated_bodies(rnd: random.Random, ips: list[str], count: int, ctx: schema.Context):
    """Bodies that are never a valid message: broken JSON, wrong types, bad
    addresses, unknown pnns and fields - each a mutation of a real message.
    A mutation that happens to stay valid is not sent (it would be a real
    message from a node, not an attack on the validator)."""
    n = 0
    while n < count:
        body = _mutate(rnd, ips)
        try:
            wire.decode(body, ctx)
        except schema.BadMessage:
            n += 1
            yield body


def _mutate(rnd: random.Random, ips: list[str]) -> bytes:
    bases = [{"type": "ips", "id": 1, "known": ips, "available": ips, "held": ips[:1],
              "running": True},
             {"type": "take_ip", "id": 2, "ip": ips[0]},
             {"type": "release_ip", "id": 3, "ip": ips[0]},
             {"type": "leader", "pnn": 0, "generation": 5},
             {"type": "flags", "pnn": 0, "flags": 0, "partial": False},
             {"type": "ipreallocated", "id": 4, "assignment": {ips[0]: 0}}]
    bad_values = [None, "x", "203.0.113.999", "::1", -5, 99, 2**70, 1.5, [], {}, ["nope"],
                  [ips[0], ips[0]], True, "é", {"203.0.113.1": "a"}]
    msg = dict(rnd.choice(bases))
    op = rnd.randrange(4)
    if op == 0:
        if rnd.random() < 0.5:
            return rnd.randbytes(rnd.randrange(1, 64))
        text = json.dumps(msg)
        i = rnd.randrange(len(text))
        return (text[:i] + rnd.choice("{}[]\",:x\\") + text[i + 1:]).encode()
    if op == 1:
        msg["extra"] = 1
    elif op == 2:
        msg.pop(rnd.choice([k for k in msg if k != "type"]), None)
    else:
        msg[rnd.choice([k for k in msg if k != "type"])] = rnd.choice(bad_values)
    return json.dumps(msg).encode()


def main(argv: list[str]) -> None:
    if argv[0] == "capture":
        capture(argv[1], float(argv[2]), Path(argv[3]))
    elif argv[0] == "attack":
        attack(json.loads(Path(argv[1]).read_text()), Path(argv[2]))
    elif argv[0] == "fuzz":
        fuzz(json.loads(Path(argv[1]).read_text()), Path(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
