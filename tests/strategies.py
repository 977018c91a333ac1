"""Hypothesis strategies for contract events: valid events of every type, and messages that
break exactly one rule together with a check of the reason a validator must give.

Valid values are generated per field kind from the declarations in ``scm.contracts``, so a new
field or event type is covered without touching this module.
"""

from __future__ import annotations

import json
import operator
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from scm.contracts import EVENT_TYPES, INT32_MAX, INT32_MIN, TOPICS, EventType, Field

Event = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits + "-_:./ "
# Producers send non-ASCII text too (names, carriers); surrogates cannot be encoded.
_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x1F600), max_size=12
)


def encode(event: Any) -> bytes:
    """Compact UTF-8 JSON, as producers send it."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- hand-written examples, one per event type ----------------------------------------------

ORDER: dict[str, Any] = {
    "event_id": "9b2f0c7e-1",
    "event_type": "order_placed",
    "event_time": "2026-03-02T10:00:00Z",
    "source": "oms",
    "schema_version": 1,
    "order_id": "O-1",
    "customer_id": "C-1",
    "channel": "b2b",
    "ship_from": "DC-1",
    "requested_delivery_date": "2026-03-05",
    "currency": "USD",
    "lines": [
        {"line_no": 1, "sku": "SKU-A", "quantity": 10, "unit_price": 25.0},
        {"line_no": 2, "sku": "SKU-B", "quantity": 1, "unit_price": 3},
    ],
}


def _envelope(event_type: str, **fields: Any) -> dict[str, Any]:
    base = {
        "event_id": f"E-{event_type}",
        "event_type": event_type,
        "event_time": "2026-03-02T10:00:00.250+02:00",
        "source": "simulator",
        "schema_version": 1,
    }
    return {**base, **fields}


EXAMPLES: dict[str, dict[str, Any]] = {
    "order_placed": ORDER,
    "shipment_dispatched": _envelope(
        "shipment_dispatched",
        shipment_id="S-1",
        order_id="O-1",
        ship_from="DC-1",
        carrier="DHL",
        lines=[{"line_no": 1, "sku": "SKU-A", "quantity": 4}],
    ),
    "shipment_delivered": _envelope(
        "shipment_delivered", shipment_id="S-1", order_id="O-1", condition="ok", documents_ok=True
    ),
    "inventory_snapshot": _envelope(
        "inventory_snapshot", location_id="DC-1", sku="SKU-A", on_hand=0
    ),
    "inventory_movement": _envelope(
        "inventory_movement",
        location_id="DC-1",
        sku="SKU-A",
        quantity_delta=-4,
        movement_type="shipment",
        reference_id="S-1",
    ),
    "return_received": _envelope(
        "return_received",
        return_id="R-1",
        order_id="O-1",
        line_no=1,
        sku="SKU-A",
        quantity=1,
        reason="damaged",
        disposition="scrap",
        refund_amount=25.0,
        processing_cost=4.5,
        currency="EUR",
    ),
    "po_created": _envelope(
        "po_created",
        po_id="PO-1",
        supplier_id="SUP-1",
        ship_to="DC-1",
        expected_date="2026-03-20",
        currency="USD",
        lines=[{"line_no": 1, "sku": "SKU-A", "quantity": 100, "unit_cost": 12.3456}],
    ),
    "po_received": _envelope(
        "po_received", po_id="PO-1", lines=[{"line_no": 1, "sku": "SKU-A", "quantity": 60}]
    ),
}


# --- valid values, per field kind --------------------------------------------------------------


def _ints(field: Field) -> st.SearchStrategy[int]:
    if field.rule is None:
        return st.integers(INT32_MIN, INT32_MAX)
    op, bound = field.rule
    if op == "==":
        return st.just(bound)
    if op == "!=":
        return st.integers(-10_000, 10_000).filter(lambda n: n != bound)
    low = bound if op == ">=" else bound + 1
    return st.one_of(st.integers(low, low + 1_000), st.integers(low, INT32_MAX))


def _money() -> st.SearchStrategy[int | float]:
    # At most 4 decimals and 15 significant digits, so the float's JSON text is exact.
    whole = st.integers(0, 10**10)
    decimals = st.builds(lambda n, scale: n / 10**scale, st.integers(0, 10**11), st.integers(1, 4))
    return st.one_of(whole, decimals)


def _timestamps() -> st.SearchStrategy[str]:
    def text(moment: datetime, offset_minutes: int, fraction: str, zulu: bool) -> str:
        base = moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction
        if zulu:
            return base + "Z"
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        return f"{base}{sign}{hours:02d}:{minutes:02d}"

    return st.builds(
        text,
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)),
        st.integers(-18 * 60, 18 * 60),
        st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,9}", fullmatch=True)),
        st.booleans(),
    )


def values(field: Field) -> st.SearchStrategy[Any]:
    """Valid values of one field."""
    kind = field.kind
    if kind == "string":
        return st.one_of(st.text(_ID_ALPHABET, min_size=1, max_size=12), _TEXT.filter(bool))
    if kind == "int":
        return _ints(field)
    if kind == "money":
        return _money()
    if kind == "boolean":
        return st.booleans()
    if kind == "date":
        return st.dates(date(1970, 1, 1), date(2100, 12, 31)).map(date.isoformat)
    if kind == "timestamp":
        return _timestamps()
    if kind == "enum":
        return st.sampled_from(field.values)
    if kind == "currency":
        return st.one_of(
            st.sampled_from(["USD", "EUR", "GBP"]),
            st.text(string.ascii_uppercase, min_size=3, max_size=3),
        )
    if kind == "lines":
        return _lines(field)
    raise AssertionError(f"no strategy for kind {kind!r}")


def _lines(field: Field) -> st.SearchStrategy[list[Event]]:
    line = st.fixed_dictionaries({f.name: values(f) for f in field.line_fields})
    unique = tuple(operator.itemgetter(f.name) for f in field.line_fields if f.unique)
    return st.lists(line, min_size=1, max_size=4, unique_by=unique or None)


_EXTRA = st.dictionaries(
    st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda name: "x_" + name),
    st.one_of(st.none(), st.integers(), _TEXT, st.lists(st.integers(), max_size=2)),
    max_size=2,
)


@st.composite
def valid_events(draw: st.DrawFn, event_type: str | None = None) -> tuple[str, Event]:
    """(topic, event) for a valid event, of ``event_type`` or any type; may carry extra fields."""
    chosen = EVENT_TYPES[event_type or draw(st.sampled_from(sorted(EVENT_TYPES)))]
    event: Event = {}
    for field in chosen.all_fields:
        event[field.name] = chosen.name if field.kind == "event_type" else draw(values(field))
    if draw(st.booleans()):
        extra = draw(_EXTRA)
        event.update({name: value for name, value in extra.items() if name not in event})
    return chosen.topic, event


# --- invalid messages: exactly one rule broken -------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """A message that breaks one rule, and what the reason must say."""

    topic: str
    value: bytes
    rule: str  # what was broken, for failure messages
    expected: Callable[[str], bool]

    def __repr__(self) -> str:
        return f"Broken({self.topic}, {self.rule}, {self.value!r})"


def _bad_values(field: Field) -> list[Any]:
    """Values of the wrong type or breaking the field's rule."""
    kind = field.kind
    if kind == "string":
        return ["", 5, True, [], {"a": 1}]
    if kind == "int":
        bad: list[Any] = ["3", 3.0, 1.5, True, [1]]
        if field.rule is not None:
            op, bound = field.rule
            bad.append({">=": bound - 1, ">": bound, "!=": bound, "==": bound + 1}[op])
            if op in (">=", ">"):
                bad.append(INT32_MAX + 1)
        else:
            bad.append(INT32_MAX + 1)
        return bad
    if kind == "money":
        return ["1.5", True, -1, -0.5, 1.23456, 0.00001, 10**14, 1e15]
    if kind == "boolean":
        return ["true", 1, 0]
    if kind == "date":
        return [
            "2026-02-30",
            "2026-3-1",
            "20260301",
            "2026-03-01T00:00:00Z",
            20260301,
            "0000-01-01",
        ]
    if kind == "timestamp":
        return [
            "2026-03-02 10:00",
            "2026-03-02T10:00:00",
            "2026-03-02T25:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-03-02T10:00Z",
            "2026-03-02T10:00:00+19:00",
            "2026-03-02T10:00:00.1234567891Z",
            1772445600,
        ]
    if kind == "enum":
        return ["bogus", field.values[0].upper(), 1]
    if kind == "currency":
        return ["usd", "US", "USDX", 840]
    raise AssertionError(f"no bad values for kind {kind!r}")


def _field_reason(name: str, where: str = "") -> Callable[[str], bool]:
    return lambda reason: reason.startswith(f"field '{name}'{where} must ")


def _missing_reason(name: str, where: str = "") -> Callable[[str], bool]:
    return lambda reason: reason == f"missing required field '{name}'{where}"


@st.composite
def broken_events(draw: st.DrawFn) -> Broken:
    """A message breaking exactly one rule of the contract."""
    topic, event = draw(valid_events())
    chosen = EVENT_TYPES[event["event_type"]]
    how = draw(
        st.sampled_from(
            ["drop", "null", "bad value", "line", "event type", "bytes"]
            if any(f.kind == "lines" for f in chosen.fields)
            else ["drop", "null", "bad value", "event type", "bytes"]
        )
    )
    if how == "bytes":
        return draw(_broken_bytes(topic, event))
    if how == "event type":
        return draw(_broken_event_type(topic, event))
    if how == "line":
        return draw(_broken_line(topic, event, chosen))
    field = draw(st.sampled_from([f for f in chosen.all_fields if f.kind != "event_type"]))
    if how in ("drop", "null"):
        if how == "drop":
            del event[field.name]
        else:
            event[field.name] = None
        return Broken(topic, encode(event), f"{how} {field.name}", _missing_reason(field.name))
    if field.kind == "lines":
        event[field.name] = draw(st.sampled_from([[], {}, "lines", 5]))
    else:
        event[field.name] = draw(st.sampled_from(_bad_values(field)))
    rule = f"{field.name}={event[field.name]!r}"
    return Broken(topic, encode(event), rule, _field_reason(field.name))


def _broken_line(topic: str, event: Event, chosen: EventType) -> st.SearchStrategy[Broken]:
    lines_field = next(f for f in chosen.fields if f.kind == "lines")

    @st.composite
    def build(draw: st.DrawFn) -> Broken:
        lines = event[lines_field.name]
        index = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "null", "bad value", "not an object", "duplicate"]))
        where = f" in {lines_field.name}[{index}]"
        if how == "not an object":
            lines[index] = draw(st.sampled_from([5, "line", None, [1]]))
            prefix = f"{lines_field.name}[{index}] must be an object, got "
            return Broken(topic, encode(event), how, lambda r: r.startswith(prefix))
        if how == "duplicate":
            lines.append(dict(lines[index]))
            line_no = lines[index]["line_no"]
            expected = f"duplicate line_no {line_no} in {lines_field.name}"
            return Broken(topic, encode(event), how, lambda r: r == expected)
        field = draw(st.sampled_from(lines_field.line_fields))
        if how == "drop":
            del lines[index][field.name]
            return Broken(topic, encode(event), how, _missing_reason(field.name, where))
        if how == "null":
            lines[index][field.name] = None
            return Broken(topic, encode(event), how, _missing_reason(field.name, where))
        lines[index][field.name] = draw(st.sampled_from(_bad_values(field)))
        rule = f"{field.name}{where}={lines[index][field.name]!r}"
        return Broken(topic, encode(event), rule, _field_reason(field.name, where))

    return build()


def _broken_event_type(topic: str, event: Event) -> st.SearchStrategy[Broken]:
    others = sorted(name for name, e in EVENT_TYPES.items() if e.topic != topic)

    @st.composite
    def build(draw: st.DrawFn) -> Broken:
        how = draw(st.sampled_from(["unknown", "other topic", "not a string"]))
        if how == "other topic":
            event["event_type"] = draw(st.sampled_from(others))
            owner = EVENT_TYPES[event["event_type"]].topic
            expected = f"event_type '{event['event_type']}' belongs to topic {owner}, not {topic}"
            return Broken(topic, encode(event), how, lambda r: r == expected)
        event["event_type"] = draw(
            st.sampled_from(["order_cancelled", "", "ORDER_PLACED", 1, True])
            if how == "unknown"
            else st.sampled_from([1, True, ["order_placed"]])
        )
        prefix = "unknown event_type "
        suffix = f" for topic {topic} (expected: {', '.join(TOPICS[topic].event_types)})"
        return Broken(
            topic, encode(event), how, lambda r: r.startswith(prefix) and r.endswith(suffix)
        )

    return build()


def _truncated(value: bytes) -> bytes:
    """The first half of the text, cut between characters (so still valid UTF-8)."""
    text = value.decode("utf-8")
    return text[: len(text) // 2].encode("utf-8")


def _broken_bytes(topic: str, event: Event) -> st.SearchStrategy[Broken]:
    good = encode(event)

    def invalid_json(reason: str) -> bool:
        return reason.startswith("invalid JSON")

    cases = [
        Broken(topic, _truncated(good), "truncated", invalid_json),
        Broken(topic, good[:-1], "no closing brace", invalid_json),
        Broken(topic, b"\xef\xbb\xbf" + good, "BOM", invalid_json),
        Broken(topic, good + b"{}", "two objects", invalid_json),
        Broken(topic, good + b" x", "trailing garbage", invalid_json),
        Broken(topic, good + b"]", "trailing bracket", invalid_json),
        Broken(topic, good.replace(b'"source":', b'"source":NaN,"y":', 1), "NaN", invalid_json),
        Broken(topic, good[:-1] + b',"event_id":"again"}', "duplicate key", invalid_json),
        Broken(topic, b"[" + good + b"]", "array", lambda r: r == "not a JSON object"),
        Broken(topic, b'"' + b"event" + b'"', "string", lambda r: r == "not a JSON object"),
        Broken(topic, b"", "empty", invalid_json),
        Broken(
            topic,
            good.replace(b'"source":"', b'"source":"\xff', 1),
            "invalid UTF-8",
            lambda r: r == "not valid UTF-8",
        ),
        Broken(
            topic,
            good.replace(b'"source":"', b'"source":"\xed\xa0\x80', 1),
            "UTF-8 surrogate",
            lambda r: r == "not valid UTF-8",
        ),
        Broken(
            topic,
            good.replace(b'"source":"', b'"source":"\\ud800', 1),
            "lone surrogate escape",
            invalid_json,
        ),
    ]
    return st.sampled_from(cases)


_RFC3339 = re.compile(r"(.{19})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def utc(text: str) -> datetime:
    """An RFC 3339 timestamp as bronze holds it: naive UTC, truncated to microseconds."""
    match = _RFC3339.fullmatch(text)
    assert match is not None, text
    head, fraction, offset = match.groups()
    moment = datetime.strptime(head.upper(), "%Y-%m-%dT%H:%M:%S")
    if fraction:
        moment += timedelta(microseconds=int((fraction + "00000")[:6]))
    if offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment
