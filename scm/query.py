"""Read-only DuckDB over the current Delta snapshot of every table in the lake.

Each Delta table is a view ``<layer>.<name>`` over the Parquet files of its current snapshot
(deltalake's file list, read with DuckDB's own ``read_parquet``): measured as fast as DuckDB
1.4.4's delta extension and faster than deltalake's Arrow dataset, without pinning DuckDB to
1.4.4 (docs/analysts.md).
Partition values come from the Delta log, not from guessing paths; column mapping and
deletion vectors are honoured. Before each query the views it names are re-pointed if their
table has a newer commit (one ``stat`` per table), so a query always sees the latest snapshot.
An ``s3://`` lake is read the same way, its files served to DuckDB by Arrow's S3 client
(:class:`scm.storage.DuckDBObjectStore`).

The database is locked down with DuckDB's own switches (external access off except the lake
folder, configuration locked) and user text must be a single read-only statement.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import numpy as np
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.schema import ArrayType, MapType, PrimitiveType, StructType

from scm import storage
from scm.errors import ScmError
from scm.lake import Lake, Layer
from scm.settings import QueryLimits, Settings

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_TIMEOUT_SECONDS",
    "LAYERS",
    "LakeQuery",
    "TableSnapshot",
    "is_truncated",
    "open_lake",
    "open_lake_for",
]

LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold")
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_SECONDS = 30.0

Params = Sequence[Any] | Mapping[str, Any] | None

_TRUNCATED_KEY = b"scm.truncated"
# Statement kinds a user may run: DESCRIBE, SHOW and SUMMARIZE parse as SELECT in DuckDB.
_READ_ONLY = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
_REFUSAL_HINT = "the lake is read-only, so run one SELECT, WITH, EXPLAIN, DESCRIBE or SHOW query"
_TABLE_REFERENCE = re.compile(
    r'\b"?(bronze|silver|gold)"?\s*\.\s*(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))', re.IGNORECASE
)
# Partition values that DuckDB's hive parser reads back verbatim.
_PLAIN_PARTITION_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Delta reader features this reader implements (others fail loudly, never read wrongly).
_SUPPORTED_READER_FEATURES = frozenset(
    {
        "columnMapping",
        "deletionVectors",
        "timestampNtz",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "typeWidening",
        "typeWidening-preview",
    }
)
_PRIMITIVE_TYPES = {  # DuckDB's own spelling, so a column already of the type is not cast
    "string": "VARCHAR",
    "long": "BIGINT",
    "integer": "INTEGER",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "binary": "BLOB",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
}


@dataclass(frozen=True)
class TableSnapshot:
    """The Delta version a view currently reads and when it was committed."""

    name: str
    path: str
    version: int
    committed_at_epoch: float


def is_truncated(table: pa.Table) -> bool:
    """True when :meth:`LakeQuery.run_user_query` cut the result at its row limit."""
    metadata = table.schema.metadata or {}
    return metadata.get(_TRUNCATED_KEY) == b"true"


def open_lake(
    lake_root: str, *, limits: QueryLimits | None = None, spill_directory: Path | None = None
) -> LakeQuery:
    """A read-only DuckDB session over the lake at ``lake_root`` (which may not exist yet)."""
    return LakeQuery(lake_root, limits=limits, spill_directory=spill_directory)


def open_lake_for(settings: Settings) -> LakeQuery:
    """The session ``scm sql`` and the dashboards use: limits and spill folder from settings."""
    return LakeQuery(
        settings.lake, limits=settings.query_limits, spill_directory=settings.spill_directory
    )


_SPILL_PREFIX = "duckdb-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _own_spill_folder(parent: Path) -> Path:
    """A fresh spill folder for this session; folders of dead processes are removed first.

    DuckDB deletes its temporary files when a session closes, but a killed process leaves
    them behind, so every new session sweeps the folders whose process is gone.
    """
    parent.mkdir(parents=True, exist_ok=True)
    for leftover in parent.glob(f"{_SPILL_PREFIX}*"):
        pid = leftover.name[len(_SPILL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-", dir=parent))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _duckdb_type(delta_type: object) -> str | None:
    """DuckDB type of a Delta column; None for nested types, which are read as stored."""
    if not isinstance(delta_type, PrimitiveType):
        return None
    name = delta_type.type
    if name.startswith("decimal"):
        return name.upper().replace(" ", "")
    return _PRIMITIVE_TYPES.get(name)


def _null_type(delta_type: object) -> str:
    """DuckDB type of a column no data file holds, nested types spelled out: an empty
    snapshot's ``lines`` must still be a list for ``unnest`` (text for what is unknown)."""
    if isinstance(delta_type, ArrayType):
        return f"{_null_type(delta_type.element_type)}[]"
    if isinstance(delta_type, MapType):
        return f"MAP({_null_type(delta_type.key_type)}, {_null_type(delta_type.value_type)})"
    if isinstance(delta_type, StructType):
        members = ", ".join(f"{_quote(f.name)} {_null_type(f.type)}" for f in delta_type.fields)
        return f"STRUCT({members})"
    return _duckdb_type(delta_type) or "VARCHAR"


def _commit_file(path: str, version: int) -> str:
    return f"{path}/_delta_log/{version:020d}.json"


def _has_commits(path: str) -> bool:
    return any(
        entry.endswith((".json", ".parquet")) for entry in storage.children(f"{path}/_delta_log")
    )


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class _Column:
    name: str
    physical: str
    sql_type: str | None
    null_type: str  # the type of a null standing in for it (nested types too)
    is_partition: bool


class _SnapshotSql:
    """Builds the ``select`` that reads one Delta snapshot exactly (pure string building)."""

    def __init__(
        self,
        table: DeltaTable,
        root: str,
        probe: duckdb.DuckDBPyConnection,
        file_columns: dict[str, frozenset[tuple[str, str, str]]],
        *,
        leave_out: frozenset[str] = frozenset(),
    ) -> None:
        """``leave_out``: data files (log paths, decoded) not to read, e.g. those an
        append-only table had at an earlier version."""
        self.table = table
        self.root = root.rstrip("/")
        self.leave_out = leave_out
        self.probe = probe
        self.file_columns = file_columns  # data files never change: shared across versions
        config = table.metadata().configuration
        mapping = config.get("delta.columnMapping.mode", "none") != "none"
        partitions = list(table.metadata().partition_columns)
        self.columns = [
            _Column(
                name=field.name,
                physical=(field.metadata or {}).get("delta.columnMapping.physicalName", field.name)
                if mapping
                else field.name,
                sql_type=_duckdb_type(field.type),
                null_type=_null_type(field.type),
                is_partition=field.name in partitions,
            )
            for field in table.schema().fields
        ]
        self.partitions = [c for c in self.columns if c.is_partition]
        self.mapping = mapping
        self.row_ids = False
        self.union_by_name = False
        self.hive = False

    def build(self, deleted_rows_table: str | None) -> str:
        actions = pa.table(self.table.get_add_actions(flatten=True))
        if self.leave_out:
            paths_now = [unquote(p) for p in actions.column("path").to_pylist()]
            actions = actions.filter(pa.array([p not in self.leave_out for p in paths_now]))
        if actions.num_rows == 0:
            return self._empty()
        paths = [self._local_path(p) for p in actions.column("path").to_pylist()]
        files = paths
        partition_values = [
            actions.column(f"partition.{c.name}").to_pylist()
            if f"partition.{c.name}" in actions.column_names
            else [None] * actions.num_rows
            for c in self.partitions
        ]
        rows = list(zip(*partition_values, strict=True)) if self.partitions else []
        present = self._physical_columns(files)
        self.row_ids = deleted_rows_table is not None
        extra = ", filename=true, file_row_number=true" if self.row_ids else ""
        if not self.partitions:
            source = f"read_parquet({self._list(files)}, {self._by_name()}{extra})"
            sql = f"select {self._projection(present, {})} from {source}"
        elif not self.mapping and self._paths_are_hive(paths, rows):
            self.hive = True
            types = ", ".join(
                f"{_literal(c.name)}: {_literal(c.sql_type)}" for c in self.partitions
            )
            source = (
                f"read_parquet({self._list(paths)}, {self._by_name()}, hive_partitioning=true,"
                f" hive_types={{{types}}}{extra})"
            )
            projection = self._projection(
                present, {c.name: _quote(c.name) for c in self.partitions}
            )
            sql = f"select {projection} from {source}"
        else:
            sql = self._union_by_partition(paths, rows, present, extra)
        if deleted_rows_table:
            sql = (
                f"select * exclude (filename, file_row_number) from ({sql}) as snapshot"
                f" anti join {deleted_rows_table} as deleted using (filename, file_row_number)"
            )
        return sql

    def _local_path(self, action_path: str) -> str:
        """A file of an add action as a local path (log paths are relative, URI-encoded)."""
        decoded = unquote(action_path)
        if "://" in decoded:
            return decoded.removeprefix("file://")
        return f"{self.root}/{decoded}"

    def _by_name(self) -> str:
        return f"union_by_name={str(self.union_by_name).lower()}"

    def _empty(self) -> str:
        projection = ", ".join(
            f"cast(null as {c.null_type}) as {_quote(c.name)}" for c in self.columns
        )
        return f"select {projection} where false"

    @staticmethod
    def _list(files: Sequence[str]) -> str:
        return "[" + ", ".join(_literal(f) for f in files) + "]"

    def _physical_columns(self, files: Sequence[str]) -> dict[str, str]:
        """DuckDB type of every top-level column found in the data files.

        Also decides ``union_by_name``: it is only needed (and only paid for, it reads every
        footer on each query) when files differ in their columns, e.g. after a column was
        added; a column added later may be in no file at all.
        """
        columns_per_file: dict[str, set[tuple[str, str, str]]] = {}
        remaining: dict[str, list[int]] = {}
        unseen = [f for f in files if f not in self.file_columns]
        rows = (
            self.probe.sql(
                "select file_name, name, type, converted_type, num_children"
                f" from parquet_schema({self._list(unseen)})"
            ).fetchall()
            if unseen
            else []
        )
        for file_name, name, physical, converted, children in rows:
            stack = remaining.setdefault(file_name, [])
            if not stack:  # the root of this file's schema tree
                columns_per_file[file_name] = set()
                stack.append(children or 0)
                continue
            if len(stack) == 1:
                columns_per_file[file_name].add((name, str(physical), str(converted)))
            stack[-1] -= 1
            if children:
                stack.append(children)
            while len(stack) > 1 and stack[-1] == 0:
                stack.pop()
        for file_name, found in columns_per_file.items():
            self.file_columns[file_name] = frozenset(found)
        current = set(files)
        for gone in [f for f in self.file_columns if f not in current and not self.leave_out]:
            del self.file_columns[gone]  # removed from the snapshot: forget it
        shapes = {self.file_columns.get(f, frozenset()) for f in files}
        self.union_by_name = len(shapes) > 1
        source = files if self.union_by_name else files[:1]
        described = self.probe.sql(
            f"describe select * from read_parquet({self._list(source)},"
            f" union_by_name={str(self.union_by_name).lower()}, hive_partitioning=false)"
        ).fetchall()
        return {row[0]: row[1] for row in described}

    def _projection(self, present: Mapping[str, str], partition_sql: Mapping[str, str]) -> str:
        parts = []
        for column in self.columns:
            if column.name in partition_sql:
                value, stored = partition_sql[column.name], None
            elif column.physical in present:
                value, stored = _quote(column.physical), present[column.physical]
            else:
                value, stored = "null", None
            # Casting a column that already has the type would hide it from filter pushdown.
            cast_to = column.sql_type or (column.null_type if value == "null" else None)
            if (
                cast_to
                and stored != cast_to
                and not (column.is_partition and self.hive and value == _quote(column.name))
            ):
                value = f"cast({value} as {cast_to})"
            parts.append(f"{value} as {_quote(column.name)}")
        if self.row_ids:  # kept until the anti join with the deletion vectors' rows
            parts.extend(["filename", "file_row_number"])
        return ", ".join(parts)

    def _paths_are_hive(self, paths: Sequence[str], rows: Sequence[tuple[object, ...]]) -> bool:
        """True when every file path spells its partition values plainly (col=value/...)."""
        for path, values in zip(paths, rows, strict=True):
            segments = path.split("/")
            for column, value in zip(self.partitions, values, strict=True):
                if value is None or column.sql_type is None or "TIMESTAMP" in column.sql_type:
                    return False
                text = value.isoformat() if hasattr(value, "isoformat") else str(value)
                if not _PLAIN_PARTITION_VALUE.match(text):
                    return False
                if f"{column.name}={text}" not in segments:
                    return False
        return True

    def _union_by_partition(
        self,
        paths: Sequence[str],
        rows: Sequence[tuple[object, ...]],
        present: Mapping[str, str],
        extra: str,
    ) -> str:
        groups: dict[tuple[object, ...], list[str]] = {}
        for path, values in zip(paths, rows, strict=True):
            groups.setdefault(values, []).append(path)
        branches = []
        for values, group in groups.items():
            constants = {
                c.name: "null" if v is None else _literal(v)
                for c, v in zip(self.partitions, values, strict=True)
            }
            source = (
                f"read_parquet({self._list(group)}, {self._by_name()},"
                f" hive_partitioning=false{extra})"
            )
            branches.append(f"select {self._projection(present, constants)} from {source}")
        return " union all ".join(branches)


class LakeQuery:
    """One in-memory DuckDB database whose schemas bronze, silver and gold mirror the lake.

    Safe to share between threads (Streamlit sessions): each query runs on its own cursor.
    """

    def __init__(
        self,
        lake_root: str,
        *,
        limits: QueryLimits | None = None,
        spill_directory: Path | None = None,
    ) -> None:
        self.lake = Lake.at(lake_root)
        self.limits = limits or QueryLimits()
        self._lock = threading.RLock()
        self._found: dict[str, str] = {}  # every table in the lake -> its path
        self._snapshots: dict[str, TableSnapshot] = {}  # the tables opened so far
        self._delta_tables: dict[str, DeltaTable] = {}
        self._file_columns: dict[str, dict[str, frozenset[tuple[str, str, str]]]] = {}
        # Tables that exist but cannot be read: one bad table must not hide the others.
        self._unreadable: dict[str, str] = {}
        self._connection = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        parent = spill_directory or Path(tempfile.gettempdir()) / "scm-spill"
        self.spill_folder = _own_spill_folder(parent)
        atexit.register(shutil.rmtree, self.spill_folder, ignore_errors=True)
        if not self.lake.is_local:
            self._connection.register_filesystem(storage.DuckDBObjectStore())
        root = self.lake.root.rstrip("/") + "/"
        for statement, parameters in (
            ("set allowed_directories = $directories", {"directories": [root]}),
            (f"set memory_limit = {_literal(self.limits.memory)}", None),
            (f"set temp_directory = {_literal(str(self.spill_folder))}", None),
            (f"set max_temp_directory_size = {_literal(self.limits.spill)}", None),
            ("set parquet_metadata_cache = true", None),
            ("set TimeZone = 'UTC'", None),
            ("set python_enable_replacements = false", None),
            ("set enable_external_access = false", None),
            ("set lock_configuration = true", None),
        ):
            self._connection.execute(statement, parameters)
        for layer in LAYERS:
            self._connection.execute(f"create schema {layer}")
        self._connection.execute("create schema _scm")
        self._discover()

    # -- public surface -------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Qualified names (``gold.fill_rate_daily``) of every Delta table in the lake now."""
        with self._lock:
            self._open_all()
            return sorted(self._snapshots)

    def delta_table(self, name: str) -> DeltaTable | None:
        """The loaded ``DeltaTable`` behind a view (None: not opened), for a writer in this
        process to reuse instead of reading the same log again."""
        with self._lock:
            return self._delta_tables.get(name)

    def has_table(self, name: str) -> bool:
        with self._lock:
            if name not in self._found:
                self._discover()
            self._open(name)
            return name in self._snapshots

    def added_since(self, name: str, version: int) -> str | None:
        """A ``select`` of the rows in files added to table ``name`` after ``version``:
        for an append-only table, its new rows (a file rewritten by compaction comes back
        whole, so callers must tolerate rows they have seen). None when the table cannot
        be read that way (unknown, version gone, deletion vectors): read it whole."""
        with self._lock:
            self._referenced_tables(name)
            self._refresh(name)
            snapshot = self._snapshots.get(name)
            table = self._delta_tables.get(name)
            if snapshot is None or table is None:
                return None
            if "deletionVectors" in set(table.protocol().reader_features or []):
                return None
            try:
                earlier = DeltaTable(snapshot.path, version=version).get_add_actions(flatten=True)
            except DeltaError:
                return None  # that version's log was cleaned up, or it never existed
            file_columns = self._file_columns.setdefault(name, {})
            return _SnapshotSql(
                table,
                snapshot.path,
                self._connection,
                file_columns,
                leave_out=frozenset(
                    unquote(f) for f in pa.table(earlier).column("path").to_pylist()
                ),
            ).build(None)

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        timeout_seconds: float | None = None,
        tables: Sequence[str] = (),
    ) -> pa.Table:
        """Run the application's own (named, parameterised) SQL on the current snapshots;
        ``tables`` names lake tables it reads through aliases (see :meth:`alias`)."""
        self._check_read_only(sql)
        return self._execute(
            sql, params, max_rows=None, timeout_seconds=timeout_seconds, also=tables
        )

    def run_user_query(
        self,
        sql: str,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> pa.Table:
        """Run an analyst's SQL: one read-only statement, at most ``max_rows`` rows
        (see :func:`is_truncated`), stopped after ``timeout_seconds``."""
        if max_rows <= 0:
            raise ScmError(f"max_rows={max_rows} is invalid: use a positive whole number")
        if timeout_seconds <= 0:
            raise ScmError(f"timeout_seconds={timeout_seconds} is invalid: use a positive number")
        self._check_read_only(sql)
        with self._lock:
            self._open_all()  # an analyst may list tables through information_schema
        return self._execute(sql, None, max_rows=max_rows, timeout_seconds=timeout_seconds)

    def register(self, name: str, table: pa.Table) -> None:
        """Copy an Arrow table into the database as table ``name`` (the batch engine's empty
        inputs); a registered view would be visible to this connection only, not to the
        cursors queries run on."""
        with self._lock:
            self._connection.register("_scm_registering", table)
            try:
                self._connection.execute(
                    f"create or replace table {_quote(name)} as select * from _scm_registering"
                )
            finally:
                self._connection.unregister("_scm_registering")

    def alias(self, name: str, target: str) -> None:
        """A view ``name`` over ``target`` (a lake table or a registered table): the batch
        engine's SQL names its inputs without a layer. Query through :meth:`query` with
        ``tables`` naming the lake tables behind the aliases, so they are re-pointed."""
        with self._lock:
            self._connection.execute(
                f"create or replace view {_quote(name)} as select * from {target}"
            )

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            shutil.rmtree(self.spill_folder, ignore_errors=True)

    def __enter__(self) -> LakeQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- guard ----------------------------------------------------------------------------

    @staticmethod
    def _check_read_only(sql: str) -> None:
        if not sql.strip():
            raise ScmError("the query is empty: write one SELECT query")
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as error:
            raise ScmError(f"the query does not parse: {_one_line(error)}") from None
        if len(statements) != 1:
            raise ScmError(
                f"one statement per query, found {len(statements)}: remove the extra ';' parts"
            )
        kind = statements[0].type
        if kind not in _READ_ONLY:
            label = kind.name.replace("_", " ").replace("VARIABLE SET", "SET")
            raise ScmError(f"{label} is not allowed: {_REFUSAL_HINT}")

    # -- execution ------------------------------------------------------------------------

    def _execute(
        self,
        sql: str,
        params: Params,
        *,
        max_rows: int | None,
        timeout_seconds: float | None,
        also: Sequence[str] = (),
    ) -> pa.Table:
        with self._lock:
            for name in self._referenced_tables(sql, also):
                self._refresh(name)
            cursor = self._connection.cursor()
        timer = threading.Timer(timeout_seconds, cursor.interrupt) if timeout_seconds else None
        try:
            if timer is not None:
                timer.start()
            relation = cursor.sql(sql, params=params)
            if relation is None:
                return pa.table({})
            if max_rows is None:
                return relation.to_arrow_table()
            return self._first_rows(relation, max_rows)
        except duckdb.InterruptException:
            raise ScmError(
                f"the query ran longer than {timeout_seconds:g} s and was stopped:"
                " filter or aggregate more, or raise the time limit"
            ) from None
        except duckdb.OutOfMemoryException as error:
            if "max_temp_directory_size" in str(error):
                raise ScmError(
                    f"the query needs more than {self.limits.spill} of temporary disk"
                    " (SCM_SQL_SPILL_LIMIT) and was stopped: filter or aggregate more,"
                    " or raise the limit"
                ) from None
            raise ScmError(
                f"the query needs more than {self.limits.memory} of memory"
                " (SCM_SQL_MEMORY_LIMIT) and was stopped: filter or aggregate more,"
                " or raise the limit"
            ) from None
        except duckdb.PermissionException as error:
            raise ScmError(
                f"not allowed: only the lake's tables and files can be read ({_one_line(error)})"
            ) from None
        except duckdb.Error as error:
            raise ScmError(_one_line(error)) from None
        finally:
            if timer is not None:
                timer.cancel()
            cursor.close()

    @staticmethod
    def _first_rows(relation: duckdb.DuckDBPyRelation, max_rows: int) -> pa.Table:
        """Stream batches until one row past the limit, so a huge result is never built."""
        reader = relation.to_arrow_reader(batch_size=min(max_rows + 1, 100_000))
        batches: list[pa.RecordBatch] = []
        count = 0
        try:
            for batch in reader:
                batches.append(batch)
                count += batch.num_rows
                if count > max_rows:
                    break
        finally:
            reader.close()
        table = pa.Table.from_batches(batches, schema=reader.schema)
        truncated = table.num_rows > max_rows
        table = table.slice(0, max_rows)
        metadata = dict(table.schema.metadata or {})
        metadata[_TRUNCATED_KEY] = b"true" if truncated else b"false"
        return table.replace_schema_metadata(metadata)

    # -- catalog --------------------------------------------------------------------------

    def _referenced_tables(self, sql: str, also: Sequence[str] = ()) -> set[str]:
        """Lake tables the text names, or ``also`` lists, opened (a superset is harmless:
        it only re-checks versions)."""
        names = {
            f"{m.group(1).lower()}.{m.group(2) or m.group(3)}"
            for m in _TABLE_REFERENCE.finditer(sql)
        } | set(also)
        if names - set(self._found):
            self._discover()
        for name in sorted(names):
            self._open(name)
        for name in sorted(names & set(self._unreadable)):
            raise ScmError(self._unreadable[name])
        return names & set(self._snapshots)

    def _discover(self) -> None:
        """List the lake's tables (folders only: a table is opened when a query names it)
        and drop the views of tables that disappeared."""
        self._found = {
            f"{layer}.{name}": self.lake.table(layer, name)
            for layer in LAYERS
            for name in self.lake.tables(layer)
        }
        for name in set(self._snapshots) - set(self._found):
            self._drop(name)
        self._unreadable = {n: m for n, m in self._unreadable.items() if n in self._found}

    def _open_all(self) -> None:
        self._discover()
        for name in self._found:
            self._open(name)

    def _open(self, name: str) -> None:
        """Create the view of a listed table not opened yet (reading its Delta log)."""
        path = self._found.get(name)
        if path is None or name in self._snapshots:
            return
        try:
            self._point(name, path)
            self._unreadable.pop(name, None)
        except ScmError as error:
            self._unreadable[name] = str(error)

    def _refresh(self, name: str) -> None:
        snapshot = self._snapshots.get(name)
        if snapshot is None:
            return
        if not storage.is_dir(f"{snapshot.path}/_delta_log"):
            self._drop(name)
        elif storage.exists(_commit_file(snapshot.path, snapshot.version + 1)):
            self._point(name, snapshot.path)

    def _drop(self, name: str) -> None:
        layer, table = name.split(".", 1)
        self._connection.execute(f"drop view if exists {layer}.{_quote(table)}")
        self._connection.execute(f"drop table if exists _scm.{_quote(name)}")
        self._snapshots.pop(name, None)
        self._delta_tables.pop(name, None)
        self._file_columns.pop(name, None)

    def _point(self, name: str, path: str) -> None:
        """(Re)create the view of ``name`` over the table's latest snapshot."""
        layer, table_name = name.split(".", 1)
        try:
            table = self._delta_tables.get(name) or DeltaTable(path)
            table.update_incremental()  # reads only the commits since the last load
        except Exception as error:
            if name not in self._snapshots and not _has_commits(path):
                return  # being created: a log folder without its first commit yet
            raise ScmError(f"{name} cannot be read: {_one_line(error)}") from None
        features = set(table.protocol().reader_features or [])
        unsupported = sorted(features - _SUPPORTED_READER_FEATURES)
        if unsupported:
            raise ScmError(f"{name} uses Delta reader features {unsupported} that scm cannot read")
        deleted = self._load_deleted_rows(name, table) if "deletionVectors" in features else None
        try:
            file_columns = self._file_columns.setdefault(name, {})
            select = _SnapshotSql(table, path, self._connection, file_columns).build(deleted)
            self._connection.execute(
                f"create or replace view {layer}.{_quote(table_name)} as {select}"
            )
        except duckdb.Error as error:
            raise ScmError(f"{name} cannot be read: {_one_line(error)}") from None
        self._delta_tables[name] = table
        version = table.version()
        committed_at = storage.modified_at(_commit_file(path, version)) or 0.0
        self._snapshots[name] = TableSnapshot(name, path, version, committed_at)

    def _load_deleted_rows(self, name: str, table: DeltaTable) -> str | None:
        """Materialise deleted row positions as a small table for an anti join."""
        vectors = pa.table(table.deletion_vectors())
        if vectors.num_rows == 0:
            self._connection.execute(f"drop table if exists _scm.{_quote(name)}")
            return None
        files: list[str] = []
        positions: list[np.ndarray] = []
        for file_uri, keep in zip(
            vectors.column("filepath").to_pylist(),
            vectors.column("selection_vector").to_pylist(),
            strict=True,
        ):
            deleted = np.flatnonzero(~np.asarray(keep, dtype=bool))
            local = file_uri.removeprefix("file://")
            if not storage.exists(local):  # the URI may carry the log's %-encoding
                local = unquote(local)
            files.extend([local] * len(deleted))
            positions.append(deleted)
        deleted_rows = pa.table(
            {
                "filename": pa.array(files, pa.string()),
                "file_row_number": pa.array(
                    np.concatenate(positions) if positions else [], pa.int64()
                ),
            }
        )
        target = f"_scm.{_quote(name)}"
        self._connection.register("_scm_deleted_rows", deleted_rows)
        try:
            self._connection.execute(
                f"create or replace table {target} as select * from _scm_deleted_rows"
            )
        finally:
            self._connection.unregister("_scm_deleted_rows")
        return target
