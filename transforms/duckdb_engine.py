"""The DuckDB engine: the SQL models in-process over Delta snapshots, written by delta-rs.

Reads go through :class:`scm.query.LakeQuery` (the current snapshot of every table, the
same reader ``scm sql`` uses, with its memory and spill limits); results come back as
Arrow and are written with ``write_deltalake``: gold partitions replaced with a predicate
(one commit per table), silver rows appended (one commit per table that has new rows).

Silver is kept current without checkpoints: an event is new when its ``event_id`` is not
in its silver table yet, so a bronze copy of an event that arrives in a later refresh is
dropped (deduplication spans all history) and an update replayed after a crash inserts
nothing twice. Only bronze tables whose version moved since the last update are read, and
of those only the files added since (bronze is append-only; a file that compaction
rewrote is read again and its rows, already in silver, are dropped as above).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from scm.contracts import TOPICS, bronze_arrow_schema, master_arrow_schema
from scm.lake import EVENT_ENTITIES, Lake, Layer
from scm.query import open_lake_for
from transforms.engine import Engine, SilverUpdate
from transforms.lake_io import delta_version, table_exists
from transforms.model import GoldTable, Partitions
from transforms.silver import (
    DIMENSIONS,
    FIRST_ARRIVALS,
    REFRESH_ID,
    SILVER_TABLES,
    SilverTable,
    silver_tables_of,
)
from transforms.sql import scope_predicate

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from scm.settings import Settings

_TOPIC_OF_ENTITY = {topic.entity: name for name, topic in TOPICS.items()}


class DuckDBEngine(Engine):
    """The batch layer on one machine (see the module doc)."""

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, settings: Settings, lake: Lake) -> None:
        super().__init__(lake)
        self.db = open_lake_for(settings)
        self._empty: set[str] = set()
        self._aliases: dict[str, str] = {}  # logical name -> what its view reads now
        self._writers: dict[str, DeltaTable] = {}  # path -> the table object writes go through

    # -- reading ------------------------------------------------------------------------

    def relation(self, logical: str) -> str:
        # A view under the logical name, so the model text runs as written (no transpiling).
        target = f"silver.{logical}"
        if not self.db.has_table(target):
            target = f"_empty_{logical}"
            if target not in self._empty:
                if logical in DIMENSIONS:
                    schema = master_arrow_schema(logical)
                else:
                    schema = self.silver_schema(SILVER_TABLES[logical])
                self.db.register(target, schema.empty_table())
                self._empty.add(target)
        if self._aliases.get(logical) != target:
            self.db.alias(logical, target)
            self._aliases[logical] = target
        return logical

    def gold_relation(self, name: str) -> str:
        return f"gold.{name}"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        result = self.query(sql)
        return list(zip(*(column.to_pylist() for column in result.columns), strict=True))

    def query(self, sql: str) -> pa.Table:
        """Run engine SQL; the silver tables behind the aliases are re-pointed first."""
        aliased = [f"silver.{name}" for name, target in self._aliases.items() if "." in target]
        return self.db.query(sql, tables=aliased)

    def close(self) -> None:
        self.db.close()

    def _table(self, layer: Layer, name: str) -> DeltaTable | None:
        """The table object writes go through, kept for the engine's lifetime and shared
        with its reader: its log is read once, then only new commits (None: no table)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        path = self.lake.table(layer, name)
        # The reader's object when a query opened the table: its log is loaded already.
        table = self._writers.get(path) or self.db.delta_table(f"{layer}.{name}")
        if table is None:
            with contextlib.suppress(TableNotFoundError):
                table = self._writers[path] = DeltaTable(path)
        else:
            table.update_incremental()
            self._writers[path] = table
        return table

    def gold_columns(self, name: str) -> list[str] | None:
        # The object the table's write will reuse: asking costs no extra log read.
        table = self._table("gold", name)
        return None if table is None else [field.name for field in table.schema().fields]

    def _write(self, layer: Layer, name: str, rows: pa.Table, **options: Any) -> None:
        """Write through :meth:`_table`'s object; rows are cast to the table's own types
        unless the write replaces its schema."""
        from deltalake import DeltaTable, write_deltalake

        path = self.lake.table(layer, name)
        table = self._table(layer, name)
        if table is not None and options.get("schema_mode") != "overwrite":
            rows = rows.cast(pa.schema(table.schema().to_arrow()))  # type: ignore[arg-type]
        write_deltalake(table or path, rows, **options)
        self._writers[path] = table or DeltaTable(path)

    # -- silver -------------------------------------------------------------------------

    def _bronze_relation(self, source: str) -> str:
        if self.db.has_table(f"bronze.{source}"):
            return f"bronze.{source}"
        empty = f"_empty_bronze_{source}"
        if empty not in self._empty:
            self.db.register(empty, bronze_arrow_schema(_TOPIC_OF_ENTITY[source]).empty_table())
            self._empty.add(empty)
        return empty

    def _silver_rows_sql(
        self, table: SilverTable, bronze: str, refresh_id: int, only_new: bool
    ) -> str:
        new = (
            f" WHERE event_id NOT IN (SELECT event_id FROM silver.{table.name})" if only_new else ""
        )
        return self.render(
            f"WITH bronze AS (SELECT * FROM {bronze}),"
            f" bronze_events AS (SELECT * FROM ({FIRST_ARRIVALS}) AS first_arrivals{new})"
            f" SELECT *, CAST({refresh_id} AS BIGINT) AS {REFRESH_ID} FROM ({table.sql}) AS rows"
        )

    def silver_schema(self, table: SilverTable) -> pa.Schema:
        """The schema of a silver table: its model run over an empty bronze table."""
        empty = f"_empty_bronze_{table.source}"
        if empty not in self._empty:
            schema = bronze_arrow_schema(_TOPIC_OF_ENTITY[table.source])
            self.db.register(empty, schema.empty_table())
            self._empty.add(empty)
        return self.query(self._silver_rows_sql(table, empty, 0, only_new=False)).schema

    def update_silver(
        self,
        *,
        refresh_id: int,
        full: bool = False,
        read_versions: Mapping[str, int | None] | None = None,
    ) -> SilverUpdate:
        versions = {source: delta_version(self.lake.bronze(source)) for source in EVENT_ENTITIES}
        inserted = dict.fromkeys(SILVER_TABLES, 0)
        for source in EVENT_ENTITIES:
            unchanged = read_versions is not None and read_versions.get(source) == versions[source]
            if not full and (versions[source] is None or unchanged):
                continue
            bronze = self._bronze_relation(source)
            since = None if read_versions is None or full else read_versions.get(source)
            added = None if since is None else self.db.added_since(bronze, since)
            for table in silver_tables_of(source):
                path = self.lake.silver(table.name)
                exists = table_exists(path)
                reads = f"({added})" if added is not None and exists else bronze
                rows = self.query(
                    self._silver_rows_sql(table, reads, refresh_id, only_new=exists and not full)
                )
                if full:
                    self._write(
                        "silver", table.name, rows, mode="overwrite", schema_mode="overwrite"
                    )
                elif rows.num_rows:
                    self._write(
                        "silver", table.name, rows, mode="append" if exists else "overwrite"
                    )
                inserted[table.name] = rows.num_rows
        return SilverUpdate(inserted, versions)

    # -- gold ---------------------------------------------------------------------------

    def gold_rows(self, table: GoldTable, partitions: Partitions, as_of: dt.date) -> pa.Table:
        """The rows of ``partitions`` of ``table``, typed as the table declares."""
        if table.compute is not None:
            inputs = self.query(self.render(table.sql, as_of=as_of, partitions=partitions))
            return table.computed_rows(inputs, as_of)
        return self.query(self.render(table.typed_sql(), as_of=as_of, partitions=partitions))

    def write_gold(self, table: GoldTable, partitions: Partitions, as_of: dt.date) -> int:
        if partitions is not None and not partitions:
            return 0
        rows = self.gold_rows(table, partitions, as_of)
        if (
            partitions is None
            or table.partition_column is None
            or not table_exists(self.lake.gold(table.name))
        ):
            self._write(
                "gold",
                table.name,
                rows,
                mode="overwrite",
                schema_mode="overwrite",
                partition_by=table.partition_by,
            )
        else:
            self._write(
                "gold",
                table.name,
                rows,
                mode="overwrite",
                predicate=scope_predicate(table.partition_column, partitions),
                partition_by=table.partition_by,
            )
        return rows.num_rows
