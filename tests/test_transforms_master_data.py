"""Landing CSVs into bronze master tables: typed, validated, reloaded only when changed."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable

from scm.errors import ScmError
from scm.lake import Lake
from transforms.master_data import load_master_data

PRODUCTS = "sku,name,category,unit_cost,unit_price\nA,Anvil,tools,2.5,9.99\nB,Bolt,parts,0.1234,1\n"


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    lake = Lake.at(str(tmp_path / "lake"))
    os.makedirs(lake.landing)
    return lake


def _drop(lake: Lake, name: str, text: str) -> None:
    Path(lake.landing, name).write_text(text)


def _rows(lake: Lake, entity: str) -> list[dict[str, object]]:
    # Arrow batches from the file list, not to_pyarrow_table (platform.md, fact 4).
    import pyarrow.parquet as pq

    table = DeltaTable(lake.bronze(entity))
    files = [os.path.join(lake.bronze(entity), f) for f in table.file_uris()]
    return sorted((r for f in files for r in pq.read_table(f).to_pylist()), key=str)


def test_loads_typed_snapshots_and_skips_unchanged_files(lake: Lake) -> None:
    _drop(lake, "products.csv", PRODUCTS)
    _drop(lake, "suppliers.csv", "supplier_id,name,country,lead_time_days\nS1,Acme,DE,7\n")
    first = {load.entity: load for load in load_master_data(lake)}
    assert (first["products"].outcome, first["products"].rows) == ("loaded", 2)
    assert first["suppliers"].outcome == "loaded"
    assert first["locations"].outcome == "missing"
    assert _rows(lake, "products")[0] == {
        "sku": "A", "name": "Anvil", "category": "tools",
        "unit_cost": Decimal("2.5000"), "unit_price": Decimal("9.9900"),
    }  # fmt: skip
    assert _rows(lake, "suppliers") == [
        {"supplier_id": "S1", "name": "Acme", "country": "DE", "lead_time_days": 7}
    ]
    version = DeltaTable(lake.bronze("products")).version()

    again = {load.entity: load.outcome for load in load_master_data(lake)}
    assert again["products"] == again["suppliers"] == "unchanged"
    # Touched but identical content: the hash says unchanged, nothing is written.
    os.utime(Path(lake.landing, "products.csv"), ns=(1, 1))
    assert load_master_data(lake)[0].outcome == "unchanged"
    assert DeltaTable(lake.bronze("products")).version() == version

    _drop(lake, "products.csv", PRODUCTS + "C,Cog,parts,3,4\n")
    assert load_master_data(lake)[0].rows == 3
    assert DeltaTable(lake.bronze("products")).version() == version + 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "products.csv",
            "sku,name,category,unit_price\nA,Anvil,tools,1\n",
            "products.csv: missing column(s) unit_cost",
        ),
        (
            "products.csv",
            "sku,name,category,unit_cost,unit_price\nA,Anvil,tools,1,2\nB,Bolt,parts,cheap,2\n",
            "products.csv row 2 (line 3), column unit_cost: must be a number >= 0, got 'cheap'",
        ),
        (
            "products.csv",
            "sku,name,category,unit_cost,unit_price\nA,Anvil,tools,1.23456,2\n",
            "products.csv row 1 (line 2), column unit_cost",
        ),
        (
            "products.csv",
            "sku,name,category,unit_cost,unit_price\nA,Anvil,tools,1,2\nB,Bolt,parts,3,2,9\n",
            "products.csv line 3: 6 fields where the header has 5: 'B,Bolt,parts,3,2,9'",
        ),
        (
            "locations.csv",
            "location_id,name,type,region\nDC-1,Main,warehouse,EU\n",
            "locations.csv row 1 (line 2), column type: must be one of dc|store, got 'warehouse'",
        ),
        (
            "suppliers.csv",
            "supplier_id,name,country,lead_time_days\nS1,Acme,DE,7\nS2,Bolt Co,FR,-1\n",
            "suppliers.csv row 2 (line 3), column lead_time_days: must be an integer >= 0",
        ),
        (
            "customers.csv",
            "customer_id,name,segment,region\nC1,Ann,retail,EU\nC2,Bo,b2b,US\nC1,Al,b2b,EU\n",
            "customers.csv row 3 (line 4), column customer_id: duplicate key 'C1' "
            "(first seen in row 1 (line 2))",
        ),
    ],
)
def test_rejects_bad_files_and_keeps_the_previous_snapshot(
    lake: Lake, name: str, text: str, message: str
) -> None:
    good = {
        "products.csv": PRODUCTS,
        "locations.csv": "location_id,name,type,region\nDC-1,Main,dc,EU\n",
        "suppliers.csv": "supplier_id,name,country,lead_time_days\nS1,Acme,DE,7\n",
        "customers.csv": "customer_id,name,segment,region\nC1,Ann,retail,EU\n",
    }[name]
    _drop(lake, name, good)
    load_master_data(lake)
    entity = name.removesuffix(".csv")
    before = _rows(lake, entity)

    _drop(lake, name, text)
    with pytest.raises(ScmError) as error:
        load_master_data(lake)
    assert message in str(error.value)
    assert _rows(lake, entity) == before
