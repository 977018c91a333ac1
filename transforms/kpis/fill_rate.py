"""``fill_rate_daily``: unit, line and order fill rate (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
order due by the as-of date (``requested_delivery_date`` ≤ as-of: an order not yet due
cannot have failed yet). A line is filled when its units dispatched on days ≤ its order's
requested delivery date cover the ordered quantity; an order is filled when all its lines
are.
Invariants: orders_filled ≤ orders, lines_filled ≤ lines, units_filled ≤ units_ordered.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.kpis.measures import count_where, ratio
from transforms.kpis.order_fulfilment import order_fulfilment

GRAIN: tuple[str, ...] = ("order_date", "ship_from", "channel")


def fill_rate_daily(
    order_lines: DataFrame, shipment_lines: DataFrame, *, as_of: dt.date
) -> DataFrame:
    """Fill rates per order day, shipping location and channel, of orders due by ``as_of``."""
    return (
        order_fulfilment(order_lines, shipment_lines, None)
        .where(F.col("requested_delivery_date") <= F.lit(as_of))
        .groupBy(*GRAIN)
        .agg(
            F.count(F.lit(1)).cast("long").alias("orders"),
            count_where(F.col("is_filled")).alias("orders_filled"),
            F.sum("lines").cast("long").alias("lines"),
            F.sum("lines_filled").cast("long").alias("lines_filled"),
            F.sum("units_ordered").cast("long").alias("units_ordered"),
            F.sum("units_filled").cast("long").alias("units_filled"),
        )
        .select(
            *GRAIN,
            "orders",
            "orders_filled",
            "lines",
            "lines_filled",
            "units_ordered",
            "units_filled",
            ratio(F.col("orders_filled"), F.col("orders")).alias("order_fill_rate"),
            ratio(F.col("lines_filled"), F.col("lines")).alias("line_fill_rate"),
            ratio(F.col("units_filled"), F.col("units_ordered")).alias("unit_fill_rate"),
        )
    )
