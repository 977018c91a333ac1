"""How each order was fulfilled: the shared facts behind fill rate, perfect order, cycle time.

kpis.md, shared definitions: *dispatched by day D* sums ``shipment_dispatched`` line
quantities for the (order_id, line_no) dispatched on days ≤ D; *delivered quantity* sums the
lines of shipments that have a ``shipment_delivered`` event. A shipment reported delivered
twice counts its lines once.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ORDER_ATTRIBUTES: tuple[str, ...] = (
    "order_id",
    "order_date",
    "order_time",
    "ship_from",
    "channel",
    "requested_delivery_date",
)


def order_line_fulfilment(
    order_lines: DataFrame, shipment_lines: DataFrame, deliveries: DataFrame | None
) -> DataFrame:
    """Grain: order line. Ordered, dispatched-by-requested-date and delivered units.

    Without ``deliveries`` (fill rate needs none) nothing counts as delivered.
    """
    shipped = shipment_lines.select(
        "order_id",
        "line_no",
        "shipment_id",
        F.col("quantity").alias("shipped_units"),
        "dispatch_date",
    )
    if deliveries is None:
        shipped = shipped.withColumn("is_delivered", F.lit(False))
    else:
        delivered_shipments = (
            deliveries.select("shipment_id").distinct().withColumn("is_delivered", F.lit(True))
        )
        shipped = shipped.join(delivered_shipments, "shipment_id", "left")
    lines = order_lines.select(
        *ORDER_ATTRIBUTES, "line_no", F.col("quantity").alias("ordered_units")
    )
    return (
        lines.join(shipped, ["order_id", "line_no"], "left")
        .groupBy(*ORDER_ATTRIBUTES, "line_no", "ordered_units")
        .agg(
            F.coalesce(
                F.sum(
                    F.when(
                        F.col("dispatch_date") <= F.col("requested_delivery_date"),
                        F.col("shipped_units"),
                    )
                ),
                F.lit(0),
            ).alias("dispatched_by_requested_units"),
            F.coalesce(
                F.sum(F.when(F.col("is_delivered"), F.col("shipped_units"))), F.lit(0)
            ).alias("delivered_units"),
        )
        .withColumn(
            "is_line_filled", F.col("dispatched_by_requested_units") >= F.col("ordered_units")
        )
        .withColumn("is_line_delivered", F.col("delivered_units") >= F.col("ordered_units"))
    )


def order_fulfilment(
    order_lines: DataFrame, shipment_lines: DataFrame, deliveries: DataFrame | None
) -> DataFrame:
    """Grain: order. Line counts, units, and whether it was filled, delivered and perfect.

    ``has_only_on_time_clean_deliveries`` is true when every delivery of the order happened
    on a day ≤ its requested date with ``condition = ok`` and ``documents_ok``; an order
    with no delivery yet has nothing late or damaged, but is not fully delivered either.
    Without ``deliveries`` only the dispatch facts are returned.
    """
    lines = order_line_fulfilment(order_lines, shipment_lines, deliveries)
    orders = lines.groupBy(*ORDER_ATTRIBUTES).agg(
        F.count(F.lit(1)).cast("long").alias("lines"),
        F.count(F.when(F.col("is_line_filled"), True)).cast("long").alias("lines_filled"),
        F.sum("ordered_units").cast("long").alias("units_ordered"),
        F.sum(F.least("dispatched_by_requested_units", "ordered_units"))
        .cast("long")
        .alias("units_filled"),
        F.bool_and("is_line_filled").alias("is_filled"),
        F.bool_and("is_line_delivered").alias("is_fully_delivered"),
    )
    if deliveries is None:
        return orders
    due = orders.select("order_id", "requested_delivery_date")
    delivery_facts = (
        deliveries.join(due, "order_id")
        .groupBy("order_id")
        .agg(
            F.max("delivery_time").alias("last_delivery_time"),
            F.bool_and(
                F.coalesce(
                    (F.col("delivery_date") <= F.col("requested_delivery_date"))
                    & (F.col("condition") == "ok")
                    & (F.col("documents_ok")),
                    F.lit(False),
                )
            ).alias("has_only_on_time_clean_deliveries"),
        )
    )
    return orders.join(delivery_facts, "order_id", "left").withColumn(
        "has_only_on_time_clean_deliveries",
        F.coalesce("has_only_on_time_clean_deliveries", F.lit(True)),
    )
