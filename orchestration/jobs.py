"""Jobs: the refresh of everything unpartitioned, the KPI partitions, and maintenance.

Gold is split by partitioning because one Dagster run targets one partitions definition;
``refresh`` (landing, bronze, silver) is unpartitioned and feeds both KPI jobs through
``sensors.gold_partitions_sensor``.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.gold import REORDER_ALERTS_KEY, gold_key
from orchestration.resources import SparkResource
from transforms.gold import GOLD_TABLES

DAILY_GOLD_KEYS = [gold_key(n) for n, t in GOLD_TABLES.items() if t.granularity == "day"]
MONTHLY_GOLD_KEYS = [gold_key(n) for n, t in GOLD_TABLES.items() if t.granularity == "month"]
SNAPSHOT_GOLD_KEYS = [
    *(gold_key(n) for n, t in GOLD_TABLES.items() if t.granularity == "snapshot"),
    REORDER_ALERTS_KEY,  # published right after the plan it reads
]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.groups("landing", "bronze", "silver"),
    description="Load changed landing files, catch bronze up with Kafka (or observe a running "
    "ingest), update silver; records which gold partitions the new rows touch.",
)
daily_kpis_job = dg.define_asset_job(
    "daily_kpis",
    selection=dg.AssetSelection.assets(*DAILY_GOLD_KEYS),
    description="Rebuild day-partitioned KPI tables for a partition or a range.",
)
monthly_kpis_job = dg.define_asset_job(
    "monthly_kpis",
    selection=dg.AssetSelection.assets(*MONTHLY_GOLD_KEYS),
    description="Rebuild month-partitioned KPI tables for a partition or a range.",
)

snapshot_gold_job = dg.define_asset_job(
    "planning_snapshot",
    selection=dg.AssetSelection.assets(*SNAPSHOT_GOLD_KEYS),
    description="Rebuild the unpartitioned gold tables (the replenishment plan) whole and "
    "publish the reorder alerts it turns on.",
)


@dg.op(description="`scm maintain`: OPTIMIZE, checkpoint and VACUUM every Delta table.")
def maintain_lake(spark: SparkResource) -> None:
    from ingest.maintenance import MIN_RETENTION_HOURS, run_maintenance

    spark.session  # noqa: B018 - start the run's session; run_maintenance reuses the active one
    run_maintenance(spark.settings.load(), retention_hours=MIN_RETENTION_HOURS)


@dg.job(name="maintenance", description="Compact, checkpoint and vacuum the lake (nightly).")
def maintenance_job() -> None:
    maintain_lake()
