"""Schedules: the hourly refresh and the nightly maintenance (UTC)."""

from __future__ import annotations

import dagster as dg

from orchestration.jobs import maintenance_job, refresh_job
from orchestration.sensors import refresh_in_progress


@dg.schedule(
    job=refresh_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: landing files, bronze catch-up (or observation), silver; the "
    "gold partitions this touches follow through `gold_partitions_sensor`.",
)
def hourly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    if refresh_in_progress(context.instance):
        return dg.SkipReason("a refresh is still running; the next hour catches up")
    return dg.RunRequest()


nightly_maintenance = dg.ScheduleDefinition(
    name="nightly_maintenance",
    job=maintenance_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:30 UTC: `scm maintain` (OPTIMIZE, checkpoint, VACUUM with 7-day retention).",
)
