"""The lake's refresh lock as a Dagster step takes it: waiting, with a log line.

A Dagster silver or gold step writes what ``scm refresh`` writes, so it holds the same lock
(:class:`scm.lake_lock.RefreshLock`). A step meeting a running CLI refresh waits for it
(a scheduled run should not fail because someone refreshed by hand) and fails with the
holder named only if the wait outlasts :data:`WAIT_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from scm.lake_lock import RefreshLock
from scm.settings import Settings

WAIT_SECONDS = 30 * 60.0


@contextmanager
def refresh_lock(context: dg.AssetExecutionContext, settings: Settings) -> Iterator[RefreshLock]:
    """Hold the lake's refresh lock for the body of one step."""
    lock = RefreshLock.for_settings(
        settings, holder=f"Dagster run {context.run.run_id[:8]} step {context.op_def.name}"
    )

    def _log(holder: str) -> None:
        context.log.info(f"waiting for the refresh running on this lake ({holder})")

    with lock.acquire(wait_seconds=WAIT_SECONDS, on_wait=_log):
        yield lock
