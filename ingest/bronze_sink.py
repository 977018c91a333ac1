"""The bronze sink: one micro-batch of all ``scm.*`` topics → bronze tables + quarantine.

Exactly-once: Spark replays a micro-batch whose offsets were planned but whose commit was
not recorded in the checkpoint. Every Delta write here carries ``txnAppId`` (stable per
query: the query id, which lives in the checkpoint) and ``txnVersion`` (the batch id);
Delta records the pair in the table's log in the same atomic commit as the data and skips
a write whose version it has already seen, so a replay neither duplicates nor loses rows.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import functions as F

from ingest.validation import validate
from scm.contracts import TOPICS, bronze_spark_ddl, quarantine_spark_ddl
from scm.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ingest.progress import ProgressLog

BRONZE_QUERY = "scm_ingest_bronze"
# Rows one validation task handles before a topic gets another task (up to the cores).
ROWS_PER_TASK = 50_000


def create_delta_table(
    spark: SparkSession, path: str, ddl: str, *, auto_compact: bool = False
) -> None:
    """Create an empty Delta table at ``path`` unless one exists (readable before any data).

    ``auto_compact`` suits tables that streaming appends to: once enough small files pile
    up, Delta compacts them right after a write, so readers (the position query, silver)
    do not slow down between two ``scm maintain`` runs.
    """
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL(ddl)
    assert isinstance(schema, StructType)
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if auto_compact:
        builder = builder.property("delta.autoOptimize.autoCompact", "true")
    builder.execute()


def create_bronze_tables(spark: SparkSession, lake: Lake, topics: Iterable[str]) -> None:
    """Bronze tables of ``topics`` and the quarantine, with the contract schema."""
    for topic in topics:
        path = lake.bronze(TOPICS[topic].entity)
        create_delta_table(spark, path, bronze_spark_ddl(topic), auto_compact=True)
    create_delta_table(spark, lake.quarantine, quarantine_spark_ddl(), auto_compact=True)


def append_once(frame: DataFrame, path: str, app_id: str, batch_id: int) -> None:
    """Append ``frame`` unless this (app id, batch id) was already committed to ``path``."""
    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .save(path)
    )


class BronzeSink:
    """``foreachBatch`` target of the bronze query: splits by topic, validates, appends."""

    def __init__(
        self, lake: Lake, topics: Iterable[str], progress: ProgressLog | None = None
    ) -> None:
        self.lake = lake
        self.topics = tuple(topics)
        self.progress = progress
        self._app_id: str | None = None
        self._app_id_ready = threading.Event()

    def bind(self, query_id: str) -> None:
        """Set the writer app id once the query (and so its checkpointed id) is known."""
        self._app_id = f"{BRONZE_QUERY}-{query_id}"
        self._app_id_ready.set()

    @property
    def app_id(self) -> str:
        # The first batch can run before start() has returned the query to us.
        if not self._app_id_ready.wait(timeout=120):
            raise RuntimeError("the bronze sink was never bound to its streaming query")
        assert self._app_id is not None
        return self._app_id

    def commit_microbatch(self, batch: DataFrame, batch_id: int) -> None:
        """Write one micro-batch: valid rows per topic to bronze, rejects to quarantine.

        The raw batch is cached once so Kafka is read once; validation caches each topic's
        screened rows, so JSON is parsed once for the checks and the bronze write.
        """
        app_id = self.app_id
        raw = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            # Skip topics without records in this batch, and give each topic only as many
            # tasks as its rows need: a task costs more to ship than a small topic to check.
            sizes = {row["topic"]: row["count"] for row in raw.groupBy("topic").count().collect()}
            topics = [topic for topic in self.topics if sizes.get(topic)]
            parallelism = batch.sparkSession.sparkContext.defaultParallelism
            frames = {
                topic: raw.where(F.col("topic") == topic).coalesce(
                    max(1, min(parallelism, math.ceil(sizes[topic] / ROWS_PER_TASK)))
                )
                for topic in topics
            }
            with validate(frames) as checked:
                counts = {
                    topic: (sizes[topic] - checked.rejected[topic], checked.rejected[topic])
                    for topic in topics
                }
                writes = [
                    (checked.bronze[topic], self.lake.bronze(TOPICS[topic].entity))
                    for topic in topics
                    if counts[topic][0]
                ]
                if checked.quarantine is not None:
                    writes.append((checked.quarantine, self.lake.quarantine))
                for frame, path in writes:
                    append_once(frame, path, app_id, batch_id)
        finally:
            raw.unpersist()
        if self.progress is not None:
            self.progress.add_counts(
                BRONZE_QUERY,
                batch_id,
                {
                    "valid_rows": sum(valid for valid, _ in counts.values()),
                    "quarantined_rows": sum(rejected for _, rejected in counts.values()),
                    "rows_by_topic": {
                        topic: {"valid": valid, "quarantined": rejected}
                        for topic, (valid, rejected) in counts.items()
                    },
                },
            )
