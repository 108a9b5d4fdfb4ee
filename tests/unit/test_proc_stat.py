"""runs' /proc/PID/stat readers: a process by start time and by session,
read from the kernel (this process and a child that ended)."""

from __future__ import annotations

import os
import subprocess

from harness import runs


def test_session_and_start_time_of_a_live_process_and_of_one_gone():
    assert runs.proc_session(os.getpid()) == os.getsid(0)
    assert runs.proc_start_time(os.getpid()) is not None
    child = subprocess.Popen(["true"], start_new_session=True)
    child.wait()
    assert runs.proc_session(child.pid) is None
    assert runs.proc_start_time(child.pid) is None
