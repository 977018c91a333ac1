"""Where Spark spent a measure's time: its jobs and stages, from Spark's status store.

The status store is filled even with the UI off; it is read through py4j after the
measure (Scala collections, hence ``apply``/``size``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

TOP_STAGES = 12


def _stages(spark: Any) -> list[Any]:
    gateway = spark.sparkContext._gateway
    store = spark.sparkContext._jsc.sc().statusStore()
    found = store.stageList(
        None, False, False, gateway.new_array(gateway.jvm.double, 0),
        gateway.jvm.java.util.ArrayList(),
    )  # fmt: skip
    return [found.apply(index) for index in range(found.size())]


def _millis(option: Any) -> int | None:
    return int(option.get().getTime()) if option.isDefined() else None


def last_stage_id(spark: Any) -> int:
    """The highest stage id so far (-1 before any)."""
    try:
        return max((int(stage.stageId()) for stage in _stages(spark)), default=-1)
    except Exception:
        return -1


def stages_since(spark: Any, after_stage_id: int) -> dict[str, Any]:
    """Stages after ``after_stage_id``: counts, tasks, and the slowest by wall time."""
    try:
        stages = [stage for stage in _stages(spark) if int(stage.stageId()) > after_stage_id]
    except Exception as error:  # profiling must never break a measure
        return {"error": f"{type(error).__name__}: {error}"[:200]}
    rows: list[dict[str, Any]] = []
    for stage in stages:
        submitted, completed = _millis(stage.submissionTime()), _millis(stage.completionTime())
        rows.append(
            {
                "stage": int(stage.stageId()),
                "name": str(stage.name())[:120],
                "status": str(stage.status().toString()),
                "tasks": int(stage.numTasks()),
                "wall_ms": (completed - submitted) if submitted and completed else None,
                "executor_run_ms": int(stage.executorRunTime()),
                "input_mib": round(int(stage.inputBytes()) / 2**20, 2),
                "output_mib": round(int(stage.outputBytes()) / 2**20, 2),
                "shuffle_write_mib": round(int(stage.shuffleWriteBytes()) / 2**20, 2),
            }
        )
    ran = [row for row in rows if row["status"] == "COMPLETE"]
    by_name: Counter[str] = Counter()
    for row in ran:
        by_name[row["name"]] += row["wall_ms"] or 0
    return {
        "stages": len(ran),
        "skipped_stages": len([row for row in rows if row["status"] == "SKIPPED"]),
        "tasks": sum(row["tasks"] for row in ran),
        "stage_wall_ms_total": sum(row["wall_ms"] or 0 for row in ran),
        "executor_run_ms_total": sum(row["executor_run_ms"] for row in ran),
        "wall_ms_by_call_site": dict(by_name.most_common(TOP_STAGES)),
        "slowest": sorted(ran, key=lambda row: -(row["wall_ms"] or 0))[:TOP_STAGES],
    }
