"""Samba's real ctdbd (Debian's `ctdb`, or a self-built Samba) as a backend, one daemon per node.

Production mode, not CTDB_TEST_MODE (which turns off gratuitous ARPs, the
public-IP checks and 10.interface). Production ctdbd has fixed paths, so each
daemon runs in its node's network namespace plus a private mount namespace
that looks like a machine of its own:

    /etc/ctdb       <- <workdir>/ctdb/node<pnn>/etc   (config, event scripts)
    /var/lib/ctdb   <- <workdir>/ctdb/node<pnn>/var   (volatile, persistent, state)
    /var/log/ctdb   <- <workdir>/ctdb/node<pnn>/log   (log.ctdb)
    /run            <- a fresh tmpfs (the node's own /run), in it:
    /run/ctdb       <- <workdir>/ctdb/node<pnn>/run   (socket, pid file)
    /run/cluster    <- <workdir>/ctdb/lock            (the cluster lock, shared
                                                       by this cluster's nodes only)

With topology cluster_lock = "etcd" the lock is `!ctdb_etcd_lock` instead,
configured by the node's own /etc/ctdb/etcd (the lock host's address);
ctdbd runs with the system's directories first on its PATH, so that the
helper's `env python3` is the Python that has python3-etcd
(harness.ctdb.cluster_lock).

The host has no /run/ctdb to bind over and must not get one, hence the
private tmpfs on /run; the two directories from the host's /run are carried
in as open file descriptors before it hides them. Nothing is mounted in the
host's mount namespace: the mounts vanish with the daemon's namespace.

ctdbd starts as under systemd (Type=forking): `ip netns exec`, `unshare`
and `sh` exec into it, it forks and writes /run/ctdb/ctdbd.pid; that pid
(checked to be in the node's network namespace) is recorded for teardown and
stopped by pid. Not `--interactive`: 4.17 then logs to stderr without
timestamps and ignores `[logging] location`. The CLI reaches a node's daemon
through that daemon's socket, by its host path <workdir>/ctdb/node<pnn>/run/
ctdbd.socket (CTDB_SOCKET): the commands the harness runs are all controls
answered by the daemon, so the CLI needs none of the node's namespaces, and
one exec instead of nsenter's two costs a third as much in the test VM.

The paths above are Debian's; with `--ctdb-prefix DIR` the programs come from
DIR and the binds go over the paths that build has compiled in (see
ctdb_install).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from harness import netns, runs
from harness.backends.base import Backend, Daemon
from harness.backends.ctdb_install import INSTALL_HINT, CtdbInstallError, current
from harness.cluster import Cluster
from harness.ctdb.cluster_lock import ETCD_HELPER, EtcdLockConfig, etcd_config, with_helper_path
from harness.wait import time_scale

# The legacy event scripts this backend enables (4.15-4.22: a symlink in
# /etc/ctdb/events/legacy/ to /usr/share/ctdb/events/legacy/NAME.script).
ENABLED_SCRIPTS = ("00.ctdb", "10.interface")
# Tools the daemon or its scripts call; without ethtool every plain interface
# counts as down.
NEEDED_TOOLS = ("ethtool", "iptables", "unshare", "ip")
# Paths as the daemon sees them inside its mount namespace.
NS_LOCK_DIR = "/run/cluster"
# A graceful `ctdb shutdown` runs the shutdown event (10.interface drops the
# public IPs) before ctdbd exits; past this the daemon is stopped by pid.
SHUTDOWN_GRACE = 15.0
# From exec to the pid file of the forked daemon (measured: well under 1 s).
LAUNCH_TIMEOUT = 10.0
# A CLI call (exec of ctdb + the daemon's answer): well under 1 s on the host.
CLI_TIMEOUT = 10.0


def scaled(seconds: float) -> float:
    """A wait measured on the host, widened by the emulation scale in the test VM.

    Under TCG a process spawn costs ~50-200x the host's, so the CLI and the
    launch (several execs each, while three daemons run their init events)
    overran their host-sized timeouts there; on the host the scale is 1.
    """
    return seconds * time_scale()


class CtdbError(RuntimeError):
    """A `ctdb` CLI command failed; the message carries its stderr."""


class CtdbBackend(Backend):
    """Real ctdbd in every node namespace, running as in production."""

    name: ClassVar[str] = "ctdb"
    # 10.interface's releaseip runs ctdb_killtcp on every local connection to
    # the IP (found with ss, registered or not) over the dead link; measured
    # 5.1-6.2 s here before the IP went (stated, not derived from a tunable)
    killtcp_release_delay: ClassVar[float] = 7.0

    def __init__(self, cluster: Cluster, tunables: Mapping[str, int] | None = None,
                 options: Mapping[str, str] | None = None, log_level: str = "INFO") -> None:
        super().__init__(cluster, tunables, options)
        self.log_level = log_level
        self.install = current()
        self.lock_dir = self.dir / "lock"
        self.daemons: dict[int, Daemon] = {}
        for pnn in range(len(cluster.nodes)):
            self.write_config(pnn)

    # -- what the machine has ---------------------------------------------
    @classmethod
    def unavailable(cls) -> str | None:
        try:
            install = current()
        except CtdbInstallError as e:
            return str(e)
        if not install.ctdbd.exists() or not install.ctdb.exists():
            return f"ctdbd is not installed: {INSTALL_HINT}"
        missing = [t for t in NEEDED_TOOLS if shutil.which(t) is None]
        if missing:
            return f"ctdb backend needs {', '.join(missing)}: {INSTALL_HINT}"
        return None

    # -- per-node files ----------------------------------------------------
    def node_dir(self, pnn: int) -> Path:
        return self.dir / f"node{pnn}"

    def etc_dir(self, pnn: int) -> Path:
        return self.node_dir(pnn) / "etc"

    def log_path(self, pnn: int) -> Path:
        if self.install.prefix is not None:  # logs into its var dir (ctdb_install)
            return self.node_dir(pnn) / "var" / "log.ctdb"
        return self.node_dir(pnn) / "log" / "log.ctdb"

    def event_script_dir(self, pnn: int) -> Path:
        """Node pnn's /etc/ctdb/events/legacy: an executable NN.name.script here runs."""
        return self.etc_dir(pnn) / "events" / "legacy"

    def config_files(self, pnn: int) -> list[Path]:
        etc = self.etc_dir(pnn)
        return [etc / name for name in ("ctdb.conf", "nodes", "public_addresses",
                                        "ctdb.tunables", "script.options")]

    def lock_config(self) -> EtcdLockConfig | None:
        """ctdb_etcd_lock's settings (None with the fcntl lock)."""
        return etcd_config(self.cluster.topology)

    def ctdb_conf(self, pnn: int) -> str:
        node_ip = self.cluster.nodes[pnn].address().ip
        lock = f"!{ETCD_HELPER}" if self.lock_config() else f"{NS_LOCK_DIR}/reclock"
        sections = {"cluster": [f"{self.install.lock_option()} = {lock}",
                                f"node address = {node_ip}"]}
        if not self.cluster.topology.leader_capable(pnn):
            section, key = self.install.leader_capability_option()
            sections.setdefault(section, []).append(f"{key} = false")
        return (
            "[logging]\n"
            f"\tlocation = file:{self.install.log_file}\n"
            f"\tlog level = {self.log_level}\n"
            + "".join(f"[{name}]\n" + "".join(f"\t{line}\n" for line in lines)
                      for name, lines in sections.items())
        )

    def write_config(self, pnn: int) -> None:
        """Lay out node pnn's etc/, var/, run/ and log/ (idempotent: keeps databases)."""
        nd = self.node_dir(pnn)
        etc = self.etc_dir(pnn)
        for d in (etc / "events" / "legacy", etc / "events" / "notification",
                  nd / "var" / "volatile", nd / "var" / "persistent", nd / "var" / "state",
                  nd / "run", nd / "log", self.lock_dir):
            d.mkdir(parents=True, exist_ok=True)
        # The package's helper files (functions, notify.sh, debug scripts);
        # the scripts source ${CTDB_BASE}/functions.
        for f in self.install.helper_files.iterdir():
            if f.is_file() and not f.is_symlink():
                shutil.copy2(f, etc / f.name)
        (etc / "ctdb.conf").write_text(self.ctdb_conf(pnn))
        etcd = self.lock_config()
        if etcd is not None:
            (etc / "etcd").write_text(etcd.text())
        self.write_ctdb_files(etc)
        legacy = self.event_script_dir(pnn)
        for name in ENABLED_SCRIPTS:
            link = legacy / f"{name}.script"
            if not link.is_symlink():
                link.symlink_to(self.install.legacy_scripts / f"{name}.script")

    def launch_script(self, pnn: int) -> str:
        """The shell run by `unshare --mount`: bind the node's dirs, exec ctdbd."""
        nd = self.node_dir(pnn)
        inst = self.install
        q = shlex.quote
        lines = [
            "set -e",
            f"export PATH={q(with_helper_path(os.environ.get('PATH')))}",
            f"mount --bind {q(str(nd / 'etc'))} {q(inst.etcdir)}",
        ]
        if inst.prefix is not None:  # a build's var dir may not exist before its first run
            lines.append(f"mkdir -p {q(inst.vardir)} {q(inst.rundir)}")
        lines.append(f"mount --bind {q(str(nd / 'var'))} {q(inst.vardir)}")
        if inst.prefix is None:
            lines.append(f"mount --bind {q(str(nd / 'log'))} /var/log/ctdb")
        lines += [
            # carried in as fds: the tmpfs below hides the host's /run
            f"exec 3<{q(str(nd / 'run'))} 4<{q(str(self.lock_dir))}",
            "mount -t tmpfs -o mode=0755,size=16m ctdb-node-run /run",
            f"mkdir -p {q(inst.rundir)} {NS_LOCK_DIR}",
            f"mount -c --bind /proc/self/fd/3 {q(inst.rundir)}",
            f"mount -c --bind /proc/self/fd/4 {NS_LOCK_DIR}",
            "exec 3<&- 4<&-",
        ]
        if (inst.prefix is None and not os.path.islink("/var/run")
                and os.path.isdir("/var/run/ctdb")):
            lines.append("mount --bind /run/ctdb /var/run/ctdb")
        # Not --interactive: that logs to stderr without timestamps and
        # ignores `[logging] location`. ctdbd forks like under systemd
        # (Type=forking) and writes /run/ctdb/ctdbd.pid.
        lines.append(f"exec {q(str(inst.ctdbd))}")
        return "\n".join(lines)

    def pid_file(self, pnn: int) -> Path:
        return self.node_dir(pnn) / "run" / "ctdbd.pid"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Launch every node's ctdbd (in parallel: each launch waits for its fork)."""
        errors: list[BaseException] = []

        def one(pnn: int) -> None:
            try:
                self.start_node(pnn)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(p,)) for p in range(len(self.cluster.nodes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def start_node(self, pnn: int) -> None:
        """Launch node pnn's ctdbd and record the daemon's pid (after its fork)."""
        old = self.daemons.get(pnn)
        if old is not None and old.running():
            raise RuntimeError(f"ctdbd on node {pnn} is already running (pid {old.pid})")
        self._clear_leftovers(pnn)
        self.write_config(pnn)
        self.pid_file(pnn).unlink(missing_ok=True)
        node = self.cluster.nodes[pnn]
        argv = ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", self.launch_script(pnn)]
        out = self.node_dir(pnn) / "launch.log"
        launcher = node.spawn(argv, f"ctdbd launcher node{pnn}", log=out)
        try:
            rc = launcher.popen.wait(scaled(LAUNCH_TIMEOUT))
        except subprocess.TimeoutExpired:
            launcher.stop()
            raise CtdbError(f"node {pnn}: ctdbd did not fork within {scaled(LAUNCH_TIMEOUT)} s; "
                            f"see {out}") from None
        if rc != 0:
            raise CtdbError(f"node {pnn}: ctdbd launch exited {rc}: {out.read_text().strip()}")
        pid = self._wait_pid_file(pnn)
        if os.stat(f"/proc/{pid}/ns/net").st_ino != netns.netns_ino(node.netns):
            raise CtdbError(f"node {pnn}: pid {pid} from {self.pid_file(pnn)} is not in "
                            f"{node.netns}")
        self.daemons[pnn] = Daemon(pid, self.cluster.state.record_process(pid, self._what(pnn)))
        self._wait_socket(pnn)

    @staticmethod
    def _what(pnn: int) -> str:
        """How node pnn's ctdbd is named in the run's process record."""
        return f"ctdbd node{pnn}"

    def attach(self) -> None:
        """Take over every node's running ctdbd, found in the run's record."""
        self.daemons = {pnn: self.recorded_daemon(pnn, self._what(pnn))
                        for pnn in range(len(self.cluster.nodes))}

    def convergence_timeout(self) -> float:
        """ctdbd's start-up: leader election (5 s broadcast timeout + ElectionTimeout),
        the startup event waiting RerecoveryTimeout + 3 s after the last recovery,
        the first monitor runs, a takeover run; plus slack, times the VM's scale."""
        t = self.tunable
        return (5 + t("ElectionTimeout") + t("RerecoveryTimeout") + 3 + 2 + 5
                + t("MonitorInterval") + t("TakeoverTimeout") + 10) * time_scale()

    def _leftovers(self, pnn: int) -> dict[int, int | None]:
        """What node pnn's ctdbd left running in its namespace (pid -> start
        time): anything in the session of its last daemon (ctdbd leads its
        session; eventd, recoverd, the lock helper and the event scripts stay
        in it), and any ctdb program (a killed ctdbd's eventd lingers until it
        notices its parent is gone)."""
        d = self.daemons.get(pnn)
        session = d.pid if d is not None and not d.running() else None
        ctdbd = os.path.realpath(self.install.ctdbd)
        helpers = f"{os.path.realpath(self.install.helper_dir)}/"
        out: dict[int, int | None] = {}
        for pid in netns.pids_in_netns([self.cluster.nodes[pnn].netns]):
            with contextlib.suppress(OSError):
                exe = os.readlink(f"/proc/{pid}/exe")
                if (exe == ctdbd or exe.startswith(helpers)
                        or (session is not None and runs.proc_session(pid) == session)):
                    out[pid] = runs.proc_start_time(pid)
        return out

    def _clear_leftovers(self, pnn: int, timeout: float = 10.0) -> None:
        """Give node pnn's leftovers `timeout` to end by themselves, then SIGKILL
        them by pid: a new ctdbd cannot start its event daemon while the old
        one's runs, and stop() leaves nothing in the namespace."""
        deadline = time.monotonic() + scaled(timeout)
        while (left := self._leftovers(pnn)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, start in left.items():  # ours by namespace and session
            if runs.alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _wait_socket(self, pnn: int) -> None:
        """Return once the CLI reaches the daemon (the pid file precedes the socket)."""
        @retry(stop=stop_after_delay(scaled(LAUNCH_TIMEOUT)), wait=wait_fixed(0.01), reraise=True,
               retry=retry_if_exception_type(CtdbError))
        def ask() -> None:
            if not self.running(pnn):
                raise RuntimeError(f"node {pnn}: ctdbd exited during start-up; "
                                   f"see {self.log_path(pnn)}")
            self.ctl(pnn, "pnn")
        ask()

    def _wait_pid_file(self, pnn: int) -> int:
        @retry(stop=stop_after_delay(scaled(LAUNCH_TIMEOUT)), wait=wait_fixed(0.01), reraise=True,
               retry=retry_if_exception_type((OSError, ValueError)))
        def read() -> int:
            words = self.pid_file(pnn).read_text().split()
            if not words:  # created, not yet written
                raise ValueError("empty pid file")
            pid = int(words[0])
            if not runs.alive(pid, None):
                raise ValueError(f"pid {pid} is gone")
            return pid
        try:
            return read()
        except (OSError, ValueError) as e:
            raise CtdbError(f"node {pnn}: no live ctdbd pid in {self.pid_file(pnn)} ({e}); "
                            f"see {self.log_path(pnn)}") from None

    def daemon_pid(self, pnn: int) -> int:
        return self.daemons[pnn].pid

    def running(self, pnn: int) -> bool:
        d = self.daemons.get(pnn)
        return d is not None and d.running()

    def stop_node(self, pnn: int, grace: float = SHUTDOWN_GRACE) -> None:
        """`ctdb shutdown` (runs the shutdown event: IPs released), then by pid."""
        d = self.daemons.get(pnn)
        if d is None:
            return
        if d.running():
            with contextlib.suppress(CtdbError, subprocess.TimeoutExpired):
                self.ctl(pnn, "shutdown", check=False, timeout=grace)
            d.wait(scaled(grace))
        d.stop()
        self._clear_leftovers(pnn)

    def stop(self) -> None:
        """`ctdb shutdown` on every node at once, then by pid whatever is left."""
        threads = [threading.Thread(target=self.stop_node, args=(pnn,), daemon=True)
                   for pnn in self.daemons]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(SHUTDOWN_GRACE) + 10)
        for pnn, d in self.daemons.items():
            d.stop()
            self._clear_leftovers(pnn)

    # -- the CLI -----------------------------------------------------------
    def enter_argv(self, pnn: int) -> list[str]:
        """The network and mount namespaces of node pnn's ctdbd (its /etc/ctdb,
        /run/ctdb socket): `ctdb status` inside works as on a real node."""
        d = self.daemons.get(pnn)
        if d is None or not d.running():
            raise CtdbError(f"ctdbd on node {pnn} is not running")
        # --root: the daemon's own root; in the test VM everything runs in a
        # chroot, and entering a mount namespace alone would leave us outside it
        return ["nsenter", "--target", str(d.pid), "--mount", "--net", "--root", "--"]

    def cli_argv(self, pnn: int, *args: str) -> list[str]:
        """`ctdb ARGS` inside node pnn, as its ctdbd sees the node."""
        return [*self.enter_argv(pnn), str(self.install.ctdb), *args]

    def socket_path(self, pnn: int) -> Path:
        """Node pnn's ctdbd socket as the host sees it (/run/ctdb/ctdbd.socket inside)."""
        return self.node_dir(pnn) / "run" / "ctdbd.socket"

    def ctl_env(self, pnn: int) -> dict[str, str]:
        """The environment of a CLI call to node pnn: ours, plus its daemon's socket."""
        d = self.daemons.get(pnn)
        if d is None or not d.running():
            raise CtdbError(f"ctdbd on node {pnn} is not running")
        return {**os.environ, "CTDB_SOCKET": str(self.socket_path(pnn))}

    def ctl(self, pnn: int, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> str:
        """`ctdb ARGS` on node pnn; `timeout` is in host seconds (scaled in the VM)."""
        r = subprocess.run([str(self.install.ctdb), *args], env=self.ctl_env(pnn),
                           capture_output=True, text=True, timeout=scaled(timeout),
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise CtdbError(f"node {pnn}: ctdb {' '.join(args)} exited {r.returncode}: "
                            f"{r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def getvar(self, name: str, pnn: int = 0) -> int:
        """A tunable as the running daemon has it (`ctdb getvar`: `Name = value`)."""
        out = self.ctl(pnn, "getvar", name)
        return int(out.split("=", 1)[1])
