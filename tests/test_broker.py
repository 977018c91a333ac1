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


def _broker_jvms(state: Path) -> list[int]:
    """Pids of live broker JVMs whose configuration lives under ``state``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in command and str(state).encode() in command:
            pids.append(int(entry.name))
    return pids


def test_fresh_starts_accept_topics_at_once_from_concurrent_clients(tmp_path: Path) -> None:
    """Six fresh starts: ready means unfenced, so creating topics right away never fails.

    The race is timing-dependent, so each start is a trial; six (~5 s each) keep the suite in
    its budget, where twenty took 95 s."""
    import threading

    from confluent_kafka.admin import AdminClient, NewTopic

    from scm.kafka import ensure_topics

    for attempt in range(6):
        settings = load_settings(
            {
                "SCM_STATE": str(tmp_path / f"start-{attempt}"),
                "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
            }
        )
        failures: list[BaseException] = []

        def create_other_topic(bootstrap: str, failures: list[BaseException]) -> None:
            try:
                admin = AdminClient({"bootstrap.servers": bootstrap})
                created = admin.create_topics([NewTopic("other.topic", 2, 1)])
                created["other.topic"].result(timeout=30)
            except BaseException as error:
                failures.append(error)

        with EmbeddedBroker(settings) as broker:
            other = threading.Thread(target=create_other_topic, args=(broker.bootstrap, failures))
            other.start()
            ensure_topics(settings)
            other.join()
            assert failures == [], f"start {attempt}: {failures[0]}"
            # A created topic reaches the broker's metadata a moment after the controller
            # acknowledged it; both must show up.
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            deadline = time.monotonic() + 30
            names: set[str] = set()
            while time.monotonic() < deadline and not {"scm.orders", "other.topic"} <= names:
                names = set(admin.list_topics(timeout=10).topics)
                time.sleep(0.1)
            assert {"scm.orders", "other.topic"} <= names
        assert _broker_jvms(tmp_path / f"start-{attempt}") == []


def test_an_error_after_the_jvm_started_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scm.broker
    import scm.kafka

    settings = load_settings(
        {"SCM_STATE": str(tmp_path), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )

    def interrupted(bootstrap: str, timeout: float = 2.0, **options: object) -> bool:
        assert _broker_jvms(tmp_path), "the JVM should be running while readiness is probed"
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(scm.broker, "accepts_topics", interrupted)
        with pytest.raises(KeyboardInterrupt):
            EmbeddedBroker(settings).start()
    assert _broker_jvms(tmp_path) == []

    def topics_refused(*args: object, **kwargs: object) -> list[str]:
        raise ScmError("cannot create Kafka topic scm.orders")

    monkeypatch.setattr(scm.kafka, "ensure_topics", topics_refused)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(ScmError, match="cannot create Kafka topic"):
            scm.broker.run_broker(settings)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert _broker_jvms(tmp_path) == []
