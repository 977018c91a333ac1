"""Bronze: the Kafka topics and the Delta tables the streaming ingest lands them in.

One asset step owns bronze, in one of two modes, decided by the ingest's lock (one ingest
per lake, ``ingest/lock.py``) and never by configuration:

* **catch-up** — no ingest is running: the step runs ``ingest --once`` (Spark's
  ``Trigger.AvailableNow`` over the same checkpoint), exactly what ``scm refresh`` does.
* **observed** — ``scm ingest`` (or ``scm demo``) runs continuously and holds the lock: the
  step leaves bronze to it and records each table's current Delta version.

Either way the materialization's data version is the table's Delta version, so Dagster
sees bronze change exactly when its log does. The lock makes the two modes exclusive on a
checkpoint: a catch-up that meets a running ingest is refused by the lock and observes.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from ingest.inventory_position import POSITION_TABLE
from orchestration.resources import SparkResource
from orchestration.table_metadata import OWNERS, arrow_table_schema, delta_table_metadata
from scm.contracts import TOPICS, bronze_arrow_schema, quarantine_arrow_schema
from scm.lake import EVENT_ENTITIES
from transforms.lake_io import delta_version

GROUP = "bronze"
QUARANTINE_KEY = dg.AssetKey(["bronze", "quarantine"])
POSITION_KEY = dg.AssetKey(["silver", POSITION_TABLE])


def topic_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", entity])


def bronze_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", entity])


BRONZE_EVENT_KEYS: tuple[dg.AssetKey, ...] = tuple(bronze_key(e) for e in EVENT_ENTITIES)

kafka_topics = [
    dg.AssetSpec(
        topic_key(topic.entity),
        description=f"Kafka topic `{topic.name}` ({', '.join(topic.event_types)}), keyed by "
        f"`{':'.join(topic.key_fields)}`; written by producers, never by this platform.",
        group_name=GROUP,
        kinds={"kafka"},
        owners=OWNERS,
    )
    for topic in TOPICS.values()
]

_bronze_specs = [
    *(
        dg.AssetSpec(
            bronze_key(topic.entity),
            deps=[topic_key(topic.entity)],
            description=f"`bronze/{topic.entity}`: every valid `{topic.name}` event as "
            "received, typed per the contract, with its Kafka coordinates (append-only).",
            group_name=GROUP,
            kinds={"kafka", "spark", "delta"},
            owners=OWNERS,
            metadata={"dagster/column_schema": arrow_table_schema(bronze_arrow_schema(name))},
        )
        for name, topic in TOPICS.items()
    ),
    dg.AssetSpec(
        QUARANTINE_KEY,
        deps=[topic_key(topic.entity) for topic in TOPICS.values()],
        description="`bronze/quarantine`: every rejected message with the reason and its raw "
        "bytes; nothing is dropped silently.",
        group_name=GROUP,
        kinds={"kafka", "spark", "delta"},
        owners=OWNERS,
        metadata={"dagster/column_schema": arrow_table_schema(quarantine_arrow_schema())},
    ),
    dg.AssetSpec(
        POSITION_KEY,
        deps=[bronze_key("inventory")],
        description="`silver/inventory_position`: on-hand per (location_id, sku), kept current "
        "by the streaming ingest within seconds of the events (kpis.md).",
        group_name="silver",
        kinds={"spark", "delta"},
        owners=OWNERS,
    ),
]


@dg.multi_asset(name="ingest", specs=_bronze_specs)
def ingest(context, spark: SparkResource) -> Iterator[dg.MaterializeResult]:
    """Catch bronze up with Kafka (``ingest --once``) unless a running ingest owns it."""
    from transforms.refresh import catch_up_ingest

    settings = spark.settings.load()
    outcome = catch_up_ingest(lambda: spark.session, settings)
    # catch_up_ingest reports a lock held by a running ingest, or nothing new, as "skipped: ..."
    mode = "observed" if outcome.startswith("skipped") else "catch-up"
    context.log.info(f"bronze {mode}: {outcome}")
    lake = spark.settings.lake()
    paths = {bronze_key(entity): lake.bronze(entity) for entity in EVENT_ENTITIES}
    paths[QUARANTINE_KEY] = lake.quarantine
    paths[POSITION_KEY] = lake.silver(POSITION_TABLE)
    for key, path in paths.items():
        version = delta_version(path)
        metadata = {"mode": mode, "ingest": outcome, "delta_version": version}
        metadata.update(delta_table_metadata(path))
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=metadata,
            data_version=dg.DataVersion(str(version)) if version is not None else None,
        )
