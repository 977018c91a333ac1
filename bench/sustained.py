"""Sustained warm throughput: how fast a running ingest works through a backlog.

After the freshness run, on the same warm Spark session and lake: a backlog of
``Size.sustained_events`` events (the history replayed) is produced while no query runs,
then a continuous ``start_ingest`` takes it in micro-batches of at most
``Size.sustained_batch_events`` (``SCM_INGEST_MAX_OFFSETS_PER_TRIGGER``; 20,000 = one
second of the 20k ev/s goal). The first batch pays the query's start and is left out: the
rate is the rows of the later batches over the time from the first batch's end to the last
one's, gaps between batches included; the median batch time is of the batches at the cap.
With a 1 s trigger the rate cannot exceed the cap per second, so the goal is met exactly
when a warm batch of the cap's size takes ≤ 1 s.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from bench.context import SizeContext, stop_ingest
from bench.ingest import progress_capture, remove_capture
from bench.memory import wait_for
from bench.progress import epoch_seconds, from_spark_json
from bench.workload import produce
from scm.settings import load_settings

DRAIN_TIMEOUT_S = 900.0


def measure_sustained(context: SizeContext) -> dict[str, Any]:
    """Produce the backlog, drain it with a capped continuous ingest, report the rate."""
    from ingest import start_ingest

    assert context.workload is not None and context.workload.history
    size = context.size
    cap = size.sustained_batch_events
    settings = load_settings(
        {**context.environment("spark"), "SCM_INGEST_MAX_OFFSETS_PER_TRIGGER": str(cap)}
    )
    spark = context.spark.get(settings)
    history = itertools.cycle(context.workload.history)
    backlog = list(itertools.islice(history, size.sustained_events))
    produce_s = produce(settings, backlog)
    capture = progress_capture()
    spark.streams.addListener(capture)
    handle = start_ingest(spark, settings, once=False)

    def taken() -> int:
        return sum(record["rows"] for record in from_spark_json(list(capture.progress)))

    try:
        drained = wait_for(lambda: taken() >= len(backlog), timeout=DRAIN_TIMEOUT_S)
    finally:
        stop_ingest(handle)
        remove_capture(spark, capture)
    batches = [r for r in from_spark_json(capture.progress) if r["rows"] > 0 and r["timestamp"]]
    ends = [epoch_seconds(r["timestamp"]) + r["duration_ms"] / 1e3 for r in batches]
    warm = batches[1:]
    full = [r for r in warm if r["rows"] >= 0.9 * cap]  # not the backlog's short tail
    window = ends[-1] - ends[0] if len(ends) > 1 else None
    return {
        "sustained_events": len(backlog),
        "sustained_produce_s": round(produce_s, 2),
        "sustained_batch_cap": cap,
        "sustained_drained": bool(drained),
        "sustained_batches": len(batches),
        "sustained_first_batch_s": round(batches[0]["duration_ms"] / 1e3, 2) if batches else None,
        "sustained_batch_median_s": (
            round(statistics.median(r["duration_ms"] for r in full) / 1e3, 3) if full else None
        ),
        "sustained_eps": round(sum(r["rows"] for r in warm) / window, 1) if window else None,
    }
