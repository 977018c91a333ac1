"""The two reference paths the Spark ingest is compared with, on the same broker and events.

(a) a raw confluent-kafka consume of every message, and (b) confluent-kafka -> pyarrow JSON
parse (one ``read_json`` per topic per batch, explicit schema) -> ``write_deltalake`` append
with the same Kafka coordinate columns as bronze. Neither validates or quarantines: they
are the floor and a lean ceiling, not a replacement.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from scm.settings import Settings

LINE = pa.list_(
    pa.struct(
        [
            ("line_no", pa.int64()),
            ("sku", pa.string()),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
            ("unit_cost", pa.float64()),
        ]
    )
)
_COMMON = [
    ("event_id", pa.string()),
    ("event_type", pa.string()),
    ("event_time", pa.string()),
    ("source", pa.string()),
    ("schema_version", pa.int64()),
]
# One union schema per topic (contracts.md): every event type of the topic, nullable.
SCHEMAS: dict[str, pa.Schema] = {
    "scm.orders": pa.schema(
        _COMMON
        + [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("channel", pa.string()),
            ("ship_from", pa.string()),
            ("requested_delivery_date", pa.string()),
            ("currency", pa.string()),
            ("lines", LINE),
        ]
    ),
    "scm.shipments": pa.schema(
        _COMMON
        + [
            ("shipment_id", pa.string()),
            ("order_id", pa.string()),
            ("ship_from", pa.string()),
            ("carrier", pa.string()),
            ("condition", pa.string()),
            ("documents_ok", pa.bool_()),
            ("lines", LINE),
        ]
    ),
    "scm.inventory": pa.schema(
        _COMMON
        + [
            ("location_id", pa.string()),
            ("sku", pa.string()),
            ("on_hand", pa.int64()),
            ("quantity_delta", pa.int64()),
            ("movement_type", pa.string()),
            ("reference_id", pa.string()),
        ]
    ),
    "scm.returns": pa.schema(
        _COMMON
        + [
            ("return_id", pa.string()),
            ("order_id", pa.string()),
            ("line_no", pa.int64()),
            ("sku", pa.string()),
            ("quantity", pa.int64()),
            ("reason", pa.string()),
            ("disposition", pa.string()),
            ("refund_amount", pa.float64()),
            ("processing_cost", pa.float64()),
            ("currency", pa.string()),
        ]
    ),
    "scm.procurement": pa.schema(
        _COMMON
        + [
            ("po_id", pa.string()),
            ("supplier_id", pa.string()),
            ("ship_to", pa.string()),
            ("expected_date", pa.string()),
            ("currency", pa.string()),
            ("lines", LINE),
        ]
    ),
}


@dataclass
class PathResult:
    """Messages read (and rows written) by one path, and the seconds it took."""

    messages: int
    seconds: float
    rows_written: int = 0
    batches: int = 0
    parse_s: float = 0.0
    write_s: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def _consumer(settings: Settings, expected: dict[str, int]) -> Any:
    """A consumer assigned to every partition of the topics, from the beginning."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"bench-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.max.bytes": 104_857_600,
            "max.partition.fetch.bytes": 10_485_760,
            "queued.max.messages.kbytes": 1_048_576,
            "log_level": 3,
        }
    )
    metadata = consumer.list_topics(timeout=10)
    consumer.assign(
        [
            TopicPartition(topic, partition, OFFSET_BEGINNING)
            for topic in expected
            for partition in metadata.topics[topic].partitions
        ]
    )
    return consumer


def raw_consume(settings: Settings, expected: dict[str, int], timeout: float = 300) -> PathResult:
    """(a) Read every message of the topics and do nothing with it."""
    total = sum(expected.values())
    started = time.perf_counter()
    consumer = _consumer(settings, expected)
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < total and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    seen += 1
    finally:
        consumer.close()
    return PathResult(seen, time.perf_counter() - started)


def _entity(topic: str) -> str:
    return topic.split(".", 1)[1]


def _batch_table(topic: str, messages: list[Any], ingested_at: pa.Scalar) -> pa.Table:
    values = b"\n".join(message.value() for message in messages)
    table = pa_json.read_json(
        io.BytesIO(values),
        read_options=pa_json.ReadOptions(block_size=1 << 24),
        parse_options=pa_json.ParseOptions(
            explicit_schema=SCHEMAS[topic], unexpected_field_behavior="ignore"
        ),
    )
    count = len(messages)
    coordinates = {
        "_topic": pa.array([topic] * count, pa.string()),
        "_partition": pa.array([m.partition() for m in messages], pa.int32()),
        "_offset": pa.array([m.offset() for m in messages], pa.int64()),
        "_kafka_timestamp": pa.array(
            [m.timestamp()[1] * 1000 for m in messages], pa.timestamp("us", tz="UTC")
        ),
        "_ingested_at": pa.array([ingested_at] * count, pa.timestamp("us", tz="UTC")),
    }
    for name, column in coordinates.items():
        table = table.append_column(name, column)
    return table


def direct_to_delta(
    settings: Settings,
    expected: dict[str, int],
    lake_root: str,
    *,
    batch_messages: int = 100_000,
    timeout: float = 600,
) -> PathResult:
    """(b) Consume, parse each topic's batch with pyarrow, append it to a Delta table."""
    from deltalake import write_deltalake

    total = sum(expected.values())
    started = time.perf_counter()
    consumer = _consumer(settings, expected)
    result = PathResult(0, 0.0)
    deadline = time.monotonic() + timeout
    try:
        while result.messages < total and time.monotonic() < deadline:
            batch: dict[str, list[Any]] = defaultdict(list)
            in_batch = 0
            while in_batch < batch_messages and result.messages + in_batch < total:
                messages = consumer.consume(num_messages=10_000, timeout=0.5)
                if not messages and in_batch:
                    break
                for message in messages:
                    if message.error() is None:
                        batch[message.topic()].append(message)
                        in_batch += 1
                if time.monotonic() > deadline:
                    break
            ingested_at = pa.scalar(int(time.time() * 1_000_000), pa.timestamp("us", tz="UTC"))
            for topic, messages in batch.items():
                parse_started = time.perf_counter()
                table = _batch_table(topic, messages, ingested_at)
                write_started = time.perf_counter()
                write_deltalake(f"{lake_root}/bronze/{_entity(topic)}", table, mode="append")
                result.parse_s += write_started - parse_started
                result.write_s += time.perf_counter() - write_started
                result.rows_written += table.num_rows
            result.messages += in_batch
            result.batches += 1
    finally:
        consumer.close()
    result.seconds = time.perf_counter() - started
    return result
