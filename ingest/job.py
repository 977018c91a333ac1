"""Start, watch and stop the ingest's streaming query.

One query, ``scm_ingest_bronze``: Spark's Kafka source over all five ``scm.*`` topics,
split by topic inside ``foreachBatch`` (:mod:`ingest.bronze_sink`), which also keeps
``silver/inventory_position`` current for the keys the batch touched
(:mod:`ingest.inventory_position`). One query instead of one per topic, and the position
in the same micro-batch instead of a second query over the bronze table: on two cores
every extra micro-batch loop competes for the same CPUs and pays its own planning,
offset-log and commit overhead per trigger, and a second query added its own batch
latency behind bronze.

``once`` runs it with ``Trigger.AvailableNow``; otherwise with a processing-time trigger
until :meth:`IngestRun.stop`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.bronze_sink import BronzeSink, last_planned_batch
from ingest.inventory_position import (
    LEGACY_POSITION_QUERY,
    InventoryPosition,
    create_position_table,
)
from ingest.kafka_source import read_topics
from ingest.lock import IngestLock
from ingest.offset_log import BRONZE_QUERY
from ingest.progress import PROGRESS_FILE, ProgressLog
from ingest.tables import create_bronze_tables
from scm.contracts import TOPICS
from scm.errors import ScmError
from scm.lake import Lake
from scm.settings import Settings
from scm.spark import engine_pid

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

log = logging.getLogger("scm.ingest")

_GRACEFUL_STOP_SECONDS = 30.0
# "package.module.SomeError: message", the last line of a Python or Java traceback.
_RAISED = re.compile(r"^[\w.$]+(Exception|Error)(: |$)")


def _with_trigger(writer: DataStreamWriter, settings: Settings, once: bool) -> DataStreamWriter:
    if once:
        return writer.trigger(availableNow=True)
    milliseconds = max(1, int(settings.ingest.trigger_seconds * 1000))
    return writer.trigger(processingTime=f"{milliseconds} milliseconds")


def query_failure_reason(error: BaseException) -> str:
    """The meaningful line of a (multi-line, JVM-flavoured) streaming failure.

    A failure raised in ``foreachBatch`` arrives wrapped twice (stream failure, Python
    proxy); the line that names the exception at the bottom of the traceback is the reason.
    """
    text = str(getattr(error, "desc", None) or error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raised = [line for line in lines if _RAISED.match(line)]
    if raised:
        reason = raised[-1].split(": ", 1)[-1]
    elif lines:
        reason = lines[0].split("terminated with exception: ", 1)[-1]
    else:
        reason = type(error).__name__
    return reason[:300]


@dataclass
class IngestRun:
    """Handles of a running ingest: wait for it, stop it, read its query."""

    spark: SparkSession
    settings: Settings
    once: bool
    lock: IngestLock
    progress: ProgressLog
    query: StreamingQuery | None = None
    _stopped: bool = False

    @property
    def is_active(self) -> bool:
        return self.query is not None and self.query.isActive

    def await_completion(self, timeout: float | None = None) -> bool:
        """Wait until the query finished (``once``) or ``timeout`` passes; True if done.

        Raises :class:`ScmError` with a one-line reason when the query failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            query = self.query
            if query is None:
                return True
            self._raise_if_failed(query)
            if not query.isActive:
                self._flush_progress()
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            wait = 0.5 if remaining is None else max(0.05, min(0.5, remaining))
            # A failure is reported by _raise_if_failed with a clean message.
            with contextlib.suppress(Exception):
                query.awaitTermination(wait)  # type: ignore[arg-type]

    # The name StreamingQuery users (and the benchmark harness) look for.
    def await_termination(self, timeout: float | None = None) -> bool:
        return self.await_completion(timeout)

    def stop(self) -> None:
        """Stop gracefully: let an in-flight micro-batch finish, then stop the query.

        A batch that is interrupted anyway (after the grace period) is replayed on the next
        start, which the idempotent sinks make harmless.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            query = self.query
            if query is not None:
                deadline = time.monotonic() + _GRACEFUL_STOP_SECONDS
                while (
                    time.monotonic() < deadline
                    and query.isActive
                    and query.status.get("isTriggerActive", False)
                ):
                    time.sleep(0.05)
                try:
                    query.stop()
                except Exception as error:
                    log.warning("query %s did not stop cleanly: %s", query.name, error)
                self._flush_progress()
                self.progress.wait_for_termination(str(query.id))
        finally:
            try:
                self.spark.streams.removeListener(self.progress)
            finally:
                self.lock.release()

    def _raise_if_failed(self, query: StreamingQuery) -> None:
        error = query.exception()
        if error is not None:
            raise ScmError(f"ingest query {query.name} failed: {query_failure_reason(error)}")

    def _flush_progress(self) -> None:
        """Wait until the listener has written the last batch that processed records.

        Only such batches get a record: waiting for a trigger that found nothing (its
        progress is never written) used to cost 3 s per query.
        """
        if self.query is None:
            return
        with_records = [p["batchId"] for p in self.query.recentProgress if p.get("numInputRows")]
        if with_records:
            self.progress.wait_for(str(self.query.id), int(max(with_records)), timeout=3.0)

    def __enter__(self) -> IngestRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_ingest(
    spark: SparkSession,
    settings: Settings,
    *,
    once: bool,
    lock: IngestLock | None = None,
) -> IngestRun:
    """Start the ingest on ``spark`` and return its handles.

    Takes the lake's ingest lock (or uses ``lock`` when the caller already holds it) and
    creates every table up front, so empty topics still give readable tables.
    """
    lock = (lock or IngestLock.for_settings(settings)).acquire()
    try:
        lake = Lake.at(settings.lake)
        lock.note_engine_pid(engine_pid(spark))
        topics = tuple(TOPICS)
        create_bronze_tables(lake, topics)
        create_position_table(lake)
        position = InventoryPosition(lake, settings)
        _ensure_ledger(spark, lake, position)
        progress = ProgressLog(Path(settings.state) / PROGRESS_FILE)
        spark.streams.addListener(progress)
    except BaseException:
        lock.release()
        raise

    run = IngestRun(spark, settings, once, lock, progress)
    try:
        checkpoint = lake.checkpoint(BRONZE_QUERY)
        planned = last_planned_batch(spark, checkpoint)
        sink = BronzeSink(
            lake,
            topics,
            progress,
            position=position,
            last_planned_batch=planned,
            checkpoint=checkpoint,
        )
        writer = (
            read_topics(spark, settings, topics)
            .writeStream.queryName(BRONZE_QUERY)
            .option("checkpointLocation", checkpoint)
            .foreachBatch(sink.commit_microbatch)
        )
        run.query = _with_trigger(writer, settings, once).start()
        progress.watch(str(run.query.id), BRONZE_QUERY)
        sink.bind(str(run.query.id))
        log.info("started %s (%s)", BRONZE_QUERY, "available now" if once else "continuous")
    except BaseException:
        run.stop()
        raise
    return run


def _ensure_ledger(spark: SparkSession, lake: Lake, position: InventoryPosition) -> None:
    """The position's ledger, built from bronze where it is missing; a lake from before
    it also loses the checkpoint of the query that kept the position then (Hadoop's file
    system API, so any lake URI works)."""
    changed = position.ensure_ledger(spark)
    if changed:
        log.info("recomputed the inventory position from bronze (%d rows changed)", changed)
    jvm: Any = spark._jvm
    legacy = jvm.org.apache.hadoop.fs.Path(lake.checkpoint(LEGACY_POSITION_QUERY))
    fs = legacy.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if fs.exists(legacy):
        fs.delete(legacy, True)
