"""Gold: the six SCOR KPI tables, one partitioned asset per entry of ``GOLD_TABLES``.

A materialization of partitions P calls the registry entry's ``build`` and
``write_partitions`` (the same calls ``scm refresh`` makes), which replace exactly P in one
Delta commit (``replaceWhere``): re-running a partition is idempotent. A backfill of many
partitions is one run and one Spark job (``BackfillPolicy.single_run``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from orchestration.assets.silver import silver_key
from orchestration.partitions import daily_partitions, monthly_partitions
from orchestration.refresh_lock import refresh_lock
from orchestration.resources import SparkResource
from orchestration.table_metadata import ANALYST_OWNERS, delta_table_metadata, markdown_preview
from transforms.gold import GOLD_TABLES, GoldTable

GROUP = "gold"
PREVIEW_ROWS = 5

PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    "day": daily_partitions,
    "month": monthly_partitions,
}

_DESCRIPTIONS = {
    "fill_rate_daily": "Unit, line and order fill rate: dispatched by the requested delivery "
    "date vs ordered.",
    "perfect_order_daily": "SCOR RL.1.1 perfect order fulfillment: complete, on time, "
    "undamaged, with correct documents; orders due by the as-of date.",
    "order_cycle_time_daily": "SCOR RS.1.1 order fulfillment cycle time of fully delivered "
    "orders, in days.",
    "inventory_turns_monthly": "Annualised inventory turns and days of supply per location "
    "(month to the as-of date).",
    "returns_cost_daily": "Returns, refunds and the cost of processing them (SCOR cost to return).",
    "supplier_otif_daily": "Supplier on-time-in-full: PO lines received in full by their "
    "expected date.",
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
        kinds={"spark", "delta"},
        owners=ANALYST_OWNERS,
        description=f"`gold/{table.name}`: {_DESCRIPTIONS.get(table.name, '')} Grain: "
        f"{', '.join(table.grain)}; partitioned by `{table.partition_column}` "
        f"({table.granularity}). See docs/kpis.md.",
        metadata={
            "grain": ", ".join(table.grain),
            "partition_column": table.partition_column,
            "columns": ", ".join(table.columns),
        },
    )
    def _gold(context, spark: SparkResource) -> dg.MaterializeResult:
        from pyspark.sql import functions as F

        session, lake = spark.session, spark.settings.lake()
        partitions = partition_dates(context.partition_keys)
        with refresh_lock(context, spark.settings.load()):
            frame = table.build(session, lake, partitions)
            rows = table.write_partitions(lake, frame, partitions)
        path = lake.gold(table.name)
        partition = F.col(table.partition_column)
        written = (
            session.read.format("delta")
            .load(path)
            .where(partition.between(partitions[0], partitions[-1]))
        )
        metadata: dict[str, Any] = {
            "rows_written": rows,
            "partitions_rebuilt": len(partitions),
            "first_partition": partitions[0].isoformat(),
            "last_partition": partitions[-1].isoformat(),
            "preview": dg.MetadataValue.md(markdown_preview(written, PREVIEW_ROWS)),
        }
        metadata.update(delta_table_metadata(path))
        return dg.MaterializeResult(metadata=metadata)

    return _gold


gold_assets = [build_gold_asset(table) for table in GOLD_TABLES.values()]
