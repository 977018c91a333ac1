"""SCOR scorecard: which KPIs, their targets and how a value earns red, amber or green.

Every KPI is a ratio of two sums so that periods, locations and channels aggregate
correctly (a mean of daily rates would weight a quiet day like a busy one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from dashboards import queries

Unit = Literal["percent", "days", "turns", "money"]
Status = Literal["green", "amber", "red", "no data"]


@dataclass(frozen=True)
class Kpi:
    """One scorecard tile; ``target`` and ``amber_band`` are the business's to tune."""

    title: str
    reference: str
    table: str
    query: str
    numerator: str
    denominator: str
    unit: Unit
    target: float
    higher_is_better: bool
    amber_band: float  # relative distance from target still shown amber
    records: str  # the records behind the tile (queries.RECORDS_*): the drill-down
    records_of: str  # what one record is, for captions ("order lines")
    monthly: bool = False


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "Order fill rate",
        "orders filled / orders",
        "gold.fill_rate_daily",
        queries.FILL_RATE_DAILY_TOTALS,
        "orders_filled",
        "orders",
        "percent",
        0.95,
        True,
        0.05,
        records=queries.RECORDS_ORDER_LINES,
        records_of="order lines",
    ),
    Kpi(
        "Line fill rate",
        "lines filled / lines",
        "gold.fill_rate_daily",
        queries.FILL_RATE_DAILY_TOTALS,
        "lines_filled",
        "lines",
        "percent",
        0.97,
        True,
        0.05,
        records=queries.RECORDS_ORDER_LINES,
        records_of="order lines",
    ),
    Kpi(
        "Unit fill rate",
        "units filled / units ordered",
        "gold.fill_rate_daily",
        queries.FILL_RATE_DAILY_TOTALS,
        "units_filled",
        "units_ordered",
        "percent",
        0.98,
        True,
        0.05,
        records=queries.RECORDS_ORDER_LINES,
        records_of="order lines",
    ),
    Kpi(
        "Perfect order rate",
        "SCOR RL.1.1",
        "gold.perfect_order_daily",
        queries.PERFECT_ORDER_DAILY_TOTALS,
        "perfect_orders",
        "orders",
        "percent",
        0.90,
        True,
        0.05,
        records=queries.RECORDS_ORDERS,
        records_of="orders",
    ),
    Kpi(
        "Order cycle time",
        "SCOR RS.1.1, days",
        "gold.order_cycle_time_daily",
        queries.CYCLE_TIME_DAILY_TOTALS,
        "cycle_time_days_total",
        "orders_delivered",
        "days",
        3.0,
        False,
        0.20,
        records=queries.RECORDS_DELIVERED_ORDERS,
        records_of="delivered orders",
    ),
    Kpi(
        "Inventory turns",
        "annualised, latest month",
        "gold.inventory_turns_monthly",
        queries.INVENTORY_MONTHLY_TOTALS,
        "annualised_cogs",
        "avg_inventory_value",
        "turns",
        12.0,
        True,
        0.20,
        records=queries.RECORDS_INVENTORY_TURNS,
        records_of="location months",
        monthly=True,
    ),
    Kpi(
        "Days of supply",
        "latest month",
        "gold.inventory_turns_monthly",
        queries.INVENTORY_MONTHLY_TOTALS,
        "inventory_value_days",
        "cogs",
        "days",
        30.0,
        False,
        0.20,
        records=queries.RECORDS_DAYS_OF_SUPPLY,
        records_of="location months",
        monthly=True,
    ),
    Kpi(
        "Returns cost per return",
        "processing cost / returns",
        "gold.returns_cost_daily",
        queries.RETURNS_DAILY_TOTALS,
        "processing_cost",
        "returns",
        "money",
        8.0,
        False,
        0.15,
        records=queries.RECORDS_RETURNS,
        records_of="returns",
    ),
    Kpi(
        "Supplier OTIF",
        "PO lines on time in full",
        "gold.supplier_otif_daily",
        queries.SUPPLIER_OTIF_DAILY_TOTALS,
        "po_lines_otif",
        "po_lines",
        "percent",
        0.95,
        True,
        0.05,
        records=queries.RECORDS_PO_LINES,
        records_of="PO lines",
    ),
)


@dataclass(frozen=True)
class Tile:
    """What one tile shows: the latest period, the one before, and a daily trend."""

    kpi: Kpi
    value: float | None
    previous: float | None
    status: Status
    trend: pd.DataFrame  # columns: day, value

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


def ratio(totals: pd.DataFrame, numerator: str, denominator: str) -> float | None:
    """Σ numerator / Σ denominator, None when there is nothing to divide by."""
    if totals.empty:
        return None
    bottom = float(totals[denominator].sum())
    return None if bottom == 0 else float(totals[numerator].sum()) / bottom


def status(value: float | None, kpi: Kpi) -> Status:
    if value is None:
        return "no data"
    gap = (kpi.target - value) if kpi.higher_is_better else (value - kpi.target)
    if gap <= 0:
        return "green"
    return "amber" if gap <= kpi.amber_band * abs(kpi.target) else "red"


def periods(as_of: dt.date, days: int) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The latest ``days`` days ending at ``as_of`` and the same number of days before them."""
    current = (as_of - dt.timedelta(days=days - 1), as_of)
    previous = (current[0] - dt.timedelta(days=days), current[0] - dt.timedelta(days=1))
    return current, previous


def tile(kpi: Kpi, totals: pd.DataFrame, as_of: dt.date, days: int) -> Tile:
    """Build a tile from the KPI's daily (or monthly) totals."""
    frame = totals.copy()
    if frame.empty:
        return Tile(kpi, None, None, "no data", pd.DataFrame({"day": [], "value": []}))
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    if kpi.monthly:
        months = sorted(frame["day"].unique())
        current_rows = frame[frame["day"] == months[-1]]
        previous_rows = frame[frame["day"] == months[-2]] if len(months) > 1 else frame.iloc[0:0]
        trend_rows = frame
    else:
        (start, end), (previous_start, previous_end) = periods(as_of, days)
        current_rows = frame[(frame["day"] >= start) & (frame["day"] <= end)]
        previous_rows = frame[(frame["day"] >= previous_start) & (frame["day"] <= previous_end)]
        trend_rows = frame[frame["day"] >= end - dt.timedelta(days=4 * days - 1)]
    value = ratio(current_rows, kpi.numerator, kpi.denominator)
    bottom = trend_rows[kpi.denominator].where(trend_rows[kpi.denominator] != 0)
    trend = pd.DataFrame(
        {"day": pd.to_datetime(trend_rows["day"]), "value": trend_rows[kpi.numerator] / bottom}
    ).dropna()
    return Tile(
        kpi=kpi,
        value=value,
        previous=ratio(previous_rows, kpi.numerator, kpi.denominator),
        status=status(value, kpi),
        trend=trend,
    )


def format_value(value: float | None, unit: Unit) -> str:
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value:.1%}"
    if unit == "money":
        return f"{value:,.2f}"
    return f"{value:,.1f}"


def format_change(change: float | None, unit: Unit) -> str | None:
    if change is None:
        return None
    if unit == "percent":
        return f"{change * 100:+.1f} pts"
    return f"{change:+,.2f}" if unit in ("money", "days") else f"{change:+,.1f}"
