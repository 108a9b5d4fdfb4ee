"""CTDB's own formats, shared by both implementations and the harness.

Both the native daemon and Samba's ctdbd are configured with the same files
and read through the same CLI formats, so these live in one package that
imports nothing else from the harness.  Callers use the package itself
(`from harness.ctdb import parse_status`, or `from harness import ctdb`);
the modules are:

* flags: node flags and the order `ctdb status` names them in;
* tunables: 4.17's tunable table, defaults, and getvar/setvar/listvars;
* configfile: ConfigError and the syntax every configuration file shares;
* nodes_file, public_addresses_file, tunables_file, script_options_file:
  reader and checked writer of each file under /etc/ctdb;
* node_config: a node's whole configuration, as the native daemon loads it;
* output: what all CLI output shares (OutputError, addresses, -X rows);
* status_output: `ctdb status` / `nodestatus`; ip_output: `ctdb ip` /
  `ifaces` - each the one formatter the native CLI prints with and the one
  parser that reads both implementations.
"""

from harness.ctdb.configfile import ConfigError, parse_address
from harness.ctdb.flags import STATUS_ORDER, NodeFlags
from harness.ctdb.ip_output import (
    UNASSIGNED,
    IfaceInfo,
    format_ifaces,
    format_ifaces_x,
    format_ip,
    format_ip_x,
    parse_ifaces,
    parse_ip,
)
from harness.ctdb.node_config import NodeConfig, load_node_config
from harness.ctdb.nodes_file import DELETED_ADDRESS, NodeEntry, parse_nodes, write_nodes
from harness.ctdb.output import OutputError, ip_sort_key, ntop
from harness.ctdb.public_addresses_file import (
    PublicAddress,
    check_iface_name,
    parse_public_addresses,
    write_public_addresses,
)
from harness.ctdb.script_options_file import (
    parse_script_options,
    truthy,
    write_script_options,
)
from harness.ctdb.status_output import (
    INVALID_GENERATION,
    ClusterStatus,
    NodeStatus,
    flags_text,
    format_node_line,
    format_nodestatus,
    format_status,
    format_status_x,
    parse_flags_text,
    parse_leader,
    parse_nodestatus,
    parse_status,
)
from harness.ctdb.tunables import (
    DEFAULTS,
    NAMES,
    TUNABLES,
    Tunable,
    TunableError,
    Tunables,
    check_value,
    format_getvar,
    parse_listvars,
    parse_value,
)
from harness.ctdb.tunables_file import parse_tunables, write_tunables

__all__ = [
    "DEFAULTS",
    "DELETED_ADDRESS",
    "INVALID_GENERATION",
    "NAMES",
    "STATUS_ORDER",
    "TUNABLES",
    "UNASSIGNED",
    "ClusterStatus",
    "ConfigError",
    "IfaceInfo",
    "NodeConfig",
    "NodeEntry",
    "NodeFlags",
    "NodeStatus",
    "OutputError",
    "PublicAddress",
    "Tunable",
    "TunableError",
    "Tunables",
    "check_iface_name",
    "check_value",
    "flags_text",
    "format_getvar",
    "format_ifaces",
    "format_ifaces_x",
    "format_ip",
    "format_ip_x",
    "format_node_line",
    "format_nodestatus",
    "format_status",
    "format_status_x",
    "ip_sort_key",
    "load_node_config",
    "ntop",
    "parse_address",
    "parse_flags_text",
    "parse_ifaces",
    "parse_ip",
    "parse_listvars",
    "parse_nodes",
    "parse_leader",
    "parse_nodestatus",
    "parse_public_addresses",
    "parse_script_options",
    "parse_status",
    "parse_tunables",
    "parse_value",
    "truthy",
    "write_nodes",
    "write_public_addresses",
    "write_script_options",
    "write_tunables",
]
