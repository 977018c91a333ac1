"""Sensors: react to new bronze data, launch the gold partitions it touches, log failures.

The chain, with no Spark in any sensor:

1. :func:`bronze_sensor` reads each bronze table's Delta version from its log (delta-rs,
   milliseconds). When one moved past what the cursor and the last refresh recorded, it
   launches ``refresh`` (silver catches up from bronze; with a running ingest, bronze is
   only observed).
2. That run's silver step computes the gold partitions its new rows touch, with the
   transforms' own rules, and records them (``assets/silver.py``).
3. :func:`gold_partitions_sensor` turns each recorded change set into one ranged run per
   partitioning: the daily KPI tables over [first, last] touched day, inventory turns over
   [first, last] touched month, and one unpartitioned run for the snapshot tables (the
   replenishment plan). Days in between are rebuilt too, harmlessly (idempotent).

:func:`record_run_failure` appends every failed run to ``SCM_STATE/run-failures.jsonl``,
which the pipeline-health dashboard shows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.assets.bronze import bronze_key
from orchestration.assets.gold import PARTITIONS, REORDER_ALERTS_KEY, gold_key
from orchestration.assets.silver import SILVER_UPDATE_KEY, SilverChanges
from orchestration.jobs import daily_kpis_job, monthly_kpis_job, refresh_job, snapshot_gold_job
from orchestration.resources import ScmSettings
from scm.lake import EVENT_ENTITIES, Lake
from transforms.gold import GOLD_TABLES
from transforms.lake_io import delta_version

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

RUN_FAILURES_FILE = "run-failures.jsonl"
# Dagster's tags for a run over a partition range (one run, BackfillPolicy.single_run).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

# --- 1. bronze versions -> refresh ----------------------------------------------------------


def bronze_versions(lake: Lake) -> dict[str, int]:
    """Delta version of each bronze event table (-1 before it exists), from the log only."""
    versions = {}
    for entity in EVENT_ENTITIES:
        version = delta_version(lake.bronze(entity))
        versions[entity] = -1 if version is None else version
    return versions


def _version_seen_by_refresh(instance: dg.DagsterInstance, entity: str) -> int:
    """The bronze version the latest refresh run recorded (its silver step read at least it)."""
    event = instance.get_latest_materialization_event(bronze_key(entity))
    if event is None or event.asset_materialization is None:
        return -1
    recorded = event.asset_materialization.metadata.get("delta_version")
    return -1 if recorded is None or recorded.value is None else int(recorded.value)  # type: ignore[arg-type]


def in_progress(instance: dg.DagsterInstance, job: str) -> bool:
    """Whether a run of ``job`` is queued or running."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=_ACTIVE), limit=1)
    return bool(runs)


def refresh_in_progress(instance: dg.DagsterInstance) -> bool:
    """Two silver updates must never overlap: their streams share checkpoints."""
    return in_progress(instance, refresh_job.name)


@dg.sensor(
    job=refresh_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch `refresh` when a bronze table's Delta version moves (e.g. a running "
    "`scm ingest` appended events); cursor: the bronze versions last acted on.",
)
def bronze_sensor(context: dg.SensorEvaluationContext, scm: ScmSettings) -> dg.SensorResult:
    versions = bronze_versions(scm.lake())
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    moved = {
        entity: version
        for entity, version in versions.items()
        if version > max(cursor.get(entity, -1), _version_seen_by_refresh(context.instance, entity))
    }
    if not moved:
        return dg.SensorResult(skip_reason="bronze has not moved since the last refresh")
    if refresh_in_progress(context.instance):
        # The cursor stays, so the next evaluation sees the same movement again.
        return dg.SensorResult(skip_reason="bronze moved; waiting for the running refresh")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(tags={"scm/bronze_versions": json.dumps(moved)})],
        cursor=json.dumps(versions),
    )


# --- 2./3. recorded silver changes -> gold partition ranges -----------------------------------


def _partition_keys(
    partitions_def: dg.TimeWindowPartitionsDefinition,
    touched: Iterable[str] | None,
    first_event_date: dt.date | None,
    now: dt.datetime,
) -> list[str]:
    """Touched keys the definition has; None touched means every key from the first event."""
    keys = partitions_def.get_partition_keys(current_time=now)
    if touched is None:
        if first_event_date is None:
            return []
        window_end = partitions_def.time_window_for_partition_key
        return [key for key in keys if window_end(key).end.date() > first_event_date]
    wanted = set(touched)
    return [key for key in keys if key in wanted]


def plan_gold_runs(
    updates: Sequence[SilverChanges], now: dt.datetime, *, run_key: str | None = None
) -> tuple[list[dg.RunRequest], list[str]]:
    """One ranged run per partitioning covering what ``updates`` touched; plus warnings.

    A touched partition outside the partitions definition (before its start, or further
    ahead than it reaches) cannot be launched; it is reported instead.
    """
    requests: list[dg.RunRequest] = []
    warnings: list[str] = []
    for granularity, job in (("day", daily_kpis_job), ("month", monthly_kpis_job)):
        partitions_def = PARTITIONS[granularity]
        assert partitions_def is not None
        selection: list[dg.AssetKey] = []
        planned: set[str] = set()
        for name, table in GOLD_TABLES.items():
            if table.granularity != granularity:
                continue
            keys: set[str] = set()
            for update in updates:
                touched = update.affected.get(name, None)
                valid = _partition_keys(partitions_def, touched, update.first_event_date, now)
                keys.update(valid)
                outside = sorted(set(touched or []) - set(valid))
                if outside:
                    warnings.append(f"{name}: partitions outside the definition: {outside}")
            if keys:
                selection.append(gold_key(name))
                planned |= keys
        if not selection:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key}-{job.name}" if run_key else None,
                job_name=job.name,
                asset_selection=selection,
                tags={RANGE_START_TAG: min(planned), RANGE_END_TAG: max(planned)},
            )
        )
    snapshots = [
        gold_key(name)
        for name, table in GOLD_TABLES.items()
        if table.granularity == "snapshot"
        and any(update.affected.get(name, None) != [] for update in updates)
    ]
    if snapshots:  # rebuilt whole: one unpartitioned run, and the alerts of the new plan
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key}-{snapshot_gold_job.name}" if run_key else None,
                job_name=snapshot_gold_job.name,
                asset_selection=[*snapshots, REORDER_ALERTS_KEY],
            )
        )
    return requests, warnings


@dg.sensor(
    jobs=[daily_kpis_job, monthly_kpis_job, snapshot_gold_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch the gold partitions each silver update touched (recorded on "
    f"`{SILVER_UPDATE_KEY.to_user_string()}`); cursor: the last update's event storage id.",
)
def gold_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SILVER_UPDATE_KEY, after_storage_id=after),
        limit=1000,
        ascending=True,
    ).records
    if not records:
        return dg.SensorResult(skip_reason="no silver update since the last evaluation")
    if any(
        in_progress(context.instance, job.name)
        for job in (daily_kpis_job, monthly_kpis_job, snapshot_gold_job)
    ):
        # Two runs replacing overlapping partitions of a table would conflict in Delta; the
        # cursor stays, so the next evaluation merges these updates into one request.
        return dg.SensorResult(skip_reason="waiting for the running KPI runs to finish")
    updates = []
    for record in records:
        materialization = record.asset_materialization
        update = SilverChanges.from_metadata(materialization.metadata) if materialization else None
        if update is not None:
            updates.append(update)
    last = records[-1].storage_id
    requests, warnings = plan_gold_runs(
        updates, dt.datetime.now(dt.UTC), run_key=f"silver-update-{last}"
    )
    for warning in warnings:
        context.log.warning(warning)
    return dg.SensorResult(
        run_requests=requests,
        cursor=str(last),
        skip_reason=None if requests else "the silver updates touched no gold partition",
    )


# --- run failures -> SCM_STATE/run-failures.jsonl --------------------------------------------


def failure_record(
    job: str, run_id: str, message: str, step_errors: Mapping[str, str], when: dt.datetime
) -> dict[str, object]:
    """The JSON line the pipeline-health dashboard reads for one failed run."""
    first_error = next(iter(step_errors.values()), "")
    error = first_error or message
    return {
        "timestamp": when.isoformat(timespec="seconds"),
        "job": job,
        "run_id": run_id,
        "error": error.strip().splitlines()[0][:500] if error.strip() else "unknown error",
        "failed_steps": sorted(step_errors),
    }


def _root_cause(error: SerializableErrorInfo) -> str:
    """The user's error under Dagster's wrappers (step execution errors chain it as a cause)."""
    while error.cause is not None:
        error = error.cause
    return error.message


@dg.run_failure_sensor(
    name="record_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Append each failed run (time, job, run id, error) to "
    f"SCM_STATE/{RUN_FAILURES_FILE}.",
)
def record_run_failure(context: dg.RunFailureSensorContext, scm: ScmSettings) -> None:
    step_errors = {
        event.step_key or "run": _root_cause(event.step_failure_data.error)
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    }
    record = failure_record(
        context.dagster_run.job_name,
        context.dagster_run.run_id,
        context.failure_event.message or "",
        step_errors,
        dt.datetime.now(dt.UTC),
    )
    path = Path(scm.load().state) / RUN_FAILURES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.write(json.dumps(record) + "\n")
