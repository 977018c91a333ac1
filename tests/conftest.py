"""Shared test fixtures: one real Spark session and one real Kafka broker per test run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scm.contracts import ALERTS_TOPIC
from scm.processes import free_port
from scm.settings import Settings, load_settings


def _free_port() -> int:
    return free_port("127.0.0.1")


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """The one Spark session of the run (local[2], UI off, few shuffle partitions)."""
    from scm.spark import spark_session

    session = spark_session(
        load_settings({"SCM_SPARK_MASTER": "local[2]"}), app_name="scm-tests", shuffle_partitions=2
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real embedded Apache Kafka broker; yields its bootstrap address."""
    from scm.broker import EmbeddedBroker

    state = tmp_path_factory.mktemp("broker-state")
    settings = load_settings(
        {"SCM_STATE": str(state), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )
    with EmbeddedBroker(settings) as broker:
        yield broker.bootstrap


def make_settings(tmp_path: Path, bootstrap: str = "127.0.0.1:9092", **extra: str) -> Settings:
    """Settings for a lake and state folder under ``tmp_path``."""
    env = {
        "SCM_LAKE": str(tmp_path / "lake"),
        "SCM_STATE": str(tmp_path / "state"),
        "SCM_KAFKA_BOOTSTRAP": bootstrap,
        "SCM_SPARK_MASTER": "local[2]",
        **extra,
    }
    return load_settings(env)


def read_alerts(settings: Settings, key: str) -> list[dict[str, Any]]:
    """Every message on scm.alerts with ``key``, read from the beginning."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(ALERTS_TOPIC, timeout=10).topics[ALERTS_TOPIC].partitions
        ends = {}
        assignments = []
        for number in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(ALERTS_TOPIC, number), 10)
            if high > low:
                ends[number] = high
                assignments.append(TopicPartition(ALERTS_TOPIC, number, low))
        consumer.assign(assignments)
        found = []
        while ends:
            message = consumer.poll(10)
            assert message is not None, "scm.alerts did not deliver up to its end offsets"
            assert message.error() is None, message.error()
            value, offset, partition = message.value(), message.offset(), message.partition()
            if message.key() == key.encode() and value is not None:
                found.append(json.loads(value))
            if offset is not None and offset + 1 >= ends.get(partition or 0, 0):
                ends.pop(partition or 0, None)
        return found
    finally:
        consumer.close()
