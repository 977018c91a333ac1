"""The events every path of one run reads: a default simulation, split into history and one
more day, produced once to the run's broker.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.sizes import Size
from scm.settings import Settings

Event = tuple[str, bytes | None, bytes]

TOPICS: tuple[str, ...] = (
    "scm.orders", "scm.shipments", "scm.inventory", "scm.returns", "scm.procurement",
)  # fmt: skip
SEED = 7


@dataclass
class Workload:
    """Simulated history (``days`` days) and the day after it, as Kafka messages."""

    size: Size
    start: dt.date
    history: list[Event]
    next_day: list[Event]
    generate_s: float
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.history)

    @property
    def bytes(self) -> int:
        return sum(len(value) for _topic, _key, value in self.history)

    def by_topic(self) -> dict[str, int]:
        return dict(Counter(topic for topic, _key, _value in self.history))


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


def _event_day(value: bytes) -> str:
    """The UTC day of an event's ``event_time`` ("" when the message is not an event)."""
    try:
        text = json.loads(value)["event_time"]
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date().isoformat()


def simulation_options(size: Size, *, days: int, start: dt.date, **extra: Any) -> Any:
    """The simulator's options for a default simulation of ``days`` days."""
    from simulator import SimulationOptions

    return SimulationOptions(
        days=days, seed=SEED, start=start, orders_per_day=size.orders_per_day,
        progress=False, **extra,
    )  # fmt: skip


def build_workload(size: Size) -> Workload:
    """Simulate ``days + 1`` days once; the last day is held back for the incremental refresh.

    One simulation split by event day keeps the extra day consistent with the history (its
    shipments refer to orders of earlier days).
    """
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=size.days + 1)
    started = time.perf_counter()
    from simulator import generate_history

    messages = [
        (str(topic), _as_bytes(key), _as_bytes(value) or b"")
        for topic, key, value in generate_history(
            simulation_options(size, days=size.days + 1, start=start)
        )
    ]
    generate_s = time.perf_counter() - started
    last_day = (start + dt.timedelta(days=size.days)).isoformat()
    history = [event for event in messages if _event_day(event[2]) < last_day]
    next_day = [event for event in messages if _event_day(event[2]) >= last_day]
    return Workload(size, start, history, next_day, generate_s, "simulator.generate_history")


def write_master_data(settings: Settings) -> None:
    """Put the simulation's master-data CSVs in ``landing/`` (as ``scm simulate`` does)."""
    from scm.lake import Lake
    from simulator import build_world
    from simulator.world import write_master_data as write_csvs

    write_csvs(build_world(SEED), Lake.at(settings.lake).landing)


def producer_config(settings: Settings) -> dict[str, Any]:
    """A throughput-oriented librdkafka producer configuration."""
    return {
        **settings.librdkafka_config(),
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "log_level": 3,
    }


def produce(settings: Settings, events: list[Event]) -> float:
    """Produce ``events`` and wait until the broker has them all; return the seconds taken."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(settings))
    started = time.perf_counter()
    for topic, key, value in events:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not delivered within 120 s")
    return time.perf_counter() - started


def high_watermarks(settings: Settings, topics: tuple[str, ...] = TOPICS) -> dict[str, int]:
    """Log-end offset summed over each topic's partitions (how many messages it holds)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {**settings.librdkafka_config(), "group.id": "bench-watermarks", "log_level": 3}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        totals: dict[str, int] = {}
        for topic in topics:
            partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
            totals[topic] = sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions
            )
        return totals
    finally:
        consumer.close()
