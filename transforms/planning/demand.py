"""``demand_daily``: units and lines ordered per day, location and sku (planning.md).

Demand is what was *ordered*, not what was shipped: stockouts censor shipments, and a plan
built on them would order less exactly when it ran out. A missing row is a zero day.
"""

from __future__ import annotations

from transforms.model import ChangeSet, Column, GoldTable, Partitions

# Grain (demand_date, location_id, sku); only pairs and days with units ordered.
DEMAND_DAILY = """
demand_daily AS (
    SELECT order_date AS demand_date, ship_from AS location_id, sku,
        CAST(sum(quantity) AS BIGINT) AS units_ordered, count(*) AS order_lines
    FROM order_lines
    WHERE order_date <= :as_of
    GROUP BY order_date, ship_from, sku
    HAVING sum(quantity) > 0
)
"""

SQL = f"""
WITH {DEMAND_DAILY}
SELECT * FROM demand_daily WHERE IN_SCOPE(demand_date)
"""


def touched(changes: ChangeSet) -> Partitions:
    return sorted(changes.dates("SELECT DISTINCT order_date FROM new_order_lines"))


TABLE = GoldTable(
    name="demand_daily",
    description="Units and lines ordered per day, shipping location and sku (demand, not "
    "shipments: a stockout does not hide it).",
    grain=("demand_date", "location_id", "sku"),
    columns=(
        Column("demand_date", "DATE", "day the orders were placed (UTC)"),
        Column("location_id", "VARCHAR", "the orders' ship-from location"),
        Column("sku", "VARCHAR", "product"),
        Column("units_ordered", "BIGINT", "Σ line quantity"),
        Column("order_lines", "BIGINT", "order lines of this sku"),
    ),
    partition_column="demand_date",
    granularity="day",
    inputs=("order_lines",),
    sql=SQL,
    touched=touched,
    invariants=("units_ordered > 0", "order_lines >= 1"),
)
