"""Start, watch and stop the ingest's streaming queries.

Two queries share one Spark application:

* ``scm_ingest_bronze`` — Spark's Kafka source over all five ``scm.*`` topics, split by
  topic inside ``foreachBatch`` (:mod:`ingest.bronze_sink`). One query instead of one per
  topic: on two cores five micro-batch loops would compete for the same CPUs and each pay
  its own planning, offset-log and commit overhead per trigger, while one loop reads Kafka
  once per trigger and commits each table at most once.
* ``scm_inventory_position`` — a Delta stream over ``bronze/inventory`` keeping
  ``silver/inventory_position`` current (:mod:`ingest.inventory_position`).

``once`` runs them one after the other with ``Trigger.AvailableNow`` (the position query
must see everything the bronze query wrote); otherwise both run side by side with a
processing-time trigger until :meth:`IngestRun.stop`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.bronze_sink import (
    BRONZE_QUERY,
    BronzeSink,
    create_bronze_tables,
    last_planned_batch,
)
from ingest.inventory_position import (
    POSITION_QUERY,
    InventoryPositionSink,
    create_position_table,
)
from ingest.kafka_source import read_topics
from ingest.lock import IngestLock
from ingest.progress import PROGRESS_FILE, ProgressLog
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

QueryStarter = Callable[[], "StreamingQuery"]


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
    """Handles of a running ingest: wait for it, stop it, read its queries."""

    spark: SparkSession
    settings: Settings
    once: bool
    lock: IngestLock
    progress: ProgressLog
    queries: list[StreamingQuery] = field(default_factory=list)
    _pending: list[tuple[str, QueryStarter]] = field(default_factory=list)
    _stopped: bool = False

    @property
    def is_active(self) -> bool:
        return any(query.isActive for query in self.queries) or bool(self._pending)

    def await_completion(self, timeout: float | None = None) -> bool:
        """Wait until every query finished (``once``) or ``timeout`` passes; True if done.

        Raises :class:`ScmError` with a one-line reason when a query failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for query in self.queries:
                self._raise_if_failed(query)
            running = [query for query in self.queries if query.isActive]
            if not running and self._pending:
                self._start_next()
                continue
            if not running:
                self._flush_progress()
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            wait = 0.5 if remaining is None else max(0.05, min(0.5, remaining))
            # A failure is reported by _raise_if_failed with a clean message.
            with contextlib.suppress(Exception):
                running[0].awaitTermination(wait)  # type: ignore[arg-type]

    # The name StreamingQuery users (and the benchmark harness) look for.
    def await_termination(self, timeout: float | None = None) -> bool:
        return self.await_completion(timeout)

    def stop(self) -> None:
        """Stop gracefully: let an in-flight micro-batch finish, then stop each query.

        A batch that is interrupted anyway (after the grace period) is replayed on the next
        start, which the idempotent sinks make harmless.
        """
        if self._stopped:
            return
        self._stopped = True
        self._pending.clear()
        try:
            # Wait for a moment when no query runs a batch, then stop them all at once:
            # waiting for one query at a time let the other start its next batch meanwhile
            # (the position query picks up what the bronze query just committed).
            deadline = time.monotonic() + _GRACEFUL_STOP_SECONDS
            while time.monotonic() < deadline and any(
                query.isActive and query.status.get("isTriggerActive", False)
                for query in self.queries
            ):
                time.sleep(0.05)
            for query in self.queries:
                try:
                    query.stop()
                except Exception as error:
                    log.warning("query %s did not stop cleanly: %s", query.name, error)
            self._flush_progress()
        finally:
            try:
                self.spark.streams.removeListener(self.progress)
            finally:
                self.lock.release()

    def _start_next(self) -> None:
        name, starter = self._pending.pop(0)
        query = starter()
        self.queries.append(query)
        log.info("started %s (%s)", name, "available now" if self.once else "continuous")

    def _raise_if_failed(self, query: StreamingQuery) -> None:
        error = query.exception()
        if error is not None:
            raise ScmError(f"ingest query {query.name} failed: {query_failure_reason(error)}")

    def _flush_progress(self) -> None:
        """Wait until the listener has written the last batch that processed records.

        Only such batches get a record: waiting for a trigger that found nothing (its
        progress is never written) used to cost 3 s per query, twice per run.
        """
        for query in self.queries:
            with_records = [p["batchId"] for p in query.recentProgress if p.get("numInputRows")]
            if with_records:
                self.progress.wait_for(str(query.id), int(max(with_records)), timeout=3.0)

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
    creates every table up front, so empty topics still give readable tables. With
    ``once`` the bronze query runs first and the position query starts when it is done
    (inside :meth:`IngestRun.await_completion`).
    """
    lock = (lock or IngestLock.for_settings(settings)).acquire()
    try:
        lake = Lake.at(settings.lake)
        lock.note_engine_pid(engine_pid(spark))
        topics = tuple(TOPICS)
        create_bronze_tables(spark, lake, topics)
        create_position_table(spark, lake)
        progress = ProgressLog(Path(settings.state) / PROGRESS_FILE)
        spark.streams.addListener(progress)
    except BaseException:
        lock.release()
        raise

    def start_bronze() -> StreamingQuery:
        checkpoint = lake.checkpoint(BRONZE_QUERY)
        planned = last_planned_batch(spark, checkpoint)
        sink = BronzeSink(lake, topics, progress, last_planned_batch=planned)
        writer = (
            read_topics(spark, settings, topics)
            .writeStream.queryName(BRONZE_QUERY)
            .option("checkpointLocation", checkpoint)
            .foreachBatch(sink.commit_microbatch)
        )
        query = _with_trigger(writer, settings, once).start()
        progress.watch(str(query.id), BRONZE_QUERY)
        sink.bind(str(query.id))
        return query

    def start_position() -> StreamingQuery:
        sink = InventoryPositionSink(lake, settings, progress)
        writer = (
            spark.readStream.format("delta")
            # bronze is append-only; a rewrite that changes data is not new inventory.
            .option("skipChangeCommits", "true")
            .load(lake.bronze("inventory"))
            .writeStream.queryName(POSITION_QUERY)
            .option("checkpointLocation", lake.checkpoint(POSITION_QUERY))
            .foreachBatch(sink.commit_microbatch)
        )
        query = _with_trigger(writer, settings, once).start()
        progress.watch(str(query.id), POSITION_QUERY)
        return query

    run = IngestRun(spark, settings, once, lock, progress)
    run._pending = [(BRONZE_QUERY, start_bronze), (POSITION_QUERY, start_position)]
    try:
        run._start_next()
        if not once:
            run._start_next()
    except BaseException:
        run.stop()
        raise
    return run
