"""Kafka → bronze Delta (and the real-time inventory position) with Spark Structured Streaming.

``run_ingest`` is ``scm ingest``; ``start_ingest`` starts the same queries on a given
Spark session and returns an :class:`IngestRun` (for tests, Dagster and benchmarks).
See docs/ingest.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.command import run_ingest
    from ingest.job import IngestRun, start_ingest
    from ingest.lock import IngestAlreadyRunning

__all__ = ["IngestAlreadyRunning", "IngestRun", "run_ingest", "start_ingest"]

_EXPORTS = {
    "run_ingest": "ingest.command",
    "start_ingest": "ingest.job",
    "IngestRun": "ingest.job",
    "IngestAlreadyRunning": "ingest.lock",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing ingest (or ingest.maintenance) does not import pyspark.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
