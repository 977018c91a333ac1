"""``demand_forecast`` and ``forecast_accuracy``: 14 days ahead per location and sku.

The model is a weekday profile times a level (docs/planning.md has the candidates measured
on the simulator's demand and why this one): each location's weekday profile is pooled over
all its skus (one series alone is too noisy to tell a Monday from a Friday), every series
is divided by it, statsforecast's simple exponential smoothing (α fitted per series) gives
the level, and the forecast is level × the forecast day's weekday factor. The relational
part (the daily demand of the active pairs) is SQL run by either engine; the fit runs over
NumPy arrays on the driver.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import Column, GoldTable, rebuilt_whole
from transforms.planning.demand import DEMAND_DAILY

HORIZON_DAYS = 14
HISTORY_DAYS = 84  # the fit's window: twelve weeks
PROFILE_DAYS = 56  # the weekday profile's window: eight weeks
ACTIVE_DAYS = 28  # pairs with demand in these days are forecast
MODEL = "ses x weekday profile"

# Sparse daily demand of the pairs with demand in the last 28 days, over the fit window.
SQL = f"""
WITH {DEMAND_DAILY},
active AS (
    SELECT DISTINCT location_id, sku FROM demand_daily WHERE demand_date > :as_of - {ACTIVE_DAYS}
)
SELECT d.location_id, d.sku, d.demand_date, d.units_ordered
FROM demand_daily AS d
JOIN active AS a ON a.location_id = d.location_id AND a.sku = d.sku
WHERE d.demand_date > :as_of - {HISTORY_DAYS}
"""


class Series:
    """Dense daily demand per pair (rows) and day (columns, ``first_day`` on)."""

    def __init__(self, demand: pa.Table, last_day: dt.date) -> None:
        pairs = demand.select(["location_id", "sku"]).group_by(["location_id", "sku"]).aggregate([])
        pairs = pairs.sort_by([("location_id", "ascending"), ("sku", "ascending")])
        self.locations = np.array(pairs["location_id"].to_pylist(), dtype=object)
        self.skus = np.array(pairs["sku"].to_pylist(), dtype=object)
        days = demand["demand_date"].to_numpy().astype("datetime64[D]")
        self.first_day = days.min() if len(days) else np.datetime64(last_day, "D")
        self.first_day = max(self.first_day, np.datetime64(last_day, "D") - (HISTORY_DAYS - 1))
        width = int((np.datetime64(last_day, "D") - self.first_day).astype(int)) + 1
        keys = pc.binary_join_element_wise(demand["location_id"], demand["sku"], "\x1f")
        pair_keys = pc.binary_join_element_wise(pairs["location_id"], pairs["sku"], "\x1f")
        rows = pc.index_in(keys, value_set=pair_keys).to_numpy()
        columns = (days - self.first_day).astype(np.int64)
        self.values = np.zeros((len(pairs), width))
        keep = columns >= 0
        units = demand["units_ordered"].to_numpy()
        np.add.at(self.values, (rows[keep], columns[keep]), units[keep])

    def weekdays(self, start: int, count: int) -> np.ndarray:
        """Weekday (Monday 0) of ``count`` days from column ``start`` on."""
        first = (self.first_day.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970 Thu
        return (first + start + np.arange(count)) % 7


def ses_levels(series: np.ndarray) -> np.ndarray:
    """Each row's one-step simple exponential smoothing forecast, α fitted in [0.01, 0.99]
    by squared error: statsforecast's ``SimpleExponentialSmoothingOptimized``, computed by
    the library's own compiled kernels. Its model module imports statsmodels (1.2–1.7 s in
    every fresh process, most of a cold refresh); the kernels need 0.3–0.5 s.
    tests/test_planning.py checks the result against the library's public model."""
    from statsforecast._lib import ses

    rows = np.ascontiguousarray(series, dtype=np.float64)
    return np.array(
        [ses.ses_forecast(row, ses.golden_section_ses(row, 0.01, 0.99))[0] for row in rows],
        dtype=np.float64,
    )


def forecast(series: Series, fit_days: int, horizon: int = HORIZON_DAYS) -> np.ndarray:
    """Forecasts (pairs × horizon) fitted on the first ``fit_days`` columns."""
    history = series.values[:, :fit_days]
    weekdays = series.weekdays(0, fit_days)
    profile = np.ones((len(history), 7))
    recent = slice(max(0, fit_days - PROFILE_DAYS), fit_days)
    for location in np.unique(series.locations):
        rows = series.locations == location
        block = history[rows][:, recent]
        mean = block.mean() if block.size else 0.0
        if mean > 0:
            days = weekdays[recent]
            factors = np.array([block[:, days == d].mean() if (days == d).any() else mean
                                for d in range(7)]) / mean  # fmt: skip
            profile[rows] = factors
    factor = profile[:, weekdays]
    level_series = np.divide(history, factor, out=np.zeros_like(history), where=factor > 0)
    level = ses_levels(level_series)[:, np.newaxis]  # flat over the horizon
    ahead = profile[:, series.weekdays(fit_days, horizon)]
    return np.clip(level * ahead, 0.0, None)


def seasonal_naive(series: Series, fit_days: int, horizon: int = HORIZON_DAYS) -> np.ndarray:
    """demand(d − 7), the last fitted week repeated (planning.md's yardstick)."""
    week = series.values[:, fit_days - 7 : fit_days]
    return np.tile(week, (1, -(-horizon // 7)))[:, :horizon]


def _days(start: np.datetime64, count: int) -> pa.Array:
    return pa.array(start + np.arange(count), pa.date32())


def forecast_rows(demand: pa.Table, as_of: dt.date) -> pa.Table:
    """Rows of ``demand_forecast``: as-of + 1 … as-of + 14 for every active pair."""
    series = Series(demand, as_of)
    fit_days = series.values.shape[1]
    if not len(series.values):
        return pa.table({"forecast_date": pa.array([], pa.date32())})
    values = forecast(series, fit_days)
    pairs = len(series.values)
    start = np.datetime64(as_of, "D") + 1
    return pa.table({
        "forecast_date": pa.array(np.tile(start + np.arange(HORIZON_DAYS), pairs), pa.date32()),
        "location_id": np.repeat(series.locations, HORIZON_DAYS).tolist(),
        "sku": np.repeat(series.skus, HORIZON_DAYS).tolist(),
        "forecast_units": values.ravel(),
        "model": [MODEL] * (pairs * HORIZON_DAYS),
    })  # fmt: skip


def accuracy_rows(demand: pa.Table, as_of: dt.date) -> pa.Table:
    """Rows of ``forecast_accuracy``: fit up to as-of − 14, scored on the 14 days after."""
    series = Series(demand, as_of)
    fit_days = series.values.shape[1] - HORIZON_DAYS
    if not len(series.values) or fit_days < 7:
        return pa.table({"location_id": pa.array([], pa.string())})
    actual = series.values[:, fit_days:]
    error = np.abs(forecast(series, fit_days) - actual).sum(axis=1)
    naive = np.abs(seasonal_naive(series, fit_days) - actual).sum(axis=1)
    total = actual.sum(axis=1)
    wape = np.divide(error, total, out=np.zeros_like(error), where=total > 0)
    return pa.table({
        "location_id": series.locations.tolist(),
        "sku": series.skus.tolist(),
        "mae": error / HORIZON_DAYS,
        "naive_mae": naive / HORIZON_DAYS,
        "wape": pa.array(wape, mask=total <= 0),
        "model": [MODEL] * len(error),
    })  # fmt: skip


DEMAND_FORECAST = GoldTable(
    name="demand_forecast",
    description="Units expected to be ordered per day, location and sku, for the 14 days "
    "after the as-of date.",
    grain=("forecast_date", "location_id", "sku"),
    columns=(
        Column("forecast_date", "DATE", "the day forecast (as-of + 1 … + 14)"),
        Column("location_id", "VARCHAR", "location"),
        Column("sku", "VARCHAR", "product"),
        Column("forecast_units", "DOUBLE", "units expected to be ordered (≥ 0)"),
        Column("model", "VARCHAR", "the method"),
    ),
    partition_column=None,
    granularity="snapshot",
    inputs=("order_lines",),
    sql=SQL,
    touched=rebuilt_whole,
    invariants=("forecast_units >= 0",),
    compute=forecast_rows,
)

FORECAST_ACCURACY = GoldTable(
    name="forecast_accuracy",
    description="Backtest per location and sku: fitted up to as-of − 14, scored on the 14 "
    "days to the as-of date against the actual demand and the seasonal-naive forecast.",
    grain=("location_id", "sku"),
    columns=(
        Column("location_id", "VARCHAR", "location"),
        Column("sku", "VARCHAR", "product"),
        Column("mae", "DOUBLE", "mean absolute error per day"),
        Column("naive_mae", "DOUBLE", "the same for demand(d − 7)"),
        Column("wape", "DOUBLE", "Σ|error| / Σ actual (null without demand)"),
        Column("model", "VARCHAR", "the method"),
    ),
    partition_column=None,
    granularity="snapshot",
    inputs=("order_lines",),
    sql=SQL,
    touched=rebuilt_whole,
    invariants=("mae >= 0", "naive_mae >= 0", "wape >= 0"),
    compute=accuracy_rows,
)
