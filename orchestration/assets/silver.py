"""Silver: typed, deduplicated, conformed tables, kept current from bronze incrementally.

Silver is not partitioned. The batch engine (``SCM_ENGINE``, :mod:`transforms.engine`) keeps
it current by inserting only the events new to it, so one update step serves any amount of
new data; a partition would be a fiction here.

The step also works out which gold partitions its new rows touch, with the functions
``scm refresh`` uses (each gold table's ``touched`` rule, which follows a shipment to its
order's day, a receipt to its PO's expected date, a moved as-of date to the orders that
just fell due). That needs the engine, so it happens here and not in a sensor; the
result is recorded on the materialization of :data:`SILVER_UPDATE_KEY`, from which
``sensors.gold_partitions_sensor`` launches exactly those gold partitions.

Rows are stamped with a refresh id, as ``scm refresh`` stamps them. The change set since the
last *recorded* Dagster update (or, before the first, the CLI's last recorded refresh) is
what counts, so rows of an update that died before its materialization are picked up by the
next one; ids are kept above the CLI's recorded id so ``scm refresh`` sees Dagster's rows as
new too. Whoever inserts rows rebuilds their partitions; mixing the CLI and Dagster at worst
rebuilds a partition twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import dagster as dg

from orchestration.refresh_lock import refresh_lock
from orchestration.resources import SparkResource
from orchestration.table_metadata import OWNERS, delta_table_metadata
from scm.lake import Lake
from transforms.silver import SILVER_TABLES

if TYPE_CHECKING:
    from transforms.engine import Engine

GROUP = "silver"
Versions = Mapping[str, int | None]


def silver_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", name])


# Every silver update materializes this key (the step cannot be subset); its materialization
# carries the update's change set for the gold sensor and for the next update.
SILVER_UPDATE_KEY = silver_key("order_lines")
_CHANGES = "silver_changes"


@dataclass(frozen=True)
class SilverChanges:
    """What one silver update changed, as recorded for the next update and the gold sensor.

    ``affected`` maps each gold table to the partition values (ISO dates) its new rows
    touched; None means every partition from ``first_event_date`` on (the first update,
    changed product costs, a missing gold table).
    """

    refresh_id: int
    as_of: dt.date | None
    products_version: int | None
    bronze_versions: Versions = field(default_factory=dict)  # read completely by the update
    silver_versions: Versions = field(default_factory=dict)  # after the update
    first_event_date: dt.date | None = None
    affected: Mapping[str, list[str] | None] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        document = {
            "refresh_id": self.refresh_id,
            "as_of_date": _iso(self.as_of),
            "products_version": self.products_version,
            "bronze_versions": dict(self.bronze_versions),
            "silver_versions": dict(self.silver_versions),
            "first_event_date": _iso(self.first_event_date),
            "affected_gold_partitions": dict(self.affected),
        }
        return {
            _CHANGES: dg.MetadataValue.json(document),
            "refresh_id": self.refresh_id,
            "as_of_date": _iso(self.as_of),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, dg.MetadataValue]) -> SilverChanges | None:
        if _CHANGES not in metadata:
            return None
        document = cast(dict[str, Any], metadata[_CHANGES].value)
        return cls(
            refresh_id=int(document["refresh_id"]),
            as_of=_date(document["as_of_date"]),
            products_version=document["products_version"],
            bronze_versions=document["bronze_versions"],
            silver_versions=document["silver_versions"],
            first_event_date=_date(document["first_event_date"]),
            affected=document["affected_gold_partitions"],
        )


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def last_recorded_changes(instance: dg.DagsterInstance) -> SilverChanges | None:
    """The change set of the latest successful silver update Dagster recorded."""
    event = instance.get_latest_materialization_event(SILVER_UPDATE_KEY)
    if event is None or event.asset_materialization is None:
        return None
    return SilverChanges.from_metadata(event.asset_materialization.metadata)


def _starting_point(instance: dg.DagsterInstance, lake: Lake) -> SilverChanges | None:
    """Where the change set starts: Dagster's last recorded update, else the CLI's refresh.

    ``scm refresh`` (e.g. the one ``scm demo`` runs first) records the same facts; starting
    from it spares a first Dagster update from rebuilding every gold partition.
    """
    from transforms.refresh import read_state

    recorded = last_recorded_changes(instance)
    if recorded is not None:
        return recorded
    cli = read_state(lake)
    if cli is None:
        return None
    return SilverChanges(
        cli.refresh_id, cli.as_of, cli.products_version, cli.bronze_versions, cli.silver_versions
    )


def detect_changes(
    engine: Engine,
    previous: SilverChanges | None,
    *,
    refresh_id: int,
    bronze_versions: Versions,
) -> SilverChanges:
    """The gold partitions that silver rows stamped after ``previous`` touch.

    Decided by :func:`transforms.refresh.gold_changes`, as ``scm refresh`` decides; this
    only records the answer (ISO dates) with what the next update starts from.
    """
    from transforms.gold import first_event_date as first_event_date_of
    from transforms.refresh import gold_changes, silver_versions

    changes = gold_changes(engine, previous)
    affected = {
        name: None if days is None else [day.isoformat() for day in days]
        for name, days in changes.partitions.items()
    }
    first_event_date = None
    if any(partitions is None for partitions in affected.values()):
        first_event_date = first_event_date_of(engine)
    return SilverChanges(
        refresh_id,
        changes.as_of,
        changes.products_version,
        bronze_versions,
        silver_versions(engine.lake),
        first_event_date,
        affected,
    )


_event_specs = [
    dg.AssetSpec(
        silver_key(table.name),
        deps=[dg.AssetKey(["bronze", table.source])],
        description=f"`silver/{table.name}`: one row per {', '.join(table.keys)} from "
        f"`bronze/{table.source}`, each event once (deduplicated by event_id across all "
        "history).",
        group_name=GROUP,
        kinds={"duckdb", "spark", "delta"},
        owners=OWNERS,
        metadata={"grain": ", ".join(table.keys), "time_column": table.time_column},
    )
    for table in SILVER_TABLES.values()
]


@dg.multi_asset(name="silver", specs=_event_specs)
def silver(context, spark: SparkResource) -> Iterator[dg.MaterializeResult]:
    """Bring silver up to date with bronze and record which gold partitions changed."""
    from transforms.refresh import next_refresh_id

    engine, lake = spark.engine(), spark.settings.lake()
    with refresh_lock(context, spark.settings.load()):
        previous = _starting_point(context.instance, lake)
        refresh_id = next_refresh_id(lake, previous)
        update = engine.update_silver(
            refresh_id=refresh_id,
            read_versions=previous.bronze_versions if previous else None,
        )
        changes = detect_changes(
            engine, previous, refresh_id=refresh_id, bronze_versions=update.bronze_versions
        )
    touched = {n: "all" if k is None else len(k) for n, k in changes.affected.items() if k != []}
    context.log.info(
        f"silver update {refresh_id}: as-of {changes.as_of}, new rows {update.inserted}, "
        f"gold partitions touched: {json.dumps(touched) if touched else 'none'}"
    )
    for table in SILVER_TABLES.values():
        metadata = {"rows_inserted": update.inserted.get(table.name, 0)}
        metadata.update(delta_table_metadata(lake.silver(table.name)))
        if silver_key(table.name) == SILVER_UPDATE_KEY:
            metadata.update(changes.to_metadata())
        yield dg.MaterializeResult(asset_key=silver_key(table.name), metadata=metadata)
