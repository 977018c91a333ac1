"""SCOR scorecard: one tile per KPI with its latest value, change, target and trend."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import streamlit as st

from dashboards import charts, connection, filters, queries
from dashboards.scorecard import KPIS, Tile, format_change, format_value, tile

PAGE = "scorecard"
BadgeColor = Literal["green", "orange", "red", "gray"]
STATUS_BADGES: dict[str, tuple[str, BadgeColor, str]] = {
    "green": ("On target", "green", "#21a366"),
    "amber": ("Near target", "orange", "#f0a202"),
    "red": ("Off target", "red", "#d62828"),
    "no data": ("No data", "gray", "#8a8a8a"),
}

st.title("SCOR scorecard")
gold_tables = sorted({kpi.table for kpi in KPIS})
present = [table for table in gold_tables if connection.has_tables(table)]
if not present:
    connection.require_tables(*gold_tables)
    st.stop()

if connection.has_tables("gold.fill_rate_daily"):
    bounds = connection.date_bounds(queries.ORDER_DATE_BOUNDS, what="orders yet")
    if bounds is None:
        st.stop()
    as_of = bounds[1]
    options = connection.run(queries.LOCATIONS)["value"].tolist()
    channel_options = connection.run(queries.CHANNELS)["value"].tolist()
else:  # the other KPI tables still have tiles
    as_of, options, channel_options = dt.date.today(), [], []

left, middle, right = st.columns([2, 3, 3])
with left:
    days = filters.pick_one(
        PAGE, "period", "Period", [7, 14, 28], default=7, format_func=lambda d: f"{d} days"
    )
with middle:
    locations = filters.choose(PAGE, "locations", "Location", options)
with right:
    channels = filters.choose(PAGE, "channels", "Channel", channel_options)
st.caption(
    f"As of {as_of:%d %b %Y}: each tile compares the last {days} days with the {days} days"
    " before (inventory: latest month vs the month before). Location and channel apply to"
    " the order KPIs; location also to inventory."
)

params = filters.Filters(
    start_date=as_of - dt.timedelta(days=4 * days - 1),
    end_date=as_of,
    locations=locations,
    channels=channels,
).params()


def show(card: Tile) -> None:
    label, badge_color, line_color = STATUS_BADGES[card.status]
    kpi = card.kpi
    with st.container(border=True):
        st.metric(
            kpi.title,
            format_value(card.value, kpi.unit),
            delta=format_change(card.change, kpi.unit),
            delta_color="normal" if kpi.higher_is_better else "inverse",
            help=f"{kpi.reference}. Change vs the previous period.",
        )
        st.badge(label, color=badge_color)
        if not card.trend.empty:
            st.altair_chart(charts.sparkline(card.trend, color=line_color), width="stretch")
        st.caption(
            f"Target {'≥' if kpi.higher_is_better else '≤'} {format_value(kpi.target, kpi.unit)}"
            f" · previous {format_value(card.previous, kpi.unit)}"
        )


grid = st.columns(3)
for index, kpi in enumerate(KPIS):
    card = (
        tile(kpi, connection.run(kpi.query, params), as_of, days) if kpi.table in present else None
    )
    with grid[index % 3]:
        if card is None:
            with st.container(border=True):
                st.metric(kpi.title, "—", help=f"{kpi.table} is not in the lake yet")
                st.badge("No data", color="gray")
        else:
            show(card)
