"""A hostile host on the private network cannot move IPs or depose the leader,
and a peer sending garbage cannot knock a daemon over - while the cluster
keeps failing over within its bounds.

The attacker (tests/native/hostile_peer.py) runs in a namespace of the run on
the private switch (`cluster.add_client("private")`, an address that is no
node's). What each attack did is compared with what each daemon counted as
refused (`failoverctl counters`): equal counts show the daemons looked at
every attempt, so the "nothing changed" checks cannot pass by missing them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.assertions import Bounds, assert_invariants, expect, expect_moved, has_flag
from harness.builder import switch_port
from harness.wait import wait_until

pytestmark = [pytest.mark.backends("native"), pytest.mark.cluster(plain=True),
              pytest.mark.tunables(MonitorInterval=3)]

PEER = str(Path(__file__).with_name("hostile_peer.py"))
FAULTED = 2  # the node whose public link goes down during the attack


def counters(backend, pnn: int) -> dict[str, int]:
    out = backend.ctl(pnn, "counters")
    return {k: int(v) for k, _, v in (line.rpartition(" ") for line in out.splitlines())}


def snapshot(backend) -> tuple:
    """What an attack must not change: leader, every node's flags, the IP layout."""
    return (tuple(backend.ctl(p, "leader") for p in range(3)),
            tuple(tuple((n.pnn, n.flags) for n in backend.status(p).nodes) for p in range(3)),
            backend.ips(0))


def fails_over_in_bounds(backend, faults, timeline, pnn: int) -> None:
    """pnn loses its public link: UNHEALTHY at its next monitor run, its IPs
    elsewhere one takeover later (bounds from the tunables, README's way)."""
    b = Bounds.of(backend)
    moving = [str(ip) for ip, owner in backend.ips(0).items() if owner == pnn]
    due = backend.monitor_due(pnn)
    fault = faults.public_link(pnn).apply()
    bad = expect(timeline, "flags", node=pnn, after=fault.apply_event,
                 within=(0, b.detection(due)), where=has_flag("UNHEALTHY"))
    expect_moved(timeline, moving, off=pnn, after=fault.apply_event, ref=bad,
                 within=b.detection(due) + b.takeover, takeover=b.takeover)


def invariants_hold(backend, timeline, recorder, ips: list[str]) -> None:
    """No split brain, no IP left on an UNHEALTHY node past the takeover
    bound, every ARP answer from a holder - over the whole attack."""
    recorder.stop()
    assert_invariants(timeline, ips, takeover_bound=Bounds.of(backend).takeover)


def run_peer(host, tmp_path: Path, mode: str, cfg: dict, seconds: float = 60) -> dict:
    cfg_path, out = tmp_path / f"{mode}.cfg.json", tmp_path / f"{mode}.out.json"
    cfg_path.write_text(json.dumps(cfg))
    host.run([sys.executable, PEER, mode, str(cfg_path), str(out)], timeout=seconds)
    return json.loads(out.read_text())


def start_peer(host, tmp_path: Path, mode: str, cfg: dict, name: str):
    cfg_path, out = tmp_path / f"{name}.cfg.json", tmp_path / f"{name}.out.json"
    cfg_path.write_text(json.dumps(cfg))
    proc = host.spawn([sys.executable, PEER, mode, str(cfg_path), str(out)], name,
                      log=tmp_path / f"{name}.log")
    return proc, out


def test_rogue_host_cannot_move_ips_change_flags_or_depose_the_leader(
        cluster, backend, faults, timeline, recorder, tmp_path):
    addrs = [str(n.address().ip) for n in cluster.nodes]
    ips = [str(ip) for ip in backend.ips(0)]
    rogue = cluster.add_client("private")
    leader = int(backend.ctl(0, "leader"))
    # frames the leader really sent (its broadcasts), captured on its switch port
    cap = tmp_path / "capture.json"
    cluster.switch.run([sys.executable, PEER, "capture", switch_port(leader, "eth0"), "2.5",
                        str(cap)])
    captured = json.loads(cap.read_text())
    assert captured, "captured no mesh frames from the leader in 2.5 s"
    cfg = {"targets": addrs, "claims": [(p + 1) % 3 for p in range(3)], "ips": ips,
           "key": backend.key_file.read_text().strip().encode().hex(), "frames": captured,
           "seconds": 0}

    # phase 1: the attack alone changes nothing, and every attempt is refused
    before = snapshot(backend)
    done = run_peer(rogue, tmp_path, "attack", cfg)
    for p, target in enumerate(addrs):
        for kind, (made, closed) in done[target].items():
            assert made >= 1 and closed == made, f"node {p}: {kind}: {closed}/{made} refused"
        got = counters(backend, p)
        rogue_ip = str(rogue.address.ip)
        assert got.get(f"rejected {rogue_ip} frame", 0) == (
            done[target]["wrong_key"][1] + done[target]["replay"][1])
        assert got.get(f"rejected {rogue_ip} pnn", 0) == done[target]["wrong_address"][1]
        assert backend.process(p).running()
    assert snapshot(backend) == before

    # phase 2: attacking without pause while a node loses its public link;
    # the cluster fails over within the bounds of the tunables in force
    proc, out = start_peer(rogue, tmp_path, "attack", {**cfg, "seconds": 6}, "attacker")
    fails_over_in_bounds(backend, faults, timeline, FAULTED)
    wait_until(lambda: not proc.running(), 30, "attacker finished")
    during = json.loads(out.read_text())
    assert all(closed == made for t in during.values() for made, closed in t.values())
    assert int(backend.ctl(0, "leader")) == leader
    assert all(backend.process(p).running() for p in range(3))
    invariants_hold(backend, timeline, recorder, ips)


FUZZ_SLACK = 60.0  # seconds beyond the failover for the fuzzers to finish (10,000 frames)


@pytest.mark.parametrize("frames", [pytest.param(1000, id="1000"),
                                    pytest.param(10_000, id="10000", marks=pytest.mark.long)])
def test_live_fuzz_daemons_stay_up_and_fail_over_in_bounds(
        cluster, backend, faults, timeline, recorder, tmp_path, frames):
    """Half the frames random (no key, from the rogue host), half mutated
    messages properly signed by a peer with the key (node 2's address, so
    they reach the validator); node 0 takes them all while node 1 fails."""
    target, fuzzer, faulted = 0, 2, 1
    addrs = [str(n.address().ip) for n in cluster.nodes]
    ips = [str(ip) for ip in backend.ips(0)]
    rogue = cluster.add_client("private")
    common = {"target": addrs[target], "count": frames // 2, "ips": ips, "pnns": [0, 1, 2]}
    rnd, rnd_out = start_peer(rogue, tmp_path, "fuzz", {**common, "seed": 1}, "fuzz-random")
    key = backend.key_file.read_text().strip().encode().hex()
    sig, sig_out = start_peer(cluster.nodes[fuzzer], tmp_path, "fuzz",
                              {**common, "seed": 2, "key": key, "claim": fuzzer}, "fuzz-signed")

    fails_over_in_bounds(backend, faults, timeline, faulted)

    wait_until(lambda: not rnd.running() and not sig.running(), FUZZ_SLACK, "fuzzers done")
    got_rnd, got_sig = json.loads(rnd_out.read_text()), json.loads(sig_out.read_text())
    assert got_rnd["random"] == frames // 2 and got_rnd["random_closed"] == frames // 2
    assert got_sig["signed"] == frames // 2 and got_sig["signed_closed"] == 0
    seen = counters(backend, target)
    peer = f"node {fuzzer} ({addrs[fuzzer]})"
    assert seen.get(f"rejected {rogue.address.ip} frame", 0) == frames // 2
    assert sum(v for k, v in seen.items() if k.startswith(f"rejected {peer} ")) == frames // 2
    assert not [k for k in seen if k.startswith("restarts ")], seen
    assert all(backend.process(p).running() for p in range(3))
    assert int(backend.ctl(target, "leader")) == int(backend.ctl(faulted, "leader"))
    invariants_hold(backend, timeline, recorder, ips)
