"""The real-time inventory position, ``silver/inventory_position`` (kpis.md).

Grain: one row per (``location_id``, ``sku``). Invariant: ``on_hand`` = the latest
``inventory_snapshot`` by ``event_time`` + the sum of ``inventory_movement`` deltas with
``event_time`` strictly after it (all movements when there is no snapshot), each
``event_id`` counted once.

The bronze query's micro-batch keeps it current (:class:`InventoryPosition`, called by
:class:`ingest.bronze_sink.BronzeSink` beside its appends, on the same validated rows).
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

The ledger and the position are small keyed tables (one row per location and sku), so the
batch's inventory rows come to the driver as Arrow (one Spark job), DuckDB folds them into
the touched keys' ledger rows and computes their positions, and delta-rs rewrites each
table in one commit (tens of milliseconds; the Spark jobs and two delta-spark commits this
replaced cost 4.6–5.8 s a batch). Each batch rewrites the ledger first, then the positions
that changed. A crash at any point of the bronze appends, the ledger write and the position
write is harmless: the replayed batch skips the appends already committed, finds its events
in the ledger already (event_ids count once) and still recomputes and writes its keys. So
the position may briefly count an event whose bronze append is still running or will be
replayed; it never misses one the batch committed.

Stockout alerts use the table as an outbox: the write that takes a position from > 0 to
<= 0 stores a deterministic alert id with ``stockout_alert_sent = false``; after the write
the pending alerts are produced to Kafka and then marked sent. A replayed batch finds the
position unchanged, so it raises no second alert.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingest.alerts import StockoutAlert, publish_stockouts
from ingest.tables import create_delta_table
from scm.contracts import TOPICS, bronze_arrow_schema
from scm.lake import Lake
from scm.settings import Settings

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("scm.ingest")

# The streaming query that kept the position before the bronze batch did (its checkpoint
# in an older lake means positions may lag bronze: see InventoryPosition.ensure_ledger).
LEGACY_POSITION_QUERY = "scm_inventory_position"
POSITION_TABLE = "inventory_position"
KEYS = ("location_id", "sku")

LEDGER_TABLE = "inventory_ledger"  # in _checkpoints/: internal state, not a silver table
# The bronze columns a position is computed from.
EVENT_COLUMNS = (
    "event_id", "event_type", "event_time", "on_hand", "quantity_delta",
    "_topic", "_partition", "_offset",
)  # fmt: skip
INVENTORY_TOPIC = next(name for name, topic in TOPICS.items() if topic.entity == "inventory")
# Those columns with their bronze types (the contract's), whatever a caller hands in.
_EVENT_TYPES = pa.schema(
    [bronze_arrow_schema(INVENTORY_TOPIC).field(name) for name in (*KEYS, *EVENT_COLUMNS)]
)
_UTC = pa.timestamp("us", tz="UTC")
POSITION_SCHEMA = pa.schema(
    [
        pa.field("location_id", pa.string(), nullable=False),
        pa.field("sku", pa.string(), nullable=False),
        pa.field("on_hand", pa.int64(), nullable=False),
        ("last_event_time", _UTC),  # latest event_time counted: the position is as of then
        ("updated_at", _UTC),  # when the streaming job last changed this row
        ("stockout_since", _UTC),  # last_event_time when on_hand went from > 0 to <= 0
        ("stockout_alert_id", pa.string()),  # deterministic event_id of that stockout alert
        ("stockout_alert_sent", pa.bool_()),  # outbox flag: false until the alert is in Kafka
    ]
)
_WRITE_ATTEMPTS = 4

# Duplicated event_ids keep the copy at the lowest Kafka coordinates.
_FIRST_COPIES = """
first_copies AS (
    SELECT * FROM events
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _topic, _partition, _offset) = 1
)"""

# Events -> the ledger: per key, the latest snapshot (by event_time, then event_id) and
# every event after it; all events while there is none.
STILL_COUNTING = f"""
WITH {_FIRST_COPIES},
cut AS (
    SELECT *, max(CASE WHEN event_type = 'inventory_snapshot'
        THEN struct_pack(t := event_time, id := event_id) END)
        OVER (PARTITION BY location_id, sku) AS _cut
    FROM first_copies
)
SELECT location_id, sku,
    list(struct_pack({", ".join(f"{c} := {c}" for c in EVENT_COLUMNS)}) ORDER BY event_id)
        AS events
FROM cut
WHERE _cut IS NULL OR (event_time = _cut.t AND event_id = _cut.id) OR event_time > _cut.t
GROUP BY location_id, sku
"""

# Events of whole keys -> (location_id, sku, on_hand, last_event_time) (the module doc's
# invariant); among snapshots at one event_time the highest event_id wins.
POSITIONS = f"""
WITH {_FIRST_COPIES},
latest AS (
    SELECT location_id, sku,
        max_by(struct_pack(t := event_time, on_hand := on_hand),
               struct_pack(t := event_time, id := event_id)) AS snapshot
    FROM first_copies WHERE event_type = 'inventory_snapshot'
    GROUP BY location_id, sku
)
SELECT e.location_id, e.sku,
    CAST(coalesce(any_value(l.snapshot.on_hand), 0) AS BIGINT)
        + CAST(coalesce(sum(CASE WHEN e.event_type = 'inventory_movement'
            AND (l.snapshot IS NULL OR e.event_time > l.snapshot.t)
            THEN e.quantity_delta END), 0) AS BIGINT) AS on_hand,
    max(e.event_time) AS last_event_time
FROM first_copies AS e
LEFT JOIN latest AS l ON l.location_id = e.location_id AND l.sku = e.sku
GROUP BY e.location_id, e.sku
"""

# New positions against the stored rows of their keys -> the rows that change. A key
# whose stored on_hand was > 0 and is now <= 0 starts a stockout (a new alert, pending);
# back above 0 clears it; otherwise the stored stockout is kept. A key seen for the first
# time has no earlier level, so it cannot *become* stocked out.
CHANGES = """
WITH joined AS (
    SELECT n.*, o.on_hand AS old_on_hand, o.last_event_time AS old_last_event_time,
        o.stockout_since AS old_since, o.stockout_alert_id AS old_id,
        o.stockout_alert_sent AS old_sent,
        coalesce(o.on_hand > 0 AND n.on_hand <= 0, false) AS starts, n.on_hand > 0 AS restocked
    FROM positions AS n
    LEFT JOIN current_positions AS o ON o.location_id = n.location_id AND o.sku = n.sku
    WHERE n.on_hand IS DISTINCT FROM o.on_hand
        OR n.last_event_time IS DISTINCT FROM o.last_event_time
)
SELECT location_id, sku, on_hand, last_event_time, CAST($now AS TIMESTAMPTZ) AS updated_at,
    CASE WHEN starts THEN last_event_time WHEN restocked THEN NULL ELSE old_since END
        AS stockout_since,
    CASE WHEN starts THEN 'stockout-' || substr(sha256(concat_ws('|', 'stockout',
            location_id, sku, strftime(last_event_time, '%Y-%m-%dT%H:%M:%S.%fZ'))), 1, 32)
        WHEN restocked THEN NULL ELSE old_id END AS stockout_alert_id,
    CASE WHEN starts THEN false WHEN restocked THEN NULL ELSE old_sent END
        AS stockout_alert_sent
FROM joined
"""


_database: duckdb.DuckDBPyConnection | None = None
_database_lock = threading.Lock()


def _sql(query: str, params: dict[str, Any] | None = None, **tables: pa.Table) -> pa.Table:
    """Run ``query`` over Arrow ``tables`` in the process's in-memory DuckDB (UTC), on a
    cursor of its own (a connection costs ~15 ms to open; a batch runs a dozen queries)."""
    global _database
    with _database_lock:
        if _database is None:
            _database = duckdb.connect(config={"threads": 2})
            _database.execute("SET TimeZone = 'UTC'")
        cursor = _database.cursor()
    try:
        for name, table in tables.items():
            cursor.register(name, table)
        return cursor.sql(query, params=params).to_arrow_table()
    finally:
        cursor.close()


def still_counting(events: pa.Table) -> pa.Table:
    """Bronze-shaped inventory rows (keys and :data:`EVENT_COLUMNS`) -> ledger rows."""
    return _sql(STILL_COUNTING, events=events.cast(_EVENT_TYPES))


def ledger_events(ledger: pa.Table) -> pa.Table:
    """Ledger rows -> one bronze-shaped row per event."""
    flat = _sql(
        "SELECT location_id, sku, unnest(e) FROM"
        " (SELECT location_id, sku, unnest(events) AS e FROM ledger)",
        ledger=ledger,
    )
    return flat.cast(_EVENT_TYPES)


def inventory_positions(events: pa.Table) -> pa.Table:
    """Inventory rows holding the complete history of every key they contain ->
    (location_id, sku, on_hand, last_event_time)."""
    return _sql(POSITIONS, events=events.cast(_EVENT_TYPES))


def position_changes(positions: pa.Table, current: pa.Table, now: dt.datetime) -> pa.Table:
    """The rows of ``positions`` that differ from ``current``, in the table's columns."""
    return _sql(CHANGES, {"now": now}, positions=positions, current_positions=current)


def _with_keys(table: pa.Table, keys: pa.Table, *, keep: bool = True) -> pa.Table:
    """``table``'s rows whose (location_id, sku) is in ``keys`` (``keep=False``: is not)."""
    join = "SEMI" if keep else "ANTI"
    return _sql(
        f"SELECT t.* FROM rows AS t {join} JOIN keys AS k USING (location_id, sku)",
        rows=table,
        keys=keys.select(list(KEYS)),
    ).cast(table.schema)


class InventoryPosition:
    """Keeps the ledger and the position table current for the bronze rows a micro-batch
    appended (see the module doc)."""

    def __init__(self, lake: Lake, settings: Settings) -> None:
        self.bronze_path = lake.bronze("inventory")
        self.ledger_path = lake.checkpoint(LEDGER_TABLE)
        self.path = lake.silver(POSITION_TABLE)
        self.settings = settings
        self._tables: dict[str, DeltaTable] = {}
        # A previous run may have left alerts pending; afterwards only a batch that starts
        # a stockout (or a failed publish) can, which saves a table read per batch.
        self._outbox_may_have_alerts = True

    def update(self, spark: SparkSession, events: DataFrame | None) -> dict[str, int]:
        """Fold ``events`` (rows now in bronze; None: none) into the ledger, write the
        positions that changed, publish pending alerts; return the progress counts."""
        changed = 0
        if events is not None:
            changed = self.fold(events.select(*KEYS, *EVENT_COLUMNS).toArrow())
        published = self.publish_pending_alerts() if self._outbox_may_have_alerts else 0
        return {"positions_changed": changed, "alerts_published": published}

    def fold(self, batch: pa.Table) -> int:
        """Fold bronze inventory rows into the ledger and the positions; rows changed."""
        if batch.num_rows == 0:
            return 0
        batch = batch.cast(_EVENT_TYPES)
        ledger = self._read(self.ledger_path)
        touched = batch.select(list(KEYS)).group_by(list(KEYS)).aggregate([])
        known = ledger_events(_with_keys(ledger, touched))
        rows = still_counting(pa.concat_tables([batch, known]))
        kept = _with_keys(ledger, rows, keep=False)
        self._overwrite(self.ledger_path, pa.concat_tables([kept.cast(rows.schema), rows]))
        return self._write_positions(rows, touched)

    def ensure_ledger(self, spark: SparkSession) -> int:
        """Build the ledger from the whole bronze history unless it exists: on a new lake
        (nothing to read), or on one from before the ledger, whose positions a query of
        their own kept and may have left behind bronze. The positions are written first
        and the ledger last: a crash in between redoes this at the next start. Returns how
        many positions changed."""
        if has_ledger(self.ledger_path):
            return 0
        history = spark.read.format("delta").load(self.bronze_path)
        events = history.select(*KEYS, *EVENT_COLUMNS).toArrow().cast(_EVENT_TYPES)
        ledger = still_counting(events)
        changed = self._write_positions(ledger, None)
        self._overwrite(self.ledger_path, ledger)
        return changed

    def _write_positions(self, ledger: pa.Table, touched: pa.Table | None) -> int:
        """Write the positions of ``ledger``'s keys that differ from the table (``touched``:
        those keys; None: all); return how many."""
        stored = self._read(self.path)
        current = stored if touched is None else _with_keys(stored, touched)
        changes = position_changes(
            inventory_positions(ledger_events(ledger)), current, dt.datetime.now(dt.UTC)
        )
        if changes.num_rows:
            kept = _with_keys(stored, changes, keep=False)
            self._overwrite(self.path, pa.concat_tables([kept, changes.cast(stored.schema)]))
            if pc.any(pc.invert(changes["stockout_alert_sent"])).as_py():
                self._outbox_may_have_alerts = True
        return changes.num_rows

    def _table(self, path: str) -> DeltaTable | None:
        """The table at ``path``, its log read once and then only new commits."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        table = self._tables.get(path)
        try:
            if table is None:
                table = self._tables[path] = DeltaTable(path)
            else:
                table.update_incremental()
        except TableNotFoundError:
            return None
        return table

    def _read(self, path: str) -> pa.Table:
        table = self._table(path)
        if table is not None:
            return table.to_pyarrow_table()
        if path == self.ledger_path:  # before its first write: the shape of a ledger
            return still_counting(_EVENT_TYPES.empty_table())
        return POSITION_SCHEMA.empty_table()

    def _overwrite(self, path: str, rows: pa.Table) -> None:
        """Replace the small table at ``path`` with ``rows`` in one commit."""
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            table = self._table(path)
            try:
                write_deltalake(
                    table if table is not None else path,
                    rows,
                    mode="overwrite",
                    schema_mode="overwrite" if path == self.ledger_path else None,
                )
                return
            except CommitFailedError:
                # Only `scm maintain` (OPTIMIZE) commits to these tables concurrently; the
                # recomputed rows are still right, so just try again.
                if attempt == _WRITE_ATTEMPTS:
                    raise
                time.sleep(0.5 * attempt)

    def publish_pending_alerts(self) -> int:
        """Produce every stockout alert not yet sent, then mark them sent (the outbox)."""
        position = self._read(self.path)
        pending = position.filter(
            pc.equal(position["stockout_alert_sent"], False)  # noqa: FBT003
        ).to_pylist()
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
        sent = pc.is_in(position["stockout_alert_id"], pa.array([a.event_id for a in alerts]))
        flags = pc.if_else(sent, True, position["stockout_alert_sent"])  # noqa: FBT003
        column = position.schema.get_field_index("stockout_alert_sent")
        self._overwrite(
            self.path, position.set_column(column, position.schema.field(column), flags)
        )
        self._outbox_may_have_alerts = False
        return len(alerts)


def has_ledger(path: str) -> bool:
    """Whether the ledger at ``path`` exists (a lake from before it gets it built from bronze
    at the ingest's next start)."""
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(path)


def create_position_table(lake: Lake) -> None:
    create_delta_table(lake.silver(POSITION_TABLE), POSITION_SCHEMA)
