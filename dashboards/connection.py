"""The dashboards' one door to the lake: a cached read-only DuckDB session and cached results.

The connection lives for the process (``st.cache_resource``); results for ``RESULT_TTL_SECONDS``
(``st.cache_data``) keyed by lake, SQL and parameters, so every page is cheap to re-run while
new Delta versions still show up within seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import streamlit as st

from scm.errors import ScmError
from scm.query import LakeQuery, open_lake
from scm.settings import QueryLimits, Settings, load_settings

RESULT_TTL_SECONDS = 30
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
EMPTY_LAKE_HELP = (
    "Nothing to show yet: the lake at `{root}` has no {what}. "
    "Run `make demo` for a simulated supply chain, or `scm refresh` to load and compute "
    "the latest data."
)


def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _lake(root: str, limits: QueryLimits, spill_directory: Path) -> LakeQuery:
    return open_lake(root, limits=limits, spill_directory=spill_directory)


def lake() -> LakeQuery:
    """The shared read-only session for the configured lake (``SCM_LAKE``)."""
    current = settings()
    return _lake(current.lake, current.query_limits, current.spill_directory)


def _bind(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only the parameters the SQL names: DuckDB refuses unused ones."""
    wanted = set(_PARAMETER.findall(sql))
    return {name: value for name, value in (params or {}).items() if name in wanted}


def _frame(table: pa.Table) -> pd.DataFrame:
    """DuckDB sums of integers are 128-bit decimals: charts and arithmetic want floats."""
    for index, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            table = table.set_column(index, column.name, table.column(index).cast(pa.float64()))
    return table.to_pandas()


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def _cached(root: str, sql: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    return _frame(lake().query(sql, dict(params), timeout_seconds=60))


def run(sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Result of one named query (see ``dashboards/queries.py``) as a DataFrame."""
    bound = _bind(sql, params)
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in bound.items()))
    return _cached(settings().lake, sql, frozen).copy()


def run_live(sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Uncached: for the real-time views that refresh every few seconds."""
    return _frame(lake().query(sql, _bind(sql, params), timeout_seconds=30))


def has_tables(*names: str) -> bool:
    session = lake()
    return all(session.has_table(name) for name in names)


def columns(name: str) -> set[str]:
    """Column names of a lake table, empty when it is missing (for defensive queries)."""
    if not has_tables(name):
        return set()
    return set(run(f"select * from {name} limit 0").columns)


def has_columns(required: Mapping[str, set[str]]) -> bool:
    """True when every table exists with at least the listed columns."""
    return all(columns(table) >= needed for table, needed in required.items())


def lake_root() -> str:
    return lake().lake.root


def require_tables(*names: str, what: str = "KPI tables") -> bool:
    """Show the friendly empty-lake message and return False when a page has nothing to read."""
    try:
        present = has_tables(*names)
    except ScmError as error:
        st.error(str(error))
        return False
    if not present:
        st.info(EMPTY_LAKE_HELP.format(root=lake_root(), what=what), icon=":material/info:")
    return present


def date_bounds(sql: str, *, what: str = "rows yet") -> tuple[dt.date, dt.date] | None:
    """First and last date of a KPI table; None (and the empty-lake message) when it is empty."""
    bounds = run(sql)
    first, last = (
        (bounds.iloc[0]["first_date"], bounds.iloc[0]["last_date"])
        if len(bounds)
        else (
            None,
            None,
        )
    )
    if not isinstance(first, dt.date) or not isinstance(last, dt.date):
        st.info(EMPTY_LAKE_HELP.format(root=lake_root(), what=what), icon=":material/info:")
        return None
    return first, last
