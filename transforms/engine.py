"""The two engines of the batch layer behind one interface (``SCM_ENGINE``).

``duckdb`` (the default on one machine) runs the SQL models in-process over the current
Delta snapshots and writes through delta-rs; ``spark`` (a cluster, ``SCM_SPARK_MASTER``)
runs the same SQL, transpiled, and writes through delta-spark. Both write the same tables
(paths, column names and types), so either picks up a lake the other wrote. Streaming
ingest is always Spark.

An engine answers three kinds of request: small queries (:meth:`Engine.dates`), "replace
these partitions of a gold table" (:meth:`Engine.write_gold`) and "bring silver up to date
with bronze" (:meth:`Engine.update_silver`).
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scm.lake import Lake
from transforms.lake_io import column_names
from transforms.model import GoldTable, Partitions
from transforms.silver import DIMENSIONS, SILVER_TABLES
from transforms.sql import Dialect, render

LOGICAL_TABLES: tuple[str, ...] = (*SILVER_TABLES, *DIMENSIONS)


@dataclass(frozen=True)
class SilverUpdate:
    """Rows inserted per silver table, and the bronze versions that were read up to."""

    inserted: dict[str, int]
    bronze_versions: dict[str, int | None]


class Engine(ABC):
    """Runs the SQL models of :mod:`transforms.silver` and :mod:`transforms.kpis`."""

    name: str
    dialect: Dialect
    # Gold tables written at once: an engine whose writes overlap (Spark's driver plans and
    # commits one table while the executors run another) raises it.
    concurrent_writes: int = 1

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    @abstractmethod
    def relation(self, logical: str) -> str:
        """What the engine reads for a silver table or dimension (empty when absent)."""

    @abstractmethod
    def gold_relation(self, name: str) -> str:
        """What the engine reads for an existing gold table."""

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a small query already in the engine's dialect."""

    @abstractmethod
    def write_gold(self, table: GoldTable, partitions: Partitions, as_of: dt.date) -> int:
        """Replace ``partitions`` (all when None) of ``table`` in one commit; rows written."""

    @abstractmethod
    def update_silver(
        self,
        *,
        refresh_id: int,
        full: bool = False,
        read_versions: Mapping[str, int | None] | None = None,
    ) -> SilverUpdate:
        """Insert the bronze events new to silver, each once, stamped with ``refresh_id``.

        ``read_versions``: bronze versions a previous update read completely; a bronze table
        still at that version is not read at all. ``full`` rebuilds silver from all of
        bronze (the backfill path after a logic change).
        """

    def gold_columns(self, name: str) -> list[str] | None:
        """The columns of gold table ``name`` as written (None: there is no table yet)."""
        return column_names(self.lake.gold(name))

    def render(
        self,
        text: str,
        *,
        as_of: dt.date | None = None,
        partitions: Partitions = None,
        parameters: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """A model-dialect text as this engine runs it; ``extra`` names more relations."""
        # Only the inputs the text names (a superset is harmless): opening one can cost a query.
        named = set(re.findall(r"[A-Za-z_]+", text))
        tables = {name: self.relation(name) for name in LOGICAL_TABLES if name in named}
        tables.update(extra or {})
        return render(
            text, self.dialect, tables, as_of=as_of, partitions=partitions, parameters=parameters
        )

    def dates(
        self,
        text: str,
        *,
        as_of: dt.date | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> set[dt.date]:
        """The non-null values of the first column of a model-dialect query."""
        sql = self.render(text, as_of=as_of, parameters=parameters)
        return {row[0] for row in self.rows(sql) if row[0] is not None}

    def close(self) -> None:  # noqa: B027 (most engines hold nothing)
        """Release what the engine holds (the Spark engine leaves its session running)."""
