"""`--ctdb-prefix DIR`: the ctdb backend runs a Samba installed under DIR.

No self-built Samba is on this machine, so the prefix here is Debian's
ctdb laid out as `make install` lays out a build (sbin/ctdbd, bin/ctdb,
libexec/ctdb/, share/ctdb/events/legacy via the build's ctdb-path): what is
exercised is the prefix path of the backend - programs taken from DIR, the
binds put over the paths the build's own ctdb-path reports, the log in the
node's var dir - on a real 3-node ctdbd cluster.  A wrong DIR is one line
and exit status 2 (harness) or a usage error (pytest), never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends import ctdb_install
from harness.backends.ctdb import CtdbBackend
from harness.backends.ctdb_install import CtdbInstallError, from_prefix
from harness.cluster import Cluster

DEBIAN_READY = CtdbBackend.unavailable() is None
ROOT = Path(__file__).resolve().parents[2]
# ready_bound() of test_ctdb_backend for these tunables: leader timeout 5 +
# ElectionTimeout 3 + RerecoveryTimeout 1 + 3 + first monitor 2 +
# MonitorInterval 3 + TakeoverTimeout 9 + slack 2.
TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1}
SLACK = 2.0


def debian_as_prefix(root: Path) -> Path:
    """Debian's ctdb under `root` in a build's layout (symlinks to the package)."""
    for rel, target in (("sbin/ctdbd", "/usr/sbin/ctdbd"), ("bin/ctdb", "/usr/bin/ctdb"),
                        ("libexec/ctdb", "/usr/libexec/ctdb")):
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    return root


@pytest.mark.parametrize(("printed", "option"), [
    ("4.15.13-Ubuntu\n", "recovery lock"),   # Ubuntu 22.04
    ("4.16.0\n", "cluster lock"),            # the rename
    ("4.22.6-Debian-4.22.6+dfsg-0+deb13u1\n", "cluster lock"),
    ("garbage\n", "cluster lock"),           # unreadable: today's name
])
def test_release_decides_the_cluster_lock_option(tmp_path: Path, printed: str,
                                                 option: str) -> None:
    """4.15 reads only ``recovery lock``; `ctdb version` prints the release."""
    tool = tmp_path / "ctdb"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{printed}'\n")
    tool.chmod(0o755)
    assert dataclasses.replace(ctdb_install.DEBIAN, ctdb=tool).lock_option() == option


@pytest.mark.parametrize(("printed", "option"), [
    ("4.16.0\n", ("legacy", "recmaster capability")),
    ("4.17.12-Debian\n", ("cluster", "leader capability")),  # the rename
])
def test_release_decides_the_leader_capability_option(tmp_path: Path, printed: str,
                                                      option: tuple[str, str]) -> None:
    """4.17 renamed [legacy] recmaster capability to [cluster] leader capability."""
    tool = tmp_path / "ctdb"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{printed}'\n")
    tool.chmod(0o755)
    install = dataclasses.replace(ctdb_install.DEBIAN, ctdb=tool)
    assert install.leader_capability_option() == option


def test_missing_prefix_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CtdbInstallError, match=r"--ctdb-prefix .*: missing .*sbin/ctdbd"):
        from_prefix(str(tmp_path))
    with pytest.raises(CtdbInstallError, match="no such directory"):
        from_prefix(str(tmp_path / "nope"))
    with pytest.raises(CtdbInstallError, match="absolute path"):
        from_prefix("relative/dir")


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "harness", "--ctdb-prefix", "{dir}", "ls"],
    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ctdb-prefix", "{dir}",
     "--collect-only", "-q", "tests/unit/test_tunables.py"],
])
def test_bad_prefix_exits_with_one_line(tmp_path: Path, argv: list[str]) -> None:
    argv = [a.replace("{dir}", str(tmp_path)) for a in argv]
    env = {k: v for k, v in os.environ.items() if k != ctdb_install.PREFIX_ENV}
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0
    err = [ln for ln in (r.stderr + r.stdout).splitlines() if "--ctdb-prefix" in ln]
    assert len(err) == 1 and "sbin/ctdbd" in err[0], r.stderr + r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not DEBIAN_READY, reason=CtdbBackend.unavailable() or "")
def test_prefix_paths_come_from_the_builds_ctdb_path(tmp_path: Path) -> None:
    inst = from_prefix(str(debian_as_prefix(tmp_path)))
    assert inst.ctdbd == tmp_path / "sbin" / "ctdbd"
    assert inst.ctdb == tmp_path / "bin" / "ctdb"
    # Debian's ctdb-path reports Debian's compiled-in paths
    assert (inst.etcdir, inst.vardir, inst.rundir) == ("/etc/ctdb", "/var/lib/ctdb", "/run/ctdb")
    assert inst.legacy_scripts == Path("/usr/share/ctdb/events/legacy")
    assert inst.log_file == "/var/lib/ctdb/log.ctdb"
    assert inst.lock_option() == "cluster lock"  # 4.16 and later


@pytest.mark.skipif(not DEBIAN_READY, reason=CtdbBackend.unavailable() or "")
@pytest.mark.cluster(plain=True)
def test_cluster_from_a_prefix_converges(cluster: Cluster, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ctdb_install.PREFIX_ENV, str(debian_as_prefix(tmp_path / "samba")))
    b = CtdbBackend(cluster, tunables=TUNABLES)
    assert b.install.prefix == tmp_path / "samba"
    assert f"exec {tmp_path}/samba/sbin/ctdbd" in b.launch_script(0)
    bound = (5 + b.tunable("ElectionTimeout") + b.tunable("RerecoveryTimeout") + 3 + 2
             + b.tunable("MonitorInterval") + b.tunable("TakeoverTimeout") + SLACK)
    t0 = time.monotonic()
    try:
        b.start()
        b.wait_converged(bound)
        ready = time.monotonic() - t0
        st = b.status(1)
        assert [n.pnn for n in st.nodes] == [0, 1, 2] and st.all_ok
        for pnn in range(3):
            assert os.readlink(f"/proc/{b.daemon_pid(pnn)}/exe") == "/usr/sbin/ctdbd"
            assert "ctdbd" in b.log_path(pnn).read_text()  # logged into the node's var dir
        print(f"ready from the prefix in {ready:.2f} s (bound {bound:.1f} s)")
    finally:
        b.stop()
