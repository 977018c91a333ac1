"""`scm ingest` in-process: Kafka → bronze + quarantine, inventory position, alerts, maintenance.

One hand-made data set (a few hundred messages, valid and malformed) is produced to the
session's real broker in two rounds and ingested with three ``--once`` runs on the shared
Spark session; most tests read what that left behind. Every id and key carries a per-run
token, so messages other test modules put on the shared broker are ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scm.contracts import ALERTS_TOPIC, TOPICS, validate_event
from scm.settings import Settings, load_settings
from tests.conftest import make_settings, read_alerts

pytestmark = [pytest.mark.spark, pytest.mark.kafka]

Message = tuple[str, str, bytes | None]  # topic, key, value


# --- the data set ---------------------------------------------------------------------------


def at(hour: int, minute: int = 0) -> str:
    return f"2026-03-02T{hour:02d}:{minute:02d}:00Z"


@dataclass
class EventFactory:
    """Builds contract events whose ids and keys all start with ``token``."""

    token: str
    count: int = 0

    def envelope(self, event_type: str, when: str) -> dict[str, Any]:
        self.count += 1
        return {
            "event_id": f"{self.token}-e{self.count}",
            "event_type": event_type,
            "event_time": when,
            "source": "test",
            "schema_version": 1,
        }

    def order(self, number: int, **extra: Any) -> Message:
        event = self.envelope("order_placed", at(8, number % 60))
        order_id = f"{self.token}-O{number}"
        event.update(
            order_id=order_id,
            customer_id=f"C-{number % 7}",
            channel=("online", "store", "b2b")[number % 3],
            ship_from="DC-1",
            requested_delivery_date="2026-03-05",
            currency="USD",
            lines=[
                {"line_no": n, "sku": f"SKU-{n}", "quantity": n + 1, "unit_price": 12.5}
                for n in range(1, number % 3 + 2)
            ],
        )
        event.update(extra)
        return ("scm.orders", order_id, json.dumps(event).encode())

    def shipment(self, number: int, delivered: bool) -> Message:
        shipment_id = f"{self.token}-S{number}"
        if delivered:
            event = self.envelope("shipment_delivered", at(15, number % 60))
            event.update(
                shipment_id=shipment_id,
                order_id=f"{self.token}-O{number}",
                condition="ok",
                documents_ok=True,
            )
        else:
            event = self.envelope("shipment_dispatched", at(12, number % 60))
            event.update(
                shipment_id=shipment_id,
                order_id=f"{self.token}-O{number}",
                ship_from="DC-1",
                carrier="DHL",
                lines=[{"line_no": 1, "sku": "SKU-1", "quantity": 2}],
            )
        return ("scm.shipments", shipment_id, json.dumps(event).encode())

    def return_(self, number: int) -> Message:
        event = self.envelope("return_received", at(16, number % 60))
        return_id = f"{self.token}-R{number}"
        event.update(
            return_id=return_id,
            order_id=f"{self.token}-O{number}",
            line_no=1,
            sku="SKU-1",
            quantity=1,
            reason="damaged",
            disposition="scrap",
            refund_amount=12.5,
            processing_cost=3.25,
            currency="USD",
        )
        return ("scm.returns", return_id, json.dumps(event).encode())

    def purchase_order(self, number: int, received: bool) -> Message:
        po_id = f"{self.token}-P{number}"
        if received:
            event = self.envelope("po_received", at(14, number % 60))
            event.update(po_id=po_id, lines=[{"line_no": 1, "sku": "SKU-1", "quantity": 40}])
        else:
            event = self.envelope("po_created", at(7, number % 60))
            event.update(
                po_id=po_id,
                supplier_id="SUP-1",
                ship_to="DC-1",
                expected_date="2026-03-04",
                currency="USD",
                lines=[{"line_no": 1, "sku": "SKU-1", "quantity": 40, "unit_cost": 7.0}],
            )
        return ("scm.procurement", po_id, json.dumps(event).encode())

    def snapshot(self, location: str, sku: str, on_hand: int, when: str) -> Message:
        event = self.envelope("inventory_snapshot", when)
        event.update(location_id=location, sku=sku, on_hand=on_hand)
        return ("scm.inventory", f"{location}:{sku}", json.dumps(event).encode())

    def movement(self, location: str, sku: str, delta: int, when: str) -> Message:
        event = self.envelope("inventory_movement", when)
        event.update(
            location_id=location,
            sku=sku,
            quantity_delta=delta,
            movement_type="receipt" if delta > 0 else "shipment",
            reference_id=f"{self.token}-ref",
        )
        return ("scm.inventory", f"{location}:{sku}", json.dumps(event).encode())


def malformed_messages(token: str, round_number: int) -> list[Message]:
    """One message per kind of rejection; keys start with ``<token>-bad``."""

    def key(n: int) -> str:
        return f"{token}-bad-{round_number}-{n}"

    valid_order = {
        "event_id": f"{token}-bad-event",
        "event_type": "order_placed",
        "event_time": at(9),
        "source": "test",
        "schema_version": 1,
        "order_id": "O-x",
        "customer_id": "C-x",
        "channel": "online",
        "ship_from": "DC-1",
        "requested_delivery_date": "2026-03-05",
        "currency": "USD",
        "lines": [{"line_no": 1, "sku": "SKU-1", "quantity": 1, "unit_price": 1.0}],
    }
    unknown_type = {**valid_order, "event_type": "order_exploded"}
    missing_field = {k: v for k, v in valid_order.items() if k != "customer_id"}
    wrong_type = {
        **valid_order,
        "lines": [{"line_no": 1, "sku": "SKU-1", "quantity": "ten", "unit_price": 1.0}],
    }
    zero_movement = {
        **{k: valid_order[k] for k in ("event_id", "event_time", "source", "schema_version")},
        "event_type": "inventory_movement",
        "location_id": f"{token}-DC1",
        "sku": "SKU-1",
        "quantity_delta": 0,
        "movement_type": "adjustment",
        "reference_id": "count-1",
    }
    return [
        ("scm.orders", key(1), b'{"event_id": "x", "event_type": "order_pl'),
        ("scm.orders", key(2), json.dumps(unknown_type).encode()),
        ("scm.orders", key(3), json.dumps(missing_field).encode()),
        ("scm.orders", key(4), json.dumps(wrong_type).encode()),
        ("scm.shipments", key(5), json.dumps(valid_order).encode()),  # another topic's type
        ("scm.inventory", key(6), None),
        ("scm.returns", key(7), b"[1, 2, 3]"),
        ("scm.procurement", key(8), b'\xff\xfe{"event_id": 1}'),
        ("scm.inventory", key(9), json.dumps(zero_movement).encode()),
    ]


@dataclass
class DataSet:
    """Two production rounds plus what the ingest must make of them."""

    token: str
    round1: list[Message] = field(default_factory=list)
    round2: list[Message] = field(default_factory=list)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    stockout_key: str = ""
    extra_field_order: str = ""
    resent_event: str = ""


def build_data_set(token: str) -> DataSet:
    make = EventFactory(token)
    data = DataSet(token)
    dc1, dc2, dc3 = f"{token}-DC1", f"{token}-DC2", f"{token}-DC3"
    one = data.round1
    one += [make.order(n) for n in range(30)]
    extra = make.order(30, loyalty_tier="gold", lines=[
        {"line_no": 1, "sku": "SKU-1", "quantity": 1, "unit_price": 9.99, "gift_wrap": True}
    ])  # fmt: skip
    data.extra_field_order = f"{token}-O30"
    one.append(extra)
    one += [make.shipment(n, delivered=False) for n in range(20)]
    one += [make.shipment(n, delivered=True) for n in range(20)]
    one += [make.return_(n) for n in range(10)]
    one += [make.purchase_order(n, received=False) for n in range(10)]
    one += [make.purchase_order(n, received=True) for n in range(10)]
    # Inventory, in arrival order. dc1/SKU-1: a movement before the snapshot is already in
    # it; a producer retry resends the same event.
    moved = make.movement(dc1, "SKU-1", -3, at(10))
    one += [make.snapshot(dc1, "SKU-1", 10, at(9)), moved, make.movement(dc1, "SKU-1", 2, at(8))]
    one.append(moved)
    # dc1/SKU-2: the snapshot arrives after later movements; one movement at its very time.
    one += [make.movement(dc1, "SKU-2", 4, at(10)), make.movement(dc1, "SKU-2", -5, at(12))]
    one += [make.snapshot(dc1, "SKU-2", 50, at(11)), make.movement(dc1, "SKU-2", 7, at(11))]
    # dc2/SKU-1: movements only.
    one += [make.movement(dc2, "SKU-1", d, at(9 + i)) for i, d in enumerate((3, 4, -2))]
    # dc2/SKU-2: stocked now, runs out in round 2.
    one.append(make.snapshot(dc2, "SKU-2", 5, at(9)))
    # dc3/SKU-1: negative from movements; a late snapshot in round 2 fixes it.
    one += [make.movement(dc3, "SKU-1", -2, at(10)), make.movement(dc3, "SKU-1", -1, at(12))]
    for n in range(10):
        location = f"{token}-DC9"
        one.append(make.snapshot(location, f"SKU-{n}", 100, at(8)))
        one += [make.movement(location, f"SKU-{n}", -1, at(9, m)) for m in range(9)]
        data.positions[(location, f"SKU-{n}")] = 91
    one += malformed_messages(token, 1)

    two = data.round2
    two.append(make.movement(dc2, "SKU-2", -5, at(10)))
    two.append(make.snapshot(dc3, "SKU-1", 20, at(11)))
    two += [make.order(n) for n in range(31, 36)]
    two.append(one[0])  # a producer retry of an event already ingested
    data.resent_event = json.loads(one[0][2] or b"{}")["event_id"]
    two += malformed_messages(token, 2)[:3]

    data.positions.update(
        {(dc1, "SKU-1"): 7, (dc1, "SKU-2"): 45, (dc2, "SKU-1"): 5, (dc2, "SKU-2"): 0,
         (dc3, "SKU-1"): 19}
    )  # fmt: skip
    data.stockout_key = f"{dc2}:SKU-2"
    return data


@dataclass(frozen=True)
class Produced:
    topic: str
    key: str
    value: bytes | None
    partition: int
    offset: int

    @property
    def coordinates(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @property
    def error(self) -> str | None:
        return validate_event(self.topic, self.value)


def produce(settings: Settings, messages: Sequence[Message]) -> list[Produced]:
    """Produce in order and return each message with the coordinates Kafka gave it."""
    from confluent_kafka import Producer

    producer = Producer({**settings.librdkafka_config(), "enable.idempotence": True})
    produced: list[Produced | None] = [None] * len(messages)

    def delivered(index: int) -> Any:
        def report(error: Any, message: Any) -> None:
            assert error is None, error
            topic, key, value = messages[index]
            produced[index] = Produced(topic, key, value, message.partition(), message.offset())

        return report

    for index, (topic, key, value) in enumerate(messages):
        producer.produce(topic, key=key, value=value, on_delivery=delivered(index))
    assert producer.flush(30) == 0
    assert all(p is not None for p in produced)
    return [p for p in produced if p is not None]


def ensure_all_topics(settings: Settings) -> None:
    from scm.kafka import ensure_topics

    ensure_topics(settings, (*TOPICS, ALERTS_TOPIC))


def run_once(spark: Any, settings: Settings, timeout: float = 300) -> None:
    from ingest import start_ingest

    with start_ingest(spark, settings, once=True) as run:
        assert run.await_completion(timeout=timeout), "ingest --once did not finish in time"


# --- the shared ingest run ------------------------------------------------------------------


@dataclass
class Ingested:
    settings: Settings
    data: DataSet
    produced: list[Produced]

    @property
    def valid(self) -> list[Produced]:
        return [p for p in self.produced if p.error is None]

    @property
    def rejected(self) -> list[Produced]:
        return [p for p in self.produced if p.error is not None]


@pytest.fixture(scope="module")
def ingested(spark: Any, kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    settings = make_settings(tmp_path_factory.mktemp("ingest"), kafka_broker)
    ensure_all_topics(settings)
    data = build_data_set(f"t{uuid.uuid4().hex[:8]}")
    produced = produce(settings, data.round1)
    run_once(spark, settings)
    produced += produce(settings, data.round2)
    run_once(spark, settings)
    run_once(spark, settings)  # nothing new: must change nothing and alert nobody again
    return Ingested(settings, data, produced)


def bronze_rows(spark: Any, settings: Settings, token: str) -> list[Any]:
    """(table, event_id, _topic, _partition, _offset) of every bronze row of this run."""
    from pyspark.sql import functions as F

    from scm.lake import Lake

    lake = Lake.at(settings.lake)
    rows = []
    for topic in TOPICS.values():
        table = spark.read.format("delta").load(lake.bronze(topic.entity))
        rows += (
            table.where(F.col("event_id").startswith(token))
            .select(
                F.lit(topic.entity).alias("table"), "event_id", "_topic", "_partition", "_offset"
            )
            .collect()
        )
    return rows


def quarantine_rows(spark: Any, settings: Settings, token: str) -> list[Any]:
    from pyspark.sql import functions as F

    from scm.lake import Lake

    table = spark.read.format("delta").load(Lake.at(settings.lake).quarantine)
    return table.where(F.col("key").startswith(f"{token}-bad")).collect()


# --- tests -----------------------------------------------------------------------------------


def test_data_set_is_what_it_claims() -> None:
    """Guards the fixtures: the malformed messages are invalid, everything else valid."""
    data = build_data_set("tcheck")
    for topic, key, value in data.round1 + data.round2:
        error = validate_event(topic, value)
        assert (error is not None) == key.startswith("tcheck-bad"), (key, error)


def test_every_valid_event_lands_exactly_once(spark: Any, ingested: Ingested) -> None:
    rows = bronze_rows(spark, ingested.settings, ingested.data.token)
    coordinates = [(r["_topic"], r["_partition"], r["_offset"]) for r in rows]
    assert len(coordinates) == len(set(coordinates)), "a Kafka record landed twice"
    assert set(coordinates) == {p.coordinates for p in ingested.valid}
    for row in rows:  # each topic lands in its own table
        assert TOPICS[row["_topic"]].entity == row["table"]


def test_bronze_keeps_duplicates_and_accepts_extra_fields(spark: Any, ingested: Ingested) -> None:
    from pyspark.sql import functions as F

    from scm.lake import Lake

    orders = spark.read.format("delta").load(Lake.at(ingested.settings.lake).bronze("orders"))
    resent = orders.where(F.col("event_id") == ingested.data.resent_event).count()
    assert resent == 2, "bronze keeps a re-sent event as it arrived; silver deduplicates"
    extra = orders.where(F.col("order_id") == ingested.data.extra_field_order).collect()
    assert len(extra) == 1
    assert "loyalty_tier" not in orders.columns
    line = extra[0]["lines"][0]
    assert (line["line_no"], line["sku"], line["quantity"]) == (1, "SKU-1", 1)
    assert float(line["unit_price"]) == pytest.approx(9.99)


def test_malformed_events_are_quarantined_with_reasons(spark: Any, ingested: Ingested) -> None:
    rows = quarantine_rows(spark, ingested.settings, ingested.data.token)
    got = {(r["topic"], r["partition"], r["offset"]): r for r in rows}
    assert len(got) == len(rows), "a rejected record was quarantined twice"
    expected = {p.coordinates: p for p in ingested.rejected}
    assert set(got) == set(expected)
    for coordinates, message in expected.items():
        row = got[coordinates]
        assert message.error is not None
        assert row["error"] == message.error
        assert row["key"] == message.key
        assert row["raw_bytes"] == message.value
        assert row["quarantined_at"] is not None
    reasons = {row["key"].rsplit("-", 2)[-1]: row["error"] for row in rows}
    assert reasons["2"].startswith("unknown event_type")
    assert reasons["3"] == "missing required field 'customer_id'"


def test_inventory_position_converges_with_late_and_duplicate_events(
    spark: Any, ingested: Ingested
) -> None:
    from pyspark.sql import functions as F

    from scm.lake import Lake

    table = spark.read.format("delta").load(Lake.at(ingested.settings.lake).silver(
        "inventory_position"
    ))  # fmt: skip
    rows = table.where(F.col("location_id").startswith(ingested.data.token)).collect()
    assert {(r["location_id"], r["sku"]): r["on_hand"] for r in rows} == ingested.data.positions
    assert all(r["updated_at"] is not None and r["last_event_time"] is not None for r in rows)


def test_stockout_alert_is_published_once(spark: Any, ingested: Ingested) -> None:
    key = ingested.data.stockout_key
    alerts = read_alerts(ingested.settings, key)
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    location, sku = key.split(":")
    assert alert["event_type"] == "stockout"
    assert (alert["location_id"], alert["sku"], alert["on_hand"]) == (location, sku, 0)
    assert alert["event_time"] == at(10)
    assert alert["event_id"].startswith("stockout-")
    # Only that key went from > 0 to <= 0; dc3 was negative before its late snapshot.
    assert read_alerts(ingested.settings, f"{ingested.data.token}-DC3:SKU-1") == []


def test_tables_are_readable_by_delta_rs_and_duckdb(spark: Any, ingested: Ingested) -> None:
    import duckdb
    from deltalake import DeltaTable

    from scm.lake import Lake

    lake = Lake.at(ingested.settings.lake)
    paths = [lake.bronze(t.entity) for t in TOPICS.values()]
    paths += [lake.quarantine, lake.silver("inventory_position")]
    for path in paths:
        expected = spark.read.format("delta").load(path).count()
        assert expected > 0, path
        arrow = DeltaTable(path).to_pyarrow_table()
        assert arrow.num_rows == expected, path
        connection = duckdb.connect()
        connection.register("snapshot", DeltaTable(path).to_pyarrow_dataset())
        counted = connection.execute("select count(*) from snapshot").fetchone()
        assert counted is not None and counted[0] == expected, path


def test_progress_is_logged_per_batch(ingested: Ingested) -> None:
    lines = (Path(ingested.settings.state) / "ingest-progress.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    bronze = [r for r in records if r["query"] == "scm_ingest_bronze"]
    assert bronze and {r["query"] for r in records} == {"scm_ingest_bronze"}
    # The position is kept in the same micro-batch: its counts are on the bronze records.
    assert sum(r["positions_changed"] for r in bronze) > 0
    assert all(r["alerts_published"] >= 0 for r in bronze)
    for record in bronze:
        assert record["input_rows"] > 0 and record["batch_duration_ms"] >= 0
        assert record["offsets_behind_latest"] is not None
        assert {"max", "avg", "min"} <= set(record["offsets_behind_latest"])
        assert "processed_rows_per_second" in record and "input_rows_per_second" in record
    assert sum(r["valid_rows"] for r in bronze) >= len(ingested.valid)
    assert sum(r["quarantined_rows"] for r in bronze) >= len(ingested.rejected)


def test_last_planned_batch_is_the_newest_batch_the_checkpoint_planned(
    spark: Any, ingested: Ingested
) -> None:
    """What a restarted run reads to know which batch (if any) it may be replaying."""
    from ingest.bronze_sink import BRONZE_QUERY, last_planned_batch
    from scm.lake import Lake

    lines = (Path(ingested.settings.state) / "ingest-progress.jsonl").read_text().splitlines()
    ran = [json.loads(line)["batch_id"] for line in lines if BRONZE_QUERY in line]
    checkpoint = Lake.at(ingested.settings.lake).checkpoint(BRONZE_QUERY)
    assert last_planned_batch(spark, checkpoint) == max(ran)
    assert last_planned_batch(spark, checkpoint + "-never-started") == -1


def test_planned_topic_sizes_are_the_rows_each_batch_held(ingested: Ingested) -> None:
    """The offset log tells a batch which topics to check without a counting job: here (no
    transactions, no compaction) exactly the rows the batch then logged per topic."""
    from ingest.offset_log import BRONZE_QUERY, planned_topic_sizes
    from scm.lake import Lake

    checkpoint = Lake.at(ingested.settings.lake).checkpoint(BRONZE_QUERY)
    lines = (Path(ingested.settings.state) / "ingest-progress.jsonl").read_text().splitlines()
    batches = [json.loads(line) for line in lines if BRONZE_QUERY in line]
    later = [batch for batch in batches if batch["batch_id"] >= 1]
    assert later, "the fixture's ingest ran one batch only"
    for batch in later:
        sizes = planned_topic_sizes(checkpoint, batch["batch_id"])
        assert sizes is not None
        logged = {
            topic: rows["valid"] + rows["quarantined"]
            for topic, rows in batch["rows_by_topic"].items()
        }
        assert {topic: n for topic, n in sizes.items() if n} == logged, batch["batch_id"]
    # The first batch starts where only Kafka knows.
    assert planned_topic_sizes(checkpoint, 0) is None
    assert planned_topic_sizes(checkpoint + "-never-started", 3) is None


def test_a_catch_up_starts_spark_only_when_kafka_holds_something_new(
    spark: Any, kafka_broker: str, tmp_path: Path
) -> None:
    """``scm refresh`` and Dagster's ingest step catch bronze up with ``ingest --once``; when
    the last run read everything Kafka has, or a running ingest owns the lake, they skip it
    without starting Spark (10-16 s). Anything the query would still read runs it."""
    from ingest.inventory_position import LEDGER_TABLE, has_ledger
    from ingest.lock import IngestLock
    from ingest.offset_log import BRONZE_QUERY, nothing_new
    from scm.lake import Lake
    from transforms.refresh import catch_up_ingest

    settings = make_settings(tmp_path, kafka_broker, SCM_INGEST_STARTING_OFFSETS="latest")
    ensure_all_topics(settings)
    asked: list[int] = []

    def session() -> Any:
        asked.append(1)
        return spark

    token = f"t{uuid.uuid4().hex[:8]}"
    events = EventFactory(token)
    assert catch_up_ingest(session, settings) == "caught up"  # a new lake: the query starts
    produce(settings, [events.order(1)])
    assert catch_up_ingest(session, settings) == "caught up"
    assert len(asked) == 2

    assert catch_up_ingest(session, settings) == "skipped: nothing new in Kafka"
    with IngestLock.for_settings(settings):
        produce(settings, [events.order(2)])
        assert catch_up_ingest(session, settings) == (
            "skipped: a running ingest keeps bronze current"
        )
    assert len(asked) == 2  # Spark was not asked for

    assert catch_up_ingest(session, settings) == "caught up"  # order 2 is new
    assert len(asked) == 3
    rows = bronze_rows(spark, settings, token)
    assert sorted(row["event_id"] for row in rows) == [f"{token}-e1", f"{token}-e2"]
    lake = Lake.at(settings.lake)
    # A lake from before the position's ledger gets it at the next start: not skipped.
    shutil.rmtree(lake.checkpoint(LEDGER_TABLE))
    assert catch_up_ingest(session, settings) == "caught up"
    assert len(asked) == 4 and has_ledger(lake.checkpoint(LEDGER_TABLE))
    checkpoint = lake.checkpoint(BRONZE_QUERY)
    assert nothing_new(settings, checkpoint, tuple(TOPICS))
    # A batch planned but not committed (a crash before the commit) is replayed: not skipped.
    commits = Path(checkpoint) / "commits"
    newest = max((p for p in commits.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    newest.unlink()
    assert not nothing_new(settings, checkpoint, tuple(TOPICS))


def test_replayed_microbatch_writes_and_alerts_once(
    spark: Any, kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink called again with the same batch id, as Spark does after a crash: also after
    one that came between the bronze append and the position merge."""
    from ingest import inventory_position
    from ingest.bronze_sink import BronzeSink
    from ingest.inventory_position import InventoryPosition, create_position_table
    from ingest.tables import create_bronze_tables
    from ingest.validation import Screening
    from scm.contracts import validate_event
    from scm.errors import ScmError
    from scm.lake import Lake

    def refuse_alerts(settings: Settings, alerts: Any) -> None:
        raise ScmError("broker down")

    settings = make_settings(tmp_path, kafka_broker)
    ensure_all_topics(settings)
    lake = Lake.at(settings.lake)
    create_bronze_tables(lake, TOPICS)
    create_position_table(lake)
    token = f"t{uuid.uuid4().hex[:8]}"
    make = EventFactory(token)
    location = f"{token}-DC1"

    def kafka_batch(messages: list[Message], first_offset: int) -> Any:
        rows = [
            (key.encode(), value, topic, 0, first_offset + n, dt.datetime(2026, 3, 2), 0)
            for n, (topic, key, value) in enumerate(messages)
        ]
        schema = (
            "key binary, value binary, topic string, partition int, offset long, "
            "timestamp timestamp, timestampType int"
        )
        return spark.createDataFrame(rows, schema)

    def position_rows() -> list[tuple[int, bool | None]]:
        rows = spark.read.format("delta").load(lake.silver("inventory_position")).collect()
        return [(r["on_hand"], r["stockout_alert_sent"]) for r in rows]

    # Valid events the screen leaves to the reference validator (a price in exponent
    # notation, an extra field nested deeper than the screen looks) are appended after the
    # screened ones, by a writer of their own.
    topic, key, order = make.order(2)
    assert order is not None
    rare_order = (topic, key, order.replace(b'"unit_price": 12.5', b'"unit_price": 1.25E1'))
    topic, key, movement = make.movement(location, "SKU-1", -3, at(10))
    assert movement is not None
    deep_movement = (topic, key, movement[:-1] + b', "extra": [[[[[[[[1]]]]]]]]}')
    assert all(validate_event(t, v) is None for t, _, v in (rare_order, deep_movement))
    first = kafka_batch(
        [
            make.snapshot(location, "SKU-1", 3, at(9)),
            make.order(1),
            rare_order,
            *malformed_messages(token, 1),
        ],
        0,
    )
    second = kafka_batch([deep_movement], 100)
    assert InventoryPosition(lake, settings).ensure_ledger(spark) == 0  # as a start does
    # A crash after the screened rows' appends, before the reference's verdicts: a sink
    # without the position whose judging dies.
    crashed = BronzeSink(lake, TOPICS)
    crashed.bind("replay-test")
    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="crash"):
        patch.setattr(Screening, "judge", lambda self: (_ for _ in ()).throw(RuntimeError("crash")))
        crashed.commit_microbatch(first, 0)
    assert len(bronze_rows(spark, settings, token)) == 2  # the screened snapshot and order
    assert position_rows() == []
    # The restarted run replays batch 0: bronze is skipped, the position is still computed.
    bronze = BronzeSink(
        lake, TOPICS, position=InventoryPosition(lake, settings), last_planned_batch=0
    )
    bronze.bind("replay-test")
    bronze.commit_microbatch(first, 0)
    bronze.commit_microbatch(first, 0)  # replayed in the same run: skipped
    assert position_rows() == [(3, None)]
    with monkeypatch.context() as patch:  # Kafka refuses the alert: it stays in the outbox
        patch.setattr(inventory_position, "publish_stockouts", refuse_alerts)
        bronze.commit_microbatch(second, 1)
    assert read_alerts(settings, f"{location}:SKU-1") == []
    assert position_rows() == [(0, False)]
    # A new run whose checkpoint planned batch 1 replays it: the markers say it is written,
    # the position is unchanged, and the pending alert goes out, once.
    for _replay in range(2):
        restarted = BronzeSink(
            lake, TOPICS, position=InventoryPosition(lake, settings), last_planned_batch=1
        )
        restarted.bind("replay-test")
        restarted.commit_microbatch(second, 1)

    rows = bronze_rows(spark, settings, token)
    assert len(rows) == 4  # snapshot, two orders, movement: each once
    assert len(quarantine_rows(spark, settings, token)) == len(malformed_messages(token, 1))
    alerts = read_alerts(settings, f"{location}:SKU-1")
    assert [a["on_hand"] for a in alerts] == [0]
    position = spark.read.format("delta").load(lake.silver("inventory_position")).collect()
    assert [(r["on_hand"], r["stockout_alert_sent"]) for r in position] == [(0, True)]
    assert position[0]["stockout_alert_id"] == alerts[0]["event_id"]


def test_a_lake_without_the_position_ledger_gets_it_built_from_bronze_once(
    spark: Any, kafka_broker: str, tmp_path: Path
) -> None:
    """A lake from before the ledger (its position query may have lagged bronze): the next
    start recomputes every position from bronze, builds the ledger, drops the old query's
    checkpoint; later batches fold their events into that ledger."""
    from ingest.bronze_sink import BronzeSink
    from ingest.inventory_position import (
        LEDGER_TABLE,
        LEGACY_POSITION_QUERY,
        InventoryPosition,
        create_position_table,
    )
    from ingest.job import _ensure_ledger
    from ingest.tables import create_bronze_tables
    from scm.lake import Lake

    settings = make_settings(tmp_path, kafka_broker)
    lake = Lake.at(settings.lake)
    create_bronze_tables(lake, TOPICS)
    create_position_table(lake)
    token = f"t{uuid.uuid4().hex[:8]}"
    make = EventFactory(token)
    dc = f"{token}-DC1"

    def batch(messages: list[Message], first_offset: int) -> Any:
        rows = [
            (key.encode(), value, topic, 0, first_offset + n, dt.datetime(2026, 3, 2), 0)
            for n, (topic, key, value) in enumerate(messages)
        ]
        return spark.createDataFrame(
            rows,
            "key binary, value binary, topic string, partition int, offset long,"
            " timestamp timestamp, timestampType int",
        )

    def on_hand() -> list[tuple[str, int]]:
        rows = spark.read.format("delta").load(lake.silver("inventory_position")).collect()
        return sorted((r["sku"], r["on_hand"]) for r in rows)

    old_design = BronzeSink(lake, TOPICS)  # bronze written, its position never computed
    old_design.bind("legacy")
    old_design.commit_microbatch(
        batch(
            [
                make.movement(dc, "SKU-1", 4, at(8)),  # before the snapshot: never counts
                make.snapshot(dc, "SKU-1", 5, at(9)),
                make.movement(dc, "SKU-1", -2, at(10)),
                make.movement(dc, "SKU-2", 7, at(10)),
            ],
            0,
        ),
        0,
    )
    legacy = Path(lake.checkpoint(LEGACY_POSITION_QUERY))
    (legacy / "offsets").mkdir(parents=True)

    position = InventoryPosition(lake, settings)
    _ensure_ledger(spark, lake, position)
    assert not legacy.exists()
    assert on_hand() == [("SKU-1", 3), ("SKU-2", 7)]
    ledger = spark.read.format("delta").load(lake.checkpoint(LEDGER_TABLE)).collect()
    kept = {r["sku"]: sorted(e["event_type"] for e in r["events"]) for r in ledger}
    assert kept == {
        "SKU-1": ["inventory_movement", "inventory_snapshot"],  # the 8:00 movement pruned
        "SKU-2": ["inventory_movement"],
    }
    assert position.ensure_ledger(spark) == 0  # once

    # Later batches: a late movement before the snapshot, a duplicate, a later snapshot.
    late = make.movement(dc, "SKU-1", 100, at(7))
    later = make.movement(dc, "SKU-1", -1, at(11))
    sink = BronzeSink(lake, TOPICS, position=position, last_planned_batch=-1)
    sink.bind("ledger")
    sink.commit_microbatch(batch([late, later], 10), 1)
    assert on_hand() == [("SKU-1", 2), ("SKU-2", 7)]
    sink.commit_microbatch(batch([later, make.snapshot(dc, "SKU-2", 1, at(9))], 20), 2)
    assert on_hand() == [("SKU-1", 2), ("SKU-2", 1 + 7)]  # SKU-2's 10:00 movement is after
    sink.commit_microbatch(batch([make.snapshot(dc, "SKU-2", 6, at(12))], 30), 3)
    assert on_hand() == [("SKU-1", 2), ("SKU-2", 6)]


def test_maintain_compacts_checkpoints_and_vacuums(
    spark: Any, ingested: Ingested, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.maintenance import run_maintenance
    from scm.errors import ScmError
    from scm.lake import Lake

    lake = Lake.at(ingested.settings.lake)
    before = {p: spark.read.format("delta").load(p).count() for p in (lake.bronze("orders"),)}
    assert run_maintenance(ingested.settings, retention_hours=168) == 0
    out = capsys.readouterr().out
    assert "bronze/orders: optimize" in out and "silver/inventory_position" in out
    assert "bronze/quarantine" in out
    for path, count in before.items():
        assert spark.read.format("delta").load(path).count() == count
        assert any(Path(path, "_delta_log").glob("*.checkpoint.parquet"))
    with pytest.raises(ScmError, match="at least 168"):
        run_maintenance(ingested.settings, retention_hours=24)


# --- pure pieces: options, lock, the position rule -----------------------------------------


def test_settings_map_to_kafka_reader_options() -> None:
    from ingest.kafka_source import reader_options

    settings = load_settings(
        {
            "SCM_KAFKA_BOOTSTRAP": "kafka-1:9093,kafka-2:9093",
            "SCM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SCM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SCM_KAFKA_SASL_USERNAME": "scm",
            "SCM_KAFKA_SASL_PASSWORD": 'pa"ss',
            "SCM_KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.pem",
            "SCM_INGEST_STARTING_OFFSETS": "latest",
            "SCM_INGEST_MAX_OFFSETS_PER_TRIGGER": "5000",
            "SCM_INGEST_MIN_PARTITIONS": "8",
            "SCM_INGEST_FAIL_ON_DATA_LOSS": "false",
        }
    )
    options = reader_options(settings, ["scm.orders", "scm.inventory"])
    assert options["subscribe"] == "scm.orders,scm.inventory"
    assert options["kafka.bootstrap.servers"] == "kafka-1:9093,kafka-2:9093"
    assert options["startingOffsets"] == "latest"
    assert options["maxOffsetsPerTrigger"] == "5000"
    assert options["minPartitions"] == "8"
    assert options["failOnDataLoss"] == "false"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="scm" password="pa\\"ss";'
    )
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == "/etc/kafka/ca.pem"
    assert "kafka.sasl.password" not in options and "kafka.sasl.username" not in options

    defaults = reader_options(load_settings({}), ["scm.orders"])
    assert defaults["startingOffsets"] == "earliest"
    assert defaults["failOnDataLoss"] == "true"
    assert "maxOffsetsPerTrigger" not in defaults and "minPartitions" not in defaults


def test_second_ingest_on_the_same_lake_is_refused(tmp_path: Path) -> None:
    from ingest import IngestAlreadyRunning, run_ingest
    from ingest.lock import IngestLock

    settings = make_settings(tmp_path, "127.0.0.1:1")
    with IngestLock.for_settings(settings), pytest.raises(IngestAlreadyRunning, match="on lake"):
        run_ingest(settings, once=True)  # refused before Kafka or Spark are touched
    with IngestLock.for_settings(settings) as again:  # released: takes it again
        assert again.held


def test_streamed_tables_checkpoint_off_the_hot_path(tmp_path: Path) -> None:
    """New bronze tables, and those of an older lake, get a checkpoint every 100 commits
    instead of Delta's 10, which put a synchronous checkpoint in most micro-batches."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from ingest.tables import create_bronze_tables
    from scm.lake import Lake

    lake = Lake.at(str(tmp_path / "lake"))
    older = lake.bronze("orders")
    DeltaTable.create(older, pa.schema([("order_id", pa.string())]))
    create_bronze_tables(lake, TOPICS)
    for path in [lake.bronze(topic.entity) for topic in TOPICS.values()] + [lake.quarantine]:
        configuration = DeltaTable(path).metadata().configuration
        assert configuration.get("delta.checkpointInterval") == "100", path
    assert DeltaTable(older).version() == 1  # the older table: one property commit
    create_bronze_tables(lake, TOPICS)  # a restart changes nothing more
    assert DeltaTable(older).version() == 1


def test_inventory_position_rule() -> None:
    import pyarrow as pa

    from ingest.inventory_position import EVENT_COLUMNS, KEYS, inventory_positions

    def row(key: str, event_id: str, kind: str, hour: int, amount: int, offset: int) -> tuple:
        location, sku = key.split(":")
        when = dt.datetime(2026, 3, 2, hour, tzinfo=dt.UTC)
        snapshot = kind == "snapshot"
        return (
            location, sku, event_id, f"inventory_{kind}", when,
            amount if snapshot else None, None if snapshot else amount,
            "scm.inventory", 0, offset,
        )  # fmt: skip

    rows = [
        row("A:1", "m1", "movement", 8, 2, 0),  # before the snapshot: already in it
        row("A:1", "s1", "snapshot", 9, 10, 1),
        row("A:1", "m2", "movement", 9, 5, 2),  # at the snapshot's time: in it
        row("A:1", "m3", "movement", 10, -3, 3),
        row("A:1", "m3", "movement", 10, -3, 4),  # duplicate event_id
        row("B:1", "m4", "movement", 10, -4, 5),  # no snapshot at all
        row("C:1", "s2", "snapshot", 9, 7, 6),  # two snapshots at one time: highest id
        row("C:1", "s3", "snapshot", 9, 4, 7),
        row("C:1", "s0", "snapshot", 8, 99, 8),  # older snapshot arriving late
    ]
    events = pa.Table.from_pylist(
        [dict(zip((*KEYS, *EVENT_COLUMNS), values, strict=True)) for values in rows]
    )
    positions = inventory_positions(events).sort_by([("location_id", "ascending")]).to_pylist()
    assert positions == [
        {"location_id": "A", "sku": "1", "on_hand": 7,
         "last_event_time": dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)},
        {"location_id": "B", "sku": "1", "on_hand": -4,
         "last_event_time": dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)},
        {"location_id": "C", "sku": "1", "on_hand": 4,
         "last_event_time": dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)},
    ]  # fmt: skip


def test_folding_batches_keeps_positions_ledger_and_stockouts_exact(tmp_path: Path) -> None:
    """The driver-side fold on hand-built batches (Arrow in, delta-rs tables out): late,
    duplicate and re-sent events converge, a stockout starts once and clears on a restock."""
    import hashlib

    import pyarrow as pa
    from deltalake import DeltaTable

    from ingest.inventory_position import EVENT_COLUMNS, KEYS, LEDGER_TABLE, InventoryPosition
    from scm.lake import Lake
    from scm.settings import load_settings

    offsets = iter(range(1000))

    def events(*rows: tuple[str, str, str, int, float]) -> pa.Table:
        out = []
        for key, event_id, kind, amount, hour in rows:
            location, sku = key.split(":")
            snapshot = kind == "snapshot"
            when = dt.datetime(2026, 3, 2, tzinfo=dt.UTC) + dt.timedelta(hours=hour)
            values = (
                location, sku, event_id, f"inventory_{kind}", when,
                amount if snapshot else None, None if snapshot else amount,
                "scm.inventory", 0, next(offsets),
            )  # fmt: skip
            out.append(dict(zip((*KEYS, *EVENT_COLUMNS), values, strict=True)))
        return pa.Table.from_pylist(out)

    lake = Lake.at(str(tmp_path / "lake"))
    settings = load_settings({"SCM_LAKE": lake.root, "SCM_STATE": str(tmp_path / "state")})
    position = InventoryPosition(lake, settings)

    def table(path: str) -> dict[str, dict[str, Any]]:
        rows = DeltaTable(path).to_pyarrow_table().to_pylist()
        return {f"{r['location_id']}:{r['sku']}": r for r in rows}

    def on_hand() -> dict[str, tuple[int, Any, Any]]:
        return {
            key: (r["on_hand"], r["stockout_since"], r["stockout_alert_sent"])
            for key, r in table(position.path).items()
        }

    first = events(("A:1", "s1", "snapshot", 5, 9), ("A:1", "m1", "movement", -2, 10),
                   ("B:1", "b1", "movement", 3, 10))  # fmt: skip
    assert position.fold(first) == 2
    assert on_hand() == {"A:1": (3, None, None), "B:1": (3, None, None)}

    eleven = dt.datetime(2026, 3, 2, 11, tzinfo=dt.UTC)
    second = events(("A:1", "m2", "movement", -3, 11), ("A:1", "m1", "movement", -2, 10),
                    ("B:1", "b0", "movement", 100, 8))  # fmt: skip
    assert position.fold(second) == 2
    assert on_hand() == {"A:1": (0, eleven, False), "B:1": (103, None, None)}
    alert_key = "stockout|A|1|2026-03-02T11:00:00.000000Z"
    expected_id = "stockout-" + hashlib.sha256(alert_key.encode()).hexdigest()[:32]
    assert table(position.path)["A:1"]["stockout_alert_id"] == expected_id

    third = events(("A:1", "s2", "snapshot", 10, 10.5), ("A:1", "m0", "movement", 50, 7))
    assert position.fold(third) == 1
    assert on_hand() == {"A:1": (7, None, None), "B:1": (103, None, None)}  # 10 - 3, restocked
    ledger = table(lake.checkpoint(LEDGER_TABLE))
    kept = {key: sorted(e["event_id"] for e in row["events"]) for key, row in ledger.items()}
    assert kept == {"A:1": ["m2", "s2"], "B:1": ["b0", "b1"]}  # what can still count

    assert position.fold(third) == 0  # a replayed batch changes nothing
    assert on_hand() == {"A:1": (7, None, None), "B:1": (103, None, None)}
