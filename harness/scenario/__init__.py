"""Scenario files: a failover bug written down in TOML, replayed on each
implementation, and collected by pytest as a regression test.

    harness run tests/scenarios/files/scenario_flap.toml --backend native

One job per module:

    model         the plain data of a scenario (steps, bounds, node references)
    values        checked values; every mistake is one ScenarioError line
    steps         the [[steps]] reader (ids, references, the fault catalogue)
    loader        a TOML file -> model (top-level keys, topology, tunables)
    references    what the file's names mean on a run: roles, `after`, bounds
    fault_steps   the fault and undo steps, and the background undo
    expectations  the expectation steps: wait on the timeline, within bounds
    runner        one scenario on one implementation: the lab, the step loop,
                  invariants, artifacts
    report        what a run found: per-step lines, summary.json
    command       `harness run FILE [--backend NAME] [--out DIR]`
    collect       the pytest items (scenario_*.toml under tests/)

README.md, section "Scenario files", documents the format.
"""
