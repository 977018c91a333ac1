"""An independent, pure-Python reading of kpis.md: the six gold tables and the inventory position.

Written from the spec text alone (no Spark, nothing from ``transforms/``) so an end-to-end test
can hold the product against it. Input: accepted events as producers send them (contracts.md,
already parsed from JSON) and the products master data. Output: one list of row dicts per
table, with the grain columns first and the columns kpis.md names.

Where kpis.md leaves a choice open, this module picks the most literal reading and says so:

- A KPI row exists only for a group that has at least one counted item (an order counted by
  the KPI, a PO line, a return); ``perfect_order_daily`` and ``order_cycle_time_daily`` have no
  row for a group whose orders are all not yet due or not yet delivered.
- ``inventory_turns_monthly`` has a row for every month from a location's first inventory
  event or dispatch up to the as-of month.
- "The end of day D" is the last instant of D: an event at ``D+1T00:00:00Z`` belongs to D+1.
- Two snapshots of one (location, sku) at the same instant are not resolved (no test uses it).
- Money is summed exactly (``Decimal``) and becomes a float once aggregated; ratios are floats.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Event = Mapping[str, Any]
Row = dict[str, Any]

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Product:
    """The master data kpis.md needs of a sku (``products.csv``)."""

    category: str
    unit_cost: Decimal


# --- shared definitions ---------------------------------------------------------------------


def event_time(event: Event) -> dt.datetime:
    """The event's RFC 3339 ``event_time`` as an aware UTC datetime."""
    return dt.datetime.fromisoformat(str(event["event_time"]).replace("Z", "+00:00")).astimezone(
        dt.UTC
    )


def event_day(event: Event) -> dt.date:
    """The UTC calendar day of the event (contracts.md: "Day" is always the UTC day)."""
    return event_time(event).date()


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after ``day``; "at or before the end of D" means strictly before it."""
    return dt.datetime.combine(day + _DAY, dt.time(), tzinfo=dt.UTC)


def deduplicate(events: Iterable[Event]) -> list[Event]:
    """Each ``event_id`` once (a producer retry resends the same id): the first one seen."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(str(event["event_id"]), event)
    return list(seen.values())


def as_of_date(events: Iterable[Event]) -> dt.date | None:
    """The UTC day of the latest ``event_time`` among the (accepted) events given."""
    times = [event_time(event) for event in events]
    return max(times).date() if times else None


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator; None where the divisor is 0."""
    return None if denominator == 0 else numerator / denominator


def money(value: Any) -> Decimal:
    """A JSON money number as the exact decimal the producer wrote."""
    return Decimal(str(value))


# --- orders, shipments, deliveries ----------------------------------------------------------


@dataclass
class Order:
    """One ``order_placed`` with what its shipments did to it."""

    event: Event
    # (line_no) -> ordered quantity
    lines: dict[int, int]
    # (line_no) -> [(dispatch day, quantity, shipment_id)]
    dispatches: dict[int, list[tuple[dt.date, int, str]]] = field(default_factory=dict)
    # shipment_id -> its shipment_delivered events
    deliveries: dict[str, list[Event]] = field(default_factory=dict)

    @property
    def order_date(self) -> dt.date:
        return event_day(self.event)

    @property
    def requested_date(self) -> dt.date:
        return dt.date.fromisoformat(str(self.event["requested_delivery_date"]))

    @property
    def grain(self) -> tuple[dt.date, str, str]:
        return (self.order_date, str(self.event["ship_from"]), str(self.event["channel"]))

    def dispatched_by(self, line_no: int, day: dt.date) -> int:
        """Σ dispatched quantity of the line on days ≤ ``day``."""
        return sum(qty for when, qty, _ in self.dispatches.get(line_no, []) if when <= day)

    def delivered(self, line_no: int) -> int:
        """Σ dispatched quantity of the line over shipments that have a delivery."""
        return sum(
            qty
            for _, qty, shipment in self.dispatches.get(line_no, [])
            if shipment in self.deliveries
        )

    def is_fully_delivered(self) -> bool:
        return all(self.delivered(line) >= quantity for line, quantity in self.lines.items())

    def all_deliveries(self) -> list[Event]:
        return [event for events in self.deliveries.values() for event in events]


def orders_of(events: list[Event]) -> dict[str, Order]:
    """Every order with its lines' dispatches and its shipments' deliveries."""
    orders = {
        str(e["order_id"]): Order(
            e, {int(line["line_no"]): int(line["quantity"]) for line in e["lines"]}
        )
        for e in events
        if e["event_type"] == "order_placed"
    }
    shipment_order: dict[str, str] = {}
    for event in events:
        if event["event_type"] != "shipment_dispatched":
            continue
        shipment_order[str(event["shipment_id"])] = str(event["order_id"])
        order = orders.get(str(event["order_id"]))
        if order is None:
            continue
        for line in event["lines"]:
            order.dispatches.setdefault(int(line["line_no"]), []).append(
                (event_day(event), int(line["quantity"]), str(event["shipment_id"]))
            )
    for event in events:
        if event["event_type"] != "shipment_delivered":
            continue
        shipment = str(event["shipment_id"])
        order = orders.get(shipment_order.get(shipment, str(event["order_id"])))
        if order is not None:
            order.deliveries.setdefault(shipment, []).append(event)
    return orders


def _by_grain(orders: Iterable[Order]) -> dict[tuple[dt.date, str, str], list[Order]]:
    groups: dict[tuple[dt.date, str, str], list[Order]] = defaultdict(list)
    for order in orders:
        groups[order.grain].append(order)
    return groups


def _order_row(grain: tuple[dt.date, str, str], **measures: Any) -> Row:
    order_date, ship_from, channel = grain
    return {"order_date": order_date, "ship_from": ship_from, "channel": channel, **measures}


def fill_rate_daily(orders: Mapping[str, Order], as_of: dt.date) -> list[Row]:
    """Unit, line and order fill rate by order day, ship-from and channel, of due orders."""
    due = [order for order in orders.values() if order.requested_date <= as_of]
    rows = []
    for grain, group in sorted(_by_grain(due).items()):
        lines = lines_filled = orders_filled = units_ordered = units_filled = 0
        for order in group:
            filled = 0
            for line_no, quantity in order.lines.items():
                dispatched = order.dispatched_by(line_no, order.requested_date)
                filled += dispatched >= quantity
                units_ordered += quantity
                units_filled += min(dispatched, quantity)
            lines += len(order.lines)
            lines_filled += filled
            orders_filled += filled == len(order.lines)
        rows.append(
            _order_row(
                grain,
                orders=len(group),
                orders_filled=orders_filled,
                lines=lines,
                lines_filled=lines_filled,
                units_ordered=units_ordered,
                units_filled=units_filled,
                order_fill_rate=ratio(orders_filled, len(group)),
                line_fill_rate=ratio(lines_filled, lines),
                unit_fill_rate=ratio(units_filled, units_ordered),
            )
        )
    return rows


def is_perfect(order: Order) -> bool:
    """Delivered in full, every delivery on time, undamaged and with correct documents."""
    return order.is_fully_delivered() and all(
        event_day(delivery) <= order.requested_date
        and delivery["condition"] == "ok"
        and delivery["documents_ok"] is True
        for delivery in order.all_deliveries()
    )


def perfect_order_daily(orders: Mapping[str, Order], as_of: dt.date) -> list[Row]:
    """SCOR RL.1.1 over orders whose requested delivery date is on or before the as-of date."""
    due = [order for order in orders.values() if order.requested_date <= as_of]
    rows = []
    for grain, group in sorted(_by_grain(due).items()):
        perfect = sum(is_perfect(order) for order in group)
        rows.append(
            _order_row(
                grain,
                orders=len(group),
                perfect_orders=perfect,
                perfect_order_rate=ratio(perfect, len(group)),
            )
        )
    return rows


def cycle_time_days(order: Order) -> float:
    """Latest delivery time of the order's shipments − order time, in days (hours / 24)."""
    latest = max(event_time(delivery) for delivery in order.all_deliveries())
    return (latest - event_time(order.event)).total_seconds() / 3600 / 24


def order_cycle_time_daily(orders: Mapping[str, Order]) -> list[Row]:
    """SCOR RS.1.1 over fully delivered orders."""
    delivered = [order for order in orders.values() if order.is_fully_delivered()]
    rows = []
    for grain, group in sorted(_by_grain(delivered).items()):
        times = [cycle_time_days(order) for order in group]
        rows.append(
            _order_row(
                grain, orders_delivered=len(group), avg_cycle_time_days=sum(times) / len(times)
            )
        )
    return rows


# --- inventory ------------------------------------------------------------------------------


@dataclass
class StockHistory:
    """The snapshots and movements of one (location, sku)."""

    snapshots: list[tuple[dt.datetime, int]] = field(default_factory=list)
    movements: list[tuple[dt.datetime, int]] = field(default_factory=list)

    def on_hand_before(self, instant: dt.datetime | None) -> int:
        """Latest snapshot before ``instant`` plus the deltas after it (None: all events)."""
        known = [s for s in self.snapshots if instant is None or s[0] < instant]
        base_time, level = max(known) if known else (None, 0)
        return level + sum(
            delta
            for when, delta in self.movements
            if (base_time is None or when > base_time) and (instant is None or when < instant)
        )

    def first_time(self) -> dt.datetime:
        return min(when for when, _ in self.snapshots + self.movements)


def stock_histories(events: list[Event]) -> dict[tuple[str, str], StockHistory]:
    histories: dict[tuple[str, str], StockHistory] = defaultdict(StockHistory)
    for event in events:
        key = (str(event.get("location_id")), str(event.get("sku")))
        if event["event_type"] == "inventory_snapshot":
            histories[key].snapshots.append((event_time(event), int(event["on_hand"])))
        elif event["event_type"] == "inventory_movement":
            histories[key].movements.append((event_time(event), int(event["quantity_delta"])))
    return dict(histories)


def inventory_position(events: list[Event]) -> dict[tuple[str, str], int]:
    """``silver/inventory_position``: on-hand of every (location_id, sku) over all events."""
    return {key: history.on_hand_before(None) for key, history in stock_histories(events).items()}


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def inventory_turns_monthly(
    events: list[Event], products: Mapping[str, Product], as_of: dt.date
) -> list[Row]:
    """Annualised inventory turns and days of supply by month and location."""
    histories = stock_histories(events)
    dispatches = [e for e in events if e["event_type"] == "shipment_dispatched"]
    first_month: dict[str, dt.date] = {}
    for (location, _), history in histories.items():
        month = _month_start(history.first_time().date())
        first_month[location] = min(first_month.get(location, month), month)
    for event in dispatches:
        location, month = str(event["ship_from"]), _month_start(event_day(event))
        first_month[location] = min(first_month.get(location, month), month)

    rows = []
    for location, month in sorted(first_month.items()):
        while month <= as_of:
            last_day = min(_next_month(month) - _DAY, as_of)
            period = [month + n * _DAY for n in range((last_day - month).days + 1)]
            cogs = sum(
                (
                    int(line["quantity"]) * products[str(line["sku"])].unit_cost
                    for event in dispatches
                    if event["ship_from"] == location and month <= event_day(event) <= last_day
                    for line in event["lines"]
                ),
                Decimal(0),
            )
            value = sum(
                (
                    history.on_hand_before(end_of_day(day)) * products[sku].unit_cost
                    for day in period
                    for (place, sku), history in histories.items()
                    if place == location
                ),
                Decimal(0),
            )
            average = value / len(period)
            turns = ratio(float(cogs), float(average))
            rows.append(
                {
                    "month": month,
                    "location_id": location,
                    "period_days": len(period),
                    "cogs": float(cogs),
                    "avg_inventory_value": float(average),
                    "inventory_turns": None if turns is None else turns * 365 / len(period),
                    "days_of_supply": ratio(float(average), float(cogs) / len(period)),
                }
            )
            month = _next_month(month)
    return rows


# --- returns and suppliers ------------------------------------------------------------------


def returns_cost_daily(events: list[Event], products: Mapping[str, Product]) -> list[Row]:
    """Returns, units, refunds and processing cost by return day, product category and reason."""
    groups: dict[tuple[dt.date, str, str], list[Event]] = defaultdict(list)
    for event in events:
        if event["event_type"] == "return_received":
            category = products[str(event["sku"])].category
            groups[(event_day(event), category, str(event["reason"]))].append(event)
    return [
        {
            "return_date": day,
            "category": category,
            "reason": reason,
            "returns": len(group),
            "units_returned": sum(int(e["quantity"]) for e in group),
            "refund_amount": float(sum((money(e["refund_amount"]) for e in group), Decimal(0))),
            "processing_cost": float(sum((money(e["processing_cost"]) for e in group), Decimal(0))),
        }
        for (day, category, reason), group in sorted(groups.items())
    ]


def supplier_otif_daily(events: list[Event], as_of: dt.date) -> list[Row]:
    """PO lines due by ``as_of`` received in full on or before their expected date, by
    expected date and supplier."""
    received: dict[tuple[str, int], list[tuple[dt.date, int]]] = defaultdict(list)
    for event in events:
        if event["event_type"] == "po_received":
            for line in event["lines"]:
                received[(str(event["po_id"]), int(line["line_no"]))].append(
                    (event_day(event), int(line["quantity"]))
                )
    groups: dict[tuple[dt.date, str], list[bool]] = defaultdict(list)
    for event in events:
        if event["event_type"] != "po_created":
            continue
        expected = dt.date.fromisoformat(str(event["expected_date"]))
        if expected > as_of:
            continue
        for line in event["lines"]:
            on_time = sum(
                qty
                for day, qty in received[(str(event["po_id"]), int(line["line_no"]))]
                if day <= expected
            )
            groups[(expected, str(event["supplier_id"]))].append(on_time >= int(line["quantity"]))
    return [
        {
            "expected_date": expected,
            "supplier_id": supplier,
            "po_lines": len(lines),
            "po_lines_otif": sum(lines),
            "otif_rate": ratio(sum(lines), len(lines)),
        }
        for (expected, supplier), lines in sorted(groups.items())
    ]


# --- everything at once ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What kpis.md says the lake holds after ``events``: gold rows and inventory position."""

    as_of: dt.date
    gold: dict[str, list[Row]]
    inventory_position: dict[tuple[str, str], int]


def compute(events: Iterable[Event], products: Mapping[str, Product]) -> Reference:
    """Every gold table and the inventory position from the accepted ``events``."""
    accepted = deduplicate(events)
    as_of = as_of_date(accepted)
    if as_of is None:
        raise ValueError("no events: the as-of date is undefined")
    orders = orders_of(accepted)
    gold = {
        "fill_rate_daily": fill_rate_daily(orders, as_of),
        "perfect_order_daily": perfect_order_daily(orders, as_of),
        "order_cycle_time_daily": order_cycle_time_daily(orders),
        "inventory_turns_monthly": inventory_turns_monthly(accepted, products, as_of),
        "returns_cost_daily": returns_cost_daily(accepted, products),
        "supplier_otif_daily": supplier_otif_daily(accepted, as_of),
    }
    return Reference(as_of, gold, inventory_position(accepted))
