"""Drill-down: the records behind a KPI tile or a chart point, with why each counts against it.

The records are the KPI's own rows from its gold detail table (``queries.RECORDS_*``),
filtered to the tile's period (or the picked day or month) and the page's filters: a count
here is the KPI's count for that selection. Pages only choose what to show; the tables
decide what a record is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import charts, connection, trace
from dashboards.filters import Filters
from dashboards.scorecard import Kpi

_DETAIL_TABLE = re.compile(r"\bfrom\s+(gold\.[a-z_]+)", re.IGNORECASE)
# Records with an order or PO id link to its history on the Track & trace page.
TRACE_PAGE = "trace"
_TRACEABLE = {"order_id": trace.QUERY_PARAMETERS["order"], "po_id": trace.QUERY_PARAMETERS["po"]}
SHOWN_ROWS = 1_000  # a browser table of more is slow to send and to read; the CSV has all


@dataclass(frozen=True)
class Scope:
    """Which records: a KPI's, between two dates (days, or first days of months)."""

    kpi: Kpi
    start: dt.date
    end: dt.date

    def label(self) -> str:
        if self.kpi.monthly:
            return f"{self.start:%B %Y}"
        if self.start == self.end:
            return f"{self.start:%d %b %Y}"
        return f"{self.start:%d %b} – {self.end:%d %b %Y}"


def detail_table(kpi: Kpi) -> str:
    """The gold table a KPI's records come from."""
    match = _DETAIL_TABLE.search(kpi.records)
    assert match is not None, f"{kpi.title}: records query names no gold table"
    return match.group(1)


def tile_scope(kpi: Kpi, as_of: dt.date, days: int) -> Scope:
    """The period a tile's value covers: its last ``days`` days, or its latest month."""
    if kpi.monthly:
        month = as_of.replace(day=1)
        return Scope(kpi, month, month)
    return Scope(kpi, as_of - dt.timedelta(days=days - 1), as_of)


def records(scope: Scope, filters: Mapping[str, Any]) -> pd.DataFrame:
    """The KPI's records in ``scope`` under the page's filters (locations, channels...)."""
    params = {
        **Filters().params(),  # every filter a records query names, "all" unless given
        **filters,
        "start_date": scope.start,
        "end_date": scope.end,
        "target": scope.kpi.target,
    }
    return connection.run(scope.kpi.records, params)


def with_trace_links(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A ``trace`` link column for records that have an order or PO id."""
    for column, parameter in _TRACEABLE.items():
        if column in frame.columns:
            linked = frame.copy()
            linked.insert(0, "trace", f"{TRACE_PAGE}?{parameter}=" + linked[column].astype(str))
            config = {
                "trace": st.column_config.LinkColumn(
                    "Trace", display_text="history", help="Its events on Track & trace"
                )
            }
            return linked, config
    return frame, {}


def clickable_chart(chart: alt.Chart, *fields: str, key: str) -> object:
    """Show ``chart``; a click on a mark reruns the page with its ``fields`` selected
    (read them from the returned event with :func:`charts.picked`)."""
    return st.altair_chart(
        charts.clickable(chart, *fields), width="stretch", key=key, on_select="rerun"
    )


def section(
    kpi: Kpi,
    start: dt.date,
    end: dt.date,
    filters: Mapping[str, Any],
    *,
    key: str,
    day: dt.date | None = None,
    picks: Mapping[str, object | None] | None = None,
) -> pd.DataFrame:
    """A KPI page's records: its date range and filters, narrowed by what a click picked on
    a chart (``day`` on a trend, a bar's value in ``picks``: filter name -> value)."""
    narrowed = dict(filters)
    picked = {name: str(value) for name, value in (picks or {}).items() if value is not None}
    narrowed.update({name: [value] for name, value in picked.items()})
    scope = Scope(kpi, day, day) if day is not None else Scope(kpi, start, end)
    clicks = [str(day)] if day is not None else []
    clicks += [str(value) for value in picked.values()]
    st.caption(
        f"Narrowed by your click: {', '.join(clicks)}. Click the chart's background to clear."
        if clicks
        else "Click a day on a trend or a bar to narrow these records."
    )
    return show(scope, narrowed, key=key)


def show(scope: Scope, filters: Mapping[str, Any], *, key: str) -> pd.DataFrame:
    """The records table with its counts and a CSV of all of them; returns what is shown.

    The table shows the first :data:`SHOWN_ROWS` (those counting against the KPI sort
    first); the counts and the CSV (built only when clicked) cover every record.
    """
    table = detail_table(scope.kpi)
    if not connection.has_tables(table):
        st.info(f"The records appear once {table} is in the lake (the next refresh builds it).")
        return pd.DataFrame()
    rows = records(scope, filters)
    against = rows["reason"].notna()
    st.caption(
        f"{scope.kpi.title}, {scope.label()}: {len(rows):,} {scope.kpi.records_of},"
        f" {int(against.sum()):,} counting against the KPI (see *reason*)."
    )
    if st.toggle("Only records counting against the KPI", key=f"{key}.against"):
        rows = rows[against]
    if len(rows) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} of {len(rows):,}; the CSV has them all.")
    shown, config = with_trace_links(rows.head(SHOWN_ROWS))
    st.dataframe(shown, hide_index=True, column_config=config, key=f"{key}.table")
    st.download_button(
        "Download CSV",
        lambda: rows.to_csv(index=False),
        file_name=f"{scope.kpi.records_of.replace(' ', '_')}_{scope.start}_{scope.end}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"{key}.csv",
    )
    return shown
