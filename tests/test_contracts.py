"""The event contracts (contracts.md): what is accepted, what is rejected and with which reason,
the message keys, the bronze/quarantine/master schemas and the generated reference page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings

from scm.contracts import (
    ALERTS_TOPIC,
    EVENT_TYPES,
    KAFKA_COLUMNS,
    MASTER_FILES,
    PARTITIONS,
    QUARANTINE_COLUMNS,
    TOPICS,
    bronze_arrow_schema,
    bronze_spark_ddl,
    key_for,
    master_arrow_schema,
    quarantine_arrow_schema,
    quarantine_spark_ddl,
    render,
    render_markdown,
    validate_event,
    validate_object,
)
from tests.strategies import EXAMPLES, ORDER, Broken, broken_events, encode, valid_events

ROOT = Path(__file__).resolve().parents[1]


def _order(**changes: Any) -> bytes:
    return encode({**ORDER, **changes})


def _order_line(index: int, **changes: Any) -> bytes:
    lines = [dict(line) for line in ORDER["lines"]]
    lines[index].update(changes)
    return _order(lines=lines)


def _without(field: str) -> bytes:
    return encode({name: value for name, value in ORDER.items() if name != field})


# --- accepted ----------------------------------------------------------------------------------


def test_contract_constants() -> None:
    assert {name: topic.entity for name, topic in TOPICS.items()} == {
        "scm.orders": "orders",
        "scm.shipments": "shipments",
        "scm.inventory": "inventory",
        "scm.returns": "returns",
        "scm.procurement": "procurement",
    }
    assert {name: e.topic for name, e in EVENT_TYPES.items()} == {
        "order_placed": "scm.orders",
        "shipment_dispatched": "scm.shipments",
        "shipment_delivered": "scm.shipments",
        "inventory_snapshot": "scm.inventory",
        "inventory_movement": "scm.inventory",
        "return_received": "scm.returns",
        "po_created": "scm.procurement",
        "po_received": "scm.procurement",
    }
    assert PARTITIONS == 4
    assert ALERTS_TOPIC == "scm.alerts"


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_an_example_of_every_event_type_is_valid(event_type: str) -> None:
    event = EXAMPLES[event_type]
    topic = EVENT_TYPES[event_type].topic
    assert validate_event(topic, encode(event)) is None
    assert validate_object(topic, event) is None


def test_the_contracts_md_example_is_valid() -> None:
    example = (
        b'{"event_id": "9b2f0c7e-1", "event_type": "order_placed", '
        b'"event_time": "2026-03-02T10:00:00Z",\n "source": "oms", "schema_version": 1, '
        b'"order_id": "O-1", "customer_id": "C-1", "channel": "b2b",\n "ship_from": "DC-1", '
        b'"requested_delivery_date": "2026-03-05", "currency": "USD",\n "lines": [{"line_no": 1, '
        b'"sku": "SKU-A", "quantity": 10, "unit_price": 25.0}]}'
    )
    assert validate_event("scm.orders", example) is None


@settings(max_examples=150, deadline=None)
@given(valid_events())
def test_generated_valid_events_are_accepted(topic_and_event: tuple[str, dict[str, Any]]) -> None:
    topic, event = topic_and_event
    assert validate_event(topic, encode(event)) is None
    assert validate_object(topic, event) is None


@pytest.mark.parametrize(
    "value",
    [
        _order(x_note="extra", x_nested={"a": [1, 2]}, x_null=None),
        _order(carrier=5),  # another event type's field name is an extra field here
        _order_line(0, x_batch="B-7"),
        b" \n" + _order() + b"\r\n\t ",  # JSON whitespace around the object
        _order(order_id="Kundenauftrag-\u00e9\u4e2d\U0001f600"),
        _order(event_time="2026-03-02T10:00:00.123456789-05:30"),
        _order(event_time="2026-03-02t10:00:00z"),
        _order(event_time="2026-03-02T10:00:00+18:00"),
        _order(requested_delivery_date="2024-02-29"),
        _order(currency="XTS"),
        _order_line(0, unit_price=0),
        _order_line(0, unit_price=99999999999999.99),
        _order_line(0, line_no=2147483647, quantity=2147483647),
    ],
    ids=[
        "extra fields",
        "other type's field",
        "extra line field",
        "whitespace",
        "non-ascii",
        "nanoseconds and offset",
        "lower-case t and z",
        "offset 18h",
        "leap day",
        "any 3 letters",
        "zero price",
        "largest price",
        "largest 32-bit int",
    ],
)
def test_accepted_variations(value: bytes) -> None:
    assert validate_event("scm.orders", value) is None


@pytest.mark.parametrize(
    "price", [b"1.23450", b"2.5E1", b"1e2", b"100.00", b"0.0001", b"-0.0", b"7"]
)
def test_money_decimals_count_the_value_not_the_text(price: bytes) -> None:
    value = _order_line(0, unit_price=999).replace(b"999", price)
    assert validate_event("scm.orders", value) is None


# --- rejected, with the reason -----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(broken_events())
def test_breaking_one_rule_rejects_with_that_rule(broken: Broken) -> None:
    reason = validate_event(broken.topic, broken.value)
    assert reason is not None, f"accepted: {broken}"
    assert broken.expected(reason), f"{broken}: {reason}"


REASONS = [
    (
        b'{"event_id": "x" "event_type": "order_placed"}',
        "invalid JSON: Expecting ',' delimiter at char 17",
    ),
    (_order()[:40], "invalid JSON: Unterminated string starting at char 38"),
    (_order() + b"{}", f"invalid JSON: Extra data at char {len(_order())}"),
    (b"", "invalid JSON: Expecting value at char 0"),
    (b'{"a": NaN}', "invalid JSON: NaN is not a JSON number"),
    (b'{"a": 1, "a": 2}', "invalid JSON: duplicate key 'a'"),
    (b'{"a": "\\udc80"}', "invalid JSON: unpaired surrogate escape in a string"),
    (_order(source="b\xe4d").replace("ä".encode(), b"\xe4"), "not valid UTF-8"),
    (b"[" + _order() + b"]", "not a JSON object"),
    (b"42", "not a JSON object"),
    (_without("order_id"), "missing required field 'order_id'"),
    (_order(order_id=None), "missing required field 'order_id'"),
    (_without("event_id"), "missing required field 'event_id'"),
    (_order(order_id=""), "field 'order_id' must be a non-empty string, got ''"),
    (_order(order_id=17), "field 'order_id' must be a non-empty string, got 17"),
    (
        _order(channel="x" * 70),
        "field 'channel' must be one of online|store|b2b, got '" + "x" * 60 + "...'",
    ),
    (
        _order(event_time="2026-03-02 10:00"),
        "field 'event_time' must be an RFC 3339 timestamp with offset, got '2026-03-02 10:00'",
    ),
    (
        _order(event_time="2026-03-02T10:00:00"),
        "field 'event_time' must be an RFC 3339 timestamp with offset, got '2026-03-02T10:00:00'",
    ),
    (
        _order(event_time="2026-02-30T10:00:00Z"),
        "field 'event_time' must be an RFC 3339 timestamp with offset, got '2026-02-30T10:00:00Z'",
    ),
    (
        _order(event_time="2026-03-02T10:00:00+18:30"),
        "field 'event_time' must be an RFC 3339 timestamp with offset,"
        " got '2026-03-02T10:00:00+18:30'",
    ),
    (_order(schema_version=2), "field 'schema_version' must be the integer 1, got 2"),
    (_order(schema_version="1"), "field 'schema_version' must be the integer 1, got '1'"),
    (_order(schema_version=1.0), "field 'schema_version' must be the integer 1, got 1.0"),
    (_order(schema_version=True), "field 'schema_version' must be the integer 1, got true"),
    (
        _order(event_type="order_cancelled"),
        "unknown event_type 'order_cancelled' for topic scm.orders (expected: order_placed)",
    ),
    (
        _order(event_type=7),
        "unknown event_type 7 for topic scm.orders (expected: order_placed)",
    ),
    (
        _order(event_type="po_created"),
        "event_type 'po_created' belongs to topic scm.procurement, not scm.orders",
    ),
    (_order(channel="web"), "field 'channel' must be one of online|store|b2b, got 'web'"),
    (
        _order(currency="usd"),
        "field 'currency' must be a 3-letter uppercase currency code, got 'usd'",
    ),
    (
        _order(requested_delivery_date="2026-02-30"),
        "field 'requested_delivery_date' must be a date YYYY-MM-DD, got '2026-02-30'",
    ),
    (
        _order(requested_delivery_date="2026-03-05\n"),
        "field 'requested_delivery_date' must be a date YYYY-MM-DD, got '2026-03-05\n'",
    ),
    (_order(lines=[]), "field 'lines' must be a non-empty array, got []"),
    (_order(lines={"line_no": 1}), "field 'lines' must be a non-empty array, got an object"),
    (_order(lines=[ORDER["lines"][0], "x"]), "lines[1] must be an object, got 'x'"),
    (_order(lines=[None]), "lines[0] must be an object, got null"),
    (
        _order_line(0, quantity=-3),
        "field 'quantity' in lines[0] must be an integer > 0, got -3",
    ),
    (_order_line(1, quantity=3.0), "field 'quantity' in lines[1] must be an integer > 0, got 3.0"),
    (
        _order_line(1, quantity=True),
        "field 'quantity' in lines[1] must be an integer > 0, got true",
    ),
    (
        _order_line(1, quantity=2**31),
        "field 'quantity' in lines[1] must be at most 2147483647, got 2147483648",
    ),
    (_order_line(0, line_no=0), "field 'line_no' in lines[0] must be an integer >= 1, got 0"),
    (_order_line(1, sku=None), "missing required field 'sku' in lines[1]"),
    (
        _order_line(1, unit_price=1.23456),
        "field 'unit_price' in lines[1] must have at most 4 decimals, got 1.23456",
    ),
    (
        _order_line(1, unit_price=0.00001),
        "field 'unit_price' in lines[1] must have at most 4 decimals, got 1.0E-5",
    ),
    (
        _order_line(0, unit_price=-0.5),
        "field 'unit_price' in lines[0] must be a number >= 0, got -0.5",
    ),
    (
        _order_line(0, unit_price="25.00"),
        "field 'unit_price' in lines[0] must be a number >= 0, got '25.00'",
    ),
    (
        _order_line(0, unit_price=10**14),
        "field 'unit_price' in lines[0] must be less than 100000000000000, got 100000000000000",
    ),
    (_order_line(1, line_no=1), "duplicate line_no 1 in lines"),
    # Several rules broken: the first in check order is reported.
    (
        encode({**ORDER, "order_id": None, "channel": "web"}),
        "missing required field 'order_id'",
    ),
    (
        _order(lines=[{**ORDER["lines"][0], "quantity": 0}, {**ORDER["lines"][0], "sku": ""}]),
        "field 'quantity' in lines[0] must be an integer > 0, got 0",
    ),
]


@pytest.mark.parametrize(("value", "reason"), REASONS, ids=[r for _, r in REASONS])
def test_reasons(value: bytes, reason: str) -> None:
    assert validate_event("scm.orders", value) == reason


def test_a_null_message_is_rejected() -> None:
    assert validate_event("scm.orders", None) == "no value (null message)"


@pytest.mark.parametrize(
    ("event_type", "field", "value", "reason"),
    [
        ("shipment_delivered", "documents_ok", "yes", "must be true or false, got 'yes'"),
        ("shipment_delivered", "documents_ok", 1, "must be true or false, got 1"),
        ("shipment_delivered", "condition", "lost", "must be one of ok|damaged, got 'lost'"),
        ("inventory_snapshot", "on_hand", -1, "must be an integer >= 0, got -1"),
        ("inventory_movement", "quantity_delta", 0, "must be a non-zero integer, got 0"),
        ("return_received", "refund_amount", False, "must be a number >= 0, got false"),
        ("return_received", "processing_cost", [1], "must be a number >= 0, got an array"),
        (
            "po_created",
            "expected_date",
            "2026/03/20",
            "must be a date YYYY-MM-DD, got '2026/03/20'",
        ),
    ],
)
def test_rules_of_the_other_event_types(
    event_type: str, field: str, value: Any, reason: str
) -> None:
    event = {**EXAMPLES[event_type], field: value}
    topic = EVENT_TYPES[event_type].topic
    assert validate_event(topic, encode(event)) == f"field '{field}' {reason}"


def test_empty_lines_are_rejected_for_every_event_type_with_lines() -> None:
    for name, event in EXAMPLES.items():
        if "lines" in event:
            reason = validate_event(EVENT_TYPES[name].topic, encode({**event, "lines": []}))
            assert reason == "field 'lines' must be a non-empty array, got []", name


def test_unknown_topic_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="scm.orders, scm.shipments"):
        validate_event("scm.order", _order())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (-3, "-3"),
        (1.5, "1.5"),
        (1000.0, "1000.0"),
        (1e-05, "1.0E-5"),
        (1e20, "1.0E20"),
        (float("inf"), "Infinity"),
        ("a'b", "'a'b'"),
        ([], "[]"),
        ([1], "an array"),
        ({}, "an object"),
    ],
)
def test_values_render_like_spark_shows_them(value: Any, text: str) -> None:
    assert render(value) == text


# --- keys and schemas --------------------------------------------------------------------------


def test_message_keys() -> None:
    keys = {name: key_for(event) for name, event in EXAMPLES.items()}
    assert keys == {
        "order_placed": "O-1",
        "shipment_dispatched": "S-1",
        "shipment_delivered": "S-1",
        "inventory_snapshot": "DC-1:SKU-A",
        "inventory_movement": "DC-1:SKU-A",
        "return_received": "R-1",
        "po_created": "PO-1",
        "po_received": "PO-1",
    }
    with pytest.raises(ValueError, match="unknown event_type 'nope'"):
        key_for({"event_type": "nope"})


def test_orders_bronze_schema() -> None:
    money = pa.decimal128(18, 4)
    moment = pa.timestamp("us", tz="UTC")
    line = pa.struct(
        [
            pa.field("line_no", pa.int32()),
            pa.field("sku", pa.string()),
            pa.field("quantity", pa.int32()),
            pa.field("unit_price", money),
        ]
    )
    expected = pa.schema(
        [
            ("event_id", pa.string()),
            ("event_type", pa.string()),
            ("event_time", moment),
            ("source", pa.string()),
            ("schema_version", pa.int32()),
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("channel", pa.string()),
            ("ship_from", pa.string()),
            ("requested_delivery_date", pa.date32()),
            ("currency", pa.string()),
            ("lines", pa.list_(line)),
            ("_topic", pa.string()),
            ("_partition", pa.int32()),
            ("_offset", pa.int64()),
            ("_kafka_timestamp", moment),
            ("_ingested_at", moment),
        ]
    )
    assert bronze_arrow_schema("scm.orders") == expected
    assert all(field.nullable for field in expected)
    assert bronze_spark_ddl("scm.orders") == (
        "event_id STRING, event_type STRING, event_time TIMESTAMP, source STRING, "
        "schema_version INT, order_id STRING, customer_id STRING, channel STRING, "
        "ship_from STRING, requested_delivery_date DATE, currency STRING, "
        "lines ARRAY<STRUCT<line_no: INT, sku: STRING, quantity: INT, unit_price: DECIMAL(18,4)>>, "
        "_topic STRING, _partition INT, _offset BIGINT, _kafka_timestamp TIMESTAMP, "
        "_ingested_at TIMESTAMP"
    )


def test_bronze_columns_are_the_union_of_the_topics_event_types() -> None:
    shipments = bronze_arrow_schema("scm.shipments")
    assert shipments.names[5:-5] == [
        "shipment_id",
        "order_id",
        "ship_from",
        "carrier",
        "lines",
        "condition",
        "documents_ok",
    ]
    assert shipments.field("documents_ok").type == pa.bool_()
    assert bronze_arrow_schema("scm.inventory").names[5:-5] == [
        "location_id",
        "sku",
        "on_hand",
        "quantity_delta",
        "movement_type",
        "reference_id",
    ]
    procurement_line = bronze_arrow_schema("scm.procurement").field("lines").type.value_type
    assert [(f.name, f.type) for f in procurement_line] == [
        ("line_no", pa.int32()),
        ("sku", pa.string()),
        ("quantity", pa.int32()),
        ("unit_cost", pa.decimal128(18, 4)),
    ]
    returns = bronze_arrow_schema("scm.returns")
    assert returns.field("refund_amount").type == pa.decimal128(18, 4)
    for topic in TOPICS:
        schema = bronze_arrow_schema(topic)
        assert schema.names[:5] == [
            "event_id",
            "event_type",
            "event_time",
            "source",
            "schema_version",
        ]
        assert tuple(schema.names[-5:]) == KAFKA_COLUMNS
        ddl_names = [column.split(" ")[0] for column in _split_ddl(bronze_spark_ddl(topic))]
        assert ddl_names == schema.names


def _split_ddl(ddl: str) -> list[str]:
    columns, depth, current = [], 0, ""
    for char in ddl:
        depth += char in "<("
        depth -= char in ">)"
        if char == "," and depth == 0:
            columns.append(current.strip())
            current = ""
        else:
            current += char
    return [*columns, current.strip()]


def test_quarantine_schema() -> None:
    assert QUARANTINE_COLUMNS[:7] == (
        "topic",
        "partition",
        "offset",
        "key",
        "raw_value",
        "error",
        "quarantined_at",
    )
    schema = quarantine_arrow_schema()
    assert schema.names == list(QUARANTINE_COLUMNS)
    assert schema.field("offset").type == pa.int64()
    assert schema.field("raw_bytes").type == pa.binary()
    assert quarantine_spark_ddl().startswith("topic STRING, partition INT, offset BIGINT, key")


def test_master_file_schemas() -> None:
    assert {name: m.file_name for name, m in MASTER_FILES.items()} == {
        "products": "products.csv",
        "locations": "locations.csv",
        "suppliers": "suppliers.csv",
        "customers": "customers.csv",
    }
    assert master_arrow_schema("products") == pa.schema(
        [
            ("sku", pa.string()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("unit_cost", pa.decimal128(18, 4)),
            ("unit_price", pa.decimal128(18, 4)),
        ]
    )
    assert master_arrow_schema("locations").names == ["location_id", "name", "type", "region"]
    assert master_arrow_schema("suppliers").field("lead_time_days").type == pa.int32()
    assert master_arrow_schema("customers").names == ["customer_id", "name", "segment", "region"]
    assert [m.key for m in MASTER_FILES.values()] == [
        "sku",
        "location_id",
        "supplier_id",
        "customer_id",
    ]
    with pytest.raises(ValueError, match="products, locations"):
        master_arrow_schema("product")


# --- docs and import hygiene -------------------------------------------------------------------


def test_committed_reference_matches_the_declarations() -> None:
    committed = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "run: python -m scm.contracts > docs/contracts.md"


def test_reference_documents_every_field_and_reason() -> None:
    page = render_markdown()
    for event in EVENT_TYPES.values():
        assert f"### `{event.name}` (`{event.topic}`)" in page
        for field in event.fields:
            assert f"| `{field.name}` |" in page
    assert "| `lines[].unit_price` | number (money) |" in page
    assert "- `duplicate {name} {got} in {parent}`" in page


def test_contracts_import_neither_spark_nor_a_layer() -> None:
    code = (
        "import sys, scm.contracts; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('pyspark', 'ingest', 'transforms', 'orchestration', 'dashboards')]; "
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_docs_command_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scm.contracts"], capture_output=True, cwd=ROOT, check=True
    )
    assert result.stdout.decode("utf-8") == render_markdown()
