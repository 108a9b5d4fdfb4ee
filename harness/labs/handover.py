"""--keep-on-failure: a failed test's cluster kept *running*, as a lab.

The test's process cannot stay, so it hands its run to a lab supervisor in
adopt mode: the supervisor takes over the run's ownership, takes over the
running daemons (Backend.attach) and the namespaces as they are, and starts
its own recorders and fault catalogue. From then on it is a lab like any
other (`harness ls/shell/ctdb/watch/down`). The test's faults were undone
by its own fixtures first, as always.
"""

from __future__ import annotations

from harness.backends.base import Backend
from harness.cluster import Cluster
from harness.labs import supervisor
from harness.labs.lifecycle import how_to_use
from harness.labs.state import LabError, LabSpec, create_lab
from harness.topology import topology_to_dict

ADOPT_TIMEOUT = 60.0  # taking over needs no convergence: recorders start in seconds


def hand_over(cluster: Cluster, backend: Backend, origin: str) -> str:
    """Hand the running cluster to a new lab supervisor and say how to use it.
    If that fails, the run is removed (nothing is left half-owned) and the
    message says why."""
    spec = LabSpec(name="", run_id=cluster.run_id, implementation=backend.name,
                   topology=topology_to_dict(cluster.topology), tunables=dict(backend.tunables),
                   script_options=dict(backend.options),
                   event_mode=bool(getattr(backend, "event_mode", False)), adopt=True,
                   origin=origin)
    try:
        files = create_lab(spec)
        supervisor.start(files, timeout=ADOPT_TIMEOUT)
    except (LabError, supervisor.SupervisorFailed, OSError) as e:
        cluster.destroy()
        cluster.state.remove()
        return f"--keep-on-failure: could not keep run {cluster.run_id} running ({e}); removed it"
    return (f"--keep-on-failure: {origin} failed; its cluster runs on as lab {spec.name} "
            f"(run {cluster.run_id}, {backend.name}):\n{how_to_use(spec)}")
