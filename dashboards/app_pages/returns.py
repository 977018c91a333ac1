"""Returns: processing cost (SCOR cost to return) and refunds by reason and category, and the
returns behind them (a click on a bar or a day narrows them)."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries
from dashboards.scorecard import KPIS

PAGE = "returns"
RETURNS_COST = next(kpi for kpi in KPIS if kpi.title == "Returns cost per return")

st.title("Returns")
if not connection.require_tables("gold.returns_cost_daily"):
    st.stop()

bounds = connection.date_bounds(queries.RETURN_DATE_BOUNDS, what="KPI rows yet")
if bounds is None:
    st.stop()
first_date, last_date = bounds
dates, what = st.columns(2)
with dates:
    start, end = filters.date_range(PAGE, first=first_date, last=last_date)
with what:
    categories = filters.choose(
        PAGE, "categories", "Category", connection.run(queries.RETURN_CATEGORIES)["value"].tolist()
    )
params = filters.Filters(start, end, categories=categories).params()

by_reason = connection.run(queries.RETURNS_BY_REASON, params)
returns, cost, refunds, per_return = st.columns(4)
count = by_reason["returns"].sum()
returns.metric("Returns", f"{int(count):,}")
cost.metric("Processing cost", f"{by_reason['processing_cost'].sum():,.2f}")
refunds.metric("Refunds", f"{by_reason['refund_amount'].sum():,.2f}")
per_return.metric(
    "Cost per return", "—" if count == 0 else f"{by_reason['processing_cost'].sum() / count:,.2f}"
)
st.caption(
    "Returns cost is the processing (handling and reverse-logistics) cost; refunds are "
    "shown beside it, not inside it."
)

reason_chart, category_chart = st.columns(2)
with reason_chart:
    reason_click = drilldown.clickable_chart(
        charts.grouped_bars(
            by_reason,
            category="reason",
            values=["processing_cost", "refund_amount"],
            title="By reason",
        ),
        "reason",
        key=f"{PAGE}.by_reason",
    )
with category_chart:
    by_category = connection.run(queries.RETURNS_BY_CATEGORY, params)
    category_click = drilldown.clickable_chart(
        charts.grouped_bars(
            by_category,
            category="category",
            values=["processing_cost", "refund_amount"],
            title="By category",
        ),
        "category",
        key=f"{PAGE}.by_category",
    )

trend = connection.run(queries.RETURNS_TREND, params)
trend_click = drilldown.clickable_chart(
    charts.trend(
        trend,
        x="return_date",
        y=["processing_cost", "refund_amount"],
        title="Daily returns cost and refunds",
    ),
    "return_date",
    key=f"{PAGE}.trend",
)

st.subheader("Returns behind the numbers")
drilldown.section(
    RETURNS_COST,
    start,
    end,
    params,
    key=f"{PAGE}.records",
    day=charts.picked_day(trend_click, "return_date"),
    picks={
        "reasons": charts.picked(reason_click, "reason"),
        "categories": charts.picked(category_click, "category"),
    },
)
