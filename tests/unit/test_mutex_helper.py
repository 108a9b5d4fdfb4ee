"""failoverd takes the cluster lock as ctdbd does: through CTDB's own cluster
mutex helper (here ctdb_mutex_fcntl_helper on a file), reading its one status
character; the helper's exit is the lock's loss."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from harness.ctdb.cluster_lock import FCNTL_HELPER
from harness.failover.mutex_helper import CONTENTION, ERROR, TAKEN, MutexHelper, helper_argv

pytestmark = pytest.mark.skipif(not os.access(FCNTL_HELPER, os.X_OK),
                                reason=f"{FCNTL_HELPER} missing: install ctdb (make deps)")


def test_setting_reads_like_ctdb_conf():
    assert helper_argv("/clusterfs/reclock") == [FCNTL_HELPER, "/clusterfs/reclock"]
    assert helper_argv("!/usr/libexec/ctdb/ctdb_etcd_lock -v") == [
        "/usr/libexec/ctdb/ctdb_etcd_lock", "-v"]
    with pytest.raises(ValueError, match="no command"):
        helper_argv("!")


def test_take_contend_lose_and_take_again(tmp_path: Path):
    lock = str(tmp_path / "reclock")

    async def go() -> None:
        lost: list[str] = []
        a = MutexHelper(lock, on_lost=lambda: lost.append("a"))
        b = MutexHelper(lock)
        assert await a.take() == TAKEN and a.held
        assert await b.take() == CONTENTION and not b.held
        # the helper's exit (here: killed) is the lock's loss, reported at once
        assert a.proc is not None
        os.kill(a.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(a.lost.wait(), 5)
        assert lost == ["a"] and not a.held
        assert await b.take() == TAKEN
        b.drop()  # signalled; release() reaps it
        await b.release()
        assert await a.take() == TAKEN
        await a.release()

    asyncio.run(go())


def test_a_helper_that_cannot_run_is_an_error(tmp_path: Path):
    missing = tmp_path / "no-such-helper"

    async def go() -> tuple[str, str]:
        silent = MutexHelper(f"!{shutil.which('true')}")  # exits without a status
        return await MutexHelper(f"!{missing}").take(), await silent.take()

    assert asyncio.run(go()) == (ERROR, ERROR)
