"""``scm maintain``: keep every Delta table of the lake fast to read and bounded on disk.

Per table (bronze, silver, gold): OPTIMIZE compacts the many small files micro-batches
write; a checkpoint lets readers (Spark, delta-rs, DuckDB) load the log from one Parquet
file instead of replaying every JSON commit; VACUUM deletes files no longer referenced,
older than the retention. Retention below 168 hours (Delta's own safety floor) is refused:
a streaming reader that is behind, or a long-running query, may still need those files.
OPTIMIZE only rewrites (``dataChange=false``), so on a folder lake it is safe while the
ingest runs. On an object store it is not: Spark's S3 commits exclude other writers within
one driver only, so ``scm maintain`` there holds the ingest and refresh locks and refuses
to run beside either (docs/scale-out.md, "Delta on S3: one writer per table").
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.lock import IngestLock
from scm.errors import ScmError
from scm.lake import Lake, Layer
from scm.lake_lock import RefreshLock
from scm.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_RETENTION_HOURS = 168
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one table."""

    table: str
    files_removed: int
    files_added: int
    checkpoint_version: int
    files_vacuumed: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.table}: optimize {self.files_removed} -> {self.files_added} files, "
            f"checkpoint at version {self.checkpoint_version}, "
            f"vacuum deleted {self.files_vacuumed} files ({self.seconds:.1f} s)"
        )


def validate_retention(retention_hours: int) -> None:
    if retention_hours < MIN_RETENTION_HOURS:
        raise ScmError(
            f"--retention-hours {retention_hours} is too short: use at least "
            f"{MIN_RETENTION_HOURS} (7 days); streaming readers and time travel need older files"
        )


def maintain_table(
    spark: SparkSession, path: str, *, name: str, retention_hours: int
) -> TableMaintenance:
    """OPTIMIZE, checkpoint and VACUUM one Delta table."""
    from delta.tables import DeltaTable

    validate_retention(retention_hours)
    started = time.monotonic()
    table = DeltaTable.forPath(spark, path)
    metrics: Any = table.optimize().executeCompaction().collect()[0]["metrics"]
    jvm: Any = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    delta_log.checkpoint()
    version = int(delta_log.unsafeVolatileSnapshot().version())
    # VACUUM lists the table's folders with this many tasks (Spark's default is 10,000,
    # which alone takes a minute per table on two cores); the table's own size decides.
    listing = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    previous = spark.conf.get(listing, None)
    spark.conf.set(listing, str(max(2, spark.sparkContext.defaultParallelism)))
    try:
        table.vacuum(float(retention_hours))
    finally:
        if previous is None:
            spark.conf.unset(listing)
        else:
            spark.conf.set(listing, previous)
    vacuumed = 0
    for entry in table.history(2).collect():
        if entry["operation"] == "VACUUM END":
            vacuumed = int((entry["operationMetrics"] or {}).get("numDeletedFiles", 0))
    return TableMaintenance(
        table=name,
        files_removed=int(metrics["numFilesRemoved"]),
        files_added=int(metrics["numFilesAdded"]),
        checkpoint_version=version,
        files_vacuumed=vacuumed,
        seconds=time.monotonic() - started,
    )


def run_maintenance(settings: Settings, *, retention_hours: int = MIN_RETENTION_HOURS) -> int:
    """``scm maintain``: every table of every layer; one line per table."""
    validate_retention(retention_hours)
    lake = Lake.at(settings.lake)
    tables = [(layer, name) for layer in LAYERS for name in lake.tables(layer)]
    if not tables:
        print(f"no Delta tables under {lake.root}: nothing to maintain", flush=True)
        return 0
    with contextlib.ExitStack() as locks:
        if not lake.is_local:
            for lock in (IngestLock, RefreshLock):
                locks.enter_context(lock.for_settings(settings, holder="scm maintain"))
        _maintain_tables(settings, tables, retention_hours)
    print(f"maintained {len(tables)} tables (vacuum retention {retention_hours} h)", flush=True)
    return 0


def _maintain_tables(
    settings: Settings, tables: list[tuple[Layer, str]], retention_hours: int
) -> None:
    from scm.spark import spark_session

    lake = Lake.at(settings.lake)
    spark = spark_session(settings, app_name="scm-maintain")
    for layer, name in tables:
        result = maintain_table(
            spark, lake.table(layer, name), name=f"{layer}/{name}", retention_hours=retention_hours
        )
        print(result.line(), flush=True)
