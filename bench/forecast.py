"""Demand forecasting on the simulator's demand: speed and backtest accuracy per model.

``python -m bench.forecast [--days 90]`` simulates ``--days`` of history (to a file, no
broker), builds ``demand_daily``'s rows from the ``order_placed`` events (each event_id
once), then times the platform's forecast over every (location, sku) series with demand in
the last 28 days, and backtests it and the statsforecast candidates the same way
``forecast_accuracy`` does (fit up to as-of − 14, score the 14 days after): total absolute
error relative to the weekly seasonal-naive forecast. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEMAND = """
WITH events AS (
    SELECT DISTINCT ON (json_extract_string(value, '$.event_id')) value
    FROM read_json('{path}', format = 'newline_delimited',
        columns = {{topic: 'VARCHAR', key: 'VARCHAR', value: 'VARCHAR'}})
    WHERE topic = 'scm.orders' AND json_extract_string(value, '$.event_type') = 'order_placed'
),
lines AS (
    SELECT json_extract_string(value, '$.ship_from') AS location_id,
        CAST(CAST(json_extract_string(value, '$.event_time') AS TIMESTAMPTZ) AS DATE) AS day,
        unnest(CAST(json_extract(value, '$.lines')
            AS STRUCT(line_no INT, sku VARCHAR, quantity BIGINT, unit_price DOUBLE)[])) AS line
    FROM events
)
SELECT location_id, line.sku AS sku, day AS demand_date,
    CAST(sum(line.quantity) AS BIGINT) AS units_ordered
FROM lines GROUP BY ALL
"""


def _candidates() -> dict[str, Any]:
    from statsforecast.models import (
        MSTL,
        OptimizedTheta,
        SeasonalExponentialSmoothingOptimized,
        SeasonalWindowAverage,
        WindowAverage,
    )

    return {
        "SeasonalWindowAverage(7, 4 weeks)": SeasonalWindowAverage(7, 4),
        "SeasonalWindowAverage(7, 8 weeks)": SeasonalWindowAverage(7, 8),
        "WindowAverage(28)": WindowAverage(28),
        "SeasonalExponentialSmoothingOptimized(7)": SeasonalExponentialSmoothingOptimized(7),
        "OptimizedTheta(7)": OptimizedTheta(season_length=7),
        "MSTL(7)": MSTL(season_length=7),
    }


def _library_forecast(model: Any, values: np.ndarray, fit_days: int) -> np.ndarray:
    import pandas as pd
    from statsforecast import StatsForecast

    history = values[:, :fit_days]
    frame = pd.DataFrame({
        "unique_id": np.repeat(np.arange(len(history)), fit_days),
        "ds": np.tile(np.arange(fit_days), len(history)),
        "y": history.ravel(),
    })  # fmt: skip
    out = StatsForecast(models=[model], freq=1, n_jobs=1).forecast(df=frame, h=14)
    return np.clip(out.iloc[:, -1].to_numpy().reshape(len(history), 14), 0, None)


def run(days: int) -> dict[str, Any]:
    import duckdb

    with tempfile.TemporaryDirectory() as work:
        events = Path(work) / "events.jsonl"
        subprocess.run(
            [sys.executable, "-m", "scm.cli", "simulate", "--days", str(days), "--seed", "7",
             "--output", str(events)],
            check=True, capture_output=True,
        )  # fmt: skip
        relation = duckdb.sql(DEMAND.format(path=events))
        assert relation is not None
        demand = relation.to_arrow_table()
    as_of = max(demand["demand_date"].to_pylist())
    since = as_of - dt.timedelta(days=28)
    active = {(r["location_id"], r["sku"]) for r in demand.to_pylist() if r["demand_date"] > since}
    started = time.perf_counter()
    from transforms.planning.forecast import (
        Series,
        accuracy_rows,
        forecast,
        forecast_rows,
        seasonal_naive,
    )

    rows = forecast_rows(demand, as_of)
    first_call = time.perf_counter() - started
    started = time.perf_counter()
    forecast_rows(demand, as_of)
    warm = time.perf_counter() - started
    accuracy_rows(demand, as_of)
    series = Series(demand, as_of)
    fit_days = series.values.shape[1] - 14
    actual = series.values[:, fit_days:]
    naive = float(np.abs(seasonal_naive(series, fit_days) - actual).sum())
    models = {"SeasonalNaive(7) (the yardstick)": {"seconds": 0.0, "error_vs_naive": 1.0}}
    started = time.perf_counter()
    ours = float(np.abs(forecast(series, fit_days) - actual).sum())
    models["platform: ses x weekday profile"] = {
        "seconds": round(time.perf_counter() - started, 3),
        "error_vs_naive": round(ours / naive, 3),
    }
    for name, model in _candidates().items():
        started = time.perf_counter()
        error = float(np.abs(_library_forecast(model, series.values, fit_days) - actual).sum())
        models[name] = {
            "seconds": round(time.perf_counter() - started, 3),
            "error_vs_naive": round(error / naive, 3),
        }
    return {
        "days": days,
        "as_of": as_of.isoformat(),
        "series": len(active),
        "forecast_rows": rows.num_rows,
        "forecast_seconds_first_call_with_import": round(first_call, 2),
        "forecast_seconds_warm": round(warm, 2),
        "backtest": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    print(json.dumps(run(parser.parse_args().days), indent=2))


if __name__ == "__main__":
    main()
