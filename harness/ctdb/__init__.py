"""CTDB's own formats, shared by both implementations and the harness.

`flags` (node flags and their names), `tunables` (4.17's table, ranges and
defaults), `config` (the files under /etc/ctdb: nodes, public_addresses,
ctdb.tunables, script.options - readers and checked writers) and `output`
(`ctdb status/ip/ifaces` in plain and -X form: the one formatter the native
daemon uses and the one parser that reads both implementations).
"""
