"""``returns_cost_daily``: cost to return (APQC / SCOR), with refunds reported beside it.

Grain: (``return_date``, ``category``, ``reason``). ``category`` is the returned sku's
product category, ``unknown`` when the sku is not in ``products.csv``. The returns cost is
``processing_cost``; ``refund_amount`` is money given back, not a cost of the process.
"""

from __future__ import annotations

from transforms.model import ChangeSet, Column, GoldTable, Partitions, money_total

UNKNOWN_CATEGORY = "unknown"

# Each return with its product category: the rows this KPI sums and ``returns_detail`` lists.
RETURN_FACTS = f"""
categorised AS (
    SELECT r.*, coalesce(p.category, '{UNKNOWN_CATEGORY}') AS category
    FROM returns AS r
    LEFT JOIN products AS p ON p.sku = r.sku
    WHERE IN_SCOPE(r.return_date)
)"""

SQL = f"""
WITH {RETURN_FACTS}
SELECT return_date, category, reason,
    count(*) AS returns,
    sum(quantity) AS units_returned,
    {money_total("refund_amount")} AS refund_amount,
    {money_total("processing_cost")} AS processing_cost
FROM categorised
GROUP BY return_date, category, reason
"""


def touched(changes: ChangeSet) -> Partitions:
    if changes.products_changed:
        return None
    return sorted(changes.dates("SELECT DISTINCT return_date FROM new_returns"))


TABLE = GoldTable(
    name="returns_cost_daily",
    description="Returns, refunds and the cost of processing them (SCOR cost to return).",
    grain=("return_date", "category", "reason"),
    columns=(
        Column("return_date", "DATE", "day the return was received (UTC)"),
        Column("category", "VARCHAR", "product category of the sku, 'unknown' if not listed"),
        Column("reason", "VARCHAR", "return reason"),
        Column("returns", "BIGINT", "return_received events"),
        Column("units_returned", "BIGINT", "units returned"),
        Column("refund_amount", "DOUBLE", "money refunded (not a cost of the process)"),
        Column("processing_cost", "DOUBLE", "cost of processing the returns"),
    ),
    partition_column="return_date",
    granularity="day",
    inputs=("returns", "products"),
    sql=SQL,
    touched=touched,
    invariants=(
        "units_returned >= returns and returns >= 1",
        "refund_amount >= 0",
        "processing_cost >= 0",
    ),
)
