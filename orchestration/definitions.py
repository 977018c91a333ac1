"""The code location ``workspace.yaml`` loads: assembles the definitions, nothing else."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from orchestration.assets.bronze import ingest, kafka_topics
from orchestration.assets.gold import gold_assets
from orchestration.assets.landing import landing_files, master_data
from orchestration.assets.silver import silver
from orchestration.checks import bronze_checks, gold_checks
from orchestration.jobs import (
    daily_kpis_job,
    maintenance_job,
    monthly_kpis_job,
    refresh_job,
    snapshot_gold_job,
)
from orchestration.resources import build_resources
from orchestration.schedules import hourly_refresh, nightly_maintenance
from orchestration.sensors import bronze_sensor, gold_partitions_sensor, record_run_failure


def build_definitions(resources: Mapping[str, object]) -> dg.Definitions:
    """Every definition, bound to ``resources`` (tests pass their own lake's)."""
    return dg.Definitions(
        assets=[*landing_files, master_data, *kafka_topics, ingest, silver, *gold_assets],
        asset_checks=[*bronze_checks, *gold_checks],
        jobs=[refresh_job, daily_kpis_job, monthly_kpis_job, snapshot_gold_job, maintenance_job],
        schedules=[hourly_refresh, nightly_maintenance],
        sensors=[bronze_sensor, gold_partitions_sensor, record_run_failure],
        resources=resources,
        # One Spark session per run: every step of a run shares the run's process.
        executor=dg.in_process_executor,
    )


defs = build_definitions(build_resources())
