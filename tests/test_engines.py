"""The two engines of the batch layer give the same rows from the same SQL definitions.

One hand-built lake (orders, shipments, deliveries, inventory, returns, procurement, with
retries and late events) is built to silver once; every gold table is then computed by the
DuckDB engine and by the Spark engine (the same model transpiled) and compared row by row.
The end-to-end acceptance test holds both engines against the reference on a larger world.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from scm.errors import ScmError
from scm.settings import load_settings
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
from transforms.gold import GOLD_TABLES
from transforms.sql import render
from transforms.testing import HandBuiltLake, same_rows

AS_OF = dt.date(2026, 3, 6)
ORDERS = [
    order_placed(
        event_id="o1",
        event_time="2026-03-02T10:00:00Z",
        order_id="O1",
        customer_id="C",
        channel="online",
        ship_from="DC-1",
        requested_delivery_date="2026-03-04",
        lines=[(1, "A", 4, 9.5), (2, "B", 1, 3)],
    ),
    order_placed(
        event_id="o2",
        event_time="2026-03-03T23:30:00Z",
        order_id="O2",
        customer_id="C",
        channel="b2b",
        ship_from="DC-2",
        requested_delivery_date="2026-03-10",
        lines=[(1, "A", 2, 9.5)],
    ),
]
SHIPMENTS = [
    shipment_dispatched(
        event_id="s1",
        event_time="2026-03-03T08:00:00Z",
        shipment_id="S1",
        order_id="O1",
        ship_from="DC-1",
        carrier="UPS",
        lines=[(1, "A", 4)],
    ),
    shipment_delivered(
        event_id="d1",
        event_time="2026-03-04T09:00:00Z",
        shipment_id="S1",
        order_id="O1",
        condition="ok",
        documents_ok=True,
    ),
    shipment_delivered(
        event_id="d1b",
        event_time="2026-03-05T09:00:00Z",
        shipment_id="S1",
        order_id="O1",
        condition="ok",
        documents_ok=True,
    ),  # reported twice
    shipment_dispatched(
        event_id="s2",
        event_time="2026-03-05T08:00:00Z",
        shipment_id="S2",
        order_id="O1",
        ship_from="DC-1",
        carrier="UPS",
        lines=[(2, "B", 1)],
    ),
]
SHIPMENTS.append(  # S2 delivered damaged, with a document error: O1 fully delivered
    shipment_delivered(event_id="d2", event_time="2026-03-05T18:00:00Z", shipment_id="S2",
                       order_id="O1", condition="damaged", documents_ok=False)
)  # fmt: skip
INVENTORY = [
    inventory_snapshot(
        event_id="i1", event_time="2026-02-27T06:00:00Z", location_id="DC-1", sku="A", on_hand=20
    ),
    inventory_movement(
        event_id="i2",
        event_time="2026-03-03T08:00:00Z",
        location_id="DC-1",
        sku="A",
        quantity_delta=-4,
        movement_type="shipment",
        reference_id="S1",
    ),
]
RETURNS = [
    return_received(
        event_id="r1",
        event_time="2026-03-06T10:00:00Z",
        return_id="R1",
        order_id="O1",
        line_no=1,
        sku="A",
        quantity=1,
        reason="damaged",
        disposition="scrap",
        refund_amount=9.5,
        processing_cost=1.25,
    ),
]
PROCUREMENT = [
    po_created(event_id="p1", event_time="2026-03-01T08:00:00Z", po_id="PO1", supplier_id="SUP",
               ship_to="DC-1", expected_date="2026-03-05", lines=[(1, "A", 10, 2.0)]),
    po_received(event_id="g1", event_time="2026-03-05T08:00:00Z", po_id="PO1",
                lines=[(1, "A", 10)]),
]  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    built = HandBuiltLake(
        str(tmp_path_factory.mktemp("engines") / "lake"),
        {
            "orders": [*ORDERS, ORDERS[0]],
            "shipments": SHIPMENTS,
            "inventory": INVENTORY,
            "returns": RETURNS,
            "procurement": PROCUREMENT,
        },
        products=[("A", "Anvil", "tools", "2", "9.5"), ("B", "Bolt", "parts", "1.5", "3")],
    )
    yield built
    built.close()


def _spark_rows(spark: Any, lake: HandBuiltLake, table: str) -> list[dict[str, Any]]:
    from transforms.spark_engine import SparkEngine

    frame = SparkEngine(spark, lake.lake).gold_frame(GOLD_TABLES[table], None, AS_OF)
    return [row.asDict() for row in frame.collect()]


@pytest.mark.spark
@pytest.mark.parametrize("table", list(GOLD_TABLES))
def test_spark_engine_gives_the_duckdb_engines_rows(spark: Any, lake, table: str) -> None:  # type: ignore[no-untyped-def]
    duckdb_rows = lake.gold(table, as_of=AS_OF)
    # A backtest needs three weeks of demand (tests/test_planning.py has them).
    assert duckdb_rows or table == "forecast_accuracy", "the lake must give the table rows"
    assert same_rows(_spark_rows(spark, lake, table), duckdb_rows)


@pytest.mark.parametrize("table", list(GOLD_TABLES))
def test_every_gold_model_transpiles_to_spark_sql(table: str) -> None:
    definition = GOLD_TABLES[table]
    sql = render(definition.typed_sql(), "spark", {}, as_of=AS_OF, partitions=[AS_OF])
    assert "DATE_TRUNC" not in sql or "CAST(DATE_TRUNC" in sql  # Spark's returns a timestamp
    assert "EPOCH" not in sql.upper()  # no DuckDB-only time functions


def test_an_unknown_engine_is_refused_in_one_line() -> None:
    with pytest.raises(ScmError, match=r"SCM_ENGINE='sqlite' is invalid: use duckdb"):
        load_settings({"SCM_ENGINE": "sqlite"})
