"""The Alerts page, the Planning page's links and the freshness line, on real Delta tables.

The alerts are made by the platform's own writers: stockouts by the inventory position's
fold (hand-built inventory events in, delta-rs tables out, no Spark), reorder alerts by
``reorder_alerts.sync`` over hand-written replenishment plans, as a refresh leaves them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from streamlit.testing.v1 import AppTest

from dashboards import freshness
from dashboards.freshness import Freshness, age_text, is_ingest_running, measure
from scm.contracts import ALERTS_TOPIC
from scm.kafka import ensure_topics
from scm.lake import Lake
from scm.settings import Settings, load_settings
from tests.conftest import _free_port, make_settings, read_alerts

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
ROUTER = DASHBOARDS / "streamlit_app.py"
UTC = dt.UTC
DAY = dt.date(2026, 3, 28)


def _at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def _settings(root: Path, bootstrap: str = "127.0.0.1:9092") -> Settings:
    return make_settings(root, bootstrap)


def _inventory(*events: tuple[str, str, str, int, dt.datetime]) -> list[dict[str, Any]]:
    """Inventory events: (location:sku, event_id, snapshot|movement, units, event time)."""
    from simulator.events import inventory_movement, inventory_snapshot

    made = []
    for key, event_id, kind, units, when in events:
        location, sku = key.split(":")
        common = dict(event_id=event_id, event_time=when.isoformat(), location_id=location, sku=sku)
        made.append(
            inventory_snapshot(**common, on_hand=units)
            if kind == "snapshot"
            else inventory_movement(
                **common, quantity_delta=units, movement_type="pick", reference_id="S-1"
            )
        )
    return made


def _write_plan(lake: Lake, as_of: dt.date, pairs: dict[tuple[str, str], tuple[bool, int]]) -> None:
    """A replenishment plan as a refresh writes it: (location, sku) -> (needs_reorder,
    on_hand); a pair to reorder is suggested 20 - on_hand units."""
    from transforms.planning.replenishment import TABLE

    rows = [
        dict(location_id=location, sku=sku, as_of_date=as_of, on_hand=on_hand,
             demand_28d_units=56, avg_daily_demand=2.0, demand_std=1.0, lead_time_days=4.0,
             safety_stock=3.3, reorder_point=11.3, on_order=0, days_of_cover=on_hand / 2.0,
             projected_stockout_date=as_of + dt.timedelta(days=on_hand // 2),
             needs_reorder=needs, suggested_order_units=20 - on_hand if needs else 0)
        for (location, sku), (needs, on_hand) in pairs.items()
    ]  # fmt: skip
    write_deltalake(
        lake.gold("replenishment_plan"),
        pa.Table.from_pylist(rows, TABLE.arrow_schema()),
        mode="overwrite",
    )


def build_alert_lake(root: Path, bootstrap: str) -> Lake:
    """Two open stockouts (one sent) and a restocked one; reorder alerts: two open (one
    published) and one resolved."""
    from ingest.inventory_position import EVENT_COLUMNS, KEYS, InventoryPosition
    from transforms.planning import reorder_alerts
    from transforms.testing import bronze_table

    settings = _settings(root, bootstrap)
    ensure_topics(settings, (ALERTS_TOPIC,))  # as `scm ingest` does before its first batch
    lake = Lake.at(settings.lake)
    position = InventoryPosition(lake, settings)
    offsets = iter(range(100))

    def land(events: list[dict[str, Any]]) -> None:
        """What the ingest does with a batch: append it to bronze, fold it into positions."""
        batch = bronze_table("inventory", events, first_offset=next(offsets) * 10)
        write_deltalake(lake.bronze("inventory"), batch, mode="append")
        position.fold(batch.select([*KEYS, *EVENT_COLUMNS]))

    land(
        _inventory(
            ("DC-1:A", "e1", "snapshot", 5, _at(2, 9)),
            ("DC-2:B", "e2", "snapshot", 4, _at(2, 9)),
            ("DC-1:C", "e3", "snapshot", 3, _at(2, 9)),
        )
    )
    land(
        _inventory(
            ("DC-1:A", "e4", "movement", -5, _at(2, 10)),
            ("DC-1:C", "e5", "movement", -3, _at(2, 10)),
        )
    )
    assert position.publish_pending_alerts() == 2  # the broker acknowledged A and C
    land(
        _inventory(
            ("DC-2:B", "e6", "movement", -6, _at(2, 11)),  # stocked out, not sent yet
            ("DC-1:C", "e7", "snapshot", 8, _at(2, 12)),  # restocked: its stockout clears
        )
    )
    assert [len(read_alerts(settings, key)) for key in ("DC-1:A", "DC-1:C", "DC-2:B")] == [
        1,
        1,
        0,
    ]

    _write_plan(lake, DAY, {("DC-1", "A"): (True, 0), ("DC-3", "D"): (True, 2)})
    assert reorder_alerts.sync(lake, now=_at(28, 6)) == (2, 0)
    assert reorder_alerts.publish_pending(settings, lake) == (2, 0)
    next_day = DAY + dt.timedelta(days=1)
    _write_plan(
        lake,
        next_day,
        {("DC-1", "A"): (True, 0), ("DC-3", "D"): (False, 30), ("DC-2", "B"): (True, 1)},
    )
    assert reorder_alerts.sync(lake, now=_at(29, 6)) == (1, 1)
    return lake


@pytest.fixture(scope="module")
def built_alert_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """Built once, with a broker of its own: the alerts it publishes (keys like DC-1:A)
    stay out of the other modules' scm.alerts."""
    from scm.broker import EmbeddedBroker

    root = tmp_path_factory.mktemp("alerts")
    broker = load_settings(
        {"SCM_STATE": str(root / "broker"), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )
    with EmbeddedBroker(broker) as running:
        yield build_alert_lake(root, running.bootstrap)


@pytest.fixture
def alert_lake(built_alert_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    lake = built_alert_lake
    tmp_path = Path(lake.root).parent
    monkeypatch.setenv("SCM_LAKE", lake.root)
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("SCM_SETTINGS_FILE", raising=False)
    yield lake


def _alerts_page() -> AppTest:
    """The Alerts page through the router, as a user reaches it."""
    app = AppTest.from_file(str(ROUTER), default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    app.switch_page("app_pages/alerts.py").run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _rows(app: AppTest) -> list[tuple[Any, ...]]:
    """(type, status, location, sku, sent, on hand, suggested units) of the listed alerts."""
    table = app.dataframe[0].value
    units = [None if pd.isna(u) else int(u) for u in table["suggested_order_units"]]
    return [
        (r.alert_type, r.status, r.location_id, r.sku, bool(r.is_published), int(r.on_hand), u)
        for r, u in zip(table.itertuples(), units, strict=True)
    ]


def _multiselect(app: AppTest, label: str) -> Any:
    return next(widget for widget in app.multiselect if widget.label == label)


# -- the inbox ------------------------------------------------------------------------------


def test_the_inbox_lists_stockouts_and_reorder_alerts_open_first_newest_first(
    alert_lake: Lake,
) -> None:
    before = dt.datetime.now(UTC)
    app = _alerts_page()
    after = dt.datetime.now(UTC)
    assert app.title[0].value == "Alerts"
    shown = {metric.label: metric.value for metric in app.metric}
    assert shown == {"Open stockouts": "2", "Open reorder alerts": "2", "Unpublished": "2"}
    assert _rows(app) == [
        ("reorder_needed", "open", "DC-2", "B", False, 1, 19),  # opened 03-29 06:00
        ("reorder_needed", "open", "DC-1", "A", True, 0, 20),  # opened 03-28 06:00
        ("stockout", "open", "DC-2", "B", False, -2, None),  # since 03-02 11:00
        ("stockout", "open", "DC-1", "A", True, 0, None),  # since 03-02 10:00
        ("reorder_needed", "resolved", "DC-3", "D", True, 2, 18),
    ]  # the restocked DC-1 / C is gone: the position keeps open stockouts only
    table = app.dataframe[0].value
    assert [t.to_pydatetime() for t in table["opened_at"].dt.tz_convert(UTC)] == [
        _at(29, 6), _at(28, 6), _at(2, 11), _at(2, 10), _at(28, 6)
    ]  # fmt: skip
    assert [None if v is None else str(v) for v in table["resolved_as_of"]] == [
        None, None, None, None, "2026-03-29"
    ]  # fmt: skip
    opened = [_at(29, 6), _at(28, 6), _at(2, 11), _at(2, 10)]
    for age, moment in zip(table["age"], opened, strict=False):
        assert age in {age_text(before - moment), age_text(after - moment)}
    assert table["age"].iloc[4] is None  # resolved: no age


def test_filters_narrow_the_list_and_leave_the_counts(alert_lake: Lake) -> None:
    app = _alerts_page()
    _multiselect(app, "Type").set_value(["stockout"]).run()
    assert [(r[0], r[2], r[3]) for r in _rows(app)] == [
        ("stockout", "DC-2", "B"),
        ("stockout", "DC-1", "A"),
    ]
    _multiselect(app, "Type").set_value([]).run()
    _multiselect(app, "Status").set_value(["resolved"]).run()
    assert [(r[0], r[2], r[3]) for r in _rows(app)] == [("reorder_needed", "DC-3", "D")]
    _multiselect(app, "Status").set_value([]).run()
    assert _multiselect(app, "Location").options == ["DC-1", "DC-2", "DC-3"]
    _multiselect(app, "Location").set_value(["DC-2"]).run()
    assert [(r[0], r[1], r[2], r[3]) for r in _rows(app)] == [
        ("reorder_needed", "open", "DC-2", "B"),
        ("stockout", "open", "DC-2", "B"),
    ]
    shown = {metric.label: metric.value for metric in app.metric}
    assert shown == {"Open stockouts": "2", "Open reorder alerts": "2", "Unpublished": "2"}


def test_a_selected_row_links_to_its_pair_in_planning(alert_lake: Lake) -> None:
    app = _alerts_page()
    assert not app.get("page_link")
    app.session_state["alerts.inbox"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    app.run()
    [link] = app.get("page_link")
    assert link.proto.label == "Open DC-2 / B in Planning"
    assert link.proto.page == "planning"
    assert link.proto.query_string == "location=DC-2&sku=B"


def test_the_planning_page_picks_the_linked_location_and_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_planning import build_planning_lake

    built = build_planning_lake(str(tmp_path / "lake"), with_planning_tables=True)
    built.close()
    monkeypatch.setenv("SCM_LAKE", built.lake.root)
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    page = DASHBOARDS / "app_pages" / "planning.py"
    unlinked = AppTest.from_file(str(page), default_timeout=60).run()
    assert unlinked.selectbox[-1].value == "DC-1 / A"  # the most urgent pair by default

    app = AppTest.from_file(str(page), default_timeout=60)
    app.query_params["location"] = "DC-2"
    app.query_params["sku"] = "A"
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert _multiselect(app, "Location").value == ["DC-2"]
    plan = app.dataframe[0].value
    assert list(zip(plan["location_id"], plan["sku"], strict=True)) == [("DC-2", "A")]
    assert app.selectbox[-1].value == "DC-2 / A"
    assert app.query_params == {}  # applied once: the filters are the user's again
    _multiselect(app, "Location").set_value([]).run()
    assert len(app.dataframe[0].value) == 3 and app.selectbox[-1].value == "DC-2 / A"


def test_an_empty_lake_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCM_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    app = AppTest.from_file(str(DASHBOARDS / "app_pages" / "alerts.py"), default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    messages = " ".join(info.value for info in app.info)
    assert "make demo" in messages and "scm refresh" in messages


# -- freshness --------------------------------------------------------------------------------


def _committed_at(path: str) -> dt.datetime:
    stamp = DeltaTable(path).history(1)[0]["timestamp"]
    return dt.datetime.fromtimestamp(stamp / 1000, UTC)


def _append(path: str) -> dt.datetime:
    write_deltalake(path, pa.table({"x": [1]}), mode="append")
    return _committed_at(path)


def test_table_commits_list_every_table_with_its_latest_version(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path / "lake"))
    assert freshness.table_commits(lake) == []
    _append(lake.bronze("orders"))
    orders = _append(lake.bronze("orders"))
    gold = _append(lake.gold("fill_rate_daily"))
    os.makedirs(os.path.join(lake.silver("orders"), "_delta_log"))  # being created: no commit
    _append(lake.checkpoint(freshness.REFRESH_RECORD))  # not a queryable table
    assert freshness.table_commits(lake) == [
        freshness.TableCommit("bronze.orders", 1, orders),
        freshness.TableCommit("gold.fill_rate_daily", 0, gold),
    ]


def test_ages_come_from_the_newest_data_commits(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path / "lake"))
    empty = measure(lake, is_ingest_running=False, now=_at(2, 9))
    assert (empty.events_landed_at, empty.refreshed_at, empty.is_stale) == (None, None, False)

    refreshed = _append(lake.checkpoint(freshness.REFRESH_RECORD))
    _append(lake.bronze("orders"))
    landed = _append(lake.bronze("inventory"))
    DeltaTable(lake.bronze("inventory")).optimize.compact()  # maintenance brings no events
    state = measure(lake, is_ingest_running=True, now=landed + dt.timedelta(seconds=12))
    assert state.events_landed_at == landed and state.refreshed_at == refreshed
    assert state.events_age == dt.timedelta(seconds=12)
    assert not state.is_stale

    quiet = landed + freshness.EVENTS_STALE_AFTER
    assert not measure(lake, is_ingest_running=True, now=quiet).is_events_stale
    late = quiet + dt.timedelta(seconds=1)
    assert measure(lake, is_ingest_running=True, now=late).is_events_stale
    assert not measure(lake, is_ingest_running=False, now=late).is_events_stale

    # Events newer than the refresh wait for it: stale once it is older than the limit.
    edge = refreshed + freshness.REFRESH_STALE_AFTER
    assert not measure(lake, is_ingest_running=False, now=edge).is_refresh_stale
    stale = measure(lake, is_ingest_running=False, now=edge + dt.timedelta(seconds=1))
    assert stale.is_refresh_stale and stale.is_stale
    # A gold table written after the events (a Dagster gold step) is a refresh too.
    gold = _append(lake.gold("fill_rate_daily"))
    after = measure(lake, is_ingest_running=False, now=gold + freshness.REFRESH_STALE_AFTER * 2)
    assert after.refreshed_at == gold and not after.is_refresh_stale


def test_stale_flags_and_the_line() -> None:
    now = _at(2, 12)
    fresh = Freshness(now, now - dt.timedelta(seconds=12), now - dt.timedelta(minutes=4), True)
    assert freshness.summary(fresh) == "Events landed 12 s ago · KPIs refreshed 4 min ago"
    quiet = Freshness(now, now - dt.timedelta(minutes=14), now - dt.timedelta(minutes=20), True)
    assert freshness.summary(quiet) == (
        ":orange-badge[:material/warning: Stale] :orange[Events landed 14 min ago while an "
        "ingest runs] · KPIs refreshed 20 min ago"
    )
    waiting = Freshness(now, now - dt.timedelta(hours=1), now - dt.timedelta(hours=3), False)
    assert freshness.summary(waiting) == (
        ":orange-badge[:material/warning: Stale] Events landed 1 h ago (no live ingest) · "
        ":orange[KPIs refreshed 3 h ago, newer events wait]"
    )
    never = Freshness(now, now - dt.timedelta(days=2, hours=5), None, False)
    assert never.is_refresh_stale and "KPIs not refreshed yet" in freshness.summary(never)
    assert not Freshness(now, None, None, False).is_stale


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"),
     (3600 + 5 * 60, "1 h 5 min"), (86400, "1 d"), (86400 * 2 + 3600 * 4, "2 d 4 h")],
)  # fmt: skip
def test_age_text(seconds: int, text: str) -> None:
    assert age_text(dt.timedelta(seconds=seconds)) == text


def test_a_live_ingest_is_told_by_its_lock(tmp_path: Path) -> None:
    from ingest.lock import IngestLock
    from scm.lake_lock import lock_file
    from transforms.refresh import STATE_TABLE

    assert (IngestLock.name, STATE_TABLE) == (freshness.INGEST_LOCK, freshness.REFRESH_RECORD)
    settings = _settings(tmp_path)
    path = lock_file(settings, freshness.INGEST_LOCK)
    assert not is_ingest_running(path)
    with IngestLock.for_settings(settings):
        assert is_ingest_running(path)
    assert not is_ingest_running(path)  # released: the holder line is gone
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    path.write_text(f"pid {dead}, started 2026-03-02T09:00:00+00:00\n")  # a killed holder
    assert not is_ingest_running(path)


def test_every_page_opens_with_the_freshness_line(
    alert_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = AppTest.from_file(str(ROUTER), default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    line = app.caption[0].value
    assert line.startswith("Events landed ") and " s ago (no live ingest) · KPIs refreshed " in line
    assert "Stale" not in line
    app.switch_page("app_pages/alerts.py").run()
    assert app.caption[0].value.startswith("Events landed ")

    from ingest.lock import IngestLock

    # An ingest runs and the events are older than the (lowered) limit: flagged.
    monkeypatch.setattr(freshness, "EVENTS_STALE_AFTER", dt.timedelta(0))
    with IngestLock.for_settings(_settings(Path(alert_lake.root).parent)):
        app.run()
    line = app.caption[0].value
    assert line.startswith(":orange-badge[:material/warning: Stale] :orange[Events landed ")
    assert "while an ingest runs" in line
