"""Event builders: one function per contract event type, returning plain dicts.

Field order follows contracts.md so the JSON reads like the contract. Builders do no
validation: the simulation only calls them with values it knows to be valid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from scm.contracts import EVENT_TYPES, key_for

Event = dict[str, Any]

SCHEMA_VERSION = 1
CURRENCY = "USD"


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class Record(NamedTuple):
    """One Kafka message as produced: topic, key and the exact value bytes."""

    topic: str
    key: str
    value: bytes


def encode(event: Event) -> bytes:
    """Compact UTF-8 JSON; dicts keep insertion order, so equal events give equal bytes."""
    return _ENCODER.encode(event).encode("utf-8")


def to_record(event: Event) -> Record:
    """The message a producer sends: topic and key as contracts.md assigns them."""
    return Record(EVENT_TYPES[event["event_type"]].topic, key_for(event), encode(event))


def money(amount: float) -> float:
    """Money as the contract allows (at most 4 decimals); we keep cents."""
    return round(amount + 0.0, 2)


def _envelope(event_id: str, event_type: str, event_time: str, source: str) -> Event:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_time": event_time,
        "source": source,
        "schema_version": SCHEMA_VERSION,
    }


def order_placed(
    *,
    event_id: str,
    event_time: str,
    order_id: str,
    customer_id: str,
    channel: str,
    ship_from: str,
    requested_delivery_date: str,
    lines: Sequence[tuple[int, str, int, float]],
) -> Event:
    """``lines`` are (line_no, sku, quantity, unit_price)."""
    event = _envelope(event_id, "order_placed", event_time, "oms")
    event.update(
        order_id=order_id,
        customer_id=customer_id,
        channel=channel,
        ship_from=ship_from,
        requested_delivery_date=requested_delivery_date,
        currency=CURRENCY,
        lines=[
            {"line_no": n, "sku": sku, "quantity": q, "unit_price": money(price)}
            for n, sku, q, price in lines
        ],
    )
    return event


def shipment_dispatched(
    *,
    event_id: str,
    event_time: str,
    shipment_id: str,
    order_id: str,
    ship_from: str,
    carrier: str,
    lines: Sequence[tuple[int, str, int]],
) -> Event:
    """``lines`` are (line_no, sku, quantity)."""
    event = _envelope(event_id, "shipment_dispatched", event_time, "wms")
    event.update(
        shipment_id=shipment_id,
        order_id=order_id,
        ship_from=ship_from,
        carrier=carrier,
        lines=[{"line_no": n, "sku": sku, "quantity": q} for n, sku, q in lines],
    )
    return event


def shipment_delivered(
    *,
    event_id: str,
    event_time: str,
    shipment_id: str,
    order_id: str,
    condition: str,
    documents_ok: bool,
) -> Event:
    event = _envelope(event_id, "shipment_delivered", event_time, "tms")
    event.update(
        shipment_id=shipment_id, order_id=order_id, condition=condition, documents_ok=documents_ok
    )
    return event


def inventory_snapshot(
    *, event_id: str, event_time: str, location_id: str, sku: str, on_hand: int
) -> Event:
    event = _envelope(event_id, "inventory_snapshot", event_time, "wms")
    event.update(location_id=location_id, sku=sku, on_hand=on_hand)
    return event


def inventory_movement(
    *,
    event_id: str,
    event_time: str,
    location_id: str,
    sku: str,
    quantity_delta: int,
    movement_type: str,
    reference_id: str,
) -> Event:
    event = _envelope(event_id, "inventory_movement", event_time, "wms")
    event.update(
        location_id=location_id,
        sku=sku,
        quantity_delta=quantity_delta,
        movement_type=movement_type,
        reference_id=reference_id,
    )
    return event


def return_received(
    *,
    event_id: str,
    event_time: str,
    return_id: str,
    order_id: str,
    line_no: int,
    sku: str,
    quantity: int,
    reason: str,
    disposition: str,
    refund_amount: float,
    processing_cost: float,
) -> Event:
    event = _envelope(event_id, "return_received", event_time, "wms")
    event.update(
        return_id=return_id,
        order_id=order_id,
        line_no=line_no,
        sku=sku,
        quantity=quantity,
        reason=reason,
        disposition=disposition,
        refund_amount=money(refund_amount),
        processing_cost=money(processing_cost),
        currency=CURRENCY,
    )
    return event


def po_created(
    *,
    event_id: str,
    event_time: str,
    po_id: str,
    supplier_id: str,
    ship_to: str,
    expected_date: str,
    lines: Sequence[tuple[int, str, int, float]],
) -> Event:
    """``lines`` are (line_no, sku, quantity, unit_cost)."""
    event = _envelope(event_id, "po_created", event_time, "erp")
    event.update(
        po_id=po_id,
        supplier_id=supplier_id,
        ship_to=ship_to,
        expected_date=expected_date,
        currency=CURRENCY,
        lines=[
            {"line_no": n, "sku": sku, "quantity": q, "unit_cost": money(cost)}
            for n, sku, q, cost in lines
        ],
    )
    return event


def po_received(
    *, event_id: str, event_time: str, po_id: str, lines: Sequence[tuple[int, str, int]]
) -> Event:
    """``lines`` are (line_no, sku, quantity) received in this delivery."""
    event = _envelope(event_id, "po_received", event_time, "wms")
    event.update(
        po_id=po_id, lines=[{"line_no": n, "sku": sku, "quantity": q} for n, sku, q in lines]
    )
    return event
