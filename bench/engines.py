"""The batch layer on both engines: first build, full rebuild and one new day, same lake.

``python -m bench.engines --days 90`` simulates a history, writes its accepted events
straight to bronze (delta-rs; ingest is excluded, as the goal says), holding back the last
day. Then, for each engine on its own copy of that lake: the first refresh (every table),
a full rebuild (``full=True``), and an incremental refresh after the held-back day is
appended to bronze. Each is one ``transforms.refresh.refresh`` call with ``ingest=False``;
the seconds are its own. Prints one JSON document (docs/performance.md quotes it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from scm.contracts import TOPICS, validate_event
from scm.lake import Lake
from scm.settings import load_settings
from simulator import SimulationOptions
from simulator.history import run_history
from simulator.world import write_master_data
from transforms.testing import append_bronze

Events = dict[str, list[dict[str, Any]]]


def simulated_bronze(lake: Lake, days: int, seed: int) -> tuple[Events, dict[str, int], int]:
    """Write ``days`` of accepted events to bronze but the last day's; return that day,
    the next Kafka offset per entity and how many events were written."""
    history = run_history(SimulationOptions(days=days, seed=seed, progress=False))
    write_master_data(history.world, lake.landing)
    by_day: dict[dt.date, Events] = defaultdict(lambda: defaultdict(list))
    for record in history.records:
        if validate_event(record.topic, record.value) is not None:
            continue  # the malformed share goes to quarantine in a real ingest
        event = json.loads(record.value)
        day = dt.date.fromisoformat(event["event_time"][:10])
        by_day[day][TOPICS[record.topic].entity].append(event)
    last = max(by_day)
    offsets: dict[str, int] = defaultdict(int)
    total = 0
    history_events: Events = defaultdict(list)
    for day in sorted(by_day):
        if day != last:
            for entity, events in by_day[day].items():
                history_events[entity].extend(events)
    for entity, events in history_events.items():
        append_bronze(lake, entity, events, first_offset=offsets[entity])
        offsets[entity] += len(events)
        total += len(events)
    return {e: list(v) for e, v in by_day[last].items()}, dict(offsets), total


def _refresh(settings: Any, spark: Any, *, full: bool) -> dict[str, Any]:
    from transforms.refresh import refresh

    started = time.perf_counter()
    summary = refresh(spark, settings, full=full, ingest=False)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "gold_rows": sum(table.rows for table in summary.gold),
        "partitions": {t.table: t.partitions for t in summary.gold},
    }


def measure(
    engine: str, source: Path, work: Path, held_back: Events, offsets: dict[str, int], spark: Any
) -> dict[str, Any]:
    root = work / engine
    shutil.copytree(source, root / "lake")
    settings = load_settings(
        {"SCM_LAKE": str(root / "lake"), "SCM_STATE": str(root / "state"), "SCM_ENGINE": engine,
         "SCM_SPARK_MASTER": "local[2]"}
    )  # fmt: skip
    lake = Lake.at(settings.lake)
    result = {"first": _refresh(settings, spark, full=False)}
    result["full_rebuild"] = _refresh(settings, spark, full=True)
    for entity, events in held_back.items():
        append_bronze(lake, entity, events, first_offset=offsets.get(entity, 0))
    result["new_day_incremental"] = _refresh(settings, spark, full=False)
    full_s = result["full_rebuild"]["seconds"]
    result["incremental_share_of_full"] = round(
        result["new_day_incremental"]["seconds"] / full_s, 3
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="duckdb,spark")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scm-bench-engines-"))
    try:
        source = work / "source"
        started = time.perf_counter()
        held_back, offsets, events = simulated_bronze(Lake.at(str(source)), args.days, args.seed)
        report: dict[str, Any] = {
            "days": args.days,
            "bronze_events": events,
            "held_back_day_events": sum(len(v) for v in held_back.values()),
            "prepare_s": round(time.perf_counter() - started, 1),
        }
        spark = None
        for engine in args.engines.split(","):
            if engine == "spark" and spark is None:
                from scm.spark import spark_session

                spark = spark_session(
                    load_settings({"SCM_SPARK_MASTER": "local[2]"}), app_name="bench-engines"
                )
            report[engine] = measure(engine, source, work, held_back, offsets, spark)
            print(json.dumps({engine: report[engine]}), flush=True)
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
