"""Kafka plumbing shared by the commands: reachability, topics, a producer that reports.

Every failure a user can fix (broker down, topic creation refused, messages undelivered)
becomes a one-line :class:`ScmError` that says what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from scm.contracts import ALERTS_TOPIC, PARTITIONS, TOPICS
from scm.errors import ScmError
from scm.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Producer

ALL_TOPICS: tuple[str, ...] = tuple(TOPICS)

# librdkafka logs every refused connection; while probing, the one-line error says it all.
_quiet = logging.getLogger("scm.kafka.probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

# Producer logs: errors only by default (a fresh broker's "coordinator load in progress,
# retrying" is routine); configure the "scm.kafka" logger to see more.
_log = logging.getLogger("scm.kafka")
if _log.level == logging.NOTSET:
    _log.setLevel(logging.ERROR)

_PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": "true",  # broker-side dedup of librdkafka's own retries
    "acks": "all",
    "linger.ms": 20,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    # A message not acknowledged within a minute fails its delivery report, so flush()
    # ends instead of waiting out librdkafka's 5-minute default.
    "message.timeout.ms": 60_000,
}


def _unreachable(settings: Settings) -> ScmError:
    return ScmError(
        f"cannot reach Kafka at {settings.kafka_bootstrap}: start it with `scm broker` or set"
        " SCM_KAFKA_BOOTSTRAP"
    )


def _all_refuse(settings: Settings) -> bool:
    """True when every bootstrap server refuses a TCP connection: no broker is there.

    librdkafka retries a refused connection until its timeout (10 s for a metadata
    request); a refusal is final, so the caller can say so at once. Anything else (a slow
    network, a name that does not resolve yet) is left to librdkafka's own timeout.
    """
    return all(_refuses(server) for server in settings.kafka_bootstrap.split(","))


def _refuses(server: str) -> bool:
    """True when ``server`` (host:port) refuses a TCP connection: no broker is there."""
    import socket

    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _admin_config(settings: Settings) -> dict[str, Any]:
    return {**settings.librdkafka_config(), "logger": _quiet}


def check_reachable(settings: Settings, timeout: float = 5.0) -> None:
    """Fail fast, with one line, when no broker answers at ``SCM_KAFKA_BOOTSTRAP``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    if _all_refuse(settings):
        raise _unreachable(settings)
    admin = AdminClient(_admin_config(settings))
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        raise _unreachable(settings) from None


def end_offsets(
    settings: Settings, topics: Sequence[str], timeout: float = 10.0
) -> dict[str, dict[int, int]]:
    """Each partition's end offset (the high watermark: the next offset to be written) of
    ``topics``, per topic and partition; a topic Kafka does not list is left out."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    if _all_refuse(settings):
        raise _unreachable(settings)
    admin = AdminClient(_admin_config(settings))
    ends: dict[str, dict[int, int]] = {}
    try:
        listed = admin.list_topics(timeout=timeout).topics
        latest = OffsetSpec.latest()
        requests = {
            TopicPartition(topic, partition): latest
            for topic in topics
            if topic in listed
            for partition in listed[topic].partitions
        }
        if not requests:
            return ends
        for asked, future in admin.list_offsets(requests, request_timeout=timeout).items():
            ends.setdefault(asked.topic, {})[asked.partition] = future.result().offset
    except KafkaException:
        raise _unreachable(settings) from None
    return ends


def ensure_topics(
    settings: Settings,
    topics: Sequence[str] = ALL_TOPICS,
    partitions: int = PARTITIONS,
    replication_factor: int = -1,
) -> list[str]:
    """Create the missing ``topics``; return those created. Existing topics are left as is.

    ``replication_factor=-1`` takes the cluster's ``default.replication.factor`` (1 on the
    embedded broker, 3 on ``scm cluster up``, the provider's choice on MSK or Confluent
    Cloud), so the same call suits every Kafka the platform runs on.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    if _all_refuse(settings):
        raise _unreachable(settings)
    admin = AdminClient(_admin_config(settings))
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException:
        raise _unreachable(settings) from None
    missing = [topic for topic in topics if topic not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)
            for topic in missing
        ]
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
            created.append(topic)
        except KafkaException as error:
            kafka_error = error.args[0] if error.args else None
            if getattr(kafka_error, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created meanwhile by someone else: fine
            raise ScmError(
                f"cannot create Kafka topic {topic} at {settings.kafka_bootstrap}: {error}"
            ) from None
    _await_metadata(settings, created, partitions)
    return created


def _await_metadata(
    settings: Settings, topics: Sequence[str], partitions: int, timeout: float = 30.0
) -> None:
    """Wait until each bootstrap server lists ``topics`` with a leader for every partition.

    A create call returns once the controller has the topic; each broker learns of it a
    moment later. Asking every server, each through a client of its own, lets a caller
    that says "ready" mean it for any node a producer or consumer talks to first.
    """
    if not topics:
        return
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    for server in settings.kafka_bootstrap.split(","):
        if _refuses(server):
            continue  # a node that is down serves no client; the others must know the topics
        admin = AdminClient({**_admin_config(settings), "bootstrap.servers": server.strip()})
        while True:
            try:
                known = admin.list_topics(timeout=10).topics
            except KafkaException:
                known = {}
            if all(
                topic in known
                and len(known[topic].partitions) == partitions
                and all(p.leader >= 0 for p in known[topic].partitions.values())
                for topic in topics
            ):
                break
            if time.monotonic() > deadline:
                raise ScmError(
                    f"Kafka at {server.strip()} does not list the new topics after"
                    f" {timeout:.0f} s: see its log"
                )
            time.sleep(0.1)


def producer(settings: Settings) -> Producer:
    """An idempotent, batching producer; ``SCM_KAFKA_*`` settings override its defaults."""
    from confluent_kafka import Producer

    return Producer({**_PRODUCER_DEFAULTS, "logger": _log, **settings.librdkafka_config()})


class DeliveryReport:
    """Counts delivery reports; remembers the first failure to explain it."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, message: object) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = error

    def raise_on_failure(self, bootstrap: str) -> None:
        if self.failed:
            reason = self.first_error.str() if self.first_error is not None else "unknown"
            raise ScmError(
                f"{self.failed} messages were not delivered to Kafka at {bootstrap}: {reason}"
                " (is the broker still running?)"
            )


def produce(
    producer: Producer, records: Iterable[tuple[str, str, bytes]], report: DeliveryReport
) -> int:
    """Queue ``records`` (topic, key, value) in order, waiting when the local queue is full.

    Returns how many were queued; delivery is confirmed by ``flush`` and ``report``.
    """
    count = 0
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)  # queue full: let deliveries drain it
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    producer.poll(0)
    return count


def produce_all(
    producer: Producer,
    records: Sequence[tuple[str, str, bytes]],
    *,
    bootstrap: str = "Kafka",
    on_progress: Callable[[int, int], None] | None = None,
    flush_timeout: float = 120.0,
) -> int:
    """Produce ``records`` in order, wait until the broker has acknowledged all of them.

    Raises ScmError when any message could not be delivered. Returns the number produced.
    """
    report = DeliveryReport()
    total = len(records)
    step = 5000
    for start in range(0, total, step):
        produce(producer, records[start : start + step], report)
        if on_progress is not None:
            on_progress(min(start + step, total), total)
    remaining = producer.flush(flush_timeout)
    if remaining:
        raise ScmError(
            f"{remaining} messages were still unacknowledged by Kafka at {bootstrap} after"
            f" {flush_timeout:.0f} s: check the broker"
        )
    report.raise_on_failure(bootstrap)
    return total


_ALERT_FLUSH_SECONDS = 70.0  # the shared producer gives up on a message after 60 s


def publish_alerts(settings: Settings, alerts: Sequence[tuple[str, bytes]], kind: str) -> None:
    """Produce ``alerts`` (key, JSON value) to ``scm.alerts``; return once Kafka acknowledged
    every one, or raise ScmError (the caller's outbox keeps them for the next try)."""
    if not alerts:
        return
    client = producer(settings)
    report = DeliveryReport()
    produce(client, [(ALERTS_TOPIC, key, value) for key, value in alerts], report)
    remaining = client.flush(_ALERT_FLUSH_SECONDS)
    if remaining:
        raise ScmError(
            f"{remaining} {kind} alert(s) not acknowledged by Kafka at "
            f"{settings.kafka_bootstrap} within {_ALERT_FLUSH_SECONDS:.0f} s"
        )
    report.raise_on_failure(settings.kafka_bootstrap)
