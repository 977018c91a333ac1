"""Rows, files and bytes of Delta tables, read from the log (no data scan)."""

from __future__ import annotations

from typing import Any

from scm.lake import BRONZE_ENTITIES, Lake


def table_stats(path: str) -> dict[str, Any] | None:
    """Version, rows (from file statistics), file count and size of one Delta table."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from scm import storage

    log = f"{path}/_delta_log"
    if not storage.is_dir(log):
        return None
    table = DeltaTable(path)
    actions = pa.table(table.get_add_actions(flatten=True))
    files = actions.num_rows
    size = sum(value or 0 for value in actions.column("size_bytes").to_pylist()) if files else 0
    rows = sum(value or 0 for value in actions.column("num_records").to_pylist()) if files else 0
    commits = len([name for name in storage.children(log) if name.endswith(".json")])
    return {
        "version": table.version(),
        "rows": rows,
        "files": files,
        "bytes": size,
        "avg_file_kib": round(size / files / 1024, 1) if files else 0.0,
        "log_commits": commits,
        "partition_columns": list(table.metadata().partition_columns),
    }


def bronze_rows(lake_root: str) -> int:
    """Rows in every bronze event table plus quarantine."""
    lake = Lake.at(lake_root)
    total = 0
    for entity in BRONZE_ENTITIES:
        stats = table_stats(lake.bronze(entity))
        if stats is not None and entity not in ("products", "locations", "suppliers", "customers"):
            total += int(stats["rows"])
    return total


def layer_stats(lake_root: str, layer: str) -> dict[str, dict[str, Any]]:
    """``table_stats`` for every table of a layer."""
    lake = Lake.at(lake_root)
    found: dict[str, dict[str, Any]] = {}
    for name in lake.tables(layer):  # type: ignore[arg-type]
        stats = table_stats(lake.table(layer, name))  # type: ignore[arg-type]
        if stats is not None:
            found[name] = stats
    return found
