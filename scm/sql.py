"""``scm sql``: one read-only query over the lake, printed as a table, CSV or JSON.

Also writes the DuckDB init script an analyst runs in their own client (DuckDB CLI,
notebook, DBeaver) to see the same ``bronze.x``/``silver.x``/``gold.x`` names.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from collections.abc import Sequence
from typing import Literal, TextIO

import pyarrow as pa

from scm.errors import ScmError
from scm.lake import Lake
from scm.query import LAYERS, is_truncated, open_lake_for
from scm.settings import Settings

OutputFormat = Literal["table", "csv", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("table", "csv", "json")
CLI_TIMEOUT_SECONDS = 300.0
_MAX_CELL_WIDTH = 60


def run_sql(
    settings: Settings,
    query: str,
    *,
    output_format: OutputFormat = "table",
    max_rows: int = 10_000,
    timeout_seconds: float = CLI_TIMEOUT_SECONDS,
    out: TextIO | None = None,
) -> int:
    """Run ``query`` read-only against the lake and print the result; 0 on success."""
    if output_format not in OUTPUT_FORMATS:
        raise ScmError(
            f"--format {output_format!r} is invalid: use one of {', '.join(OUTPUT_FORMATS)}"
        )
    stream = out or sys.stdout
    with open_lake_for(settings) as lake:
        try:
            result = lake.run_user_query(query, max_rows=max_rows, timeout_seconds=timeout_seconds)
        except ScmError as error:
            if not lake.tables() and "does not exist" in str(error):
                raise ScmError(
                    f"{error} (the lake at {lake.lake.root} has no tables yet:"
                    " run `scm refresh`, or `make demo` for simulated data)"
                ) from None
            raise
    write_result(result, output_format, stream)
    if is_truncated(result):
        print(
            f"scm: showing the first {max_rows} rows; add a LIMIT or raise --max-rows",
            file=sys.stderr,
        )
    return 0


def write_result(table: pa.Table, output_format: OutputFormat, stream: TextIO) -> None:
    """Print ``table`` in one of the formats ``scm sql`` offers."""
    rows = table.to_pylist()
    names = table.column_names
    if output_format == "json":
        json.dump(rows, stream, default=_json_value, ensure_ascii=False)
        stream.write("\n")
    elif output_format == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[_text(row[name]) for name in names] for row in rows])
    else:
        stream.write(_aligned(table, rows))


def setup_script(lake_root: str) -> str:
    """DuckDB SQL that makes ``bronze.x``/``silver.x``/``gold.x`` views in any DuckDB client.

    It uses DuckDB's delta extension (``delta_scan`` reads the latest snapshot on every
    query), which a client with internet access installs itself.
    """
    lake = Lake.at(lake_root)
    lines = [
        f"-- scm lake at {lake.root}: run in DuckDB (CLI: duckdb -init this.sql)",
        "install delta;",
        "load delta;",
    ]
    for layer in LAYERS:
        lines.append(f"create schema if not exists {layer};")
        for name in lake.tables(layer):
            path = lake.table(layer, name).replace("'", "''")
            lines.append(
                f"create or replace view {layer}.\"{name}\" as select * from delta_scan('{path}');"
            )
    return "\n".join(lines) + "\n"


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return str(value)


def _aligned(table: pa.Table, rows: Sequence[dict[str, object]]) -> str:
    names = table.column_names
    numeric = [
        pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
        for f in table.schema
    ]
    cells = [[_clip(_text(row[name])) for name in names] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if is_number else v.ljust(w)
            for v, w, is_number in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out.extend(line(values) for values in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL_WIDTH else text[: _MAX_CELL_WIDTH - 1] + "…"
