"""The results document: every measure's keys, the goals with pass/fail, scaling, the table."""

from __future__ import annotations

import math
from typing import Any

MEASURES: tuple[str, ...] = ("ingest", "freshness", "refresh", "dashboard", "memory")

# Every key a measure reports; a measure that could not run still carries them (as null).
KEYS: dict[str, tuple[str, ...]] = {
    "ingest": (
        "events", "event_bytes", "produce_s", "produce_eps", "raw_consume_s", "raw_consume_eps",
        "direct_s", "direct_eps", "direct_rows", "spark_startup_s", "spark_inprocess_s",
        "spark_inprocess_eps", "spark_inprocess_rows", "cli_wall_s", "cli_wall_eps",
        "cli_startup_s", "cli_after_startup_s", "cli_after_startup_eps", "cli_rows",
        "cli_peak_rss_mib", "ratio_inprocess_to_direct", "ratio_cli_to_direct",
        "first_events_s", "first_events_stop_s", "first_events_exit_code",
    ),
    "freshness": (
        "seconds", "marker_rate_eps", "background_rate_eps", "markers", "trigger_seconds",
        "bronze_p50_s", "bronze_p95_s", "bronze_max_s", "position_p50_s", "position_p95_s",
        "position_max_s", "missed_bronze", "missed_position", "sustained_events",
        "sustained_batch_cap", "sustained_batches", "sustained_batch_median_s", "sustained_eps",
    ),
    "refresh": (
        "days", "full_s", "incremental_s", "incremental_ratio", "extra_day_events", "peak_rss_mib",
    ),
    "dashboard": ("pages", "cold_max_s", "warm_max_s", "page_errors", "streamlit_peak_rss_mib"),
    "memory": (
        "ingest_cli_peak_mib", "ingest_cli_by_role", "ingest_inprocess_by_role",
        "refresh_peak_mib", "refresh_by_role", "broker_peak_mib", "demo_days", "demo_ready_s",
        "demo_peak_total_rss_mib", "demo_sum_of_process_hwm_mib", "demo_peak_rss_mib_by_role",
    ),
}  # fmt: skip

COMMON_KEYS: tuple[str, ...] = (
    "status", "reason", "elapsed_s", "load_before", "load_after", "uptime_after",
    "machine_cpu_busy", "notes",
)  # fmt: skip

GIB = 1024.0


def blank(measure: str) -> dict[str, Any]:
    """A result with every key of ``measure`` present and unset."""
    result: dict[str, Any] = {key: None for key in (*COMMON_KEYS, *KEYS[measure])}
    result.update(status="not run", notes=[])
    return result


# (goal, measure, key, comparison, target, unit)
GOALS: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("scm ingest --once after start-up >= 50% of direct path", "ingest", "ratio_cli_to_direct",
     ">=", 0.5, "x"),
    ("in-process start_ingest >= 50% of direct path", "ingest", "ratio_inprocess_to_direct",
     ">=", 0.5, "x"),
    ("first events readable <= 30 s after scm ingest starts", "ingest", "first_events_s", "<=",
     30.0, "s"),
    ("freshness p95 to bronze <= 3 s", "freshness", "bronze_p95_s", "<=", 3.0, "s"),
    ("freshness p95 to inventory position <= 5 s", "freshness", "position_p95_s", "<=", 5.0, "s"),
    ("warm micro-batch of ~100 events <= 1 s (median under the freshness load)", "freshness",
     "batch_median_s", "<=", 1.0, "s"),
    ("sustained warm throughput >= 20k ev/s", "freshness", "sustained_eps", ">=", 20_000.0,
     "ev/s"),
    ("incremental refresh <= 10% of full rebuild", "refresh", "incremental_ratio", "<=", 0.10,
     "x"),
    ("warm page render <= 200 ms (slowest page)", "dashboard", "warm_max_s", "<=", 0.2, "s"),
    ("cold page render <= 2 s (slowest page)", "dashboard", "cold_max_s", "<=", 2.0, "s"),
    ("scm ingest resident memory <= 2 GiB", "memory", "ingest_cli_peak_mib", "<=", 2 * GIB,
     "MiB"),
    ("whole scm demo resident memory <= 6 GiB", "memory", "demo_peak_total_rss_mib", "<=",
     6 * GIB, "MiB"),
)  # fmt: skip

# (label, measure, cost key, work: "events" | "days") for the growth check.
SCALING: tuple[tuple[str, str, str, str], ...] = (
    ("direct path seconds", "ingest", "direct_s", "events"),
    ("in-process Spark ingest seconds", "ingest", "spark_inprocess_s", "events"),
    ("scm ingest after start-up seconds", "ingest", "cli_after_startup_s", "events"),
    ("scm ingest wall seconds", "ingest", "cli_wall_s", "events"),
    ("scm ingest peak MiB", "memory", "ingest_cli_peak_mib", "events"),
    ("freshness p95 to bronze", "freshness", "bronze_p95_s", "events"),
    ("freshness p95 to position", "freshness", "position_p95_s", "events"),
    ("full refresh seconds", "refresh", "full_s", "events"),
    ("incremental refresh seconds", "refresh", "incremental_s", "events"),
    ("slowest cold page seconds", "dashboard", "cold_max_s", "days"),
    ("slowest warm page seconds", "dashboard", "warm_max_s", "days"),
    ("scm demo peak MiB", "memory", "demo_peak_total_rss_mib", "days"),
)
LINEAR_TOLERANCE = 1.15  # growth exponent allowed before "worse than linear" (noise)


def _passes(value: float, comparison: str, target: float) -> bool:
    return value >= target if comparison == ">=" else value <= target


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per goal and size: value, target, pass/fail (None when not measured)."""
    rows = []
    for goal, measure, key, comparison, target, unit in GOALS:
        for size, result in results["measures"].get(measure, {}).items():
            value = result.get(key)
            rows.append(
                {
                    "goal": goal, "size": size, "value": value, "target": target,
                    "comparison": comparison, "unit": unit,
                    "passed": None if value is None else _passes(float(value), comparison, target),
                    "load_1m": (result.get("load_after") or {}).get("load_1m"),
                }
            )  # fmt: skip
    return rows


def scaling(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Growth exponent of each cost between the smallest and largest size measured.

    exponent = log(cost ratio) / log(work ratio); 1 is linear, below 1 means fixed costs
    dominate, above ``LINEAR_TOLERANCE`` counts as worse than linear.
    """
    work_by_size = results.get("work_by_size", {})
    rows = []
    for label, measure, key, work_name in SCALING:
        points = []
        for size, result in results["measures"].get(measure, {}).items():
            cost = result.get(key)
            work = (work_by_size.get(size) or {}).get(work_name)
            if cost and work:
                points.append((float(work), float(cost), size))
        if len(points) < 2:
            continue
        points.sort()
        (w0, c0, s0), (w1, c1, s1) = points[0], points[-1]
        if w1 <= w0:
            continue
        exponent = math.log(c1 / c0) / math.log(w1 / w0)
        rows.append(
            {
                "cost": label, "work": work_name, "from": s0, "to": s1,
                "work_ratio": round(w1 / w0, 2), "cost_ratio": round(c1 / c0, 2),
                "exponent": round(exponent, 2), "passed": exponent <= LINEAR_TOLERANCE,
                "points": {size: cost for _w, cost, size in points},
            }
        )  # fmt: skip
    return rows


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        digits = 3 if abs(value) < 10 else 1 if abs(value) < 1e4 else 0
        text = f"{value:,.{digits}f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


# (measure, key, label, unit) shown in the table, in order.
TABLE_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("ingest", "events", "events", ""),
    ("ingest", "produce_eps", "produce (1 Python producer)", "ev/s"),
    ("ingest", "raw_consume_eps", "(a) raw confluent-kafka consume", "ev/s"),
    ("ingest", "direct_eps", "(b) direct kafka->pyarrow->Delta", "ev/s"),
    ("ingest", "spark_startup_s", "Spark session start-up (in-process)", "s"),
    ("ingest", "spark_inprocess_eps", "start_ingest(once) in-process", "ev/s"),
    ("ingest", "ratio_inprocess_to_direct", "  in-process / direct", "x"),
    ("ingest", "cli_wall_s", "scm ingest --once wall", "s"),
    ("ingest", "cli_startup_s", "  of which start-up to 1st batch", "s"),
    ("ingest", "cli_after_startup_eps", "scm ingest --once after start-up", "ev/s"),
    ("ingest", "ratio_cli_to_direct", "  CLI after start-up / direct", "x"),
    ("ingest", "first_events_s", "scm ingest launch -> first events in bronze", "s"),
    ("freshness", "bronze_p50_s", "produce->bronze p50", "s"),
    ("freshness", "bronze_p95_s", "produce->bronze p95", "s"),
    ("freshness", "position_p50_s", "produce->inventory_position p50", "s"),
    ("freshness", "position_p95_s", "produce->inventory_position p95", "s"),
    ("freshness", "batch_median_s", "micro-batch under that load (median)", "s"),
    ("freshness", "batch_rows_median", "  events per batch (median)", "ev"),
    ("freshness", "jobs_per_batch", "  Spark jobs per batch", "jobs"),
    ("freshness", "stages_per_batch", "  Spark stages per batch", "stages"),
    ("freshness", "sustained_batch_median_s", "warm batch of the cap (median)", "s"),
    ("freshness", "sustained_eps", "sustained warm throughput", "ev/s"),
    ("refresh", "full_s", "full rebuild of gold", "s"),
    ("refresh", "incremental_s", "incremental (+1 day)", "s"),
    ("refresh", "incremental_ratio", "  incremental / full", "x"),
    ("dashboard", "cold_max_s", "slowest page cold", "s"),
    ("dashboard", "warm_max_s", "slowest page warm", "s"),
    ("memory", "ingest_cli_peak_mib", "scm ingest --once peak RSS (tree)", "MiB"),
    ("memory", "refresh_peak_mib", "refresh peak RSS (bench+Spark JVM)", "MiB"),
    ("memory", "broker_peak_mib", "broker JVM peak RSS", "MiB"),
    ("memory", "demo_peak_total_rss_mib", "scm demo peak RSS (whole tree)", "MiB"),
)


def table(results: dict[str, Any]) -> str:
    """The side-by-side table: one column per size, then goals and scaling."""
    sizes = [size["name"] for size in results["sizes"]]
    measures = results["measures"]
    width = max(len(label) for _m, _k, label, _u in TABLE_ROWS) + 2
    lines = [f"{'measure':<{width}}" + "".join(f"{name:>16}" for name in sizes)]
    lines.append("-" * len(lines[0]))
    current = None
    for measure, key, label, unit in TABLE_ROWS:
        if measure not in measures:
            continue
        if measure != current:
            current = measure
            results_of = [measures[measure].get(size) or {} for size in sizes]
            lines.append(f"[{measure}]")
            lines.append(
                f"{'  status':<{width}}"
                + "".join(f"{r.get('status', 'not run'):>16}" for r in results_of)
            )
            lines.append(
                f"{'  load average (1 min) after':<{width}}"
                + "".join(
                    f"{_fmt((r.get('load_after') or {}).get('load_1m')):>16}" for r in results_of
                )
            )
        cells = [_fmt((measures[measure].get(size) or {}).get(key), unit) for size in sizes]
        lines.append(f"{label:<{width}}" + "".join(f"{cell:>16}" for cell in cells))
    if "dashboard" in measures:
        for size in sizes:
            pages = (measures["dashboard"].get(size) or {}).get("pages") or {}
            for page, timing in pages.items():
                lines.append(
                    f"  page {page} [{size}]: cold {_fmt(timing.get('cold_s'), 's')}, "
                    f"warm {_fmt(timing.get('warm_s'), 's')}"
                    + (f", {len(timing['errors'])} error(s)" if timing.get("errors") else "")
                )
    lines.append("")
    lines.append("goals (L = 1-minute load average after the measure):")
    for row in results.get("goals", []):
        verdict = {True: "PASS", False: "FAIL", None: "not measured"}[row["passed"]]
        lines.append(
            f"  {verdict:<13}{row['goal']} [{row['size']}]: {_fmt(row['value'], row['unit'])}"
            f" (target {row['comparison']} {_fmt(row['target'], row['unit'])}, L {row['load_1m']})"
        )
    if results.get("scaling"):
        lines.append("")
        lines.append(f"scaling (exponent of cost vs work, pass <= {LINEAR_TOLERANCE}):")
        for row in results["scaling"]:
            lines.append(
                f"  {'PASS' if row['passed'] else 'FAIL':<6}{row['cost']}: x{row['cost_ratio']}"
                f" for x{row['work_ratio']} {row['work']} ({row['from']}->{row['to']}),"
                f" exponent {row['exponent']}"
            )
    problems = [
        f"  {measure} [{size}]: {result.get('status')}: {result.get('reason')}"
        for measure, by_size in measures.items()
        for size, result in by_size.items()
        if result.get("status") != "ok"
    ]
    if problems:
        lines.append("")
        lines.append("not measured / failed:")
        lines.extend(problems)
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The same numbers as :func:`table`, as Markdown for docs/performance.md."""
    sizes = [size["name"] for size in results["sizes"]]
    measures = results["measures"]
    lines = ["| measure | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]
    current = None
    for measure, key, label, unit in TABLE_ROWS:
        if measure not in measures:
            continue
        by_size = [measures[measure].get(size) or {} for size in sizes]
        if measure != current:
            current = measure
            loads = [_fmt((r.get("load_after") or {}).get("load_1m")) for r in by_size]
            statuses = [str(r.get("status", "not run")) for r in by_size]
            cells = [f"{s}, load {load}" for s, load in zip(statuses, loads, strict=True)]
            lines.append(
                f"| **{measure}** (status, 1-min load after) | " + " | ".join(cells) + " |"
            )
        cells = [_fmt(r.get(key), unit) for r in by_size]
        lines.append(f"| {label.strip()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
