"""``perfect_order_daily``: SCOR RL.1.1 Perfect Order Fulfillment (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
order due by the as-of date (``requested_delivery_date`` ≤ as-of). An order is perfect when
every line's delivered quantity covers the ordered quantity and every delivery of it was on a
day ≤ the requested date, in ``ok`` condition with ``documents_ok``.
Invariant: perfect_orders ≤ orders.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.kpis.measures import count_where, ratio
from transforms.kpis.order_fulfilment import order_fulfilment

GRAIN: tuple[str, ...] = ("order_date", "ship_from", "channel")


def perfect_order_daily(
    order_lines: DataFrame,
    shipment_lines: DataFrame,
    deliveries: DataFrame,
    *,
    as_of: dt.date,
) -> DataFrame:
    """Perfect-order rate over the orders due by ``as_of``."""
    is_perfect = F.col("is_fully_delivered") & F.col("has_only_on_time_clean_deliveries")
    return (
        order_fulfilment(order_lines, shipment_lines, deliveries)
        .where(F.col("requested_delivery_date") <= F.lit(as_of))
        .groupBy(*GRAIN)
        .agg(
            F.count(F.lit(1)).cast("long").alias("orders"),
            count_where(is_perfect).alias("perfect_orders"),
        )
        .withColumn("perfect_order_rate", ratio(F.col("perfect_orders"), F.col("orders")))
    )
