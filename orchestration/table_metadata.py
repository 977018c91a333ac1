"""Dagster metadata that describes a Delta table: its columns, its size and a preview.

Row counts come from the Delta log (each file's ``numRecords``), so recording them costs no
Spark job; only the log is read (no ``to_pyarrow_*``, platform.md fact 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pyarrow as pa

OWNERS = ["team:data-platform"]
ANALYST_OWNERS = ["team:data-platform", "team:supply-chain-analytics"]


def arrow_table_schema(schema: pa.Schema) -> dg.TableSchema:
    """A declared (contract) Arrow schema as Dagster column metadata."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(field.name, str(field.type), constraints=_nullable(field.nullable))
            for field in schema
        ]
    )


def _nullable(nullable: bool) -> dg.TableColumnConstraints:
    return dg.TableColumnConstraints(nullable=nullable)


def delta_row_count(path: str) -> int | None:
    """Rows in the current snapshot, summed from the log's per-file counts (None: no table)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return None
    actions = pa.table(DeltaTable(path).get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0
    total = pa.compute.sum(actions.column("num_records")).as_py()
    return int(total or 0)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def delta_schema(path: str) -> pa.Schema | None:
    """The schema in the Delta log (None: no table), read without Spark."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return None
    return pa.schema(DeltaTable(path).schema().to_arrow())


def delta_table_metadata(path: str) -> dict[str, Any]:
    """What every Delta materialization records: location, columns and total row count."""
    metadata: dict[str, Any] = {"path": dg.MetadataValue.path(path)}
    schema = delta_schema(path)
    if schema is not None:
        metadata["dagster/column_schema"] = arrow_table_schema(schema)
    rows = delta_row_count(path)
    if rows is not None:
        metadata["dagster/row_count"] = rows
    return metadata
