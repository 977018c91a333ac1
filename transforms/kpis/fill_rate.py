"""``fill_rate_daily``: unit, line and order fill rate (kpis.md).

Grain: (``order_date``, ``ship_from``, ``channel``), one row per group with at least one
order due by the as-of date (``requested_delivery_date`` ≤ as-of: an order not yet due
cannot have failed yet). A line is filled when its units dispatched on days ≤ its order's
requested delivery date cover the ordered quantity; an order is filled when all its lines
are.
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
        count(CASE WHEN is_filled THEN 1 END) AS orders_filled,
        sum(lines) AS lines,
        sum(lines_filled) AS lines_filled,
        sum(units_ordered) AS units_ordered,
        sum(units_filled) AS units_filled
    FROM orders_fulfilled
    WHERE requested_delivery_date <= :as_of
    GROUP BY order_date, ship_from, channel
)
SELECT *,
    {ratio("orders_filled", "orders")} AS order_fill_rate,
    {ratio("lines_filled", "lines")} AS line_fill_rate,
    {ratio("units_filled", "units_ordered")} AS unit_fill_rate
FROM groups
"""


def touched(changes: ChangeSet) -> Partitions:
    days = _order_days(changes, ("shipment_lines",))
    days |= newly_due(changes, "order_lines", "requested_delivery_date", "order_date")
    return sorted(days)


TABLE = GoldTable(
    name="fill_rate_daily",
    description="Unit, line and order fill rate: dispatched by the requested delivery date vs "
    "ordered, over orders due by the as-of date.",
    grain=ORDER_GRAIN,
    columns=(
        Column("order_date", "DATE", "day the orders were placed (UTC)"),
        Column("ship_from", "VARCHAR", "shipping location"),
        Column("channel", "VARCHAR", "sales channel"),
        Column("orders", "BIGINT", "orders due by the as-of date"),
        Column("orders_filled", "BIGINT", "orders with every line filled"),
        Column("lines", "BIGINT", "their order lines"),
        Column("lines_filled", "BIGINT", "lines dispatched in full by the requested date"),
        Column("units_ordered", "BIGINT", "units ordered"),
        Column("units_filled", "BIGINT", "Σ min(dispatched by the requested date, ordered)"),
        Column("order_fill_rate", "DOUBLE", "orders_filled / orders"),
        Column("line_fill_rate", "DOUBLE", "lines_filled / lines"),
        Column("unit_fill_rate", "DOUBLE", "units_filled / units_ordered"),
    ),
    partition_column="order_date",
    granularity="day",
    inputs=("order_lines", "shipment_lines", "deliveries"),
    sql=SQL,
    touched=touched,
    invariants=(
        "orders_filled <= orders",
        "lines_filled <= lines",
        "units_filled <= units_ordered",
    ),
)
