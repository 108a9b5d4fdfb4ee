"""A field cluster's /etc/ctdb turned into what the harness needs to rebuild it.

Developers holding a failover bug from the field usually have the customer's
/etc/ctdb and nothing else.  `import_ctdb_dir` reads it and returns an
ImportedCluster: a validated Topology, the tunables, the script options, the
field -> harness address mapping (to translate the customer's logs), the
cluster lock (informational) and one-line warnings about what the harness
does not reproduce.  Every problem is a CtdbImportError whose text is one
line, ``FILE:LINE: what; how to fix``.

What is read, and the choices made where the harness differs from the field:

* ``nodes`` (required).  Node pnn k becomes harness node k with private
  address 198.18.0.(k+1)/24.  A Topology has no deleted nodes, so a deleted
  node (a ``#`` line) in the middle is *built as an ordinary live node*: that
  keeps every later node's pnn (and so CTDB's IP allocation, which works by
  pnn) the same as in the field; a warning names it, and stopping its daemon
  (``lab.faults.stop_daemon(pnn)``) comes closest to the field.  Deleted
  nodes at the end shift nothing and are dropped.
* ``public_addresses``.  Interfaces keep their names.  Interfaces that share
  an address (``eth2,eth3``) or whose addresses' subnets overlap are one
  network (one switch bridge and one client namespace in the harness); each
  network gets its own harness range, 203.0.113.0/24 then 198.51.100.0/24,
  and a third network is an error.  Addresses keep their order: within a
  network an address keeps its last octet when all of the network's
  addresses share one /24 and no last octet collides with the harness's node
  hosts (1..nodes) or client (254); otherwise they are renumbered, in
  ascending order, to the top of the range just below the client.  Across
  two networks, the one with the higher field addresses gets the higher
  range (203.0.113.0/24), so that the numeric order of all public IPs - the
  order CTDB's allocation algorithms walk them in and ``ctdb ip`` prints them
  in - is the field's.  A prefix of /24 or longer is kept; a shorter one
  becomes /24, the size of the harness ranges.  What cannot be kept: the
  common-prefix distances between addresses of *different* networks, which
  LCP2 uses as costs.  The file is one node's: nodes whose
  public_addresses differ in the field all get this one.
* ``ctdb.tunables``, and ``CTDB_SET_Name=Value`` in ``script.options`` or a
  legacy ``ctdbd.conf``; a name set in several files takes the value of the
  most current one (ctdb.tunables, then script.options, then ctdbd.conf), with
  a warning when they disagree.
* ``script.options`` then ``events/legacy/10.interface.options`` (the order
  10.interface sources them): every other setting is kept as a script option,
  e.g. CTDB_PARTIALLY_ONLINE_INTERFACES.  A legacy ``ctdbd.conf`` was sourced
  by the event scripts too, so its settings are script options of the lowest
  precedence, except CTDB_RECOVERY_LOCK (the cluster lock) and CTDB_NODES /
  CTDB_PUBLIC_ADDRESSES (which name the files read here).
* ``ctdb.conf`` (INI): ``[cluster] cluster lock`` (or the older ``recovery
  lock``) is the cluster lock; options that change failover behaviour and
  that the harness does not reproduce (``[failover] disabled``, ``[legacy]
  start as stopped``, ...) are warnings, and so are unknown sections and keys.

Bonds are not in /etc/ctdb: they are given as ``--bond`` strings (see
`parse_bond_spec`) and applied to the interface of that name.

The package's modules, one step of the import each:

* model: CtdbImportError, ImportedCluster (and saving it), format_mapping;
* bonds: the ``--bond`` / ``[bonds]`` syntax;
* files: reading the files' text - nodes, CTDB_SET_ and ctdb.tunables
  tunables, script options, ctdb.conf;
* addresses: the harness's address plan and public_addresses placed in it,
  with the field -> harness mapping;
* interfaces: the nodes' interfaces, bonded as ``--bond`` says;
* importer: `import_ctdb_dir`, the steps composed.
"""

from harness.ctdb_import.addresses import CLIENT_HOST, PRIVATE_NETWORK, PUBLIC_RANGES
from harness.ctdb_import.bonds import bonds_from_table, parse_bond_spec
from harness.ctdb_import.importer import import_ctdb_dir
from harness.ctdb_import.model import CtdbImportError, ImportedCluster, format_mapping

__all__ = [
    "CLIENT_HOST",
    "PRIVATE_NETWORK",
    "PUBLIC_RANGES",
    "CtdbImportError",
    "ImportedCluster",
    "bonds_from_table",
    "format_mapping",
    "import_ctdb_dir",
    "parse_bond_spec",
]
