"""Gold: the six KPI tables of kpis.md, built from silver and replaced partition by partition.

:data:`GOLD_TABLES` is the registry the CLI refresh and the Dagster assets share. Each entry
knows its grain, its partition column (a day or the first day of a month), which silver
tables it reads, how to build any set of its partitions from silver (:meth:`GoldTable.build`,
pure KPI functions underneath) and which partitions a set of new silver rows touches
(:meth:`GoldTable.affected_partitions`). :meth:`GoldTable.write_partitions` replaces exactly
those partitions in one atomic Delta commit (``replaceWhere``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pyspark.sql import functions as F

from scm.lake import Lake
from transforms.kpis import (
    fill_rate_daily,
    inventory_turns_monthly,
    order_cycle_time_daily,
    perfect_order_daily,
    returns_cost_daily,
    supplier_otif_daily,
)
from transforms.lake_io import rows_written, table_exists
from transforms.silver import REFRESH_ID, SILVER_TABLES
from transforms.silver_update import read_dimension, silver_schema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

Granularity = Literal["day", "month"]
# A list of partition values (days, or first days of months); None means every partition.
Partitions = Sequence[dt.date] | None

# Before any event there is no as-of date; every "due by as-of" filter is then empty.
_NO_EVENTS_YET = dt.date(1, 1, 1)


class SilverSnapshot:
    """The silver tables one build reads, each opened once and shared by every step."""

    def __init__(self, spark: SparkSession, lake: Lake) -> None:
        self.spark = spark
        self.lake = lake
        self._frames: dict[str, DataFrame] = {}

    def table(self, name: str) -> DataFrame:
        """A silver event table (empty with its schema when it does not exist yet)."""
        if name not in self._frames:
            path = self.lake.silver(name)
            if table_exists(path):
                self._frames[name] = self.spark.read.format("delta").load(path)
            else:
                schema = silver_schema(self.spark, SILVER_TABLES[name])
                self._frames[name] = self.spark.createDataFrame([], schema)
        return self._frames[name]

    def dimension(self, name: str) -> DataFrame:
        """A silver master-data dimension (empty with its contract columns when absent)."""
        if name not in self._frames:
            self._frames[name] = read_dimension(self.spark, self.lake, name)
        return self._frames[name]


def as_of_date(silver: SilverSnapshot, *, only_refresh_after: int | None = None) -> dt.date | None:
    """UTC day of the latest event time in silver (or in rows of refreshes after an id)."""
    latest: DataFrame | None = None
    for table in SILVER_TABLES.values():
        rows = silver.table(table.name)
        if only_refresh_after is not None:
            rows = rows.where(F.col(REFRESH_ID) > only_refresh_after)
        times = rows.select(F.col(table.time_column).alias("event_time"))
        latest = times if latest is None else latest.unionByName(times)
    assert latest is not None
    # The day is taken in Spark, whose session time zone is UTC (scm.spark).
    return latest.agg(F.to_date(F.max("event_time"))).first()[0]  # type: ignore[index,no-any-return]


@dataclass(frozen=True)
class ChangeSet:
    """What one refresh brings: silver rows it inserted and where the as-of date moved."""

    silver: SilverSnapshot
    since_refresh_id: int  # silver rows with a higher _refresh_id are new
    as_of_before: dt.date | None
    as_of: dt.date
    products_changed: bool = False
    _order_days: dict[tuple[str, ...], set[dt.date]] = field(default_factory=dict, repr=False)

    def new(self, table: str) -> DataFrame:
        return self.silver.table(table).where(F.col(REFRESH_ID) > self.since_refresh_id)

    def order_days_touched(self, via: tuple[str, ...]) -> set[dt.date]:
        """Days of new orders and of known orders that new rows of ``via`` belong to."""
        if via not in self._order_days:
            order_lines = self.silver.table("order_lines")
            days = self.new("order_lines").select("order_date")
            for table in via:
                touched = self.new(table).select("order_id").distinct()
                days = days.unionByName(order_lines.join(touched, "order_id").select("order_date"))
            self._order_days[via] = _dates(days)
        return set(self._order_days[via])


def _dates(frame: DataFrame) -> set[dt.date]:
    return {row[0] for row in frame.distinct().collect() if row[0] is not None}


def _in(column: str | Column, partitions: Partitions) -> Column:
    values = F.col(column) if isinstance(column, str) else column
    return F.lit(True) if partitions is None else values.isin(list(partitions))


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the months from ``first``'s month to ``last``'s month, inclusive."""
    month, end = first.replace(day=1), last.replace(day=1)
    months = []
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


# --- what each table reads for a set of partitions -------------------------------------------


def _orders_of(silver: SilverSnapshot, partitions: Partitions) -> DataFrame:
    return silver.table("order_lines").where(_in("order_date", partitions))


def _for_orders(silver: SilverSnapshot, table: str, orders: DataFrame) -> DataFrame:
    return silver.table(table).join(orders.select("order_id").distinct(), "order_id", "left_semi")


def _build_fill_rate(silver: SilverSnapshot, partitions: Partitions, as_of: dt.date) -> DataFrame:
    orders = _orders_of(silver, partitions)
    return fill_rate_daily(orders, _for_orders(silver, "shipment_lines", orders), as_of=as_of)


def _build_perfect_order(
    silver: SilverSnapshot, partitions: Partitions, as_of: dt.date
) -> DataFrame:
    orders = _orders_of(silver, partitions)
    return perfect_order_daily(
        orders,
        _for_orders(silver, "shipment_lines", orders),
        _for_orders(silver, "deliveries", orders),
        as_of=as_of,
    )


def _build_order_cycle_time(
    silver: SilverSnapshot, partitions: Partitions, as_of: dt.date
) -> DataFrame:
    orders = _orders_of(silver, partitions)
    return order_cycle_time_daily(
        orders,
        _for_orders(silver, "shipment_lines", orders),
        _for_orders(silver, "deliveries", orders),
    )


def _build_inventory_turns(
    silver: SilverSnapshot, partitions: Partitions, as_of: dt.date
) -> DataFrame:
    # On-hand carries forward, so every earlier inventory event matters; dispatches only
    # matter in their own month.
    dispatched = silver.table("shipment_lines").where(
        _in(F.trunc("dispatch_date", "month"), partitions)
    )
    return inventory_turns_monthly(
        silver.table("inventory_events"), dispatched, silver.dimension("products"), as_of=as_of
    ).where(_in("month", partitions))


def _build_returns_cost(
    silver: SilverSnapshot, partitions: Partitions, as_of: dt.date
) -> DataFrame:
    returns = silver.table("returns").where(_in("return_date", partitions))
    return returns_cost_daily(returns, silver.dimension("products"))


def _build_supplier_otif(
    silver: SilverSnapshot, partitions: Partitions, as_of: dt.date
) -> DataFrame:
    lines = silver.table("po_lines").where(_in("expected_date", partitions))
    receipts = silver.table("po_receipt_lines").join(
        lines.select("po_id").distinct(), "po_id", "left_semi"
    )
    return supplier_otif_daily(lines, receipts, as_of=as_of)


# --- which partitions new silver rows touch ---------------------------------------------------


def _newly_due(changes: ChangeSet, table: str, due: str, partition: str) -> set[dt.date]:
    """Partitions of rows whose due date the as-of date has just passed: now countable."""
    if changes.as_of_before is None or changes.as_of <= changes.as_of_before:
        return set()
    rows = changes.silver.table(table).where(
        (F.col(due) > F.lit(changes.as_of_before)) & (F.col(due) <= F.lit(changes.as_of))
    )
    return _dates(rows.select(partition))


def _fill_rate_touched(changes: ChangeSet) -> Partitions:
    days = changes.order_days_touched(("shipment_lines",))
    days |= _newly_due(changes, "order_lines", "requested_delivery_date", "order_date")
    return sorted(days)


def _order_cycle_time_touched(changes: ChangeSet) -> Partitions:
    return sorted(changes.order_days_touched(("shipment_lines", "deliveries")))


def _perfect_order_touched(changes: ChangeSet) -> Partitions:
    days = changes.order_days_touched(("shipment_lines", "deliveries"))
    days |= _newly_due(changes, "order_lines", "requested_delivery_date", "order_date")
    return sorted(days)


def _inventory_turns_touched(changes: ChangeSet) -> Partitions:
    if changes.products_changed:
        return None
    months: set[dt.date] = set()
    first_inventory_day = (
        changes.new("inventory_events").agg(F.min("event_date")).first()[0]  # type: ignore[index]
    )
    if first_inventory_day is not None:  # carries forward into every later month
        months.update(months_between(first_inventory_day, changes.as_of))
    months |= _dates(changes.new("shipment_lines").select(F.trunc("dispatch_date", "month")))
    if changes.as_of_before is not None and changes.as_of > changes.as_of_before:
        # The as-of month's period grows, and new months begin.
        months.update(months_between(changes.as_of_before, changes.as_of))
    return sorted(months)


def _returns_cost_touched(changes: ChangeSet) -> Partitions:
    if changes.products_changed:
        return None
    return sorted(_dates(changes.new("returns").select("return_date")))


def _supplier_otif_touched(changes: ChangeSet) -> Partitions:
    po_lines = changes.silver.table("po_lines")
    received = changes.new("po_receipt_lines").select("po_id").distinct()
    days = changes.new("po_lines").select("expected_date")
    days = days.unionByName(po_lines.join(received, "po_id").select("expected_date"))
    return sorted(_dates(days) | _newly_due(changes, "po_lines", "expected_date", "expected_date"))


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldTable:
    """One KPI table: grain, partitioning, inputs, and how to build and replace partitions."""

    name: str
    grain: tuple[str, ...]
    columns: tuple[str, ...]  # grain first, then the measures, in table order
    partition_column: str
    granularity: Granularity
    inputs: tuple[str, ...]  # silver tables (and dimensions) it reads
    compute: Callable[[SilverSnapshot, Partitions, dt.date], DataFrame] = field(repr=False)
    touched: Callable[[ChangeSet], Partitions] = field(repr=False)

    def build(
        self,
        spark: SparkSession,
        lake: Lake,
        partitions: Partitions = None,
        *,
        as_of: dt.date | None = None,
        silver: SilverSnapshot | None = None,
    ) -> DataFrame:
        """The table's rows for ``partitions`` (all when None), computed from silver."""
        silver = silver or SilverSnapshot(spark, lake)
        if as_of is None:
            as_of = as_of_date(silver) or _NO_EVENTS_YET
        return self.compute(silver, partitions, as_of).select(*self.columns)

    def affected_partitions(self, changes: ChangeSet) -> Partitions:
        """The partitions whose rows the changes can alter (None: all of them)."""
        return self.touched(changes)

    def write_partitions(self, lake: Lake, frame: DataFrame, partitions: Partitions) -> int:
        """Replace ``partitions`` (all when None) with ``frame`` in one commit; rows written."""
        if partitions is not None and not partitions:
            return 0
        writer = (
            frame.where(_in(self.partition_column, partitions))
            .select(*self.columns)
            .write.format("delta")
            .mode("overwrite")
            .partitionBy(self.partition_column)
        )
        if partitions is None:
            writer = writer.option("overwriteSchema", "true")
        else:
            values = ", ".join(f"date '{day.isoformat()}'" for day in sorted(partitions))
            writer = writer.option("replaceWhere", f"{self.partition_column} in ({values})")
        writer.save(lake.gold(self.name))
        return rows_written(lake.gold(self.name))


_ORDER_GRAIN = ("order_date", "ship_from", "channel")

GOLD_TABLES: dict[str, GoldTable] = {
    table.name: table
    for table in (
        GoldTable(
            "fill_rate_daily",
            _ORDER_GRAIN,
            (
                *_ORDER_GRAIN,
                "orders",
                "orders_filled",
                "lines",
                "lines_filled",
                "units_ordered",
                "units_filled",
                "order_fill_rate",
                "line_fill_rate",
                "unit_fill_rate",
            ),
            "order_date",
            "day",
            ("order_lines", "shipment_lines"),
            _build_fill_rate,
            _fill_rate_touched,
        ),
        GoldTable(
            "perfect_order_daily",
            _ORDER_GRAIN,
            (*_ORDER_GRAIN, "orders", "perfect_orders", "perfect_order_rate"),
            "order_date",
            "day",
            ("order_lines", "shipment_lines", "deliveries"),
            _build_perfect_order,
            _perfect_order_touched,
        ),
        GoldTable(
            "order_cycle_time_daily",
            _ORDER_GRAIN,
            (*_ORDER_GRAIN, "orders_delivered", "avg_cycle_time_days"),
            "order_date",
            "day",
            ("order_lines", "shipment_lines", "deliveries"),
            _build_order_cycle_time,
            _order_cycle_time_touched,
        ),
        GoldTable(
            "inventory_turns_monthly",
            ("month", "location_id"),
            (
                "month",
                "location_id",
                "period_days",
                "cogs",
                "avg_inventory_value",
                "inventory_turns",
                "days_of_supply",
            ),
            "month",
            "month",
            ("inventory_events", "shipment_lines", "products"),
            _build_inventory_turns,
            _inventory_turns_touched,
        ),
        GoldTable(
            "returns_cost_daily",
            ("return_date", "category", "reason"),
            (
                "return_date",
                "category",
                "reason",
                "returns",
                "units_returned",
                "refund_amount",
                "processing_cost",
            ),
            "return_date",
            "day",
            ("returns", "products"),
            _build_returns_cost,
            _returns_cost_touched,
        ),
        GoldTable(
            "supplier_otif_daily",
            ("expected_date", "supplier_id"),
            ("expected_date", "supplier_id", "po_lines", "po_lines_otif", "otif_rate"),
            "expected_date",
            "day",
            ("po_lines", "po_receipt_lines"),
            _build_supplier_otif,
            _supplier_otif_touched,
        ),
    )
}
