"""Reading Spark's streaming progress for the profile.

The ingest job writes one JSON line per batch (``SCM_STATE/ingest-progress.jsonl``); the
bench's own listener captures Spark's full ``StreamingQueryProgress`` for in-process runs.
From them: when the first micro-batch started (so start-up can be told apart from work),
rows per batch, and where the batch time went (``durationMs``: addBatch, walCommit...).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any


def _normalized(record: dict[str, Any]) -> dict[str, Any] | None:
    """One shape for Spark's own progress JSON and the ingest job's JSON lines."""
    if "durationMs" in record and "numInputRows" in record:
        durations = record.get("durationMs") or {}
        return {
            "query": str(record.get("name") or record.get("id")),
            "timestamp": record.get("timestamp"),
            "rows": int(record.get("numInputRows") or 0),
            "duration_ms": int(durations.get("triggerExecution") or 0),
            "phases": {k: int(v) for k, v in durations.items()},
        }
    if "input_rows" in record and "batch_duration_ms" in record:
        extra = {
            key: value
            for key, value in record.items()
            if key.endswith("_rows") and key != "input_rows" and isinstance(value, int)
        }
        return {
            "query": str(record.get("query")),
            "timestamp": record.get("time"),
            "rows": int(record.get("input_rows") or 0),
            "duration_ms": int(record.get("batch_duration_ms") or 0),
            "phases": {},
            "counts": extra,
        }
    return None


def read_progress(path: Path) -> list[dict[str, Any]]:
    """Progress records in file order (unreadable lines are skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and (progress := _normalized(record)) is not None:
            records.append(progress)
    return records


def from_spark_json(progress_json: list[str]) -> list[dict[str, Any]]:
    """Records from ``StreamingQueryProgress.json`` strings (a bench listener's capture)."""
    records = []
    for text in progress_json:
        progress = _normalized(json.loads(text))
        if progress is not None:
            records.append(progress)
    return records


def epoch_seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Batches with data: rows, wall window (first start to last end), time per phase."""
    busy = [r for r in records if r["rows"] > 0]
    if not busy:
        return {"batches": 0, "rows": 0}
    phases: dict[str, int] = {}
    for record in busy:
        for phase, millis in record["phases"].items():
            phases[phase] = phases.get(phase, 0) + millis
    timed = [r for r in busy if r.get("timestamp")]
    starts = [epoch_seconds(r["timestamp"]) for r in timed]
    ends = [epoch_seconds(r["timestamp"]) + r["duration_ms"] / 1e3 for r in timed]
    return {
        "batches": len(busy),
        "queries": sorted({r["query"] for r in busy}),
        "rows": sum(r["rows"] for r in busy),
        "batch_ms_total": sum(r["duration_ms"] for r in busy),
        "batch_ms_max": max(r["duration_ms"] for r in busy),
        "rows_per_batch_max": max(r["rows"] for r in busy),
        "first_batch_start_epoch": min(starts) if starts else None,
        "last_batch_end_epoch": max(ends) if ends else None,
        "window_s": round(max(ends) - min(starts), 3) if starts else None,
        "duration_ms_by_phase": dict(sorted(phases.items(), key=lambda item: -item[1])),
    }


def per_query(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Batches with data per query: count, median and max batch milliseconds, phases."""
    found: dict[str, dict[str, Any]] = {}
    for query in sorted({r["query"] for r in records}):
        busy = [r for r in records if r["query"] == query and r["rows"] > 0]
        if not busy:
            continue
        durations = sorted(r["duration_ms"] for r in busy)
        phases: dict[str, int] = {}
        for record in busy:
            for phase, millis in record["phases"].items():
                phases[phase] = phases.get(phase, 0) + millis
        found[query] = {
            "batches": len(busy),
            "rows": sum(r["rows"] for r in busy),
            "median_batch_ms": durations[len(durations) // 2],
            "max_batch_ms": durations[-1],
            "mean_phase_ms": {k: round(v / len(busy)) for k, v in phases.items()},
        }
    return found
