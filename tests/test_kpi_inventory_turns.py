"""Inventory turns and days of supply on hand-built inventory and dispatch events.

The as-of date (2026-02-10) leaves February only partly covered: its period is 10 days.
Unit costs: A 2.00, B 5.00. Expected values are worked out by hand below.
"""

from __future__ import annotations

import datetime as dt

import pytest

from simulator.events import inventory_movement, inventory_snapshot, shipment_dispatched
from transforms.kpis.inventory_turns import END_OF_DAY_ON_HAND, end_of_day_on_hand
from transforms.testing import HandBuiltLake, same_rows

JAN, FEB = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
AS_OF = dt.date(2026, 2, 10)


def _move(event_id: str, time: str, location: str, sku: str, delta: int, kind="adjustment"):
    return inventory_movement(
        event_id=event_id, event_time=time, location_id=location, sku=sku,
        quantity_delta=delta, movement_type=kind, reference_id=f"ref-{event_id}",
    )  # fmt: skip


def _count(event_id: str, time: str, location: str, sku: str, on_hand: int):
    return inventory_snapshot(
        event_id=event_id, event_time=time, location_id=location, sku=sku, on_hand=on_hand
    )


def _dispatch(event_id: str, time: str, location: str, sku: str, quantity: int):
    return shipment_dispatched(
        event_id=event_id, event_time=time, shipment_id=f"S-{event_id}", order_id="O-1",
        ship_from=location, carrier="DHL", lines=[(1, sku, quantity)],
    )  # fmt: skip


RESTOCK = _move("m5", "2026-02-05T10:00:00Z", "DC-1", "A", +2, "return_restock")
INVENTORY = [
    # DC-1 / A: nothing known before 01-10 (0), +10 on 01-10 -> 10.
    _move("m1", "2026-01-10T08:00:00Z", "DC-1", "A", +10, "receipt"),
    # 01-20 12:00: a movement and a count at the same instant: the count (20) wins, then -1.
    _move("m2", "2026-01-20T12:00:00Z", "DC-1", "A", -5),
    _count("c1", "2026-01-20T12:00:00Z", "DC-1", "A", 20),
    _move("m3", "2026-01-20T13:00:00Z", "DC-1", "A", -1),
    _move("m4", "2026-01-25T09:00:00Z", "DC-1", "A", -4, "shipment"),  # -> 15
    RESTOCK,  # a returned item restocked -> 17
    # DC-1 / B: first known by a count of 8 on 02-03.
    _count("c2", "2026-02-03T07:00:00Z", "DC-1", "B", 8),
    # STORE-1 / A: a count of 5 on the last day of January, never dispatches.
    _count("c3", "2026-01-31T20:00:00Z", "STORE-1", "A", 5),
    RESTOCK,  # a duplicate delivery of the same event
]
DISPATCHES = [
    _dispatch("d1", "2026-01-25T09:00:00Z", "DC-1", "A", 4),  # cogs Jan 4 x 2 = 8
    _dispatch("d2", "2026-02-07T09:00:00Z", "DC-1", "B", 2),  # cogs Feb 2 x 5 = 10
    _dispatch("d3", "2026-02-08T09:00:00Z", "DC-2", "A", 3),  # cogs Feb 3 x 2 = 6, no stock known
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):  # type: ignore[no-untyped-def]
    built = HandBuiltLake(
        str(tmp_path_factory.mktemp("inventory") / "lake"),
        {"inventory": INVENTORY, "shipments": DISPATCHES},
        products=[("A", "Anvil", "tools", "2", "9"), ("B", "Bolt", "parts", "5", "12")],
    )
    yield built
    built.close()


def test_end_of_day_on_hand_replays_counts_and_movements(lake) -> None:
    expected = [
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 1, 10), on_hand_level=10),
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 1, 20), on_hand_level=19),
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 1, 25), on_hand_level=15),
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 2, 5), on_hand_level=17),
        dict(location_id="DC-1", sku="B", day=dt.date(2026, 2, 3), on_hand_level=8),
        dict(location_id="STORE-1", sku="A", day=dt.date(2026, 1, 31), on_hand_level=5),
    ]
    actual = lake.query(f"WITH {END_OF_DAY_ON_HAND} SELECT * FROM end_of_day_on_hand", as_of=AS_OF)
    assert same_rows(actual, expected)


def test_inventory_turns_monthly(lake) -> None:
    # DC-1 January: A is 0 x 9 days, 10 x 10 days (01-10..19), 19 x 5 (01-20..24),
    # 15 x 7 (01-25..31) = 300 unit-days x 2.00 = 600; B unknown (0).
    dc1_jan = 600 / 31
    # DC-1 February (10 days): A 15 x 4 + 17 x 6 = 162 x 2 = 324; B 8 x 8 days x 5 = 320.
    dc1_feb = (324 + 320) / 10
    # STORE-1: 5 units of A (10.00) from 01-31 on: 1 day in January, 10 in February.
    expected = [
        dict(month=JAN, location_id="DC-1", period_days=31, cogs=8.0, avg_inventory_value=dc1_jan,
            inventory_turns=8 / dc1_jan * 365 / 31, days_of_supply=dc1_jan / (8 / 31)),
        dict(month=FEB, location_id="DC-1", period_days=10, cogs=10.0, avg_inventory_value=dc1_feb,
            inventory_turns=10 / dc1_feb * 365 / 10, days_of_supply=dc1_feb / (10 / 10)),
        # Nothing dispatched: turns 0, days of supply undefined (divisor 0).
        dict(month=JAN, location_id="STORE-1", period_days=31, cogs=0.0,
            avg_inventory_value=10 / 31, inventory_turns=0.0, days_of_supply=None),
        dict(month=FEB, location_id="STORE-1", period_days=10, cogs=0.0,
            avg_inventory_value=10.0, inventory_turns=0.0, days_of_supply=None),
        # Dispatches without known stock: turns undefined (divisor 0), days of supply 0.
        dict(month=FEB, location_id="DC-2", period_days=10, cogs=6.0, avg_inventory_value=0.0,
            inventory_turns=None, days_of_supply=0.0),
    ]  # fmt: skip
    assert same_rows(lake.gold("inventory_turns_monthly", as_of=AS_OF), expected)


def test_a_month_rebuilt_alone_replays_from_the_last_count_before_it(lake) -> None:
    """An incremental refresh of February reads inventory from each pair's last count
    before February (DC-1/A: 01-20, STORE-1/A: 01-31) and gets the same rows."""
    from transforms.gold import GOLD_TABLES

    table = GOLD_TABLES["inventory_turns_monthly"]
    february = lake.engine.gold_rows(table, [FEB], AS_OF).to_pylist()
    whole = lake.gold("inventory_turns_monthly", as_of=AS_OF)
    assert len(february) == 3
    assert same_rows(february, [row for row in whole if row["month"] == FEB])
    levels = lake.query(
        f"WITH {end_of_day_on_hand(':as_of')} SELECT * FROM end_of_day_on_hand", as_of=AS_OF
    )
    assert same_rows(levels, [  # from the last count before the as-of day
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 1, 20), on_hand_level=19),
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 1, 25), on_hand_level=15),
        dict(location_id="DC-1", sku="A", day=dt.date(2026, 2, 5), on_hand_level=17),
        dict(location_id="DC-1", sku="B", day=dt.date(2026, 2, 3), on_hand_level=8),
        dict(location_id="STORE-1", sku="A", day=dt.date(2026, 1, 31), on_hand_level=5),
    ])  # fmt: skip
