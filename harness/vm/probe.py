"""Can THIS kernel create a bond?  Decides whether bond tests need the VM.

Tried for real, in a throwaway namespace, because /proc/net/bonding only
exists once the driver is loaded and modules may still be loadable.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def probe_bonding() -> tuple[bool, str]:
    """(True, why) if an active-backup bond can be created here, else (False, why)."""
    if shutil.which("ip") is None:
        return False, "cannot probe: `ip` (iproute2) not found"
    ns = f"fth-devvm-probe-{os.getpid()}"
    res = _ip("netns", "add", ns)
    if res.returncode != 0:
        return False, f"cannot probe: `ip netns add` failed: {res.stderr.strip()}"
    try:
        res = _ip("-n", ns, "link", "add", "bond0", "type", "bond", "mode", "active-backup")
        if res.returncode == 0:
            return True, f"kernel {os.uname().release} can create bonds"
        err = res.stderr.strip() or f"rc {res.returncode}"
        return False, f"kernel {os.uname().release} cannot create a bond: {err}"
    finally:
        _ip("netns", "del", ns)  # deleting the namespace also destroys the bond
