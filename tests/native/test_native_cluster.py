"""The native implementation in namespaces: convergence, CTDB's monitor timing,
takeover, failback, keepalives, event mode. MonitorInterval is 3 to stay short.

Bounds are derived from the tunables and the monitor schedule in force, plus
a slack named in each test.
"""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from harness.backends.native import NativeBackend
from harness.cluster import Cluster
from harness.failover import ctl
from harness.seed import SEED_NODE
from harness.wait import wait_until

pytestmark = [pytest.mark.backends("native"), pytest.mark.cluster(plain=True)]

SLACK = 1.0          # scheduling and polling slack on a loaded 2-core machine
TAKEOVER_SLACK = 2.0  # UNHEALTHY -> IPs in the kernel of healthy nodes (issue 3's bound)
FAULTY = SEED_NODE  # the node the seed took down


def unhealthy(backend, pnn):
    return "UNHEALTHY" in backend.status(0).nodes[pnn].flags_text


def moved_off(backend, pnn, ips):
    held = backend.kernel_holders()
    return all(len(held[ip]) == 1 and held[ip][0] != pnn for ip in ips)


def non_leader(backend):
    """Node 1 or 2, whichever does not hold the cluster lock."""
    return next(p for p in (1, 2) if p != backend.agreed_leader())


def owned(backend, pnn):
    return {ip for ip, p in backend.ips(0).items() if p == pnn}


def test_three_nodes_converge_within_first_monitor_plus_slack(cluster: Cluster):
    b = NativeBackend(cluster, {"MonitorInterval": 3})
    try:
        b.start()
        # CTDB's first monitor run is 2 s after the daemon's start-up, so the
        # bound runs from the moment every daemon is up (its control socket,
        # served once start-up is done, answers): a Python process's own
        # spawn and import time on a loaded machine is not the daemon's delay
        t_up, _ = wait_until(lambda: all(b.ctl(p, "pnn") for p in range(3)), 10, "daemons up")
        # takeover follows at once
        t_conv, _ = wait_until(lambda: b.converged() is None, 2 + SLACK, "converged")
        assert t_conv - t_up <= 2 + SLACK
        # the last node to turn OK gets an IP in one more run: LCP2 spreads 3 over 3
        wait_until(lambda: sorted(b.ips(0).values()) == [0, 1, 2], TAKEOVER_SLACK,
                   "one IP per node")
    finally:
        b.stop()


def test_pulled_cable_unhealthy_within_monitor_gap_then_ips_move(cluster, backend, faults):
    lost = owned(backend, FAULTY)
    assert lost
    due = backend.monitor_due(FAULTY)
    t_fault = time.monotonic()
    faults.pull_cable(FAULTY, "eth1").apply()
    t_bad, _ = wait_until(lambda: unhealthy(backend, FAULTY), due + SLACK + 0.5,
                          "node 2 UNHEALTHY within the monitor gap")
    assert t_bad - t_fault <= due + SLACK
    t_moved, _ = wait_until(lambda: moved_off(backend, FAULTY, lost), TAKEOVER_SLACK + 1,
                            "node 2's IPs on healthy nodes in the kernel")
    assert t_moved - t_bad <= TAKEOVER_SLACK
    # the CLI of every node agrees with the kernel once the run's ipreallocated
    # reached it (it follows the takes: the kernel may show the IP a moment before)
    wait_until(lambda: all(backend.ips(p)[ip] != FAULTY for p in range(3) for ip in lost),
               TAKEOVER_SLACK, "every node's `ip` output agrees with the kernel")
    assert "No link on the public network interface eth1" in backend.log_path(FAULTY).read_text()


def test_plugging_back_returns_node_to_ok_and_fails_back(cluster, backend, faults):
    cable = faults.pull_cable(FAULTY, "eth1").apply()
    wait_until(lambda: unhealthy(backend, FAULTY), backend.max_monitor_gap() + SLACK,
               "node 2 UNHEALTHY")
    wait_until(lambda: not owned(backend, FAULTY), TAKEOVER_SLACK, "node 2 holds nothing")
    cable.undo()
    # after a change the next gap is 5 s (CTDB), so OK comes within 5 s + slack
    wait_until(lambda: not unhealthy(backend, FAULTY), 5 + SLACK, "node 2 OK again")
    # NoIPFailback=0: LCP2 moves an IP onto the node that has none
    _, got = wait_until(lambda: owned(backend, FAULTY), TAKEOVER_SLACK, "failback to node 2")
    assert len(got) == 1
    wait_until(lambda: backend.converged() is None, TAKEOVER_SLACK, "converged after failback")


@pytest.mark.tunables(MonitorInterval=3, NoIPFailback=1)
def test_no_ip_failback_keeps_ips_where_they_are(cluster, backend, faults):
    cable = faults.pull_cable(FAULTY, "eth1").apply()
    wait_until(lambda: not owned(backend, FAULTY) and unhealthy(backend, FAULTY),
               backend.max_monitor_gap() + SLACK + TAKEOVER_SLACK, "node 2 lost its IPs")
    layout = backend.ips(0)
    cable.undo()
    wait_until(lambda: not unhealthy(backend, FAULTY), 5 + SLACK, "node 2 OK again")
    # two more RecoverInterval checks: nothing may move back
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert backend.ips(0) == layout
        time.sleep(0.1)


def test_admin_down_of_a_plain_interface_is_healed_by_the_monitor(cluster, backend, faults):
    node = cluster.nodes[FAULTY]
    due = backend.monitor_due(FAULTY)
    faults.admin_down(FAULTY, "eth1").apply()
    t_down = time.monotonic()
    # 10.interface runs `ip link set eth1 up` at its next run and finds the link
    wait_until(lambda: node.link("eth1").admin_up, due + SLACK, "eth1 brought back up")
    healed = time.monotonic() - t_down
    # the node never became UNHEALTHY, before or after the healing
    end = time.monotonic() + backend.max_monitor_gap()
    while time.monotonic() < end:
        assert not unhealthy(backend, FAULTY)
        time.sleep(0.1)
    assert healed <= due + SLACK


@pytest.mark.tunables(MonitorInterval=3, KeepaliveInterval=1, KeepaliveLimit=3)
def test_sigstop_daemon_disconnected_within_keepalive_bound(cluster, backend):
    """A hung daemon sends nothing: peers give up after Interval x Limit (+1 interval).

    The victim is not the leader: a frozen leader keeps the cluster lock, so no
    one could take over (as with CTDB, whose lock helper outlives a hung ctdbd).
    """
    victim = non_leader(backend)
    observer = 0
    lost = owned(backend, victim)
    proc = backend.process(victim)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        bound = 1 * (3 + 1) + SLACK
        t_disc, _ = wait_until(
            lambda: "DISCONNECTED" in backend.status(observer).nodes[victim].flags_text, bound,
            "node 1 DISCONNECTED")
        assert t_disc - t0 <= bound
        held = {}
        def moved():
            held.update(backend.kernel_holders())
            return all(any(p != victim for p in held[ip]) for ip in lost)
        wait_until(moved, TAKEOVER_SLACK, "node 1's IPs also on a live node")
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def test_killed_daemon_is_disconnected_at_once_and_its_ips_move(cluster, backend):
    """A killed non-leader: its peers see EOF at once and the leader moves its
    IPs within the takeover bound. (A killed leader needs an election first -
    ctdbd waits for its leader broadcast timeout - which is not this bound.)"""
    victim = non_leader(backend)
    lost = owned(backend, victim)
    t0 = time.monotonic()
    backend.process(victim).signal(signal.SIGKILL)
    # the kernel closes its sockets: peers see EOF, no keepalive wait needed
    t_disc, _ = wait_until(
        lambda: "DISCONNECTED" in backend.status(0).nodes[victim].flags_text,
        backend.tunable("KeepaliveInterval") * backend.tunable("KeepaliveLimit") + SLACK,
        "node 1 DISCONNECTED")
    assert t_disc - t0 <= SLACK
    wait_until(lambda: all(set(backend.ips(0)[ip] for ip in lost) - {victim, -1}
                           for ip in lost), TAKEOVER_SLACK, "IPs reassigned")
    # As with ctdbd, a killed daemon cannot remove its addresses: the dead
    # node's kernel still has them until it restarts (CTDB's init clears them).
    held = backend.kernel_holders()
    assert all(victim in held[ip] and len(held[ip]) == 2 for ip in lost)
    backend.start_node(victim)
    wait_until(lambda: backend.converged() is None, 2 + 5 + TAKEOVER_SLACK + SLACK,
               "restarted node rejoins and the duplicates are gone")


@pytest.mark.event_mode
def test_event_mode_detects_pulled_cable_within_200ms(cluster, backend, faults):
    lost = owned(backend, FAULTY)
    t0 = time.monotonic()
    faults.pull_cable(FAULTY, "eth1").apply()
    t_bad, _ = wait_until(lambda: unhealthy(backend, FAULTY), 2.0, "UNHEALTHY", period=0.01)
    t_moved, _ = wait_until(lambda: moved_off(backend, FAULTY, lost), 2.0, "moved", period=0.01)
    assert t_bad - t0 <= 0.2, f"detection took {t_bad - t0:.3f} s"
    assert t_moved - t0 <= 0.2 + TAKEOVER_SLACK


def test_control_socket_is_private_and_cli_matches_ctdb(cluster, backend):
    path = backend.socket_path(0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    out = subprocess.run([sys.executable, "-m", "harness.failover.ctl", "--socket", str(path),
                          "status"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "Number of nodes:3"
    assert lines[1] == "pnn:0 198.18.0.1       OK (THIS NODE)"
    assert lines[-1].startswith("Leader:") and lines[-2] == "Recovery mode:NORMAL (0)"
    rc, _, err = ctl.call(path, ["frobnicate"])
    assert rc == 2 and err.count("\n") == 1 and "unknown command" in err
    backend.setvar("MonitorInterval", 7, pnn=0)
    assert backend.ctl(0, "getvar", "MonitorInterval").split("=")[1].strip() == "7"


BAD_CONFIG = [  # (file, its bytes, where the one line must point, what it must say)
    ("nodes", b"198.18.0.1\n198.18.0.x\n", "nodes:2:", "not an IP address"),
    ("nodes", b"198.18.0.1\n# caf\xe9\n", "nodes:2:", "byte 0xe9 at column 6 is not UTF-8"),
    ("public_addresses", b"203.0.113.1/24 eth1\n\xff\n", "public_addresses:2:",
     "byte 0xff at column 1 is not UTF-8"),
    ("ctdb.tunables", b"\x80MonitorInterval=3\n", "ctdb.tunables:1:", "is not UTF-8"),
    ("ctdb.tunables", b"IPAllocAlgorithm=3\n", "ctdb.tunables:1:", "exceeds 2"),
]


@pytest.mark.parametrize("name,data,where,what", BAD_CONFIG,
                         ids=[f"{c[0]}-{c[3][:12]}" for c in BAD_CONFIG])
def test_bad_config_is_one_line_and_exit_2(cluster, tmp_path, name, data, where, what):
    (tmp_path / "nodes").write_text("198.18.0.1\n")
    (tmp_path / name).write_bytes(data)
    r = cluster.nodes[0].run([sys.executable, "-m", "harness.failover.daemon", "--dir",
                              str(tmp_path), "--pnn", "0", "--no-auth"], check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and f"{tmp_path}/{where}" in r.stderr
    assert what in r.stderr and "Traceback" not in r.stderr


def test_ipv6_public_address_is_one_line_and_exit_2(cluster, tmp_path):
    (tmp_path / "nodes").write_text("198.18.0.1\n")
    (tmp_path / "public_addresses").write_text("2001:db8::11/64 bond0\n")
    r = cluster.nodes[0].run([sys.executable, "-m", "harness.failover.daemon", "--dir",
                              str(tmp_path), "--pnn", "0", "--no-auth"], check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert f"failoverd: {tmp_path}/public_addresses: 2001:db8::11/64 is IPv6" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_key_file_is_one_line_and_exit_2(cluster, tmp_path):
    (tmp_path / "nodes").write_text("198.18.0.1\n")
    (tmp_path / "short.key").write_text("short\n")
    (tmp_path / "short.key").chmod(0o600)
    (tmp_path / "open.key").write_text("x" * 64 + "\n")
    (tmp_path / "open.key").chmod(0o644)
    for key, problem in ((tmp_path / "missing.key", "cannot read cluster key"),
                         (tmp_path / "short.key", "cluster key shorter than 16 bytes"),
                         (tmp_path / "open.key", "cluster key has mode 0644")):
        r = cluster.nodes[0].run([sys.executable, "-m", "harness.failover.daemon", "--dir",
                                  str(tmp_path), "--pnn", "0", "--key-file", str(key)],
                                 check=False)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1 and f"failoverd: {key}: {problem}" in r.stderr
        assert "Traceback" not in r.stderr


def test_daemon_refuses_the_host_namespace(tmp_path):
    (tmp_path / "nodes").write_text("198.18.0.1\n")
    r = subprocess.run([sys.executable, "-m", "harness.failover.daemon", "--dir", str(tmp_path),
                        "--pnn", "0", "--no-auth"], capture_output=True, text=True)
    assert r.returncode != 0 and "refusing to run in the host's network namespace" in r.stderr


def _raw_send(cluster, pnn, payload: bytes):
    node = cluster.nodes[pnn]
    code = (f"import socket; s=socket.create_connection(('{node.address().ip}', 4380), 2); "
            f"s.sendall({payload!r}); s.close()")
    cluster.nodes[0 if pnn else 1].run([sys.executable, "-c", code])


def test_malformed_frames_are_logged_and_dropped(cluster, backend):
    before = backend.ips(0)
    _raw_send(cluster, 2, b"\x00\x00\x00\x05hello")
    _raw_send(cluster, 2, b"\x00\x00\x00\x02{}")
    _raw_send(cluster, 2, b"\xff\xff\xff\xff")
    wait_until(lambda: backend.log_path(2).read_text().count("connection dropped") >= 3, 3,
               "three bad frames logged")
    assert backend.process(2).running()
    assert backend.converged() is None and backend.ips(0) == before
