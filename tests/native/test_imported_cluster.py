"""A cluster imported from a field /etc/ctdb (the 4-node unit-test sample) runs:
two public networks, CTDB_PARTIALLY_ONLINE_INTERFACES, the field's tunables."""

from pathlib import Path

import pytest

from harness import hostcheck
from harness.ctdb_import import import_ctdb_dir
from harness.lab import running_cluster

SAMPLE = Path(__file__).parent.parent / "unit" / "data" / "etc-ctdb" / "four-nodes"


@pytest.mark.skipif(hostcheck.why_cannot_run() is not None,
                    reason=f"harness: {hostcheck.why_cannot_run()}")
def test_imported_four_node_cluster_holds_every_public_ip_once():
    imported = import_ctdb_dir(SAMPLE)
    with running_cluster(imported.topology, "native",
                         {**imported.tunables, "MonitorInterval": 3},
                         imported.script_options) as lab:
        held = lab.backend.kernel_holders()
        assert sorted(held) == sorted(p.address.ip for p in imported.topology.public_addresses)
        assert all(len(pnns) == 1 for pnns in held.values()), held
        said = lab.backend.ips(0)
        assert {ip: pnns[0] for ip, pnns in held.items()} == {ip: said[ip] for ip in held}
