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
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from ingest.validation import to_bronze_rows, to_quarantine_rows, with_validation
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

        The raw batch is cached once so Kafka is read once; each topic's validated rows are
        cached too, so JSON is parsed once for both the bronze and the quarantine write.
        """
        app_id = self.app_id
        # The validation plan holds hundreds of expressions per topic: compiling it with
        # whole-stage codegen costs more than it saves on a micro-batch. The batch runs on
        # the stream's own session clone, so this does not reach other queries.
        batch.sparkSession.conf.set("spark.sql.codegen.wholeStage", "false")
        raw = batch.persist(StorageLevel.MEMORY_AND_DISK)
        cached = [raw]
        try:
            # Each task of a validation stage generates code for the whole (large) validation
            # plan, even on an empty Kafka partition: give each topic only as many tasks as
            # its rows need, and skip topics without records in this batch.
            sizes = {row["topic"]: row["count"] for row in raw.groupBy("topic").count().collect()}
            topics = [topic for topic in self.topics if sizes.get(topic)]
            parallelism = batch.sparkSession.sparkContext.defaultParallelism
            validated: dict[str, DataFrame] = {}
            for topic in topics:
                tasks = max(1, min(parallelism, math.ceil(sizes[topic] / ROWS_PER_TASK)))
                rows = raw.where(F.col("topic") == topic).coalesce(tasks)
                validated[topic] = with_validation(rows, topic).persist(
                    StorageLevel.MEMORY_AND_DISK
                )
                cached.append(validated[topic])
            counts = _count_by_topic(validated) if validated else {}  # fills every cache
            valid_rows = {topic: counts[topic][0] for topic in topics if counts[topic][0]}
            quarantined_rows = {topic: counts[topic][1] for topic in topics if counts[topic][1]}
            for topic in valid_rows:
                rows = to_bronze_rows(validated[topic], topic)  # keeps rows without error
                append_once(rows, self.lake.bronze(TOPICS[topic].entity), app_id, batch_id)
            if quarantined_rows:
                rejects = [to_quarantine_rows(validated[t], t) for t in quarantined_rows]
                union = reduce(lambda a, b: a.unionByName(b), rejects)
                append_once(union, self.lake.quarantine, app_id, batch_id)
        finally:
            for frame in cached:
                frame.unpersist()
        if self.progress is not None:
            self.progress.add_counts(
                BRONZE_QUERY,
                batch_id,
                {
                    "valid_rows": sum(valid_rows.values()),
                    "quarantined_rows": sum(quarantined_rows.values()),
                    "rows_by_topic": {
                        topic: {"valid": valid, "quarantined": rejected}
                        for topic, (valid, rejected) in counts.items()
                    },
                },
            )


def _count_by_topic(validated: dict[str, DataFrame]) -> dict[str, tuple[int, int]]:
    """(valid, rejected) rows per topic, computed in a single Spark job."""
    per_topic = [
        frame.select(
            F.lit(topic).alias("topic"),
            F.col("error").isNull().cast("int").alias("is_valid"),
        )
        for topic, frame in validated.items()
    ]
    union = reduce(lambda a, b: a.unionByName(b), per_topic)
    rows: list[Any] = (
        union.groupBy("topic")
        .agg(F.sum("is_valid").alias("valid"), F.count(F.lit(1)).alias("total"))
        .collect()
    )
    counts = {topic: (0, 0) for topic in validated}
    for row in rows:
        counts[row["topic"]] = (int(row["valid"]), int(row["total"]) - int(row["valid"]))
    return counts
