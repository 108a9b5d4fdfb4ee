"""The daemon's side of event scripts: run one event, log what ctdbd logs.

startup, takeip, releaseip and ipreallocated all go through here, so their
scripts' output reaches the log in one shape; the monitor event has its own
handling of timeouts (see harness.failover.monitor).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.ctdb import NodeConfig
from harness.failover.eventscripts import run_event
from harness.failover.log import NOTICE, log


async def run_node_event(cfg: NodeConfig, event: str, args: list[str],
                         only: Callable[[str], bool] | None = None) -> bool:
    """Run event from the node's events dir (none there: success); False on
    failure. `only` selects scripts by name (see eventscripts.run_event)."""
    d = cfg.events_dir
    if d is None or not d.is_dir():
        return True
    res = await run_event(d, event, args, cfg.tunables["EventScriptTimeout"], only=only)
    for line in res.log_lines():
        log.log(NOTICE, "%s", line)
    if not res.ok:
        log.error("%s event failed: %s", event, res.describe())
    return res.ok
