"""Silver: typed, deduplicated, conformed tables built from bronze, one SQL model each.

Every model reads ``bronze_events``: the bronze rows of its source that are new to silver,
already reduced to the first copy of each ``event_id`` by arrival (:data:`FIRST_ARRIVALS`),
so a producer retry never counts twice. :data:`SILVER_TABLES` lists each table with its
bronze source, grain (its merge key), the column that carries its events' time (for the
as-of date) and its SQL (DuckDB dialect, run by either engine, :mod:`transforms.sql`). The
writers that keep silver current are :mod:`transforms.engine`'s engines.

Dimensions (``products``, ``locations``, ``suppliers``, ``customers``) are the master-data
snapshots as loaded (already typed and key-checked, :mod:`transforms.master_data`).
"""

from __future__ import annotations

from dataclasses import dataclass

from scm.lake import MASTER_ENTITIES

# Which copy of a duplicated event wins: the first to reach bronze, Kafka order on ties.
ARRIVAL_ORDER: tuple[str, ...] = ("_ingested_at", "_topic", "_partition", "_offset")
REFRESH_ID = "_refresh_id"
DIMENSIONS: tuple[str, ...] = MASTER_ENTITIES

# The bronze rows (``bronze``) reduced to one row per event_id: the first copy by arrival.
FIRST_ARRIVALS = f"""
SELECT * FROM (
    SELECT *, row_number() OVER (
        PARTITION BY event_id ORDER BY {", ".join(f"{c} ASC NULLS LAST" for c in ARRIVAL_ORDER)}
    ) AS _arrival_rank
    FROM bronze
    WHERE event_id IS NOT NULL
) AS ranked
WHERE _arrival_rank = 1
"""


@dataclass(frozen=True)
class SilverTable:
    """A silver event table: where it comes from, its grain and the SQL that builds it."""

    name: str
    source: str  # bronze entity
    keys: tuple[str, ...]  # the grain; unique, and the merge key
    time_column: str  # when its events happened (feeds the as-of date)
    sql: str  # over ``bronze_events``: deduplicated new bronze rows -> silver rows
    description: str


def _lines(event_type: str, columns: str) -> str:
    """Rows of one event type with their ``lines`` exploded into one row per line."""
    return f"""
SELECT {columns}
FROM (SELECT *, unnest(lines) AS line FROM bronze_events WHERE event_type = '{event_type}') AS e
"""


ORDER_LINES = _lines(
    "order_placed",
    """event_id, order_id, line.line_no AS line_no, line.sku AS sku, line.quantity AS quantity,
    line.unit_price AS unit_price, customer_id, channel, ship_from, requested_delivery_date,
    event_time AS order_time, CAST(event_time AS DATE) AS order_date, currency, _ingested_at""",
)
SHIPMENT_LINES = _lines(
    "shipment_dispatched",
    """event_id, shipment_id, order_id, line.line_no AS line_no, line.sku AS sku,
    line.quantity AS quantity, ship_from, carrier, event_time AS dispatch_time,
    CAST(event_time AS DATE) AS dispatch_date, _ingested_at""",
)
DELIVERIES = """
SELECT event_id, shipment_id, order_id, condition, documents_ok, event_time AS delivery_time,
    CAST(event_time AS DATE) AS delivery_date, _ingested_at
FROM bronze_events WHERE event_type = 'shipment_delivered'
"""
INVENTORY_EVENTS = """
SELECT event_id, event_type, location_id, sku, on_hand, quantity_delta, movement_type,
    reference_id, event_time, CAST(event_time AS DATE) AS event_date, _ingested_at
FROM bronze_events WHERE event_type IN ('inventory_snapshot', 'inventory_movement')
"""
RETURNS = """
SELECT event_id, return_id, order_id, line_no, sku, quantity, reason, disposition,
    refund_amount, processing_cost, currency, event_time AS return_time,
    CAST(event_time AS DATE) AS return_date, _ingested_at
FROM bronze_events WHERE event_type = 'return_received'
"""
PO_LINES = _lines(
    "po_created",
    """event_id, po_id, line.line_no AS line_no, line.sku AS sku, line.quantity AS quantity,
    line.unit_cost AS unit_cost, supplier_id, ship_to, expected_date, currency,
    event_time AS created_time, CAST(event_time AS DATE) AS created_date, _ingested_at""",
)
PO_RECEIPT_LINES = _lines(
    "po_received",
    """event_id, po_id, line.line_no AS line_no, line.sku AS sku, line.quantity AS quantity,
    event_time AS received_time, CAST(event_time AS DATE) AS received_date, _ingested_at""",
)

SILVER_TABLES: dict[str, SilverTable] = {
    table.name: table
    for table in (
        SilverTable(
            "order_lines", "orders", ("event_id", "line_no"), "order_time", ORDER_LINES,
            "one row per order line (order_id, line_no) with its order's attributes",
        ),
        SilverTable(
            "shipment_lines", "shipments", ("event_id", "line_no"), "dispatch_time",
            SHIPMENT_LINES, "one row per dispatched shipment line (shipment_id, line_no)",
        ),
        SilverTable(
            "deliveries", "shipments", ("event_id",), "delivery_time", DELIVERIES,
            "one row per shipment_delivered event (a shipment may be reported twice)",
        ),
        SilverTable(
            "inventory_events", "inventory", ("event_id",), "event_time", INVENTORY_EVENTS,
            "one row per inventory snapshot or movement event",
        ),
        SilverTable(
            "returns", "returns", ("event_id",), "return_time", RETURNS,
            "one row per return_received event (one returned order line)",
        ),
        SilverTable(
            "po_lines", "procurement", ("event_id", "line_no"), "created_time", PO_LINES,
            "one row per purchase-order line (po_id, line_no) with its PO's attributes",
        ),
        SilverTable(
            "po_receipt_lines", "procurement", ("event_id", "line_no"), "received_time",
            PO_RECEIPT_LINES, "one row per received PO line per receipt event",
        ),
    )
}  # fmt: skip


def silver_tables_of(source: str) -> list[SilverTable]:
    """The silver tables one bronze entity feeds (one read of it serves them all)."""
    return [table for table in SILVER_TABLES.values() if table.source == source]
