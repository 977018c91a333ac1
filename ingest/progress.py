"""Per-micro-batch progress: one log line and one JSON line in ``SCM_STATE/ingest-progress.jsonl``.

A :class:`StreamingQueryListener` sees every batch of the queries it is told about (it is
per batch, not per row, so Python is cheap here, once the event arrives as JSON: see
:class:`JsonProgressListener`). Sinks add their own counts (valid and
quarantined rows, positions changed, alerts) through :meth:`ProgressLog.add_counts`; those
are merged into the record of the same batch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import JStreamingQueryListener, QueryProgressEvent

log = logging.getLogger("scm.ingest")

PROGRESS_FILE = "ingest-progress.jsonl"
_OFFSET_METRICS = ("avgOffsetsBehindLatest", "maxOffsetsBehindLatest", "minOffsetsBehindLatest")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else round(number, 1)  # NaN when Spark has no rate


def progress_record(
    progress: Mapping[str, Any], label: str, counts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON line for one ``StreamingQueryProgress`` (as Spark's JSON, parsed)."""
    behind: dict[str, float] = {}
    for source in progress.get("sources", []):
        metrics = source.get("metrics") or {}
        for name in _OFFSET_METRICS:
            value = _number(metrics.get(name))
            if value is not None:
                key = name.removesuffix("OffsetsBehindLatest")
                behind[key] = max(behind.get(key, value), value)
    durations = progress.get("durationMs") or {}
    record: dict[str, Any] = {
        "time": progress.get("timestamp"),
        "query": label,
        "batch_id": progress.get("batchId"),
        "input_rows": int(progress.get("numInputRows") or 0),
        "input_rows_per_second": _number(progress.get("inputRowsPerSecond")),
        "processed_rows_per_second": _number(progress.get("processedRowsPerSecond")),
        "batch_duration_ms": progress.get("batchDuration", durations.get("triggerExecution")),
        "offsets_behind_latest": behind or None,
    }
    if counts:
        record.update(counts)
    return record


def progress_line(record: Mapping[str, Any]) -> str:
    """One concise human line for a progress record."""
    parts = [
        f"{record['query']} batch {record['batch_id']}: {record['input_rows']} rows "
        f"in {record['batch_duration_ms']} ms",
        f"{record['input_rows_per_second'] or 0:g} rows/s in",
        f"{record['processed_rows_per_second'] or 0:g} rows/s processed",
    ]
    behind = record.get("offsets_behind_latest")
    if behind and "max" in behind:
        parts.append(f"{behind['max']:g} offsets behind latest (max)")
    for key in ("valid_rows", "quarantined_rows", "positions_changed", "alerts_published"):
        if key in record:
            parts.append(f"{key.replace('_', ' ')} {record[key]}")
    return ", ".join(parts)


class _ProgressAsJson(JStreamingQueryListener):
    """PySpark's bridge of listener events, except that a progress event crosses as one JSON
    string. PySpark builds it field by field, walking each of the progress's Java maps
    through py4j; every walk ends in a Java exception that PySpark then matches against ~70
    exception classes, each a class lookup through every jar: 0.38 s of a JVM thread and of
    the Python process per batch, while the next batch ran (measured on a warm ingest)."""

    def onQueryProgress(self, jevent: Any) -> None:
        self.pylistener.onQueryProgress(QueryProgressEvent.fromJson(json.loads(jevent.json())))


class JsonProgressListener(StreamingQueryListener):
    """A :class:`StreamingQueryListener` whose progress events arrive through
    :class:`_ProgressAsJson` (the same event objects, built from Spark's JSON)."""

    @property
    def _jlistener(self) -> Any:
        if not hasattr(self, "_jlistenerobj"):
            from pyspark import SparkContext

            jvm: Any = SparkContext._jvm
            self._jlistenerobj = jvm.PythonStreamingQueryListenerWrapper(_ProgressAsJson(self))
        return self._jlistenerobj


class ProgressLog(JsonProgressListener):
    """Writes progress of the registered queries; ignores any other query in the session."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._labels: dict[str, str] = {}
        self._counts: dict[tuple[str, int], dict[str, Any]] = {}
        self._last_batch: dict[str, int] = {}
        self._terminated: set[str] = set()
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def watch(self, query_id: str, label: str) -> None:
        with self._lock:
            self._labels[str(query_id)] = label

    def add_counts(self, label: str, batch_id: int, counts: Mapping[str, Any]) -> None:
        """Counts a sink computed for ``batch_id``; joined to that batch's progress record."""
        with self._lock:
            self._counts[(label, batch_id)] = dict(counts)

    def last_batch(self, query_id: str) -> int | None:
        with self._lock:
            return self._last_batch.get(str(query_id))

    def wait_for(self, query_id: str, batch_id: int, timeout: float = 5.0) -> None:
        """Listener events are asynchronous: wait until ``batch_id`` has been written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.last_batch(query_id)
            if seen is not None and seen >= batch_id:
                return
            time.sleep(0.05)

    def wait_for_termination(self, query_id: str, timeout: float = 5.0) -> bool:
        """Wait until Spark has told this listener that the query ended.

        The event arrives asynchronously after ``query.stop()`` returns; a process that
        exits before it arrives leaves the JVM calling back into a closed gateway, which
        prints a py4j stack trace on the user's terminal.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if str(query_id) in self._terminated:
                    return True
            time.sleep(0.02)
        return False

    def record(self, progress: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write one progress record; returns it (None for unwatched or idle batches)."""
        query_id = str(progress.get("id"))
        with self._lock:
            label = self._labels.get(query_id)
        if label is None:
            return None
        batch_id = int(progress.get("batchId", -1))
        with self._lock:
            counts = self._counts.pop((label, batch_id), None)
            self._last_batch[query_id] = max(batch_id, self._last_batch.get(query_id, -1))
        if not progress.get("numInputRows") and counts is None:
            return None  # Spark's idle heartbeat: nothing was processed
        record = progress_record(progress, label, counts)
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")
        log.info(progress_line(record))
        return record

    # StreamingQueryListener callbacks (run on a py4j callback thread).
    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.record(json.loads(event.progress.json))
        except Exception:  # a listener must never take the stream down
            log.exception("could not record ingest progress")

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        with self._lock:
            self._terminated.add(str(event.id))
