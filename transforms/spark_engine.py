"""The Spark engine: the SQL models transpiled to Spark SQL, written by delta-spark.

Gold partitions are replaced with ``replaceWhere`` in one commit per table. Silver is kept
current by one Delta stream per bronze event table (``Trigger.AvailableNow``, checkpoint
``_checkpoints/silver_<entity>``); each micro-batch runs the silver models over its rows
(first copy of each event_id) and MERGEs them with insert-when-not-matched on the table's
grain, so a copy of an event that arrives in a later refresh finds its first copy already
there and is dropped. Exactly-once: the checkpoint records which bronze versions were
read; a batch replayed after a crash MERGEs rows that are already there, inserting nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scm.contracts import TOPICS, bronze_spark_ddl, master_spark_ddl
from scm.errors import ScmError
from scm.lake import EVENT_ENTITIES, Lake
from transforms.engine import Engine, SilverUpdate
from transforms.lake_io import delete_path, delta_version, rows_written, table_exists
from transforms.model import GoldTable, Partitions
from transforms.silver import (
    DIMENSIONS,
    FIRST_ARRIVALS,
    REFRESH_ID,
    SILVER_TABLES,
    SilverTable,
    silver_tables_of,
)
from transforms.sql import render, scope_predicate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

_TOPIC_OF_ENTITY = {topic.entity: name for name, topic in TOPICS.items()}
_views = itertools.count()


def stream_name(source: str) -> str:
    """The query name and checkpoint folder of the stream reading ``bronze/<source>``."""
    return f"silver_{source}"


def _silver_rows_sql(table: SilverTable, bronze_view: str, refresh_id: int) -> str:
    text = (
        f"WITH bronze AS (SELECT * FROM {bronze_view}),"
        f" bronze_events AS ({FIRST_ARRIVALS})"
        f" SELECT *, CAST({refresh_id} AS BIGINT) AS {REFRESH_ID} FROM ({table.sql}) AS rows"
    )
    return render(text, "spark", {})


def silver_schema(spark: SparkSession, table: SilverTable) -> StructType:
    """The schema of a silver table: its model run over an empty bronze table."""
    view = f"_empty_bronze_{table.source}"
    spark.createDataFrame(
        [], bronze_spark_ddl(_TOPIC_OF_ENTITY[table.source])
    ).createOrReplaceTempView(view)
    return spark.sql(_silver_rows_sql(table, view, 0)).schema


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
    """``foreachBatch`` target: the silver models over a batch of one bronze table, merged."""

    spark: SparkSession
    lake: Lake
    source: str
    refresh_id: int
    overwrite_first_batch: bool
    inserted: dict[str, int] = field(default_factory=dict)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        session = batch.sparkSession
        view = f"_bronze_batch_{self.source}_{next(_views)}"
        batch.persist().createOrReplaceTempView(view)
        try:
            for table in silver_tables_of(self.source):
                rows = session.sql(_silver_rows_sql(table, view, self.refresh_id))
                if self.overwrite_first_batch and batch_id == 0:
                    added = self._overwrite(table, rows)
                else:
                    added = self._merge(table, rows)
                self.inserted[table.name] = self.inserted.get(table.name, 0) + added
        finally:
            session.catalog.dropTempView(view)
            batch.unpersist()

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


class SparkEngine(Engine):
    """The batch layer on a Spark cluster (see the module doc)."""

    name = "spark"
    dialect = "spark"
    concurrent_writes = 4

    def __init__(self, spark: SparkSession, lake: Lake) -> None:
        super().__init__(lake)
        self.spark = spark

    def relation(self, logical: str) -> str:
        path = self.lake.silver(logical)
        if table_exists(path):
            return f"delta.`{path}`"
        view = f"_empty_{logical}"
        if logical in DIMENSIONS:
            empty = self.spark.createDataFrame([], master_spark_ddl(logical))
        else:
            empty = self.spark.createDataFrame(
                [], silver_schema(self.spark, SILVER_TABLES[logical])
            )
        empty.createOrReplaceTempView(view)
        return view

    def gold_relation(self, name: str) -> str:
        return f"delta.`{self.lake.gold(name)}`"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def gold_frame(self, table: GoldTable, partitions: Partitions, as_of: dt.date) -> DataFrame:
        """The rows of ``partitions`` of ``table``, typed as the table declares."""
        if table.compute is not None:  # inputs to the driver as Arrow, rows back to Spark
            inputs = self.spark.sql(self.render(table.sql, as_of=as_of, partitions=partitions))
            rows = table.computed_rows(inputs.toArrow(), as_of)
            return self.spark.createDataFrame(rows, schema=table.spark_ddl())
        return self.spark.sql(self.render(table.typed_sql(), as_of=as_of, partitions=partitions))

    def write_gold(self, table: GoldTable, partitions: Partitions, as_of: dt.date) -> int:
        if partitions is not None and not partitions:
            return 0
        path = self.lake.gold(table.name)
        writer = (
            self.gold_frame(table, partitions, as_of)
            .write.format("delta")
            .mode("overwrite")
            .partitionBy(*(table.partition_by or []))
        )
        if partitions is None or table.partition_column is None or not table_exists(path):
            writer = writer.option("overwriteSchema", "true")
        else:
            predicate = scope_predicate(table.partition_column, partitions)  # Spark SQL too
            writer = writer.option("replaceWhere", predicate)
        writer.save(path)
        return rows_written(path)

    def update_silver(
        self,
        *,
        refresh_id: int,
        full: bool = False,
        read_versions: Mapping[str, int | None] | None = None,
    ) -> SilverUpdate:
        spark, lake = self.spark, self.lake
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
        inserted = dict.fromkeys(SILVER_TABLES, 0)
        for sink in sinks:
            inserted.update(sink.inserted)
        if full:
            self._clear([t for t, n in inserted.items() if n == 0])
        return SilverUpdate(inserted, versions)

    def _clear(self, names: list[str]) -> None:
        """A full rebuild over an empty bronze table must still clear its silver tables."""
        for name in names:
            empty = self.spark.createDataFrame([], silver_schema(self.spark, SILVER_TABLES[name]))
            empty.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
                self.lake.silver(name)
            )
