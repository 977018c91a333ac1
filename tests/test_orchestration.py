"""Dagster wiring over real components: the embedded broker, one Spark session, Delta tables.

A small simulated history is produced to Kafka and driven through the definitions the way
a deployment drives it: the ``refresh`` job (what the hourly schedule launches) ingests and
updates silver, recording the gold partitions it touched; ``gold_partitions_sensor`` turns
them into ranged KPI runs; ``bronze_sensor`` reacts to bronze appended by someone else.
Later tests build on that lake (re-run a partition, add a late event).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from orchestration.assets.gold import gold_key
from orchestration.assets.silver import SILVER_UPDATE_KEY, SilverChanges
from orchestration.checks import GOLD_RULES
from orchestration.definitions import build_definitions, defs
from orchestration.resources import build_resources
from orchestration.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_FAILURES_FILE,
    bronze_sensor,
    gold_partitions_sensor,
    record_run_failure,
)
from scm.lake import Lake
from scm.settings import Settings, load_settings
from tests.conftest import _free_port
from transforms.checks import check_table
from transforms.duckdb_engine import DuckDBEngine
from transforms.gold import GOLD_TABLES

REPO = Path(__file__).resolve().parents[1]


# --- definitions ---------------------------------------------------------------------------


def test_workspace_loads_the_graph_checks_schedules_and_sensors() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert (target["module_name"], target["attribute"]) == ("orchestration.definitions", "defs")

    dg.Definitions.validate_loadable(defs)
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    # Six KPI tables, the four detail tables behind them, four planning tables.
    assert len(GOLD_TABLES) == 14
    for name, table in GOLD_TABLES.items():
        spec = specs[gold_key(name)]
        assert spec.group_name == "gold" and spec.kinds == {"duckdb", "spark", "delta"}
        assert (spec.partitions_def is None) == (table.granularity == "snapshot") and spec.owners
    assert specs[gold_key("replenishment_plan")].partitions_def is None
    groups = {spec.group_name for spec in specs.values()}
    assert {"landing", "bronze", "silver", "gold"} <= groups
    assert specs[dg.AssetKey(["bronze", "orders"])].metadata["dagster/column_schema"].columns

    check_keys = defs.resolve_asset_graph().asset_check_keys
    for name in GOLD_TABLES:
        checks = {key.name for key in check_keys if key.asset_key == gold_key(name)}
        assert {"grain_is_unique", "grain_has_no_nulls", "invariants_hold"} <= checks, name
    names = {key.name for key in check_keys}
    assert {"quarantine_rate_below_threshold", "received_recently"} <= names

    repository = defs.get_repository_def()
    assert {s.name for s in repository.schedule_defs} == {"hourly_refresh", "nightly_maintenance"}
    assert {s.name for s in repository.sensor_defs} == {
        "bronze_sensor",
        "gold_partitions_sensor",
        "record_run_failure",
    }
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"refresh", "daily_kpis", "monthly_kpis", "maintenance"} <= jobs


def test_dagster_loads_the_workspace_from_the_repo_root(tmp_path: Path) -> None:
    """What `dagster dev -w workspace.yaml` does first: load the code location it names."""
    command = [str(Path(sys.executable).with_name("dagster")), "definitions", "validate"]
    result = subprocess.run(
        [*command, "-w", "workspace.yaml"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_recorded_changes_become_one_ranged_run_per_partitioning() -> None:
    from orchestration.sensors import plan_gold_runs

    now = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
    untouched: dict[str, list[str] | None] = {name: [] for name in GOLD_TABLES}

    def changes(refresh_id: int, **affected: list[str]) -> SilverChanges:
        return SilverChanges(refresh_id, None, 1, affected={**untouched, **affected})

    updates = [
        changes(
            7,
            fill_rate_daily=["2026-03-02", "2026-03-19"],
            supplier_otif_daily=["2026-04-10", "2031-01-01"],  # the second: too far ahead
        ),
        changes(8, returns_cost_daily=["2026-03-20"], inventory_turns_monthly=["2026-03-01"]),
    ]
    requests, warnings = plan_gold_runs(updates, now, run_key="k")
    daily, monthly = requests
    assert daily.job_name == "daily_kpis" and daily.run_key == "k-daily_kpis"
    assert set(daily.asset_selection or []) == {
        gold_key("fill_rate_daily"),
        gold_key("supplier_otif_daily"),
        gold_key("returns_cost_daily"),
    }
    assert (daily.tags[RANGE_START_TAG], daily.tags[RANGE_END_TAG]) == ("2026-03-02", "2026-04-10")
    assert monthly.asset_selection == [gold_key("inventory_turns_monthly")]
    assert (monthly.tags[RANGE_START_TAG], monthly.tags[RANGE_END_TAG]) == ("2026-03-01",) * 2
    assert warnings == ["supplier_otif_daily: partitions outside the definition: ['2031-01-01']"]

    everything = SilverChanges(
        1, None, 1, first_event_date=dt.date(2026, 3, 1), affected=dict.fromkeys(GOLD_TABLES)
    )
    daily, monthly, snapshot = plan_gold_runs([everything], now)[0]
    assert snapshot.job_name == "planning_snapshot" and not snapshot.tags
    assert snapshot.asset_selection == [
        *(gold_key(n) for n in ("replenishment_plan", "demand_forecast", "forecast_accuracy")),
        gold_key("reorder_alerts"),  # the plan's alerts, published after it
    ]
    assert daily.tags[RANGE_START_TAG] == "2026-03-01"
    assert daily.tags[RANGE_END_TAG] == (now.date() + dt.timedelta(days=62)).isoformat()
    daily_tables = [t for t in GOLD_TABLES.values() if t.granularity == "day"]
    assert len(daily_tables) == 10  # all but inventory turns and the plan; details, demand in
    assert set(daily.asset_selection or []) == {gold_key(t.name) for t in daily_tables}
    assert plan_gold_runs([changes(2)], now) == ([], [])


# --- a simulated lake, driven like a deployment ----------------------------------------------


class SensorDriver:
    """Evaluates a sensor again and again, carrying its cursor as the daemon does."""

    def __init__(
        self, sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: Any
    ) -> None:
        self.sensor, self.instance, self.resources = sensor, instance, resources
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        )
        result = self.sensor(context)
        assert isinstance(result, dg.SensorResult)
        if result.cursor is not None:
            self.cursor = result.cursor
        return result


@dataclass
class Pipeline:
    settings: Settings
    lake: Lake
    instance: dg.DagsterInstance
    definitions: dg.Definitions
    overrides: dict[str, str]
    bronze: SensorDriver
    gold: SensorDriver
    first_update: SilverChanges
    gold_requests: list[dg.RunRequest]
    results: list[dg.ExecuteInProcessResult]

    def launch(self, request: dg.RunRequest, job: str | None = None) -> dg.ExecuteInProcessResult:
        """Execute what a sensor asked for, in process, as the daemon would launch it."""
        job_def = self.definitions.resolve_job_def(request.job_name or job or "")
        return passed(
            job_def.execute_in_process(
                instance=self.instance, tags=request.tags, asset_selection=request.asset_selection
            )
        )


def passed(result: dg.ExecuteInProcessResult) -> dg.ExecuteInProcessResult:
    """The run succeeded and every check it evaluated passed (warnings included)."""
    assert result.success
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.metadata)
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    assert not failed, failed
    return result


def last_silver_changes(instance: dg.DagsterInstance) -> SilverChanges:
    event = instance.get_latest_materialization_event(SILVER_UPDATE_KEY)
    assert event is not None and event.asset_materialization is not None
    update = SilverChanges.from_metadata(event.asset_materialization.metadata)
    assert update is not None
    return update


@pytest.fixture(scope="module")
def pipeline(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """A broker of its own: the shared one carries other modules' days (some in 2027), which
    would move the as-of date and the partitions the sensors request."""
    from scm.broker import EmbeddedBroker

    root = tmp_path_factory.mktemp("orchestration")
    broker_settings = load_settings(
        {"SCM_STATE": str(root / "broker"), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )
    with EmbeddedBroker(broker_settings) as broker:
        yield from _pipeline(spark, root, broker.bootstrap)


def _pipeline(spark: Any, root: Path, bootstrap: str) -> Iterator[Pipeline]:
    from simulator import SimulationOptions, simulate

    overrides = {
        "SCM_LAKE": str(root / "lake"),
        "SCM_STATE": str(root / "state"),
        "SCM_KAFKA_BOOTSTRAP": bootstrap,
        "SCM_SPARK_MASTER": "local[2]",
    }
    settings = load_settings(overrides)
    # A fixed start gives the same history every day; these three days include returns,
    # which the bronze checks need (a window relative to today may draw none).
    options = SimulationOptions(
        days=3, seed=5, orders_per_day=20, start=dt.date(2026, 11, 26), progress=False
    )
    simulate(settings, options)
    definitions = build_definitions(build_resources(overrides))
    with dg.instance_for_test() as instance:
        resources = {"scm": build_resources(overrides)["scm"]}  # what the sensors use
        bronze = SensorDriver(bronze_sensor, instance, resources)
        gold = SensorDriver(gold_partitions_sensor, instance, resources)
        assert not bronze.tick().run_requests  # no bronze table yet: nothing to react to
        refresh = definitions.resolve_job_def("refresh").execute_in_process(instance=instance)
        pipeline = Pipeline(
            settings=settings,
            lake=Lake.at(settings.lake),
            instance=instance,
            definitions=definitions,
            overrides=overrides,
            bronze=bronze,
            gold=gold,
            first_update=last_silver_changes(instance),
            gold_requests=[],
            results=[passed(refresh)],
        )
        pipeline.gold_requests = list(gold.tick().run_requests)
        pipeline.results += [pipeline.launch(request) for request in pipeline.gold_requests]
        yield pipeline


def gold_rows(spark: Any, lake: Lake, name: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(lake.gold(name))
    return sorted(tuple(row) for row in frame.collect())


def test_a_simulated_lake_materializes_end_to_end_with_every_check_passing(
    pipeline: Pipeline, spark: Any
) -> None:
    # The first update knows no earlier state: every partition from the first event on.
    update = pipeline.first_update
    assert update.first_event_date is not None
    assert all(keys is None for keys in update.affected.values())
    requests = {request.job_name: request for request in pipeline.gold_requests}
    assert set(requests) == {"daily_kpis", "monthly_kpis", "planning_snapshot"}
    assert requests["daily_kpis"].tags[RANGE_START_TAG] == update.first_event_date.isoformat()
    assert requests["monthly_kpis"].tags[RANGE_START_TAG] == (
        update.first_event_date.replace(day=1).isoformat()
    )
    assert requests["daily_kpis"].tags[RANGE_END_TAG] > update.as_of.isoformat()  # type: ignore[union-attr]

    materialized = {
        event.asset_key: event.materialization
        for result in pipeline.results
        for event in result.get_asset_materialization_events()
    }
    assert {gold_key(name) for name in GOLD_TABLES} <= materialized.keys()
    settled = materialized[gold_key("reorder_alerts")].metadata
    assert settled["pending"].value == 0  # every reorder the plan turned on is published
    assert dg.AssetKey(["bronze", "orders"]) in materialized
    assert materialized[dg.AssetKey(["bronze", "orders"])].metadata["mode"].value == "catch-up"
    evaluated = [e for result in pipeline.results for e in result.get_asset_check_evaluations()]
    for name in GOLD_TABLES:
        assert len([e for e in evaluated if e.asset_key == gold_key(name)]) >= 3, name
        # A backtest needs three weeks of demand; the simulated lake has fewer days.
        if name != "forecast_accuracy":
            assert gold_rows(spark, pipeline.lake, name), f"gold.{name} is empty"
    assert any(e.check_name == "quarantine_rate_below_threshold" for e in evaluated)

    fill_rate = materialized[gold_key("fill_rate_daily")].metadata
    assert fill_rate["rows_written"].value > 0  # type: ignore[operator]
    assert "| order_date | ship_from |" in str(fill_rate["preview"].value)
    assert fill_rate["dagster/row_count"].value == len(
        gold_rows(spark, pipeline.lake, "fill_rate_daily")
    )


def test_re_running_a_partition_replaces_exactly_that_partition(
    pipeline: Pipeline, spark: Any
) -> None:
    from deltalake import DeltaTable

    name = "fill_rate_daily"
    before = gold_rows(spark, pipeline.lake, name)
    # The busiest day (the shared broker also carries other modules' sparse test days).
    day = Counter(row[0] for row in before).most_common(1)[0][0]
    version = DeltaTable(pipeline.lake.gold(name)).version()
    job = pipeline.definitions.resolve_job_def("daily_kpis")
    passed(
        job.execute_in_process(
            instance=pipeline.instance,
            partition_key=day.isoformat(),
            asset_selection=[gold_key(name)],
        )
    )
    assert gold_rows(spark, pipeline.lake, name) == before
    table = DeltaTable(pipeline.lake.gold(name))
    assert table.version() == version + 1  # one atomic commit
    commit = table.history(1)[0]
    assert day.isoformat() in commit["operationParameters"]["predicate"]
    rows_that_day = sum(1 for row in before if row[0] == day)
    metrics = commit["operationMetrics"]  # delta-rs (DuckDB engine) or delta-spark names
    written = metrics.get("num_added_rows", metrics.get("numOutputRows"))
    assert int(written) == rows_that_day > 0


def test_bronze_appended_by_a_running_ingest_is_observed_and_reaches_exactly_its_partitions(
    pipeline: Pipeline, spark: Any
) -> None:
    from ingest.lock import IngestLock
    from transforms.testing import append_bronze

    assert not pipeline.bronze.tick().run_requests  # the refresh already saw these versions

    # A late dispatch for an order of the first day: its fill rate lives in the order's
    # partition, and no new event is dated that day.
    order = (
        spark.read.format("delta")
        .load(pipeline.lake.silver("order_lines"))
        .orderBy("order_time", "order_id", "line_no")
        .first()
    )
    shipment_id = f"late-{uuid.uuid4()}"
    # On the as-of day, so the as-of date stays: orders falling due would touch more days.
    as_of = last_silver_changes(pipeline.instance).as_of
    assert as_of is not None
    late = {
        "event_id": shipment_id,
        "event_type": "shipment_dispatched",
        "event_time": f"{as_of.isoformat()}T23:59:59Z",
        "source": "test",
        "schema_version": 1,
        "shipment_id": shipment_id,
        "order_id": order["order_id"],
        "ship_from": order["ship_from"],
        "carrier": "late",
        "lines": [{"line_no": order["line_no"], "sku": order["sku"], "quantity": 1}],
    }
    # A continuously running ingest holds the lake's lock and appends to bronze.
    with IngestLock.for_settings(pipeline.settings):
        append_bronze(pipeline.lake, "shipments", [late], first_offset=10**6)
        moved = pipeline.bronze.tick().run_requests
        assert len(moved) == 1
        assert json.loads(moved[0].tags["scm/bronze_versions"]).keys() == {"shipments"}
        refresh = pipeline.launch(moved[0], "refresh")
    bronze = {
        event.asset_key: event.materialization.metadata
        for event in refresh.get_asset_materialization_events()
    }
    assert bronze[dg.AssetKey(["bronze", "shipments"])]["mode"].value == "observed"
    assert not pipeline.bronze.tick().run_requests

    update = last_silver_changes(pipeline.instance)
    order_day = order["order_date"].isoformat()
    assert update.affected["fill_rate_daily"] == [order_day]
    assert update.affected["returns_cost_daily"] == []
    requests = pipeline.gold.tick().run_requests
    daily = [request for request in requests if request.job_name == "daily_kpis"]
    assert len(daily) == 1
    assert daily[0].tags[RANGE_START_TAG] <= order_day <= daily[0].tags[RANGE_END_TAG]
    selection = set(daily[0].asset_selection or [])
    assert gold_key("fill_rate_daily") in selection
    assert gold_key("returns_cost_daily") not in selection
    before = gold_rows(spark, pipeline.lake, "fill_rate_daily")
    pipeline.launch(daily[0])
    assert not pipeline.gold.tick().run_requests  # the cursor moved past this update
    after = gold_rows(spark, pipeline.lake, "fill_rate_daily")
    changed = {row[0] for row in set(after) ^ set(before)}
    assert changed <= {order["order_date"]}  # only the order's day can move


def test_a_broken_gold_table_fails_its_checks(pipeline: Pipeline) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    rules = GOLD_RULES["fill_rate_daily"]
    engine = DuckDBEngine(pipeline.settings, pipeline.lake)
    good_outcomes = check_table(engine, engine.gold_relation("fill_rate_daily"), rules)
    assert all(outcome.passed for outcome in good_outcomes.values())

    good = DeltaTable(pipeline.lake.gold("fill_rate_daily")).to_pyarrow_table()
    row = good.sort_by([("order_date", "ascending"), ("ship_from", "ascending")]).to_pylist()[0]
    broken = pa.Table.from_pylist(
        [
            row,
            row,  # the grain twice
            {**row, "ship_from": None},
            {**row, "channel": "elsewhere", "units_filled": row["units_ordered"] + 1},
            {**row, "channel": "nowhere", "order_fill_rate": 1.5},
        ],
        good.schema,
    )
    engine.db.register("broken", broken)
    outcomes = check_table(engine, "broken", rules)
    engine.close()
    assert outcomes["grain_is_unique"].violations == 1
    assert outcomes["grain_has_no_nulls"].violations == 1
    assert outcomes["rates_within_0_1"].violations == 1
    assert outcomes["invariant: units_filled <= units_ordered"].violations == 1
    assert outcomes["invariant: orders_filled <= orders"].passed

    # The same table in a lake of its own: the checks report it, the run itself succeeds.
    lake = Lake.at(str(Path(pipeline.settings.lake).parent / "broken-lake"))
    write_deltalake(lake.gold("fill_rate_daily"), broken, partition_by=["order_date"])
    key = gold_key("fill_rate_daily")
    result = dg.materialize(
        [
            defs.get_assets_def(key),
            defs.get_asset_checks_def(dg.AssetCheckKey(key, "grain_is_unique")),
        ],
        selection=dg.AssetSelection.checks_for_assets(key),
        resources=build_resources({**pipeline.overrides, "SCM_LAKE": lake.root}),
        instance=pipeline.instance,
    )
    assert result.success
    outcome = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert outcome == {
        "grain_is_unique": False,
        "grain_has_no_nulls": False,
        "rates_within_0_1": False,
        "invariants_hold": False,
    }


def test_a_failed_run_is_appended_to_the_run_failures_log(tmp_path: Path) -> None:
    @dg.op
    def explode() -> None:
        raise RuntimeError("the warehouse is on fire\nsecond line")

    @dg.job
    def doomed() -> None:
        explode()

    with dg.instance_for_test() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        (failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert failure.dagster_event is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="record_run_failure",
            dagster_event=failure.dagster_event,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"scm": build_resources({"SCM_STATE": str(tmp_path)})["scm"]},
        ).for_run_failure()
        record_run_failure(context)

    lines = (tmp_path / RUN_FAILURES_FILE).read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["job"] == "doomed" and record["run_id"] == result.run_id
    assert record["error"] == "RuntimeError: the warehouse is on fire"
    assert record["failed_steps"] == ["explode"]
    assert dt.datetime.fromisoformat(record["timestamp"]).tzinfo is not None
