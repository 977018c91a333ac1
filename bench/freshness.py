"""Freshness: continuous ingest under a steady produce rate; seconds from produce to visible.

Marker events (``inventory_snapshot`` of a made-up sku at location ``BENCH-FRESH``) go out
at a fixed rate beside a steady background of replayed simulator events. A marker is
visible in bronze when its Kafka coordinates (``_partition``, ``_offset``) appear in a new
file of ``bronze/inventory``, and in the inventory position when its (location, sku) row
appears in ``silver/inventory_position``. Then, on the same warm session, the sustained
throughput of a running ingest (:mod:`bench.sustained`).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.context import SizeContext, stop_ingest
from bench.ingest import progress_capture, remove_capture
from bench.memory import wait_for
from bench.progress import epoch_seconds, from_spark_json, per_query
from bench.sustained import measure_sustained
from bench.workload import producer_config
from scm.lake import Lake
from scm.storage import filesystem

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from scm.settings import Settings

MARKER_LOCATION = "BENCH-FRESH"
POLL_S = 0.1
STARTUP_S = 180.0  # for the continuous queries' first micro-batch
DRAIN_S = 90.0  # for markers still in flight when producing stops


@dataclass
class Markers:
    """Produce times and Kafka coordinates of the markers, and when each became visible."""

    produced_at: dict[str, float] = field(default_factory=dict)
    coordinates: dict[tuple[int, int], str] = field(default_factory=dict)
    bronze_rows_seen: dict[tuple[int, int], float] = field(default_factory=dict)
    in_bronze: dict[str, float] = field(default_factory=dict)
    in_position: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def marker_event(run: str, number: int) -> tuple[str, bytes, bytes, str]:
    """(topic, key, value, sku) of one contract-valid marker."""
    sku = f"BENCH-{run}-{number:06d}"
    value = {
        "event_id": f"bench-{run}-{number}",
        "event_type": "inventory_snapshot",
        "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": "bench",
        "schema_version": 1,
        "location_id": MARKER_LOCATION,
        "sku": sku,
        "on_hand": number,
    }
    return "scm.inventory", f"{MARKER_LOCATION}:{sku}".encode(), json.dumps(value).encode(), sku


def produce_load(
    settings: Settings,
    background: Sequence[tuple[str, bytes, bytes]],
    rates: tuple[float, float],
    markers: Markers,
    stop: threading.Event,
    counts: dict[str, int],
) -> None:
    """Until ``stop``: replayed ``background`` events and markers at ``rates`` (events/s,
    markers/s); ``counts`` gets how many of each went out."""
    from confluent_kafka import Producer

    background_rate, marker_rate = rates
    run = uuid.uuid4().hex[:6]
    producer = Producer({**producer_config(settings), "linger.ms": 0})
    started = time.perf_counter()
    sent_markers = sent_background = 0
    while not stop.is_set():
        elapsed = time.perf_counter() - started
        while background and sent_background < elapsed * background_rate:
            topic, key, value = background[sent_background % len(background)]
            producer.produce(topic, value=value, key=key)
            sent_background += 1
        if sent_markers < elapsed * marker_rate:
            topic, key, value, sku = marker_event(run, sent_markers)

            def delivered(error: Any, message: Any, sku: str = sku) -> None:
                if error is None:
                    with markers.lock:
                        markers.coordinates[(message.partition(), message.offset())] = sku

            markers.produced_at[sku] = time.time()
            producer.produce(topic, value=value, key=key, on_delivery=delivered)
            sent_markers += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    counts.update(markers=sent_markers, background=sent_background)


def _new_versions(path: str, stop: threading.Event) -> Iterator[DeltaTable]:
    """The Delta table at ``path`` each time it has a new version, polled until ``stop``."""
    from deltalake import DeltaTable

    version = -1
    table: DeltaTable | None = None
    while not stop.is_set():
        try:
            if table is None:
                table = DeltaTable(path)
            else:
                table.update_incremental()
        except Exception:  # the table may not exist yet
            time.sleep(POLL_S)
            continue
        if table.version() != version:
            version = table.version()
            yield table
        time.sleep(POLL_S)


def _watch_bronze(lake: Lake, markers: Markers, stop: threading.Event) -> None:
    """Read only files added since the last look; note when each marker's row shows up."""
    import pyarrow.parquet as pq

    seen: set[str] | None = None
    for table in _new_versions(lake.bronze("inventory"), stop):
        files = set(table.file_uris())
        new = files - seen if seen is not None else set()
        seen = files
        now = time.time()
        for file in new:
            try:
                store, inner = filesystem(file)
                rows = pq.read_table(
                    inner, columns=["_partition", "_offset"], filesystem=store
                ).to_pylist()
            except Exception:
                continue
            with markers.lock:
                for row in rows:
                    markers.bronze_rows_seen.setdefault((row["_partition"], row["_offset"]), now)
                for coordinates, sku in markers.coordinates.items():
                    if sku not in markers.in_bronze and coordinates in markers.bronze_rows_seen:
                        markers.in_bronze[sku] = markers.bronze_rows_seen[coordinates]


def _watch_position(lake: Lake, markers: Markers, stop: threading.Event) -> None:
    """Note when each marker's (location, sku) row appears in the inventory position."""
    import pyarrow.compute as pc

    for table in _new_versions(lake.silver("inventory_position"), stop):
        rows = (
            table.to_pyarrow_dataset()
            .to_table(columns=["sku"], filter=pc.field("location_id") == MARKER_LOCATION)
            .column("sku")
        )
        now = time.time()
        with markers.lock:
            for sku in rows.to_pylist():
                markers.in_position.setdefault(sku, now)


def spark_work(spark: Any) -> tuple[int, int]:
    """The newest (job id, stage id) of this application: both count up from 0, so their
    differences count the jobs and stages in between (the status store keeps only the
    latest 1,000 of each)."""
    from bench.profile import _stages

    jobs = spark.sparkContext._jsc.sc().statusStore().jobsList(None)
    newest_job = max((int(jobs.apply(i).jobId()) for i in range(jobs.size())), default=-1)
    newest_stage = max((int(stage.stageId()) for stage in _stages(spark)), default=-1)
    return newest_job, newest_stage


def _batches_under_load(
    progress: Sequence[str], since: float, before: tuple[int, int], after: tuple[int, int]
) -> dict[str, Any]:
    """The micro-batches that started while the load ran: median seconds and rows, and Spark
    jobs and stages per batch (status-store counts from the load's start to the drain)."""
    batches = [
        record
        for record in from_spark_json(list(progress))
        if record["rows"] and record["timestamp"] and epoch_seconds(record["timestamp"]) >= since
    ]
    if not batches:
        return {"batches_under_load": 0}
    return {
        "batches_under_load": len(batches),
        "batch_median_s": round(statistics.median(r["duration_ms"] for r in batches) / 1e3, 3),
        "batch_rows_median": statistics.median(r["rows"] for r in batches),
        "jobs_per_batch": round((after[0] - before[0]) / len(batches), 1),
        "stages_per_batch": round((after[1] - before[1]) / len(batches), 1),
    }


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def measure_freshness(context: SizeContext, result: dict[str, Any]) -> None:
    """Continuous ``start_ingest`` on the size's main lake while markers are produced."""
    from ingest import start_ingest

    settings = context.settings("spark")
    spark = context.spark.get(settings)
    lake = Lake.at(settings.lake)
    markers = Markers()
    stop_watch = threading.Event()
    watchers = [
        threading.Thread(target=_watch_bronze, args=(lake, markers, stop_watch), daemon=True),
        threading.Thread(target=_watch_position, args=(lake, markers, stop_watch), daemon=True),
    ]
    capture = progress_capture()
    spark.streams.addListener(capture)
    handle = start_ingest(spark, settings, once=False)
    try:
        # Let the query finish its first (catch-up) micro-batch before the clock starts.
        query = handle.query
        wait_for(lambda: query is None or query.lastProgress is not None, timeout=STARTUP_S)
        time.sleep(max(2.0, 2 * settings.ingest.trigger_seconds))
        for watcher in watchers:
            watcher.start()
        stop_produce = threading.Event()
        counts: dict[str, int] = {}
        size = context.size
        producer = threading.Thread(
            target=produce_load,
            args=(
                context.settings("spark"),
                context.workload.history if context.workload else [],
                (size.freshness_background_rate, size.freshness_marker_rate),
                markers,
                stop_produce,
                counts,
            ),
            daemon=True,
        )
        producer.start()
        load_started, work_before = time.time(), spark_work(spark)
        time.sleep(context.size.freshness_seconds)
        stop_produce.set()
        producer.join(timeout=60)
        wait_for(
            lambda: (
                len(markers.in_position) >= len(markers.produced_at)
                and len(markers.in_bronze) >= len(markers.produced_at)
            ),
            timeout=DRAIN_S,
        )
        drained_at, work_after = time.time(), spark_work(spark)
    finally:
        stop_watch.set()
        stop_ingest(handle)
        remove_capture(spark, capture)
    with markers.lock:
        for coordinates, sku in markers.coordinates.items():
            if sku not in markers.in_bronze and coordinates in markers.bronze_rows_seen:
                markers.in_bronze[sku] = markers.bronze_rows_seen[coordinates]
    # A marker never seen counts as seen at the end: its latency is a lower bound.
    bronze = [
        markers.in_bronze.get(sku, drained_at) - produced
        for sku, produced in markers.produced_at.items()
    ]
    position = [
        markers.in_position.get(sku, drained_at) - produced
        for sku, produced in markers.produced_at.items()
    ]
    to_bronze, to_position = _percentiles(bronze), _percentiles(position)
    result.update(
        seconds=context.size.freshness_seconds,
        marker_rate_eps=context.size.freshness_marker_rate,
        background_rate_eps=context.size.freshness_background_rate,
        markers=counts.get("markers", 0),
        background_events=counts.get("background", 0),
        trigger_seconds=settings.ingest.trigger_seconds,
        bronze_p50_s=to_bronze["p50"],
        bronze_p95_s=to_bronze["p95"],
        bronze_max_s=to_bronze["max"],
        position_p50_s=to_position["p50"],
        position_p95_s=to_position["p95"],
        position_max_s=to_position["max"],
        missed_bronze=len(markers.produced_at) - len(markers.in_bronze),
        missed_position=len(markers.produced_at) - len(markers.in_position),
        spark_progress=per_query(from_spark_json(capture.progress)),
        **_batches_under_load(capture.progress, load_started, work_before, work_after),
    )
    result.update(measure_sustained(context))
