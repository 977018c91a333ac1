"""The three-broker cluster: replicated topics, and no acknowledged message lost to a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, PartitionMetadata

from scm.broker import EmbeddedCluster, answers_metadata
from scm.kafka import ensure_topics, producer
from scm.settings import Settings, load_settings
from tests.conftest import _free_port

pytestmark = pytest.mark.kafka

SCM = [sys.executable, "-m", "scm.cli"]
MESSAGES = 20_000


def _cluster_settings(state: Path) -> Settings:
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(_free_port())
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in sorted(ports))
    return load_settings({"SCM_STATE": str(state), "SCM_KAFKA_BOOTSTRAP": bootstrap})


def _kafka_jvms(state: Path) -> list[int]:
    """Pids of live Kafka JVMs whose configuration lives under ``state``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if b"kafka.Kafka" in command and str(state).encode() in command:
            pids.append(int(entry.name))
    return pids


def test_scm_cluster_up_prints_the_bootstrap_and_down_stops_every_node(tmp_path: Path) -> None:
    settings = _cluster_settings(tmp_path)
    env = {
        **os.environ,
        "SCM_STATE": str(tmp_path),
        "SCM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCM_S3_ENDPOINT": f"http://127.0.0.1:{_free_port()}",  # not 9000: tests run side by side
    }
    up = subprocess.Popen(
        [*SCM, "cluster", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert up.stdout is not None
        ready = up.stdout.readline()
        assert f"SCM_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} " in ready
        assert len(_kafka_jvms(tmp_path)) == 3
        for server in settings.kafka_bootstrap.split(","):
            assert answers_metadata(server)  # every node serves clients on its own
            # Ready means the topics too: each node lists them, replicated three times.
            node = AdminClient({"bootstrap.servers": server})
            orders = node.list_topics(timeout=10).topics["scm.orders"]
            assert all(len(partition.replicas) == 3 for partition in orders.partitions.values())

        down = subprocess.run(
            [*SCM, "cluster", "down"], env=env, capture_output=True, text=True, timeout=90
        )
        assert (down.returncode, down.stdout) == (0, "Kafka, Spark and object store stopped\n")
        assert up.wait(timeout=10) == 0
        assert up.stdout.read() == "Kafka, Spark and object store stopped\n"
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGKILL)
    assert _kafka_jvms(tmp_path) == []
    assert not (tmp_path / "kafka-cluster" / "cluster.pid").exists()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """Three real KRaft brokers, started once for the module."""
    state = tmp_path_factory.mktemp("kafka-cluster")
    with EmbeddedCluster(_cluster_settings(state), nodes=3, heap="384m") as running:
        yield running
    assert _kafka_jvms(state) == []


def _settings(cluster: EmbeddedCluster) -> Settings:
    return load_settings({"SCM_KAFKA_BOOTSTRAP": cluster.bootstrap})


def _partitions(bootstrap: str, topic: str, count: int = 4) -> dict[int, PartitionMetadata]:
    """The topic's partitions once the node asked knows all ``count`` with a leader: a new
    topic's metadata reaches each broker a moment after the create call returns."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    while True:
        known = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if len(known) == count and all(p.leader >= 0 for p in known.values()):
            return dict(known)
        assert time.monotonic() < deadline, f"{topic}: metadata has {len(known)} partitions"
        time.sleep(0.2)


def test_ensure_topics_replicates_to_three_brokers_with_two_in_sync(
    cluster: EmbeddedCluster,
) -> None:
    topic = f"scm.replicated-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(_settings(cluster), (topic,)) == [topic]
    partitions = _partitions(cluster.bootstrap, topic)
    assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["min.insync.replicas"].value == "2"


def test_ensure_topics_returns_once_every_answering_node_lists_them(
    cluster: EmbeddedCluster,
) -> None:
    """Each node lists a created topic when ``ensure_topics`` returns (a client may ask any
    node first); a bootstrap server with no broker behind it is not waited for."""
    down = f"127.0.0.1:{_free_port()}"
    settings = load_settings({"SCM_KAFKA_BOOTSTRAP": f"{cluster.bootstrap},{down}"})
    topic = f"scm.listed-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(settings, (topic,)) == [topic]
    for server in cluster.bootstrap.split(","):
        listed = AdminClient({"bootstrap.servers": server}).list_topics(timeout=10).topics
        assert len(listed[topic].partitions) == 4, server


def _leader_of(cluster: EmbeddedCluster, topic: str, partition: int) -> int:
    return int(_partitions(cluster.bootstrap, topic)[partition].leader)


def _in_sync_counts(cluster: EmbeddedCluster, topic: str, expected: int) -> list[int]:
    """How many replicas of each partition are in sync, once all are ``expected`` (or 60 s)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    deadline = time.monotonic() + 60
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        counts = [len(partitions[number].isrs) for number in sorted(partitions)]
        if set(counts) == {expected} or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def _read_to_end(bootstrap: str, topic: str) -> dict[int, list[tuple[int, str, str]]]:
    """Every record of ``topic``, per partition: (offset, key, value), read to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for number in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), 10)
            if high > low:
                ends[number] = high
        consumer.assign([TopicPartition(topic, number, 0) for number in ends])
        records: dict[int, list[tuple[int, str, str]]] = {number: [] for number in partitions}
        deadline = time.monotonic() + 60
        while ends and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            number, offset = message.partition() or 0, message.offset() or 0
            key, value = message.key() or b"", message.value() or b""
            records[number].append((offset, key.decode(), value.decode()))
            if offset + 1 >= ends.get(number, 0):
                ends.pop(number, None)
        assert not ends, f"partitions {sorted(ends)} did not deliver up to their end offsets"
        return records
    finally:
        consumer.close()


def test_a_killed_broker_loses_no_acknowledged_message_and_rejoins(
    cluster: EmbeddedCluster,
) -> None:
    """kill -9 the leader of partition 0 mid-stream: every acknowledged message is read back
    exactly once and in order, and the restarted broker is back in every ISR."""
    settings = _settings(cluster)
    topic = f"scm.loss-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, (topic,))
    client = producer(settings)  # the platform's producer: acks=all, idempotent
    acknowledged: dict[str, tuple[int, int]] = {}  # value -> (partition, offset)
    failures: list[KafkaError] = []

    def report(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            value = (message.value() or b"").decode()
            acknowledged[value] = (message.partition() or 0, message.offset() or 0)

    victim = _leader_of(cluster, topic, 0)
    started = time.monotonic()
    for number in range(MESSAGES):
        client.produce(topic, key=f"sku-{number % 50}", value=str(number), on_delivery=report)
        if number % 500 == 499:
            client.poll(0.05)  # a steady stream, not one burst
        if number == MESSAGES // 2:
            deadline = time.monotonic() + 30
            while len(acknowledged) < MESSAGES // 4 and time.monotonic() < deadline:
                client.poll(0.05)  # kill a cluster that is demonstrably taking writes
            assert acknowledged, "the cluster acknowledged nothing before the kill"
            cluster.kill_node(victim)
            in_flight = number + 1 - len(acknowledged)
    assert client.flush(90) == 0
    produced_seconds = time.monotonic() - started
    assert failures == []
    assert len(acknowledged) == MESSAGES

    records = _read_to_end(cluster.bootstrap, topic)
    read = [value for partition in records.values() for _, _, value in partition]
    assert sorted(read, key=int) == [str(n) for n in range(MESSAGES)]  # each exactly once
    for partition, rows in records.items():
        assert [offset for offset, _, _ in rows] == sorted(offset for offset, _, _ in rows)
        last_per_key: dict[str, int] = {}
        for offset, key, value in rows:
            assert acknowledged[value] == (partition, offset)
            assert int(value) > last_per_key.get(key, -1), f"{key} out of order"
            last_per_key[key] = int(value)

    assert _in_sync_counts(cluster, topic, 2) == [2, 2, 2, 2]  # min.insync.replicas=2: writable
    cluster.start_node(victim)
    assert _in_sync_counts(cluster, topic, 3) == [3, 3, 3, 3]  # the restarted node caught up
    print(
        f"{MESSAGES} messages through a broker kill ({in_flight} in flight) in"
        f" {produced_seconds:.1f} s"
    )
