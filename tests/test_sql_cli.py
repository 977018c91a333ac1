"""``scm sql`` as a user runs it: a real process, so an abort at exit (platform.md fact 4,
exit code 134 after the right answer) fails here."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scm.settings import load_settings
from scm.sql import run_sql, setup_script
from tests.test_query import build_sample_lake

SCM = Path(sys.executable).parent / "scm"


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_lake(tmp_path_factory.mktemp("sql") / "lake")


def _scm_sql(lake_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCM_LAKE": str(lake_root)}
    env.pop("SCM_SETTINGS_FILE", None)
    return subprocess.run(
        [str(SCM), "sql", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=lake_root.parent,
        timeout=120,
    )


def test_count_exits_zero_not_134(lake_root: Path) -> None:
    done = _scm_sql(lake_root, "select count(*) as n from gold.fill_rate_daily")
    assert done.returncode == 0, done.stderr
    assert "terminate called" not in done.stderr
    assert done.stdout.splitlines()[0].strip() == "n"
    assert done.stdout.splitlines()[2].strip() == str(28 * 2 * 3)


def test_csv_and_json_formats(lake_root: Path) -> None:
    query = "select sku, category from silver.products order by sku"
    as_csv = _scm_sql(lake_root, query, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout)))[:2] == [
        ["sku", "category"],
        ["SKU-A", "apparel"],
    ]
    as_json = _scm_sql(lake_root, query, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)[2] == {"sku": "SKU-C", "category": "electronics"}


def test_refusal_is_one_line_and_non_zero(lake_root: Path) -> None:
    done = _scm_sql(lake_root, f"copy gold.fill_rate_daily to '{lake_root}/out.csv'")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("scm: error: COPY is not allowed")
    assert not (lake_root / "out.csv").exists()


def test_row_limit_is_reported(lake_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({"SCM_LAKE": str(lake_root)})
    assert run_sql(settings, "select * from range(50)", output_format="csv", max_rows=5) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["range", "0", "1", "2", "3", "4"]
    assert "first 5 rows" in captured.err


def test_empty_lake_says_what_to_run(tmp_path: Path) -> None:
    done = _scm_sql(tmp_path / "lake", "select * from gold.fill_rate_daily")
    assert done.returncode == 2
    assert "scm refresh" in done.stderr and "make demo" in done.stderr


def test_setup_script_names_every_table(lake_root: Path) -> None:
    script = setup_script(str(lake_root))
    assert "load delta;" in script
    assert (
        f'create or replace view gold."fill_rate_daily" as select * from'
        f" delta_scan('{lake_root}/gold/fill_rate_daily');" in script
    )
