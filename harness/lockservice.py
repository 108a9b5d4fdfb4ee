"""The cluster lock's service on the private network: an etcd server in the
run's `lock` namespace (topology `cluster_lock = "etcd"`).

Why etcd: CTDB ships a cluster mutex helper for it (ctdb_etcd_lock, v2 API),
so both implementations can take the same lock through the same helper, and
a partition of the private network cuts a node off from it, as on a real
site (a host-local fcntl file is never cut). One member, no peers: the lock
service is one host of the cluster's network, killed and restarted by the
lock-service fault.

etcd runs as a process of the run (recorded, so teardown and the reaper
stop it by pid), logs to <run>/work/lock/etcd.log (followed onto the
timeline by the recorder), keeps its data in <run>/work/lock/data (a
restart finds its keys again, TTLs running on) and is ready when its
/health endpoint says so, asked from inside the lock namespace.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from harness import netns
from harness.ctdb.cluster_lock import HELPER_PATH
from harness.wait import time_scale

if TYPE_CHECKING:
    from harness.cluster import Cluster, Host, ManagedProcess

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
CLIENT_PORT = 2379
# etcd's start-up to a healthy /health: about 1 s here (one member, fresh
# data dir); generous for a loaded 2-core machine and scaled in the VM.
READY_TIMEOUT = 20.0
INSTALL_HINT = "install etcd-server, python3-etcd and samba-common-bin (make deps does)"


class LockServiceError(RuntimeError):
    """The lock service could not be started or did not become healthy."""


class EtcdService:
    """One etcd member in the lock namespace, reachable at lock_address:2379."""

    def __init__(self, cluster: Cluster, host: Host) -> None:
        self.cluster = cluster
        self.host = host
        self.dir = cluster.workdir / "lock"
        self.proc: ManagedProcess | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return str(self.cluster.topology.lock_address().ip)

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{CLIENT_PORT}"

    @property
    def log_path(self) -> Path:
        return self.dir / "etcd.log"

    @staticmethod
    def unavailable() -> str | None:
        """None when etcd and the mutex helper's client library are here."""
        if shutil.which("etcd") is None:
            return f"etcd is not installed: {INSTALL_HINT}"
        if not Path("/usr/lib/python3/dist-packages/etcd/__init__.py").exists():
            return f"python3-etcd (ctdb_etcd_lock's client) is not installed: {INSTALL_HINT}"
        if shutil.which("testparm", path=HELPER_PATH) is None:
            # ctdb_etcd_lock asks it for the netbios name (its lock's key) and,
            # without it, dies on every attempt: no node would ever lead
            return f"testparm (ctdb_etcd_lock asks it for the netbios name) is not installed: " \
                   f"{INSTALL_HINT}"
        return None

    def argv(self) -> list[str]:
        """One member, v2 API on (ctdb_etcd_lock speaks v2), peers on loopback."""
        peer = "http://127.0.0.1:2380"
        return [ETCD, "--name", "lock", "--data-dir", str(self.dir / "data"),
                "--enable-v2=true",
                "--listen-client-urls", self.endpoint,
                "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"lock={peer}",
                "--initial-cluster-token", f"fth-{self.cluster.run_id}"]

    def start(self) -> None:
        """Start etcd and return once /health says true (LockServiceError if not)."""
        why = self.unavailable()
        if why:
            raise LockServiceError(why)
        if self.running():
            raise LockServiceError(f"etcd in {self.host.netns} is already running "
                                   f"(pid {self.proc.pid if self.proc else '?'})")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.proc = self.host.spawn(self.argv(), "etcd lock service", log=self.log_path)
        self.wait_healthy(READY_TIMEOUT * time_scale())

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def healthy(self) -> bool:
        """etcd's own answer on /health, asked from inside the lock namespace."""
        def ask(_route: object) -> bool:
            conn = http.client.HTTPConnection(self.address, CLIENT_PORT, timeout=1.0)
            try:
                conn.request("GET", "/health")
                body = conn.getresponse().read()
            finally:
                conn.close()
            return json.loads(body).get("health") == "true"
        try:
            return bool(netns.in_netns(self.host.netns, ask))
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def wait_healthy(self, timeout: float) -> None:
        @retry(stop=stop_after_delay(timeout), wait=wait_fixed(0.05), reraise=True,
               retry=retry_if_exception_type(LockServiceError))
        def check() -> None:
            if not self.running():
                raise RuntimeError(f"etcd exited during start-up; see {self.log_path}")
            if not self.healthy():
                raise LockServiceError(f"etcd at {self.endpoint} not healthy within "
                                       f"{timeout:.0f} s; see {self.log_path}")
        try:
            check()
        except RuntimeError as e:
            raise LockServiceError(str(e)) from None

    def kill(self) -> tuple[float, float]:
        """SIGKILL etcd (the lock-service fault); returns the syscall's span."""
        if self.proc is None or not self.proc.running():
            raise LockServiceError("etcd is not running")
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        t1 = time.monotonic()
        self.proc.popen.wait(5)
        return t0, t1

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
