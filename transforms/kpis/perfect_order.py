"""``perfect_order_daily``: SCOR RL.1.1 Perfect Order Fulfillment (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
order due by the as-of date (``requested_delivery_date`` ≤ as-of). An order is perfect when
every line's delivered quantity covers the ordered quantity and every delivery of it was on a
day ≤ the requested date, in ``ok`` condition with ``documents_ok``.
"""

from __future__ import annotations

from transforms.kpis.order_fulfilment import ORDER_FULFILMENT, ORDER_GRAIN
from transforms.model import ChangeSet, Column, GoldTable, Partitions, newly_due, ratio
from transforms.model import order_days_touched as _order_days

SQL = f"""
WITH {ORDER_FULFILMENT},
groups AS (
    SELECT order_date, ship_from, channel,
        count(*) AS orders,
        count(CASE WHEN is_fully_delivered AND has_only_on_time_clean_deliveries THEN 1 END)
            AS perfect_orders
    FROM orders_fulfilled
    WHERE requested_delivery_date <= :as_of
    GROUP BY order_date, ship_from, channel
)
SELECT *, {ratio("perfect_orders", "orders")} AS perfect_order_rate FROM groups
"""


def touched(changes: ChangeSet) -> Partitions:
    days = _order_days(changes, ("shipment_lines", "deliveries"))
    days |= newly_due(changes, "order_lines", "requested_delivery_date", "order_date")
    return sorted(days)


TABLE = GoldTable(
    name="perfect_order_daily",
    description="SCOR RL.1.1 perfect order fulfillment: complete, on time, undamaged, with "
    "correct documents; orders due by the as-of date.",
    grain=ORDER_GRAIN,
    columns=(
        Column("order_date", "DATE", "day the orders were placed (UTC)"),
        Column("ship_from", "VARCHAR", "shipping location"),
        Column("channel", "VARCHAR", "sales channel"),
        Column("orders", "BIGINT", "orders due by the as-of date"),
        Column("perfect_orders", "BIGINT", "delivered in full, on time, ok, documents ok"),
        Column("perfect_order_rate", "DOUBLE", "perfect_orders / orders"),
    ),
    partition_column="order_date",
    granularity="day",
    inputs=("order_lines", "shipment_lines", "deliveries"),
    sql=SQL,
    touched=touched,
    invariants=("perfect_orders <= orders",),
)
