"""Planning tables (planning.md) on hand-built events, expected values worked out by hand."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from simulator.events import (
    inventory_movement,
    inventory_snapshot,
    order_placed,
    po_created,
    po_received,
)
from transforms.planning.replenishment import SERVICE_Z
from transforms.testing import HandBuiltLake, same_rows

AS_OF = dt.date(2026, 3, 28)  # the window is 03-01 … 03-28


def _order(event_id: str, time: str, ship_from: str, lines):  # type: ignore[no-untyped-def]
    return order_placed(
        event_id=event_id, event_time=time, order_id=f"O-{event_id}", customer_id="C-1",
        channel="online", ship_from=ship_from, requested_delivery_date=time[:10],
        lines=[(n, sku, qty, 9.5) for n, (sku, qty) in enumerate(lines, start=1)],
    )  # fmt: skip


def _po(po_id: str, created: str, expected: str, lines):  # type: ignore[no-untyped-def]
    return po_created(
        event_id=f"e-{po_id}", event_time=created, po_id=po_id, supplier_id="SUP-1",
        ship_to="DC-1", expected_date=expected,
        lines=[(n, sku, qty, 1.5) for n, (sku, qty) in enumerate(lines, start=1)],
    )  # fmt: skip


def _receipt(event_id: str, time: str, po_id: str, lines):  # type: ignore[no-untyped-def]
    return po_received(event_id=event_id, event_time=time, po_id=po_id, lines=lines)


def build_planning_lake(root: str, *, with_planning_tables: bool = False) -> HandBuiltLake:
    """The hand-built lake of these tests (silver built; the planning tables if asked)."""
    retried = _order("o3", "2026-03-02T15:00:00Z", "DC-1", [("A", 1)])
    orders = [
        _order("o0", "2026-02-28T10:00:00Z", "DC-1", [("A", 100)]),  # before the window
        _order("o1", "2026-03-01T10:00:00Z", "DC-1", [("A", 4)]),
        _order("o2", "2026-03-02T09:00:00Z", "DC-1", [("A", 2)]),
        retried,
        retried,  # a producer retry: one line, not two
        _order("o4", "2026-03-28T23:00:00Z", "DC-1", [("A", 7)]),
        _order("o5", "2026-03-27T12:00:00Z", "DC-2", [("A", 28)]),  # no stock, no POs at DC-2
    ]
    inventory = [
        inventory_snapshot(event_id="i1", event_time="2026-03-01T00:00:00Z", location_id="DC-1",
                           sku="A", on_hand=10),
        inventory_movement(event_id="i2", event_time="2026-03-20T08:00:00Z", location_id="DC-1",
                           sku="A", quantity_delta=-6, movement_type="pick", reference_id="S-1"),
        inventory_snapshot(event_id="i3", event_time="2026-03-15T00:00:00Z", location_id="DC-1",
                           sku="B", on_hand=5),
    ]  # fmt: skip
    procurement = [
        # A at DC-1: completed in two receipts after 4.0 days, and in one after 2.25 days.
        _po("PO-1", "2026-03-01T00:00:00Z", "2026-03-04", [("A", 10)]),
        _receipt("r1", "2026-03-03T12:00:00Z", "PO-1", [(1, "A", 4)]),
        _receipt("r2", "2026-03-05T00:00:00Z", "PO-1", [(1, "A", 6)]),
        _po("PO-2", "2026-03-10T00:00:00Z", "2026-03-12", [("A", 5)]),
        _receipt("r3", "2026-03-12T06:00:00Z", "PO-2", [(1, "A", 5)]),
        # Open: 6 of 8 received, 2 on order.
        _po("PO-3", "2026-03-20T00:00:00Z", "2026-03-27", [("A", 8)]),
        _receipt("r4", "2026-03-22T00:00:00Z", "PO-3", [(1, "A", 6)]),
        # Expected 03-05, more than 14 days ago and nothing received: lost, not on order.
        _po("PO-4", "2026-03-01T00:00:00Z", "2026-03-05", [("A", 9)]),
        # C (no stock, no demand: no row) completes after 1.0 day: only the location's mean.
        _po("PO-5", "2026-03-06T00:00:00Z", "2026-03-07", [("C", 3)]),
        _receipt("r5", "2026-03-07T00:00:00Z", "PO-5", [(1, "C", 3)]),
    ]
    events = {"orders": orders, "inventory": inventory, "procurement": procurement}
    built = HandBuiltLake(root, events)
    if with_planning_tables:
        from transforms.planning import PLANNING_TABLES

        for table in PLANNING_TABLES:
            built.engine.write_gold(table, None, AS_OF)
    return built


@pytest.fixture
def lake(tmp_path):  # type: ignore[no-untyped-def]
    built = build_planning_lake(str(tmp_path / "lake"))
    yield built
    built.close()


def test_demand_daily_counts_ordered_units_and_lines_per_day_location_and_sku(lake) -> None:
    def row(day: int, month: int, location: str, units: int, lines: int) -> dict:
        return dict(demand_date=dt.date(2026, month, day), location_id=location, sku="A",
                    units_ordered=units, order_lines=lines)  # fmt: skip

    expected = [
        row(28, 2, "DC-1", 100, 1),
        row(1, 3, "DC-1", 4, 1),
        row(2, 3, "DC-1", 3, 2),
        row(28, 3, "DC-1", 7, 1),
        row(27, 3, "DC-2", 28, 1),
    ]
    assert same_rows(lake.gold("demand_daily", as_of=AS_OF), expected)


def test_replenishment_plan_from_stock_demand_lead_times_and_open_po_lines(lake) -> None:
    # DC-1/A: window days 4, 3, 7 and 25 zero days; lead time mean(4.0, 2.25) = 3.125.
    std_a = math.sqrt((3.5**2 + 2.5**2 + 6.5**2 + 25 * 0.5**2) / 28)
    safety_a = SERVICE_Z * std_a * math.sqrt(3.125)
    point_a = 0.5 * 3.125 + safety_a  # 6.06: on hand 4 + on order 2 is below it
    a = dict(
        location_id="DC-1", sku="A", as_of_date=AS_OF, on_hand=4, demand_28d_units=14,
        avg_daily_demand=0.5, demand_std=std_a, lead_time_days=3.125, safety_stock=safety_a,
        reorder_point=point_a, on_order=2, days_of_cover=8.0,
        projected_stockout_date=dt.date(2026, 4, 5), needs_reorder=True,
        suggested_order_units=math.ceil(point_a + 7 * 0.5 - 4 - 2),
    )  # fmt: skip
    # DC-1/B: stock, no demand, no PO history of its own: the location's mean lead time.
    b = dict(
        location_id="DC-1", sku="B", as_of_date=AS_OF, on_hand=5, demand_28d_units=0,
        avg_daily_demand=0.0, demand_std=0.0, lead_time_days=(4.0 + 2.25 + 1.0) / 3,
        safety_stock=0.0, reorder_point=0.0, on_order=0, days_of_cover=None,
        projected_stockout_date=None, needs_reorder=False, suggested_order_units=0,
    )  # fmt: skip
    # DC-2/A: demand only, no completed PO line at DC-2: no lead time, no reorder point.
    c = dict(
        location_id="DC-2", sku="A", as_of_date=AS_OF, on_hand=0, demand_28d_units=28,
        avg_daily_demand=1.0, demand_std=math.sqrt((27**2 + 27 * 1.0) / 28),
        lead_time_days=None, safety_stock=None, reorder_point=None, on_order=0,
        days_of_cover=0.0, projected_stockout_date=AS_OF, needs_reorder=False,
        suggested_order_units=0,
    )  # fmt: skip
    assert a["suggested_order_units"] == 4
    assert same_rows(lake.gold("replenishment_plan", as_of=AS_OF), [a, b, c])


def _weekly_demand(pairs: int, days: int, last_day: dt.date, seed: int = 11):  # type: ignore[no-untyped-def]
    """Poisson demand with a known weekday rhythm, per-pair levels and a slow trend."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    rhythm = np.array([1.3, 1.25, 1.2, 1.1, 1.0, 0.65, 0.5])  # Monday .. Sunday
    first = np.datetime64(last_day, "D") - (days - 1)
    dates = first + np.arange(days)
    weekday = (dates.astype(np.int64) + 3) % 7
    rows = []
    for pair in range(pairs):
        level = rng.uniform(20, 80) * (1 + rng.uniform(-0.1, 0.1) * np.arange(days) / days)
        units = rng.poisson(level * rhythm[weekday])
        for day, value in zip(dates, units, strict=True):
            if value:
                rows.append((f"DC-{pair % 3}", f"SKU-{pair}", day, int(value)))
    location, sku, day, units = zip(*rows, strict=True)
    return pa.table({
        "location_id": list(location), "sku": list(sku),
        "demand_date": pa.array(np.array(day), pa.date32()), "units_ordered": list(units),
    })  # fmt: skip


def test_the_forecast_beats_three_quarters_of_seasonal_naive_on_weekly_demand() -> None:
    import pyarrow.compute as pc

    from transforms.planning.forecast import accuracy_rows, forecast_rows

    as_of = dt.date(2026, 6, 30)
    demand = _weekly_demand(pairs=120, days=84, last_day=as_of)
    scored = accuracy_rows(demand, as_of)
    assert scored.num_rows == 120
    ratio = pc.sum(scored["mae"]).as_py() / pc.sum(scored["naive_mae"]).as_py()
    assert ratio <= 0.75, ratio
    ahead = forecast_rows(demand, as_of)
    assert ahead.num_rows == 120 * 14
    assert pc.min(ahead["forecast_units"]).as_py() >= 0
    assert pc.min(ahead["forecast_date"]).as_py() == dt.date(2026, 7, 1)
    assert pc.max(ahead["forecast_date"]).as_py() == dt.date(2026, 7, 14)


def test_the_level_is_statsforecasts_optimized_ses_exactly() -> None:
    """The forecast calls statsforecast's compiled SES kernels directly (its model module
    imports statsmodels): the levels must be the library's public model's, to the bit."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import SimpleExponentialSmoothingOptimized

    from transforms.planning.forecast import ses_levels

    rng = np.random.default_rng(7)
    series = rng.poisson(3.0, (40, 84)) * rng.random((40, 84))
    series[0] = 0.0  # a pair without demand in the window
    series[1, :-1] = 0.0  # one order on the last day
    frame = pd.DataFrame({
        "unique_id": np.repeat(np.arange(40), 84),
        "ds": np.tile(np.arange(84), 40),
        "y": series.ravel(),
    })  # fmt: skip
    model = StatsForecast(models=[SimpleExponentialSmoothingOptimized()], freq=1, n_jobs=1)
    library = model.forecast(df=frame, h=3).iloc[:, -1].to_numpy().reshape(40, 3)
    levels = ses_levels(series)
    assert levels.shape == (40,)
    np.testing.assert_array_equal(library, np.repeat(levels[:, np.newaxis], 3, axis=1))
    assert ses_levels(np.zeros((0, 84))).shape == (0,)


def test_forecast_tables_cover_the_pairs_with_recent_demand(lake) -> None:
    forecasts = lake.gold("demand_forecast", as_of=AS_OF)
    # Both pairs with demand in the window; 14 days each, none negative.
    assert {(r["location_id"], r["sku"]) for r in forecasts} == {("DC-1", "A"), ("DC-2", "A")}
    assert len(forecasts) == 28 and min(r["forecast_units"] for r in forecasts) >= 0
    days = sorted({r["forecast_date"] for r in forecasts})
    assert days[0] == dt.date(2026, 3, 29) and days[-1] == dt.date(2026, 4, 11)
    scored = {(r["location_id"], r["sku"]): r for r in lake.gold("forecast_accuracy", as_of=AS_OF)}
    # DC-2/A: 28 units on 03-27, inside the scored 14 days; the naive forecast (the week
    # before the fit's end, no demand) misses all of it.
    dc2 = scored[("DC-2", "A")]
    assert dc2["naive_mae"] == 2.0 and dc2["wape"] == dc2["mae"] * 14 / 28


def test_planning_page_sorts_by_urgency_filters_and_charts_the_forecast(  # type: ignore[no-untyped-def]
    lake, tmp_path, monkeypatch
) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from transforms.planning import PLANNING_TABLES

    for table in PLANNING_TABLES:  # as a refresh writes them
        lake.engine.write_gold(table, None, AS_OF)
    monkeypatch.setenv("SCM_LAKE", lake.lake.root)
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    page = Path(__file__).parents[1] / "dashboards" / "app_pages" / "planning.py"
    app = AppTest.from_file(str(page), default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    shown = {metric.label: metric.value for metric in app.metric}
    assert (shown["Pairs"], shown["Need reorder"], shown["Suggested units"]) == ("3", "1", "4")
    plan = app.dataframe[0].value
    assert list(zip(plan["location_id"], plan["sku"], strict=True))[0] == ("DC-1", "A")
    assert len(app.get("vega_lite_chart")) == 1
    assert app.selectbox[-1].value == "DC-1 / A"  # the most urgent pair first
    assert "Forecast MAE" in shown and "Seasonal-naive MAE" in shown
    assert app.get("download_button")

    app.toggle[0].set_value(True).run()
    plan = app.dataframe[0].value
    assert len(plan) == 1 and bool(plan["needs_reorder"].iloc[0])


# --- reorder alerts: the outbox ----------------------------------------------------------


def _write_plan(root: str, as_of: dt.date, reorder: dict[tuple[str, str], bool]) -> None:
    """A replenishment plan as a refresh leaves it: one row per pair, ``needs_reorder`` given."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from scm.lake import Lake
    from transforms.planning.replenishment import TABLE

    rows = [
        dict(location_id=location, sku=sku, as_of_date=as_of, on_hand=3, demand_28d_units=56,
             avg_daily_demand=2.0, demand_std=1.0, lead_time_days=4.0, safety_stock=3.3,
             reorder_point=11.3, on_order=5, days_of_cover=1.5,
             projected_stockout_date=as_of + dt.timedelta(days=1), needs_reorder=needs,
             suggested_order_units=18 if needs else 0)
        for (location, sku), needs in reorder.items()
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, TABLE.arrow_schema())
    write_deltalake(Lake.at(root).gold("replenishment_plan"), table, mode="overwrite")


def _outbox(root: str) -> list[tuple[str, str, int, dt.date, dt.date | None, bool]]:
    from scm.lake import Lake
    from transforms.planning.reorder_alerts import read_outbox

    rows = read_outbox(Lake.at(root)).to_pylist()
    return sorted(
        (r["location_id"], r["sku"], r["turn"], r["as_of_date"], r["resolved_as_of"],
         r["published"])
        for r in rows
    )  # fmt: skip


def test_each_turn_to_reorder_is_published_once_across_a_kafka_outage_and_a_crash(
    kafka_broker: str, tmp_path
) -> None:
    import uuid

    from deltalake import DeltaTable

    from scm.lake import Lake
    from tests.conftest import make_settings, read_alerts
    from transforms.planning.reorder_alerts import (
        OUTBOX_TABLE,
        Settlement,
        alert_id,
        settle,
        sync,
    )

    settings = make_settings(tmp_path, kafka_broker)
    down = make_settings(tmp_path, "127.0.0.1:9")  # nothing listens there
    root, lake = settings.lake, Lake.at(settings.lake)
    dc = f"DC-{uuid.uuid4().hex[:8]}"  # keys of their own on the shared broker
    day = dt.date(2026, 3, 28)

    # A plan written by a refresh that died before settling: nothing opened yet.
    _write_plan(root, day, {(dc, "A"): True, (dc, "B"): False})
    # Kafka is down: the turn is recorded, kept unpublished, and the call returns.
    assert settle(down, lake) == Settlement(opened=1, pending=1)
    assert _outbox(root) == [(dc, "A", 1, day, None, False)]
    # Kafka is back: published once; settling again changes and commits nothing.
    assert settle(settings, lake) == Settlement(published=1)
    version = DeltaTable(lake.gold(OUTBOX_TABLE)).version()
    assert settle(settings, lake) == Settlement()
    assert DeltaTable(lake.gold(OUTBOX_TABLE)).version() == version

    [alert] = read_alerts(settings, f"{dc}:A")
    assert alert == {
        "alert_type": "reorder_needed", "event_type": "reorder_needed",
        "alert_id": alert_id(dc, "A", 1), "event_id": alert_id(dc, "A", 1),
        "event_time": alert["event_time"], "source": "scm-refresh", "location_id": dc,
        "sku": "A", "on_hand": 3, "on_order": 5, "reorder_point": 11.3,
        "suggested_order_units": 18, "projected_stockout_date": "2026-03-29",
        "as_of_date": "2026-03-28",
    }  # fmt: skip
    assert dt.datetime.fromisoformat(alert["event_time"]).tzinfo is not None

    # A still needs a reorder the next day: the same turn, no new alert. B turns true.
    _write_plan(root, day + dt.timedelta(days=1), {(dc, "A"): True, (dc, "B"): True})
    assert sync(lake) == (1, 0)
    assert sync(lake) == (0, 0)  # idempotent: a retried refresh opens nothing twice
    # A crash after producing B's alert, before marking it: the next settle produces it
    # again under the same alert_id, which a consumer drops as a duplicate.
    from scm.kafka import publish_alerts
    from transforms.planning.reorder_alerts import read_outbox, to_json

    pending = [r for r in read_outbox(lake).to_pylist() if not r["published"]]
    publish_alerts(settings, [(f"{dc}:B", to_json(r)) for r in pending], "reorder_needed")
    assert settle(settings, lake) == Settlement(published=1)
    b_alerts = read_alerts(settings, f"{dc}:B")
    assert [a["alert_id"] for a in b_alerts] == [alert_id(dc, "B", 1)] * 2

    # A is covered (an order placed): resolved. Then it turns true again: a second turn.
    later = day + dt.timedelta(days=5)
    _write_plan(root, later, {(dc, "A"): False, (dc, "B"): True})
    assert settle(settings, lake) == Settlement(resolved=1)
    _write_plan(root, later + dt.timedelta(days=1), {(dc, "A"): True, (dc, "B"): True})
    assert settle(settings, lake) == Settlement(opened=1, published=1)
    assert _outbox(root) == [
        (dc, "A", 1, day, later, True),
        (dc, "A", 2, later + dt.timedelta(days=1), None, True),
        (dc, "B", 1, day + dt.timedelta(days=1), None, True),
    ]
    a_alerts = read_alerts(settings, f"{dc}:A")
    assert [a["alert_id"] for a in a_alerts] == [alert_id(dc, "A", 1), alert_id(dc, "A", 2)]


def test_a_refresh_publishes_the_reorder_its_plan_turns_on(kafka_broker: str, tmp_path) -> None:
    """The hand-built lake's plan needs a reorder of DC-1/A: ``scm refresh``'s own path
    (the DuckDB engine, no ingest) writes the plan and settles its alert."""
    from scm.lake import Lake
    from tests.conftest import make_settings
    from transforms.planning.reorder_alerts import read_outbox
    from transforms.refresh import refresh

    settings = make_settings(tmp_path, kafka_broker)
    build_planning_lake(settings.lake).close()
    summary = refresh(None, settings, ingest=False)
    assert (summary.alerts.opened, summary.alerts.published) == (1, 1)
    [row] = read_outbox(Lake.at(settings.lake)).to_pylist()
    assert (row["location_id"], row["sku"], row["on_hand"], row["on_order"]) == ("DC-1", "A", 4, 2)
    assert row["suggested_order_units"] == 4 and row["published"]
    assert refresh(None, settings, ingest=False).alerts.opened == 0
