"""Event and master-data contracts (v1), declared once.

Everything else is derived from the declarations below: the reference validator
(:func:`validate_event`, which decides every rejection and words it from the templates in
:class:`Reason`), the Spark screen that accepts the clearly valid events without it
(``ingest/validation.py``), the bronze Arrow and Spark schemas and ``docs/contracts.md``
(``python -m scm.contracts > docs/contracts.md``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Literal

import pyarrow as pa

Kind = Literal[
    "string", "int", "money", "boolean", "date", "timestamp", "enum", "currency", "lines",
    "event_type",
]  # fmt: skip
Comparison = Literal[">=", ">", "!=", "=="]

PARTITIONS = 4
ALERTS_TOPIC = "scm.alerts"
SCHEMA_VERSION = 1

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MONEY_PRECISION, MONEY_SCALE = 18, 4
# Money must fit decimal(18,4): strictly below 10^14.
MONEY_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE)
# Spark's VARIANT keeps a JSON number as a decimal only up to 38 digits (else as a double);
# the reference parser mirrors that so both validators see the same value.
MAX_DECIMAL_DIGITS = 38
# Strings quoted in a reason are cut to this many characters.
SHOWN_CHARACTERS = 60

# Patterns are matched against the whole value (Python: fullmatch; Spark: ^(?:...)\z).
# Year 0000 does not exist in Python's calendar, so neither validator accepts it.
DATE_PATTERN = r"(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}"
TIMESTAMP_PATTERN = (
    r"(?!0000)([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
CURRENCY_PATTERN = r"[A-Z]{3}"
# Java's ZoneOffset (Spark's timestamps) accepts offsets up to +-18:00.
MAX_OFFSET = timedelta(hours=18)

_DATE = re.compile(DATE_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_WIDE = Context(prec=100)


class Reason:
    """Templates of every rejection reason (the quarantine's ``error`` column)."""

    NULL_VALUE = "no value (null message)"
    NOT_UTF8 = "not valid UTF-8"
    INVALID_JSON = "invalid JSON"
    NOT_OBJECT = "not a JSON object"
    MISSING = "missing required field '{name}'{where}"
    INVALID = "field '{name}'{where} must be {expected}, got {got}"
    TOO_MANY_DECIMALS = "field '{name}'{where} must have at most {scale} decimals, got {got}"
    NOT_AN_OBJECT = "{parent}[{index}] must be an object, got {got}"
    DUPLICATE = "duplicate {name} {got} in {parent}"
    UNKNOWN_EVENT_TYPE = "unknown event_type {got} for topic {topic} (expected: {expected})"
    OTHER_TOPIC = "event_type '{event_type}' belongs to topic {owner}, not {topic}"


@dataclass(frozen=True)
class Field:
    """One field of an event, a line or a master file, with its kind and rule."""

    name: str
    kind: Kind
    required: bool = True
    # int fields: value <op> bound, e.g. (">", 0).
    rule: tuple[Comparison, int] | None = None
    values: tuple[str, ...] = ()  # enum values
    line_fields: tuple[Field, ...] = ()  # fields of each element of a lines array
    unique: bool = False  # line fields: the value may appear once per event
    note: str = ""  # documentation only

    def __post_init__(self) -> None:
        if self.unique and self.kind != "int":
            raise ValueError(f"field {self.name!r}: only int line fields can be unique")
        if (self.kind == "enum") != bool(self.values):
            raise ValueError(f"field {self.name!r}: enum fields and only they list values")
        if (self.kind == "lines") != bool(self.line_fields):
            raise ValueError(f"field {self.name!r}: lines fields and only they have line_fields")

    @property
    def expectation(self) -> str:
        """What a valid value is, as it reads in a reason: "must be <expectation>"."""
        if self.kind == "int":
            if self.rule is None:
                return "an integer"
            op, bound = self.rule
            if op == "==":
                return f"the integer {bound}"
            if op == "!=" and bound == 0:
                return "a non-zero integer"
            return f"an integer {op} {bound}"
        if self.kind == "enum":
            return "one of " + "|".join(self.values)
        return _EXPECTATIONS[self.kind]

    def accepts_int(self, value: int) -> bool:
        """Whether an integer satisfies the field's rule (int fields)."""
        if self.rule is None:
            return True
        op, bound = self.rule
        return {
            ">=": value >= bound,
            ">": value > bound,
            "!=": value != bound,
            "==": value == bound,
        }[op]


_EXPECTATIONS: dict[str, str] = {
    "string": "a non-empty string",
    "money": "a number >= 0",
    "boolean": "true or false",
    "date": "a date YYYY-MM-DD",
    "timestamp": "an RFC 3339 timestamp with offset",
    "currency": "a 3-letter uppercase currency code",
    "lines": "a non-empty array",
    "event_type": "a known event_type",
}


@dataclass(frozen=True)
class EventType:
    """One kind of business event and the fields it carries besides the envelope."""

    name: str
    topic: str
    fields: tuple[Field, ...]
    note: str = ""

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return ENVELOPE + self.fields


@dataclass(frozen=True)
class Topic:
    """A Kafka topic, the bronze table (entity) it lands in and how its messages are keyed."""

    name: str
    entity: str
    event_types: tuple[str, ...]
    key_fields: tuple[str, ...]


@dataclass(frozen=True)
class MasterFile:
    """A master-data CSV dropped into ``landing/``: a full snapshot of one entity."""

    entity: str
    file_name: str
    key: str
    columns: tuple[Field, ...]


# --- declarations -----------------------------------------------------------------------------


def _string(name: str, note: str = "") -> Field:
    return Field(name, "string", note=note)


def _int(name: str, op: Comparison, bound: int, note: str = "", unique: bool = False) -> Field:
    return Field(name, "int", rule=(op, bound), note=note, unique=unique)


def _money(name: str, note: str = "") -> Field:
    return Field(name, "money", note=note)


def _enum(name: str, *values: str) -> Field:
    return Field(name, "enum", values=values)


def _lines(*fields: Field) -> Field:
    return Field("lines", "lines", line_fields=fields)


def _line_no() -> Field:
    return _int("line_no", ">=", 1, unique=True)


def _quantity() -> Field:
    return _int("quantity", ">", 0)


_CURRENCY_FIELD = Field("currency", "currency", note="ISO 4217 code, e.g. USD")

ENVELOPE: tuple[Field, ...] = (
    _string("event_id", "unique per business event; a producer retry resends the same id"),
    Field("event_type", "event_type", note="one of the topic's event types"),
    Field("event_time", "timestamp", note="when it happened, e.g. 2026-03-02T10:00:00Z"),
    _string("source", "emitting system, e.g. erp, wms, tms, oms, simulator"),
    _int("schema_version", "==", SCHEMA_VERSION),
)

_EVENT_TYPE_LIST: tuple[EventType, ...] = (
    EventType(
        "order_placed",
        "scm.orders",
        (
            _string("order_id"),
            _string("customer_id"),
            _enum("channel", "online", "store", "b2b"),
            _string("ship_from", "a location_id"),
            Field("requested_delivery_date", "date"),
            _CURRENCY_FIELD,
            _lines(_line_no(), _string("sku"), _quantity(), _money("unit_price")),
        ),
        "A customer order with its lines.",
    ),
    EventType(
        "shipment_dispatched",
        "scm.shipments",
        (
            _string("shipment_id"),
            _string("order_id"),
            _string("ship_from", "a location_id"),
            _string("carrier"),
            _lines(_line_no(), _string("sku"), _quantity()),
        ),
        "A shipment covers lines of one order; an order line may be split over several shipments.",
    ),
    EventType(
        "shipment_delivered",
        "scm.shipments",
        (
            _string("shipment_id"),
            _string("order_id"),
            _enum("condition", "ok", "damaged"),
            Field("documents_ok", "boolean"),
        ),
        "`event_time` is the delivery time.",
    ),
    EventType(
        "inventory_snapshot",
        "scm.inventory",
        (
            _string("location_id"),
            _string("sku"),
            _int("on_hand", ">=", 0, "absolute on-hand quantity at event_time"),
        ),
        "A cycle count: the absolute on-hand quantity replaces the running level.",
    ),
    EventType(
        "inventory_movement",
        "scm.inventory",
        (
            _string("location_id"),
            _string("sku"),
            _int("quantity_delta", "!=", 0, "positive in, negative out"),
            _enum(
                "movement_type",
                *("receipt", "shipment", "return_restock", "adjustment"),
                *("transfer_in", "transfer_out"),
            ),
            _string("reference_id", "PO, shipment, return or count id"),
        ),
        "A change of the on-hand quantity.",
    ),
    EventType(
        "return_received",
        "scm.returns",
        (
            _string("return_id"),
            _string("order_id"),
            _int("line_no", ">=", 1),
            _string("sku"),
            _quantity(),
            _enum("reason", "damaged", "defective", "wrong_item", "not_needed", "late_delivery"),
            _enum("disposition", "restock", "refurbish", "scrap"),
            _money("refund_amount"),
            _money("processing_cost", "handling and reverse-logistics cost"),
            _CURRENCY_FIELD,
        ),
        "A customer return of one order line.",
    ),
    EventType(
        "po_created",
        "scm.procurement",
        (
            _string("po_id"),
            _string("supplier_id"),
            _string("ship_to", "a location_id"),
            Field("expected_date", "date"),
            _CURRENCY_FIELD,
            _lines(_line_no(), _string("sku"), _quantity(), _money("unit_cost")),
        ),
        "A purchase order to a supplier.",
    ),
    EventType(
        "po_received",
        "scm.procurement",
        (_string("po_id"), _lines(_line_no(), _string("sku"), _quantity())),
        "`event_time` is the receipt time; a PO line may be received in parts.",
    ),
)

EVENT_TYPES: dict[str, EventType] = {event.name: event for event in _EVENT_TYPE_LIST}

TOPICS: dict[str, Topic] = {
    topic.name: topic
    for topic in (
        Topic("scm.orders", "orders", ("order_placed",), ("order_id",)),
        Topic(
            "scm.shipments",
            "shipments",
            ("shipment_dispatched", "shipment_delivered"),
            ("shipment_id",),
        ),
        Topic(
            "scm.inventory",
            "inventory",
            ("inventory_snapshot", "inventory_movement"),
            ("location_id", "sku"),
        ),
        Topic("scm.returns", "returns", ("return_received",), ("return_id",)),
        Topic("scm.procurement", "procurement", ("po_created", "po_received"), ("po_id",)),
    )
}

MASTER_FILES: dict[str, MasterFile] = {
    master.entity: master
    for master in (
        MasterFile(
            "products",
            "products.csv",
            "sku",
            (
                _string("sku"),
                _string("name"),
                _string("category"),
                _money("unit_cost"),
                _money("unit_price"),
            ),
        ),
        MasterFile(
            "locations",
            "locations.csv",
            "location_id",
            (
                _string("location_id"),
                _string("name"),
                _enum("type", "dc", "store"),
                _string("region"),
            ),
        ),
        MasterFile(
            "suppliers",
            "suppliers.csv",
            "supplier_id",
            (
                _string("supplier_id"),
                _string("name"),
                _string("country"),
                _int("lead_time_days", ">=", 0),
            ),
        ),
        MasterFile(
            "customers",
            "customers.csv",
            "customer_id",
            (_string("customer_id"), _string("name"), _string("segment"), _string("region")),
        ),
    )
}

KAFKA_COLUMNS: tuple[str, ...] = (
    "_topic", "_partition", "_offset", "_kafka_timestamp", "_ingested_at"
)  # fmt: skip
# interfaces.md's columns, plus the exact bytes (raw_value cannot hold invalid UTF-8).
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "topic", "partition", "offset", "key", "raw_value", "error", "quarantined_at", "raw_bytes"
)  # fmt: skip


def _check_declarations() -> None:
    """Fail at import if the declarations contradict each other."""
    for topic in TOPICS.values():
        for name in topic.event_types:
            if EVENT_TYPES[name].topic != topic.name:
                raise ValueError(f"event type {name} is declared on two topics")
    for event in EVENT_TYPES.values():
        if event.name not in TOPICS[event.topic].event_types:
            raise ValueError(f"event type {event.name} is missing from {event.topic}")
    for name in TOPICS:
        bronze_fields(name)  # raises on a field declared with two kinds


# --- derived: schemas -------------------------------------------------------------------------

_SPARK_TYPES: dict[str, str] = {
    "string": "STRING",
    "enum": "STRING",
    "currency": "STRING",
    "event_type": "STRING",
    "int": "INT",
    "money": f"DECIMAL({MONEY_PRECISION},{MONEY_SCALE})",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "enum": pa.string(),
    "currency": pa.string(),
    "event_type": pa.string(),
    "int": pa.int32(),
    "money": pa.decimal128(MONEY_PRECISION, MONEY_SCALE),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_KAFKA_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "_topic": ("STRING", pa.string()),
    "_partition": ("INT", pa.int32()),
    "_offset": ("BIGINT", pa.int64()),
    "_kafka_timestamp": ("TIMESTAMP", pa.timestamp("us", tz="UTC")),
    "_ingested_at": ("TIMESTAMP", pa.timestamp("us", tz="UTC")),
}
_QUARANTINE_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "topic": ("STRING", pa.string()),
    "partition": ("INT", pa.int32()),
    "offset": ("BIGINT", pa.int64()),
    "key": ("STRING", pa.string()),
    "raw_value": ("STRING", pa.string()),
    "error": ("STRING", pa.string()),
    "quarantined_at": ("TIMESTAMP", pa.timestamp("us", tz="UTC")),
    "raw_bytes": ("BINARY", pa.binary()),
}


def _union(field_lists: list[tuple[Field, ...]], where: str) -> tuple[Field, ...]:
    """Fields of several event types, in order of first appearance, one per name."""
    seen: dict[str, Field] = {}
    for fields in field_lists:
        for field in fields:
            known = seen.get(field.name)
            if known is None:
                seen[field.name] = field
            elif field.kind == "lines" and known.kind == "lines":
                merged = _union([known.line_fields, field.line_fields], f"{where}.lines")
                seen[field.name] = Field(field.name, "lines", line_fields=merged, note=known.note)
            elif _SPARK_TYPES.get(field.kind) != _SPARK_TYPES.get(known.kind):
                raise ValueError(f"{where}: field {field.name!r} is declared with two types")
    return tuple(seen.values())


def _topic(topic: str) -> Topic:
    try:
        return TOPICS[topic]
    except KeyError:
        raise ValueError(f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)}") from None


def bronze_fields(topic: str) -> tuple[Field, ...]:
    """The envelope plus the union of the topic's event-type fields (the bronze columns)."""
    events = [EVENT_TYPES[name].fields for name in _topic(topic).event_types]
    return ENVELOPE + _union(events, topic)


def spark_type(field: Field) -> str:
    """The Spark SQL type of a field's bronze column."""
    if field.kind == "lines":
        members = ", ".join(f"{line.name}: {spark_type(line)}" for line in field.line_fields)
        return f"ARRAY<STRUCT<{members}>>"
    return _SPARK_TYPES[field.kind]


def arrow_type(field: Field) -> pa.DataType:
    """The Arrow type of a field's bronze column."""
    if field.kind == "lines":
        return pa.list_(pa.struct([pa.field(f.name, arrow_type(f)) for f in field.line_fields]))
    return _ARROW_TYPES[field.kind]


def bronze_spark_ddl(topic: str) -> str:
    """The bronze row of ``topic`` as a Spark DDL string (``StructType.fromDDL`` accepts it)."""
    columns = [f"{field.name} {spark_type(field)}" for field in bronze_fields(topic)]
    columns += [f"{name} {_KAFKA_TYPES[name][0]}" for name in KAFKA_COLUMNS]
    return ", ".join(columns)


def bronze_arrow_schema(topic: str) -> pa.Schema:
    """The bronze row of ``topic`` as an Arrow schema (all columns nullable)."""
    fields = [pa.field(field.name, arrow_type(field)) for field in bronze_fields(topic)]
    fields += [pa.field(name, _KAFKA_TYPES[name][1]) for name in KAFKA_COLUMNS]
    return pa.schema(fields)


def quarantine_spark_ddl() -> str:
    """The ``bronze/quarantine`` row as a Spark DDL string."""
    return ", ".join(f"{name} {_QUARANTINE_TYPES[name][0]}" for name in QUARANTINE_COLUMNS)


def quarantine_arrow_schema() -> pa.Schema:
    """The ``bronze/quarantine`` row as an Arrow schema."""
    return pa.schema([pa.field(name, _QUARANTINE_TYPES[name][1]) for name in QUARANTINE_COLUMNS])


def master_arrow_schema(entity: str) -> pa.Schema:
    """The columns of a master-data file, typed."""
    try:
        master = MASTER_FILES[entity]
    except KeyError:
        raise ValueError(
            f"unknown master entity {entity!r}: expected one of {', '.join(MASTER_FILES)}"
        ) from None
    return pa.schema([pa.field(field.name, arrow_type(field)) for field in master.columns])


def master_spark_ddl(entity: str) -> str:
    """The columns of a master-data file as a Spark DDL string."""
    master_arrow_schema(entity)  # validates the name
    return ", ".join(f"{f.name} {spark_type(f)}" for f in MASTER_FILES[entity].columns)


# --- derived: keys ----------------------------------------------------------------------------


def key_for(event: Mapping[str, Any]) -> str:
    """The Kafka message key of an event: its topic's key fields joined with ':'."""
    event_type = EVENT_TYPES.get(event.get("event_type"))  # type: ignore[arg-type]
    if event_type is None:
        raise ValueError(
            f"unknown event_type {event.get('event_type')!r}: "
            f"expected one of {', '.join(EVENT_TYPES)}"
        )
    return ":".join(str(event[name]) for name in TOPICS[event_type.topic].key_fields)


# --- derived: the reference validator ---------------------------------------------------------


class _InvalidJson(Exception):
    """JSON that Python's parser accepts but Spark's (and the contract) does not."""


def _reject_constant(name: str) -> Any:
    raise _InvalidJson(f"{name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _InvalidJson(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_float(text: str) -> Decimal | float:
    """A JSON number with a fraction or exponent, kept as Spark's VARIANT keeps it."""
    if "e" in text or "E" in text:
        return float(text)
    number = Decimal(text)
    digits, exponent = number.as_tuple()[1:]
    if len(digits) > MAX_DECIMAL_DIGITS or -int(exponent) > MAX_DECIMAL_DIGITS:
        return float(text)
    return number


def _parse_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= MAX_DECIMAL_DIGITS else float(text)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def parse_event(value: bytes | None) -> tuple[Any, str | None]:
    """Decode and parse a message value: (the JSON value, None) or (None, the reason)."""
    if value is None:
        return None, Reason.NULL_VALUE
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None, Reason.NOT_UTF8
    try:
        parsed = json.loads(
            text,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as error:
        # Some messages already end in "at" ("Unterminated string starting at").
        at = "" if error.msg.endswith(" at") else " at"
        return None, f"{Reason.INVALID_JSON}: {error.msg}{at} char {error.pos}"
    except _InvalidJson as error:
        return None, f"{Reason.INVALID_JSON}: {error}"
    except (RecursionError, ValueError):
        return None, f"{Reason.INVALID_JSON}: nested too deeply or a number too long"
    for string in _strings(parsed):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            return None, f"{Reason.INVALID_JSON}: unpaired surrogate escape in a string"
    return parsed, None


def validate_event(topic: str, value: bytes | None) -> str | None:
    """None when the message value is a valid event for ``topic``, else the first reason."""
    _topic(topic)
    parsed, reason = parse_event(value)
    if reason is not None:
        return reason
    return validate_object(topic, parsed)


def validate_object(topic: str, obj: Any) -> str | None:
    """None when a parsed JSON value is a valid event for ``topic``, else the first reason."""
    known = _topic(topic)
    if not isinstance(obj, dict):
        return Reason.NOT_OBJECT
    for field in ENVELOPE:
        reason = _check_field(field, obj, "", known)
        if reason is not None:
            return reason
    for field in EVENT_TYPES[obj["event_type"]].fields:
        reason = _check_field(field, obj, "", known)
        if reason is not None:
            return reason
    return None


def is_json_int(value: Any) -> bool:
    """A JSON integer as both validators see it: no fraction or exponent, within 64 bits."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def _is_number(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return not math.isnan(value)  # JSON cannot carry NaN; 1E400 parses as infinity
    return isinstance(value, int) and not isinstance(value, bool)


def _decimals(value: int | float | Decimal) -> int:
    """Digits after the point once trailing zeros are dropped (0 for non-finite numbers)."""
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = Decimal(repr(value))
    return max(0, -int(value.normalize(_WIDE).as_tuple().exponent))


def render(value: Any) -> str:
    """A JSON value as a reason shows it after "got"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, float):
        return java_double_text(value)
    if isinstance(value, str):
        shown = value if len(value) <= SHOWN_CHARACTERS else value[:SHOWN_CHARACTERS] + "..."
        return f"'{shown}'"
    if isinstance(value, list):
        return "an array" if value else "[]"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _decimal_text(number: Decimal) -> str:
    """Plain notation without trailing zeros; '.0' marks an integral decimal within 64 bits."""
    text = "0" if number.is_zero() else format(number.normalize(_WIDE), "f")
    if number == number.to_integral_value() and INT64_MIN <= number <= INT64_MAX:
        text += ".0"
    return text


def java_double_text(number: float) -> str:
    """A double as Java's ``Double.toString`` writes it (Spark renders doubles this way)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    exact = Decimal(repr(abs(number)))
    if 1e-3 <= abs(number) < 1e7:
        text = format(exact.normalize(_WIDE), "f")
        return sign + (text if "." in text else text + ".0")
    digits = "".join(map(str, exact.normalize(_WIDE).as_tuple().digits))
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exact.adjusted()}"


def _check_field(field: Field, container: dict[str, Any], where: str, topic: Topic) -> str | None:
    value = container.get(field.name)
    if value is None:
        return Reason.MISSING.format(name=field.name, where=where) if field.required else None
    kind = field.kind
    if kind == "event_type":
        if isinstance(value, str) and value in topic.event_types:
            return None
        if isinstance(value, str) and value in EVENT_TYPES:
            owner = EVENT_TYPES[value].topic
            return Reason.OTHER_TOPIC.format(event_type=value, owner=owner, topic=topic.name)
        expected = ", ".join(topic.event_types)
        return Reason.UNKNOWN_EVENT_TYPE.format(
            got=render(value), topic=topic.name, expected=expected
        )
    if kind == "lines":
        return _check_lines(field, value, topic)

    def invalid(expected: str) -> str:
        return Reason.INVALID.format(
            name=field.name, where=where, expected=expected, got=render(value)
        )

    if kind == "int":
        if not is_json_int(value) or not field.accepts_int(value):
            return invalid(field.expectation)
        if value > INT32_MAX:
            return invalid(f"at most {INT32_MAX}")
        if value < INT32_MIN:
            return invalid(f"at least {INT32_MIN}")
        return None
    if kind == "money":
        if not _is_number(value) or value < 0:
            return invalid(field.expectation)
        if _decimals(value) > MONEY_SCALE:
            return Reason.TOO_MANY_DECIMALS.format(
                name=field.name, where=where, scale=MONEY_SCALE, got=render(value)
            )
        if value >= MONEY_LIMIT:
            return invalid(f"less than {MONEY_LIMIT}")
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else invalid(field.expectation)
    if not isinstance(value, str) or not _STRING_CHECKS[kind](field, value):
        return invalid(field.expectation)
    return None


def _check_lines(field: Field, value: Any, topic: Topic) -> str | None:
    if not isinstance(value, list) or not value:
        return Reason.INVALID.format(
            name=field.name, where="", expected=field.expectation, got=render(value)
        )
    for index, line in enumerate(value):
        if not isinstance(line, dict):
            return Reason.NOT_AN_OBJECT.format(parent=field.name, index=index, got=render(line))
        for line_field in field.line_fields:
            reason = _check_field(line_field, line, f" in {field.name}[{index}]", topic)
            if reason is not None:
                return reason
    for line_field in field.line_fields:
        if line_field.unique:
            seen: set[Any] = set()
            for line in value:
                item = line.get(line_field.name)
                if item in seen:
                    return Reason.DUPLICATE.format(
                        name=line_field.name, got=render(item), parent=field.name
                    )
                seen.add(item)
    return None


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


def _is_timestamp(text: str) -> bool:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset_text = match.group(8).upper()
    offset = timedelta(0)
    if offset_text != "Z":
        hours, minutes = int(offset_text[1:3]), int(offset_text[4:6])
        if minutes > 59:
            return False
        offset = timedelta(hours=hours, minutes=minutes)
    if offset > MAX_OFFSET:
        return False
    try:
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return False
    return True


_STRING_CHECKS = {
    "string": lambda field, text: text != "",
    "enum": lambda field, text: text in field.values,
    "currency": lambda field, text: _CURRENCY.fullmatch(text) is not None,
    "date": lambda field, text: _is_date(text),
    "timestamp": lambda field, text: _is_timestamp(text),
}


# --- derived: documentation -------------------------------------------------------------------

_KIND_LABELS: dict[str, str] = {
    "string": "string",
    "int": "integer",
    "money": "number (money)",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "enum": "string (enum)",
    "currency": "string (currency)",
    "lines": "array of objects",
    "event_type": "string",
}


def _rule_text(field: Field) -> str:
    parts = [field.expectation]
    if field.kind == "int":
        parts.append("32-bit")
    if field.kind == "money":
        parts.append(f"at most {MONEY_SCALE} decimals, less than 10^{len(str(MONEY_LIMIT)) - 1}")
    if field.unique:
        parts.append("unique within the event")
    if not field.required:
        parts.append("optional")
    text = "; ".join(parts)
    text = f"{text} — {field.note}" if field.note else text
    return text.replace("|", "\\|")  # a bare pipe would split the table cell


def _field_rows(fields: tuple[Field, ...], prefix: str = "") -> list[str]:
    rows = []
    for field in fields:
        rows.append(
            f"| `{prefix}{field.name}` | {_KIND_LABELS[field.kind]} | {_rule_text(field)} |"
        )
        if field.kind == "lines":
            rows += _field_rows(field.line_fields, f"{prefix}{field.name}[].")
    return rows


def _typed_row(name: str, types: dict[str, tuple[str, pa.DataType]]) -> tuple[str, str, str]:
    spark, arrow = types[name]
    return name, spark, str(arrow)


def _columns_table(rows: list[tuple[str, str, str]]) -> list[str]:
    return [
        "| column | Spark type | Arrow type |",
        "|---|---|---|",
        *(f"| `{name}` | `{spark}` | `{arrow}` |" for name, spark, arrow in rows),
    ]


def render_markdown() -> str:
    """The contract reference (docs/contracts.md), generated from the declarations."""
    out = [
        "# Event and master-data contracts (v1)",
        "",
        "<!-- Generated by `python -m scm.contracts > docs/contracts.md`; do not edit. -->",
        "",
        "Declared once in `scm/contracts.py`; validation (Python and Spark), bronze schemas and",
        "this page are derived from the declarations.",
        "",
        "## Topics",
        "",
        "| topic | bronze table | event types | message key |",
        "|---|---|---|---|",
    ]
    for topic in TOPICS.values():
        types = ", ".join(f"`{name}`" for name in topic.event_types)
        key = "`" + ":".join(topic.key_fields) + "`"
        out.append(f"| `{topic.name}` | `bronze/{topic.entity}` | {types} | {key} |")
    out += [
        "",
        f"Message values are UTF-8 JSON objects. Topics have {PARTITIONS} partitions by default;",
        f"alerts go to `{ALERTS_TOPIC}`. Unknown extra fields are accepted and ignored; `null`",
        "counts as missing. Integers are JSON numbers without fraction or exponent (`3.0` is not",
        "an integer; `true` is not a number).",
        "",
        "## Fields every event carries",
        "",
        "| field | type | rule |",
        "|---|---|---|",
        *_field_rows(ENVELOPE),
        "",
        "## Event types",
    ]
    for event in EVENT_TYPES.values():
        out += [
            "",
            f"### `{event.name}` (`{event.topic}`)",
            "",
            event.note,
            "",
            "| field | type | rule |",
            "|---|---|---|",
            *_field_rows(event.fields),
        ]
    out += [
        "",
        "## Validation",
        "",
        "Checks run in this order and the first broken rule is the reason stored in quarantine:",
        "the value is present, is UTF-8, is one JSON value, is an object; then the envelope",
        "fields, then the event type's fields, each in the order listed (lines element by",
        "element, field by field, then uniqueness of `line_no`). Reasons read:",
        "",
        *(f"- `{template}`" for template in _reason_templates()),
        "",
        f"Money fits `decimal({MONEY_PRECISION},{MONEY_SCALE})` (trailing zeros do not count as",
        "decimals). Dates are real calendar dates. Timestamps carry `T`, seconds, optionally",
        "1-9 fraction digits, and `Z` or an offset of at most +-18:00. Integers fit 32 bits.",
        "",
        "## Bronze tables",
        "",
        "One row per valid event; the columns of all the topic's event types (null where an",
        "event type lacks the field), then the Kafka coordinates. Timestamps are UTC.",
    ]
    for topic in TOPICS.values():
        rows = [(f.name, spark_type(f), str(arrow_type(f))) for f in bronze_fields(topic.name)]
        rows += [_typed_row(name, _KAFKA_TYPES) for name in KAFKA_COLUMNS]
        out += ["", f"### `bronze/{topic.entity}` (`{topic.name}`)", "", *_columns_table(rows)]
    out += [
        "",
        "## Quarantine (`bronze/quarantine`)",
        "",
        "One row per rejected message, with its Kafka coordinates, the value as text (invalid",
        "UTF-8 replaced) and as the original bytes.",
        "",
        *_columns_table([_typed_row(name, _QUARANTINE_TYPES) for name in QUARANTINE_COLUMNS]),
        "",
        "## Master data (`landing/*.csv`)",
        "",
        "CSV files with a header row; a newer file replaces the entity's previous contents.",
    ]
    for master in MASTER_FILES.values():
        out += [
            "",
            f"### `{master.file_name}` (key `{master.key}`)",
            "",
            "| column | type | rule |",
            "|---|---|---|",
            *_field_rows(master.columns),
        ]
    return "\n".join(out) + "\n"


def _reason_templates() -> list[str]:
    return [
        value
        for name, value in vars(Reason).items()
        if not name.startswith("_") and isinstance(value, str)
    ]


_check_declarations()

if __name__ == "__main__":
    print(render_markdown(), end="")
