"""Dagster wiring of the platform: ``orchestration.definitions:defs`` (see docs/orchestration.md).

Only wiring lives here; every asset calls the ``ingest`` and ``transforms`` functions the
``scm`` commands call.
"""
