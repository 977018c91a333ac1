"""One ingest per lake: two ingests writing the same checkpoints would corrupt each other's
offset logs, so the second one is refused (``scm.lake_lock``: a file lock that the kernel
drops when the process dies, at ``SCM_LAKE/_checkpoints/ingest.lock``).
"""

from __future__ import annotations

from scm.lake_lock import LakeBusy, LakeLock


class IngestAlreadyRunning(LakeBusy):
    """Another ingest holds the lake's lock (callers such as ``scm refresh`` may skip)."""


class IngestLock(LakeLock):
    """An exclusive, non-blocking lock on one lake's ingest; use as a context manager."""

    name = "ingest"
    busy = IngestAlreadyRunning
    advice = "stop it first"
