"""The bronze validation (ingest/validation.py) against the reference validator (scm.contracts):
the same verdict and reason for the same bytes, the Spark screen accepting only valid events
(and the usual ones by itself), bronze rows typed per contract, quarantine rows keeping what
was received. A few small Spark jobs per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from ingest.validation import (
    INGESTED_AT_COLUMN,
    NO_SUSPECTS,
    SCREENED_COLUMN,
    Screening,
    Tally,
    Verdict,
    quarantine_rows,
    screen,
)
from scm.contracts import (
    EVENT_TYPES,
    QUARANTINE_COLUMNS,
    TOPICS,
    bronze_fields,
    bronze_spark_ddl,
    quarantine_spark_ddl,
    validate_event,
)
from tests.strategies import EXAMPLES, broken_events, encode, utc, valid_events
from tests.test_contracts import REASONS

pytestmark = pytest.mark.spark

T = TypeVar("T")
KAFKA_TIME = datetime(2026, 3, 2, 12, 0, 0)
RAW_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"
)

# Raw texts whose handling differs most between JSON parsers, on top of the generated cases.
EDGE_CASES: list[tuple[str, bytes | None]] = [
    ("scm.orders", None),
    ("scm.orders", b"   "),
    ("scm.orders", b"null"),
    ("scm.orders", b'"text"'),
    ("scm.orders", b"[1] x"),
    ("scm.orders", b'{"a":"}"} {"b":"{"}'),
    ("scm.orders", b'{"a":[[[[[[[[[[1]]]]]]]]]]}'),
    ("scm.orders", b'{"a":[[[[[[[[[[1]]]]]]]]]]}]'),
    ("scm.orders", b'{"a":"\\u00e9\\"\\\\"}'),
    ("scm.orders", b'{"a":1E400}'),
    ("scm.orders", b"{'a':1}"),
    ("scm.orders", b'{"a":01}'),
    ("scm.orders", b'{"a":1,}'),
    ("scm.orders", b'{"a":"x\x01y"}'),
    ("scm.orders", encode(EXAMPLES["order_placed"]).replace(b'"order_id"', b'"ORDER_ID"')),
    *(
        ("scm.orders", encode(EXAMPLES["order_placed"]).replace(b"25.0", price))
        for price in [b"25.00000", b"2.5E1", b"2.55555E1", b"1E14", b"-0.0", b"0.00001", b"1.0"]
    ),
    *(
        ("scm.orders", encode(EXAMPLES["order_placed"]).replace(b'"quantity":10', q))
        for q in [b'"quantity":10.0', b'"quantity":1e1', b'"quantity":9223372036854775808']
    ),
]


def _collect(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` examples drawn by Hypothesis, to check in one Spark job."""
    examples: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(example: T) -> None:
        examples.append(example)

    draw()
    return examples


def _raw(spark: SparkSession, messages: Sequence[tuple[str, bytes | None]]) -> DataFrame:
    rows = [
        (b"key-%d" % offset, value, topic, offset % 4, offset, KAFKA_TIME)
        for offset, (topic, value) in enumerate(messages)
    ]
    stamped = spark.createDataFrame(rows, RAW_SCHEMA)  # as the bronze sink stamps a batch
    return stamped.withColumn(INGESTED_AT_COLUMN, F.current_timestamp())


def _by_topic(raw: DataFrame) -> dict[str, DataFrame]:
    return {topic: raw.where(raw.topic == topic) for topic in TOPICS}


def _struct(ddl: str) -> StructType:
    schema = StructType.fromDDL(ddl)
    assert isinstance(schema, StructType)
    return schema


@dataclass
class Checked:
    """One topic validated as the bronze sink does it: the screened rows' bronze frame
    (collected, which counts the topic on the way), then the suspects judged."""

    bronze: DataFrame  # every valid row: the screened ones and those the reference accepted
    tally: Tally
    verdict: Verdict

    @property
    def rejected(self) -> list[tuple[Any, ...]]:
        return self.verdict.rejected


def _check(screening: Screening) -> Checked:
    screened = screening.bronze()
    screened.collect()  # the action that fills the observation, as the sink's append does
    tally = screening.tally(ran=True)
    verdict = screening.judge() if tally.suspects else NO_SUSPECTS
    bronze = screening.bronze(observed=False)
    if verdict.accepted is not None:
        bronze = bronze.unionByName(verdict.accepted)
    return Checked(bronze, tally, verdict)


@contextlib.contextmanager
def _checked(raw: DataFrame) -> Iterator[dict[str, Checked]]:
    """Every topic of ``raw`` checked, as the bronze sink checks a micro-batch."""
    with contextlib.ExitStack() as stack:
        yield {
            topic: _check(stack.enter_context(Screening.of(frame, topic)))
            for topic, frame in _by_topic(raw).items()
        }


def _errors(checked: dict[str, Checked]) -> dict[int, str | None]:
    """Offset -> None for a bronze row, the reason for a quarantine row."""
    errors: dict[int, str | None] = {}
    for topic in checked.values():
        errors.update((row["_offset"], None) for row in topic.bronze.select("_offset").collect())
    for topic in checked.values():
        for _, _, offset, _, _, error in topic.rejected:
            assert offset not in errors, f"offset {offset} in bronze and quarantine"
            errors[offset] = error
    return errors


def test_verdicts_and_reasons_are_the_reference_ones(spark: SparkSession) -> None:
    valid = [(topic, encode(event)) for topic, event in _collect(valid_events(), 120)]
    broken = [(b.topic, b.value) for b in _collect(broken_events(), 240)]
    handwritten = [("scm.orders", value) for value, _ in REASONS]
    examples = [(EVENT_TYPES[name].topic, encode(e)) for name, e in EXAMPLES.items()]
    messages = valid + broken + handwritten + examples + EDGE_CASES

    with _checked(_raw(spark, messages)) as checked:
        errors = _errors(checked)
        counted = {topic: result.tally.rows for topic, result in checked.items()}

    assert len(errors) == len(messages)
    assert counted == {topic: sum(t == topic for t, _ in messages) for topic in TOPICS}
    mismatches = []
    for offset, (topic, value) in enumerate(messages):
        expected = validate_event(topic, value)
        if errors[offset] != expected:
            mismatches.append(f"{topic} {value!r}\n  expected: {expected}\n  got: {errors[offset]}")
    assert not mismatches, f"{len(mismatches)} of {len(messages)} differ:\n" + "\n".join(
        mismatches[:10]
    )
    assert sum(error is None for error in errors.values()) >= len(valid)


def test_the_screen_accepts_only_valid_events_and_every_usual_one(spark: SparkSession) -> None:
    """The screen is what keeps validation in the JVM: it must never accept an invalid event,
    and must accept valid events as producers write them, without asking the reference."""
    valid = [(topic, encode(event)) for topic, event in _collect(valid_events(), 120)]
    broken = [(b.topic, b.value) for b in _collect(broken_events(), 240)]
    examples = [(EVENT_TYPES[name].topic, encode(e)) for name, e in EXAMPLES.items()]
    messages = valid + broken + examples + EDGE_CASES
    raw = _raw(spark, messages)

    screened = {
        row["offset"]: row[SCREENED_COLUMN]
        for topic, frame in _by_topic(raw).items()
        for row in screen(frame, topic).select("offset", SCREENED_COLUMN).collect()
    }

    wrongly_accepted = [
        messages[offset]
        for offset, accepted in screened.items()
        if accepted and validate_event(*messages[offset]) is not None
    ]
    assert not wrongly_accepted, wrongly_accepted[:5]
    first_example = len(valid) + len(broken)
    assert all(screened[first_example + i] for i in range(len(examples))), "an example was left"
    accepted_valid = sum(screened[offset] for offset in range(len(valid)))
    assert accepted_valid >= 0.9 * len(valid), f"the screen accepted {accepted_valid}/{len(valid)}"


def _expected_bronze(event: dict[str, Any], topic: str) -> dict[str, Any]:
    """The bronze row of a valid event, computed from the declarations in plain Python."""
    declared = {f.name: f for f in EVENT_TYPES[event["event_type"]].all_fields}
    row: dict[str, Any] = {}
    for column in bronze_fields(topic):
        field = declared.get(column.name)
        if field is None:
            row[column.name] = None
        elif field.kind == "lines":
            own = {f.name for f in field.line_fields}
            row[column.name] = [
                {
                    f.name: _typed(f.kind, line[f.name]) if f.name in own else None
                    for f in column.line_fields
                }
                for line in event[column.name]
            ]
        else:
            row[column.name] = _typed(field.kind, event[column.name])
    return row


def _typed(kind: str, value: Any) -> Any:
    if kind == "money":
        return Decimal(repr(value)).quantize(Decimal("0.0001"))
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timestamp":
        return utc(value)
    return value


def test_bronze_rows_are_typed_per_contract(spark: SparkSession) -> None:
    events = [(EVENT_TYPES[name].topic, e) for name, e in EXAMPLES.items()]
    events += _collect(valid_events(), 40)
    # An extra field named like another event type's field stays out of the bronze row.
    delivered = {**EXAMPLES["shipment_delivered"], "carrier": "DHL", "lines": [{"line_no": 1}]}
    events.append(("scm.shipments", delivered))
    bad = {**EXAMPLES["order_placed"], "order_id": None}
    messages = [(topic, encode(event)) for topic, event in events] + [("scm.orders", encode(bad))]
    with _checked(_raw(spark, messages)) as checked:
        by_topic = {topic: result.bronze for topic, result in checked.items()}
        for topic, frame in by_topic.items():
            expected = _struct(bronze_spark_ddl(topic))
            assert [(f.name, f.dataType) for f in frame.schema] == [
                (f.name, f.dataType) for f in expected
            ], topic
        rows = {
            (row["_topic"], row["_offset"]): row.asDict(recursive=True)
            for frame in by_topic.values()
            for row in frame.collect()
        }

    assert len(rows) == len(events)  # the invalid order is not in bronze
    for offset, (topic, event) in enumerate(events):
        row = rows[(topic, offset)]
        assert row["_partition"] == offset % 4
        assert row["_kafka_timestamp"] == KAFKA_TIME
        assert row["_ingested_at"] is not None
        business = {name: value for name, value in row.items() if not name.startswith("_")}
        assert business == _expected_bronze(event, topic), (topic, event)


def test_quarantine_rows_keep_what_was_received(spark: SparkSession) -> None:
    valid = encode(EXAMPLES["inventory_snapshot"])
    not_utf8 = valid.replace(b'"source":"', b'"source":"\xff', 1)
    messages = [
        ("scm.inventory", valid),
        ("scm.inventory", not_utf8),
        ("scm.inventory", b'{"event_id":'),
        ("scm.inventory", None),
    ]
    with _checked(_raw(spark, messages)) as by_topic:
        checked = by_topic["scm.inventory"]
        rows = quarantine_rows(spark, checked.rejected).collect()
        assert (checked.tally.rows, checked.bronze.count()) == (4, 1)

    quarantined = {row.offset: row for row in rows}
    assert sorted(quarantined) == [1, 2, 3]
    assert tuple(rows[0].asDict()) == QUARANTINE_COLUMNS
    utf8_row = quarantined[1]
    assert utf8_row.topic == "scm.inventory"
    assert utf8_row.partition == 1
    assert utf8_row.key == "key-1"
    assert utf8_row.error == "not valid UTF-8"
    assert bytes(utf8_row.raw_bytes) == not_utf8
    assert utf8_row.raw_value == not_utf8.decode("utf-8", errors="replace")
    assert utf8_row.quarantined_at is not None
    assert quarantined[2].error == "invalid JSON: Expecting value at char 12"
    assert quarantined[2].raw_value == '{"event_id":'
    assert quarantined[3].error == "no value (null message)"
    assert quarantined[3].raw_value is None


def test_quarantine_frame_matches_its_ddl(spark: SparkSession) -> None:
    with _checked(_raw(spark, [("scm.returns", b"{}")])) as by_topic:
        checked = by_topic["scm.returns"]
        frame = quarantine_rows(spark, checked.rejected)
        expected = _struct(quarantine_spark_ddl())
        assert [(f.name, f.dataType) for f in frame.schema] == [
            (f.name, f.dataType) for f in expected
        ]
        assert (checked.tally.rows, len(checked.rejected)) == (1, 1)


def test_a_tally_without_the_write_counts_the_same(spark: SparkSession) -> None:
    """A replayed batch skips its write, so nothing fills the observation: a job counts."""
    valid = encode(EXAMPLES["inventory_snapshot"])
    messages = [("scm.inventory", valid), ("scm.inventory", b"{"), ("scm.inventory", valid)]
    with Screening.of(_raw(spark, messages), "scm.inventory") as screening:
        assert screening.tally(ran=False) == Tally(rows=3, suspects=1)
        screening.bronze().collect()
        assert screening.tally(ran=True) == Tally(rows=3, suspects=1)
