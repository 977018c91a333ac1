"""Ingest throughput: Spark ingest (in-process and ``scm ingest --once``) beside the raw consume
and the direct pyarrow -> Delta path, on the same broker and the same events; then the
seconds from launching a continuous ``scm ingest`` to its first events readable.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any

from bench.context import SizeContext, await_ingest, scm_command
from bench.direct import direct_to_delta, raw_consume
from bench.first_events import first_events_live
from bench.jstack import JstackSampler, driver_pid
from bench.lakestats import bronze_rows, layer_stats
from bench.memory import BROKER, MemorySampler
from bench.profile import last_stage_id, stages_since
from bench.progress import from_spark_json, read_progress, summarize
from bench.workload import high_watermarks

INGEST_TIMEOUT_S = 1800.0


def _rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def progress_capture() -> Any:
    """A listener keeping every ``StreamingQueryProgress`` JSON (phases included)."""
    from ingest.progress import JsonProgressListener

    class ProgressCapture(JsonProgressListener):
        def __init__(self) -> None:
            self.progress: list[str] = []
            self.terminated = threading.Event()

        def onQueryStarted(self, event: Any) -> None:
            pass

        def onQueryProgress(self, event: Any) -> None:
            self.progress.append(event.progress.json)

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            self.terminated.set()

    return ProgressCapture()


def remove_capture(spark: Any, capture: Any, timeout: float = 5.0) -> None:
    """Remove ``capture`` once it has heard its query end: Spark calls a listener removed
    before that event arrives through a closed Python callback and logs a py4j trace."""
    capture.terminated.wait(timeout)
    spark.streams.removeListener(capture)


def ingest_in_process(context: SizeContext, name: str = "spark") -> dict[str, Any]:
    """``start_ingest(once=True)`` on the bench's already started Spark session."""
    from ingest import start_ingest

    settings = context.settings(name)
    spark = context.spark.get(settings)
    capture = progress_capture()
    spark.streams.addListener(capture)
    first_stage = last_stage_id(spark)
    try:
        with (
            MemorySampler([os.getpid()], exclude_roles=BROKER) as memory,
            JstackSampler(driver_pid(spark)) as jvm,
        ):
            started = time.perf_counter()
            handle = start_ingest(spark, settings, once=True)
            await_ingest(handle, INGEST_TIMEOUT_S)
            seconds = time.perf_counter() - started
    finally:
        remove_capture(spark, capture)
    progress = summarize(from_spark_json(capture.progress))
    return {
        "seconds": seconds,
        "stages": stages_since(spark, first_stage),
        "jvm_profile": jvm.summary(),
        "rows": bronze_rows(settings.lake),
        "progress": progress,
        "memory": memory.summary(),
    }


def ingest_cli(context: SizeContext, name: str = "cli") -> dict[str, Any]:
    """``scm ingest --once`` as a fresh process: wall time, start-up, work after start-up."""
    settings = context.settings(name)
    log = settings.state / "ingest-cli.log"
    launched = time.time()
    started = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            scm_command("ingest", "--once"), env=context.subprocess_env(name),
            stdout=output, stderr=subprocess.STDOUT, cwd=context.work,
        )  # fmt: skip
        with MemorySampler([process.pid]) as memory:
            try:
                code = process.wait(timeout=INGEST_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    wall = time.perf_counter() - started
    progress = summarize(read_progress(settings.state / "ingest-progress.jsonl"))
    first = progress.get("first_batch_start_epoch")
    last = progress.get("last_batch_end_epoch")
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    return {
        "exit_code": code,
        "wall_s": wall,
        "startup_s": (first - launched) if first else None,
        "after_startup_s": (last - first) if first and last else None,
        "rows": bronze_rows(settings.lake),
        "progress": progress,
        "memory": memory.summary(),
        "log_tail": tail,
    }


def measure_ingest(context: SizeContext, result: dict[str, Any]) -> None:
    """Fill the ``ingest`` measure for one size (the workload is already produced)."""
    assert context.workload is not None
    workload = context.workload
    settings = context.settings("direct")
    expected = {topic: count for topic, count in high_watermarks(settings).items() if count}
    events = sum(expected.values())
    result.update(events=events, event_bytes=workload.bytes, events_by_topic=expected)

    raw = raw_consume(settings, expected)
    result.update(raw_consume_s=raw.seconds, raw_consume_eps=_rate(raw.messages, raw.seconds))

    direct = direct_to_delta(settings, expected, settings.lake)
    result.update(
        direct_s=direct.seconds,
        direct_eps=_rate(direct.messages, direct.seconds),
        direct_rows=direct.rows_written,
        direct_detail={
            "batches": direct.batches,
            "parse_s": round(direct.parse_s, 3),
            "delta_write_s": round(direct.write_s, 3),
        },
    )

    inprocess = ingest_in_process(context)
    context.main_lake_ready = True
    result.update(
        spark_startup_s=context.spark.startup_s,
        spark_inprocess_s=inprocess["seconds"],
        spark_inprocess_eps=_rate(events, inprocess["seconds"]),
        spark_inprocess_rows=inprocess["rows"],
        spark_inprocess_progress=inprocess["progress"],
        spark_inprocess_memory=inprocess["memory"],
        spark_inprocess_stages=inprocess["stages"],
        spark_inprocess_jvm_profile=inprocess["jvm_profile"],
        bronze_tables=layer_stats(context.settings("spark").lake, "bronze"),
    )

    cli = ingest_cli(context)
    result.update(
        cli_exit_code=cli["exit_code"],
        cli_wall_s=cli["wall_s"],
        cli_wall_eps=_rate(events, cli["wall_s"]),
        cli_startup_s=cli["startup_s"],
        cli_after_startup_s=cli["after_startup_s"],
        cli_after_startup_eps=_rate(events, cli["after_startup_s"]),
        cli_rows=cli["rows"],
        cli_progress=cli["progress"],
        cli_memory=cli["memory"],
        cli_peak_rss_mib=cli["memory"]["peak_total_rss_mib"],
        cli_log_tail=cli["log_tail"] if cli["exit_code"] else [],
    )
    first = first_events_live(
        context.settings("first"),
        context.subprocess_env("first"),
        context.work / "first-events.log",
    )
    result.update(
        first_events_s=first["first_events_s"],
        first_events_stop_s=first.get("stop_s"),
        first_events_exit_code=first["exit_code"],
    )
    direct_eps = result["direct_eps"] or 0
    if direct_eps:
        result["ratio_inprocess_to_direct"] = round(result["spark_inprocess_eps"] / direct_eps, 3)
        if result["cli_after_startup_eps"]:
            result["ratio_cli_to_direct"] = round(result["cli_after_startup_eps"] / direct_eps, 3)
    missing = [
        path
        for path, rows in (("in-process", inprocess["rows"]), ("cli", cli["rows"]))
        if rows < events
    ]
    if missing:
        result["notes"].append(
            f"bronze rows below the {events} events produced for: {', '.join(missing)}"
            " (see *_rows; quarantine counts as bronze)"
        )
