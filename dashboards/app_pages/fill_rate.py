"""Fill rate: daily trend, by DC, channel and category, and the order lines behind it.

A click on a day of the trend or on a bar narrows the order lines below to it.
"""

from __future__ import annotations

import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries
from dashboards.scorecard import KPIS

PAGE = "fill_rate"
LINE_FILL_RATE = next(kpi for kpi in KPIS if kpi.title == "Line fill rate")

st.title("Fill rate")
if not connection.require_tables("gold.fill_rate_daily"):
    st.stop()

bounds = connection.date_bounds(queries.ORDER_DATE_BOUNDS, what="KPI rows yet")
if bounds is None:
    st.stop()
first_date, last_date = bounds
details_ready = connection.has_tables(queries.ORDER_LINE_DETAIL)
dates, where, how, what = st.columns([2, 2, 2, 2])
with dates:
    start, end = filters.date_range(PAGE, first=first_date, last=last_date)
with where:
    locations = filters.choose(
        PAGE, "locations", "Location", connection.run(queries.LOCATIONS)["value"].tolist()
    )
with how:
    channels = filters.choose(
        PAGE, "channels", "Channel", connection.run(queries.CHANNELS)["value"].tolist()
    )
with what:
    category_options = connection.run(queries.CATEGORIES)["value"].tolist() if details_ready else []
    categories = filters.choose(PAGE, "categories", "Category", category_options)
params = filters.Filters(start, end, locations, channels, categories).params()

by_location = connection.run(queries.FILL_RATE_BY_LOCATION, params)
orders = int(by_location["orders"].sum())
totals = connection.run(queries.FILL_RATE_DAILY_TOTALS, params)


def rate(numerator: str, denominator: str) -> str:
    bottom = totals[denominator].sum()
    return "—" if bottom == 0 else f"{totals[numerator].sum() / bottom:.1%}"


order_rate, line_rate, unit_rate, volume = st.columns(4)
order_rate.metric("Order fill rate", rate("orders_filled", "orders"))
line_rate.metric("Line fill rate", rate("lines_filled", "lines"))
unit_rate.metric("Unit fill rate", rate("units_filled", "units_ordered"))
volume.metric("Orders", f"{orders:,}")

trend = connection.run(queries.FILL_RATE_TREND, params)
trend_click = drilldown.clickable_chart(
    charts.trend(
        trend,
        x="order_date",
        y=["order_fill_rate", "line_fill_rate", "unit_fill_rate"],
        title="Daily fill rate",
        rate=True,
    ),
    "order_date",
    key=f"{PAGE}.trend",
)

by_dc, by_channel, by_category = st.columns(3)
with by_dc:
    dc_click = drilldown.clickable_chart(
        charts.bars(
            by_location,
            category="ship_from",
            value="order_fill_rate",
            title="Order fill rate by DC",
            rate=True,
        ),
        "ship_from",
        key=f"{PAGE}.by_dc",
    )
with by_channel:
    channel_click = drilldown.clickable_chart(
        charts.bars(
            connection.run(queries.FILL_RATE_BY_CHANNEL, params),
            category="channel",
            value="order_fill_rate",
            title="Order fill rate by channel",
            rate=True,
        ),
        "channel",
        key=f"{PAGE}.by_channel",
    )
category_click = None
with by_category:
    if details_ready:
        category_click = drilldown.clickable_chart(
            charts.bars(
                connection.run(queries.FILL_RATE_BY_CATEGORY, params),
                category="category",
                value="line_fill_rate",
                title="Line fill rate by category",
                rate=True,
            ),
            "category",
            key=f"{PAGE}.by_category",
        )
    else:
        st.info(
            "Fill rate by category appears once gold.order_line_fulfilment is in the lake "
            "(the next refresh builds it)."
        )

st.subheader("Order lines behind the numbers")
if details_ready:
    drilldown.section(
        LINE_FILL_RATE,
        start,
        end,
        params,
        key=f"{PAGE}.records",
        day=charts.picked_day(trend_click, "order_date"),
        picks={
            "locations": charts.picked(dc_click, "ship_from"),
            "channels": charts.picked(channel_click, "channel"),
            "categories": charts.picked(category_click, "category"),
        },
    )
else:
    st.info(
        "The order lines behind the numbers appear once gold.order_line_fulfilment is in "
        "the lake (the next refresh builds it)."
    )
if categories and not details_ready:
    st.warning("Category filter needs gold.order_line_fulfilment: showing all categories.")
