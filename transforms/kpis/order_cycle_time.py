"""``order_cycle_time_daily``: SCOR RS.1.1 Order Fulfillment Cycle Time (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
fully delivered order. Cycle time of an order = its latest ``shipment_delivered`` time − its
``order_placed`` time, in days (hours / 24).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.kpis.order_fulfilment import order_fulfilment

GRAIN: tuple[str, ...] = ("order_date", "ship_from", "channel")
_MICROSECONDS_PER_DAY = 86_400_000_000.0


def order_cycle_time_daily(
    order_lines: DataFrame, shipment_lines: DataFrame, deliveries: DataFrame
) -> DataFrame:
    """Average cycle time of fully delivered orders per order day, location and channel."""
    cycle_time_days = (F.unix_micros("last_delivery_time") - F.unix_micros("order_time")) / F.lit(
        _MICROSECONDS_PER_DAY
    )
    return (
        order_fulfilment(order_lines, shipment_lines, deliveries)
        .where(F.col("is_fully_delivered"))
        .groupBy(*GRAIN)
        .agg(
            F.count(F.lit(1)).cast("long").alias("orders_delivered"),
            F.avg(cycle_time_days).cast("double").alias("avg_cycle_time_days"),
        )
    )
