"""``order_cycle_time_daily``: SCOR RS.1.1 Order Fulfillment Cycle Time (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
fully delivered order. Cycle time of an order = its latest ``shipment_delivered`` time − its
``order_placed`` time, in days (hours / 24).
"""

from __future__ import annotations

from transforms.kpis.order_fulfilment import ORDER_FULFILMENT, ORDER_GRAIN
from transforms.model import ChangeSet, Column, GoldTable, Partitions
from transforms.model import order_days_touched as _order_days

_MICROSECONDS_PER_DAY = 86_400_000_000.0
# One order's cycle time in days, over ``orders_fulfilled`` (the detail table shows it too).
CYCLE_TIME_DAYS = (
    "CAST(date_diff('microsecond', order_time, last_delivery_time) AS DOUBLE)"
    f" / {_MICROSECONDS_PER_DAY}"
)

SQL = f"""
WITH {ORDER_FULFILMENT}
SELECT order_date, ship_from, channel,
    count(*) AS orders_delivered,
    avg({CYCLE_TIME_DAYS}) AS avg_cycle_time_days
FROM orders_fulfilled
WHERE is_fully_delivered
GROUP BY order_date, ship_from, channel
"""


def touched(changes: ChangeSet) -> Partitions:
    return sorted(_order_days(changes, ("shipment_lines", "deliveries")))


TABLE = GoldTable(
    name="order_cycle_time_daily",
    description="SCOR RS.1.1 order fulfillment cycle time of fully delivered orders, in days.",
    grain=ORDER_GRAIN,
    columns=(
        Column("order_date", "DATE", "day the orders were placed (UTC)"),
        Column("ship_from", "VARCHAR", "shipping location"),
        Column("channel", "VARCHAR", "sales channel"),
        Column("orders_delivered", "BIGINT", "orders whose every line is delivered"),
        Column("avg_cycle_time_days", "DOUBLE", "mean of (last delivery − order placed) in days"),
    ),
    partition_column="order_date",
    granularity="day",
    inputs=("order_lines", "shipment_lines", "deliveries"),
    sql=SQL,
    touched=touched,
    invariants=("orders_delivered >= 1", "avg_cycle_time_days >= 0"),
)
