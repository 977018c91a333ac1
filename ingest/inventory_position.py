"""The real-time inventory position, ``silver/inventory_position`` (kpis.md).

Grain: one row per (``location_id``, ``sku``). Invariant: ``on_hand`` = the latest
``inventory_snapshot`` by ``event_time`` + the sum of ``inventory_movement`` deltas with
``event_time`` strictly after it (all movements when there is no snapshot), each
``event_id`` counted once.

The bronze query's micro-batch keeps it current (:class:`InventoryPosition`, called by
:class:`ingest.bronze_sink.BronzeSink` right after it appended to ``bronze/inventory``):
the (location, sku) keys the batch touches are recomputed from the *full* bronze history
of those keys and merged. Recomputing instead of adding deltas makes late and out-of-order
events, late snapshots and duplicates converge to the invariant with no extra state, and
makes a replayed batch a no-op (same input, same answer, nothing changes). A crash between
the bronze append and the merge is harmless too: the replayed batch skips the append
(already committed) and still recomputes its keys.

Stockout alerts use the table as an outbox: the merge that takes a position from > 0 to
<= 0 stores a deterministic alert id with ``stockout_alert_sent = false``; after the merge
the pending alerts are produced to Kafka and then marked sent. A replayed batch finds the
position unchanged, so it raises no second alert.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pyspark.sql import Window
from pyspark.sql import functions as F

from ingest.alerts import StockoutAlert, publish_stockouts
from scm.lake import Lake
from scm.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("scm.ingest")

# The streaming query that kept the position before the bronze batch did (its checkpoint
# in an older lake means positions may lag bronze: see InventoryPosition.catch_up).
LEGACY_POSITION_QUERY = "scm_inventory_position"
POSITION_TABLE = "inventory_position"
KEYS = ("location_id", "sku")

POSITION_DDL = ", ".join(
    [
        "location_id STRING NOT NULL",
        "sku STRING NOT NULL",
        "on_hand BIGINT NOT NULL",
        "last_event_time TIMESTAMP",  # latest event_time counted: the position is as of then
        "updated_at TIMESTAMP",  # when the streaming job last changed this row
        "stockout_since TIMESTAMP",  # last_event_time when on_hand went from > 0 to <= 0
        "stockout_alert_id STRING",  # deterministic event_id of that stockout alert
        "stockout_alert_sent BOOLEAN",  # outbox flag: false until the alert is in Kafka
    ]
)

_MERGE_ATTEMPTS = 4


def inventory_positions(events: DataFrame) -> DataFrame:
    """Bronze inventory rows → (location_id, sku, on_hand, last_event_time).

    ``events`` must hold the complete history of every key it contains. Duplicated
    event_ids count once (the copy at the lowest Kafka coordinates is kept); among
    snapshots at the same event_time the highest event_id wins, so the answer never
    depends on arrival order.
    """
    first_copy = Window.partitionBy("event_id").orderBy("_topic", "_partition", "_offset")
    unique = (
        events.withColumn("_copy", F.row_number().over(first_copy))
        .where(F.col("_copy") == 1)
        .select(*KEYS, "event_id", "event_type", "event_time", "on_hand", "quantity_delta")
    )
    latest_snapshots = (
        unique.where(F.col("event_type") == "inventory_snapshot")
        .groupBy(*KEYS)
        .agg(
            F.max_by(F.struct("event_time", "on_hand"), F.struct("event_time", "event_id")).alias(
                "snapshot"
            )
        )
    )
    counted_movement = (F.col("event_type") == "inventory_movement") & (
        F.col("snapshot").isNull() | (F.col("event_time") > F.col("snapshot.event_time"))
    )
    return (
        unique.join(latest_snapshots, list(KEYS), "left")
        .groupBy(*KEYS)
        .agg(
            F.first("snapshot.on_hand", ignorenulls=True).alias("snapshot_on_hand"),
            F.sum(F.when(counted_movement, F.col("quantity_delta"))).alias("moved"),
            F.max("event_time").alias("last_event_time"),
        )
        .select(
            *KEYS,
            (
                F.coalesce(F.col("snapshot_on_hand").cast("bigint"), F.lit(0))
                + F.coalesce(F.col("moved").cast("bigint"), F.lit(0))
            ).alias("on_hand"),
            "last_event_time",
        )
    )


def stockout_alert_id(location_id: Any, sku: Any, event_time: Any) -> Any:
    """Deterministic alert event_id from (location, sku, time) as a Spark expression."""
    key = F.concat_ws(
        "|", F.lit("stockout"), location_id, sku,
        F.date_format(event_time, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"),
    )  # fmt: skip
    return F.concat(F.lit("stockout-"), F.substring(F.sha2(key, 256), 1, 32))


def with_position_changes(new: DataFrame, current: DataFrame) -> DataFrame:
    """Rows of ``new`` positions that differ from ``current``, in the table's columns.

    A key whose stored on_hand was > 0 and is now <= 0 starts a stockout (a new alert,
    pending); back above 0 clears it; otherwise the stored stockout is kept. A key seen
    for the first time has no earlier level, so it cannot *become* stocked out.
    """
    old = current.select(
        *KEYS,
        F.col("on_hand").alias("old_on_hand"),
        F.col("last_event_time").alias("old_last_event_time"),
        F.col("stockout_since").alias("old_stockout_since"),
        F.col("stockout_alert_id").alias("old_stockout_alert_id"),
        F.col("stockout_alert_sent").alias("old_stockout_alert_sent"),
    )
    joined = new.join(old, list(KEYS), "left")
    is_changed = ~(
        F.col("on_hand").eqNullSafe(F.col("old_on_hand"))
        & F.col("last_event_time").eqNullSafe(F.col("old_last_event_time"))
    )
    starts_stockout = (F.col("old_on_hand") > 0) & (F.col("on_hand") <= 0)
    restocked = F.col("on_hand") > 0
    return joined.where(is_changed).select(
        *KEYS,
        "on_hand",
        "last_event_time",
        F.current_timestamp().alias("updated_at"),
        F.when(starts_stockout, F.col("last_event_time"))
        .when(restocked, F.lit(None))
        .otherwise(F.col("old_stockout_since"))
        .alias("stockout_since"),
        F.when(
            starts_stockout,
            stockout_alert_id(F.col("location_id"), F.col("sku"), F.col("last_event_time")),
        )
        .when(restocked, F.lit(None))
        .otherwise(F.col("old_stockout_alert_id"))
        .alias("stockout_alert_id"),
        F.when(starts_stockout, F.lit(False))
        .when(restocked, F.lit(None))
        .otherwise(F.col("old_stockout_alert_sent"))
        .alias("stockout_alert_sent"),
    )


class InventoryPosition:
    """Keeps the position table current for the bronze rows a micro-batch appended."""

    def __init__(self, lake: Lake, settings: Settings) -> None:
        self.bronze_path = lake.bronze("inventory")
        self.path = lake.silver(POSITION_TABLE)
        self.settings = settings
        # A previous run may have left alerts pending; afterwards only a batch that starts
        # a stockout (or a failed publish) can, which saves a table scan per batch.
        self._outbox_may_have_alerts = True

    def update(self, spark: SparkSession, events: DataFrame | None) -> dict[str, int]:
        """Recompute the keys of ``events`` (rows now in bronze; None: none), merge the
        changed rows, publish pending alerts; return the counts for the progress log."""
        changed = 0
        if events is not None:
            # Cached: both joins below use the keys, and the batch should be read once.
            touched = events.select(*KEYS).distinct().persist()
            try:
                changed = self._recompute(spark, F.broadcast(touched))
            finally:
                touched.unpersist()
        published = self.publish_pending_alerts(spark) if self._outbox_may_have_alerts else 0
        return {"positions_changed": changed, "alerts_published": published}

    def catch_up(self, spark: SparkSession) -> int:
        """Recompute every key from the whole bronze history (a lake whose positions were
        kept by a query of their own may lag bronze); return how many rows changed."""
        keys = spark.read.format("delta").load(self.bronze_path).select(*KEYS).distinct()
        return self._recompute(spark, keys)

    def _recompute(self, spark: SparkSession, touched: DataFrame) -> int:
        history = spark.read.format("delta").load(self.bronze_path)
        history = history.join(touched, list(KEYS), "left_semi")
        current = spark.read.format("delta").load(self.path)
        current = current.join(touched, list(KEYS), "left_semi")
        changes = with_position_changes(inventory_positions(history), current).persist()
        try:
            summary = changes.agg(
                F.count(F.lit(1)).alias("changed"),
                F.count(F.when(~F.col("stockout_alert_sent"), True)).alias("new_stockouts"),
            ).first()
            changed = int(summary["changed"]) if summary else 0
            if changed:
                self._merge(spark, changes)
            if summary and summary["new_stockouts"]:
                self._outbox_may_have_alerts = True
        finally:
            changes.unpersist()
        return changed

    def _merge(self, spark: SparkSession, changes: DataFrame) -> None:
        from delta.tables import DeltaTable

        columns = [field.name for field in changes.schema.fields]
        condition = " and ".join(f"t.{key} = s.{key}" for key in KEYS)
        for attempt in range(1, _MERGE_ATTEMPTS + 1):
            try:
                (
                    DeltaTable.forPath(spark, self.path)
                    .alias("t")
                    .merge(changes.alias("s"), condition)
                    .whenMatchedUpdate(set={c: f"s.{c}" for c in columns})
                    .whenNotMatchedInsert(values={c: f"s.{c}" for c in columns})
                    .execute()
                )
                return
            except Exception as error:
                # Only `scm maintain` (OPTIMIZE) can commit to this table concurrently;
                # the recomputed rows are still right, so just try again.
                if "Concurrent" not in type(error).__name__ + str(error)[:500]:
                    raise
                if attempt == _MERGE_ATTEMPTS:
                    raise
                time.sleep(0.5 * attempt)

    def publish_pending_alerts(self, spark: SparkSession) -> int:
        """Produce every stockout alert not yet sent, then mark them sent (the outbox)."""
        from delta.tables import DeltaTable

        pending: list[Any] = (
            spark.read.format("delta")
            .load(self.path)
            .where(F.col("stockout_alert_sent") == F.lit(False))
            .select(*KEYS, "on_hand", "stockout_since", "stockout_alert_id")
            .collect()
        )
        if not pending:
            self._outbox_may_have_alerts = False
            return 0
        alerts = [
            StockoutAlert(
                event_id=row["stockout_alert_id"],
                event_time=row["stockout_since"],
                location_id=row["location_id"],
                sku=row["sku"],
                on_hand=int(row["on_hand"]),
            )
            for row in pending
        ]
        try:
            publish_stockouts(self.settings, alerts)
        except Exception as error:  # Kafka down: the outbox keeps them for the next batch
            log.warning("could not publish %d stockout alert(s): %s", len(alerts), error)
            return 0
        ids = [alert.event_id for alert in alerts]
        DeltaTable.forPath(spark, self.path).update(
            condition=F.col("stockout_alert_id").isin(ids) & ~F.col("stockout_alert_sent"),
            set={"stockout_alert_sent": F.lit(True)},
        )
        self._outbox_may_have_alerts = False
        return len(alerts)


def create_position_table(spark: SparkSession, lake: Lake) -> None:
    from ingest.bronze_sink import create_delta_table

    create_delta_table(spark, lake.silver(POSITION_TABLE), POSITION_DDL)
