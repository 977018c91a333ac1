"""``inventory_turns_monthly``: inventory turns and days of supply (kpis.md).

Grain: (``month``, ``location_id``), for every month up to the as-of date in which the
location had known inventory or dispatched goods. The period of a month is its days up to
min(month end, as-of date). End-of-day on-hand of (location, sku) on day D = the latest
``inventory_snapshot`` at or before the end of D plus the ``inventory_movement`` deltas
strictly after it up to the end of D (0 before anything is known); it carries forward over
days without events, which is why a late inventory event changes every later month.

Rather than materialising one row per (location, sku, day), each end-of-day level is kept
with the days it stays valid for, and Σ_days on-hand × unit cost is the overlap of those
intervals with each period, weighted by level and cost.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.kpis.measures import ratio

GRAIN: tuple[str, ...] = ("month", "location_id")
_STOCK = ("location_id", "sku")


def end_of_day_on_hand(inventory_events: DataFrame) -> DataFrame:
    """Grain: (location_id, sku, day with events). The on-hand level at the end of that day.

    Events are replayed in time order; at one instant movements come before a snapshot, so a
    snapshot taken at the same time as a movement already includes it ("after the snapshot"
    means strictly later).
    """
    in_time_order = [
        F.col("event_time"),
        F.when(F.col("event_type") == "inventory_snapshot", 1).otherwise(0),
        F.col("event_id"),
    ]
    stock_history = Window.partitionBy(*_STOCK).orderBy(*in_time_order)
    since_snapshot = (
        Window.partitionBy(*_STOCK, "snapshot_number")
        .orderBy(*in_time_order)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    last_of_day = Window.partitionBy(*_STOCK, "event_date").orderBy(
        *[column.desc() for column in in_time_order]
    )
    return (
        inventory_events.withColumn(
            "snapshot_number",
            F.sum(F.when(F.col("event_type") == "inventory_snapshot", 1).otherwise(0)).over(
                stock_history.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
        )
        .withColumn(
            "on_hand_level",
            F.coalesce(F.first("on_hand").over(since_snapshot), F.lit(0)).cast("long")
            + F.sum(F.coalesce("quantity_delta", F.lit(0))).over(since_snapshot).cast("long"),
        )
        .withColumn("_last_of_day", F.row_number().over(last_of_day))
        .where(F.col("_last_of_day") == 1)
        .select(*_STOCK, F.col("event_date").alias("day"), "on_hand_level")
    )


def _period_end(month: Column, as_of: dt.date) -> Column:
    return F.least(F.last_day(month), F.lit(as_of))


def inventory_value_days(
    inventory_events: DataFrame, products: DataFrame, *, as_of: dt.date
) -> DataFrame:
    """Grain: (month, location_id). Σ over the period's days and skus of on-hand × unit cost."""
    by_day = Window.partitionBy(*_STOCK).orderBy("day")
    levels = (
        end_of_day_on_hand(inventory_events.where(F.col("event_date") <= F.lit(as_of)))
        .withColumn("valid_from", F.col("day"))
        .withColumn(
            "valid_to",
            F.coalesce(F.date_sub(F.lead("day").over(by_day), 1), F.lit(as_of)),
        )
    )
    per_month = levels.withColumn(
        "month",
        F.explode(
            F.sequence(
                F.trunc("valid_from", "month"),
                F.trunc("valid_to", "month"),
                F.expr("interval 1 month"),
            )
        ),
    ).withColumn(
        "days_at_level",
        F.datediff(
            F.least("valid_to", _period_end(F.col("month"), as_of)),
            F.greatest("valid_from", "month"),
        )
        + 1,
    )
    return (
        per_month.join(products.select("sku", "unit_cost"), "sku", "left")
        .groupBy(*GRAIN)
        .agg(
            F.coalesce(
                F.sum(F.col("days_at_level") * F.col("on_hand_level") * F.col("unit_cost")),
                F.lit(0),
            )
            .cast("double")
            .alias("inventory_value_days")
        )
    )


def cost_of_goods_dispatched(
    shipment_lines: DataFrame, products: DataFrame, *, as_of: dt.date
) -> DataFrame:
    """Grain: (month, location_id). Σ dispatched quantity × unit cost in the period."""
    return (
        shipment_lines.where(F.col("dispatch_date") <= F.lit(as_of))
        .join(products.select("sku", "unit_cost"), "sku", "left")
        .groupBy(
            F.trunc("dispatch_date", "month").alias("month"),
            F.col("ship_from").alias("location_id"),
        )
        .agg(
            F.coalesce(F.sum(F.col("quantity") * F.col("unit_cost")), F.lit(0))
            .cast("double")
            .alias("cogs")
        )
    )


def inventory_turns_monthly(
    inventory_events: DataFrame,
    shipment_lines: DataFrame,
    products: DataFrame,
    *,
    as_of: dt.date,
) -> DataFrame:
    """Annualised inventory turns and days of supply per month and location up to ``as_of``."""
    period_days = F.datediff(_period_end(F.col("month"), as_of), F.col("month")) + 1
    cogs_per_day = F.col("cogs") / F.col("period_days")
    return (
        inventory_value_days(inventory_events, products, as_of=as_of)
        .join(cost_of_goods_dispatched(shipment_lines, products, as_of=as_of), list(GRAIN), "full")
        .select(
            *GRAIN,
            period_days.cast("int").alias("period_days"),
            F.coalesce("cogs", F.lit(0.0)).alias("cogs"),
            F.coalesce("inventory_value_days", F.lit(0.0)).alias("inventory_value_days"),
        )
        .withColumn("avg_inventory_value", F.col("inventory_value_days") / F.col("period_days"))
        .withColumn(
            "inventory_turns",
            ratio(F.col("cogs"), F.col("avg_inventory_value")) * 365.0 / F.col("period_days"),
        )
        .withColumn("days_of_supply", ratio(F.col("avg_inventory_value"), cogs_per_day))
        .drop("inventory_value_days")
    )
