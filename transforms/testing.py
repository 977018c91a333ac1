"""Bronze tables from hand-written events, for tests of transforms and of what builds on them.

Events are the JSON objects producers send (contracts.md), as dicts; they become rows with
exactly the bronze schema of their topic (:func:`scm.contracts.bronze_arrow_schema`) plus
Kafka coordinates in arrival order, written with delta-rs (no Spark needed). An event may
carry its own ``_ingested_at`` (or any other ``_`` column) to stage late arrivals and
duplicates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from scm.contracts import TOPICS, bronze_arrow_schema
from scm.lake import Lake

_FIRST_ARRIVAL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_TOPIC_OF_ENTITY = {topic.entity: name for name, topic in TOPICS.items()}


def _typed(value: Any, kind: pa.DataType) -> Any:
    """A JSON value as the Python value pyarrow stores for ``kind``."""
    if value is None:
        return None
    if pa.types.is_timestamp(kind) and isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if pa.types.is_date(kind) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if pa.types.is_decimal(kind):
        return Decimal(str(value))
    if pa.types.is_list(kind):
        return [_typed(item, kind.value_type) for item in value]
    if pa.types.is_struct(kind):
        return {f.name: _typed(value.get(f.name), f.type) for f in kind}
    return value


def bronze_table(
    entity: str, events: Sequence[Mapping[str, Any]], *, first_offset: int = 0
) -> pa.Table:
    """A bronze-shaped Arrow table of ``events`` for ``bronze/<entity>`` (orders, ...)."""
    topic = _TOPIC_OF_ENTITY[entity]
    schema = bronze_arrow_schema(topic)
    rows = []
    for position, event in enumerate(events):
        offset = first_offset + position
        row = {
            "_topic": topic,
            "_partition": 0,
            "_offset": offset,
            "_kafka_timestamp": event.get("event_time"),
            "_ingested_at": _FIRST_ARRIVAL + dt.timedelta(seconds=offset),
            **event,
        }
        rows.append({f.name: _typed(row.get(f.name), f.type) for f in schema})
    return pa.Table.from_pylist(rows, schema=schema)


def append_bronze(
    lake: Lake, entity: str, events: Sequence[Mapping[str, Any]], *, first_offset: int = 0
) -> None:
    """Append ``events`` to the Delta table ``bronze/<entity>``, as the ingest would."""
    from deltalake import write_deltalake

    write_deltalake(
        lake.bronze(entity), bronze_table(entity, events, first_offset=first_offset), mode="append"
    )


class HandBuiltLake:
    """A lake of hand-written events with silver built by the DuckDB engine, for KPI tests.

    ``products`` rows are (sku, name, category, unit_cost, unit_price). :meth:`gold` runs a
    table's own model over the whole lake, as a refresh builds it.
    """

    def __init__(
        self,
        root: str,
        events: Mapping[str, Sequence[Mapping[str, Any]]],
        products: Sequence[tuple[str, str, str, str, str]] = (),
    ) -> None:
        from deltalake import write_deltalake

        from scm.contracts import master_arrow_schema
        from scm.settings import load_settings
        from transforms.duckdb_engine import DuckDBEngine

        self.lake = Lake.at(root)
        for entity, entity_events in events.items():
            append_bronze(self.lake, entity, entity_events)
        if products:
            schema = master_arrow_schema("products")
            rows = [dict(zip(schema.names, product, strict=True)) for product in products]
            typed = [{f.name: _typed(r[f.name], f.type) for f in schema} for r in rows]
            write_deltalake(self.lake.silver("products"), pa.Table.from_pylist(typed, schema))
        self.engine = DuckDBEngine(load_settings({"SCM_LAKE": root}), self.lake)
        self.engine.update_silver(refresh_id=1)

    def gold(self, table: str, *, as_of: dt.date) -> list[dict[str, Any]]:
        """Every row of gold table ``table`` as of ``as_of``."""
        from transforms.gold import GOLD_TABLES

        rows = self.engine.gold_rows(GOLD_TABLES[table], None, as_of).to_pylist()
        return list(rows)

    def query(self, sql: str, *, as_of: dt.date) -> list[dict[str, Any]]:
        """The rows of a model-dialect query over the lake's silver tables."""
        return list(self.engine.query(self.engine.render(sql, as_of=as_of)).to_pylist())

    def close(self) -> None:
        self.engine.close()


def same_rows(actual: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two row lists hold the same rows in any order (floats to 1e-9 relative)."""
    import math

    def key(row: Mapping[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in row.items() if not isinstance(v, float)))

    if len(actual) != len(expected):
        return False
    for left, right in zip(sorted(actual, key=key), sorted(expected, key=key), strict=True):
        if set(left) != set(right):
            return False
        for name, value in left.items():
            other = right[name]
            if isinstance(value, float) and isinstance(other, float | int):
                if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif value != other:
                return False
    return True
