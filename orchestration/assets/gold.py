"""Gold: the KPI, detail and planning tables, one asset per entry of ``GOLD_TABLES``.

A materialization of partitions P calls the batch engine's ``write_gold`` (the call
``scm refresh`` makes), which replaces exactly P in one Delta commit: re-running a partition
is idempotent. A backfill of many partitions is one run and one query
(``BackfillPolicy.single_run``). A snapshot table (the replenishment plan) is unpartitioned
and rebuilt whole.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from orchestration.assets.silver import silver_key
from orchestration.partitions import daily_partitions, monthly_partitions
from orchestration.refresh_lock import refresh_lock
from orchestration.resources import SparkResource
from orchestration.table_metadata import ANALYST_OWNERS, delta_table_metadata, markdown_table
from transforms.gold import GOLD_TABLES, NO_EVENTS_YET, as_of_date
from transforms.model import GoldTable
from transforms.planning import reorder_alerts as reorder_outbox
from transforms.sql import scope_predicate

GROUP = "gold"
PREVIEW_ROWS = 5

PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition | None] = {
    "day": daily_partitions,
    "month": monthly_partitions,
    "snapshot": None,  # rebuilt whole: no partitions to pick
}


def gold_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", name])


def partition_dates(partition_keys: list[str]) -> list[dt.date]:
    """Partition keys (ISO days, or first days of months) as the partition column's values."""
    return [dt.date.fromisoformat(key) for key in partition_keys]


def build_gold_asset(table: GoldTable) -> dg.AssetsDefinition:
    """The asset of one KPI table: partitioned by its day or month column."""

    @dg.asset(
        key=gold_key(table.name),
        deps=[silver_key(name) for name in table.inputs],
        partitions_def=PARTITIONS[table.granularity],
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"duckdb", "spark", "delta"},
        owners=ANALYST_OWNERS,
        description=f"`gold/{table.name}`: {table.description} Grain: "
        f"{', '.join(table.grain)}; {_partitioning(table)}. See docs/kpis.md, docs/planning.md.",
        metadata={
            "grain": ", ".join(table.grain),
            "partition_column": table.partition_column or "none (snapshot)",
            "columns": ", ".join(table.column_names),
        },
    )
    def _gold(context, spark: SparkResource) -> dg.MaterializeResult:
        engine, lake = spark.engine(), spark.settings.lake()
        snapshot = table.partition_column is None
        partitions = None if snapshot else partition_dates(context.partition_keys)
        with refresh_lock(context, spark.settings.load()):
            as_of = as_of_date(engine) or NO_EVENTS_YET
            rows = engine.write_gold(table, partitions, as_of)
        path = lake.gold(table.name)
        column = table.partition_column
        scope = "TRUE" if column is None else scope_predicate(column, partitions)
        preview = engine.rows(
            f"SELECT * FROM {engine.gold_relation(table.name)} WHERE {scope} LIMIT {PREVIEW_ROWS}"
        )
        metadata: dict[str, Any] = {
            "rows_written": rows,
            "preview": dg.MetadataValue.md(markdown_table(table.column_names, preview)),
        }
        if partitions:
            metadata["partitions_rebuilt"] = len(partitions)
            metadata["first_partition"] = partitions[0].isoformat()
            metadata["last_partition"] = partitions[-1].isoformat()
        metadata.update(delta_table_metadata(path))
        return dg.MaterializeResult(metadata=metadata)

    return _gold


def _partitioning(table: GoldTable) -> str:
    if table.partition_column is None:
        return "a snapshot, rebuilt whole"
    return f"partitioned by `{table.partition_column}` ({table.granularity})"


REORDER_ALERTS_KEY = gold_key(reorder_outbox.OUTBOX_TABLE)


@dg.asset(
    key=REORDER_ALERTS_KEY,
    deps=[gold_key("replenishment_plan")],
    group_name=GROUP,
    kinds={"kafka", "delta"},
    owners=ANALYST_OWNERS,
    description="`gold/reorder_alerts`: the outbox of `reorder_needed` alerts on scm.alerts, "
    "one row per pair and turn of `needs_reorder` to true; each is published once. See "
    "docs/planning.md.",
)
def reorder_alerts(context, spark: SparkResource) -> dg.MaterializeResult:
    """The step ``scm refresh`` runs after the plan: open, resolve and publish alerts."""
    settings = spark.settings.load()
    with refresh_lock(context, settings):
        settled = reorder_outbox.settle(settings, spark.settings.lake())
    context.log.info(settled.line())
    return dg.MaterializeResult(
        metadata={
            "opened": settled.opened,
            "resolved": settled.resolved,
            "published": settled.published,
            "pending": settled.pending,
        }
    )


gold_assets = [*(build_gold_asset(table) for table in GOLD_TABLES.values()), reorder_alerts]
