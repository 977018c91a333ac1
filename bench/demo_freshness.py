"""Freshness under the whole platform: ``scm demo`` up, then markers produced beside it.

``python -m bench.demo_freshness --days 10`` starts ``scm demo`` on its own broker port,
lake and state (Dagster, Streamlit, the live simulator and the continuous ingest all run),
waits until it says it is running and for a settling time, then produces a 100 ev/s
background of replayed simulator events and 4 marker snapshots/s for 30 s, as the freshness
measure of ``python -m bench`` does, and notes when each marker is readable in
``bronze/inventory`` and in ``silver/inventory_position`` (delta-rs, as any reader). Beside
them, in the same run: the micro-batches of the demo's own ``scm ingest`` process that
started under the load (from its ``ingest-progress.jsonl``: the process a user runs, with no
bench thread in it), and the direct floor (``bench.direct``: confluent-kafka → pyarrow →
delta-rs over the demo broker's topics, into a scratch lake, while the demo still runs).
Prints one JSON document; the demo is stopped with SIGTERM and its folder removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.context import REPO, empty_settings_file, scm_command
from bench.demo import READY_LINE, READY_TIMEOUT_S, _free_port
from bench.direct import direct_to_delta
from bench.freshness import (
    DRAIN_S,
    Markers,
    _percentiles,
    _watch_bronze,
    _watch_position,
    produce_load,
)
from bench.memory import wait_for
from bench.progress import epoch_seconds
from bench.workload import high_watermarks
from ingest.offset_log import BRONZE_QUERY
from ingest.progress import PROGRESS_FILE
from scm.lake import Lake
from scm.settings import Settings, load_settings


def batches_since(progress_file: Path, since: float) -> dict[str, Any]:
    """The bronze query's micro-batches with rows that started at ``since`` or later, from
    an ``scm ingest`` process's progress log: how many, median seconds and rows."""
    records = [json.loads(line) for line in progress_file.read_text().splitlines() if line]
    batches = [
        record
        for record in records
        if record.get("query") == BRONZE_QUERY
        and record.get("input_rows")
        and record.get("time")
        and epoch_seconds(record["time"]) >= since
    ]
    if not batches:
        return {"batches_under_load": 0}
    return {
        "batches_under_load": len(batches),
        "batch_median_s": round(
            statistics.median(r["batch_duration_ms"] for r in batches) / 1e3, 3
        ),
        "batch_rows_median": statistics.median(r["input_rows"] for r in batches),
    }


def direct_floor(settings: Settings, lake_root: Path) -> dict[str, Any]:
    """The direct path over every message the broker holds now, as ``bench`` measures it."""
    expected = {topic: count for topic, count in high_watermarks(settings).items() if count}
    result = direct_to_delta(settings, expected, str(lake_root))
    return {
        "direct_messages": result.messages,
        "direct_s": round(result.seconds, 2),
        "direct_eps": round(result.messages / result.seconds) if result.seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after ready")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    from simulator import SimulationOptions, generate_history

    work = Path(tempfile.mkdtemp(prefix="scm-demo-freshness-"))
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("SCM_")},
        "PYTHONUNBUFFERED": "1",
        "SCM_LAKE": str(work / "lake"),
        "SCM_STATE": str(work / "state"),
        "SCM_SETTINGS_FILE": str(empty_settings_file(work)),
        "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
        "SCM_DAGSTER_PORT": str(_free_port()),
        "SCM_STREAMLIT_PORT": str(_free_port()),
    }
    settings = load_settings({k: v for k, v in env.items() if k.startswith("SCM_")})
    lake = Lake.at(settings.lake)
    background = [
        (r.topic, r.key.encode() if isinstance(r.key, str) else r.key, r.value)
        for r in generate_history(SimulationOptions(days=2, seed=13, progress=False))
    ]
    report: dict[str, Any] = {"days": args.days}
    log = work / "demo.log"
    started = time.monotonic()
    with open(log, "wb") as output:
        demo = subprocess.Popen(
            scm_command("demo", "--days", str(args.days)), env=env, cwd=REPO,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: READY_LINE in log.read_text(errors="replace"), timeout=READY_TIMEOUT_S)
        report["ready_s"] = round(time.monotonic() - started, 1)
        time.sleep(args.settle)
        markers, stop = Markers(), threading.Event()
        watchers = [
            threading.Thread(target=_watch_bronze, args=(lake, markers, stop), daemon=True),
            threading.Thread(target=_watch_position, args=(lake, markers, stop), daemon=True),
        ]
        for watcher in watchers:
            watcher.start()
        stop_produce, counts = threading.Event(), dict[str, int]()
        threading.Timer(args.seconds, stop_produce.set).start()
        load_started = time.time()
        produce_load(settings, background, (100.0, 4.0), markers, stop_produce, counts)
        report.update(counts)
        wait_for(
            lambda: (
                len(markers.in_position) >= len(markers.produced_at)
                and len(markers.in_bronze) >= len(markers.produced_at)
            ),
            timeout=DRAIN_S,
        )
        drained_at = time.time()
        stop.set()
        with markers.lock:
            for coordinates, sku in markers.coordinates.items():
                if sku not in markers.in_bronze and coordinates in markers.bronze_rows_seen:
                    markers.in_bronze[sku] = markers.bronze_rows_seen[coordinates]
        for name, seen in (("bronze", markers.in_bronze), ("position", markers.in_position)):
            latencies = [seen.get(s, drained_at) - t for s, t in markers.produced_at.items()]
            report[name] = _percentiles(latencies)
            report[f"missed_{name}"] = len(markers.produced_at) - len(seen)
        report["ingest_process"] = batches_since(Path(settings.state) / PROGRESS_FILE, load_started)
        report["direct_floor"] = direct_floor(settings, work / "direct")
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            demo.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
