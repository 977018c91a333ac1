"""Bronze tables from hand-written events, for tests of transforms and of what builds on them.

Events are the JSON objects producers send (contracts.md), as dicts; they become rows with
exactly the bronze schema of their topic (:func:`scm.contracts.bronze_spark_ddl`), parsed by
Spark's JSON reader, plus Kafka coordinates in arrival order. An event may carry its own
``_ingested_at`` (or any other ``_`` column) to stage late arrivals and duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from scm.contracts import TOPICS, bronze_spark_ddl
from scm.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_FIRST_ARRIVAL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_TOPIC_OF_ENTITY = {topic.entity: name for name, topic in TOPICS.items()}


def bronze_frame(
    spark: SparkSession, entity: str, events: Sequence[Mapping[str, Any]], *, first_offset: int = 0
) -> DataFrame:
    """A bronze-shaped DataFrame of ``events`` for ``bronze/<entity>`` (orders, shipments...)."""
    topic = _TOPIC_OF_ENTITY[entity]
    ddl = bronze_spark_ddl(topic)
    documents = []
    for position, event in enumerate(events):
        offset = first_offset + position
        coordinates = {
            "_topic": topic,
            "_partition": 0,
            "_offset": offset,
            "_kafka_timestamp": event.get("event_time"),
            "_ingested_at": (_FIRST_ARRIVAL + dt.timedelta(seconds=offset)).isoformat(),
        }
        documents.append((json.dumps({**coordinates, **event}, default=str),))
    raw = spark.createDataFrame(documents, "document string")
    return raw.select(F.from_json("document", ddl).alias("event")).select("event.*")


def append_bronze(
    spark: SparkSession,
    lake: Lake,
    entity: str,
    events: Sequence[Mapping[str, Any]],
    *,
    first_offset: int = 0,
) -> None:
    """Append ``events`` to the Delta table ``bronze/<entity>``, as the ingest would."""
    frame = bronze_frame(spark, entity, events, first_offset=first_offset)
    frame.write.format("delta").mode("append").save(lake.bronze(entity))
