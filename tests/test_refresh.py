"""``scm refresh`` end to end over real Delta tables: incremental rounds equal a full rebuild.

Round 1 builds everything. Round 2 brings late events for earlier days, a retry of an
event already counted and one event that moves the as-of date: exactly the partitions those
touch are replaced. A full rebuild then gives the same gold tables, and a refresh without new
data writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from deltalake import DeltaTable

from scm.cli import main
from scm.lake import Lake
from scm.settings import Settings
from simulator.events import (
    inventory_movement,
    inventory_snapshot,
    order_placed,
    po_created,
    po_received,
    return_received,
    shipment_delivered,
    shipment_dispatched,
)
from tests.conftest import make_settings
from transforms.gold import GOLD_TABLES
from transforms.refresh import RefreshSummary, refresh
from transforms.silver import SILVER_TABLES
from transforms.testing import append_bronze

# A cold first refresh starts every stream and Delta code path once; on a shared 2-core
# machine that alone can take minutes, so this module gets twice the default timeout.
pytestmark = [pytest.mark.spark, pytest.mark.timeout(1200)]

PRODUCTS = "sku,name,category,unit_cost,unit_price\nA,Anvil,tools,2,9\nB,Bolt,parts,5,12\n"


def _order(order_id: str, time: str, requested: str, quantity: int = 4):  # type: ignore[no-untyped-def]
    return order_placed(
        event_id=f"e-{order_id}", event_time=time, order_id=order_id, customer_id="C-1",
        channel="online", ship_from="DC-1", requested_delivery_date=requested,
        lines=[(1, "A", quantity, 9.0)],
    )  # fmt: skip


def _stock(event_id: str, time: str, delta: int | None = None, on_hand: int | None = None):  # type: ignore[no-untyped-def]
    if on_hand is not None:
        return inventory_snapshot(
            event_id=event_id, event_time=time, location_id="DC-1", sku="A", on_hand=on_hand
        )
    return inventory_movement(
        event_id=event_id, event_time=time, location_id="DC-1", sku="A",
        quantity_delta=delta or 0, movement_type="adjustment", reference_id="count-1",
    )  # fmt: skip


ROUND_1 = {
    "orders": [
        _order("O1", "2026-03-02T10:00:00Z", "2026-03-04"),
        _order("O2", "2026-03-03T10:00:00Z", "2026-03-05"),
        _order("O3", "2026-03-01T10:00:00Z", "2026-03-05"),  # never shipped
    ],
    "shipments": [
        shipment_dispatched(
            event_id="e-S1-out", event_time="2026-03-03T08:00:00Z", shipment_id="S1",
            order_id="O1", ship_from="DC-1", carrier="UPS", lines=[(1, "A", 4)],
        ),
        shipment_delivered(
            event_id="e-S1-in", event_time="2026-03-04T08:00:00Z", shipment_id="S1",
            order_id="O1", condition="ok", documents_ok=True,
        ),
    ],
    "inventory": [
        _stock("c1", "2026-02-20T08:00:00Z", on_hand=10),
        _stock("m1", "2026-03-03T08:00:00Z", delta=-4),
    ],
    "returns": [
        return_received(
            event_id="r1", event_time="2026-03-03T12:00:00Z", return_id="R1", order_id="O1",
            line_no=1, sku="A", quantity=1, reason="damaged", disposition="restock",
            refund_amount=9.0, processing_cost=1.5,
        )
    ],
    "procurement": [
        po_created(
            event_id="p1", event_time="2026-03-01T08:00:00Z", po_id="PO1", supplier_id="SUP-1",
            ship_to="DC-1", expected_date="2026-03-04", lines=[(1, "A", 10, 2.0)],
        ),
        po_received(
            event_id="g1", event_time="2026-03-04T09:00:00Z", po_id="PO1", lines=[(1, "A", 10)]
        ),
    ],
}  # fmt: skip
# The latest event of round 1 is on 2026-03-04: the as-of date.

ROUND_2 = {
    # A late order for 03-02, and a retry of O1 already counted in round 1.
    "orders": [
        _order("O0", "2026-03-02T15:00:00Z", "2026-03-03", quantity=2),
        ROUND_1["orders"][0],
    ],
    "inventory": [
        # A late movement in February: February's and every later month's on-hand change.
        _stock("m0", "2026-02-25T08:00:00Z", delta=+5),
        # A count on 03-06 moves the as-of date: O3 (03-01) and O2 (03-03) become due.
        _stock("c2", "2026-03-06T08:00:00Z", on_hand=7),
    ],
}


def _append(spark, lake: Lake, events: dict[str, list[dict[str, object]]], offset: int) -> None:  # type: ignore[no-untyped-def]
    for entity, batch in events.items():
        append_bronze(lake, entity, batch, first_offset=offset)


def _gold(spark, lake: Lake) -> dict[str, list[tuple[object, ...]]]:  # type: ignore[no-untyped-def]
    return {
        name: sorted(
            (tuple(row) for row in spark.read.format("delta").load(lake.gold(name)).collect()),
            key=repr,
        )
        for name in GOLD_TABLES
    }


def _versions(lake: Lake) -> dict[str, int]:
    return {name: DeltaTable(lake.gold(name)).version() for name in GOLD_TABLES}


def _partitions(summary: RefreshSummary) -> dict[str, int | None]:
    return {table.table: table.partitions for table in summary.gold}


@dataclass
class Round:
    """The lake after a refresh round, what the refresh reported and the gold versions."""

    settings: Settings
    lake: Lake
    summary: RefreshSummary
    versions: dict[str, int]


# Two module fixtures, so each round's refresh is timed with the test that first needs it.
@pytest.fixture(scope="module")
def first_round(spark, tmp_path_factory: pytest.TempPathFactory) -> Round:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("refresh"))
    lake = Lake.at(settings.lake)
    Path(lake.landing).mkdir(parents=True)
    Path(lake.landing, "products.csv").write_text(PRODUCTS)
    _append(spark, lake, ROUND_1, offset=0)
    summary = refresh(spark, settings, ingest=False)
    return Round(settings, lake, summary, _versions(lake))


@pytest.fixture(scope="module")
def second_round(spark, first_round: Round) -> Round:  # type: ignore[no-untyped-def]
    _append(spark, first_round.lake, ROUND_2, offset=100)
    summary = refresh(spark, first_round.settings, ingest=False)
    return Round(first_round.settings, first_round.lake, summary, _versions(first_round.lake))


def test_first_refresh_builds_every_table(spark, first_round: Round) -> None:  # type: ignore[no-untyped-def]
    assert first_round.summary.as_of == dt.date(2026, 3, 4)
    assert _partitions(first_round.summary) == {name: None for name in GOLD_TABLES}
    assert first_round.summary.silver_rows["order_lines"] == 3
    fill_rate = spark.read.format("delta").option("versionAsOf", 0)
    assert {
        (r.order_date, r.orders, r.orders_filled)
        for r in fill_rate.load(first_round.lake.gold("fill_rate_daily")).collect()
    } == {(dt.date(2026, 3, 2), 1, 1)}  # O1; O2 and O3 are not due before 03-05


def test_late_events_rebuild_exactly_the_partitions_they_touch(  # type: ignore[no-untyped-def]
    spark, first_round: Round, second_round: Round
) -> None:
    second, lake = second_round.summary, second_round.lake
    assert second.as_of == dt.date(2026, 3, 6)
    assert second.silver_rows["order_lines"] == 1  # the retry of O1 is not a new row
    assert _partitions(second) == {
        "fill_rate_daily": 3,  # 03-02 (late O0); 03-01 and 03-03 newly due
        "perfect_order_daily": 3,  # 03-02 (late O0); 03-01 and 03-03 newly due
        "order_cycle_time_daily": 1,  # 03-02
        "inventory_turns_monthly": 2,  # February (late movement) and March
        "order_line_fulfilment": 3,  # the detail rows behind fill rate, on the same days
        "perfect_order_detail": 3,  # the detail rows behind perfect order, on the same days
        "demand_daily": 1,  # 03-02 (late O0)
        # Snapshots, rebuilt whole by any refresh that brings something.
        "replenishment_plan": None,
        "demand_forecast": None,
        "forecast_accuracy": None,
    }
    changed = {
        name for name in GOLD_TABLES if second_round.versions[name] != first_round.versions[name]
    }
    assert changed == set(_partitions(second))  # returns and OTIF untouched
    history = DeltaTable(lake.gold("fill_rate_daily")).history(1)[0]
    assert "2026-03-02" in history["operationParameters"]["predicate"]
    assert "2026-03-04" not in history["operationParameters"]["predicate"]
    fill_rate = {
        r.order_date: (r.orders, r.orders_filled, r.units_ordered, r.units_filled)
        for r in spark.read.format("delta").load(lake.gold("fill_rate_daily")).collect()
    }
    assert fill_rate == {
        dt.date(2026, 3, 1): (1, 0, 4, 0),  # O3, due 03-05, never shipped
        # O1 filled (counted once despite its retry), O0's 2 units never dispatched.
        dt.date(2026, 3, 2): (2, 1, 6, 4),
        dt.date(2026, 3, 3): (1, 0, 4, 0),  # O2, due 03-05, never shipped
    }
    perfect = {
        r.order_date: (r.orders, r.perfect_orders)
        for r in spark.read.format("delta").load(lake.gold("perfect_order_daily")).collect()
    }
    assert perfect == {
        dt.date(2026, 3, 1): (1, 0),  # O3, due 03-05
        dt.date(2026, 3, 2): (2, 1),  # O1 perfect, O0 never shipped
        dt.date(2026, 3, 3): (1, 0),  # O2, due 03-05
    }


def test_incremental_refreshes_equal_a_full_rebuild(spark, second_round: Round) -> None:  # type: ignore[no-untyped-def]
    incremental = _gold(spark, second_round.lake)
    full = refresh(spark, second_round.settings, ingest=False, full=True)
    assert _partitions(full) == {name: None for name in GOLD_TABLES}
    assert full.as_of == dt.date(2026, 3, 6)
    assert full.silver_rows["order_lines"] == 4  # O0-O3, each once
    assert _gold(spark, second_round.lake) == incremental


def test_refresh_without_new_data_writes_nothing(spark, second_round: Round) -> None:  # type: ignore[no-untyped-def]
    lake = second_round.lake
    versions = _versions(lake)
    silver_versions = {name: DeltaTable(lake.silver(name)).version() for name in SILVER_TABLES}
    # A bronze commit that adds no file (table properties, a vacuum) is no new data either.
    DeltaTable(lake.bronze("orders")).alter.set_table_properties({"delta.checkpointInterval": "50"})
    idle = refresh(spark, second_round.settings, ingest=False)
    assert not idle.changed
    assert _versions(lake) == versions
    assert {name: DeltaTable(lake.silver(name)).version() for name in SILVER_TABLES} == (
        silver_versions
    )


def test_a_gold_table_from_an_older_definition_is_rebuilt_whole(spark, second_round: Round) -> None:  # type: ignore[no-untyped-def]
    from deltalake import write_deltalake

    lake = second_round.lake
    path = lake.gold("perfect_order_detail")
    before = DeltaTable(path).to_pyarrow_table()
    # As a release before the detail table gained its cycle time wrote it.
    older = before.drop_columns(["cycle_time_days"])
    write_deltalake(path, older, mode="overwrite", schema_mode="overwrite")
    late_return = return_received(
        event_id="r9", event_time="2026-03-06T09:00:00Z", return_id="R9", order_id="O1",
        line_no=1, sku="A", quantity=1, reason="damaged", disposition="scrap",
        refund_amount=9.0, processing_cost=2.5,
    )  # fmt: skip
    _append(spark, lake, {"returns": [late_return]}, offset=200)
    summary = refresh(spark, second_round.settings, ingest=False)
    assert _partitions(summary)["perfect_order_detail"] is None  # whole, not 0 partitions
    after = DeltaTable(path).to_pyarrow_table()
    assert after.schema.names == before.schema.names
    assert sorted(after.to_pylist(), key=repr) == sorted(before.to_pylist(), key=repr)


def test_refresh_command_fails_in_one_line_without_kafka(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, "127.0.0.1:1")
    monkeypatch.setenv("SCM_LAKE", settings.lake)
    monkeypatch.setenv("SCM_STATE", str(settings.state))
    monkeypatch.setenv("SCM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["refresh"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("scm: error: cannot reach Kafka at 127.0.0.1:1")
    assert len(error.splitlines()) == 1
