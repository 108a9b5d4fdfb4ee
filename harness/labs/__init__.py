"""Lasting labs: a cluster that stays up after the command that started it.

`harness up` starts a supervisor process that owns one lab (its run, its
running cluster, the recorders and the fault catalogue) until `harness
down`; the other lab commands find it by name and either talk to it over
its socket (faults) or act directly on what it published (shells, the
implementation's CLI, the timeline journal).

    state.py       a lab's files in its run's state dir; lookup by name
    control.py     the supervisor's socket protocol, both ends
    supervisor.py  the process that owns a lab, and starting one
    journal.py     the timeline on disk (the one import of the recorders)
    access.py      entering a node, client or switch; the CLI on a node
    watch.py       the timeline as one readable line per event
    report.py      per fault: detection, takeover, client outage (save)
    handover.py    a failed test's cluster kept running (--keep-on-failure)
    commands.py    the `harness` subcommands
"""
