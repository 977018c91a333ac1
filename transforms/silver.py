"""Silver: typed, deduplicated, conformed tables built from bronze (pure functions).

Every builder takes a bronze event table that :func:`deduplicate_events` has already reduced
to one row per ``event_id`` and returns the silver rows it yields; none does I/O.
:data:`SILVER_TABLES` lists each table with its bronze source, grain (its merge key) and the
column that carries its events' time (for the as-of date). The writer that keeps silver
current is :mod:`transforms.silver_update`.

Dimensions (``products``, ``locations``, ``suppliers``, ``customers``) are the master-data
snapshots as loaded (already typed and key-checked, :mod:`transforms.master_data`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from scm.lake import MASTER_ENTITIES

# Which copy of a duplicated event wins: the first to reach bronze, Kafka order on ties.
ARRIVAL_ORDER: tuple[str, ...] = ("_ingested_at", "_topic", "_partition", "_offset")
REFRESH_ID = "_refresh_id"
DIMENSIONS: tuple[str, ...] = MASTER_ENTITIES


def deduplicate_events(bronze: DataFrame) -> DataFrame:
    """One row per ``event_id``: the first copy by arrival, so a retry never counts twice."""
    first = Window.partitionBy("event_id").orderBy(
        *[F.col(c).asc_nulls_last() for c in ARRIVAL_ORDER]
    )
    return (
        bronze.where(F.col("event_id").isNotNull())
        .withColumn("_arrival_rank", F.row_number().over(first))
        .where(F.col("_arrival_rank") == 1)
        .drop("_arrival_rank")
    )


def _of_type(events: DataFrame, event_type: str) -> DataFrame:
    return events.where(F.col("event_type") == event_type)


def _exploded_lines(events: DataFrame) -> DataFrame:
    return events.withColumn("line", F.explode("lines"))


def order_lines(orders: DataFrame) -> DataFrame:
    """Grain: one row per order line (``order_id``, ``line_no``) with its order's attributes."""
    return _exploded_lines(_of_type(orders, "order_placed")).select(
        "event_id",
        "order_id",
        F.col("line.line_no").alias("line_no"),
        F.col("line.sku").alias("sku"),
        F.col("line.quantity").alias("quantity"),
        F.col("line.unit_price").alias("unit_price"),
        "customer_id",
        "channel",
        "ship_from",
        "requested_delivery_date",
        F.col("event_time").alias("order_time"),
        F.to_date("event_time").alias("order_date"),
        "currency",
        "_ingested_at",
    )


def shipment_lines(shipments: DataFrame) -> DataFrame:
    """Grain: one row per dispatched shipment line (``shipment_id``, ``line_no``)."""
    return _exploded_lines(_of_type(shipments, "shipment_dispatched")).select(
        "event_id",
        "shipment_id",
        "order_id",
        F.col("line.line_no").alias("line_no"),
        F.col("line.sku").alias("sku"),
        F.col("line.quantity").alias("quantity"),
        "ship_from",
        "carrier",
        F.col("event_time").alias("dispatch_time"),
        F.to_date("event_time").alias("dispatch_date"),
        "_ingested_at",
    )


def deliveries(shipments: DataFrame) -> DataFrame:
    """Grain: one row per ``shipment_delivered`` event (a shipment may be reported twice)."""
    return _of_type(shipments, "shipment_delivered").select(
        "event_id",
        "shipment_id",
        "order_id",
        "condition",
        "documents_ok",
        F.col("event_time").alias("delivery_time"),
        F.to_date("event_time").alias("delivery_date"),
        "_ingested_at",
    )


def inventory_events(inventory: DataFrame) -> DataFrame:
    """Grain: one row per inventory snapshot or movement event."""
    return inventory.where(
        F.col("event_type").isin("inventory_snapshot", "inventory_movement")
    ).select(
        "event_id",
        "event_type",
        "location_id",
        "sku",
        "on_hand",
        "quantity_delta",
        "movement_type",
        "reference_id",
        "event_time",
        F.to_date("event_time").alias("event_date"),
        "_ingested_at",
    )


def returns(returns_events: DataFrame) -> DataFrame:
    """Grain: one row per ``return_received`` event (one returned order line)."""
    return _of_type(returns_events, "return_received").select(
        "event_id",
        "return_id",
        "order_id",
        "line_no",
        "sku",
        "quantity",
        "reason",
        "disposition",
        "refund_amount",
        "processing_cost",
        "currency",
        F.col("event_time").alias("return_time"),
        F.to_date("event_time").alias("return_date"),
        "_ingested_at",
    )


def po_lines(procurement: DataFrame) -> DataFrame:
    """Grain: one row per purchase-order line (``po_id``, ``line_no``) with its PO's attributes."""
    return _exploded_lines(_of_type(procurement, "po_created")).select(
        "event_id",
        "po_id",
        F.col("line.line_no").alias("line_no"),
        F.col("line.sku").alias("sku"),
        F.col("line.quantity").alias("quantity"),
        F.col("line.unit_cost").alias("unit_cost"),
        "supplier_id",
        "ship_to",
        "expected_date",
        "currency",
        F.col("event_time").alias("created_time"),
        F.to_date("event_time").alias("created_date"),
        "_ingested_at",
    )


def po_receipt_lines(procurement: DataFrame) -> DataFrame:
    """Grain: one row per received PO line per receipt event (``event_id``, ``line_no``)."""
    return _exploded_lines(_of_type(procurement, "po_received")).select(
        "event_id",
        "po_id",
        F.col("line.line_no").alias("line_no"),
        F.col("line.sku").alias("sku"),
        F.col("line.quantity").alias("quantity"),
        F.col("event_time").alias("received_time"),
        F.to_date("event_time").alias("received_date"),
        "_ingested_at",
    )


@dataclass(frozen=True)
class SilverTable:
    """A silver event table: where it comes from, its grain and how to build it."""

    name: str
    source: str  # bronze entity
    keys: tuple[str, ...]  # the grain; unique, and the merge key
    time_column: str  # when its events happened (feeds the as-of date)
    build: Callable[[DataFrame], DataFrame]  # deduplicated bronze rows -> silver rows


SILVER_TABLES: dict[str, SilverTable] = {
    table.name: table
    for table in (
        SilverTable("order_lines", "orders", ("event_id", "line_no"), "order_time", order_lines),
        SilverTable(
            "shipment_lines", "shipments", ("event_id", "line_no"), "dispatch_time", shipment_lines
        ),
        SilverTable("deliveries", "shipments", ("event_id",), "delivery_time", deliveries),
        SilverTable("inventory_events", "inventory", ("event_id",), "event_time", inventory_events),
        SilverTable("returns", "returns", ("event_id",), "return_time", returns),
        SilverTable("po_lines", "procurement", ("event_id", "line_no"), "created_time", po_lines),
        SilverTable(
            "po_receipt_lines",
            "procurement",
            ("event_id", "line_no"),
            "received_time",
            po_receipt_lines,
        ),
    )
}


def silver_tables_of(source: str) -> list[SilverTable]:
    """The silver tables one bronze entity feeds (one stream serves them all)."""
    return [table for table in SILVER_TABLES.values() if table.source == source]
