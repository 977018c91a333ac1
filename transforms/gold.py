"""Gold: the registry of KPI and planning tables, the as-of date, which partitions rows touch.

:data:`GOLD_TABLES` is what the CLI refresh, the Dagster assets and checks, and the docs
read; each entry is defined once in its :mod:`transforms.kpis` module. An engine
(:mod:`transforms.engine`) builds any set of a table's partitions from its SQL and replaces
exactly those partitions in one Delta commit.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from transforms.kpis import KPI_TABLES
from transforms.model import GoldTable, Partitions
from transforms.planning import PLANNING_TABLES
from transforms.silver import REFRESH_ID, SILVER_TABLES

if TYPE_CHECKING:
    from transforms.engine import Engine

GOLD_TABLES: dict[str, GoldTable] = {table.name: table for table in (*KPI_TABLES, *PLANNING_TABLES)}

# Before any event there is no as-of date; every "due by as-of" filter is then empty.
NO_EVENTS_YET = dt.date(1, 1, 1)


def _event_times(where: str = "") -> str:
    return " UNION ALL ".join(
        f"SELECT max({table.time_column}) AS event_time FROM {table.name}{where}"
        for table in SILVER_TABLES.values()
    )


def as_of_date(engine: Engine, *, only_refresh_after: int | None = None) -> dt.date | None:
    """UTC day of the latest event time in silver (or in rows of refreshes after an id)."""
    where = "" if only_refresh_after is None else f" WHERE {REFRESH_ID} > {only_refresh_after}"
    days = engine.dates(f"SELECT CAST(max(event_time) AS DATE) FROM ({_event_times(where)}) t")
    return max(days) if days else None


def first_event_date(engine: Engine) -> dt.date | None:
    """UTC day of the earliest event in silver: where "every partition" starts."""
    times = " UNION ALL ".join(
        f"SELECT min({table.time_column}) AS event_time FROM {table.name}"
        for table in SILVER_TABLES.values()
    )
    days = engine.dates(f"SELECT CAST(min(event_time) AS DATE) FROM ({times}) t")
    return min(days) if days else None


@dataclass
class Changes:
    """What one refresh brings: silver rows stamped after ``since_refresh_id``, a moved
    as-of date, changed product costs (the :class:`transforms.model.ChangeSet` the tables'
    ``touched`` rules ask)."""

    engine: Engine
    since_refresh_id: int
    as_of_before: dt.date | None
    as_of: dt.date
    products_changed: bool = False
    # One query per distinct rule text, asked once even when tables ask it side by side.
    _asked: dict[str, Future[set[dt.date]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def dates(self, sql: str) -> set[dt.date]:
        with self._lock:
            answer = self._asked.get(sql)
            first = answer is None
            if answer is None:
                answer = self._asked[sql] = Future()
        if first:
            try:
                answer.set_result(self._query(sql))
            except BaseException as error:
                answer.set_exception(error)
                raise
        return set(answer.result())

    def _query(self, sql: str) -> set[dt.date]:
        new = [
            f"new_{name} AS (SELECT * FROM {name} WHERE {REFRESH_ID} > :since)"
            for name in SILVER_TABLES
            if f"new_{name}" in sql
        ]
        text = f"WITH {', '.join(new)} {sql}" if new else sql
        parameters = {
            "since": str(self.since_refresh_id),
            "as_of_before": f"DATE '{(self.as_of_before or NO_EVENTS_YET).isoformat()}'",
        }
        return self.engine.dates(text, as_of=self.as_of, parameters=parameters)

    def touched(self, table: GoldTable) -> Partitions:
        """The partitions of ``table`` whose rows the changes can alter (None: all)."""
        return table.touched(self)
