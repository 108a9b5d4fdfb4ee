"""A chaos soak in the manner of pacemaker's CTS: random faults from the whole
catalogue, weighted, sometimes several at once, for random durations, with the
invariants audited all the while and each fault's detection and takeover
measured against its bound.

`plan` turns a seed into a fault sequence (pure: the same seed gives the same
sequence), `audit` judges one round on the timeline, `runner` applies a plan
to a running cluster, `shrink` reduces a failing plan, `command` is
`harness chaos`.
"""
