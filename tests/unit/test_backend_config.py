"""Both backends write CTDB's files through harness.ctdb's checked writers.

What that guarantees: the files read back, with the same readers the native
daemon loads them with, as exactly the topology and the test's settings; a
script option that needs quoting is quoted as the scripts' shell needs; a bad
tunable or option fails when the backend is made, not later in a daemon's
log.  The cluster is never built: only the files are written.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.backends.base import Backend
from harness.backends.ctdb import CtdbBackend
from harness.backends.ctdb_install import current as ctdb_install
from harness.backends.native import NativeBackend
from harness.cluster import Cluster
from harness.ctdb import ConfigError, TunableError, Tunables, load_node_config
from harness.runs import RunState
from harness.topology import default_topology

OPTIONS = {
    "CTDB_PARTIALLY_ONLINE_INTERFACES": "yes",
    "CTDB_SPACED": "two words",
    "CTDB_QUOTED": "it's \"$HOME\" `id`; x",
    "CTDB_EMPTY": "",
}


def native(cluster: Cluster, tunables: Mapping[str, int] | None = None,
           options: Mapping[str, str] | None = None) -> tuple[Backend, Path]:
    b = NativeBackend(cluster, tunables, options)
    return b, b.node_dir(1)


def ctdb(cluster: Cluster, tunables: Mapping[str, int] | None = None,
         options: Mapping[str, str] | None = None) -> tuple[Backend, Path]:
    if not ctdb_install().helper_files.is_dir():
        pytest.skip(f"the ctdb backend copies {ctdb_install().helper_files}, "
                    "which is not installed")
    b = CtdbBackend(cluster, tunables, options)
    return b, b.etc_dir(1)


BACKENDS = [pytest.param(native, id="native"), pytest.param(ctdb, id="ctdb")]


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    """A cluster that is planned but never built (no namespaces, nothing claimed)."""
    return Cluster(default_topology(), RunState("unit", root=tmp_path))


@pytest.mark.parametrize("make", BACKENDS)
def test_files_read_back_as_topology_and_settings(cluster, make):
    _, etc = make(cluster, {"MonitorInterval": 3, "noipfailback": 1}, OPTIONS)
    cfg = load_node_config(etc, pnn=1)
    top = cluster.topology
    assert cfg.nodes == tuple(top.node_addresses())
    assert cfg.public_addresses == top.public_addresses
    assert cfg.tunables == Tunables({"MonitorInterval": 3, "NoIPFailback": 1})
    assert cfg.options == OPTIONS


@pytest.mark.parametrize("make", BACKENDS)
def test_option_values_reach_the_shell_unchanged(cluster, make):
    _, etc = make(cluster, options=OPTIONS)
    text = (etc / "script.options").read_text()
    assert "CTDB_SPACED='two words'\n" in text
    for name, value in OPTIONS.items():
        r = subprocess.run(["sh", "-c", f'. "$1" && printf %s "${name}"', "sh",
                            str(etc / "script.options")],
                           capture_output=True, text=True, check=True)
        assert r.stdout == value, name


@pytest.mark.parametrize("make", BACKENDS)
@pytest.mark.parametrize("tunables", [{"MonitorIntervall": 3}, {"DeterministicIPs": 1},
                                      {"MonitorInterval": -1}])
def test_bad_tunable_raises_the_ctdb_error(cluster, make, tunables):
    with pytest.raises(TunableError):
        make(cluster, tunables)


@pytest.mark.parametrize("make", BACKENDS)
@pytest.mark.parametrize("options", [{"BAD NAME": "x"}, {"CTDB_X": "two\nlines"}])
def test_bad_option_raises_the_ctdb_error(cluster, make, options):
    with pytest.raises(ConfigError):
        make(cluster, options=options)
