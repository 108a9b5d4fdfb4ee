"""`make deps` on the four supported distributions, checked by its dry run.

The other distributions cannot run here, so each is faked by an os-release
file (OS_RELEASE=FILE) and `make deps DRY_RUN=1` prints the plan instead of
installing: which Python builds .venv and which apt packages are wanted.
What the plan says per distribution is in mk/distro.sh's header.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ["iproute2", "ethtool", "nftables", "iptables", "iputils-ping", "iputils-arping",
        "procps", "util-linux", "python3-venv", "ctdb", "chromium", "chromium-driver",
        "etcd-server", "python3-etcd", "samba-common-bin"]
UBUNTU = [p for p in BASE if p not in ("chromium", "chromium-driver")]


def makefile_apt_pkgs() -> list[str]:
    """APT_PKGS as the Makefile spells it (make prints it)."""
    r = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-",
                        "show"], cwd=ROOT, input="show:\n\t@echo $(APT_PKGS)\n",
                       capture_output=True, text=True, timeout=30, check=True)
    return r.stdout.split()


def dry_run(tmp_path: Path, os_release: str) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "os-release"
    f.write_text(os_release)
    return subprocess.run(["make", "-s", "--no-print-directory", "deps", "DRY_RUN=1",
                           f"OS_RELEASE={f}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def plan(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


@pytest.mark.parametrize(("os_release", "python", "wanted"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
     "python3", BASE),
    ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n',
     "python3", BASE),
    ('PRETTY_NAME="Ubuntu 22.04.5 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
     "python3.11", [*UBUNTU, "python3.11", "python3.11-venv"]),
    ('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n',
     "python3", UBUNTU),
], ids=["debian12", "debian13", "ubuntu2204", "ubuntu2404"])
def test_dry_run_plans_the_distributions_packages(tmp_path: Path, os_release: str,
                                                   python: str, wanted: list[str]) -> None:
    assert makefile_apt_pkgs() == BASE
    r = dry_run(tmp_path, os_release)
    assert r.returncode == 0, r.stderr
    p = plan(r.stdout)
    assert p["python"] == python
    assert p["apt packages"].split() == wanted
    # the venv is built with that distribution's Python; nothing was run
    assert shlex.split(p["would run"])[:3] == [python, "-m", "venv"]


def test_unsupported_distribution_with_something_missing_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text("ID=fedora\nVERSION_ID=40\n")
    r = subprocess.run(["sh", "mk/distro.sh", "install", "iproute2", "fth-no-such-package"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DRY_RUN": "1",
                            "OS_RELEASE": str(f)})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "fedora 40" in r.stderr
    assert r.stderr.rstrip().endswith("fth-no-such-package")
