"""Fill rate, perfect order and order cycle time on one hand-built week of events.

Expected rows are worked out by hand in the comments, not by the code under test.
"""

from __future__ import annotations

import datetime as dt

import pytest

from simulator.events import order_placed, shipment_delivered, shipment_dispatched
from transforms.testing import HandBuiltLake, same_rows

D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def _order(order_id: str, time: str, requested: str, lines, ship_from="DC-1", channel="online"):
    return order_placed(
        event_id=f"e-{order_id}", event_time=time, order_id=order_id, customer_id="C-1",
        channel=channel, ship_from=ship_from, requested_delivery_date=requested,
        lines=[(n, sku, qty, 9.99) for n, sku, qty in lines],
    )  # fmt: skip


def _dispatch(shipment_id: str, order_id: str, time: str, lines, ship_from="DC-1"):
    return shipment_dispatched(
        event_id=f"e-{shipment_id}-out", event_time=time, shipment_id=shipment_id,
        order_id=order_id, ship_from=ship_from, carrier="UPS", lines=lines,
    )  # fmt: skip


def _deliver(shipment_id: str, order_id: str, time: str, condition="ok", documents_ok=True):
    return shipment_delivered(
        event_id=f"e-{shipment_id}-in", event_time=time, shipment_id=shipment_id,
        order_id=order_id, condition=condition, documents_ok=documents_ok,
    )  # fmt: skip


ORDERS = [
    # O1: two lines, line 1 split over two shipments, all dispatched and delivered on time.
    _order("O1", "2026-03-02T10:00:00Z", "2026-03-05", [(1, "A", 10), (2, "B", 5)]),
    # O2: half dispatched by the requested date, the rest a day late (partial, late).
    _order("O2", "2026-03-02T11:00:00Z", "2026-03-04", [(1, "A", 4)]),
    # O3: never dispatched, due by the as-of date.
    _order("O3", "2026-03-02T12:00:00Z", "2026-03-05", [(1, "B", 3)]),
    # O4: on time and in full, but delivered damaged.
    _order("O4", "2026-03-02T09:00:00Z", "2026-03-04", [(1, "A", 2)], channel="b2b"),
    # O5: on time and in full, but with a document error.
    _order("O5", "2026-03-03T10:00:00Z", "2026-03-06", [(1, "A", 1)], channel="b2b"),
    # O6: not due before the as-of date, nothing dispatched yet.
    _order("O6", "2026-03-03T08:00:00Z", "2026-03-20", [(1, "C", 7)], "DC-2", "store"),
]
SHIPMENTS = [
    _dispatch("S1", "O1", "2026-03-03T08:00:00Z", [(1, "A", 6), (2, "B", 5)]),
    _dispatch("S2", "O1", "2026-03-04T09:00:00Z", [(1, "A", 4)]),
    _deliver("S1", "O1", "2026-03-04T12:00:00Z"),
    _deliver("S2", "O1", "2026-03-05T18:00:00Z"),
    _dispatch("S3", "O2", "2026-03-03T08:00:00Z", [(1, "A", 2)]),
    _dispatch("S4", "O2", "2026-03-05T08:00:00Z", [(1, "A", 2)]),
    _deliver("S3", "O2", "2026-03-04T10:00:00Z"),
    _deliver("S4", "O2", "2026-03-06T10:00:00Z"),  # the latest event: as-of 2026-03-06
    _dispatch("S5", "O4", "2026-03-03T08:00:00Z", [(1, "A", 2)]),
    _deliver("S5", "O4", "2026-03-04T15:00:00Z", condition="damaged"),
    _dispatch("S6", "O5", "2026-03-04T08:00:00Z", [(1, "A", 1)]),
    _deliver("S6", "O5", "2026-03-05T10:00:00Z", documents_ok=False),
]
AS_OF = dt.date(2026, 3, 6)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):  # type: ignore[no-untyped-def]
    # A producer retry of O1 and of S1's dispatch arrives later: each must count once.
    built = HandBuiltLake(
        str(tmp_path_factory.mktemp("orders") / "lake"),
        {"orders": [*ORDERS, ORDERS[0]], "shipments": [*SHIPMENTS, SHIPMENTS[0]]},
    )
    yield built
    built.close()


def test_fill_rate_daily_counts_units_dispatched_by_the_requested_date(lake) -> None:
    expected = [
        # O1 filled (10/10, 5/5); O2 2 of 4 by 03-04; O3 nothing: 3 orders, 1 filled,
        # lines 4 (2+1+1), 2 filled; units 22 ordered, 10+5+2+0 = 17 filled.
        dict(order_date=D2, ship_from="DC-1", channel="online", orders=3, orders_filled=1,
            lines=4, lines_filled=2, units_ordered=22, units_filled=17,
            order_fill_rate=1 / 3, line_fill_rate=0.5, unit_fill_rate=17 / 22),
        dict(order_date=D2, ship_from="DC-1", channel="b2b", orders=1, orders_filled=1,
            lines=1, lines_filled=1, units_ordered=2, units_filled=2,
            order_fill_rate=1.0, line_fill_rate=1.0, unit_fill_rate=1.0),
        dict(order_date=D3, ship_from="DC-1", channel="b2b", orders=1, orders_filled=1,
            lines=1, lines_filled=1, units_ordered=1, units_filled=1,
            order_fill_rate=1.0, line_fill_rate=1.0, unit_fill_rate=1.0),
        # O6 (DC-2, store) is not due until 03-20: not counted, so its group has no row.
    ]  # fmt: skip
    assert same_rows(lake.gold("fill_rate_daily", as_of=AS_OF), expected)


def test_fill_rate_daily_counts_only_orders_due_by_the_as_of_date(lake) -> None:
    expected = [
        # As of 03-04 only O2 and O4 (requested 03-04) are due. O2: 2 of 4 units by 03-04.
        dict(order_date=D2, ship_from="DC-1", channel="online", orders=1, orders_filled=0,
            lines=1, lines_filled=0, units_ordered=4, units_filled=2,
            order_fill_rate=0.0, line_fill_rate=0.0, unit_fill_rate=0.5),
        dict(order_date=D2, ship_from="DC-1", channel="b2b", orders=1, orders_filled=1,
            lines=1, lines_filled=1, units_ordered=2, units_filled=2,
            order_fill_rate=1.0, line_fill_rate=1.0, unit_fill_rate=1.0),
    ]  # fmt: skip
    assert same_rows(lake.gold("fill_rate_daily", as_of=dt.date(2026, 3, 4)), expected)


def test_perfect_order_daily_counts_due_orders_only(lake) -> None:
    expected = [
        # O1 perfect; O2 delivered late; O3 never delivered. O6 is not due yet.
        dict(order_date=D2, ship_from="DC-1", channel="online", orders=3, perfect_orders=1,
            perfect_order_rate=1 / 3),
        dict(order_date=D2, ship_from="DC-1", channel="b2b", orders=1, perfect_orders=0,
            perfect_order_rate=0.0),  # O4 damaged
        dict(order_date=D3, ship_from="DC-1", channel="b2b", orders=1, perfect_orders=0,
            perfect_order_rate=0.0),  # O5 document error
    ]  # fmt: skip
    assert same_rows(lake.gold("perfect_order_daily", as_of=AS_OF), expected)


def test_perfect_order_daily_before_anything_is_due_is_empty(lake) -> None:
    assert lake.gold("perfect_order_daily", as_of=dt.date(2026, 3, 3)) == []


def test_order_cycle_time_daily_averages_fully_delivered_orders(lake) -> None:
    expected = [
        # O1: 03-02 10:00 -> 03-05 18:00 = 80 h; O2: 03-02 11:00 -> 03-06 10:00 = 95 h.
        dict(order_date=D2, ship_from="DC-1", channel="online", orders_delivered=2,
            avg_cycle_time_days=(80 + 95) / 2 / 24),
        # O4: 03-02 09:00 -> 03-04 15:00 = 54 h (damaged still counts as delivered).
        dict(order_date=D2, ship_from="DC-1", channel="b2b", orders_delivered=1,
            avg_cycle_time_days=54 / 24),
        # O5: 03-03 10:00 -> 03-05 10:00 = 48 h.
        dict(order_date=D3, ship_from="DC-1", channel="b2b", orders_delivered=1,
            avg_cycle_time_days=2.0),
    ]  # fmt: skip
    assert same_rows(lake.gold("order_cycle_time_daily", as_of=AS_OF), expected)


def test_perfect_order_detail_gives_each_order_its_reasons_and_cycle_time(lake) -> None:
    rows = {r["order_id"]: r for r in lake.gold("perfect_order_detail", as_of=AS_OF)}
    reasons = ("is_due", "is_short", "is_late", "is_damaged", "has_document_errors", "is_perfect")
    expected = {
        # id: (due, short, late, damaged, documents, perfect), cycle time in days
        "O1": ((True, False, False, False, False, True), 80 / 24),
        "O2": ((True, False, True, False, False, False), 95 / 24),
        "O3": ((True, True, False, False, False, False), None),  # nothing delivered
        "O4": ((True, False, False, True, False, False), 54 / 24),
        "O5": ((True, False, False, False, True, False), 2.0),
        "O6": ((False, True, False, False, False, False), None),  # not due yet
    }
    assert {
        order: (tuple(row[flag] for flag in reasons), row["cycle_time_days"])
        for order, row in rows.items()
    } == expected
    # The cycle-time KPI averages exactly the orders the detail table gives a cycle time.
    kpi = lake.gold("order_cycle_time_daily", as_of=AS_OF)
    assert sum(r["orders_delivered"] for r in kpi) == sum(
        1 for r in rows.values() if r["cycle_time_days"] is not None
    )
