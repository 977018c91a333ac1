"""Delta metadata read without Spark (transforms/lake_io.py): the version a refresh records
and compares must be the table's own, whatever its log holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from transforms.lake_io import delta_version


def _append(path: Path, value: int, **options: Any) -> None:
    write_deltalake(str(path), pa.table({"n": [value]}), mode="append", **options)


def test_no_table_has_no_version(tmp_path: Path) -> None:
    assert delta_version(str(tmp_path / "missing")) is None
    log = tmp_path / "being_created" / "_delta_log"
    log.mkdir(parents=True)
    (log / "_commit_0a1b.json.tmp").write_text("{}")  # a commit not published yet
    assert delta_version(str(tmp_path / "being_created")) is None


def test_the_version_is_the_tables_own_after_checkpoints_and_log_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "table"
    # No log retention: the cleanup below removes every commit file a checkpoint covers.
    retention = {"delta.logRetentionDuration": "interval 0 seconds"}
    _append(path, 0, configuration=retention)
    for value in range(1, 12):
        _append(path, value)
        assert delta_version(str(path)) == DeltaTable(str(path)).version() == value
    table = DeltaTable(str(path))
    table.create_checkpoint()
    table.cleanup_metadata()
    _append(path, 12)
    assert not (path / "_delta_log" / f"{0:020d}.json").exists()  # the old commits are gone
    assert delta_version(str(path)) == DeltaTable(str(path)).version() == 12
    assert delta_version(f"file://{path}") == 12
