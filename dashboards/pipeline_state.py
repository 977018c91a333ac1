"""Read the pipeline's local state files (SCM_STATE) defensively: bad lines are skipped.

``ingest-progress.jsonl`` has one JSON object per Spark micro-batch (``scm ingest``'s record,
see ``ingest/progress.py``, or a raw StreamingQueryProgress); ``run-failures.jsonl`` one per
failed Dagster run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

TAIL_BYTES = 2_000_000  # the files grow for ever: the dashboards read the recent end only

PROGRESS_COLUMNS = [
    "timestamp",
    "query",
    "batch_id",
    "input_rows",
    "input_rows_per_second",
    "processed_rows_per_second",
    "batch_duration_ms",
    "offsets_behind_latest",
]


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - TAIL_BYTES))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def _number(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _first(record: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


def _offsets_behind(record: Mapping[str, Any]) -> float | None:
    """Offsets the query is behind: a number, ``{"max": n, "avg": ...}`` (scm ingest's
    record) or Spark's per-source ``maxOffsetsBehindLatest`` metrics."""
    value = _first(record, "offsets_behind_latest", "offsetsBehindLatest", "lag")
    if isinstance(value, Mapping):
        value = value.get("max", max((_number(v) or 0.0 for v in value.values()), default=None))
    flat = _number(value)
    if flat is not None:
        return flat
    behind = [
        _number((source.get("metrics") or {}).get("maxOffsetsBehindLatest"))
        for source in record.get("sources") or []
        if isinstance(source, dict)
    ]
    known = [value for value in behind if value is not None]
    return sum(known) if known else None


def read_ingest_progress(path: Path) -> pd.DataFrame:
    """One row per micro-batch with throughput, duration and lag (columns may be empty)."""
    rows = []
    for record in _records(path):
        durations = record.get("durationMs")
        if not isinstance(durations, dict):
            durations = {}
        rows.append(
            {
                "timestamp": pd.to_datetime(
                    _first(record, "time", "timestamp"), utc=True, errors="coerce"
                ),
                "query": str(_first(record, "name", "query", "queryName", "id") or "ingest"),
                "batch_id": _number(_first(record, "batchId", "batch_id")),
                "input_rows": _number(_first(record, "numInputRows", "input_rows")),
                "input_rows_per_second": _number(
                    _first(record, "inputRowsPerSecond", "input_rows_per_second")
                ),
                "processed_rows_per_second": _number(
                    _first(record, "processedRowsPerSecond", "processed_rows_per_second")
                ),
                "batch_duration_ms": _number(
                    _first(record, "batchDuration", "batch_duration_ms")
                    or durations.get("triggerExecution")
                ),
                "offsets_behind_latest": _offsets_behind(record),
            }
        )
    frame = pd.DataFrame(rows, columns=PROGRESS_COLUMNS)
    return frame.dropna(subset=["timestamp"]).sort_values("timestamp").reset_index(drop=True)


def read_run_failures(path: Path) -> pd.DataFrame:
    """Failed runs, newest first, with whatever fields the orchestrator wrote."""
    frame = pd.DataFrame(list(_records(path)))
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", ascending=False)
    return frame.reset_index(drop=True)
