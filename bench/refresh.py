"""KPI refresh: a full rebuild of every gold table, then an incremental refresh after one
more simulated day (the day the workload held back), on the bench's Spark session.

The refresh's own summary gives seconds per gold table; the steps before gold (landing,
ingest catch-up, dimensions, silver) are timed by wrapping them for the duration of the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.context import SizeContext
from bench.jstack import JstackSampler, driver_pid
from bench.lakestats import layer_stats
from bench.memory import BROKER, MemorySampler
from bench.profile import last_stage_id, stages_since
from bench.workload import produce

STEPS = (
    "read_state", "load_master_data", "catch_up_ingest", "update_dimensions", "update_silver",
    "as_of_date", "_record_state",
)  # fmt: skip


@contextlib.contextmanager
def timed_steps(module: Any, names: tuple[str, ...]) -> Iterator[dict[str, float]]:
    """Seconds spent in each named module-level function while the block runs."""
    spent: dict[str, float] = {}
    originals = {name: getattr(module, name) for name in names if hasattr(module, name)}

    def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return timed

    for name, function in originals.items():
        setattr(module, name, wrap(name, function))
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def _timed_refresh(context: SizeContext, *, full: bool) -> dict[str, Any]:
    """Seconds, steps, gold tables, memory and Spark stages of one ``refresh`` call."""
    import transforms.refresh as refresh_module

    settings = context.settings("spark")
    spark = context.spark.get(settings)
    first_stage = last_stage_id(spark)
    with (
        MemorySampler([os.getpid()], exclude_roles=BROKER) as memory,
        timed_steps(refresh_module, STEPS) as steps,
        JstackSampler(driver_pid(spark)) as jvm,
    ):
        started = time.perf_counter()
        summary = refresh_module.refresh(spark, settings, full=full)
        seconds = time.perf_counter() - started
    gold = [dataclasses.asdict(table) for table in getattr(summary, "gold", [])]
    return {
        "seconds": seconds,
        "steps_s": {name: round(value, 2) for name, value in steps.items()},
        "gold_s": {table["table"]: round(table["seconds"], 2) for table in gold},
        "gold": gold,
        "summary": summary.lines() if hasattr(summary, "lines") else str(summary),
        "memory": memory.summary(),
        "spark_stages": stages_since(spark, first_stage),
        "jvm_profile": jvm.summary(),
    }


def measure_refresh(context: SizeContext, result: dict[str, Any]) -> None:
    """Full rebuild over the size's lake, then one more day and an incremental refresh."""
    assert context.workload is not None
    full = _timed_refresh(context, full=True)
    context.gold_ready = True
    lake = context.settings("spark").lake
    result.update(
        days=context.size.days,
        full_s=full["seconds"],
        full=full,
        gold_tables={name: stats["rows"] for name, stats in layer_stats(lake, "gold").items()},
        silver_files={name: stats["files"] for name, stats in layer_stats(lake, "silver").items()},
    )
    extra = context.workload.next_day
    produce(context.settings("spark"), extra)
    incremental = _timed_refresh(context, full=False)
    result.update(
        extra_day_events=len(extra),
        incremental_s=incremental["seconds"],
        incremental=incremental,
        incremental_ratio=round(incremental["seconds"] / full["seconds"], 3),
        peak_rss_mib=max(
            full["memory"]["peak_total_rss_mib"], incremental["memory"]["peak_total_rss_mib"]
        ),
    )
