"""Bad messages of the kinds real feeds carry, for exercising quarantine.

They are *additional* corrupted copies of real messages (with a fresh event_id where the
message is still an object), inserted shortly after the original, so removing them leaves
exactly the consistent history. Each kind is chosen so that a contract-conforming
validator must reject it.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any, Literal

from simulator.events import Record, encode

MalformedKind = Literal[
    "truncated_json",
    "wrong_type",
    "missing_field",
    "unknown_event_type",
    "invalid_utf8",
    "not_an_object",
    "bad_timestamp",
    "negative_quantity",
]
MALFORMED_KINDS: tuple[MalformedKind, ...] = (
    "truncated_json",
    "wrong_type",
    "missing_field",
    "unknown_event_type",
    "invalid_utf8",
    "not_an_object",
    "bad_timestamp",
    "negative_quantity",
)
_UNKNOWN_TYPES = {
    "scm.orders": ("order_amended", "order_cancelled"),
    "scm.shipments": ("shipment_in_transit", "shipment_returned"),
    "scm.inventory": ("inventory_reserved", "stock_level"),
    "scm.returns": ("return_requested", "refund_issued"),
    "scm.procurement": ("po_cancelled", "asn_received"),
}


def _bad_timestamps(event_time: str) -> tuple[Any, ...]:
    date, _, clock = event_time.partition("T")
    year, month, day = date.split("-")
    return (
        f"{year}-13-{day}T{clock}",  # no month 13
        f"{day}/{month}/{year} {clock[:5]}",  # a local format, no offset
        "yesterday",
        1_772_446_500_000,  # epoch milliseconds instead of a string
    )


def _quantity_holder(event: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The object and field holding a quantity that must be positive, if any."""
    if event.get("lines"):
        return event["lines"][0], "quantity"
    for name in ("quantity", "on_hand"):
        if name in event:
            return event, name
    return None


def applicable_kinds(event: dict[str, Any]) -> tuple[MalformedKind, ...]:
    if _quantity_holder(event) is None:
        return tuple(kind for kind in MALFORMED_KINDS if kind != "negative_quantity")
    return MALFORMED_KINDS


def corrupt(record: Record, kind: MalformedKind, rng: random.Random) -> Record:
    """A corrupted copy of ``record`` (a valid message) of the given kind."""
    event = json.loads(record.value)
    event["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind == "truncated_json":
        value = encode(event)
        # Any proper prefix of an object's JSON is invalid: the closing brace is missing.
        return record._replace(value=value[: rng.randint(1, len(value) - 1)])
    if kind == "invalid_utf8":
        source = event["source"].encode()
        value = encode(event).replace(b'"source":"' + source, b'"source":"\xff\xfe' + source, 1)
        return record._replace(value=value)
    if kind == "not_an_object":
        shape = rng.choice(("array", "string", "null", "number"))
        bad: Any = {"array": [event], "string": json.dumps(event), "null": None, "number": 42}[
            shape
        ]
        return record._replace(value=json.dumps(bad).encode())
    if kind == "wrong_type":
        holder = _quantity_holder(event)
        if holder is not None:
            target, name = holder
            target[name] = str(target[name])  # "5" instead of 5
        elif "quantity_delta" in event:
            event["quantity_delta"] = str(event["quantity_delta"])
        elif "documents_ok" in event:
            event["documents_ok"] = "yes"
        else:
            event["schema_version"] = "1"
    elif kind == "missing_field":
        del event[rng.choice(list(event))]
    elif kind == "unknown_event_type":
        event["event_type"] = rng.choice(_UNKNOWN_TYPES[record.topic])
    elif kind == "bad_timestamp":
        event["event_time"] = rng.choice(_bad_timestamps(event["event_time"]))
    elif kind == "negative_quantity":
        holder = _quantity_holder(event)
        assert holder is not None, "negative_quantity needs a quantity"
        target, name = holder
        target[name] = -max(1, int(target[name]))
    return record._replace(value=encode(event))


class MalformedInjector:
    """Streams records through, adding a corrupted copy after about ``fraction`` of them."""

    def __init__(self, rng: random.Random, fraction: float) -> None:
        self.rng = rng
        self.fraction = fraction
        self.malformed = 0
        self.kinds: dict[str, int] = {}
        self._waiting: list[list] = []

    def push(self, record: Record) -> list[Record]:
        if self.fraction <= 0:
            return [record]
        out = [record]
        if self._waiting:
            for waiting in self._waiting:
                waiting[0] -= 1
            out += [r for left, r in self._waiting if left <= 0]
            self._waiting = [w for w in self._waiting if w[0] > 0]
        if self.rng.random() < self.fraction:
            event = json.loads(record.value)
            kind = self.rng.choice(applicable_kinds(event))
            self.malformed += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self._waiting.append([self.rng.randint(0, 5), corrupt(record, kind, self.rng)])
            if self._waiting[-1][0] == 0:
                out.append(self._waiting.pop()[1])
        return out

    def drain(self) -> list[Record]:
        out = [record for _, record in self._waiting]
        self._waiting = []
        return out
