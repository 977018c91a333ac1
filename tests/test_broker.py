"""The embedded Apache Kafka broker: start, produce, consume, restart with data kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from scm.broker import EmbeddedBroker, answers_metadata
from scm.errors import ScmError
from scm.settings import load_settings
from tests.conftest import _free_port

SCM = [sys.executable, "-m", "scm.cli"]


def _consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value())
    consumer.close()
    return values


def test_broker_restarts_with_its_data(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    settings = load_settings(
        {"SCM_STATE": str(tmp_path), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )
    with EmbeddedBroker(settings) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("scm.orders", 4, 1)])["scm.orders"].result(timeout=30)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for number in range(50):
            producer.produce("scm.orders", key=str(number), value=f"v{number}".encode())
        assert producer.flush(30) == 0
        assert len(_consume_all(broker.bootstrap, "scm.orders", 50)) == 50
        jvm_pid = broker.process.pid if broker.process else None
    assert not answers_metadata(broker.bootstrap, timeout=1.0)
    assert jvm_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(jvm_pid, 0)  # no orphaned JVM
    with EmbeddedBroker(settings) as broker:
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert len(metadata.topics["scm.orders"].partitions) == 4
        values = _consume_all(broker.bootstrap, "scm.orders", 50)
        assert sorted(values) == sorted(f"v{n}".encode() for n in range(50))


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = load_settings(
            {"SCM_STATE": str(tmp_path), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
        )
        with pytest.raises(ScmError, match=f"port {port} on 127.0.0.1 is in use"):
            EmbeddedBroker(settings).start()


def test_scm_broker_prints_ready_creates_topics_and_stops_on_sigterm(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "SCM_STATE": str(tmp_path), "SCM_KAFKA_BOOTSTRAP": bootstrap}
    process = subprocess.Popen(
        [*SCM, "broker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready_line = process.stdout.readline()
        assert "broker ready" in ready_line
        assert answers_metadata(bootstrap)  # "ready" is printed only once it answers
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        for name in ("scm.orders", "scm.shipments", "scm.inventory", "scm.returns"):
            assert len(topics[name].partitions) == 4
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not answers_metadata(bootstrap, timeout=1.0)


def test_missing_java_is_a_one_line_error(tmp_path: Path) -> None:
    env = {
        "PATH": "/nonexistent",
        "HOME": os.environ.get("HOME", "/root"),
        "SCM_STATE": str(tmp_path),
        "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
    }
    result = subprocess.run([*SCM, "broker"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scm: error: Java was not found: install JDK 17 (apt-get install openjdk-17-jdk)"
    )
