"""``returns_cost_daily``: cost to return (APQC / SCOR), with refunds reported beside it.

Grain: (``return_date``, ``category``, ``reason``). ``category`` is the returned sku's
product category, ``unknown`` when the sku is not in ``products.csv``. The returns cost is
``processing_cost``; ``refund_amount`` is money given back, not a cost of the process.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.kpis.measures import money_total

GRAIN: tuple[str, ...] = ("return_date", "category", "reason")
UNKNOWN_CATEGORY = "unknown"


def returns_cost_daily(returns: DataFrame, products: DataFrame) -> DataFrame:
    """Returns, units, refunds and processing cost per day, product category and reason."""
    categories = products.select("sku", "category")
    return (
        returns.join(categories, "sku", "left")
        .withColumn("category", F.coalesce("category", F.lit(UNKNOWN_CATEGORY)))
        .groupBy(*GRAIN)
        .agg(
            F.count(F.lit(1)).cast("long").alias("returns"),
            F.sum("quantity").cast("long").alias("units_returned"),
            money_total(F.col("refund_amount")).alias("refund_amount"),
            money_total(F.col("processing_cost")).alias("processing_cost"),
        )
    )
