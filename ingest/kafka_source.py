"""Spark's own Kafka source, configured from settings (docs/ingest.md, "Options").

``SCM_KAFKA_<SETTING>`` values are librdkafka names, because the Python clients
(simulator, alerts) use them as they are. Spark's source runs the Java client, which
spells a few security settings differently; :func:`java_client_options` translates
those so one set of ``SCM_KAFKA_*`` variables serves both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from scm.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def java_client_options(settings: Settings) -> dict[str, str]:
    """``kafka.*`` options for Spark: :meth:`Settings.spark_kafka_options` made Java-ready.

    librdkafka-only settings with a Java equivalent are translated: ``sasl.mechanisms`` →
    ``sasl.mechanism``; ``sasl.username``/``sasl.password`` → ``sasl.jaas.config`` (PLAIN
    and SCRAM); ``ssl.ca.location`` (a PEM file) → a PEM trust store. Everything else passes
    through unchanged (the Java client ignores names it does not know).
    """
    options = dict(settings.spark_kafka_options())
    mechanisms = options.pop("kafka.sasl.mechanisms", None)
    if mechanisms and "kafka.sasl.mechanism" not in options:
        options["kafka.sasl.mechanism"] = mechanisms
    username = options.pop("kafka.sasl.username", None)
    password = options.pop("kafka.sasl.password", None)
    if username is not None and "kafka.sasl.jaas.config" not in options:
        mechanism = options.get("kafka.sasl.mechanism", "PLAIN").upper()
        module = _LOGIN_MODULES.get(mechanism)
        if module is not None:
            options["kafka.sasl.mechanism"] = mechanism
            options["kafka.sasl.jaas.config"] = (
                f"{module} required username={_jaas_quote(username)} "
                f"password={_jaas_quote(password or '')};"
            )
    ca_location = options.pop("kafka.ssl.ca.location", None)
    if ca_location and "kafka.ssl.truststore.location" not in options:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = ca_location
    return options


def reader_options(settings: Settings, topics: Iterable[str]) -> dict[str, str]:
    """All options of the Kafka stream reader: client settings plus the ingest knobs."""
    ingest = settings.ingest
    options = java_client_options(settings)
    # Spark reads each offset range to its end; at the end of a partition's log the Java
    # client's fetch waits out fetch.max.wait.ms (500 ms) for data that is not coming. Per
    # task, per batch, that was most of the cost of reading Kafka (5.8 s -> 0.9 s for 17
    # partitions). (A Java-only name: librdkafka calls it fetch.wait.max.ms.)
    options["kafka.fetch.max.wait.ms"] = "10"
    options.update(
        {
            "subscribe": ",".join(topics),
            "startingOffsets": ingest.starting_offsets,
            "failOnDataLoss": "true" if ingest.fail_on_data_loss else "false",
            # Spark's default (3 tries, 10 ms apart) gives up during a broker restart; this
            # rides out roughly a minute of unavailability before the query fails.
            "fetchOffset.numRetries": "30",
            "fetchOffset.retryIntervalMs": "2000",
        }
    )
    if ingest.max_offsets_per_trigger is not None:
        options["maxOffsetsPerTrigger"] = str(ingest.max_offsets_per_trigger)
    if ingest.min_partitions is not None:
        options["minPartitions"] = str(ingest.min_partitions)
    return options


def read_topics(spark: SparkSession, settings: Settings, topics: Iterable[str]) -> DataFrame:
    """A streaming DataFrame of the raw Kafka records (key, value, topic, partition, ...)."""
    return spark.readStream.format("kafka").options(**reader_options(settings, topics)).load()
