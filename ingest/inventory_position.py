"""The real-time inventory position, ``silver/inventory_position`` (kpis.md).

Grain: one row per (``location_id``, ``sku``). Invariant: ``on_hand`` = the latest
``inventory_snapshot`` by ``event_time`` + the sum of ``inventory_movement`` deltas with
``event_time`` strictly after it (all movements when there is no snapshot), each
``event_id`` counted once.

The bronze query's micro-batch keeps it current (:class:`InventoryPosition`, called by
:class:`ingest.bronze_sink.BronzeSink` right after it appended to ``bronze/inventory``).
The (location, sku) keys the batch touches are recomputed, not incremented, which makes
late and out-of-order events, late snapshots and duplicates converge to the invariant and
a replayed batch a no-op (same input, same answer, nothing changes). They are recomputed
from a **ledger** (``_checkpoints/inventory_ledger``), not from all of bronze: per key, the
events that can still count — the latest snapshot and the movements after it (all
movements while there is none), with their Kafka coordinates. That is a sufficient
history: an event older than the latest snapshot can never count again, whatever arrives
later (a later snapshot only moves the cut forward; a re-sent old event is older too), and
the latest event_time is always kept. So a batch reads one ledger row per touched key
instead of scanning the whole bronze table.

Each batch merges the touched keys' ledger rows, then the positions computed from them. A
crash between the bronze append, the ledger merge and the position merge is harmless:
the replayed batch skips the append (already committed), finds its events in the ledger
already (event_ids count once) and still recomputes and merges its keys.

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
# in an older lake means positions may lag bronze: see InventoryPosition.ensure_ledger).
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

LEDGER_TABLE = "inventory_ledger"  # in _checkpoints/: internal state, not a silver table
# The bronze columns a position is computed from (inventory_positions reads these).
_EVENT_COLUMNS = (
    "event_id", "event_type", "event_time", "on_hand", "quantity_delta",
    "_topic", "_partition", "_offset",
)  # fmt: skip

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


def still_counting(events: DataFrame) -> DataFrame:
    """Inventory events → the ledger: per key, the events that can still count (module doc).

    Rows of ``events`` are bronze-shaped (keys and the event columns); duplicated
    event_ids keep the copy at the lowest Kafka coordinates, as :func:`inventory_positions`.
    """
    first_copy = Window.partitionBy("event_id").orderBy("_topic", "_partition", "_offset")
    latest_snapshot = Window.partitionBy(*KEYS)
    snapshot_key = F.when(
        F.col("event_type") == "inventory_snapshot", F.struct("event_time", "event_id")
    )
    unique = (
        events.withColumn("_copy", F.row_number().over(first_copy))
        .where(F.col("_copy") == 1)
        .withColumn("_cut", F.max(snapshot_key).over(latest_snapshot))
    )
    counts = (
        F.col("_cut").isNull()
        | (F.struct("event_time", "event_id") == F.col("_cut"))
        # Later events of any type: only movements add, but each may be the latest event.
        | (F.col("event_time") > F.col("_cut.event_time"))
    )
    return (
        unique.where(counts)
        .groupBy(*KEYS)
        .agg(F.sort_array(F.collect_list(F.struct(*_EVENT_COLUMNS))).alias("events"))
    )


def ledger_events(ledger: DataFrame) -> DataFrame:
    """Ledger rows → one row per event, in the bronze columns the position reads."""
    return ledger.select(*KEYS, F.explode("events").alias("e")).select(*KEYS, "e.*")


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
    """Keeps the ledger and the position table current for the bronze rows a micro-batch
    appended (see the module doc)."""

    def __init__(self, lake: Lake, settings: Settings) -> None:
        self.bronze_path = lake.bronze("inventory")
        self.ledger_path = lake.checkpoint(LEDGER_TABLE)
        self.path = lake.silver(POSITION_TABLE)
        self.settings = settings
        # A previous run may have left alerts pending; afterwards only a batch that starts
        # a stockout (or a failed publish) can, which saves a table scan per batch.
        self._outbox_may_have_alerts = True

    def update(self, spark: SparkSession, events: DataFrame | None) -> dict[str, int]:
        """Fold ``events`` (rows now in bronze; None: none) into the ledger, merge the
        positions that changed, publish pending alerts; return the progress counts."""
        changed = 0
        if events is not None:
            batch = events.select(*KEYS, *_EVENT_COLUMNS)
            touched = F.broadcast(batch.select(*KEYS).distinct())
            known = spark.read.format("delta").load(self.ledger_path)
            known = ledger_events(known.join(touched, list(KEYS), "left_semi"))
            changed = self._apply(spark, batch.unionByName(known), touched)
        published = self.publish_pending_alerts(spark) if self._outbox_may_have_alerts else 0
        return {"positions_changed": changed, "alerts_published": published}

    def ensure_ledger(self, spark: SparkSession) -> int:
        """Build the ledger from the whole bronze history unless it exists: on a new lake
        (nothing to read), or on one from before the ledger, whose positions a query of
        their own kept and may have left behind bronze. The positions are merged first
        and the ledger is created last, in one commit: a crash in between redoes this at
        the next start. Returns how many positions changed."""
        from delta.tables import DeltaTable

        if DeltaTable.isDeltaTable(spark, self.ledger_path):
            return 0
        history = spark.read.format("delta").load(self.bronze_path)
        ledger = still_counting(history.select(*KEYS, *_EVENT_COLUMNS)).persist()
        try:
            changed = self._merge_positions(spark, ledger, None)
            ledger.write.format("delta").mode("overwrite").save(self.ledger_path)
        finally:
            ledger.unpersist()
        return changed

    def _apply(self, spark: SparkSession, events: DataFrame, touched: DataFrame) -> int:
        ledger = still_counting(events).persist()
        try:
            self._merge(spark, self.ledger_path, ledger)
            return self._merge_positions(spark, ledger, touched)
        finally:
            ledger.unpersist()

    def _merge_positions(
        self, spark: SparkSession, ledger: DataFrame, touched: DataFrame | None
    ) -> int:
        """Merge the positions of ``ledger``'s keys (``touched``: those keys; None: all)
        that differ from the table; return how many."""
        current = spark.read.format("delta").load(self.path)
        if touched is not None:
            current = current.join(touched, list(KEYS), "left_semi")
        new = inventory_positions(ledger_events(ledger))
        changes = with_position_changes(new, current).persist()
        try:
            summary = changes.agg(
                F.count(F.lit(1)).alias("changed"),
                F.count(F.when(~F.col("stockout_alert_sent"), True)).alias("new_stockouts"),
            ).first()
            changed = int(summary["changed"]) if summary else 0
            if changed:
                self._merge(spark, self.path, changes)
            if summary and summary["new_stockouts"]:
                self._outbox_may_have_alerts = True
        finally:
            changes.unpersist()
        return changed

    def _merge(self, spark: SparkSession, path: str, changes: DataFrame) -> None:
        """Upsert ``changes`` by key into the small keyed table at ``path``: the table is
        rewritten with the changed rows in place of the old ones, in one job and one
        commit. A Delta MERGE took ~2.2 s a batch for it (two passes and a join); it would
        rewrite the same file or two of a table this small anyway."""
        for attempt in range(1, _MERGE_ATTEMPTS + 1):
            try:
                current = spark.read.format("delta").load(path)
                kept = current.join(changes.select(*KEYS), list(KEYS), "left_anti")
                rows = kept.unionByName(changes.select(*current.columns))
                rows.coalesce(1).write.format("delta").mode("overwrite").save(path)
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
