"""What defines a gold table, in one place: grain, columns, partitioning, SQL, invariants.

A :class:`GoldTable` is the single definition that ``scm refresh``, the Dagster assets and
their checks, docs/kpis.md and the scorecard read. Its ``sql`` (DuckDB dialect, see
:mod:`transforms.sql`) builds any set of its partitions from silver; ``touched`` says which
partitions new silver rows change, asking its questions through a :class:`ChangeSet` whose
queries are SQL too, so both engines answer them the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pyarrow as pa

# "snapshot": one unpartitioned table, rebuilt whole by every refresh that brings anything.
Granularity = Literal["day", "month", "snapshot"]
# A list of partition values (days, or first days of months); None means every partition.
Partitions = Sequence[dt.date] | None


ARROW_TYPES: dict[str, pa.DataType] = {
    "DATE": pa.date32(),
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
}
SPARK_TYPES = {"VARCHAR": "STRING"}


@dataclass(frozen=True)
class Column:
    """One gold column: its name, SQL type (both engines' spelling) and meaning."""

    name: str
    type: str
    description: str = ""


class ChangeSet(Protocol):
    """What one refresh brings, as the touched-partition rules of a table see it."""

    @property
    def as_of_before(self) -> dt.date | None: ...
    @property
    def as_of(self) -> dt.date: ...
    @property
    def products_changed(self) -> bool: ...

    def dates(self, sql: str) -> set[dt.date]:
        """The non-null dates of the first column of ``sql`` (``:since``, ``:as_of``,
        ``:as_of_before`` are filled in; ``new_<table>`` names the rows new to silver)."""
        ...


@dataclass(frozen=True)
class GoldTable:
    """One gold table, defined once (see the module doc)."""

    name: str
    description: str
    grain: tuple[str, ...]
    columns: tuple[Column, ...]  # grain first, then the measures, in table order
    partition_column: str | None  # None for a snapshot table
    granularity: Granularity
    inputs: tuple[str, ...]  # silver tables (and dimensions) it reads
    sql: str = field(repr=False)  # the rows of the partitions in IN_SCOPE, as of :as_of
    touched: Callable[[ChangeSet], Partitions] = field(repr=False)
    # SQL conditions every row satisfies (null counts as satisfied); rates are in [0, 1].
    invariants: tuple[str, ...] = ()
    # A table whose rows come from Python (a forecast): ``sql`` selects its inputs, and
    # ``compute(inputs, as_of)`` turns them into the table's rows, on the driver, in Arrow.
    compute: Callable[[pa.Table, dt.date], pa.Table] | None = field(default=None, repr=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def rates(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.name.endswith("_rate"))

    def typed_sql(self) -> str:
        """The model with every column cast to its declared type, in table order."""
        casts = ",\n    ".join(f"CAST({c.name} AS {c.type}) AS {c.name}" for c in self.columns)
        column = self.partition_column
        scope = "" if column is None else f"\nWHERE IN_SCOPE({column})"
        return f"SELECT\n    {casts}\nFROM (\n{self.sql}\n) AS model{scope}"

    def arrow_schema(self) -> pa.Schema:
        """The declared columns as Arrow types (for rows built outside SQL)."""
        return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in self.columns])

    def spark_ddl(self) -> str:
        """The declared columns as a Spark DDL string."""
        return ", ".join(f"{c.name} {SPARK_TYPES.get(c.type, c.type)}" for c in self.columns)

    def computed_rows(self, inputs: pa.Table, as_of: dt.date) -> pa.Table:
        """``compute``'s rows, in table order and declared types."""
        assert self.compute is not None
        rows = self.compute(inputs, as_of)
        if not rows.num_rows:
            return self.arrow_schema().empty_table()
        return rows.select(list(self.column_names)).cast(self.arrow_schema())

    @property
    def partition_by(self) -> list[str] | None:
        """The Delta partition columns (none for a snapshot table)."""
        return None if self.partition_column is None else [self.partition_column]


def rebuilt_whole(changes: ChangeSet) -> Partitions:
    """The ``touched`` rule of a snapshot table: any change rebuilds all of it."""
    return None


def ratio(numerator: str, denominator: str) -> str:
    """SQL for numerator / denominator as a double; null when the divisor is 0 or unknown."""
    return (
        f"CASE WHEN {denominator} <> 0"
        f" THEN CAST({numerator} AS DOUBLE) / CAST({denominator} AS DOUBLE) END"
    )


def money_total(amount: str) -> str:
    """SQL for Σ amount, kept decimal while summing and a double once aggregated (kpis.md)."""
    return f"CAST(coalesce(sum({amount}), 0) AS DOUBLE)"


def newly_due(changes: ChangeSet, table: str, due: str, partition: str) -> set[dt.date]:
    """Partitions of rows whose due date the as-of date has just passed: now countable."""
    if changes.as_of_before is None or changes.as_of <= changes.as_of_before:
        return set()
    return changes.dates(
        f"SELECT DISTINCT {partition} FROM {table} WHERE {due} > :as_of_before AND {due} <= :as_of"
    )


def order_days_touched(changes: ChangeSet, via: tuple[str, ...]) -> set[dt.date]:
    """Days of new orders and of known orders that new rows of ``via`` belong to."""
    touched = " UNION ".join(f"SELECT order_id FROM new_{table}" for table in via)
    return changes.dates(
        "SELECT DISTINCT order_date FROM new_order_lines UNION"
        f" SELECT DISTINCT order_date FROM order_lines WHERE order_id IN ({touched})"
    )


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the months from ``first``'s month to ``last``'s month, inclusive."""
    month, end = first.replace(day=1), last.replace(day=1)
    months = []
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months
