"""The streamed tables (bronze, the quarantine, the inventory position), created empty by
delta-rs before the first micro-batch, so every table is readable from the start.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from scm.contracts import TOPICS, bronze_arrow_schema, quarantine_arrow_schema
from scm.lake import Lake

# Delta writes a checkpoint synchronously after every ``checkpointInterval``-th commit (10
# by default): with a commit per topic per micro-batch, that was a checkpoint in most
# batches, 1-1.5 s each. Readers replay at most this many small JSON commits instead, and
# ``scm maintain`` (nightly) writes a checkpoint off the hot path.
STREAMED_TABLE_PROPERTIES = {"delta.checkpointInterval": "100"}


def create_delta_table(path: str, schema: pa.Schema) -> None:
    """Create an empty Delta table at ``path`` unless one exists (readable before any data).

    Created by delta-rs: a commit of milliseconds, where delta-spark's
    ``createIfNotExists`` took ~1 s per table on a fresh JVM (6.4 s for the seven tables
    of a new lake, before its first batch). The contract's Arrow schemas are the exact
    equivalents of the Spark types the sink writes. No auto compaction: Delta runs it
    synchronously after the write, inside the micro-batch; ``scm maintain`` and the nightly
    maintenance schedule compact off the hot path, and ``scm.spark`` turns it off for
    tables that earlier versions created with it. A table of an older lake gets
    ``STREAMED_TABLE_PROPERTIES`` here too, in one commit, the first time.
    """
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        DeltaTable.create(path, schema, mode="ignore", configuration=STREAMED_TABLE_PROPERTIES)
        return
    table = DeltaTable(path)
    configuration = table.metadata().configuration
    if any(configuration.get(key) != value for key, value in STREAMED_TABLE_PROPERTIES.items()):
        table.alter.set_table_properties(STREAMED_TABLE_PROPERTIES)


def create_bronze_tables(lake: Lake, topics: Iterable[str]) -> None:
    """Bronze tables of ``topics`` and the quarantine, with the contract schema."""
    for topic in topics:
        create_delta_table(lake.bronze(TOPICS[topic].entity), bronze_arrow_schema(topic))
    create_delta_table(lake.quarantine, quarantine_arrow_schema())
