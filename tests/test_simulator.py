"""The simulator: a consistent, realistic, deterministic supply chain (no Kafka needed).

The consistency checks replay the produced messages the way downstream will read them, so
they fail when the history contradicts itself (shipped more than ordered, negative stock,
returns before delivery...), not merely when a number changes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scm.contracts import key_for, validate_event
from scm.errors import ScmError
from simulator import Record, SimulationOptions, generate_history, read_json_lines, simulate
from simulator.demand import DAY_SECONDS, Demand
from simulator.history import run_history
from simulator.live import LiveStream
from simulator.malformed import MALFORMED_KINDS
from simulator.world import Product, build_world
from tests.conftest import make_settings

START = dt.date(2026, 3, 2)
EVENT_TYPES = {
    "order_placed",
    "shipment_dispatched",
    "shipment_delivered",
    "inventory_snapshot",
    "inventory_movement",
    "return_received",
    "po_created",
    "po_received",
}


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def unique_events(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Events once each (as silver sees them), in production order."""
    seen: set[str] = set()
    out = []
    for record in records:
        event = json.loads(record.value)
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out


def assert_consistent(records: Sequence[Record]) -> None:
    """Every cross-event invariant downstream relies on (the issue's consistency list)."""
    events = unique_events(records)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_type[event["event_type"]].append(event)

    # Orders -> shipments: lines belong to order lines, never more than ordered.
    orders = {e["order_id"]: e for e in by_type["order_placed"]}
    assert len(orders) == len(by_type["order_placed"]), "order ids are unique"
    ordered = {
        (o["order_id"], line["line_no"]): (line["sku"], line["quantity"])
        for o in orders.values()
        for line in o["lines"]
    }
    shipped: Counter[tuple[str, int]] = Counter()
    shipments = {}
    for shipment in by_type["shipment_dispatched"]:
        order = orders[shipment["order_id"]]
        assert _time(shipment["event_time"]) > _time(order["event_time"])
        assert shipment["ship_from"] == order["ship_from"]
        assert shipment["shipment_id"] not in shipments
        shipments[shipment["shipment_id"]] = shipment
        for line in shipment["lines"]:
            key = (shipment["order_id"], line["line_no"])
            assert key in ordered, f"{shipment['shipment_id']} ships a line nobody ordered"
            assert line["sku"] == ordered[key][0]
            shipped[key] += line["quantity"]
    for key, quantity in shipped.items():
        assert quantity <= ordered[key][1], f"{key} shipped {quantity} > ordered {ordered[key][1]}"

    # Shipments -> deliveries: one delivery per dispatched shipment, after its dispatch.
    delivered: Counter[tuple[str, int]] = Counter()
    delivered_at: dict[tuple[str, int], dt.datetime] = {}
    deliveries = set()
    for delivery in by_type["shipment_delivered"]:
        shipment = shipments[delivery["shipment_id"]]
        assert delivery["shipment_id"] not in deliveries
        deliveries.add(delivery["shipment_id"])
        assert delivery["order_id"] == shipment["order_id"]
        assert _time(delivery["event_time"]) > _time(shipment["event_time"])
        for line in shipment["lines"]:
            key = (shipment["order_id"], line["line_no"])
            delivered[key] += line["quantity"]
            first = delivered_at.get(key)
            delivered_at[key] = (
                min(first, _time(delivery["event_time"]))
                if first
                else _time(delivery["event_time"])
            )

    # Deliveries -> returns: never more than delivered for the order line, after delivery.
    returned: Counter[tuple[str, int]] = Counter()
    returns = {}
    for item in by_type["return_received"]:
        key = (item["order_id"], item["line_no"])
        assert key in delivered_at, f"{item['return_id']} returns an undelivered line"
        assert item["sku"] == ordered[key][0]
        assert _time(item["event_time"]) >= delivered_at[key]
        returned[key] += item["quantity"]
        assert returned[key] <= delivered[key], f"{key} returned more than delivered"
        returns[item["return_id"]] = item

    # Purchase orders -> receipts: lines belong to PO lines, never more than ordered.
    po_lines = {
        (po["po_id"], line["line_no"]): (line["sku"], line["quantity"], po)
        for po in by_type["po_created"]
        for line in po["lines"]
    }
    received: Counter[tuple[str, int]] = Counter()
    for receipt in by_type["po_received"]:
        for line in receipt["lines"]:
            key = (receipt["po_id"], line["line_no"])
            assert key in po_lines, f"{receipt['po_id']} receives a line nobody ordered"
            sku, quantity, po = po_lines[key]
            assert line["sku"] == sku
            assert _time(receipt["event_time"]) > _time(po["event_time"])
            received[key] += line["quantity"]
            assert received[key] <= quantity

    # Inventory movements mirror the documents they reference, unit for unit.
    movements: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for movement in by_type["inventory_movement"]:
        movements[(movement["movement_type"], movement["reference_id"])][
            f"{movement['location_id']}:{movement['sku']}"
        ] += movement["quantity_delta"]
    for shipment in shipments.values():
        expected: Counter[str] = Counter()
        for line in shipment["lines"]:
            expected[f"{shipment['ship_from']}:{line['sku']}"] -= line["quantity"]
        assert movements[("shipment", shipment["shipment_id"])] == expected
    for kind, reference in movements:
        if kind == "shipment":
            assert reference in shipments
        elif kind == "return_restock":
            item = returns[reference]
            assert item["disposition"] == "restock"
            location = orders[item["order_id"]]["ship_from"]
            assert movements[(kind, reference)] == {f"{location}:{item['sku']}": item["quantity"]}
        elif kind == "receipt":
            assert any(key[0] == reference for key in received)
    receipts_by_po: dict[str, Counter[str]] = defaultdict(Counter)
    for (po_id, line_no), quantity in received.items():
        sku, _, po = po_lines[(po_id, line_no)]
        receipts_by_po[po_id][f"{po['ship_to']}:{sku}"] += quantity
    for po_id, expected in receipts_by_po.items():
        assert movements[("receipt", po_id)] == expected

    # Replaying inventory in event-time order: never negative; counts equal the replay; no
    # movement shares a timestamp with a count of the same (location, sku).
    inventory = [e for e in events if e["event_type"].startswith("inventory_")]
    inventory.sort(key=lambda e: _time(e["event_time"]))  # stable: ties keep stream order
    level: dict[str, int] = {}
    snapshot_times: dict[str, set[dt.datetime]] = defaultdict(set)
    movement_times: dict[str, set[dt.datetime]] = defaultdict(set)
    for event in inventory:
        stock_key = f"{event['location_id']}:{event['sku']}"
        if event["event_type"] == "inventory_snapshot":
            if stock_key in level:
                assert event["on_hand"] == level[stock_key], (
                    f"count of {stock_key} differs from replay"
                )
            level[stock_key] = event["on_hand"]
            snapshot_times[stock_key].add(_time(event["event_time"]))
        else:
            assert stock_key in level, f"{stock_key} moves before its opening count"
            level[stock_key] += event["quantity_delta"]
            assert level[stock_key] >= 0, f"{stock_key} goes negative at {event['event_time']}"
            movement_times[stock_key].add(_time(event["event_time"]))
    for stock_key, times in snapshot_times.items():
        assert not times & movement_times[stock_key], (
            f"{stock_key}: a count shares a second with a move"
        )


@pytest.fixture(scope="module")
def two_weeks() -> list[Record]:
    return generate_history(SimulationOptions(days=14, seed=3, start=START))


@pytest.fixture(scope="module")
def five_days_malformed() -> list[Record]:
    return generate_history(
        SimulationOptions(days=5, seed=11, start=START, malformed_fraction=0.01)
    )


@pytest.fixture(scope="module")
def five_days() -> list[Record]:
    return generate_history(SimulationOptions(days=5, seed=11, start=START))


def test_history_is_consistent(two_weeks: list[Record]) -> None:
    assert_consistent(two_weeks)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    days=st.integers(min_value=1, max_value=4),
    orders_per_day=st.integers(min_value=1, max_value=120),
)
def test_any_small_history_is_consistent(seed: int, days: int, orders_per_day: int) -> None:
    options = SimulationOptions(days=days, seed=seed, start=START, orders_per_day=orders_per_day)
    assert_consistent(generate_history(options))


def test_every_message_meets_the_contract(two_weeks: list[Record]) -> None:
    for record in two_weeks:
        assert validate_event(record.topic, record.value) is None, record
        assert record.key == key_for(json.loads(record.value))


def test_all_event_types_appear_in_five_days(five_days: list[Record]) -> None:
    assert {e["event_type"] for e in unique_events(five_days)} == EVENT_TYPES


def test_two_default_days_have_every_event_type() -> None:
    # a day-one return needs a same-day courier refusal: two days make it near certain
    records = generate_history(SimulationOptions(days=2, seed=7, start=START))
    assert {e["event_type"] for e in unique_events(records)} == EVENT_TYPES


def test_history_exercises_every_kpi(two_weeks: list[Record]) -> None:
    """Each KPI of kpis.md has both sides: late and on time, short and full, and so on."""
    events = unique_events(two_weeks)
    orders = {e["order_id"]: e for e in events if e["event_type"] == "order_placed"}
    shipments = {e["shipment_id"]: e for e in events if e["event_type"] == "shipment_dispatched"}
    deliveries = [e for e in events if e["event_type"] == "shipment_delivered"]
    returns = [e for e in events if e["event_type"] == "return_received"]
    movements = [e for e in events if e["event_type"] == "inventory_movement"]
    pos = {e["po_id"]: e for e in events if e["event_type"] == "po_created"}
    receipts = [e for e in events if e["event_type"] == "po_received"]

    assert {o["channel"] for o in orders.values()} == {"online", "store", "b2b"}
    assert {o["ship_from"] for o in orders.values()} == {"DC-1", "DC-2", "DC-3"}
    late = [
        d for d in deliveries
        if d["event_time"][:10] > orders[d["order_id"]]["requested_delivery_date"]
    ]  # fmt: skip
    assert 0.02 < len(late) / len(deliveries) < 0.3
    assert {d["condition"] for d in deliveries} == {"ok", "damaged"}
    assert {d["documents_ok"] for d in deliveries} == {True, False}
    assert len(deliveries) < len(shipments), "some shipments are still on the road"
    lines_per_order_line = Counter(
        (s["order_id"], line["line_no"]) for s in shipments.values() for line in s["lines"]
    )
    assert max(lines_per_order_line.values()) > 1, "backorders split a line over shipments"
    shipments_per_order = Counter(s["order_id"] for s in shipments.values())
    assert max(shipments_per_order.values()) > 1
    assert {r["reason"] for r in returns} == {
        "damaged", "defective", "wrong_item", "not_needed", "late_delivery"
    }  # fmt: skip
    assert {r["disposition"] for r in returns} == {"restock", "refurbish", "scrap"}
    assert all(r["refund_amount"] >= 0 and r["processing_cost"] > 0 for r in returns)
    assert {m["movement_type"] for m in movements} == {
        "receipt", "shipment", "return_restock", "adjustment", "transfer_in", "transfer_out"
    }  # fmt: skip
    received: Counter[tuple[str, int]] = Counter()
    on_time: Counter[tuple[str, int]] = Counter()
    for receipt in receipts:
        for line in receipt["lines"]:
            received[(receipt["po_id"], line["line_no"])] += line["quantity"]
            if receipt["event_time"][:10] <= pos[receipt["po_id"]]["expected_date"]:
                on_time[(receipt["po_id"], line["line_no"])] += line["quantity"]
    as_of = max(e["event_time"][:10] for e in events)
    due = [
        ((po["po_id"], line["line_no"]), line["quantity"])
        for po in pos.values()
        if po["expected_date"] <= as_of
        for line in po["lines"]
    ]
    assert any(on_time[key] >= quantity for key, quantity in due), "some PO lines are OTIF"
    assert any(on_time[key] < quantity for key, quantity in due), "some are late or short"
    assert any(0 < received[key] < quantity for key, quantity in due), "some arrive short"
    assert max(Counter(r["po_id"] for r in receipts).values()) > 1, "some arrive in parts"
    assert len(pos) > len({r["po_id"] for r in receipts}), "some POs are still open"
    money = [line["unit_price"] for o in orders.values() for line in o["lines"]]
    money += [r["refund_amount"] for r in returns] + [r["processing_cost"] for r in returns]
    assert all(round(amount, 2) == amount for amount in money)


def test_events_come_in_event_time_order(two_weeks: list[Record]) -> None:
    times = [_time(e["event_time"]) for e in unique_events(two_weeks)]
    assert times == sorted(times)
    assert times[0] == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert times[-1] < dt.datetime(2026, 3, 16, tzinfo=dt.UTC)


def test_retries_resend_identical_bytes_shortly_after(two_weeks: list[Record]) -> None:
    first_seen: dict[str, int] = {}
    retries = 0
    for position, record in enumerate(two_weeks):
        event_id = json.loads(record.value)["event_id"]
        if event_id in first_seen:
            retries += 1
            original = two_weeks[first_seen[event_id]]
            assert record == original, "a retry is the same message, byte for byte"
            assert position - first_seen[event_id] <= 25
        else:
            first_seen[event_id] = position
    assert 0.002 < retries / len(two_weeks) < 0.01


def test_same_options_give_the_same_bytes(five_days: list[Record]) -> None:
    again = generate_history(SimulationOptions(days=5, seed=11, start=START))
    assert again == five_days
    other_seed = generate_history(SimulationOptions(days=5, seed=12, start=START))
    assert other_seed != five_days
    other_start = generate_history(
        SimulationOptions(days=5, seed=11, start=START + dt.timedelta(days=1))
    )
    ids = {e["event_id"] for e in unique_events(five_days)}
    assert not ids & {e["event_id"] for e in unique_events(other_start)}
    orders = {e.get("order_id") for e in unique_events(five_days)} - {None}
    assert not orders & {e.get("order_id") for e in unique_events(other_start)}


def test_a_longer_history_starts_with_the_shorter_one(five_days: list[Record]) -> None:
    longer = generate_history(SimulationOptions(days=8, seed=11, start=START))
    horizon = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
    prefix = [e for e in unique_events(longer) if _time(e["event_time"]) < horizon]
    assert prefix == unique_events(five_days)


def test_malformed_messages_are_extra_copies_that_fail_validation(
    five_days: list[Record], five_days_malformed: list[Record]
) -> None:
    remaining = Counter(five_days)
    clean, malformed = [], []
    for record in five_days_malformed:
        if remaining[record]:
            remaining[record] -= 1
            clean.append(record)
        else:
            malformed.append(record)
    assert clean == five_days, "dropping the malformed copies gives the clean history back"
    assert 0.005 < len(malformed) / len(five_days) < 0.02
    for record in malformed:
        assert validate_event(record.topic, record.value) is not None, record


def test_every_malformed_kind_is_rejected() -> None:
    options = SimulationOptions(days=2, seed=5, start=START, malformed_fraction=0.2)
    history = run_history(options)
    assert set(history.feed.malformed.kinds) == set(MALFORMED_KINDS)
    clean = Counter(generate_history(SimulationOptions(days=2, seed=5, start=START)))
    rejected = 0
    for record in history.records:
        if clean[record]:
            clean[record] -= 1
        else:
            assert validate_event(record.topic, record.value) is not None, record
            rejected += 1
    assert rejected == history.feed.malformed.malformed


def test_output_file_round_trips_and_master_data_lands(tmp_path: Path) -> None:
    options = SimulationOptions(
        days=3, seed=2, start=START, malformed_fraction=0.05, output=str(tmp_path / "h.jsonl"),
        progress=False,
    )  # fmt: skip
    settings = make_settings(tmp_path)
    assert simulate(settings, options) == 0
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    assert all(set(json.loads(line)) <= {"topic", "key", "value", "value_b64"} for line in lines)
    assert any("value_b64" in json.loads(line) for line in lines), "invalid UTF-8 is kept"
    records = read_json_lines(str(tmp_path / "h.jsonl"))
    assert records == generate_history(options)

    landing = Path(settings.lake) / "landing"
    tables = {}
    for name, header in {
        "products": ["sku", "name", "category", "unit_cost", "unit_price"],
        "locations": ["location_id", "name", "type", "region"],
        "suppliers": ["supplier_id", "name", "country", "lead_time_days"],
        "customers": ["customer_id", "name", "segment", "region"],
    }.items():
        with open(landing / f"{name}.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == header
        tables[name] = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert {row["type"] for row in tables["locations"].values()} == {"dc", "store"}
    assert all(
        float(p["unit_price"]) > float(p["unit_cost"]) > 0 for p in tables["products"].values()
    )
    for event in unique_events([r for r in records if validate_event(r.topic, r.value) is None]):
        for line in event.get("lines", []):
            assert line["sku"] in tables["products"]
        for field, table in (
            ("customer_id", "customers"), ("supplier_id", "suppliers"), ("ship_from", "locations"),
            ("location_id", "locations"), ("ship_to", "locations"), ("sku", "products"),
        ):  # fmt: skip
            if field in event:
                assert event[field] in tables[table], (field, event[field])


def test_default_scale_is_about_a_hundred_thousand_messages() -> None:
    started = time.process_time()  # CPU time: other work on the machine does not count
    records = generate_history(SimulationOptions(start=START))
    assert 80_000 < len(records) < 120_000
    assert time.process_time() - started < 15


def _run_live(stream: LiveStream, wall_start: float, seconds: int) -> list[list[Record]]:
    """Drive the live stream with a fake clock: the records of each wall-clock second."""
    per_second = []
    for second in range(seconds):
        records: list[Record] = []
        for tick in range(1, 11):
            records += stream.tick(wall_start + second + tick / 10)
        per_second.append(records)
    per_second[-1] += stream.drain()
    return per_second


def test_live_continues_the_history_at_the_requested_rate() -> None:
    options = SimulationOptions(days=3, seed=4, start=START, live=True, rate=40.0)
    history = run_history(options)
    wall_start = dt.datetime(2026, 3, 5, 9, 30, tzinfo=dt.UTC).timestamp()
    per_second = _run_live(LiveStream(options, history, wall_start), wall_start, 300)
    per_minute = [sum(len(r) for r in per_second[i : i + 60]) / 60 for i in range(0, 300, 60)]
    assert all(30 < rate < 50 for rate in per_minute), per_minute  # steady, nights included
    live = [record for records in per_second for record in records]
    times = [_time(e["event_time"]).timestamp() for e in unique_events(live)]
    assert times == sorted(times)
    assert wall_start <= times[0] and times[-1] <= wall_start + 300
    assert all(validate_event(r.topic, r.value) is None for r in live)
    assert_consistent(history.records + live)


def test_live_without_history_opens_with_a_full_count() -> None:
    options = SimulationOptions(days=0, seed=4, live=True, rate=20.0)
    wall_start = dt.datetime(2026, 3, 5, 9, 30, tzinfo=dt.UTC).timestamp()
    live = sum(_run_live(LiveStream(options, None, wall_start), wall_start, 120), [])
    counts = [e for e in unique_events(live) if e["event_type"] == "inventory_snapshot"]
    assert len({(e["location_id"], e["sku"]) for e in counts}) == 3 * 240
    assert {e["event_type"] for e in unique_events(live)} >= {"order_placed", "shipment_dispatched"}
    assert_consistent(live)


def test_live_refuses_a_history_that_ends_in_the_future() -> None:
    options = SimulationOptions(days=2, seed=4, start=START, live=True)
    history = run_history(options)
    with pytest.raises(ScmError, match="drop --start"):
        LiveStream(options, history, dt.datetime(2026, 3, 3, tzinfo=dt.UTC).timestamp())


def test_live_refuses_a_file() -> None:
    with pytest.raises(ScmError, match="--live needs Kafka; drop --output"):
        SimulationOptions(live=True, output="x.jsonl").validate()


def test_unreachable_broker_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bootstrap="127.0.0.1:1")
    with pytest.raises(ScmError, match=r"cannot reach Kafka at 127\.0\.0\.1:1: start it"):
        simulate(settings, SimulationOptions(days=1, progress=False))


def test_each_sku_demand_follows_its_own_trend() -> None:
    """Over a quarter the fastest-rising best-seller sells clearly more, the fastest-falling
    clearly less, while the total stays level: forecasting on the demo has trends to find."""
    world = build_world(7)
    demand = Demand(world, 400, random.Random("trend-test"))
    first = START.toordinal() - dt.date(1970, 1, 1).toordinal()

    def lines(days: range) -> Counter[str]:
        counts: Counter[str] = Counter()
        for day in days:
            for request in demand.orders_for_day(day * DAY_SECONDS):
                counts.update(sku for sku, _, _ in request.lines)
        return counts

    early, late = lines(range(first, first + 28)), lines(range(first + 62, first + 90))
    sellers = [p for p in world.products if p.popularity_rank < 30]

    def expected(product: Product) -> float:
        return product.popularity_on(first + 76) / product.popularity_on(first + 14)

    rising, falling = max(sellers, key=expected), min(sellers, key=expected)
    assert expected(rising) > 1.3 and expected(falling) < 0.8
    assert late[rising.sku] / early[rising.sku] > 1.2
    assert late[falling.sku] / early[falling.sku] < 0.85
    assert 0.9 < sum(late.values()) / sum(early.values()) < 1.1
