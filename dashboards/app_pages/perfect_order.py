"""Perfect order (SCOR RL.1.1) and order cycle time (RS.1.1): trends and why orders fail."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries
from dashboards.scorecard import KPIS

PAGE = "perfect_order"
RECORDS_OF = {  # which KPI's records the section below lists
    "Perfect order": next(kpi for kpi in KPIS if kpi.title == "Perfect order rate"),
    "Cycle time": next(kpi for kpi in KPIS if kpi.title == "Order cycle time"),
}

st.title("Perfect order & cycle time")
if not connection.require_tables("gold.perfect_order_daily", "gold.fill_rate_daily"):
    st.stop()

bounds = connection.date_bounds(queries.ORDER_DATE_BOUNDS, what="KPI rows yet")
if bounds is None:
    st.stop()
first_date, last_date = bounds
dates, where, how = st.columns([2, 2, 2])
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
params = filters.Filters(start, end, locations, channels).params()

perfect = connection.run(queries.PERFECT_ORDER_TREND, params)
totals = connection.run(queries.PERFECT_ORDER_DAILY_TOTALS, params)
has_cycle_time = connection.has_tables("gold.order_cycle_time_daily")
cycle = connection.run(queries.CYCLE_TIME_TREND, params) if has_cycle_time else None

rate_tile, orders_tile, cycle_tile = st.columns(3)
orders = totals["orders"].sum()
rate_tile.metric(
    "Perfect order rate", "—" if orders == 0 else f"{totals['perfect_orders'].sum() / orders:.1%}"
)
orders_tile.metric("Orders counted", f"{int(orders):,}")
if cycle is not None and cycle["orders_delivered"].sum() > 0:
    weighted = (cycle["avg_cycle_time_days"] * cycle["orders_delivered"]).sum()
    cycle_tile.metric("Order cycle time", f"{weighted / cycle['orders_delivered'].sum():.2f} days")
else:
    cycle_tile.metric("Order cycle time", "—")

trend_left, trend_right = st.columns(2)
cycle_click = None
with trend_left:
    perfect_click = drilldown.clickable_chart(
        charts.trend(
            perfect, x="order_date", y="perfect_order_rate", title="Perfect order rate", rate=True
        ),
        "order_date",
        key=f"{PAGE}.perfect_trend",
    )
with trend_right:
    if cycle is not None:
        cycle_click = drilldown.clickable_chart(
            charts.trend(
                cycle,
                x="order_date",
                y="avg_cycle_time_days",
                title="Order cycle time",
                y_title="days",
            ),
            "order_date",
            key=f"{PAGE}.cycle_trend",
        )
    else:
        st.info("Cycle time appears once gold.order_cycle_time_daily is in the lake.")

reasons_left, by_location_right = st.columns(2)
reason_click = None
with reasons_left:
    if connection.has_tables(queries.ORDER_DETAIL):
        failures = connection.run(queries.PERFECT_ORDER_FAILURES, params)
        reason_click = drilldown.clickable_chart(
            charts.bars(
                failures,
                category="reason",
                value="orders",
                title="Why orders were not perfect (orders failing each check)",
            ),
            "reason",
            key=f"{PAGE}.reasons",
        )
    else:
        st.info(
            "Failure reasons (late, short, damaged, documents) appear once "
            "gold.perfect_order_detail is in the lake (the next refresh builds it)."
        )
with by_location_right:
    by_location = connection.run(queries.PERFECT_ORDER_BY_LOCATION, params)
    location_click = drilldown.clickable_chart(
        charts.bars(
            by_location,
            category="ship_from",
            value="perfect_order_rate",
            title="Perfect order rate by DC",
            rate=True,
        ),
        "ship_from",
        key=f"{PAGE}.by_location",
    )

st.subheader("Orders behind the numbers")
cycle_day = charts.picked_day(cycle_click, "order_date")
which = filters.pick_one(PAGE, "records", "Records of", list(RECORDS_OF), default="Perfect order")
drilldown.section(
    RECORDS_OF[which],
    start,
    end,
    params,
    key=f"{PAGE}.records",
    day=charts.picked_day(perfect_click, "order_date") or cycle_day,
    picks={
        "locations": charts.picked(location_click, "ship_from"),
        "reasons": charts.picked(reason_click, "reason"),
    },
)
