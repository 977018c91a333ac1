"""Every dashboard page through Streamlit's AppTest against a real (small) Delta lake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.pipeline_state import read_ingest_progress, read_run_failures
from dashboards.scorecard import KPIS, ratio, status, tile
from tests.test_query import build_sample_lake

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
PAGES = (
    "scorecard",
    "fill_rate",
    "perfect_order",
    "inventory",
    "returns",
    "suppliers",
    "pipeline_health",
    "sql",
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("dashboards")
    return build_sample_lake(base / "lake", base / "state"), base / "state"


@pytest.fixture
def lake_env(sample: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    lake, state = sample
    monkeypatch.setenv("SCM_LAKE", str(lake))
    monkeypatch.setenv("SCM_STATE", str(state))
    monkeypatch.delenv("SCM_SETTINGS_FILE", raising=False)
    yield lake


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(DASHBOARDS / "app_pages" / f"{name}.py"), default_timeout=60)


def _metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def _charts(app: AppTest) -> int:
    return len(app.get("vega_lite_chart"))


# -- each page shows what it promises ------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "metrics", "charts", "tables"),
    [
        ("scorecard", [kpi.title for kpi in KPIS], len(KPIS), 0),
        ("fill_rate", ["Order fill rate", "Line fill rate", "Unit fill rate", "Orders"], 4, 1),
        ("perfect_order", ["Perfect order rate", "Order cycle time"], 4, 1),
        ("inventory", ["Positions", "Stockouts", "Low stock", "Last update"], 2, 2),
        ("returns", ["Returns", "Processing cost", "Refunds", "Cost per return"], 3, 1),
        ("suppliers", ["Supplier OTIF", "PO lines due", "Lines not on time in full"], 2, 1),
        (
            "pipeline_health",
            ["Processed rows/s", "Offsets behind latest", "Quarantined events", "Failed runs"],
            3,
            3,
        ),
    ],
)
def test_page_renders_its_numbers(
    lake_env: Path, page: str, metrics: list[str], charts: int, tables: int
) -> None:
    app = _page(page).run()
    assert not app.exception, [e.message for e in app.exception]
    shown = _metrics(app)
    for label in metrics:
        assert label in shown and shown[label] not in ("", "—"), (label, shown)
    assert _charts(app) >= charts
    assert len(app.dataframe) >= tables
    assert not app.error


def test_scorecard_tiles_have_status_and_change(lake_env: Path) -> None:
    app = _page("scorecard").run()
    deltas = [metric.delta for metric in app.metric]
    assert all(deltas), deltas
    badges = [m.value for m in app.markdown if "-badge[" in m.value]
    assert len(badges) == len(KPIS)
    assert {b.split("-badge")[0] for b in badges} <= {":green", ":orange", ":red", ":gray"}
    assert any(b.startswith(":red") for b in badges)  # the sample lake misses some targets
    captions = " ".join(caption.value for caption in app.caption)
    assert "Target ≥ 95.0%" in captions and "As of 10 Mar 2026" in captions


def _due_lines(lake: Path, where: str) -> list[tuple[str, int]]:
    from scm.query import open_lake

    with open_lake(str(lake)) as session:
        rows = session.query(
            "select order_id, line_no from gold.order_line_fulfilment"
            f" where is_due and {where} order by order_id, line_no"
        ).to_pylist()
    return [(row["order_id"], row["line_no"]) for row in rows]


def test_a_tile_opens_its_records_and_a_day_narrows_them(lake_env: Path) -> None:
    app = _page("scorecard").run()
    assert not app.dataframe  # nothing picked yet
    line_fill = [kpi.title for kpi in KPIS].index("Line fill rate")
    app.button(key=f"scorecard.records.{line_fill}").click().run()
    assert not app.exception
    assert app.selectbox(key="scorecard.records.kpi").value == "Line fill rate"
    records = app.dataframe[0].value
    # The tile's 7 days up to the as-of date (10 Mar), every due line of them, once.
    period = "order_date between date '2026-03-04' and date '2026-03-10'"
    assert sorted(zip(records["order_id"], records["line_no"], strict=True)) == _due_lines(
        lake_env, period
    )
    assert set(records.loc[records["reason"].notna(), "is_filled"]) == {False}
    assert set(records.loc[records["reason"].isna(), "is_filled"]) <= {True}
    assert (records["trace"] == "trace?order_id=" + records["order_id"]).all()
    assert any("counting against the KPI" in c.value for c in app.caption)

    app.selectbox(key="scorecard.records.when").set_value(dt.date(2026, 3, 5)).run()
    day = app.dataframe[0].value
    assert set(day["order_date"]) == {dt.date(2026, 3, 5)}
    assert sorted(zip(day["order_id"], day["line_no"], strict=True)) == _due_lines(
        lake_env, "order_date = date '2026-03-05'"
    )
    assert len(day) < len(records)

    app.multiselect(key="widget.scorecard.locations").set_value(["DC-2"]).run()
    located = app.dataframe[0].value
    assert set(located["ship_from"]) == {"DC-2"}
    assert sorted(zip(located["order_id"], located["line_no"], strict=True)) == _due_lines(
        lake_env, "order_date = date '2026-03-05' and ship_from = 'DC-2'"
    )


@pytest.mark.parametrize("kpi", [kpi.title for kpi in KPIS])
def test_every_tile_has_records_with_a_reason_column(lake_env: Path, kpi: str) -> None:
    app = _page("scorecard").run()
    app.button(key=f"scorecard.records.{[k.title for k in KPIS].index(kpi)}").click().run()
    assert not app.exception
    if app.dataframe:
        assert "reason" in app.dataframe[0].value.columns
        assert app.get("download_button")
    else:  # a table the sample lake has no rows for still says what it would show
        assert any(kpi in c.value for c in app.caption)


def test_perfect_order_page_lists_the_orders_behind_each_kpi(lake_env: Path) -> None:
    app = _page("perfect_order").run()
    app.multiselect(key="widget.perfect_order.locations").set_value(["DC-2"]).run()
    orders = app.dataframe[0].value
    assert not orders.empty and set(orders["ship_from"]) == {"DC-2"}
    assert not orders["is_perfect"].any()  # DC-2 ships every order short
    assert all("short" in reason for reason in orders["reason"])

    app.segmented_control(key="widget.perfect_order.records").set_value("Cycle time").run()
    assert not app.exception
    delivered = app.dataframe[0].value
    assert "cycle_time_days" in delivered.columns
    assert delivered["cycle_time_days"].notna().all()
    assert not set(delivered["order_id"]) & set(orders["order_id"])  # none fully delivered


def test_a_click_on_a_trend_picks_its_day() -> None:
    from dashboards.charts import picked_day

    march_5 = dt.datetime(2026, 3, 5, tzinfo=dt.UTC).timestamp() * 1000
    assert picked_day({"selection": {"point": [{"day": march_5}]}}) == dt.date(2026, 3, 5)
    assert picked_day({"selection": {"point": []}}) is None
    assert picked_day(None) is None


def test_fill_rate_filters_change_the_numbers_and_list_unfilled_lines(lake_env: Path) -> None:
    app = _page("fill_rate").run()
    everything = _metrics(app)["Order fill rate"]
    lines = app.dataframe[0].value  # every due line of the page's dates, unfilled first
    assert not lines["is_filled"].iloc[0] and lines["is_filled"].iloc[-1]
    app.toggle(key="fill_rate.records.against").set_value(True).run()
    unfilled = app.dataframe[0].value
    assert set(unfilled["sku"]) == {"SKU-C"} and set(unfilled["ship_from"]) == {"DC-2"}
    assert set(unfilled["reason"]) == {"short by the requested date"}
    assert len(unfilled) == (~lines["is_filled"]).sum()

    app.multiselect(key="widget.fill_rate.locations").set_value(["DC-1"]).run()
    assert _metrics(app)["Order fill rate"] != everything
    assert app.dataframe[0].value.empty  # DC-1 ships everything in full

    app.multiselect(key="widget.fill_rate.locations").set_value([]).run()
    app.multiselect(key="widget.fill_rate.categories").set_value(["apparel"]).run()
    assert app.dataframe[0].value.empty  # the short lines are electronics


def test_fill_rate_date_range_changes_the_numbers(lake_env: Path) -> None:
    app = _page("fill_rate").run()
    before = _metrics(app)["Orders"]
    app.date_input(key="widget.fill_rate.dates").set_value(
        (dt.date(2026, 3, 9), dt.date(2026, 3, 10))
    ).run()
    assert _metrics(app)["Orders"] != before


@pytest.mark.parametrize(
    ("page", "widget", "value", "metric"),
    [
        ("scorecard", "widget.scorecard.locations", ["DC-2"], "Order fill rate"),
        ("perfect_order", "widget.perfect_order.channels", ["b2b"], "Perfect order rate"),
        ("inventory", "widget.inventory.locations", ["DC-1"], "Positions"),
        ("returns", "widget.returns.categories", ["electronics"], "Refunds"),
        ("suppliers", "widget.suppliers.suppliers", ["SUP-1"], "Supplier OTIF"),
    ],
)
def test_a_filter_changes_the_numbers(
    lake_env: Path, page: str, widget: str, value: list[str], metric: str
) -> None:
    app = _page(page).run()
    before = _metrics(app)[metric]
    app.multiselect(key=widget).set_value(value).run()
    assert not app.exception
    assert _metrics(app)[metric] != before


def test_inventory_highlights_stockouts_and_low_stock(lake_env: Path) -> None:
    app = _page("inventory").run()
    shown = _metrics(app)
    assert shown["Stockouts"] == "1" and shown["Low stock"] == "2"
    app.number_input(key="inventory.low_stock_units").set_value(2).run()
    assert _metrics(app)["Low stock"] == "0"


def test_failure_reasons_come_from_silver(lake_env: Path) -> None:
    app = _page("perfect_order").run()
    titles = [str(chart.proto.spec) for chart in app.get("vega_lite_chart")]
    assert any("Why orders were not perfect" in spec for spec in titles)


def test_filters_persist_per_page_across_navigation(lake_env: Path) -> None:
    app = AppTest.from_file(str(DASHBOARDS / "streamlit_app.py"), default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.title[0].value == "SCOR scorecard"
    app.switch_page("app_pages/fill_rate.py").run()
    app.multiselect(key="widget.fill_rate.locations").set_value(["DC-2"]).run()
    app.switch_page("app_pages/returns.py").run()
    assert app.title[0].value == "Returns"
    app.switch_page("app_pages/fill_rate.py").run()
    assert app.multiselect(key="widget.fill_rate.locations").value == ["DC-2"]
    app.switch_page("app_pages/perfect_order.py").run()
    assert app.multiselect(key="widget.perfect_order.locations").value == []


# -- SQL page ---------------------------------------------------------------------------------


def test_sql_page_runs_a_query_and_offers_csv(lake_env: Path) -> None:
    app = _page("sql").run()
    app.text_area[0].set_value("select sku, category from silver.products order by sku")
    app.button[0].click().run()
    assert not app.error
    assert app.dataframe[0].value["sku"].tolist() == ["SKU-A", "SKU-B", "SKU-C"]
    assert app.get("download_button")


def test_sql_page_refuses_writes_in_one_line(lake_env: Path) -> None:
    app = _page("sql").run()
    app.text_area[0].set_value(f"copy gold.fill_rate_daily to '{lake_env}/stolen.csv'")
    app.button[0].click().run()
    assert app.error and app.error[0].value.startswith("COPY is not allowed")
    assert not (lake_env / "stolen.csv").exists()


def test_sql_page_reports_the_row_limit(lake_env: Path) -> None:
    app = _page("sql").run()
    app.text_area[0].set_value("select * from range(5000)")
    app.number_input[0].set_value(100)
    app.button[0].click().run()
    assert len(app.dataframe[0].value) == 100
    assert "row limit" in app.warning[0].value


# -- an empty lake -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_empty_lake_says_what_to_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCM_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    app = _page(page).run()
    assert not app.exception, [e.message for e in app.exception]
    messages = " ".join(info.value for info in app.info)
    assert "make demo" in messages and "scm refresh" in messages, messages


# -- the logic behind the tiles and the state files -------------------------------------------


def test_ratio_and_status() -> None:
    fill = KPIS[0]
    cycle = next(kpi for kpi in KPIS if kpi.title == "Order cycle time")
    assert ratio(pd.DataFrame({"a": [1, 2], "b": [2, 2]}), "a", "b") == 0.75
    assert ratio(pd.DataFrame({"a": [0], "b": [0]}), "a", "b") is None
    assert status(0.96, fill) == "green"
    assert status(0.93, fill) == "amber"
    assert status(0.80, fill) == "red"
    assert status(2.5, cycle) == "green" and status(3.3, cycle) == "amber"
    assert status(None, fill) == "no data"


def test_tile_compares_with_the_previous_period() -> None:
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(14)]
    totals = pd.DataFrame({"day": days, "orders_filled": [9] * 7 + [10] * 7, "orders": [10] * 14})
    card = tile(KPIS[0], totals, dt.date(2026, 3, 14), 7)
    assert card.value == 1.0 and card.previous == 0.9
    assert card.change == pytest.approx(0.1) and card.status == "green"
    assert len(card.trend) == 14


def test_state_files_are_read_defensively(tmp_path: Path) -> None:
    progress = tmp_path / "ingest-progress.jsonl"
    progress.write_text(
        '{"timestamp": "2026-03-10T10:00:00Z", "name": "q", "processedRowsPerSecond": 5,'
        ' "durationMs": {"triggerExecution": 650},'
        ' "sources": [{"metrics": {"maxOffsetsBehindLatest": "4"}}]}\n'
        "garbage\n[1, 2]\n"
        '{"time": "2026-03-10T10:00:01Z", "query": "orders", "batch_duration_ms": 700,'
        ' "offsets_behind_latest": {"max": 3.0, "avg": 1.5}}\n'
    )
    frame = read_ingest_progress(progress)
    assert frame["query"].tolist() == ["q", "orders"]
    assert frame["processed_rows_per_second"].tolist()[0] == 5
    assert frame["batch_duration_ms"].tolist() == [650, 700]
    assert frame["offsets_behind_latest"].tolist() == [4, 3]
    assert read_ingest_progress(tmp_path / "missing.jsonl").empty
    assert read_run_failures(tmp_path / "missing.jsonl").empty


def test_dashboards_import_neither_spark_nor_orchestration() -> None:
    """The dashboards read the lake through DuckDB only (STYLE.md: imports flow downstream)."""
    import ast

    forbidden = {"pyspark", "delta", "orchestration", "dagster", "ingest", "transforms"}
    for path in DASHBOARDS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


@pytest.mark.parametrize("page", ["scorecard", "fill_rate", "perfect_order"])
def test_kpi_tables_without_rows_say_what_to_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from tests.test_query import FILL_RATE_SCHEMA

    write_deltalake(str(tmp_path / "gold" / "fill_rate_daily"), FILL_RATE_SCHEMA.empty_table())
    write_deltalake(
        str(tmp_path / "gold" / "perfect_order_daily"),
        pa.table({"order_date": pa.array([], pa.date32()), "orders": pa.array([], pa.int64())}),
    )
    monkeypatch.setenv("SCM_LAKE", str(tmp_path))
    app = _page(page).run()
    assert not app.exception, [e.message for e in app.exception]
    messages = " ".join(info.value for info in app.info)
    assert "make demo" in messages and "scm refresh" in messages, messages


def test_a_shipment_delivered_twice_counts_once_on_every_page(lake_env: Path) -> None:
    """DC-2's carrier reports each delivery twice and DC-2 ships SKU-C two units short: the
    doubled report must not make those orders look delivered in full anywhere."""
    from dashboards import queries
    from scm.query import open_lake

    params = {
        "start_date": dt.date(2026, 3, 1), "end_date": dt.date(2026, 3, 10),
        "locations": ["DC-2"], "channels": [],
    }  # fmt: skip
    with open_lake(str(lake_env)) as lake:
        due_orders = lake.query(
            "select count(*) as n from gold.perfect_order_detail where is_due"
            " and ship_from = 'DC-2'"
        ).to_pylist()[0]["n"]
        failures = {
            row["reason"]: row["orders"]
            for row in lake.query(queries.PERFECT_ORDER_FAILURES, params).to_pylist()
        }
        delivered = lake.query(
            "select sum(delivered_units) as units, sum(ordered_units) as ordered"
            " from gold.order_line_fulfilment where ship_from = 'DC-2'"
        ).to_pylist()[0]
    assert due_orders > 0 and failures["short"] == due_orders  # every DC-2 order is short
    assert delivered["units"] < delivered["ordered"]  # not doubled past what was ordered

    app = _page("perfect_order").run()
    app.multiselect(key="widget.perfect_order.locations").set_value(["DC-2"]).run()
    assert not app.exception
    assert any(
        "Why orders were not perfect" in str(c.proto.spec) for c in app.get("vega_lite_chart")
    )
