"""Planning: what runs out when, what to order now, and the forecast behind it.

A link may name a pair (``?location=DC-1&sku=A``, as the Alerts page's links do): it picks
that location in the filter and that pair in the chart.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, connection, filters, queries

PAGE = "planning"
LINKED_PAIR = f"{PAGE}.linked_pair"  # the pair a link asked for, until the chart shows it


def follow_link() -> None:
    """Apply a link's ``location`` and ``sku`` once, then drop them from the address, so
    the filters are the user's again after arriving (and a later link applies afresh)."""
    location, sku = st.query_params.get("location"), st.query_params.get("sku")
    if not location:
        return
    # filters.choose keeps a page's choice under these keys (dashboards/filters.py).
    st.session_state[f"filters.{PAGE}.locations"] = [location]
    st.session_state[f"widget.{PAGE}.locations"] = [location]
    st.session_state[f"{PAGE}.reorder_only"] = False  # the pair may not need a reorder
    if sku:
        st.session_state[LINKED_PAIR] = f"{location} / {sku}"
    for name in ("location", "sku"):
        st.query_params.pop(name, None)


st.title("Planning")
follow_link()
if not connection.require_tables("gold.replenishment_plan", what="planning tables"):
    st.stop()

where, which = st.columns([3, 1])
with where:
    locations = filters.choose(
        PAGE, "locations", "Location", connection.run(queries.PLAN_LOCATIONS)["value"].tolist()
    )
with which:
    reorder_only = st.toggle("Only pairs to reorder", key=f"{PAGE}.reorder_only")
params = {**filters.Filters(locations=locations).params(), "reorder_only": reorder_only}
plan = connection.run(queries.REPLENISHMENT_PLAN, params)

pairs, to_reorder, units, accuracy = st.columns(4)
pairs.metric("Pairs", f"{len(plan):,}")
to_reorder.metric("Need reorder", f"{int(plan['needs_reorder'].sum()):,}")
units.metric("Suggested units", f"{int(plan['suggested_order_units'].sum()):,}")
has_forecast = connection.has_tables("gold.demand_forecast", "gold.forecast_accuracy")
if has_forecast:
    versus = connection.run(queries.FORECAST_ACCURACY_TOTALS, params)["error_vs_naive"].iloc[0]
    accuracy.metric(
        "Forecast error vs naive",
        "—" if pd.isna(versus) else f"{versus:.0%}",
        help="Backtest over the last 14 days: the forecast's absolute error as a share of "
        "the seasonal-naive forecast's (lower is better).",
    )
if not plan.empty:
    st.caption(f"As of the end of {plan['as_of_date'].iloc[0]:%Y-%m-%d} (UTC).")

st.dataframe(
    plan.drop(columns=["as_of_date"]),
    hide_index=True,
    width="stretch",
    column_config={
        "avg_daily_demand": st.column_config.NumberColumn("avg daily demand", format="%.1f"),
        "days_of_cover": st.column_config.NumberColumn("days of cover", format="%.1f"),
        "lead_time_days": st.column_config.NumberColumn("lead time (days)", format="%.1f"),
        "safety_stock": st.column_config.NumberColumn("safety stock", format="%.1f"),
        "reorder_point": st.column_config.NumberColumn("reorder point", format="%.1f"),
        "needs_reorder": "reorder",
        "suggested_order_units": "suggested order",
    },
)
orders = connection.run(queries.SUGGESTED_ORDERS, params)
st.download_button(
    "Suggested orders (CSV)",
    orders.to_csv(index=False).encode(),
    file_name="suggested_orders.csv",
    mime="text/csv",
    icon=":material/download:",
    disabled=orders.empty,
)

st.subheader("Demand and forecast")
if plan.empty or not has_forecast:
    st.info("The forecast appears once gold.demand_forecast is in the lake (`scm refresh`).")
    st.stop()
labels = (plan["location_id"] + " / " + plan["sku"]).tolist()
linked = st.session_state.pop(LINKED_PAIR, None)
if linked in labels:
    st.session_state[f"{PAGE}.pair"] = linked
elif linked is not None:
    st.info(f"{linked} is not in the replenishment plan yet: each refresh rebuilds it.")
chosen = st.selectbox("Location / sku", labels, key=f"{PAGE}.pair")
location_id, sku = str(chosen).split(" / ", 1)
pair = {"location_id": location_id, "sku": sku, "as_of_date": plan["as_of_date"].iloc[0]}
history = connection.run(queries.DEMAND_HISTORY_AND_FORECAST, pair)
wide = history.pivot_table(index="day", columns="series", values="units").reset_index()
measures = [name for name in ("ordered", "forecast") if name in wide.columns]
if measures:
    st.altair_chart(
        charts.trend(wide, x="day", y=measures, title=f"{chosen}: units ordered per day"),
        width="stretch",
    )
scored = connection.run(queries.FORECAST_ACCURACY, pair)
if not scored.empty:
    mae, naive, wape = st.columns(3)
    mae.metric("Forecast MAE", f"{scored['mae'].iloc[0]:.2f}")
    naive.metric("Seasonal-naive MAE", f"{scored['naive_mae'].iloc[0]:.2f}")
    share = scored["wape"].iloc[0]
    wape.metric("WAPE", "—" if pd.isna(share) else f"{share:.0%}")
    st.caption(f"Model: {scored['model'].iloc[0]}; backtest on the 14 days to the as-of date.")
