"""Keep silver current with bronze: exactly the new bronze rows, each event once.

One Delta stream per bronze event table (``Trigger.AvailableNow``, checkpoint
``_checkpoints/silver_<entity>``) feeds the silver tables built from it. Each micro-batch is
deduplicated by ``event_id`` and MERGEd into silver with insert-when-not-matched on the
table's grain, so a copy of an event that arrives in a later refresh finds its first copy
already there and is dropped: deduplication spans all history, not one batch. Rows are
stamped with the refresh that inserted them (``_refresh_id``), which is how the gold step
finds what changed, even after a crash between the two steps.

Exactly-once: the checkpoint records which bronze versions were read; a batch replayed
after a crash MERGEs rows that are already there, which inserts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from scm.contracts import TOPICS, bronze_spark_ddl
from scm.errors import ScmError
from scm.lake import EVENT_ENTITIES, Lake
from transforms.lake_io import delete_path, delta_version, rows_written, table_exists
from transforms.silver import (
    REFRESH_ID,
    SILVER_TABLES,
    SilverTable,
    deduplicate_events,
    silver_tables_of,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

_TOPIC_OF_ENTITY = {topic.entity: name for name, topic in TOPICS.items()}


def stream_name(source: str) -> str:
    """The query name and checkpoint folder of the stream reading ``bronze/<source>``."""
    return f"silver_{source}"


def silver_schema(spark: SparkSession, table: SilverTable) -> StructType:
    """The schema of a silver table, derived from the bronze contract through its builder."""
    empty = spark.createDataFrame([], bronze_spark_ddl(_TOPIC_OF_ENTITY[table.source]))
    return table.build(empty).withColumn(REFRESH_ID, F.lit(0).cast("bigint")).schema


def create_silver_tables(spark: SparkSession, lake: Lake) -> None:
    """Create every silver event table that does not exist yet (empty, readable)."""
    from delta.tables import DeltaTable

    for table in SILVER_TABLES.values():
        if not table_exists(lake.silver(table.name)):
            DeltaTable.createIfNotExists(spark).location(lake.silver(table.name)).addColumns(
                silver_schema(spark, table)
            ).execute()


@dataclass
class _SilverSink:
    """``foreachBatch`` target: deduplicate a batch of one bronze table, merge into silver."""

    spark: SparkSession
    lake: Lake
    source: str
    refresh_id: int
    overwrite_first_batch: bool
    inserted: dict[str, int] = field(default_factory=dict)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        events = deduplicate_events(batch).persist()
        try:
            for table in silver_tables_of(self.source):
                rows = table.build(events).withColumn(
                    REFRESH_ID, F.lit(self.refresh_id).cast("bigint")
                )
                if self.overwrite_first_batch and batch_id == 0:
                    added = self._overwrite(table, rows)
                else:
                    added = self._merge(table, rows)
                self.inserted[table.name] = self.inserted.get(table.name, 0) + added
        finally:
            events.unpersist()

    def _merge(self, table: SilverTable, rows: DataFrame) -> int:
        from delta.tables import DeltaTable

        condition = " and ".join(f"silver.{key} = batch.{key}" for key in table.keys)
        metrics = (
            DeltaTable.forPath(self.spark, self.lake.silver(table.name))
            .alias("silver")
            .merge(rows.alias("batch"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
        return int(metrics.first()["num_inserted_rows"])  # type: ignore[index]

    def _overwrite(self, table: SilverTable, rows: DataFrame) -> int:
        path = self.lake.silver(table.name)
        rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
        return rows_written(path)


@dataclass(frozen=True)
class SilverUpdate:
    """Rows inserted per silver table, and the bronze versions that were read up to."""

    inserted: dict[str, int]
    bronze_versions: dict[str, int | None]


def update_silver(
    spark: SparkSession,
    lake: Lake,
    *,
    refresh_id: int,
    full: bool = False,
    read_versions: Mapping[str, int | None] | None = None,
) -> SilverUpdate:
    """Catch silver up with bronze; return what was inserted.

    ``read_versions`` are bronze versions a previous update has read completely: a bronze
    table still at that version has nothing new, and its stream is not even started (a
    refresh without new data then costs no Spark job). ``full`` forgets what was read (drops
    the streams' checkpoints) and replaces every silver table with a rebuild from all of
    bronze: the backfill path after a logic change.
    """
    create_silver_tables(spark, lake)
    # Versions before the streams start: each stream reads at least up to them.
    versions = {source: delta_version(lake.bronze(source)) for source in EVENT_ENTITIES}
    sinks: list[_SilverSink] = []
    queries = []
    for source in EVENT_ENTITIES:
        if full:
            delete_path(spark, lake.checkpoint(stream_name(source)))
        if versions[source] is None:
            continue
        if not full and read_versions and read_versions.get(source) == versions[source]:
            continue
        sink = _SilverSink(spark, lake, source, refresh_id, overwrite_first_batch=full)
        sinks.append(sink)
        queries.append(
            spark.readStream.format("delta")
            # bronze is append-only; a rewrite that changes data is not new events.
            .option("skipChangeCommits", "true")
            .load(lake.bronze(source))
            .writeStream.queryName(stream_name(source))
            .option("checkpointLocation", lake.checkpoint(stream_name(source)))
            .foreachBatch(sink)
            .trigger(availableNow=True)
            .start()
        )
    # Started together, awaited together: each stream's planning and commits overlap.
    failures = []
    for query in queries:
        try:
            query.awaitTermination()
        except Exception as error:  # the JVM's message is multi-line; keep its first cause
            from ingest.job import query_failure_reason

            failures.append(f"{query.name}: {query_failure_reason(error)}")
    if failures:
        raise ScmError(f"silver update failed: {'; '.join(failures)}")
    inserted = {name: 0 for name in SILVER_TABLES}
    for sink in sinks:
        inserted.update(sink.inserted)
    if full:
        _empty_tables_not_rebuilt(spark, lake, [t for t, n in inserted.items() if n == 0])
    return SilverUpdate(inserted, versions)


def _empty_tables_not_rebuilt(spark: SparkSession, lake: Lake, names: list[str]) -> None:
    """A full rebuild over an empty bronze table must still clear its silver tables."""
    for name in names:
        empty = spark.createDataFrame([], silver_schema(spark, SILVER_TABLES[name]))
        empty.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            lake.silver(name)
        )


def read_dimension(spark: SparkSession, lake: Lake, entity: str) -> DataFrame:
    """A silver dimension, or an empty frame with its contract columns when none was loaded."""
    from scm.contracts import master_spark_ddl

    if table_exists(lake.silver(entity)):
        return spark.read.format("delta").load(lake.silver(entity))
    return spark.createDataFrame([], master_spark_ddl(entity))
