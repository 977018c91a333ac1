"""scm.query: DuckDB over the current Delta snapshots, read-only and bounded.

The lake here is real Delta written with deltalake (no Spark); ``build_sample_lake`` is
shared with the dashboard tests. One test reads a delta-spark table (partitioned, rebuilt
with replaceWhere, column mapping, deletion vectors) through the shared Spark session.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from scm.errors import ScmError
from scm.lake import Lake
from scm.query import LakeQuery, is_truncated, open_lake

AS_OF = dt.date(2026, 3, 10)
DAYS = 28
LOCATIONS = ("DC-1", "DC-2")
CHANNELS = ("online", "store", "b2b")
CATEGORIES = {"SKU-A": "apparel", "SKU-B": "apparel", "SKU-C": "electronics"}
SUPPLIERS = ("SUP-1", "SUP-2")
UTC = dt.UTC


def _days() -> list[dt.date]:
    return [AS_OF - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _write(
    root: Path,
    layer: str,
    name: str,
    rows: list[dict[str, object]],
    schema: pa.Schema,
    partition_by: list[str] | None = None,
) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    write_deltalake(str(root / layer / name), table, partition_by=partition_by)


def _fill_rate_rows() -> list[dict[str, object]]:
    """DC-1 fills better than DC-2 and online better than b2b, so filters move the numbers."""
    rows = []
    for day_index, day in enumerate(_days()):
        for loc_index, location in enumerate(LOCATIONS):
            for channel_index, channel in enumerate(CHANNELS):
                orders = 20 + day_index % 5 + channel_index
                orders_filled = orders - 1 - loc_index * 3 - channel_index - (day_index % 2)
                lines = orders * 2
                lines_filled = lines - (orders - orders_filled)
                units = lines * 5
                units_filled = units - (orders - orders_filled) * 3
                rows.append(
                    {
                        "order_date": day,
                        "ship_from": location,
                        "channel": channel,
                        "orders": orders,
                        "orders_filled": orders_filled,
                        "lines": lines,
                        "lines_filled": lines_filled,
                        "units_ordered": units,
                        "units_filled": units_filled,
                        "order_fill_rate": orders_filled / orders,
                        "line_fill_rate": lines_filled / lines,
                        "unit_fill_rate": units_filled / units,
                    }
                )
    return rows


FILL_RATE_SCHEMA = pa.schema(
    [
        ("order_date", pa.date32()),
        ("ship_from", pa.string()),
        ("channel", pa.string()),
        ("orders", pa.int64()),
        ("orders_filled", pa.int64()),
        ("lines", pa.int64()),
        ("lines_filled", pa.int64()),
        ("units_ordered", pa.int64()),
        ("units_filled", pa.int64()),
        ("order_fill_rate", pa.float64()),
        ("line_fill_rate", pa.float64()),
        ("unit_fill_rate", pa.float64()),
    ]
)


def _gold(root: Path) -> None:
    days = _days()
    _write(root, "gold", "fill_rate_daily", _fill_rate_rows(), FILL_RATE_SCHEMA, ["order_date"])
    perfect = []
    cycle = []
    for i, day in enumerate(days):
        for j, location in enumerate(LOCATIONS):
            for k, channel in enumerate(CHANNELS):
                orders = 20 + k
                perfect_orders = orders - 2 - j * 3 - (i % 3)
                perfect.append(
                    {
                        "order_date": day,
                        "ship_from": location,
                        "channel": channel,
                        "orders": orders,
                        "perfect_orders": perfect_orders,
                        "perfect_order_rate": perfect_orders / orders,
                    }
                )
                cycle.append(
                    {
                        "order_date": day,
                        "ship_from": location,
                        "channel": channel,
                        "orders_delivered": orders - 1,
                        "avg_cycle_time_days": 2.0 + j + k * 0.5 + (i % 4) * 0.1,
                    }
                )
    _write(
        root,
        "gold",
        "perfect_order_daily",
        perfect,
        pa.schema(
            [
                ("order_date", pa.date32()),
                ("ship_from", pa.string()),
                ("channel", pa.string()),
                ("orders", pa.int64()),
                ("perfect_orders", pa.int64()),
                ("perfect_order_rate", pa.float64()),
            ]
        ),
    )
    _write(
        root,
        "gold",
        "order_cycle_time_daily",
        cycle,
        pa.schema(
            [
                ("order_date", pa.date32()),
                ("ship_from", pa.string()),
                ("channel", pa.string()),
                ("orders_delivered", pa.int64()),
                ("avg_cycle_time_days", pa.float64()),
            ]
        ),
    )
    turns = []
    for m, month in enumerate([dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)]):
        for j, location in enumerate(LOCATIONS):
            period_days = 10 if month.month == 3 else (31 if month.month == 1 else 28)
            cogs = 10_000.0 * (j + 1) + 1_000 * m
            avg_value = 20_000.0 + 5_000 * j
            turns.append(
                {
                    "month": month,
                    "location_id": location,
                    "period_days": period_days,
                    "cogs": cogs,
                    "avg_inventory_value": avg_value,
                    "inventory_turns": cogs / avg_value * 365 / period_days,
                    "days_of_supply": avg_value / (cogs / period_days),
                }
            )
    _write(
        root,
        "gold",
        "inventory_turns_monthly",
        turns,
        pa.schema(
            [
                ("month", pa.date32()),
                ("location_id", pa.string()),
                ("period_days", pa.int64()),
                ("cogs", pa.float64()),
                ("avg_inventory_value", pa.float64()),
                ("inventory_turns", pa.float64()),
                ("days_of_supply", pa.float64()),
            ]
        ),
    )
    returns = []
    reasons = ("damaged", "defective", "wrong_item", "not_needed", "late_delivery")
    for i, day in enumerate(days):
        for c, category in enumerate(("apparel", "electronics")):
            for r, reason in enumerate(reasons):
                count = 1 + (i + r + c) % 3
                returns.append(
                    {
                        "return_date": day,
                        "category": category,
                        "reason": reason,
                        "returns": count,
                        "units_returned": count * 2,
                        "refund_amount": 25.0 * count * (c + 1),
                        "processing_cost": 4.0 * count + r,
                    }
                )
    _write(
        root,
        "gold",
        "returns_cost_daily",
        returns,
        pa.schema(
            [
                ("return_date", pa.date32()),
                ("category", pa.string()),
                ("reason", pa.string()),
                ("returns", pa.int64()),
                ("units_returned", pa.int64()),
                ("refund_amount", pa.float64()),
                ("processing_cost", pa.float64()),
            ]
        ),
    )
    otif = []
    for i, day in enumerate(days):
        for s, supplier in enumerate(SUPPLIERS):
            po_lines = 10
            po_lines_otif = 9 - s * 2 - i % 2
            otif.append(
                {
                    "expected_date": day,
                    "supplier_id": supplier,
                    "po_lines": po_lines,
                    "po_lines_otif": po_lines_otif,
                    "otif_rate": po_lines_otif / po_lines,
                }
            )
    _write(
        root,
        "gold",
        "supplier_otif_daily",
        otif,
        pa.schema(
            [
                ("expected_date", pa.date32()),
                ("supplier_id", pa.string()),
                ("po_lines", pa.int64()),
                ("po_lines_otif", pa.int64()),
                ("otif_rate", pa.float64()),
            ]
        ),
    )


def _silver(root: Path) -> None:
    days = _days()
    order_lines = []
    shipment_lines = []
    deliveries = []
    skus = list(CATEGORIES)
    for i, day in enumerate(days[-7:]):
        for j, location in enumerate(LOCATIONS):
            order_id = f"O-{i}-{j}"
            requested = day + dt.timedelta(days=2)
            for line_no, sku in enumerate(skus, start=1):
                quantity = 4 + line_no
                order_lines.append(
                    {
                        "order_id": order_id,
                        "line_no": line_no,
                        "sku": sku,
                        "quantity": quantity,
                        "unit_price": 10.0 * line_no,
                        "customer_id": f"C-{j}",
                        "channel": CHANNELS[(i + j) % 3],
                        "ship_from": location,
                        "requested_delivery_date": requested,
                        "order_time": dt.datetime.combine(day, dt.time(9), UTC),
                        "order_date": day,
                    }
                )
                # SKU-C (electronics) ships short at DC-2: unfilled lines to list.
                shipped = quantity - 2 if (sku == "SKU-C" and location == "DC-2") else quantity
                dispatch = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(12), UTC)
                shipment_lines.append(
                    {
                        "shipment_id": f"S-{order_id}",
                        "order_id": order_id,
                        "line_no": line_no,
                        "sku": sku,
                        "quantity": shipped,
                        "dispatch_time": dispatch,
                        "dispatch_date": dispatch.date(),
                        "ship_from": location,
                    }
                )
            delivered = dt.datetime.combine(
                day + dt.timedelta(days=3 if j else 2), dt.time(15), UTC
            )
            delivery = {
                "shipment_id": f"S-{order_id}",
                "order_id": order_id,
                "delivery_time": delivered,
                "delivery_date": delivered.date(),
                "condition": "damaged" if i == 2 else "ok",
                "documents_ok": i != 4,
            }
            # DC-2's carrier reports every delivery twice: its units must count once.
            deliveries.extend([delivery, delivery] if location == "DC-2" else [delivery])
    _write(
        root,
        "silver",
        "order_lines",
        order_lines,
        pa.schema(
            [
                ("order_id", pa.string()),
                ("line_no", pa.int32()),
                ("sku", pa.string()),
                ("quantity", pa.int64()),
                ("unit_price", pa.float64()),
                ("customer_id", pa.string()),
                ("channel", pa.string()),
                ("ship_from", pa.string()),
                ("requested_delivery_date", pa.date32()),
                ("order_time", pa.timestamp("us", tz="UTC")),
                ("order_date", pa.date32()),
            ]
        ),
        ["order_date"],
    )
    _write(
        root,
        "silver",
        "shipment_lines",
        shipment_lines,
        pa.schema(
            [
                ("shipment_id", pa.string()),
                ("order_id", pa.string()),
                ("line_no", pa.int32()),
                ("sku", pa.string()),
                ("quantity", pa.int64()),
                ("dispatch_time", pa.timestamp("us", tz="UTC")),
                ("dispatch_date", pa.date32()),
                ("ship_from", pa.string()),
            ]
        ),
    )
    _write(
        root,
        "silver",
        "deliveries",
        deliveries,
        pa.schema(
            [
                ("shipment_id", pa.string()),
                ("order_id", pa.string()),
                ("delivery_time", pa.timestamp("us", tz="UTC")),
                ("delivery_date", pa.date32()),
                ("condition", pa.string()),
                ("documents_ok", pa.bool_()),
            ]
        ),
    )
    _write(
        root,
        "silver",
        "products",
        [
            {
                "sku": sku,
                "name": f"Product {sku}",
                "category": category,
                "unit_cost": 5.0,
                "unit_price": 10.0,
            }
            for sku, category in CATEGORIES.items()
        ],
        pa.schema(
            [
                ("sku", pa.string()),
                ("name", pa.string()),
                ("category", pa.string()),
                ("unit_cost", pa.float64()),
                ("unit_price", pa.float64()),
            ]
        ),
    )
    now = dt.datetime.now(UTC)
    positions = [
        {"location_id": location, "sku": sku, "on_hand": on_hand, "updated_at": now}
        for location, sku, on_hand in [
            ("DC-1", "SKU-A", 120),
            ("DC-1", "SKU-B", 0),
            ("DC-1", "SKU-C", 7),
            ("DC-2", "SKU-A", 55),
            ("DC-2", "SKU-B", 3),
            ("DC-2", "SKU-C", 80),
        ]
    ]
    _write(
        root,
        "silver",
        "inventory_position",
        positions,
        pa.schema(
            [
                ("location_id", pa.string()),
                ("sku", pa.string()),
                ("on_hand", pa.int64()),
                ("updated_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )


def _bronze(root: Path) -> None:
    now = dt.datetime.now(UTC)
    _write(
        root,
        "bronze",
        "quarantine",
        [
            {
                "topic": "scm.orders",
                "partition": i % 2,
                "offset": 100 + i,
                "key": f"O-{i}",
                "raw_value": "{not json" if i < 3 else '{"event_type": "order_placed"}',
                "error": "invalid JSON" if i < 3 else "missing field: order_id",
                "quarantined_at": now - dt.timedelta(minutes=i),
            }
            for i in range(5)
        ],
        pa.schema(
            [
                ("topic", pa.string()),
                ("partition", pa.int32()),
                ("offset", pa.int64()),
                ("key", pa.string()),
                ("raw_value", pa.string()),
                ("error", pa.string()),
                ("quarantined_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )
    _write(
        root,
        "bronze",
        "orders",
        [
            {
                "event_id": f"e{i}",
                "_topic": "scm.orders",
                "_partition": 0,
                "_offset": i,
                "_ingested_at": now - dt.timedelta(seconds=30 - i),
            }
            for i in range(10)
        ],
        pa.schema(
            [
                ("event_id", pa.string()),
                ("_topic", pa.string()),
                ("_partition", pa.int32()),
                ("_offset", pa.int64()),
                ("_ingested_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )


def _state(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(UTC)
    with (state / "ingest-progress.jsonl").open("w") as out:
        for i in range(6):
            out.write(
                json.dumps(
                    {  # the record scm ingest writes (ingest/progress.py)
                        "time": (now - dt.timedelta(seconds=10 * (6 - i))).isoformat(),
                        "query": "ingest-orders",
                        "batch_id": i,
                        "input_rows": 100 * i,
                        "input_rows_per_second": 50.0 * i,
                        "processed_rows_per_second": 80.0 * i,
                        "batch_duration_ms": 900 + i,
                        "offsets_behind_latest": {"max": 10 - i, "avg": 5 - i / 2},
                    }
                )
                + "\n"
            )
        out.write("not json at all\n")
    with (state / "run-failures.jsonl").open("w") as out:
        out.write(
            json.dumps(
                {
                    "timestamp": now.isoformat(),
                    "job": "gold_daily",
                    "run_id": "r-1",
                    "error": "Spark could not start",
                }
            )
            + "\n"
        )


def _details(root: Path) -> None:
    """The detail tables behind the KPIs, built from the sample silver by their own models."""
    from scm.settings import load_settings
    from transforms.duckdb_engine import DuckDBEngine
    from transforms.kpis.details import DETAIL_TABLES

    engine = DuckDBEngine(load_settings({"SCM_LAKE": str(root)}), Lake.at(str(root)))
    try:
        for table in DETAIL_TABLES:
            engine.write_gold(table, None, AS_OF)
    finally:
        engine.close()


def build_sample_lake(root: Path, state: Path | None = None) -> Path:
    """A small, hand-made lake with every gold table of kpis.md and the silver tables."""
    _gold(root)
    _silver(root)
    _details(root)
    _bronze(root)
    if state is not None:
        _state(state)
    return root


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_lake(tmp_path_factory.mktemp("query") / "lake")


@pytest.fixture(scope="module")
def lake(sample_lake: Path) -> LakeQuery:
    with open_lake(str(sample_lake)) as opened:
        yield opened


# -- reading ------------------------------------------------------------------------------


def test_every_table_is_a_view(lake: LakeQuery) -> None:
    assert lake.tables() == [
        "bronze.orders",
        "bronze.quarantine",
        "gold.fill_rate_daily",
        "gold.inventory_turns_monthly",
        "gold.order_cycle_time_daily",
        "gold.order_line_fulfilment",
        "gold.perfect_order_daily",
        "gold.perfect_order_detail",
        "gold.po_line_otif",
        "gold.returns_cost_daily",
        "gold.returns_detail",
        "gold.supplier_otif_daily",
        "silver.deliveries",
        "silver.inventory_position",
        "silver.order_lines",
        "silver.products",
        "silver.shipment_lines",
    ]


def test_partitioned_table_reads_exactly(lake: LakeQuery) -> None:
    expected = pa.Table.from_pylist(_fill_rate_rows(), schema=FILL_RATE_SCHEMA).sort_by(
        [("order_date", "ascending"), ("ship_from", "ascending"), ("channel", "ascending")]
    )
    got = lake.query("select * from gold.fill_rate_daily order by order_date, ship_from, channel")
    assert got.column_names == FILL_RATE_SCHEMA.names
    assert got.schema.field("order_date").type == pa.date32()
    assert got.to_pylist() == expected.to_pylist()


def test_parameters_are_bound_not_formatted(lake: LakeQuery) -> None:
    sql = """
        select sum(orders) as orders
        from gold.fill_rate_daily
        where order_date between $start_date and $end_date
          and (len($locations) = 0 or list_contains($locations, ship_from))
    """
    start = AS_OF - dt.timedelta(days=6)
    one = lake.query(sql, {"start_date": start, "end_date": AS_OF, "locations": ["DC-1"]})
    both = lake.query(sql, {"start_date": start, "end_date": AS_OF, "locations": []})
    assert 0 < one["orders"][0].as_py() < both["orders"][0].as_py()
    hostile = lake.query(
        sql, {"start_date": start, "end_date": AS_OF, "locations": ["DC-1' or '1'='1"]}
    )
    assert hostile["orders"][0].as_py() is None


def test_new_version_is_seen_by_the_next_query(tmp_path: Path) -> None:
    path = str(tmp_path / "gold" / "kpi")
    write_deltalake(
        path, pa.table({"day": [dt.date(2026, 1, 1)], "value": [1.0]}), partition_by=["day"]
    )
    with open_lake(str(tmp_path)) as lake:
        assert lake.query("select count(*) as n from gold.kpi")["n"][0].as_py() == 1
        write_deltalake(
            path,
            pa.table({"day": [dt.date(2026, 1, 2)], "value": [2.0]}),
            partition_by=["day"],
            mode="append",
        )
        assert lake.query("select sum(value) as v from gold.kpi")["v"][0].as_py() == 3.0
        # An idempotent partition rebuild removes a file: the old rows must disappear.
        write_deltalake(
            path,
            pa.table({"day": [dt.date(2026, 1, 1)], "value": [10.0]}),
            partition_by=["day"],
            mode="overwrite",
            predicate="day = '2026-01-01'",
        )
        assert lake.query("select sum(value) as v from gold.kpi")["v"][0].as_py() == 12.0
        # A table created after the connection opened appears too.
        write_deltalake(str(tmp_path / "silver" / "late"), pa.table({"x": [1]}))
        assert "silver.late" in lake.tables()
        assert lake.query("select x from silver.late")["x"].to_pylist() == [1]


def test_added_since_reads_only_the_files_an_append_only_table_gained(tmp_path: Path) -> None:
    """What an incremental refresh reads of a bronze table: the rows appended since the
    version it read last; a compacted file comes back whole; a vanished version: None."""
    from deltalake import DeltaTable

    path = str(tmp_path / "bronze" / "orders")
    write_deltalake(path, pa.table({"event_id": ["a", "b"]}))
    write_deltalake(path, pa.table({"event_id": ["c"]}), mode="append")
    with open_lake(str(tmp_path)) as lake:

        def rows_since(version: int) -> list[str]:
            select = lake.added_since("bronze.orders", version)
            assert select is not None
            return sorted(lake.query(f"select event_id from ({select})")["event_id"].to_pylist())

        assert rows_since(0) == ["c"]
        assert rows_since(1) == []
        write_deltalake(path, pa.table({"event_id": ["d"]}), mode="append")
        assert rows_since(1) == ["d"]
        DeltaTable(path).optimize.compact()  # one file with every row replaces the three
        assert rows_since(2) == ["a", "b", "c", "d"]
        assert lake.added_since("bronze.orders", 99) is None
        assert lake.added_since("bronze.nothing", 0) is None


def test_a_commit_without_new_files_reads_as_no_rows_of_the_tables_own_types(
    tmp_path: Path,
) -> None:
    """A commit that adds no file (table properties, a vacuum's log entries) moves the
    version an incremental refresh compares: its "rows added since" must be empty and typed
    like the table, nested columns included (silver unnests bronze's ``lines``)."""
    from deltalake import Field, schema

    path = str(tmp_path / "bronze" / "orders")
    lines = pa.list_(pa.struct([("line_no", pa.int64()), ("sku", pa.string())]))
    rows = pa.table(
        {
            "event_id": ["a"],
            "lines": pa.array([[{"line_no": 1, "sku": "S1"}]], lines),
            "labels": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
        }
    )
    write_deltalake(path, rows)
    table = DeltaTable(path)
    table.alter.set_table_properties({"delta.checkpointInterval": "50"})
    # A column no data file holds: read as a null of its own type.
    table.alter.add_columns(Field("ship_to", schema.StructType([Field("city", "string")])))
    with open_lake(str(tmp_path)) as lake:
        select = lake.added_since("bronze.orders", 0)
        assert select is not None
        unnested = lake.query(f"select unnest(lines) as line from ({select}) as added")
        assert unnested.num_rows == 0
        assert unnested.schema.field("line").type == lines.value_type
        whole = lake.query("select * from bronze.orders")
        assert lake.query(f"select * from ({select}) as added").schema == whole.schema
        assert whole.column("ship_to").to_pylist() == [None]
        assert whole.schema.field("ship_to").type == pa.struct([("city", pa.string())])


def test_schema_evolution_and_empty_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "silver" / "evolving")
    write_deltalake(path, pa.table({"a": [1]}))
    write_deltalake(path, pa.table({"a": [2], "b": ["x"]}), mode="append", schema_mode="merge")
    write_deltalake(
        str(tmp_path / "gold" / "empty"),
        pa.table({"d": pa.array([], pa.date32()), "v": pa.array([], pa.float64())}),
    )
    with open_lake(str(tmp_path)) as lake:
        rows = lake.query("select * from silver.evolving order by a").to_pylist()
        assert rows == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
        empty = lake.query("select * from gold.empty")
        assert empty.num_rows == 0 and empty.column_names == ["d", "v"]


def test_special_partition_values_and_nulls(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": ["a b", "c/d", "e%f", "g=h", None],
            "event_at": pa.array(
                [dt.datetime(2026, 1, 1, 1, 2, 3, tzinfo=UTC)] * 5, pa.timestamp("us", tz="UTC")
            ),
            "v": [1, 2, 3, 4, 5],
        }
    )
    write_deltalake(str(tmp_path / "gold" / "odd"), table, partition_by=["key", "event_at"])
    with open_lake(str(tmp_path)) as lake:
        got = lake.query("select key, event_at, v from gold.odd order by v")
        assert got["key"].to_pylist() == ["a b", "c/d", "e%f", "g=h", None]
        assert pc.all(pc.equal(got["event_at"], table["event_at"][0])).as_py()


def test_missing_lake_has_no_tables(tmp_path: Path) -> None:
    with open_lake(str(tmp_path / "nothing")) as lake:
        assert lake.tables() == []
        with pytest.raises(ScmError, match="does not exist"):
            lake.run_user_query("select * from gold.fill_rate_daily")


# -- the read-only guard ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("copy gold.fill_rate_daily to '/tmp/out.csv'", "COPY is not allowed"),
        ("copy (select 1) to '{lake}/gold/x.csv'", "COPY is not allowed"),
        ("attach '/tmp/other.db' as other", "ATTACH is not allowed"),
        ("install httpfs", "is not allowed"),
        ("load httpfs", "LOAD is not allowed"),
        ("create table t as select 1", "CREATE is not allowed"),
        ("create or replace view gold.fill_rate_daily as select 1", "CREATE is not allowed"),
        ("insert into gold.fill_rate_daily select * from gold.fill_rate_daily", "INSERT is not"),
        ("set enable_external_access = true", "SET is not allowed"),
        ("pragma enable_profiling", "is not allowed"),
        ("drop view gold.fill_rate_daily", "DROP is not allowed"),
        ("select * from read_csv('/etc/passwd')", "only the lake's tables and files"),
        ("select * from read_text('{lake}/../../../etc/passwd')", "only the lake's tables"),
        ("select 1; select 2", "one statement per query, found 2"),
        ("", "the query is empty"),
        ("selec 1", "does not parse"),
    ],
)
def test_refusals_are_one_clear_line(
    lake: LakeQuery, sample_lake: Path, sql: str, message: str
) -> None:
    with pytest.raises(ScmError, match=message) as refused:
        lake.run_user_query(sql.format(lake=sample_lake))
    assert "\n" not in str(refused.value)
    assert not (sample_lake / "gold" / "x.csv").exists()
    assert lake.query("select count(*) as n from gold.fill_rate_daily")["n"][0].as_py() > 0


def test_lake_files_can_be_read_directly(lake: LakeQuery, sample_lake: Path) -> None:
    got = lake.run_user_query(
        f"select count(*) as n from read_parquet('{sample_lake}/silver/products/*.parquet')"
    )
    assert got["n"][0].as_py() == 3


def test_describe_show_explain_and_with_are_allowed(lake: LakeQuery) -> None:
    assert lake.run_user_query("describe gold.fill_rate_daily").num_rows == 12
    assert lake.run_user_query("show tables").num_rows >= 0
    assert lake.run_user_query("explain select * from gold.fill_rate_daily").num_rows >= 1
    assert lake.run_user_query("with t as (select 1 as one) select one from t").to_pylist() == [
        {"one": 1}
    ]


def test_row_limit_truncates_and_says_so(lake: LakeQuery) -> None:
    got = lake.run_user_query("select * from range(100000)", max_rows=25)
    assert got.num_rows == 25 and is_truncated(got)
    small = lake.run_user_query("select * from range(25)", max_rows=25)
    assert small.num_rows == 25 and not is_truncated(small)


def test_time_limit_interrupts(lake: LakeQuery) -> None:
    started = time.monotonic()
    with pytest.raises(ScmError, match="longer than 0.5 s"):
        lake.run_user_query(
            "select count(*) from range(1000000000) a, range(1000) b", timeout_seconds=0.5
        )
    assert time.monotonic() - started < 10
    assert lake.run_user_query("select 1 as one").to_pylist() == [{"one": 1}]


# -- tables written by delta-spark ---------------------------------------------------------


@pytest.mark.spark
def test_delta_spark_table_reads_exactly(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Partitioned + replaceWhere rebuild, and column mapping + deletion vectors + a new column."""
    from pyspark.sql import functions as F

    rows = [
        (
            f"O-{i}",
            i % 3,
            dt.date(2026, 1, 1 + i % 4),
            dt.datetime(2026, 1, 1, i % 24, tzinfo=UTC),
            float(i),
        )
        for i in range(40)
    ]
    frame = spark.createDataFrame(
        rows, "order_id string, line_no int, order_date date, order_time timestamp, amount double"
    )
    plain = str(tmp_path / "silver" / "plain")
    frame.write.format("delta").partitionBy("order_date").save(plain)
    (
        frame.filter("order_date = '2026-01-02'")
        .withColumn("amount", F.col("amount") * 10)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", "order_date = '2026-01-02'")
        .save(plain)
    )
    mapped = str(tmp_path / "silver" / "mapped")
    (
        frame.write.format("delta")
        .partitionBy("order_date")
        .option("delta.columnMapping.mode", "name")
        .option("delta.enableDeletionVectors", "true")
        .option("delta.minReaderVersion", "3")
        .option("delta.minWriterVersion", "7")
        .save(mapped)
    )
    spark.sql(f"alter table delta.`{mapped}` rename column amount to amount_usd")
    spark.sql(f"delete from delta.`{mapped}` where line_no = 1")
    spark.sql(f"alter table delta.`{mapped}` add column note string")

    with open_lake(str(tmp_path)) as lake:
        for name, path in (("plain", plain), ("mapped", mapped)):
            expected = spark.read.format("delta").load(path).orderBy("order_id").collect()
            got = lake.query(f"select * from silver.{name} order by order_id")
            assert got.column_names == list(expected[0].asDict()), name
            assert [
                {**row, "order_time": row["order_time"].astimezone(UTC)} for row in got.to_pylist()
            ] == [
                {**row.asDict(), "order_time": row["order_time"].astimezone(UTC)}
                for row in expected
            ], name
        assert lake.query("select count(*) as n from silver.mapped")["n"][0].as_py() == 27


def test_an_unreadable_table_does_not_hide_the_others(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "gold" / "good"), pa.table({"x": [1]}))
    broken = tmp_path / "gold" / "broken" / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text(
        '{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,'
        ' "readerFeatures": ["futureFeature"], "writerFeatures": ["futureFeature"]}}\n'
        '{"metaData": {"id": "1", "format": {"provider": "parquet", "options": {}},'
        ' "schemaString": "{\\"type\\":\\"struct\\",\\"fields\\":[{\\"name\\":\\"x\\",'
        '\\"type\\":\\"long\\",\\"nullable\\":true,\\"metadata\\":{}}]}",'
        ' "partitionColumns": [], "configuration": {}, "createdTime": 1}}\n'
    )
    with open_lake(str(tmp_path)) as lake:
        assert lake.query("select x from gold.good")["x"].to_pylist() == [1]
        with pytest.raises(ScmError, match="gold.broken"):
            lake.run_user_query("select * from gold.broken")


def test_a_query_reads_the_logs_of_the_tables_it_names_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a lake of many tables costs a folder listing; a table's log is read when a
    query names it (the batch engine's refresh names a few of the lake's tables)."""
    import scm.query

    for name in ("a", "b", "c"):
        write_deltalake(str(tmp_path / "gold" / name), pa.table({"x": [1]}))
    opened: list[str] = []
    real = scm.query.DeltaTable

    def counting(path: str, **options: object) -> DeltaTable:
        opened.append(Path(path).name)
        return real(path, **options)

    monkeypatch.setattr(scm.query, "DeltaTable", counting)
    with open_lake(str(tmp_path)) as lake:
        assert opened == []
        assert lake.query("select x from gold.a")["x"].to_pylist() == [1]
        assert opened == ["a"]
        assert lake.has_table("gold.b") and opened == ["a", "b"]
        assert lake.tables() == ["gold.a", "gold.b", "gold.c"]
        assert sorted(opened) == ["a", "b", "c"]
        # An analyst's query sees every table, information_schema included.
        names = lake.run_user_query(
            "select table_name from information_schema.tables where table_schema = 'gold'"
            " order by 1"
        )
        assert names["table_name"].to_pylist() == ["a", "b", "c"]
